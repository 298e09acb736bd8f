package negotiate

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// benchToken is a client token as the stock SDKs issue one: aud, exp, iat
// and a user id, signed with a kid.
func benchToken(tb testing.TB) string {
	tb.Helper()
	tok, err := IssueToken(testKey, TokenOptions{Audience: aud, UserID: "alice", Lifetime: time.Hour, Now: fixedClock(t0)})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func BenchmarkVerify(b *testing.B) {
	tok := benchToken(b)
	v := NewVerifier([]AccessKey{{ID: "k0", Secret: "another-secret-0123456789abcdefghij"}, testKey}, WithClock(fixedClock(t0.Add(time.Minute))))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, aud); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyAllocations pins what checking a client token allocates: the
// decoded claims (the map, its keys, strings and boxed numbers, which the
// Identity hands on to webhooks), the Identity and exp's date. The token's
// segments decode into a pooled buffer, the HMAC comes from a per-key pool,
// a header seen before is not decoded again and an audience equal to the
// wanted one needs no URL parsing. Before that work it was 56.
func TestVerifyAllocations(t *testing.T) {
	if testutil.Race {
		t.Skip("the race detector drops pooled items at random")
	}
	tok := benchToken(t)
	v := NewVerifier([]AccessKey{testKey}, WithClock(fixedClock(t0.Add(time.Minute))))
	got := testing.AllocsPerRun(200, func() {
		if _, err := v.Verify(tok, aud); err != nil {
			t.Fatal(err)
		}
	})
	if want := 29.0; got != want {
		t.Errorf("Verify allocates %v times per token, want %v (update the figure and its comment if it fell)", got, want)
	}
}

// TestAudienceEqualToWanted: the shortcut for an aud equal to the wanted
// audience keeps the one-hub rule when the wanted URL itself names two.
func TestAudienceEqualToWanted(t *testing.T) {
	t.Parallel()
	v := NewVerifier([]AccessKey{testKey}, WithClock(fixedClock(t0)))
	tests := []struct {
		name, aud, wantErr string
	}{
		{"client URL", aud, ""},
		{"endpoint without hub", "http://gw.example:8080/client/", ""},
		{"two hubs", "http://gw.example:8080/client/?hub=a&hub=b", "names the hub 2 times"},
		// url.ParseQuery drops a pair with a semicolon: no hub is named.
		{"semicolon", "http://gw.example:8080/client/?hub=a;hub=b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := IssueToken(testKey, TokenOptions{Audience: tt.aud, Now: fixedClock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(tok, tt.aud)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			mustContain(t, err, tt.wantErr)
		})
	}
}

// TestHeaderCache: a remembered header is one whose token verified; a
// forged token cannot add one, and the cache stays bounded.
func TestHeaderCache(t *testing.T) {
	t.Parallel()
	v := NewVerifier([]AccessKey{testKey}, WithClock(fixedClock(t0)))
	exp := t0.Add(time.Hour).Unix()
	forged := handToken(t, map[string]any{"alg": "HS256", "kid": "k1", "x": "forged"}, map[string]any{"exp": exp}, "not-the-key")
	if _, err := v.Verify(forged, ""); err == nil {
		t.Fatal("forged token verified")
	}
	if _, ok := v.headers.get(strings.Split(forged, ".")[0]); ok {
		t.Error("a forged token's header was remembered")
	}
	for i := range maxHeaders + 5 {
		tok := handToken(t, map[string]any{"alg": "HS256", "kid": "k1", "n": i}, map[string]any{"exp": exp}, testKey.Secret)
		for range 2 { // the second time from the cache
			if _, err := v.Verify(tok, ""); err != nil {
				t.Fatalf("token %d: %v", i, err)
			}
		}
	}
	if n := len(*v.headers.m.Load()); n != maxHeaders {
		t.Errorf("headers remembered: got %d, want %d", n, maxHeaders)
	}
	// A remembered header still goes with its kid: another key's token
	// under it fails.
	tok := handToken(t, map[string]any{"alg": "HS256", "kid": "k1", "n": 0}, map[string]any{"exp": exp}, "another-secret")
	mustContain(t, func() error { _, err := v.Verify(tok, ""); return err }(), "signature is invalid")
}
