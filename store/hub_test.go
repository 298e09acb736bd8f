package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
)

func TestCreateHub(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	db, _ := openTemp(t, WithClock(clk.Now))
	mustCreateHub(t, db, "taken")

	tests := []struct {
		name    string
		hub     Hub
		wantErr error
	}{
		{name: "new", hub: Hub{Name: "chat", AllowAnonymous: true, AllowedOrigins: []string{"https://a.example"}}},
		{name: "duplicate", hub: Hub{Name: "taken"}, wantErr: ErrExists},
		{name: "empty name", hub: Hub{}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.CreateHub(t.Context(), tt.hub)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CreateHub: got error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !got.CreatedAt.Equal(clk.Now()) || !got.UpdatedAt.Equal(clk.Now()) {
				t.Errorf("timestamps: got %v/%v, want both %v", got.CreatedAt, got.UpdatedAt, clk.Now())
			}
			stored, err := db.Hub(t.Context(), tt.hub.Name)
			if err != nil || !hubEqual(stored, got) {
				t.Errorf("Hub(%q): got %+v %v, want %+v", tt.hub.Name, stored, err, got)
			}
		})
	}
}

func TestPutHub(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	db, _ := openTemp(t, WithClock(clk.Now))

	created, err := db.PutHub(t.Context(), Hub{Name: "chat"})
	if err != nil {
		t.Fatal(err)
	}
	if !created.CreatedAt.Equal(clk.Now()) || !created.UpdatedAt.Equal(clk.Now()) {
		t.Errorf("PutHub of a new hub: timestamps %v/%v, want both %v", created.CreatedAt, created.UpdatedAt, clk.Now())
	}
	clk.Advance(time.Minute)
	// A caller-supplied CreatedAt must not override the stored one.
	replaced, err := db.PutHub(t.Context(), Hub{Name: "chat", MaxMessageSize: 4096, CreatedAt: time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if !replaced.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("PutHub replace: CreatedAt got %v, want %v", replaced.CreatedAt, created.CreatedAt)
	}
	if !replaced.UpdatedAt.Equal(clk.Now()) {
		t.Errorf("PutHub replace: UpdatedAt got %v, want %v", replaced.UpdatedAt, clk.Now())
	}
	stored, err := db.Hub(t.Context(), "chat")
	if err != nil || !hubEqual(stored, replaced) || stored.MaxMessageSize != 4096 {
		t.Errorf("Hub after PutHub: got %+v %v, want %+v", stored, err, replaced)
	}
	if _, err := db.PutHub(t.Context(), Hub{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("PutHub with empty name: got %v, want ErrInvalid", err)
	}
}

func TestHubNotFound(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	if _, err := db.Hub(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Hub: got %v, want ErrNotFound", err)
	}
	if err := db.DeleteHub(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteHub: got %v, want ErrNotFound", err)
	}
}

func TestHubsSorted(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	if hubs, err := db.Hubs(t.Context()); err != nil || len(hubs) != 0 {
		t.Errorf("Hubs on empty store: got %v %v, want none", hubs, err)
	}
	for _, name := range []string{"zoo", "alpha", "Mid", "al"} {
		mustCreateHub(t, db, name)
	}
	hubs, err := db.Hubs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hubs {
		got = append(got, h.Name)
	}
	if want := []string{"Mid", "al", "alpha", "zoo"}; !slices.Equal(got, want) {
		t.Errorf("Hubs: got %v, want %v", got, want)
	}
}

func TestDeleteHubCascades(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	// "chat2" shares a prefix with "chat" and must survive its deletion.
	for _, hub := range []string{"chat", "chat2"} {
		mustCreateHub(t, db, hub)
		for _, name := range []string{"a", "b"} {
			if _, err := db.CreateUpstream(t.Context(), Upstream{Hub: hub, Name: name}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.AddUserToGroup(t.Context(), UserGroup{Hub: hub, User: "u", Group: "g"}); err != nil {
			t.Fatal(err)
		}
	}

	if err := db.DeleteHub(t.Context(), "chat"); err != nil {
		t.Fatalf("DeleteHub: %v", err)
	}
	if _, err := db.Hub(t.Context(), "chat"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Hub after delete: got %v, want ErrNotFound", err)
	}
	if ups, err := db.Upstreams(t.Context(), "chat"); err != nil || len(ups) != 0 {
		t.Errorf("Upstreams of deleted hub: got %v %v, want none", upstreamNames(ups), err)
	}
	if ms, err := db.UserGroups(t.Context(), "chat", "u"); err != nil || len(ms) != 0 {
		t.Errorf("UserGroups of deleted hub: got %v %v, want none", ms, err)
	}
	all, err := db.AllUpstreams(t.Context())
	if got, want := upstreamNames(all), []string{"chat2/a", "chat2/b"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("AllUpstreams after delete: got %v %v, want %v", got, err, want)
	}
	if ms, err := db.AllUserGroups(t.Context()); err != nil || len(ms) != 1 || ms[0].Hub != "chat2" {
		t.Errorf("AllUserGroups after delete: got %v %v, want chat2's only", ms, err)
	}
	// A hub created again under the old name starts empty.
	mustCreateHub(t, db, "chat")
	if ups, _ := db.Upstreams(t.Context(), "chat"); len(ups) != 0 {
		t.Errorf("recreated hub has upstreams %v", upstreamNames(ups))
	}
}
