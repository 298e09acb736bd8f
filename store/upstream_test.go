package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
)

func TestCreateUpstream(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	db, _ := openTemp(t, WithClock(clk.Now))
	mustCreateHub(t, db, "chat")
	if _, err := db.CreateUpstream(t.Context(), Upstream{Hub: "chat", Name: "taken"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		up      Upstream
		wantErr error
	}{
		{name: "new", up: Upstream{Hub: "chat", Name: "fn", URLTemplate: "http://fn/{event}", Events: []string{"connect", "message:*"}, Timeout: Duration(time.Second), Secrets: []string{"whsec_b", "whsec_a"}}},
		{name: "duplicate", up: Upstream{Hub: "chat", Name: "taken"}, wantErr: ErrExists},
		{name: "missing hub", up: Upstream{Hub: "nope", Name: "fn"}, wantErr: ErrNotFound},
		{name: "empty name", up: Upstream{Hub: "chat"}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.CreateUpstream(t.Context(), tt.up)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CreateUpstream: got error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !got.CreatedAt.Equal(clk.Now()) || !got.UpdatedAt.Equal(clk.Now()) {
				t.Errorf("timestamps: got %v/%v, want both %v", got.CreatedAt, got.UpdatedAt, clk.Now())
			}
			stored, err := db.Upstream(t.Context(), tt.up.Hub, tt.up.Name)
			if err != nil || !upstreamEqual(stored, got) {
				t.Errorf("Upstream: got %+v %v, want %+v", stored, err, got)
			}
		})
	}
}

func upstreamEqual(a, b Upstream) bool {
	return a.Hub == b.Hub && a.Name == b.Name && a.URLTemplate == b.URLTemplate && slices.Equal(a.Events, b.Events) &&
		a.Timeout == b.Timeout && slices.Equal(a.Secrets, b.Secrets) && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func TestUpstreamOrderAndReplace(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	db, _ := openTemp(t, WithClock(clk.Now))
	mustCreateHub(t, db, "chat")
	for _, name := range []string{"c", "a", "b"} {
		clk.Advance(time.Second)
		if _, err := db.CreateUpstream(t.Context(), Upstream{Hub: "chat", Name: name, URLTemplate: "http://old"}); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := db.Upstream(t.Context(), "chat", "c")

	clk.Advance(time.Minute)
	replaced, err := db.PutUpstream(t.Context(), Upstream{Hub: "chat", Name: "c", URLTemplate: "http://new"})
	if err != nil {
		t.Fatal(err)
	}
	if !replaced.CreatedAt.Equal(first.CreatedAt) || !replaced.UpdatedAt.Equal(clk.Now()) {
		t.Errorf("PutUpstream replace: timestamps %v/%v, want %v/%v", replaced.CreatedAt, replaced.UpdatedAt, first.CreatedAt, clk.Now())
	}
	if _, err := db.PutUpstream(t.Context(), Upstream{Hub: "chat", Name: "d"}); err != nil {
		t.Fatalf("PutUpstream create: %v", err)
	}
	if _, err := db.PutUpstream(t.Context(), Upstream{Hub: "nope", Name: "d"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutUpstream on missing hub: got %v, want ErrNotFound", err)
	}

	ups, err := db.Upstreams(t.Context(), "chat")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := upstreamNames(ups), []string{"chat/c", "chat/a", "chat/b", "chat/d"}; !slices.Equal(got, want) {
		t.Errorf("Upstreams: got %v, want %v (replacing keeps the place)", got, want)
	}
	if ups[0].URLTemplate != "http://new" {
		t.Errorf("replaced upstream URL: got %q, want http://new", ups[0].URLTemplate)
	}

	if err := db.DeleteUpstream(t.Context(), "chat", "a"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ hub, name string }{{"chat", "a"}, {"chat", "zz"}, {"nope", "c"}} {
		if err := db.DeleteUpstream(t.Context(), tt.hub, tt.name); !errors.Is(err, ErrNotFound) {
			t.Errorf("DeleteUpstream(%q, %q): got %v, want ErrNotFound", tt.hub, tt.name, err)
		}
		if _, err := db.Upstream(t.Context(), tt.hub, tt.name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Upstream(%q, %q): got %v, want ErrNotFound", tt.hub, tt.name, err)
		}
	}
	ups, _ = db.Upstreams(t.Context(), "chat")
	if got, want := upstreamNames(ups), []string{"chat/c", "chat/b", "chat/d"}; !slices.Equal(got, want) {
		t.Errorf("Upstreams after delete: got %v, want %v", got, want)
	}
}

func TestAllUpstreams(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	// "b" is shorter than "aa", so it sorts first in key order; the result
	// must still be by hub name.
	for _, hub := range []string{"b", "aa"} {
		mustCreateHub(t, db, hub)
	}
	for _, u := range []Upstream{{Hub: "b", Name: "2"}, {Hub: "aa", Name: "9"}, {Hub: "b", Name: "1"}, {Hub: "aa", Name: "3"}} {
		if _, err := db.CreateUpstream(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.AllUpstreams(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := upstreamNames(all), []string{"aa/9", "aa/3", "b/2", "b/1"}; !slices.Equal(got, want) {
		t.Errorf("AllUpstreams: got %v, want %v", got, want)
	}
}
