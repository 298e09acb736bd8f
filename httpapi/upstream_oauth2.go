package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/switchboard-gw/switchboard/input"
	"github.com/switchboard-gw/switchboard/store"
)

// oauth2Input is an upstream's "oauth2" setting as the admin API takes it:
// the gateway gets a bearer token for the upstream with the OAuth 2.0
// client-credentials grant (docs/identity.md). clientSecret may be left out
// of a PUT to keep the stored one.
type oauth2Input struct {
	TokenURL     string            `json:"tokenURL"`
	ClientID     string            `json:"clientID"`
	ClientSecret string            `json:"clientSecret"`
	Scopes       []string          `json:"scopes"`
	Params       map[string]string `json:"params"`
}

// Bounds on the oauth2 setting: far above what providers use, low enough
// that the token request stays small.
const (
	maxOAuth2Field  = 1024
	maxOAuth2Secret = 4096
	maxOAuth2List   = 16
)

var oauth2ParamName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// oauth2Reserved are the form parameters the grant itself sets.
var oauth2Reserved = []string{"grant_type", "client_id", "client_secret", "scope"}

// validate checks the setting; nil (no oauth2) is valid. An empty
// clientSecret is checked by the caller, which knows whether a stored one
// is kept.
func (in *oauth2Input) validate() error {
	if in == nil {
		return nil
	}
	bad := func(format string, args ...any) error {
		return fail(http.StatusBadRequest, "oauth2."+fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(in.TokenURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return bad("tokenURL %s must be an absolute http(s) URL without credentials", input.Quote(in.TokenURL))
	}
	if in.ClientID == "" || len(in.ClientID) > maxOAuth2Field || !input.Text(in.ClientID) {
		return bad("clientID must be 1 to %d characters of text", maxOAuth2Field)
	}
	if strings.Contains(in.ClientSecret, maskMark) {
		return bad("clientSecret is masked as the admin API shows it; give the whole secret, or leave it out of a PUT to keep the stored one")
	}
	if len(in.ClientSecret) > maxOAuth2Secret || !input.Text(in.ClientSecret) {
		return bad("clientSecret must be at most %d characters of text", maxOAuth2Secret)
	}
	if len(in.Scopes) > maxOAuth2List {
		return bad("scopes has %d entries; the limit is %d", len(in.Scopes), maxOAuth2List)
	}
	for _, sc := range in.Scopes {
		if sc == "" || len(sc) > maxOAuth2Field || strings.ContainsAny(sc, " \t") || !input.Text(sc) {
			return bad("scopes: %s is not a scope (text without spaces, at most %d characters)", input.Quote(sc), maxOAuth2Field)
		}
	}
	if len(in.Params) > maxOAuth2List {
		return bad("params has %d entries; the limit is %d", len(in.Params), maxOAuth2List)
	}
	for k, v := range in.Params {
		if !oauth2ParamName.MatchString(k) || slices.Contains(oauth2Reserved, k) {
			return bad("params: %s cannot be set (use 1-64 letters, digits, '_', '.' or '-', and none of %s)", input.Quote(k), strings.Join(oauth2Reserved, ", "))
		}
		if len(v) > maxOAuth2Field || !input.Text(v) {
			return bad("params: the value of %s must be at most %d characters of text", k, maxOAuth2Field)
		}
	}
	return nil
}

func (in *oauth2Input) stored() *store.OAuth2 {
	if in == nil {
		return nil
	}
	return &store.OAuth2{TokenURL: in.TokenURL, ClientID: in.ClientID, ClientSecret: in.ClientSecret,
		Scopes: in.Scopes, Params: in.Params}
}

// checkOAuth2 finishes the oauth2 setting of an upstream about to be
// saved: an omitted clientSecret keeps the stored one (a PUT), else it is
// required; the token URL must pass the upstream address policy, as the
// dispatcher applies it when it fetches tokens.
func (s *Server) checkOAuth2(ctx context.Context, u *store.Upstream) error {
	if u.OAuth2 == nil {
		return nil
	}
	if u.OAuth2.ClientSecret == "" {
		old, err := s.cfg.Store.Upstream(ctx, u.Hub, u.Name)
		switch {
		case err == nil && old.OAuth2 != nil && old.OAuth2.ClientSecret != "":
			u.OAuth2.ClientSecret = old.OAuth2.ClientSecret
		case err == nil || errors.Is(err, store.ErrNotFound):
			return fail(http.StatusBadRequest, "oauth2.clientSecret is required (it may be left out of a PUT only to keep a stored one)")
		default:
			return err
		}
	}
	if s.cfg.Deliveries != nil {
		if err := s.cfg.Deliveries.CheckAddress(ctx, u.Hub, u.OAuth2.TokenURL); err != nil {
			return fail(http.StatusBadRequest, "oauth2.tokenURL: "+strings.TrimPrefix(err.Error(), "delivery: "))
		}
	}
	return nil
}

// maskOAuth2 is the setting as the admin API shows it: the client secret
// is never shown (the identity provider issued it; the admin has it).
func maskOAuth2(o *store.OAuth2) *store.OAuth2 {
	if o == nil {
		return nil
	}
	c := *o
	c.ClientSecret = maskMark
	return &c
}
