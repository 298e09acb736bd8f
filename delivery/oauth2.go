package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ClientCredentials makes the dispatcher send a bearer token, obtained
// with the OAuth 2.0 client-credentials grant, with every request to an
// upstream (beside the signature): for upstreams behind an API gateway
// that requires OAuth, the counterpart of Azure SignalR's upstream
// "ManagedIdentity" auth.
type ClientCredentials struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// Params are extra form parameters of the token request ("audience",
	// "resource").
	Params map[string]string
}

// Token lifetimes. A token is used until refreshMargin before it expires
// (at most a quarter of its lifetime), so one sent at the last moment does
// not arrive expired; a token endpoint that gives no expires_in gets its
// tokens used for noExpiryLifetime.
const (
	refreshMargin    = time.Minute
	noExpiryLifetime = time.Minute
	// maxAccessToken bounds a token put in the Authorization header, well
	// within maxHeaderBytes.
	maxAccessToken = 4 << 10
)

// tokenCache keeps one token per upstream, fetched when first needed and
// again when it nears its expiry. The zero value is ready to use; it is
// safe for concurrent use.
type tokenCache struct {
	mu      sync.Mutex // guards entries
	entries map[laneKey]*tokenEntry
}

// tokenEntry is the token of one upstream's credentials. At most one
// fetch runs at a time; callers arriving meanwhile wait for its result.
type tokenEntry struct {
	fingerprint string // of the credentials the token is for
	tokenURL    string
	// conf is kept with the entry so the library's memory of which way the
	// endpoint takes the credentials (Basic or form) survives between
	// fetches.
	conf *clientcredentials.Config

	mu        sync.Mutex // guards the fields below
	header    string     // "Bearer TOKEN"; "" before the first fetch
	refreshAt time.Time
	fetching  chan struct{} // closed when the running fetch ends; nil when none runs
	lastErr   error         // of the last fetch
}

// entry returns the cache entry of t's credentials, replacing one made for
// other credentials (the admin changed them).
func (c *tokenCache) entry(t Target) *tokenEntry {
	fp := fingerprint(t.OAuth2)
	c.mu.Lock()
	defer c.mu.Unlock()
	k := laneKey{t.Hub, t.Name}
	if e := c.entries[k]; e != nil && e.fingerprint == fp {
		return e
	}
	if c.entries == nil {
		c.entries = map[laneKey]*tokenEntry{}
	}
	cc := t.OAuth2
	params := url.Values{}
	for k, v := range cc.Params {
		params.Set(k, v)
	}
	e := &tokenEntry{fingerprint: fp, tokenURL: cc.TokenURL, conf: &clientcredentials.Config{ClientID: cc.ClientID,
		ClientSecret: cc.ClientSecret, TokenURL: cc.TokenURL, Scopes: cc.Scopes, EndpointParams: params}}
	c.entries[k] = e
	return e
}

// fingerprint identifies credentials without keeping the secret in clear.
func fingerprint(cc *ClientCredentials) string {
	h := sha256.New()
	keys := make([]string, 0, len(cc.Params))
	for k := range cc.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(h, "%q %q %q %q", cc.TokenURL, cc.ClientID, cc.ClientSecret, cc.Scopes)
	for _, k := range keys {
		fmt.Fprintf(h, " %q=%q", k, cc.Params[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sameCredentials reports whether a and b (either may be nil) are the
// same setting: changing it resets the upstream's breaker, as changing its
// URL or secrets does, since a breaker opened by a failing token endpoint
// says nothing about the new one.
func sameCredentials(a, b *ClientCredentials) bool {
	if a == nil || b == nil {
		return a == b
	}
	return fingerprint(a) == fingerprint(b)
}

// tokenError is why no token could be had; misconfigured says whether
// the token endpoint refused the credentials (the admin's to fix) rather
// than failed.
type tokenError struct {
	err           error
	misconfigured bool
}

func (e *tokenError) Error() string { return e.err.Error() }

// authorization returns the Authorization header value for t: a cached
// token, or one fetched now with ctx (bounded by the upstream's timeout)
// through client, which applies the upstream address policy.
func (c *tokenCache) authorization(ctx context.Context, t Target, client *http.Client, now func() time.Time) (string, error) {
	e := c.entry(t)
	e.mu.Lock()
	if e.header != "" && now().Before(e.refreshAt) {
		h := e.header
		e.mu.Unlock()
		return h, nil
	}
	if wait := e.fetching; wait != nil {
		e.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.header != "" && now().Before(e.refreshAt) {
			return e.header, nil
		}
		return "", e.lastErr
	}
	done := make(chan struct{})
	e.fetching = done
	e.mu.Unlock()

	// The fetch runs outside the lock; others wait on done.
	h, refreshAt, err := e.fetch(ctx, client, now)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		e.header, e.refreshAt = h, refreshAt
	}
	e.lastErr, e.fetching = err, nil
	close(done)
	return h, err
}

// fetch asks the token endpoint for a token; the caller holds the
// entry's fetch turn (fetching), not its lock.
func (e *tokenEntry) fetch(ctx context.Context, client *http.Client, now func() time.Time) (string, time.Time, error) {
	fetched := now()
	tok, err := e.conf.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 &&
			re.Response.StatusCode != http.StatusTooManyRequests && re.Response.StatusCode != http.StatusRequestTimeout {
			msg := re.ErrorCode
			if re.ErrorDescription != "" {
				msg += ": " + re.ErrorDescription
			}
			if msg == "" {
				msg = strings.TrimSpace(string(re.Body))
				if len(msg) > 200 {
					msg = msg[:200] + "…"
				}
			}
			return "", time.Time{}, &tokenError{misconfigured: true,
				err: fmt.Errorf("token endpoint %s refused the client credentials (%d %s)", e.tokenURL, re.Response.StatusCode, msg)}
		}
		if errors.As(err, &re) && re.Response != nil {
			return "", time.Time{}, &tokenError{err: fmt.Errorf("token endpoint %s failed: it answered %d %s%s",
				e.tokenURL, re.Response.StatusCode, http.StatusText(re.Response.StatusCode), snippet(re.Body))}
		}
		return "", time.Time{}, &tokenError{err: fmt.Errorf("token endpoint %s failed: %v", e.tokenURL, unwrapURLError(err))}
	}
	typ := tok.Type() // "Bearer", whatever case the endpoint wrote
	if len(tok.AccessToken) > maxAccessToken || !httpguts.ValidHeaderFieldValue(tok.AccessToken) {
		return "", time.Time{}, &tokenError{misconfigured: true,
			err: fmt.Errorf("token endpoint %s returned an access token that cannot be sent in a header (%d bytes)", e.tokenURL, len(tok.AccessToken))}
	}
	lifetime := tokenLifetime(tok)
	margin := min(refreshMargin, lifetime/4)
	return typ + " " + tok.AccessToken, fetched.Add(lifetime - margin), nil
}

// tokenLifetime is how long tok is valid from its fetch: expires_in as the
// endpoint sent it (clientcredentials turns it into a wall-clock Expiry,
// which the dispatcher's clock cannot be compared with), else
// noExpiryLifetime.
func tokenLifetime(tok *oauth2.Token) time.Duration {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case string: // some endpoints send a string, as the library accepts
		secs, _ = strconv.ParseFloat(v, 64)
	}
	if secs <= 0 || secs > 366*24*3600 {
		return noExpiryLifetime
	}
	return time.Duration(secs * float64(time.Second))
}

// authorize is the Authorization header of a request to t ("" when t
// needs none), or the result of a delivery that could not get a token.
// Such a delivery is not the client's fault and never sent. A token
// endpoint that fails (down, timing out, 5xx) counts as a failure of the
// upstream: the upstream cannot be called as configured, and its breaker
// opening makes blocking events fail fast instead of each waiting out the
// timeout, while notifications wait in the outbox. A token endpoint that
// refuses the credentials is a configuration fault, like a bad URL: not
// counted against the breaker, and notifications wait for the admin.
func (d *Dispatcher) authorize(parent context.Context, deadline time.Time, t Target) (string, *result) {
	if t.OAuth2 == nil {
		return "", nil
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()
	h, err := d.tokens.authorization(ctx, t, d.cfg.Client, d.cfg.Now)
	if err == nil {
		return h, nil
	}
	var te *tokenError
	switch {
	case parent.Err() != nil:
		return "", &result{err: failureDetail(fmt.Sprintf("upstream %q call abandoned", t.Name), "upstream %q: call abandoned while getting its OAuth token: %v", t.Name, parent.Err()),
			outcome: outcomeIgnored, retry: true}
	case ctx.Err() != nil:
		return "", &result{err: failureDetail(fmt.Sprintf("upstream %q timed out", t.Name), "upstream %q not called: its OAuth token endpoint %s did not answer within the upstream's timeout", t.Name, t.OAuth2.TokenURL),
			outcome: outcomeFailure, retry: true}
	case errors.As(err, &te) && te.misconfigured:
		return "", &result{err: failureDetail(misconfigured(t), "upstream %q not called: %v", t.Name, err), outcome: outcomeIgnored, retry: true, refused: true}
	}
	return "", &result{err: failureDetail(fmt.Sprintf("upstream %q is unreachable: its OAuth token could not be obtained", t.Name), "upstream %q not called: %v", t.Name, err),
		outcome: outcomeFailure, retry: true}
}
