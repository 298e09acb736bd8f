package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Secrets at rest. The admin key is only ever compared, so the store keeps
// its SHA-256 hash (HashAdminKey) and never the key. Access key secrets and
// upstream signing secrets are used as they are (to sign and verify), so
// they are sealed with AES-256-GCM when the store is opened with a
// SecretsKey (WithSecrets, WithKVSecrets), and kept in clear otherwise.
//
// A sealed value is "sbsealed:v1:KID:BASE64URL(nonce || ciphertext)", where
// KID names the key (SecretsKey.ID) and the additional data binds it to its
// record (the access key's id; the upstream's hub and name), so a sealed
// value copied into another record does not open.

// SecretsKey is a key that seals secrets at rest (AES-256-GCM).
type SecretsKey [32]byte

// NewSecretsKey returns a random key.
func NewSecretsKey() SecretsKey {
	var k SecretsKey
	rand.Read(k[:]) // crypto/rand never fails: it crashes the program instead (Go 1.24+)
	return k
}

// ParseSecretsKey reads a key written as the standard base64 of 32 bytes
// (what SecretsKey.Encode writes, and `openssl rand -base64 32`);
// surrounding white space is ignored.
func ParseSecretsKey(text string) (SecretsKey, error) {
	var k SecretsKey
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("%w: a secrets key is the base64 of 32 random bytes (openssl rand -base64 32)", ErrInvalid)
	}
	copy(k[:], b)
	return k, nil
}

// Encode writes k as ParseSecretsKey reads it.
func (k SecretsKey) Encode() string { return base64.StdEncoding.EncodeToString(k[:]) }

// ID names k in sealed values and messages without revealing it: 8 hex
// digits of a hash of the key.
func (k SecretsKey) ID() string {
	h := sha256.Sum256(append([]byte("switchboard secrets key id\x00"), k[:]...))
	return hex.EncodeToString(h[:4])
}

// SecretsKeys is how a store keeps secrets at rest.
type SecretsKeys struct {
	// Current seals every secret written, and Reseal seals again every
	// secret not sealed with it. Nil writes secrets in clear (and Reseal
	// opens sealed ones, with Old).
	Current *SecretsKey
	// Old keys open secrets sealed with them (during a rotation); they
	// never seal.
	Old []SecretsKey
}

// ErrSecretsKey reports a sealed secret the store cannot open: it was
// sealed with a key the store was not given, or the key does not match.
var ErrSecretsKey = errors.New("store: secret sealed with a key this store was not given")

const sealedPrefix = "sbsealed:v1:"

// sealer seals and opens secrets with SecretsKeys. A nil *sealer keeps
// everything in clear and opens nothing sealed.
type sealer struct {
	current    string // id of the sealing key; "" when secrets are kept in clear
	aeads      map[string]cipher.AEAD
	currentKey cipher.AEAD
}

func newSealer(k SecretsKeys) *sealer {
	if k.Current == nil && len(k.Old) == 0 {
		return nil
	}
	s := &sealer{aeads: map[string]cipher.AEAD{}}
	add := func(key SecretsKey) cipher.AEAD {
		block, _ := aes.NewCipher(key[:]) // 32 bytes: never fails
		aead, _ := cipher.NewGCM(block)   // standard nonce and tag: never fails
		s.aeads[key.ID()] = aead
		return aead
	}
	for _, o := range k.Old {
		add(o)
	}
	if k.Current != nil {
		s.current, s.currentKey = k.Current.ID(), add(*k.Current)
	}
	return s
}

func isSealed(v string) bool { return strings.HasPrefix(v, sealedPrefix) }

// seal returns plain sealed with the current key, or plain when there is
// none.
func (s *sealer) seal(plain, aad string) string {
	if s == nil || s.currentKey == nil || plain == "" {
		return plain
	}
	nonce := make([]byte, s.currentKey.NonceSize(), s.currentKey.NonceSize()+len(plain)+s.currentKey.Overhead())
	rand.Read(nonce)
	out := s.currentKey.Seal(nonce, nonce, []byte(plain), []byte(aad))
	return sealedPrefix + s.current + ":" + base64.RawURLEncoding.EncodeToString(out)
}

// open returns the plaintext of a stored value: a value in clear as it is,
// a sealed one opened with the key it names.
func (s *sealer) open(stored, aad string) (string, error) {
	if !isSealed(stored) {
		return stored, nil
	}
	kid, data, ok := strings.Cut(strings.TrimPrefix(stored, sealedPrefix), ":")
	if !ok {
		return "", fmt.Errorf("%w: malformed sealed value", ErrSecretsKey)
	}
	var aead cipher.AEAD
	if s != nil {
		aead = s.aeads[kid]
	}
	if aead == nil {
		return "", fmt.Errorf("%w: sealed with secrets key %s", ErrSecretsKey, kid)
	}
	raw, err := base64.RawURLEncoding.DecodeString(data)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", fmt.Errorf("%w: malformed sealed value (key %s)", ErrSecretsKey, kid)
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(aad))
	if err != nil {
		return "", fmt.Errorf("%w: sealed value does not open with secrets key %s (altered, or moved from another record)", ErrSecretsKey, kid)
	}
	return string(plain), nil
}

// current reports whether a stored value is in the form seal writes now:
// sealed with the current key, or in clear when there is none.
func (s *sealer) isCurrent(stored string) bool {
	if stored == "" {
		return true
	}
	if s == nil || s.currentKey == nil {
		return !isSealed(stored)
	}
	return strings.HasPrefix(stored, sealedPrefix+s.current+":")
}

// reseal returns stored in the current form, and whether that changed it.
func (s *sealer) reseal(stored, aad string) (string, bool, error) {
	if s.isCurrent(stored) {
		return stored, false, nil
	}
	plain, err := s.open(stored, aad)
	if err != nil {
		return "", false, err
	}
	return s.seal(plain, aad), true, nil
}

func accessKeyAAD(id string) string { return "switchboard access key\x00" + id }

func upstreamAAD(hub, name string) string {
	return "switchboard upstream secret\x00" + hub + "\x00" + name
}

// sealKeys returns keys as stored: secrets sealed.
func (s *sealer) sealKeys(keys []Key) []Key {
	out := make([]Key, len(keys))
	for i, k := range keys {
		k.Secret = s.seal(k.Secret, accessKeyAAD(k.ID))
		out[i] = k
	}
	return out
}

// openKeys opens stored keys' secrets in place.
func (s *sealer) openKeys(keys []Key) error {
	for i := range keys {
		plain, err := s.open(keys[i].Secret, accessKeyAAD(keys[i].ID))
		if err != nil {
			return fmt.Errorf("access key %s: %w", keys[i].ID, err)
		}
		keys[i].Secret = plain
	}
	return nil
}

// sealUpstream returns u as stored: signing secrets sealed.
func (s *sealer) sealUpstream(u Upstream) Upstream {
	if len(u.Secrets) > 0 {
		sealed := make([]string, len(u.Secrets))
		for i, sec := range u.Secrets {
			sealed[i] = s.seal(sec, upstreamAAD(u.Hub, u.Name))
		}
		u.Secrets = sealed
	}
	u.OAuth2 = s.sealOAuth2(u)
	return u
}

// openUpstream opens a stored upstream's secrets in place.
func (s *sealer) openUpstream(u *Upstream) error {
	if err := s.openOAuth2(u); err != nil {
		return fmt.Errorf("upstream %q of hub %q: OAuth2 client secret: %w", u.Name, u.Hub, err)
	}
	if len(u.Secrets) == 0 {
		return nil
	}
	plain := make([]string, len(u.Secrets))
	for i, sec := range u.Secrets {
		p, err := s.open(sec, upstreamAAD(u.Hub, u.Name))
		if err != nil {
			return fmt.Errorf("upstream %q of hub %q: %w", u.Name, u.Hub, err)
		}
		plain[i] = p
	}
	u.Secrets = plain
	return nil
}

// resealKeys brings stored keys to the current form; changed reports
// whether any was rewritten.
func (s *sealer) resealKeys(keys []Key) (changed bool, err error) {
	for i := range keys {
		v, c, err := s.reseal(keys[i].Secret, accessKeyAAD(keys[i].ID))
		if err != nil {
			return false, fmt.Errorf("access key %s: %w", keys[i].ID, err)
		}
		keys[i].Secret, changed = v, changed || c
	}
	return changed, nil
}

// resealUpstream brings a stored upstream's secrets to the current form.
func (s *sealer) resealUpstream(u *Upstream) (changed bool, err error) {
	if changed, err = s.resealOAuth2(u); err != nil {
		return false, fmt.Errorf("upstream %q of hub %q: OAuth2 client secret: %w", u.Name, u.Hub, err)
	}
	for i := range u.Secrets {
		v, c, err := s.reseal(u.Secrets[i], upstreamAAD(u.Hub, u.Name))
		if err != nil {
			return false, fmt.Errorf("upstream %q of hub %q: %w", u.Name, u.Hub, err)
		}
		u.Secrets[i], changed = v, changed || c
	}
	return changed, nil
}

// adminHashPrefix starts a stored admin key hash. Stores written before
// hashing hold the key itself, which never starts so.
const adminHashPrefix = "sha256:"

// HashAdminKey is the form the store keeps the admin key in. The admin key
// is 24 random bytes (192 bits), so one SHA-256 is as strong as a slow
// password hash would be against guessing, and keeps every admin request's
// check cheap; a slow KDF only helps keys people choose.
func HashAdminKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return adminHashPrefix + base64.RawURLEncoding.EncodeToString(h[:])
}

// AdminKeyMatches reports, in constant time, whether key is the admin key
// whose stored form (AdminKeyHash) is stored.
func AdminKeyMatches(stored, key string) bool {
	if stored == "" || key == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(adminHash(stored)), []byte(HashAdminKey(key))) == 1
}

// adminHash is the hash of a stored admin key: as stored, or made from a
// key stored in clear by an earlier version (Reseal replaces those).
func adminHash(stored string) string {
	if strings.HasPrefix(stored, adminHashPrefix) {
		return stored
	}
	return HashAdminKey(stored)
}
