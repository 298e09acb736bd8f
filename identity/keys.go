package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/time/rate"
)

// keysUnavailable marks, in the text of a verification error, that the
// issuer's keys could not be fetched: go-oidc formats (%v) rather than
// wraps the key set's error, so the text is all that reaches Authenticate.
const keysUnavailable = "issuer keys unavailable"

// maxJWKS bounds a JWKS document; real ones are a few KiB.
const maxJWKS = 1 << 20

// Fetches for tokens naming a key the cache lacks: refetchBurst at once,
// then one per refetchEvery. Anyone can send a token that names a trusted
// issuer (public) and a key id of their choosing, so without a bound every
// such token made the gateway fetch the issuer's JWKS, and the issuer
// might throttle the gateway for it. A rotation is picked up by the first
// token of the new key; only under a flood of such tokens does a token of
// a new key wait for the next allowed fetch.
const (
	refetchEvery = 10 * time.Second
	refetchBurst = 3
	fetchTimeout = 10 * time.Second
)

// remoteKeys is an issuer's JWKS, fetched when a token names a key it does
// not hold (the OpenID Connect way to pick up a rotation), within
// refetchEvery, and cached otherwise. It replaces go-oidc's RemoteKeySet, which could hand a caller
// the result of a fetch that ended just before the caller looked, so a
// token of a key rotated in at that moment was refused: here a fetch
// counts only if it started after the caller saw the cache miss.
//
// Safe for concurrent use; at most one fetch runs at a time, in the
// goroutine of the request that needed it.
type remoteKeys struct {
	url    string
	client *http.Client
	algs   []jose.SignatureAlgorithm

	refetches *rate.Limiter // see refetchEvery

	mu       sync.Mutex // guards the fields below
	keys     []jose.JSONWebKey
	gen      uint64        // completed fetches
	fetching chan struct{} // closed when the running fetch ends; nil when none runs
	lastErr  error         // of the last fetch
}

func newRemoteKeys(url string, client *http.Client, algs []string) *remoteKeys {
	r := &remoteKeys{url: url, client: client, refetches: rate.NewLimiter(rate.Every(refetchEvery), refetchBurst)}
	for _, a := range algs {
		r.algs = append(r.algs, jose.SignatureAlgorithm(a))
	}
	return r
}

// VerifySignature implements oidc.KeySet: it returns the payload of a
// token signed by one of the issuer's keys.
func (r *remoteKeys) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, r.algs) // a JWT is compact-serialized; the JSON form is refused
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("the token has %d signatures, want 1", len(jws.Signatures))
	}
	kid := jws.Signatures[0].Header.KeyID
	r.mu.Lock()
	keys, gen := r.keys, r.gen
	r.mu.Unlock()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if kid != "" && slices.ContainsFunc(keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid }) {
		// The key is known and the signature is not its: fetching the
		// keys again would not change that.
		return nil, fmt.Errorf("the issuer's key %q does not verify the signature", kid)
	}
	keys, err = r.refresh(ctx, gen)
	switch {
	case errors.Is(err, errRefetchLimited):
		return nil, fmt.Errorf("no key %q among the issuer's keys verifies the signature, and they are fetched again at most every %s; retry then if the key is new", kid, refetchEvery)
	case err != nil:
		return nil, fmt.Errorf("%s: %v", keysUnavailable, err)
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if kid != "" {
		return nil, fmt.Errorf("no key %q in the issuer's JWKS verifies the signature", kid)
	}
	return nil, errors.New("no key in the issuer's JWKS verifies the signature")
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refresh returns keys fetched after the caller saw generation seen: those
// of a fetch that completed since, of the running fetch, or of a new one.
func (r *remoteKeys) refresh(ctx context.Context, seen uint64) ([]jose.JSONWebKey, error) {
	r.mu.Lock()
	if r.gen > seen && r.lastErr == nil {
		keys := r.keys
		r.mu.Unlock()
		return keys, nil
	}
	if wait := r.fetching; wait != nil {
		r.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.keys, r.lastErr
	}
	if !r.refetches.Allow() {
		r.mu.Unlock()
		return nil, errRefetchLimited
	}
	done := make(chan struct{})
	r.fetching = done
	r.mu.Unlock()

	// The fetch serves every request waiting on done, so the one that
	// started it going away must not end it.
	fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	keys, err := r.fetch(fetchCtx) // outside the lock; others wait on done
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.keys = keys
	}
	r.gen++
	r.lastErr, r.fetching = err, nil
	close(done)
	return r.keys, err
}

// errRefetchLimited: the keys were not fetched again, since refetches
// used up its allowance.
var errRefetchLimited = errors.New("identity: keys fetched too recently")

func (r *remoteKeys) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s answered %s", r.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", r.url, err)
	}
	if len(body) > maxJWKS {
		return nil, fmt.Errorf("GET %s: the JWKS is over %d bytes", r.url, maxJWKS)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("GET %s: not a JWKS: %v", r.url, err)
	}
	return set.Keys, nil
}
