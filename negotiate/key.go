package negotiate

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
)

// AccessKey is one HMAC key. Two may be active at once (rotation); ID goes
// in the JWT "kid" header so a verifier knows which one to try.
type AccessKey struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// NewAccessKey returns a fresh key: a 16-hex-character ID and a secret of 32
// random bytes in unpadded base64url (43 characters).
func NewAccessKey() AccessKey {
	var id [8]byte
	var secret [32]byte
	rand.Read(id[:])     // crypto/rand never fails: it crashes the program instead (Go 1.24+)
	rand.Read(secret[:]) // crypto/rand never fails: it crashes the program instead (Go 1.24+)
	return AccessKey{
		ID:     hex.EncodeToString(id[:]),
		Secret: base64.RawURLEncoding.EncodeToString(secret[:]),
	}
}
