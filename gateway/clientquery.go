package gateway

import "net/url"

// clientQuery is the query of a client's connect request as the Azure
// SignalR upstream profile sends it in X-ASRS-Client-Query: encoded, with a
// leading '?', "" when empty. The HTTP layer has left out the connection
// token (id) and the access token: either lets its holder act as the
// client, and a webhook travels further (logs, proxies) than the client's
// own request.
func clientQuery(q url.Values) string {
	if s := q.Encode(); s != "" {
		return "?" + s
	}
	return ""
}
