package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// TokenSource returns the bearer token for the next request: for a
// keyless app, its workload identity's OIDC token (a Kubernetes projected
// service-account token read from its file, a cloud metadata token), which
// the gateway accepts when its --oidc-policy trusts the issuer (see
// docs/identity.md). It is called once per request, so it may return a
// token it refreshed.
type TokenSource func(ctx context.Context) (string, error)

// NewKeyless returns a Client for the gateway at endpoint (its base URL,
// http://host:port) that authenticates every request with a token of
// tokens instead of signing one with an access key: the app holds no
// secret of the gateway's.
func NewKeyless(endpoint string, tokens TokenSource, opts ...Option) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rest: endpoint %q is not an http(s) base URL such as https://switchboard.example.com", endpoint)
	}
	if tokens == nil {
		return nil, errors.New("rest: a keyless client needs a token source")
	}
	c := &Client{endpoint: strings.TrimRight(endpoint, "/"), tokens: tokens, hc: http.DefaultClient, lifetime: DefaultTokenLifetime}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// bearer is the token of a request to target: from the token source of a
// keyless client, else signed with the connection string's key.
func (c *Client) bearer(ctx context.Context, target string) (string, error) {
	if c.tokens != nil {
		tok, err := c.tokens(ctx)
		if err != nil {
			return "", fmt.Errorf("rest: get token: %w", err)
		}
		if tok == "" {
			return "", errors.New("rest: get token: the token source returned none")
		}
		return tok, nil
	}
	return c.sign(target)
}
