package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/oidctest"
)

func policyFor(iss string) Policy {
	return Policy{Issuers: []Issuer{{
		Issuer:    iss,
		Audiences: []string{"switchboard"},
		Grants: []Grant{
			{Subject: "app", Hubs: []string{"chat"}, Operations: []Operation{OpSend, OpGenerateToken}},
			{Claims: map[string]string{"groups": "ops"}, Hubs: []string{"*"}, Operations: []Operation{OpAdmin}},
		},
	}}}
}

// TestAuthenticate runs every supported algorithm against a real issuer
// over HTTP: the accepted token's grants, and each refusal with its error.
func TestAuthenticate(t *testing.T) {
	for _, alg := range DefaultAlgorithms {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			is := oidctest.New(alg, t.Cleanup)
			other := oidctest.New(alg, t.Cleanup) // trusted by nobody
			v, err := NewVerifier(policyFor(is.URL()), Config{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			p, err := v.Authenticate(ctx, is.Token(map[string]any{"sub": "app", "aud": "switchboard"}))
			if err != nil {
				t.Fatalf("good token: %v", err)
			}
			if !p.Allows("chat", OpSend) || !p.Allows("chat", OpGenerateToken) {
				t.Errorf("app may not send or generate tokens on chat")
			}
			if p.Allows("chat", OpClose) || p.Allows("other", OpSend) || p.Allows("chat", OpAdmin) {
				t.Errorf("app got more than its grant")
			}
			ops, err := v.Authenticate(ctx, is.Token(map[string]any{"sub": "alice", "aud": []string{"x", "switchboard"}, "groups": []string{"dev", "ops"}}))
			if err != nil || !ops.Allows("anything", OpAdmin) || ops.Allows("chat", OpSend) {
				t.Errorf("claim grant: %v, admin %v", err, err == nil && ops.Allows("anything", OpAdmin))
			}
			nobody, err := v.Authenticate(ctx, is.Token(map[string]any{"sub": "mallory", "aud": "switchboard"}))
			if err != nil || nobody.Allows("chat", OpSend) {
				t.Errorf("a subject without grants: %v, may send %v", err, err == nil && nobody.Allows("chat", OpSend))
			}

			refused := []struct {
				name, token, want string
			}{
				{"untrusted issuer", other.Token(map[string]any{"sub": "app", "aud": "switchboard"}), "is not trusted"},
				{"wrong audience", is.Token(map[string]any{"sub": "app", "aud": "another-service"}), "audience"},
				{"expired", is.Token(map[string]any{"sub": "app", "aud": "switchboard", "exp": time.Now().Add(-time.Minute).Unix()}), "expired"},
				{"no exp", is.Token(map[string]any{"sub": "app", "aud": "switchboard", "exp": nil}), "no exp"},
				{"not yet valid", is.Token(map[string]any{"sub": "app", "aud": "switchboard", "nbf": time.Now().Add(time.Hour).Unix()}), "nbf"},
				{"unpublished key", is.UnpublishedToken(map[string]any{"sub": "app", "aud": "switchboard"}), "signature"},
				{"no iss", "e30.e30.e30", "no iss"},
				{"garbage", "not a token", "malformed"},
			}
			for _, tc := range refused {
				_, err := v.Authenticate(ctx, tc.token)
				if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: got %v, want ErrUnauthenticated saying %q", tc.name, err, tc.want)
				}
			}
		})
	}
}

// verifiedOnce starts an ES256 issuer and a verifier trusting it, and
// authenticates one token of the issuer's key (returned, with the context
// the test's calls use), so the verifier holds the issuer's keys.
func verifiedOnce(t *testing.T) (*oidctest.Issuer, *Verifier, context.Context, string) {
	t.Helper()
	is := oidctest.New("ES256", t.Cleanup)
	v, err := NewVerifier(policyFor(is.URL()), Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	tok := is.Token(map[string]any{"sub": "app", "aud": "switchboard"})
	if _, err := v.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	return is, v, ctx, tok
}

// TestKeyRotation: a token signed with the issuer's new key verifies
// without a restart (its unknown kid makes the verifier refetch the JWKS),
// and one signed with the retired key no longer does.
func TestKeyRotation(t *testing.T) {
	is, v, ctx, old := verifiedOnce(t)
	claims := map[string]any{"sub": "app", "aud": "switchboard"}
	fetches := is.JWKSFetches()
	if _, err := v.Authenticate(ctx, old); err != nil || is.JWKSFetches() != fetches {
		t.Fatalf("a known key was fetched again (%d fetches, was %d): %v", is.JWKSFetches(), fetches, err)
	}
	is.Rotate()
	if _, err := v.Authenticate(ctx, is.Token(claims)); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if _, err := v.Authenticate(ctx, old); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("token of the retired key: got %v, want ErrUnauthenticated", err)
	}
	if is.Discoveries() != 1 {
		t.Errorf("discovery ran %d times, want once", is.Discoveries())
	}
}

// TestKeyFetchesAreBounded: a token names a trusted issuer and a key id of
// its sender's choosing before anything is verified. A forged signature
// under a key the cache holds fetches nothing, and tokens naming unknown
// keys fetch the JWKS refetchBurst times, then once per refetchEvery,
// however many arrive; each is refused as unauthenticated, and the cached
// keys keep verifying.
func TestKeyFetchesAreBounded(t *testing.T) {
	is, v, ctx, good := verifiedOnce(t)
	claims := map[string]any{"sub": "app", "aud": "switchboard"}
	fetches := is.JWKSFetches()

	// The published key's id, with a signature of another key.
	hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(good, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil || h.Kid == "" {
		t.Fatalf("token header %s: kid %q, %v", hdr, h.Kid, err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged := oidctest.Sign("ES256", h.Kid, other, is.URL(), claims)
	for range 10 {
		if _, err := v.Authenticate(ctx, forged); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("forged signature under a known key: %v, want ErrUnauthenticated", err)
		}
	}
	if got := is.JWKSFetches(); got != fetches {
		t.Fatalf("forged signatures under a known key fetched the JWKS %d times", got-fetches)
	}

	start := time.Now()
	const unknown = 30
	for range unknown {
		if _, err := v.Authenticate(ctx, is.UnpublishedToken(claims)); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("token of an unknown key: %v, want ErrUnauthenticated", err)
		}
	}
	allowed := int64(refetchBurst) + int64(time.Since(start)/refetchEvery) + 1
	if got := is.JWKSFetches() - fetches; got > allowed {
		t.Fatalf("%d tokens of unknown keys fetched the JWKS %d times, want at most %d", unknown, got, allowed)
	}
	if _, err := v.Authenticate(ctx, good); err != nil {
		t.Fatalf("cached key after the flood: %v", err)
	}
}

// TestIssuerDown: a trusted issuer whose discovery cannot be fetched is
// ErrUnavailable (503, retry), not a refused token.
func TestIssuerDown(t *testing.T) {
	is := oidctest.New("RS256", t.Cleanup)
	tok := is.Token(map[string]any{"sub": "app", "aud": "switchboard"})
	v, err := NewVerifier(policyFor(is.URL()), Config{})
	if err != nil {
		t.Fatal(err)
	}
	is.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := v.Authenticate(ctx, tok); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

// TestKeysDown: a token naming a key the cache lacks, while the issuer's
// JWKS cannot be fetched, is ErrUnavailable; the cached keys still verify.
func TestKeysDown(t *testing.T) {
	is := oidctest.New("EdDSA", t.Cleanup)
	v, err := NewVerifier(policyFor(is.URL()), Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	claims := map[string]any{"sub": "app", "aud": "switchboard"}
	tok := is.Token(claims)
	if _, err := v.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	unknown := is.UnpublishedToken(claims)
	is.Close()
	if _, err := v.Authenticate(ctx, unknown); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unknown key with the JWKS down: got %v, want ErrUnavailable", err)
	}
	if _, err := v.Authenticate(ctx, tok); err != nil {
		t.Fatalf("cached key with the JWKS down: %v", err)
	}
}

func TestParsePolicy(t *testing.T) {
	good := `
issuers:
  - issuer: https://token.example.com
    audiences: [switchboard]
    grants:
      - subject: system:serviceaccount:prod:chat-api
        hubs: [chat]
        operations: [send, groups, generateToken]
      - claims: {team: ops}
        hubs: ["*"]
        operations: [admin]
`
	p, err := ParsePolicy([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Issuers[0].Algorithms; len(got) != 3 {
		t.Errorf("default algorithms: got %v", got)
	}
	tests := []struct{ name, policy, want string }{
		{"unknown key", `issuers: [{issuer: "https://a", audiences: [x], grant: []}]`, "not found"},
		{"http elsewhere", `issuers: [{issuer: "http://a.example.com", audiences: [x]}]`, "loopback only"},
		{"no audiences", `issuers: [{issuer: "https://a"}]`, "audiences is empty"},
		{"HS256", `issuers: [{issuer: "https://a", audiences: [x], algorithms: [HS256]}]`, "not supported"},
		{"grant matching all", `issuers: [{issuer: "https://a", audiences: [x], grants: [{hubs: [chat], operations: [send]}]}]`, "set subject or claims"},
		{"bad op", `issuers: [{issuer: "https://a", audiences: [x], grants: [{subject: s, hubs: [chat], operations: [delete]}]}]`, "not an operation"},
		{"bad hub", `issuers: [{issuer: "https://a", audiences: [x], grants: [{subject: s, hubs: ["9x"], operations: [send]}]}]`, "hub name"},
		{"admin on one hub", `issuers: [{issuer: "https://a", audiences: [x], grants: [{subject: s, hubs: [chat], operations: [admin]}]}]`, `hubs is ["*"]`},
		{"twice", `issuers: [{issuer: "https://a", audiences: [x]}, {issuer: "https://a", audiences: [y]}]`, "listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParsePolicy([]byte(tc.policy)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func FuzzPeekIssuer(f *testing.F) {
	f.Add("e30.e30.e30")
	f.Add("a.eyJpc3MiOiJodHRwczovL2EifQ.b")
	f.Fuzz(func(t *testing.T, tok string) {
		iss, err := peekIssuer(tok)
		if err == nil && iss == "" {
			t.Fatal("empty issuer without error")
		}
		if err != nil && !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("error %v does not match ErrUnauthenticated", err)
		}
	})
}
