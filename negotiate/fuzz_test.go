package negotiate

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// FuzzVerify checks that no input panics and that nothing verifies against a
// key the fuzzer cannot know: the verifier's key is fresh random per process
// while the seeds are signed with testKey.
func FuzzVerify(f *testing.F) {
	exp := t0.Add(time.Hour).Unix()
	hs := map[string]any{"alg": "HS256"}
	seeds := []string{
		handToken(f, hs, map[string]any{"exp": exp, "aud": aud, "sub": "s"}, testKey.Secret),
		handToken(f, map[string]any{"alg": "HS256", "kid": "k1"}, map[string]any{"exp": exp}, testKey.Secret),
		rawSeg(`{"alg":"none"}`) + "." + rawSeg(`{"exp":1}`) + ".",
		rawSeg(`{"alg":"HS256"}`) + "." + rawSeg(`null`) + ".AAAA",
		"a.b.c", "..", "", "e30.e30.", strings.Repeat("x", 5000),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	secret := NewAccessKey()
	v := NewVerifier([]AccessKey{secret}, WithClock(fixedClock(t0)))
	real, err := IssueToken(secret, TokenOptions{Audience: aud, UserID: "u", Now: fixedClock(t0)})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := v.Verify(real, aud); err != nil {
		f.Fatalf("genuine token rejected: %v", err)
	}
	realParts := strings.Split(real, ".")

	f.Fuzz(func(t *testing.T, s string) {
		if id, err := v.Verify(s, aud); err == nil {
			t.Fatalf("forged token verified: %q -> %+v", s, id)
		}
		if id, err := v.Verify(s, ""); err == nil {
			t.Fatalf("forged token verified without audience: %q -> %+v", s, id)
		}
		// Swapping in another payload under the genuine header and signature
		// must fail unless the payload is byte-for-byte the original.
		p := base64.RawURLEncoding.EncodeToString([]byte(s))
		if p == realParts[1] {
			return
		}
		if id, err := v.Verify(realParts[0]+"."+p+"."+realParts[2], ""); err == nil {
			t.Fatalf("payload %q verified under the genuine signature -> %+v", s, id)
		}
	})
}

// FuzzParseConnectionString checks that parsing never panics and that any
// accepted string formats to one that parses back to the same value.
func FuzzParseConnectionString(f *testing.F) {
	for _, s := range []string{
		"Endpoint=https://x.service.signalr.net;AccessKey=abc=;Version=1.0;",
		"Endpoint=http://localhost;Port=8888;AccessKey=K;Version=1.0;",
		"endpoint=http://[::1]:1/p/;accesskey=k;keyid=i;version=1.2-x",
		"Endpoint=http://h;AccessKey=k;;;=;a",
		"", ";", "=", "Endpoint=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseConnectionString(s)
		if err != nil {
			return
		}
		if cs.Endpoint == "" || cs.AccessKey == "" || cs.Version == "" {
			t.Fatalf("accepted %q with empty parts: %+v", s, cs)
		}
		back, err := ParseConnectionString(cs.String())
		if err != nil {
			t.Fatalf("reparse of %q (from %q): %v", cs.String(), s, err)
		}
		if back != cs {
			t.Fatalf("round trip of %q: got %+v, want %+v", s, back, cs)
		}
	})
}
