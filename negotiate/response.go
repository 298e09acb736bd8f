package negotiate

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/input"
)

// ClientURL is the URL the SignalR client connects to for hub:
// endpoint + "/client/?hub=" + the query-escaped hub. It is also the
// audience of client tokens, as in Azure.
func ClientURL(endpoint, hub string) string {
	return strings.TrimRight(endpoint, "/") + "/client/?hub=" + url.QueryEscape(hub)
}

// Response is the redirect negotiate answer an application's own negotiate
// function returns to the stock SignalR client, which then negotiates with
// the gateway at URL presenting AccessToken.
type Response struct {
	URL         string `json:"url"`
	AccessToken string `json:"accessToken"`
}

type responseOptions struct {
	lifetime time.Duration
	claims   map[string]any
}

// ResponseOption configures NewResponse.
type ResponseOption func(*responseOptions)

// WithLifetime sets the token lifetime; the default is DefaultLifetime (1 hour).
func WithLifetime(d time.Duration) ResponseOption {
	return func(o *responseOptions) { o.lifetime = d }
}

// WithClaims adds claims to the token; the gateway passes them to webhooks.
// They may not set aud, exp, iat, nameid or asrs.s.uid.
func WithClaims(c map[string]any) ResponseOption {
	return func(o *responseOptions) { o.claims = c }
}

// NewResponse builds the negotiate answer for userID ("" for anonymous) on
// hub, with a token signed by cs's key whose audience is the client URL.
func NewResponse(cs ConnectionString, hub, userID string, opts ...ResponseOption) (Response, error) {
	if !ValidHubName(hub) {
		return Response{}, fmt.Errorf("negotiate: hub name %q is invalid: want a letter then up to 127 of letters, digits and _`,.[]", hub)
	}
	if cs.Endpoint == "" {
		return Response{}, fmt.Errorf("negotiate: connection string has no endpoint")
	}
	var o responseOptions
	for _, opt := range opts {
		opt(&o)
	}
	u := ClientURL(cs.Endpoint, hub)
	tok, err := IssueToken(cs.Key(), TokenOptions{
		Audience: u,
		UserID:   userID,
		Lifetime: o.lifetime,
		Claims:   o.claims,
	})
	if err != nil {
		return Response{}, err
	}
	return Response{URL: u, AccessToken: tok}, nil
}

// ValidHubName reports whether name matches Azure's hub name pattern
// ^[A-Za-z][A-Za-z0-9_`,.[\]]{0,127}$ (input.Hub, which says why not).
func ValidHubName(name string) bool { return input.Hub(name) == nil }
