package gateway

import "net/url"

// clientQuery is the query of a client's connect request as the Azure
// SignalR upstream profile sends it in X-ASRS-Client-Query: encoded, with a
// leading '?', "" when empty. The connection token (id) and the access token
// are left out: either lets its holder act as the client, and a webhook
// travels further (logs, proxies) than the client's own request.
func clientQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	if q.Has("id") || q.Has("access_token") {
		c := make(url.Values, len(q))
		for k, v := range q {
			if k != "id" && k != "access_token" {
				c[k] = v
			}
		}
		q = c
	}
	if s := q.Encode(); s != "" {
		return "?" + s
	}
	return ""
}
