package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/switchboard-gw/switchboard/input"
)

// Errors of Authenticate. Every error it returns matches one of them under
// errors.Is, and its text says what is wrong without echoing the token.
var (
	// ErrUnauthenticated: the token is not one the policy trusts: an
	// untrusted issuer, a wrong audience, expired or not yet valid, a bad
	// signature or a key the issuer does not publish (answer 401).
	ErrUnauthenticated = errors.New("identity: token not accepted")
	// ErrUnavailable: the token's issuer is trusted but its discovery
	// document or keys could not be fetched; retrying later may work
	// (answer 503).
	ErrUnavailable = errors.New("identity: issuer unreachable")
)

// MaxTokenSize bounds the tokens Authenticate reads. Provider tokens with
// many groups run to a few KiB; more is not a token worth parsing.
const MaxTokenSize = 16 << 10

// discoveryRetry is how long a failed discovery is answered from memory
// before it is tried again, so a trusted issuer that is down is not asked
// once per request.
const discoveryRetry = 5 * time.Second

// Config tunes NewVerifier. The zero Config works.
type Config struct {
	// Client fetches discovery documents and keys. Nil means a client with
	// a 10 s timeout.
	Client *http.Client
	// Now is the clock for exp and nbf. Nil means time.Now.
	Now func() time.Time
}

// Verifier authenticates tokens against a Policy.
type Verifier struct {
	cfg     Config
	issuers map[string]*issuer
}

// issuer is one trusted issuer and its lazily built go-oidc verifier.
type issuer struct {
	policy Issuer
	cfg    *Config

	mu       sync.Mutex // guards the fields below
	verifier *oidc.IDTokenVerifier
	failed   time.Time // when discovery last failed
	failErr  error
}

// NewVerifier trusts the issuers of p, which must be valid (LoadPolicy and
// ParsePolicy return valid ones; Validate checks one built in code).
func NewVerifier(p Policy, cfg Config) (*Verifier, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg, issuers: make(map[string]*issuer, len(p.Issuers))}
	for _, is := range p.Issuers {
		v.issuers[is.Issuer] = &issuer{policy: is, cfg: &v.cfg}
	}
	return v, nil
}

// Issuers lists the trusted issuers, for the log at start.
func (v *Verifier) Issuers() []string {
	out := make([]string, 0, len(v.issuers))
	for name := range v.issuers {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Principal is an authenticated caller: who it is and what its grants
// allow.
type Principal struct {
	Issuer  string
	Subject string
	grants  []*Grant
}

// Allows reports whether p may do op on hub.
func (p *Principal) Allows(hub string, op Operation) bool {
	for _, g := range p.grants {
		if g.allows(hub, op) {
			return true
		}
	}
	return false
}

// String names p for logs and error messages: the subject and issuer.
func (p *Principal) String() string {
	return fmt.Sprintf("subject %s of issuer %s", input.Quote(p.Subject), p.Issuer)
}

// LooksLikeJWT reports whether token has the shape of a compact JWS
// (three dot-separated parts), which the admin API uses to tell an OIDC
// token from its admin key.
func LooksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

// Authenticate checks token and returns its principal. ctx bounds the
// discovery and key fetches the check may need.
func (v *Verifier) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if len(token) > MaxTokenSize {
		return nil, unauthenticated("token is %d bytes; the limit is %d", len(token), MaxTokenSize)
	}
	iss, err := peekIssuer(token)
	if err != nil {
		return nil, err
	}
	is, ok := v.issuers[iss]
	if !ok {
		return nil, unauthenticated("issuer %s is not trusted by this gateway (its OIDC policy lists the trusted ones)", input.Quote(iss))
	}
	verifier, err := is.get(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := verifier.Verify(ctx, token)
	if err != nil {
		return nil, is.verifyError(err)
	}
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return slices.Contains(is.policy.Audiences, a) }) {
		return nil, unauthenticated("token audience %s is not one this gateway accepts from issuer %s (want one of %s)",
			input.Quote(strings.Join(tok.Audience, ",")), iss, strings.Join(is.policy.Audiences, ", "))
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, unauthenticated("token claims are not a JSON object: %v", err)
	}
	p := &Principal{Issuer: iss, Subject: tok.Subject}
	for i := range is.policy.Grants {
		if g := &is.policy.Grants[i]; g.matches(tok.Subject, claims) {
			p.grants = append(p.grants, g)
		}
	}
	return p, nil
}

// peekIssuer reads iss from the token's payload before anything is
// verified: it only chooses which issuer's keys verify the signature.
func peekIssuer(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", unauthenticated("malformed token: %d parts, want 3 (header.payload.signature)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", unauthenticated("malformed token: the payload is not base64url")
	}
	var claims struct {
		Iss any `json:"iss"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", unauthenticated("malformed token: the payload is not a JSON object")
	}
	iss, ok := claims.Iss.(string)
	if !ok || iss == "" {
		return "", unauthenticated("token has no iss claim: only tokens of trusted OpenID Connect issuers, or JWTs signed with an access key, are accepted")
	}
	return iss, nil
}

// get returns the issuer's verifier, discovering it on first use. A
// failed discovery is remembered for discoveryRetry.
func (is *issuer) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	is.mu.Lock()
	if v := is.verifier; v != nil {
		is.mu.Unlock()
		return v, nil
	}
	if is.failErr != nil && is.cfg.Now().Sub(is.failed) < discoveryRetry {
		err := is.failErr
		is.mu.Unlock()
		return nil, err
	}
	is.mu.Unlock()

	// Discovery runs outside the lock; two requests racing on the first
	// use both fetch the document and the first to finish is kept.
	v, err := is.discover(ctx)
	is.mu.Lock()
	defer is.mu.Unlock()
	if err != nil {
		is.failed, is.failErr = is.cfg.Now(), err
		return nil, err
	}
	if is.verifier == nil {
		is.verifier = v
	}
	return is.verifier, nil
}

func (is *issuer) discover(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	jwksURL := is.policy.JWKSURL
	if jwksURL == "" {
		provider, err := oidc.NewProvider(oidc.ClientContext(ctx, is.cfg.Client), is.policy.Issuer)
		var doc struct {
			JWKSURL string `json:"jwks_uri"`
		}
		if err == nil {
			err = provider.Claims(&doc)
		}
		if err == nil && doc.JWKSURL == "" {
			err = errors.New("the discovery document has no jwks_uri")
		}
		if err != nil {
			return nil, fmt.Errorf("%w: discovery of issuer %s failed (retried in %s): %v", ErrUnavailable, is.policy.Issuer, discoveryRetry, err)
		}
		jwksURL = doc.JWKSURL
	}
	keys := newRemoteKeys(jwksURL, is.cfg.Client, is.policy.Algorithms)
	return oidc.NewVerifier(is.policy.Issuer, keys, &oidc.Config{
		// The audience list is checked by Authenticate: go-oidc takes one.
		SkipClientIDCheck:    true,
		SupportedSigningAlgs: is.policy.Algorithms,
		Now:                  is.cfg.Now,
	}), nil
}

// verifyError turns go-oidc's error into one of ours.
func (is *issuer) verifyError(err error) error {
	var expired *oidc.TokenExpiredError
	switch {
	case errors.As(err, &expired) && expired.Expiry.IsZero():
		return unauthenticated("token has no exp claim")
	case errors.As(err, &expired):
		return unauthenticated("token expired at %s", expired.Expiry.UTC().Format(time.RFC3339))
	case strings.Contains(err.Error(), keysUnavailable):
		return fmt.Errorf("%w: the keys of issuer %s could not be fetched: %v", ErrUnavailable, is.policy.Issuer, err)
	}
	return unauthenticated("token of issuer %s refused: %s", is.policy.Issuer, strings.TrimPrefix(err.Error(), "oidc: "))
}

func unauthenticated(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnauthenticated, fmt.Sprintf(format, args...))
}
