package negotiate

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultLeeway is the clock skew allowed on exp and nbf unless WithLeeway
// says otherwise.
const DefaultLeeway = 30 * time.Second

// Strict decoding rejects non-zero padding bits, so one signature has exactly
// one spelling and a token cannot be altered while still verifying.
var segmentEncoding = base64.RawURLEncoding.Strict()

// Identity is what a verified token says about its bearer.
type Identity struct {
	UserID    string         // from "asrs.s.uid", else "nameid", else "sub"; "" when none
	Claims    map[string]any // every claim of the token (exp, aud, … included), for webhooks
	ExpiresAt time.Time
}

// Verifier checks tokens against a set of access keys. It is safe for
// concurrent use; SetKeys replaces the key set atomically.
type Verifier struct {
	keys   atomic.Pointer[[]AccessKey]
	now    func() time.Time
	leeway time.Duration
}

// VerifierOption configures NewVerifier.
type VerifierOption func(*Verifier)

// WithClock sets the time source used for exp and nbf. The default is time.Now.
func WithClock(now func() time.Time) VerifierOption {
	return func(v *Verifier) {
		if now != nil {
			v.now = now
		}
	}
}

// WithLeeway sets the clock skew allowed on exp and nbf. The default is
// DefaultLeeway (30s); negative values mean zero.
func WithLeeway(d time.Duration) VerifierOption {
	return func(v *Verifier) { v.leeway = max(d, 0) }
}

// NewVerifier returns a Verifier trusting keys. Keys without a secret are
// ignored: an empty HMAC key would let anyone sign.
func NewVerifier(keys []AccessKey, opts ...VerifierOption) *Verifier {
	v := &Verifier{now: time.Now, leeway: DefaultLeeway}
	for _, o := range opts {
		o(v)
	}
	v.SetKeys(keys)
	return v
}

// SetKeys replaces the trusted keys. To rotate, first SetKeys([new, old]),
// start issuing with new, and drop old once its tokens have expired.
func (v *Verifier) SetKeys(keys []AccessKey) {
	ks := make([]AccessKey, 0, len(keys))
	for _, k := range keys {
		if k.Secret != "" {
			ks = append(ks, k)
		}
	}
	v.keys.Store(&ks)
}

type tokenHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// Verify checks token and returns what it says about the bearer.
//
// The algorithm must be HS256 and exp must be present. With a kid header
// only the key with that ID is tried; without one every key is. When
// audience is not "", the token's aud must match it leniently: scheme and
// host (case-insensitive) and path (ignoring a trailing slash) must be equal,
// while port, query and fragment are ignored, because Azure's SDKs build aud
// without the port and sometimes with a query.
//
// Every error matches ErrInvalidToken under errors.Is; an expired token also
// matches ErrExpired.
func (v *Verifier) Verify(token string, audience string) (*Identity, error) {
	if len(token) > MaxTokenSize {
		return nil, invalid(fmt.Sprintf("token is %d bytes, over the %d-byte limit", len(token), MaxTokenSize))
	}
	if token == "" {
		return nil, invalid("malformed token: empty")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, invalid(fmt.Sprintf("malformed token: %d segments, want 3 (header.payload.signature)", len(parts)))
	}
	var hdr tokenHeader
	if err := decodeJSONSegment(parts[0], &hdr); err != nil {
		return nil, invalid("malformed token: header " + err.Error())
	}
	var claims map[string]any
	if err := decodeJSONSegment(parts[1], &claims); err != nil {
		return nil, invalid("malformed token: payload " + err.Error())
	}
	sig, err := segmentEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, invalid("malformed token: signature is not base64url: " + err.Error())
	}

	if hdr.Alg != jwt.SigningMethodHS256.Alg() {
		return nil, invalid(fmt.Sprintf("token is not signed with HS256 (alg %q)", hdr.Alg))
	}
	if err := v.checkSignature(parts[0]+"."+parts[1], sig, hdr.Kid); err != nil {
		return nil, err
	}

	id, err := v.checkClaims(claims)
	if err != nil {
		return nil, err
	}
	if audience != "" {
		if err := checkAudience(claims, audience); err != nil {
			return nil, err
		}
	}
	return id, nil
}

func decodeJSONSegment(seg string, into any) error {
	b, err := segmentEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("is not base64url: %w", err)
	}
	// A JSON null would leave the target empty and pass; both parts of a JWT
	// must be objects.
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("is not a JSON object")
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("is not valid JSON: %w", err)
	}
	return nil
}

// checkSignature verifies sig over signed with the candidate keys. The jwt
// library compares HMACs in constant time.
func (v *Verifier) checkSignature(signed string, sig []byte, kid string) error {
	keys := *v.keys.Load()
	tried := 0
	for _, k := range keys {
		if kid != "" && k.ID != kid {
			continue
		}
		tried++
		if jwt.SigningMethodHS256.Verify(signed, sig, []byte(k.Secret)) == nil {
			return nil
		}
	}
	switch {
	case tried > 0:
		return invalid("token signature is invalid (signed with another key)")
	case kid != "":
		return invalid(fmt.Sprintf("unknown key id %q", kid))
	default:
		return invalid("no access keys are configured")
	}
}

func (v *Verifier) checkClaims(claims map[string]any) (*Identity, error) {
	mc := jwt.MapClaims(claims)
	exp, err := mc.GetExpirationTime()
	if err != nil {
		return nil, invalid("token has an invalid exp claim (want a number of seconds)")
	}
	if exp == nil {
		return nil, invalid("token has no exp claim")
	}
	now := v.now()
	if now.After(exp.Add(v.leeway)) {
		return nil, &tokenError{
			msg:     fmt.Sprintf("token expired at %s", exp.UTC().Format(time.RFC3339)),
			expired: true,
		}
	}
	nbf, err := mc.GetNotBefore()
	if err != nil {
		return nil, invalid("token has an invalid nbf claim (want a number of seconds)")
	}
	if nbf != nil && now.Add(v.leeway).Before(nbf.Time) {
		return nil, invalid(fmt.Sprintf("token is not valid before %s", nbf.UTC().Format(time.RFC3339)))
	}
	return &Identity{UserID: userID(claims), Claims: claims, ExpiresAt: exp.Time}, nil
}

// userID follows Azure's precedence: asrs.s.uid, then nameid, then sub. A
// claim given as an array (several values of one claim type) yields its
// first string.
func userID(claims map[string]any) string {
	for _, name := range []string{claimUserID, claimNameID, claimSub} {
		switch c := claims[name].(type) {
		case string:
			if c != "" {
				return c
			}
		case []any:
			if len(c) > 0 {
				if s, ok := c[0].(string); ok && s != "" {
					return s
				}
			}
		}
	}
	return ""
}

func checkAudience(claims map[string]any, want string) error {
	raw, ok := claims["aud"]
	if !ok {
		return invalid("token has no aud claim")
	}
	auds, ok := audienceList(raw)
	if !ok {
		return invalid("token has an invalid aud claim (want a string or a list of strings)")
	}
	for _, a := range auds {
		if audienceMatches(a, want) {
			return nil
		}
	}
	return invalid(fmt.Sprintf("token audience %q does not match %q", strings.Join(auds, ","), want))
}

// audienceList reads aud, which RFC 7519 allows as one string or a list.
// The jwt library treats other types as "no audience"; here they are an error
// so the message names the real fault.
func audienceList(raw any) ([]string, bool) {
	switch a := raw.(type) {
	case string:
		return []string{a}, true
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func audienceMatches(got, want string) bool {
	if got == want {
		return true
	}
	g, err := url.Parse(got)
	if err != nil || g.Scheme == "" || g.Host == "" {
		return false
	}
	w, err := url.Parse(want)
	if err != nil || w.Scheme == "" || w.Host == "" {
		return false
	}
	return strings.EqualFold(g.Scheme, w.Scheme) &&
		strings.EqualFold(g.Hostname(), w.Hostname()) &&
		strings.TrimRight(g.EscapedPath(), "/") == strings.TrimRight(w.EscapedPath(), "/")
}
