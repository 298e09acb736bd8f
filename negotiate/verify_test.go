package negotiate

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const aud = "http://gw.example:8080/client/?hub=chat"

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	tok, err := IssueToken(testKey, TokenOptions{
		Audience: aud,
		UserID:   "alice",
		Lifetime: 10 * time.Minute,
		Claims:   map[string]any{"role": "admin", "tags": []string{"a", "b"}},
		Now:      fixedClock(t0),
	})
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier([]AccessKey{testKey}, WithClock(fixedClock(t0.Add(time.Minute))))
	id, err := v.Verify(tok, aud)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.UserID != "alice" {
		t.Errorf("UserID: got %q, want alice", id.UserID)
	}
	if want := t0.Add(10 * time.Minute); !id.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt: got %v, want %v", id.ExpiresAt, want)
	}
	for name, want := range map[string]any{
		"role": "admin", "aud": aud, "nameid": "alice", "asrs.s.uid": "alice",
		"iat": float64(t0.Unix()), "exp": float64(t0.Add(10 * time.Minute).Unix()),
	} {
		if got := id.Claims[name]; got != want {
			t.Errorf("claim %s: got %v (%T), want %v", name, got, got, want)
		}
	}
	if tags, ok := id.Claims["tags"].([]any); !ok || len(tags) != 2 {
		t.Errorf("claim tags: got %v, want [a b]", id.Claims["tags"])
	}
	hdr, _, _ := strings.Cut(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(hdr)
	if !strings.Contains(string(b), `"kid":"k1"`) || !strings.Contains(string(b), `"alg":"HS256"`) {
		t.Errorf("header: got %s, want alg HS256 and kid k1", b)
	}
}

func TestIssueTokenDefaultsAndNoKid(t *testing.T) {
	t.Parallel()
	key := AccessKey{Secret: testKey.Secret}
	tok, err := IssueToken(key, TokenOptions{Audience: aud, Now: fixedClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	hdr, _, _ := strings.Cut(tok, ".")
	if b, _ := base64.RawURLEncoding.DecodeString(hdr); strings.Contains(string(b), "kid") {
		t.Errorf("header: got %s, want no kid for a key without ID", b)
	}
	// No kid: every key is tried, so a verifier holding the key under some ID accepts it.
	v := NewVerifier([]AccessKey{{ID: "other", Secret: "x"}, testKey}, WithClock(fixedClock(t0)))
	id, err := v.Verify(tok, aud)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.UserID != "" {
		t.Errorf("UserID: got %q, want empty", id.UserID)
	}
	if want := t0.Add(time.Hour); !id.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt: got %v, want %v (default lifetime 1h)", id.ExpiresAt, want)
	}
	for _, c := range []string{"nameid", "asrs.s.uid"} {
		if _, ok := id.Claims[c]; ok {
			t.Errorf("claim %s present for anonymous token", c)
		}
	}
}

func TestIssueTokenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  AccessKey
		opts TokenOptions
		want string
	}{
		{"no audience", testKey, TokenOptions{}, "audience is required"},
		{"no secret", AccessKey{ID: "x"}, TokenOptions{Audience: aud}, "no secret"},
		{"negative lifetime", testKey, TokenOptions{Audience: aud, Lifetime: -time.Second}, "negative lifetime"},
		{"override aud", testKey, TokenOptions{Audience: aud, Claims: map[string]any{"aud": "x"}}, `claim "aud"`},
		{"override exp", testKey, TokenOptions{Audience: aud, Claims: map[string]any{"exp": 1}}, `claim "exp"`},
		{"override iat", testKey, TokenOptions{Audience: aud, Claims: map[string]any{"iat": 1}}, `claim "iat"`},
		{"override nameid", testKey, TokenOptions{Audience: aud, Claims: map[string]any{"nameid": "bob"}}, `claim "nameid"`},
		{"override asrs.s.uid", testKey, TokenOptions{Audience: aud, Claims: map[string]any{"asrs.s.uid": "bob"}}, `claim "asrs.s.uid"`},
		{"too big", testKey, TokenOptions{Audience: aud, Claims: map[string]any{"blob": strings.Repeat("x", 4000)}}, "over the 4096-byte limit"},
		{"user id with a newline", testKey, TokenOptions{Audience: aud, UserID: "a\nb"}, `user id "a\nb" contains a control character`},
		{"claim with a NUL", testKey, TokenOptions{Audience: aud, Claims: map[string]any{"role": "\x00"}}, `claim "role"`},
		{"user id too big for a token", testKey, TokenOptions{Audience: aud, UserID: strings.Repeat("<", 1024)}, "token too large: it would be"},
		{"unencodable claim", testKey, TokenOptions{Audience: aud, Claims: map[string]any{"ch": make(chan int)}}, "issue token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := IssueToken(tt.key, tt.opts)
			if tok != "" {
				t.Errorf("got token %q, want none", tok)
			}
			mustContain(t, err, tt.want)
		})
	}
}

func TestUserIDPrecedence(t *testing.T) {
	t.Parallel()
	exp := t0.Add(time.Hour).Unix()
	tests := []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"asrs.s.uid wins", map[string]any{"asrs.s.uid": "u", "nameid": "n", "sub": "s"}, "u"},
		{"nameid over sub", map[string]any{"nameid": "n", "sub": "s"}, "n"},
		{"sub alone", map[string]any{"sub": "s"}, "s"},
		{"empty uid falls through", map[string]any{"asrs.s.uid": "", "nameid": "n"}, "n"},
		{"non-string skipped", map[string]any{"nameid": 42, "sub": "s"}, "s"},
		{"array takes first", map[string]any{"nameid": []string{"n1", "n2"}}, "n1"},
		{"none", map[string]any{"name": "Alice"}, ""},
	}
	v := NewVerifier([]AccessKey{testKey}, WithClock(fixedClock(t0)))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := map[string]any{"exp": exp, "aud": aud}
			for k, val := range tt.claims {
				c[k] = val
			}
			tok := handToken(t, map[string]any{"alg": "HS256", "typ": "JWT"}, c, testKey.Secret)
			id, err := v.Verify(tok, aud)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.UserID != tt.want {
				t.Errorf("UserID: got %q, want %q", id.UserID, tt.want)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	exp := t0.Add(time.Hour).Unix()
	good := map[string]any{"exp": exp, "aud": aud}
	hs := map[string]any{"alg": "HS256", "typ": "JWT"}
	withKid := map[string]any{"alg": "HS256", "kid": "k1"}
	valid := handToken(t, hs, good, testKey.Secret)
	parts := strings.Split(valid, ".")
	vh, vp := parts[0], parts[1]
	signed := func(header, payload string) string {
		s := header + "." + payload
		return s + "." + hs256(s, testKey.Secret)
	}

	tests := []struct {
		name        string
		token       string
		audience    string
		want        string
		wantExpired bool
	}{
		{"expired", handToken(t, hs, map[string]any{"exp": t0.Add(-time.Hour).Unix()}, testKey.Secret), "",
			"token expired at 2026-03-01T11:00:00Z", true},
		{"wrong audience", valid, "http://other.example/client/?hub=chat",
			`token audience "` + aud + `" does not match "http://other.example/client/?hub=chat"`, false},
		{"no aud claim", handToken(t, hs, map[string]any{"exp": exp}, testKey.Secret), aud, "token has no aud claim", false},
		{"aud empty list", handToken(t, hs, map[string]any{"exp": exp, "aud": []string{}}, testKey.Secret), aud, `token audience "" does not match`, false},
		{"aud list with a number", handToken(t, hs, map[string]any{"exp": exp, "aud": []any{aud, 1}}, testKey.Secret), aud, "invalid aud claim", false},
		{"aud not a string", handToken(t, hs, map[string]any{"exp": exp, "aud": 7}, testKey.Secret), aud, "invalid aud claim", false},
		{"unknown kid", handToken(t, map[string]any{"alg": "HS256", "kid": "nope"}, good, testKey.Secret), aud, `unknown key id "nope"`, false},
		{"kid names a key, signed by another", handToken(t, withKid, good, "some-other-secret"), aud, "token signature is invalid", false},
		{"wrong key without kid", handToken(t, hs, good, "some-other-secret"), aud, "token signature is invalid", false},
		{"alg none", rawSeg(`{"alg":"none","typ":"JWT"}`) + "." + vp + ".", aud, `token is not signed with HS256 (alg "none")`, false},
		{"alg none with kid", rawSeg(`{"alg":"none","kid":"k1"}`) + "." + vp + ".", aud, `not signed with HS256`, false},
		{"alg HS512", signed(rawSeg(`{"alg":"HS512"}`), vp), aud, `token is not signed with HS256 (alg "HS512")`, false},
		{"alg RS256", rawSeg(`{"alg":"RS256","typ":"JWT"}`) + "." + vp + "." + rawSeg("not-an-rsa-signature"), aud, `(alg "RS256")`, false},
		{"alg missing", signed(rawSeg(`{"typ":"JWT"}`), vp), aud, `(alg "")`, false},
		{"no exp", handToken(t, hs, map[string]any{"aud": aud}, testKey.Secret), aud, "token has no exp claim", false},
		{"exp is a string", handToken(t, hs, map[string]any{"aud": aud, "exp": "tomorrow"}, testKey.Secret), aud, "invalid exp claim", false},
		{"empty", "", aud, "malformed token: empty", false},
		{"one segment", "abc", aud, "malformed token: 1 segments, want 3", false},
		{"two segments", vh + "." + vp, aud, "malformed token: 2 segments, want 3", false},
		{"four segments", valid + ".x", aud, "malformed token: 4 segments, want 3", false},
		{"header bad base64", "a*b." + vp + ".sig", aud, "malformed token: header is not base64url", false},
		{"header bad JSON", rawSeg(`{"alg":`) + "." + vp + ".sig", aud, "malformed token: header is not valid JSON", false},
		{"header kid not a string", rawSeg(`{"alg":"HS256","kid":5}`) + "." + vp + ".sig", aud, "malformed token: header is not valid JSON", false},
		{"payload bad base64", signed(vh, "%%%"), aud, "malformed token: payload is not base64url", false},
		// Without the key, the payload is never parsed: the signature fails first.
		{"payload bad JSON, forged", vh + "." + rawSeg(`{"exp":`) + "." + hs256(vh+"."+rawSeg(`{"exp":`), "another secret"), aud, "signature is invalid", false},
		{"payload bad JSON", signed(vh, rawSeg(`{"exp":`)), aud, "malformed token: payload is not valid JSON", false},
		{"payload null", signed(vh, rawSeg(`null`)), aud, "malformed token: payload is not a JSON object", false},
		{"payload array", signed(vh, rawSeg(`[1,2]`)), aud, "malformed token: payload is not a JSON object", false},
		{"signature bad base64", vh + "." + vp + ".!!", aud, "malformed token: signature is not base64url", false},
		{"signature padded", valid + "=", aud, "malformed token: signature is not base64url", false},
		{"over 4 KiB", handToken(t, hs, map[string]any{"exp": exp, "aud": aud, "x": strings.Repeat("y", 4100)}, testKey.Secret), aud,
			"over the 4096-byte limit", false},
		{"not yet valid", handToken(t, hs, map[string]any{"exp": exp, "nbf": t0.Add(time.Minute).Unix()}, testKey.Secret), "",
			"token is not valid before 2026-03-01T12:01:00Z", false},
		{"valid for a century", handToken(t, hs, map[string]any{"exp": t0.AddDate(100, 0, 0).Unix(), "aud": aud}, testKey.Secret), aud,
			"token is valid until 2126-03-01T12:00:00Z, longer than the 24h0m0s this gateway accepts", false},
		{"user id with CRLF", handToken(t, hs, map[string]any{"exp": exp, "aud": aud, "nameid": "bob\r\nX-Admin: 1"}, testKey.Secret), aud,
			`token's user id "bob\r\nX-Admin: 1" contains a control character (U+000D at byte 3) (claim nameid)`, false},
		{"user id too long", handToken(t, hs, map[string]any{"exp": exp, "aud": aud, "sub": strings.Repeat("u", 2000)}, testKey.Secret), aud,
			"token's user id is 2000 bytes long; the limit is 1024 (claim sub)", false},
		{"claim with a control character", handToken(t, hs, map[string]any{"exp": exp, "aud": aud, "role": []any{"a\x00"}}, testKey.Secret), aud,
			`token claim "role": "a\x00" contains a control character`, false},
		{"too many claims", handToken(t, hs, manyClaims(exp), testKey.Secret), aud, "token has 65 claims; the limit is 64", false},
	}
	v := NewVerifier([]AccessKey{testKey}, WithClock(fixedClock(t0)))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := v.Verify(tt.token, tt.audience)
			if id != nil {
				t.Errorf("got identity %+v, want nil", id)
			}
			mustContain(t, err, tt.want)
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("errors.Is(%v, ErrInvalidToken) = false, want true", err)
			}
			if got := errors.Is(err, ErrExpired); got != tt.wantExpired {
				t.Errorf("errors.Is(err, ErrExpired) = %v, want %v", got, tt.wantExpired)
			}
		})
	}
	// The valid token the cases are derived from must pass, or the cases prove nothing.
	if _, err := v.Verify(valid, aud); err != nil {
		t.Fatalf("base token: %v", err)
	}
}

func manyClaims(exp int64) map[string]any {
	c := map[string]any{"exp": exp, "aud": aud}
	for i := range 63 {
		c["c"+strconv.Itoa(i)] = 1
	}
	return c
}

func TestMaxLifetime(t *testing.T) {
	t.Parallel()
	hs := map[string]any{"alg": "HS256"}
	tok := func(d time.Duration) string {
		return handToken(t, hs, map[string]any{"exp": t0.Add(d).Unix(), "aud": aud}, testKey.Secret)
	}
	tests := []struct {
		name string
		opts []VerifierOption
		life time.Duration
		ok   bool
	}{
		{"default, at the limit plus leeway", nil, DefaultMaxLifetime + DefaultLeeway, true},
		{"default, past it", nil, DefaultMaxLifetime + DefaultLeeway + time.Second, false},
		{"raised", []VerifierOption{WithMaxLifetime(7 * 24 * time.Hour)}, 7 * 24 * time.Hour, true},
		{"lowered", []VerifierOption{WithMaxLifetime(time.Hour), WithLeeway(0)}, time.Hour + time.Second, false},
		{"zero means default", []VerifierOption{WithMaxLifetime(0)}, DefaultMaxLifetime, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := NewVerifier([]AccessKey{testKey}, append([]VerifierOption{WithClock(fixedClock(t0))}, tt.opts...)...)
			_, err := v.Verify(tok(tt.life), aud)
			if tt.ok != (err == nil) {
				t.Fatalf("lifetime %s: err = %v, want ok = %v", tt.life, err, tt.ok)
			}
			if err != nil {
				mustContain(t, err, "issue tokens that expire sooner")
			}
		})
	}
}

func TestVerifyNoKeys(t *testing.T) {
	t.Parallel()
	tok := handToken(t, map[string]any{"alg": "HS256"}, map[string]any{"exp": t0.Add(time.Hour).Unix()}, "")
	// A key with an empty secret is dropped: otherwise anyone could sign with "".
	v := NewVerifier([]AccessKey{{ID: "", Secret: ""}}, WithClock(fixedClock(t0)))
	_, err := v.Verify(tok, "")
	mustContain(t, err, "no access keys are configured")
}

func TestAudienceMatching(t *testing.T) {
	t.Parallel()
	const want = "http://gw.example:8080/client/?hub=chat"
	const mismatch = "does not match"
	tests := []struct {
		name  string
		claim any
		err   string // substring; "" means accepted
	}{
		{"exact", want, ""},
		{"port ignored", "http://gw.example/client/?hub=chat", ""},
		{"other port ignored", "http://gw.example:9/client/?hub=chat", ""},
		{"other query parameters ignored", "http://gw.example:8080/client/?hub=chat&asrs.op=%2F", ""},
		{"trailing slash ignored", "http://gw.example:8080/client?hub=chat", ""},
		{"fragment ignored", "http://gw.example:8080/client/?hub=chat#x", ""},
		{"host case ignored", "http://GW.Example:8080/client/?hub=chat", ""},
		{"scheme case ignored", "HTTP://gw.example/client/?hub=chat", ""},
		{"escaped hub", "http://gw.example/client/?hub=%63hat", ""},
		{"one of a list", []string{"http://x/", "http://gw.example/client/?hub=chat"}, ""},
		{"list of one", []string{want}, ""},
		{"same hub twice in a list", []string{want, "http://gw.example/client?hub=chat"}, ""},
		{"other endpoints' hubs ignored", []string{"http://x/client/?hub=other", want}, ""},
		{"scheme differs", "https://gw.example:8080/client/?hub=chat", mismatch},
		{"host differs", "http://gw.example.evil:8080/client/?hub=chat", mismatch},
		{"path differs", "http://gw.example:8080/api/hubs/chat", mismatch},
		{"path case differs", "http://gw.example:8080/Client/?hub=chat", mismatch},
		{"path prefix only", "http://gw.example:8080/client/x", mismatch},
		{"relative", "/client/?hub=chat", mismatch},
		{"not a URL", "gw.example", mismatch},
		{"none of a list", []string{"http://x/", "http://y/client/"}, mismatch},
		// Bound to exactly one hub, compared exactly.
		{"another hub", "http://gw.example/client/?hub=other", `token is for hub "other", not "chat"`},
		{"another hub as a list", []string{"http://gw.example/client/?hub=other"}, `token is for hub "other", not "chat"`},
		{"hub case differs", "http://gw.example/client/?hub=Chat", `token is for hub "Chat", not "chat"`},
		{"no hub", "http://gw.example:8080/client/", "names no hub"},
		{"no hub in a list", []string{"http://gw.example:8080/client/"}, "names no hub"},
		{"hub twice in one entry", "http://gw.example/client/?hub=chat&hub=other", "names the hub 2 times"},
		{"two hubs in a list", []string{want, "http://gw.example/client/?hub=other"}, `names 2 hubs ("chat", "other")`},
	}
	v := NewVerifier([]AccessKey{testKey}, WithClock(fixedClock(t0)))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := handToken(t, map[string]any{"alg": "HS256"}, map[string]any{"exp": t0.Add(time.Hour).Unix(), "aud": tt.claim}, testKey.Secret)
			_, err := v.Verify(tok, want)
			if tt.err == "" {
				if err != nil {
					t.Errorf("got %v, want accepted", err)
				}
				return
			}
			mustContain(t, err, tt.err)
			wrongHub := strings.HasPrefix(tt.err, "token is for hub ")
			if got := errors.Is(err, ErrWrongHub); got != wrongHub {
				t.Errorf("errors.Is(err, ErrWrongHub) = %v, want %v", got, wrongHub)
			}
			if got := errors.Is(err, ErrWrongAudience); got != (tt.err == mismatch) {
				t.Errorf("errors.Is(err, ErrWrongAudience) = %v, want %v", got, tt.err == mismatch)
			}
		})
	}
}

// TestAudienceWithoutHub: an audience that names no hub (the REST API's,
// the request URL) takes any matching entry, hub or not.
func TestAudienceWithoutHub(t *testing.T) {
	t.Parallel()
	const want = "http://gw.example/api/hubs/chat/:send"
	v := NewVerifier([]AccessKey{testKey}, WithClock(fixedClock(t0)))
	for _, claim := range []any{want, want + "?api-version=2022-06-01", []string{"http://x/", want}} {
		tok := handToken(t, map[string]any{"alg": "HS256"}, map[string]any{"exp": t0.Add(time.Hour).Unix(), "aud": claim}, testKey.Secret)
		if _, err := v.Verify(tok, want); err != nil {
			t.Errorf("aud %v: %v", claim, err)
		}
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := NewAccessKey(), NewAccessKey()
	v := NewVerifier([]AccessKey{oldKey}, WithClock(fixedClock(t0)))
	issue := func(k AccessKey) string {
		tok, err := IssueToken(k, TokenOptions{Audience: aud, Now: fixedClock(t0)})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	oldTok, newTok := issue(oldKey), issue(newKey)

	steps := []struct {
		name    string
		keys    []AccessKey
		tok     string
		wantErr string // "" means accepted
	}{
		{"old key alone: old token", []AccessKey{oldKey}, oldTok, ""},
		{"old key alone: new token", []AccessKey{oldKey}, newTok, "unknown key id"},
		{"both: old token", []AccessKey{newKey, oldKey}, oldTok, ""},
		{"both: new token", []AccessKey{newKey, oldKey}, newTok, ""},
		{"new key alone: old token", []AccessKey{newKey}, oldTok, "unknown key id"},
		{"new key alone: new token", []AccessKey{newKey}, newTok, ""},
	}
	for _, s := range steps { // sequential: each step swaps the key set
		v.SetKeys(s.keys)
		_, err := v.Verify(s.tok, aud)
		if s.wantErr == "" {
			if err != nil {
				t.Errorf("%s: got %v, want accepted", s.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), s.wantErr) {
			t.Errorf("%s: got %v, want error containing %q", s.name, err, s.wantErr)
		}
	}
}

func TestSetKeysConcurrentWithVerify(t *testing.T) {
	t.Parallel()
	a, b := NewAccessKey(), NewAccessKey()
	tok, err := IssueToken(a, TokenOptions{Audience: aud})
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier([]AccessKey{a})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			if i%2 == 0 {
				v.SetKeys([]AccessKey{b, a})
			} else {
				v.SetKeys([]AccessKey{a})
			}
		}
	})
	for range 200 {
		// a is in every key set, so each Verify must succeed whichever set it sees.
		if _, err := v.Verify(tok, aud); err != nil {
			t.Fatalf("Verify during rotation: %v", err)
		}
	}
	wg.Wait()
}

func TestLeeway(t *testing.T) {
	t.Parallel()
	exp := t0
	tok := handToken(t, map[string]any{"alg": "HS256"}, map[string]any{"exp": exp.Unix(), "nbf": exp.Add(-time.Hour).Unix()}, testKey.Secret)
	tests := []struct {
		name    string
		now     time.Time
		opts    []VerifierOption
		wantErr bool
	}{
		{"before exp", exp.Add(-time.Second), nil, false},
		{"default leeway covers 29s", exp.Add(29 * time.Second), nil, false},
		{"default leeway ends at 30s", exp.Add(31 * time.Second), nil, true},
		{"zero leeway", exp.Add(time.Second), []VerifierOption{WithLeeway(0)}, true},
		{"negative leeway is zero", exp.Add(time.Second), []VerifierOption{WithLeeway(-time.Hour)}, true},
		{"wide leeway", exp.Add(4 * time.Minute), []VerifierOption{WithLeeway(5 * time.Minute)}, false},
		{"nbf within leeway", exp.Add(-time.Hour - 20*time.Second), nil, false},
		{"nbf beyond leeway", exp.Add(-time.Hour - 40*time.Second), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := NewVerifier([]AccessKey{testKey}, append([]VerifierOption{WithClock(fixedClock(tt.now))}, tt.opts...)...)
			_, err := v.Verify(tok, "")
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("got err %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewAccessKey(t *testing.T) {
	t.Parallel()
	a, b := NewAccessKey(), NewAccessKey()
	if len(a.ID) != 16 || len(a.Secret) < 43 {
		t.Errorf("got ID %q (len %d) secret len %d, want 16 and >= 43", a.ID, len(a.ID), len(a.Secret))
	}
	if raw, err := base64.RawURLEncoding.DecodeString(a.Secret); err != nil || len(raw) != 32 {
		t.Errorf("secret %q: decoded %d bytes, err %v; want 32 bytes", a.Secret, len(raw), err)
	}
	if a.ID == b.ID || a.Secret == b.Secret {
		t.Errorf("two keys share parts: %+v %+v", a, b)
	}
}
