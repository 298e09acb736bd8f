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

	"github.com/switchboard-gw/switchboard/input"
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
	rand.Read(b[:]) // crypto/rand never fails: it crashes the program instead (Go 1.24+)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// Secret sizes Standard Webhooks allows: 24 to 64 random bytes.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// CheckSecret reports whether s is a signing secret in the form the
// gateway accepts from an admin: "whsec_" followed by the standard base64
// (with padding) of MinSecretBytes to MaxSecretBytes bytes, as NewSecret
// makes and Standard Webhooks libraries read. The error wraps
// ErrMalformedSecret and says what is wrong without quoting the secret.
func CheckSecret(s string) error {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return fmt.Errorf("%w: it must start with %q", ErrMalformedSecret, SecretPrefix)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil {
		return fmt.Errorf("%w: after %q comes standard base64 (A-Z a-z 0-9 + / and = padding)", ErrMalformedSecret, SecretPrefix)
	}
	if len(raw) < MinSecretBytes || len(raw) > MaxSecretBytes {
		return fmt.Errorf("%w: it encodes %d bytes; use %d to %d random bytes (NewSecret makes 32)", ErrMalformedSecret, len(raw), MinSecretBytes, MaxSecretBytes)
	}
	return nil
}

// Secrets is a set of decoded signing secrets, the form in which a sender
// signs and a receiver verifies many webhooks: each secret keeps a pool of
// keyed HMACs, since decoding the base64 and keying a new HMAC for every
// webhook showed in profiles. A Secrets is safe for concurrent use.
type Secrets struct {
	keys []*signingKey
}

type signingKey struct {
	pool sync.Pool // of *keyedMAC, keyed with the secret
}

// keyedMAC is a keyed HMAC with the scratch space one signature needs, so
// that signing a webhook allocates nothing but the header value.
type keyedMAC struct {
	h       hash.Hash
	prefix  []byte // "id.timestamp."
	sum     [sha256.Size]byte
	encoded [44]byte // base64 of sum
}

// ParseSecrets decodes "whsec_…" secrets. It fails with ErrMalformedSecret
// naming the index of the first one that is not base64 or is empty; an empty
// list gives a Secrets that signs and verifies nothing.
func ParseSecrets(secrets ...string) (*Secrets, error) {
	s := &Secrets{keys: make([]*signingKey, len(secrets))}
	for i, secret := range secrets {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
		if err != nil || len(raw) == 0 {
			return nil, fmt.Errorf("%w: secrets[%d]", ErrMalformedSecret, i)
		}
		k := &signingKey{}
		k.pool.New = func() any { return &keyedMAC{h: hmac.New(sha256.New, raw)} }
		s.keys[i] = k
	}
	return s, nil
}

// Len is the number of secrets.
func (s *Secrets) Len() int { return len(s.keys) }

// Sign returns the Standard Webhooks signature header value for body: one
// "v1,BASE64" entry per secret, separated by spaces.
func (s *Secrets) Sign(id string, ts time.Time, body []byte) string {
	var sb strings.Builder
	sb.Grow(len(s.keys) * (len("v1,") + base64.StdEncoding.EncodedLen(sha256.Size) + 1))
	for i, key := range s.keys {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString("v1,")
		m := key.get()
		base64.StdEncoding.Encode(m.encoded[:], m.mac(id, ts.Unix(), body))
		sb.Write(m.encoded[:])
		key.pool.Put(m)
	}
	return sb.String()
}

func (k *signingKey) get() *keyedMAC { return k.pool.Get().(*keyedMAC) }

// mac is the HMAC of "id.ts.body", in m's scratch space: valid until m goes
// back to the pool.
func (m *keyedMAC) mac(id string, ts int64, body []byte) []byte {
	m.h.Reset()
	m.prefix = append(m.prefix[:0], id...)
	m.prefix = append(m.prefix, '.')
	m.prefix = strconv.AppendInt(m.prefix, ts, 10)
	m.prefix = append(m.prefix, '.')
	m.h.Write(m.prefix)
	m.h.Write(body)
	return m.h.Sum(m.sum[:0])
}

// Verify checks a webhook's id, timestamp and signature headers against any
// of the secrets. now is the receiver's clock; the timestamp must be within
// MaxClockSkew of it.
func (s *Secrets) Verify(id, timestamp, signature string, body []byte, now time.Time) error {
	ts, err := checkSignatureHeaders(id, timestamp, signature, now)
	if err != nil {
		return err
	}
	return s.verifyMAC(id, ts, signature, body)
}

// verifyMAC is Verify past checkSignatureHeaders: whether signature holds
// an entry that is the MAC of id, ts and body under one of the secrets.
func (s *Secrets) verifyMAC(id string, ts int64, signature string, body []byte) error {
	for _, key := range s.keys {
		m := key.get()
		ok := m.matches(m.mac(id, ts, body), signature)
		key.pool.Put(m)
		if ok {
			return nil
		}
	}
	return ErrBadSignature
}

// maxSignatureHeader bounds the signature header: an entry ("v1," and 44
// characters of base64) per secret the sender signs with, a few during a
// rotation.
const maxSignatureHeader = 1024

// checkSignatureHeaders checks what Verify can without the body, so a
// request that cannot verify is refused before its body is read: the
// headers are present, the timestamp within MaxClockSkew of now, and the
// signature header of a bounded length. It returns the timestamp.
func checkSignatureHeaders(id, timestamp, signature string, now time.Time) (int64, error) {
	if id == "" || timestamp == "" || signature == "" {
		return 0, ErrNoSignature
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: timestamp %s is not unix seconds", ErrNoSignature, input.Quote(timestamp))
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return 0, ErrStaleTimestamp
	}
	if len(signature) > maxSignatureHeader {
		return 0, fmt.Errorf("%w: the signature header is %d bytes, over %d", ErrBadSignature, len(signature), maxSignatureHeader)
	}
	return ts, nil
}

// matches reports whether any "v1,BASE64" entry of signature is want.
func (m *keyedMAC) matches(want []byte, signature string) bool {
	for _, entry := range strings.Fields(signature) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// Sign is ParseSecrets followed by Secrets.Sign, for a single webhook.
func Sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	s, err := ParseSecrets(secrets...)
	if err != nil {
		return "", err
	}
	return s.Sign(id, ts, body), nil
}

// Verify is ParseSecrets followed by Secrets.Verify, for a single webhook.
func Verify(secrets []string, id, timestamp, signature string, body []byte, now time.Time) error {
	s, err := ParseSecrets(secrets...)
	if err != nil {
		return err
	}
	return s.Verify(id, timestamp, signature, body, now)
}
