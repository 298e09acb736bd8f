// Package oidctest is a real OpenID Connect issuer for tests: an HTTP
// server on 127.0.0.1 serving a discovery document and a JWKS, with its own
// key pairs (RS256, ES256 or EdDSA), that signs tokens and rotates its keys
// on demand. It speaks the protocol over real HTTP, so the code under test
// discovers and fetches keys exactly as it does from a production issuer.
//
// An Issuer is safe for concurrent use.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Issuer is a running test issuer.
type Issuer struct {
	srv *httptest.Server
	alg string

	mu   sync.Mutex // guards the fields below
	keys []key      // published; keys[0] signs
	seq  int

	discoveries, jwksFetches atomic.Int64
}

type key struct {
	id   string
	priv crypto.Signer
}

// New starts an issuer signing with alg ("RS256", "ES256" or "EdDSA") and
// closes it when the test ends (through cleanup, e.g. t.Cleanup).
func New(alg string, cleanup func(func())) *Issuer {
	is := &Issuer{alg: alg}
	is.keys = []key{is.newKey()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.discoveries.Add(1)
		writeJSON(w, map[string]any{
			"issuer":                                is.URL(),
			"jwks_uri":                              is.URL() + "/keys",
			"authorization_endpoint":                is.URL() + "/authorize",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{alg},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		is.jwksFetches.Add(1)
		is.mu.Lock()
		set := jose.JSONWebKeySet{}
		for _, k := range is.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.id, Algorithm: alg, Use: "sig"})
		}
		is.mu.Unlock()
		writeJSON(w, set)
	})
	is.srv = httptest.NewServer(mux)
	cleanup(is.srv.Close)
	return is
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// URL is the issuer's identifier (iss) and discovery base.
func (is *Issuer) URL() string { return is.srv.URL }

// Close stops the server: discovery and key fetches fail from then on.
func (is *Issuer) Close() { is.srv.Close() }

// Discoveries and JWKSFetches count the requests served.
func (is *Issuer) Discoveries() int64 { return is.discoveries.Load() }

// JWKSFetches counts the JWKS requests served.
func (is *Issuer) JWKSFetches() int64 { return is.jwksFetches.Load() }

func (is *Issuer) newKey() key {
	is.seq++
	id := fmt.Sprintf("%s-key-%d", is.alg, is.seq)
	switch is.alg {
	case "RS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return key{id, k}
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return key{id, k}
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return key{id, k}
	}
	panic("oidctest: unsupported algorithm " + is.alg)
}

// Rotate makes a new signing key and publishes only it: tokens signed with
// the old key no longer verify once a verifier refetches the keys.
func (is *Issuer) Rotate() {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = []key{is.newKey()}
}

// Token signs claims with the current key. iss is set to the issuer's URL
// and exp to an hour from now unless claims set them.
func (is *Issuer) Token(claims map[string]any) string {
	is.mu.Lock()
	k := is.keys[0]
	is.mu.Unlock()
	return Sign(is.alg, k.id, k.priv, is.URL(), claims)
}

// UnpublishedToken signs claims with a fresh key the issuer does not
// publish, under a key id the JWKS does not hold.
func (is *Issuer) UnpublishedToken(claims map[string]any) string {
	is.mu.Lock()
	k := is.newKey()
	is.mu.Unlock()
	return Sign(is.alg, k.id+"-unpublished", k.priv, is.URL(), claims)
}

// Sign makes a token as an issuer at iss would, signing with priv.
func Sign(alg, kid string, priv crypto.Signer, iss string, claims map[string]any) string {
	mc := jwt.MapClaims{"iss": iss, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for k, v := range claims {
		if v == nil {
			delete(mc, k) // a nil value leaves the claim out
			continue
		}
		mc[k] = v
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), mc)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(priv)
	if err != nil {
		panic(err)
	}
	return s
}
