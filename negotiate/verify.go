package negotiate

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-gw/switchboard/input"
)

// DefaultLeeway is the clock skew allowed on exp and nbf unless WithLeeway
// says otherwise.
const DefaultLeeway = 30 * time.Second

// DefaultMaxLifetime is the longest a token may still be valid for when it
// is verified (and the longest the gateway's :generateToken issues) unless
// configured otherwise: a leaked token cannot be revoked short of rotating
// the key, so none lives for a century. Azure's SDKs issue tokens for 1 h.
const DefaultMaxLifetime = 24 * time.Hour

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
	keys        atomic.Pointer[[]*verifyKey]
	headers     headerCache
	now         func() time.Time
	leeway      time.Duration
	maxLifetime time.Duration
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

// WithMaxLifetime sets how far in the future a token's exp may lie (beyond
// the leeway). Zero or less means DefaultMaxLifetime (24 h).
func WithMaxLifetime(d time.Duration) VerifierOption {
	return func(v *Verifier) {
		if d > 0 {
			v.maxLifetime = d
		}
	}
}

// NewVerifier returns a Verifier trusting keys. Keys without a secret are
// ignored: an empty HMAC key would let anyone sign.
func NewVerifier(keys []AccessKey, opts ...VerifierOption) *Verifier {
	v := &Verifier{now: time.Now, leeway: DefaultLeeway, maxLifetime: DefaultMaxLifetime}
	for _, o := range opts {
		o(v)
	}
	v.SetKeys(keys)
	return v
}

// SetKeys replaces the trusted keys. To rotate, first SetKeys([new, old]),
// start issuing with new, and drop old once its tokens have expired.
func (v *Verifier) SetKeys(keys []AccessKey) {
	ks := make([]*verifyKey, 0, len(keys))
	for _, k := range keys {
		if k.Secret != "" {
			ks = append(ks, newVerifyKey(k))
		}
	}
	v.keys.Store(&ks)
}

// verifyKey is a trusted key with a pool of HMACs keyed with it: keying a
// fresh HMAC-SHA256 for every token cost five allocations and the two
// padded key blocks' hashing, on every negotiate.
type verifyKey struct {
	AccessKey
	macs sync.Pool // of hash.Hash, keyed with Secret
}

func newVerifyKey(k AccessKey) *verifyKey {
	vk := &verifyKey{AccessKey: k}
	secret := []byte(k.Secret) // keyed with the secret's UTF-8 bytes, as Azure does
	vk.macs.New = func() any { return hmac.New(sha256.New, secret) }
	return vk
}

// signs reports whether sig is the HMAC-SHA256 of signed under k, compared
// in constant time. scratch is room for the MAC.
func (k *verifyKey) signs(signed, sig, scratch []byte) bool {
	h := k.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(signed)
	ok := hmac.Equal(sig, h.Sum(scratch[:0]))
	k.macs.Put(h)
	return ok
}

// scratchPool holds the buffers Verify decodes a token into: its three
// segments decoded, and the signed part, fit in 2×MaxTokenSize. Nothing
// Verify returns points into one (encoding/json copies the strings it
// decodes).
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 2*MaxTokenSize); return &b }}

type tokenHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// maxHeaders bounds headerCache: an issuer writes one header per key
// ({"alg":"HS256","kid":…,"typ":"JWT"}), so a handful covers every token.
const maxHeaders = 32

// headerCache remembers the headers of tokens whose signature verified, by
// their base64url text, so the next token with the same header skips
// decoding it (a third of Verify's JSON work). Only a key holder can add
// one, and there are at most maxHeaders. Lookups take no lock: adding
// copies the map.
type headerCache struct {
	m  atomic.Pointer[map[string]tokenHeader]
	mu sync.Mutex // serialises add
}

func (c *headerCache) get(seg string) (tokenHeader, bool) {
	m := c.m.Load()
	if m == nil {
		return tokenHeader{}, false
	}
	h, ok := (*m)[seg]
	return h, ok
}

func (c *headerCache) add(seg string, h tokenHeader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil && (len(*old) >= maxHeaders || (*old)[seg] == h) {
		return
	}
	m := make(map[string]tokenHeader, 1)
	if old != nil {
		m = maps.Clone(*old)
	}
	m[strings.Clone(seg)] = h // seg points into the token, which may be large
	c.m.Store(&m)
}

// Verify checks token and returns what it says about the bearer.
//
// The algorithm must be HS256 and exp must be present, at most the
// verifier's maximum lifetime (WithMaxLifetime) from now. With a kid header
// only the key with that ID is tried; without one every key is. The claims
// must pass input.Claims and the user id input.UserID: all of them reach
// webhooks.
//
// When audience is not "", aud (a string or a list of strings, as RFC 7519
// allows) must hold an entry matching it leniently: scheme and host
// (case-insensitive) and path (ignoring a trailing slash) must be equal,
// while port, query and fragment are ignored, because Azure's SDKs build aud
// without the port and sometimes with a query. When audience names a hub
// (a client URL, ClientURL: …/client/?hub=NAME), the token is bound to
// exactly that hub: the entries matching the endpoint must all name one hub,
// and it must equal NAME exactly (hub names are case-sensitive).
//
// The claims are parsed only after the signature has been checked, so a
// forged token's payload is never read.
//
// Every error matches ErrInvalidToken under errors.Is; an expired token also
// matches ErrExpired, one for another endpoint ErrWrongAudience, and one
// for another hub of this endpoint ErrWrongHub.
func (v *Verifier) Verify(token string, audience string) (*Identity, error) {
	if len(token) > MaxTokenSize {
		return nil, invalid(fmt.Sprintf("token is %d bytes, over the %d-byte limit", len(token), MaxTokenSize))
	}
	if token == "" {
		return nil, invalid("malformed token: empty")
	}
	head, rest, _ := strings.Cut(token, ".")
	payload, sigSeg, _ := strings.Cut(rest, ".")
	if n := strings.Count(token, ".") + 1; n != 3 {
		return nil, invalid(fmt.Sprintf("malformed token: %d segments, want 3 (header.payload.signature)", n))
	}
	bp := scratchPool.Get().(*[]byte)
	defer scratchPool.Put(bp)
	buf := *bp
	hdr, known := v.headers.get(head)
	if !known {
		if err := decodeJSONSegment(head, buf, &hdr); err != nil {
			return nil, invalid("malformed token: header " + err.Error())
		}
	}
	sig, err := decodeSegment(sigSeg, buf)
	if err != nil {
		return nil, invalid("malformed token: signature is not base64url: " + err.Error())
	}
	buf = buf[len(sig):] // the signed part and the MAC go after sig

	if hdr.Alg != jwt.SigningMethodHS256.Alg() {
		return nil, invalid(fmt.Sprintf("token is not signed with HS256 (alg %q)", hdr.Alg))
	}
	signed := append(buf[:0], token[:len(head)+1+len(payload)]...)
	if err := v.checkSignature(signed, sig, buf[len(signed):], hdr.Kid); err != nil {
		return nil, err
	}
	if !known {
		v.headers.add(head, hdr)
	}
	// The claims are decoded only once the signature holds: whoever lacks
	// the key cannot make the gateway parse JSON of their choosing.
	var claims map[string]any
	if err := decodeJSONSegment(payload, buf, &claims); err != nil {
		return nil, invalid("malformed token: payload " + err.Error())
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

// decodeSegment decodes the base64url segment seg, at most MaxTokenSize
// long, within buf (2×MaxTokenSize): the text is copied to its upper half
// and decoded into the lower, which needs no conversion of seg to []byte
// (an allocation as large as the segment).
func decodeSegment(seg string, buf []byte) ([]byte, error) {
	src := buf[MaxTokenSize:][:copy(buf[MaxTokenSize:], seg)]
	n, err := segmentEncoding.Decode(buf[:MaxTokenSize], src)
	return buf[:n], err
}

// decodeJSONSegment decodes the segment seg within buf (decodeSegment) and
// the JSON object it holds into into.
func decodeJSONSegment(seg string, buf []byte, into any) error {
	b, err := decodeSegment(seg, buf)
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

// checkSignature verifies sig over signed with the candidate keys; scratch
// is room for a MAC.
func (v *Verifier) checkSignature(signed, sig, scratch []byte, kid string) error {
	keys := *v.keys.Load()
	tried := 0
	for _, k := range keys {
		if kid != "" && k.ID != kid {
			continue
		}
		tried++
		if k.signs(signed, sig, scratch) {
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
	if limit := now.Add(v.maxLifetime + v.leeway); exp.After(limit) {
		return nil, invalid(fmt.Sprintf("token is valid until %s, longer than the %s this gateway accepts; issue tokens that expire sooner",
			exp.UTC().Format(time.RFC3339), v.maxLifetime))
	}
	nbf, err := mc.GetNotBefore()
	if err != nil {
		return nil, invalid("token has an invalid nbf claim (want a number of seconds)")
	}
	if nbf != nil && now.Add(v.leeway).Before(nbf.Time) {
		return nil, invalid(fmt.Sprintf("token is not valid before %s", nbf.UTC().Format(time.RFC3339)))
	}
	user, claim := userID(claims)
	if user != "" {
		if err := input.UserID(user); err != nil {
			return nil, invalid(fmt.Sprintf("token's %s (claim %s)", err, claim))
		}
	}
	if err := input.Claims(claims); err != nil {
		return nil, invalid("token " + err.Error())
	}
	return &Identity{UserID: user, Claims: claims, ExpiresAt: exp.Time}, nil
}

// userID follows Azure's precedence: asrs.s.uid, then nameid, then sub. A
// claim given as an array (several values of one claim type) yields its
// first string. It returns the user id and the claim it came from.
func userID(claims map[string]any) (id, claim string) {
	for _, name := range []string{claimUserID, claimNameID, claimSub} {
		switch c := claims[name].(type) {
		case string:
			if c != "" {
				return c, name
			}
		case []any:
			if len(c) > 0 {
				if s, ok := c[0].(string); ok && s != "" {
					return s, name
				}
			}
		}
	}
	return "", ""
}

func checkAudience(claims map[string]any, want string) error {
	raw, ok := claims["aud"]
	if !ok {
		return invalid("token has no aud claim")
	}
	// The common case, a token issued for exactly this URL, passes every
	// check below when want's query has at most one parameter (so cannot
	// name two hubs): the hub aud names is want's. Parsing both URLs and
	// their queries for it was eight allocations per token.
	if a, ok := raw.(string); ok && a == want && atMostOneParam(want) {
		return nil
	}
	auds, ok := audienceList(raw)
	if !ok {
		return invalid("token has an invalid aud claim (want a string or a list of strings)")
	}
	w, err := url.Parse(want)
	wantHubs := url.Values{}
	if err == nil {
		wantHubs = w.Query()
	}
	if _, client := wantHubs["hub"]; !client {
		for _, a := range auds {
			if audienceMatches(a, want) {
				return nil
			}
		}
		return wrongAudience(auds, want)
	}
	// A client token: the entries for this endpoint must name one hub.
	wantHub := wantHubs.Get("hub")
	var hubs []string
	matched := false
	for _, a := range auds {
		if !audienceMatches(a, want) {
			continue
		}
		matched = true
		u, _ := url.Parse(a) // audienceMatches parsed it
		named := u.Query()["hub"]
		switch {
		case len(named) == 0:
			return invalid(fmt.Sprintf("token audience %s names no hub; a client token is for one hub: aud = %s",
				input.Quote(a), ClientURL(w.Scheme+"://"+w.Host, wantHub)))
		case len(named) > 1:
			return invalid(fmt.Sprintf("token audience %s names the hub %d times; a client token is for exactly one hub", input.Quote(a), len(named)))
		}
		if !slices.Contains(hubs, named[0]) {
			hubs = append(hubs, named[0])
		}
	}
	switch {
	case !matched:
		return wrongAudience(auds, want)
	case len(hubs) > 1:
		quoted := make([]string, len(hubs))
		for i, h := range hubs {
			quoted[i] = input.Quote(h)
		}
		return invalid(fmt.Sprintf("token audience names %d hubs (%s); a client token is for exactly one hub", len(hubs), strings.Join(quoted, ", ")))
	case hubs[0] != wantHub:
		return &tokenError{msg: fmt.Sprintf("token is for hub %s, not %s", input.Quote(hubs[0]), input.Quote(wantHub)), wrongHub: true}
	}
	return nil
}

// atMostOneParam reports whether the query of URL u, if any, has at most
// one parameter: no '&' or ';' (which url.ParseQuery also splits on, to
// refuse it) follows the first '?'.
func atMostOneParam(u string) bool {
	_, q, _ := strings.Cut(u, "?")
	return !strings.ContainsAny(q, "&;")
}

func wrongAudience(auds []string, want string) error {
	return &tokenError{msg: fmt.Sprintf("token audience %s does not match %q", input.Quote(strings.Join(auds, ",")), want), wrongAudience: true}
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
