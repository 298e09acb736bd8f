package negotiate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestClientURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ endpoint, hub, want string }{
		{"http://h:1", "chat", "http://h:1/client/?hub=chat"},
		{"http://h:1/", "chat", "http://h:1/client/?hub=chat"},
		{"https://h/base", "a[1]", "https://h/base/client/?hub=a%5B1%5D"},
		{"http://h", "a b&c", "http://h/client/?hub=a+b%26c"},
	}
	for _, tt := range tests {
		if got := ClientURL(tt.endpoint, tt.hub); got != tt.want {
			t.Errorf("ClientURL(%q, %q): got %q, want %q", tt.endpoint, tt.hub, got, tt.want)
		}
	}
}

func TestNewResponse(t *testing.T) {
	t.Parallel()
	cs, err := ParseConnectionString("Endpoint=http://h;Port=1;AccessKey=" + testKey.Secret + ";KeyId=k1;Version=1.0;")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		user     string
		opts     []ResponseOption
		lifetime time.Duration
		claim    any
	}{
		{"anonymous default lifetime", "", nil, time.Hour, nil},
		{"user with lifetime and claims", "bob", []ResponseOption{WithLifetime(5 * time.Minute), WithClaims(map[string]any{"room": "r1"})}, 5 * time.Minute, "r1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := time.Now().Truncate(time.Second)
			r, err := NewResponse(cs, "chat", tt.user, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if r.URL != "http://h:1/client/?hub=chat" {
				t.Fatalf("URL: got %q, want http://h:1/client/?hub=chat", r.URL)
			}
			id, err := NewVerifier([]AccessKey{testKey}).Verify(r.AccessToken, r.URL)
			if err != nil {
				t.Fatalf("token does not verify against its URL: %v", err)
			}
			if id.UserID != tt.user {
				t.Errorf("UserID: got %q, want %q", id.UserID, tt.user)
			}
			if id.Claims["aud"] != r.URL {
				t.Errorf("aud: got %v, want %q", id.Claims["aud"], r.URL)
			}
			if id.Claims["room"] != tt.claim {
				t.Errorf("room claim: got %v, want %v", id.Claims["room"], tt.claim)
			}
			// Bounds, not speed: exp lies between issue time and now, plus the lifetime.
			if lo, hi := before.Add(tt.lifetime), time.Now().Add(tt.lifetime); id.ExpiresAt.Before(lo) || id.ExpiresAt.After(hi) {
				t.Errorf("ExpiresAt %v not in [%v, %v]", id.ExpiresAt, lo, hi)
			}
			// The token is bound to its hub, exactly: not another hub of the
			// same gateway, not the same name in other case.
			for _, other := range []string{"other", "Chat"} {
				if _, err := NewVerifier([]AccessKey{testKey}).Verify(r.AccessToken, "http://h:1/client/?hub="+other); err == nil {
					t.Errorf("token for hub chat verified for hub %q", other)
				}
			}
			if _, err := NewVerifier([]AccessKey{testKey}).Verify(r.AccessToken, "http://other:1/client/?hub=chat"); err == nil {
				t.Error("token verified against another host")
			}
			b, _ := json.Marshal(r)
			if !strings.HasPrefix(string(b), `{"url":"http://h:1/client/?hub=chat","accessToken":"`) {
				t.Errorf("JSON: got %s", b)
			}
		})
	}
}

func TestNewResponseErrors(t *testing.T) {
	t.Parallel()
	cs := ConnectionString{Endpoint: "http://h", AccessKey: "k"}
	tests := []struct {
		name string
		cs   ConnectionString
		hub  string
		opts []ResponseOption
		want string
	}{
		{"invalid hub", cs, "my-hub", nil, `hub name "my-hub" is invalid`},
		{"empty hub", cs, "", nil, `hub name "" is invalid`},
		{"no endpoint", ConnectionString{AccessKey: "k"}, "chat", nil, "no endpoint"},
		{"no key", ConnectionString{Endpoint: "http://h"}, "chat", nil, "no secret"},
		{"reserved claim", cs, "chat", []ResponseOption{WithClaims(map[string]any{"aud": "x"})}, `claim "aud"`},
		{"negative lifetime", cs, "chat", []ResponseOption{WithLifetime(-time.Minute)}, "negative lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewResponse(tt.cs, tt.hub, "", tt.opts...)
			mustContain(t, err, tt.want)
		})
	}
}

func TestValidHubName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"chat", true},
		{"C", true},
		{"hub_1.v2`x,y[0]", true},
		{"a" + strings.Repeat("b", 127), true},
		{"a" + strings.Repeat("b", 128), false},
		{"", false},
		{"1chat", false},
		{"_chat", false},
		{"my-hub", false},
		{"my hub", false},
		{"hub/x", false},
		{"hübe", false},
	}
	for _, tt := range tests {
		if got := ValidHubName(tt.name); got != tt.want {
			t.Errorf("ValidHubName(%q): got %v, want %v", tt.name, got, tt.want)
		}
	}
}
