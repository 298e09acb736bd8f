package negotiate

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// t0 is the fixed instant tests run at.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

var testKey = AccessKey{ID: "k1", Secret: "secret-one-0123456789abcdefghijklmnopq"}

func seg(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// handToken builds header.payload.signature by hand, signing with HMAC-SHA256
// under secret, so tests can craft tokens IssueToken refuses to make.
func handToken(t testing.TB, header, claims any, secret string) string {
	t.Helper()
	signed := seg(t, header) + "." + seg(t, claims)
	return signed + "." + hs256(signed, secret)
}

func hs256(signed, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signed))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func rawSeg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func mustContain(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want one containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("got error %q, want it to contain %q", err, want)
	}
}
