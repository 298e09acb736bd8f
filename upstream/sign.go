package upstream

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SecretPrefix starts every signing secret, as in Standard Webhooks.
const SecretPrefix = "whsec_"

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// MaxClockSkew is how far a webhook's timestamp may be from the receiver's
// clock before it is refused as a replay.
const MaxClockSkew = 5 * time.Minute

// Errors of signature verification.
var (
	ErrNoSignature     = errors.New("upstream: webhook has no valid signature headers")
	ErrBadSignature    = errors.New("upstream: webhook signature does not match")
	ErrStaleTimestamp  = errors.New("upstream: webhook timestamp is outside the allowed window")
	ErrMalformedSecret = errors.New("upstream: signing secret is malformed")
)

// NewSecret returns a fresh signing secret: "whsec_" and the base64 of 32
// random bytes.
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("upstream: reading random bytes: %v", err))
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// secretKey decodes a "whsec_…" secret into the HMAC key.
func secretKey(secret string) (*signingKey, error) {
	keys.mu.Lock()
	k, ok := keys.m[secret]
	keys.mu.Unlock()
	if ok {
		return k, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(raw) == 0 {
		return nil, ErrMalformedSecret
	}
	k = &signingKey{}
	k.pool.New = func() any { return hmac.New(sha256.New, raw) }
	keys.mu.Lock()
	if len(keys.m) < maxCachedKeys {
		keys.m[secret] = k
	}
	keys.mu.Unlock()
	return k, nil
}

// signingKey is a decoded secret with a pool of keyed HMACs: every webhook
// is signed (and, in the SDK, verified) with one of a handful of configured
// secrets, and decoding the base64 and keying a new HMAC each time showed
// in profiles.
type signingKey struct {
	pool sync.Pool // of hash.Hash, keyed with the secret
}

// keys caches signing keys by secret. Bounded, since Sign and Verify are
// exported and could be handed any number of secrets.
var keys = struct {
	mu sync.Mutex // guards m
	m  map[string]*signingKey
}{m: make(map[string]*signingKey)}

const maxCachedKeys = 1024

// Sign returns the Standard Webhooks signature header value for body: one
// "v1,BASE64" entry per secret, separated by spaces.
func Sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	var sb strings.Builder
	for i, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return "", err
		}
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString("v1,")
		sb.WriteString(base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)))
	}
	return sb.String(), nil
}

func mac(key *signingKey, id string, ts int64, body []byte) []byte {
	h := key.pool.Get().(hash.Hash)
	defer key.pool.Put(h)
	h.Reset()
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a webhook's id, timestamp and signature headers against any of
// secrets. now is the receiver's clock; the timestamp must be within
// MaxClockSkew of it.
func Verify(secrets []string, id, timestamp, signature string, body []byte, now time.Time) error {
	if id == "" || timestamp == "" || signature == "" {
		return ErrNoSignature
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not unix seconds", ErrNoSignature, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return ErrStaleTimestamp
	}
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return err
		}
		want := mac(key, id, ts, body)
		for _, entry := range strings.Fields(signature) {
			version, sig, ok := strings.Cut(entry, ",")
			if !ok || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(sig)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrBadSignature
}
