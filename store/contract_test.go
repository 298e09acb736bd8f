package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/store"
)

// instance is one store under test. reopen closes it (DB) or drops it (KV)
// and returns a new instance on the same data, as after a restart; peer
// returns another instance sharing the data, as another node would hold
// (for DB, which one process owns, the same instance).
type instance struct {
	cfg    store.Config
	reopen func() store.Config
	peer   func() store.Config
}

type backend struct {
	name string
	open func(t *testing.T, now func() time.Time) instance
}

var backends = []backend{
	{"bbolt", func(t *testing.T, now func() time.Time) instance {
		path := filepath.Join(t.TempDir(), "switchboard.db")
		open := func() *store.DB {
			db, err := store.Open(path, store.WithClock(now))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return db
		}
		db := open()
		t.Cleanup(func() { _ = db.Close() })
		return instance{
			cfg: db,
			reopen: func() store.Config {
				if err := db.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				db = open()
				return db
			},
			peer: func() store.Config { return db },
		}
	}},
	{"nats-kv", func(t *testing.T, now func() time.Time) instance {
		s := startNATS(t)
		open := func() store.Config { return openKV(t, s, store.WithKVClock(now)) }
		return instance{cfg: open(), reopen: open, peer: open}
	}},
}

func TestContract(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, in instance, clk *testutil.Clock)
	}{
		{"hubs", contractHubs},
		{"upstreams", contractUpstreams},
		{"delete hub cascades", contractDeleteHub},
		{"keys", contractKeys},
		{"user groups", contractUserGroups},
		{"user group expiry", contractExpiry},
		{"restart", contractRestart},
		{"watch", contractWatch},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					clk := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
					tt.run(t, b.open(t, clk.Now), clk)
				})
			}
		})
	}
}

// wantErr fails unless err matches want (nil: no error).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		wantErr(t, what, err, nil)
		return v
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
}

// Names with bytes KV keys do not allow, to prove the encoding.
const (
	oddHub  = "a hub/with.dots*>é"
	oddUser = "user.name/ü>*"
)

func contractHubs(t *testing.T, in instance, clk *testutil.Clock) {
	c := in.cfg
	created := must[store.Hub](t, "CreateHub")(c.CreateHub(t.Context(), store.Hub{Name: "chat", AllowAnonymous: true, AllowedOrigins: []string{"https://x"}}))
	equal(t, "CreatedAt", created.CreatedAt, clk.Now())
	_, err := c.CreateHub(t.Context(), store.Hub{Name: "chat"})
	wantErr(t, "CreateHub duplicate", err, store.ErrExists)
	_, err = c.CreateHub(t.Context(), store.Hub{})
	wantErr(t, "CreateHub empty name", err, store.ErrInvalid)
	_, err = c.PutHub(t.Context(), store.Hub{})
	wantErr(t, "PutHub empty name", err, store.ErrInvalid)
	equal(t, "Hub", must[store.Hub](t, "Hub")(c.Hub(t.Context(), "chat")), created)
	for _, name := range []string{"missing", ""} {
		_, err = c.Hub(t.Context(), name)
		wantErr(t, "Hub("+name+")", err, store.ErrNotFound)
	}

	clk.Advance(time.Minute)
	put := must[store.Hub](t, "PutHub")(c.PutHub(t.Context(), store.Hub{Name: "chat", MaxMessageSize: 100}))
	equal(t, "PutHub CreatedAt", put.CreatedAt, created.CreatedAt)
	equal(t, "PutHub UpdatedAt", put.UpdatedAt, clk.Now())
	equal(t, "Hub after PutHub", must[store.Hub](t, "Hub")(c.Hub(t.Context(), "chat")), put)
	fresh := must[store.Hub](t, "PutHub new")(c.PutHub(t.Context(), store.Hub{Name: oddHub}))
	equal(t, "PutHub new CreatedAt", fresh.CreatedAt, clk.Now())
	must[store.Hub](t, "CreateHub")(c.CreateHub(t.Context(), store.Hub{Name: "B"}))

	var names []string
	for _, h := range must[[]store.Hub](t, "Hubs")(c.Hubs(t.Context())) {
		names = append(names, h.Name)
	}
	equal(t, "Hubs", names, []string{"B", oddHub, "chat"})
}

func upNames(ups []store.Upstream) []string {
	names := []string{}
	for _, u := range ups {
		names = append(names, u.Hub+"/"+u.Name)
	}
	return names
}

func contractUpstreams(t *testing.T, in instance, clk *testutil.Clock) {
	c := in.cfg
	_, err := c.CreateUpstream(t.Context(), store.Upstream{Hub: "chat", Name: "fn"})
	wantErr(t, "CreateUpstream without hub", err, store.ErrNotFound)
	_, err = c.PutUpstream(t.Context(), store.Upstream{Hub: "", Name: "fn"})
	wantErr(t, "PutUpstream empty hub", err, store.ErrNotFound)
	must[store.Hub](t, "CreateHub")(c.CreateHub(t.Context(), store.Hub{Name: "chat"}))
	must[store.Hub](t, "CreateHub")(c.CreateHub(t.Context(), store.Hub{Name: oddHub}))
	_, err = c.CreateUpstream(t.Context(), store.Upstream{Hub: "chat"})
	wantErr(t, "CreateUpstream empty name", err, store.ErrInvalid)

	first := must[store.Upstream](t, "CreateUpstream")(c.CreateUpstream(t.Context(), store.Upstream{Hub: "chat", Name: "z", URLTemplate: "http://z", Secrets: []string{"whsec_1"}}))
	for _, u := range []store.Upstream{{Hub: oddHub, Name: "b.c/d"}, {Hub: "chat", Name: "a"}, {Hub: "chat", Name: "m"}} {
		must[store.Upstream](t, "CreateUpstream")(c.CreateUpstream(t.Context(), u))
	}
	_, err = c.CreateUpstream(t.Context(), store.Upstream{Hub: "chat", Name: "a"})
	wantErr(t, "CreateUpstream duplicate", err, store.ErrExists)
	equal(t, "Upstream", must[store.Upstream](t, "Upstream")(c.Upstream(t.Context(), "chat", "z")), first)
	for _, k := range [][2]string{{"chat", "nope"}, {"nope", "z"}, {"chat", ""}, {"", ""}} {
		_, err = c.Upstream(t.Context(), k[0], k[1])
		wantErr(t, "Upstream missing", err, store.ErrNotFound)
	}

	// Replacing keeps the place and CreatedAt; a new one goes last.
	clk.Advance(time.Second)
	put := must[store.Upstream](t, "PutUpstream")(c.PutUpstream(t.Context(), store.Upstream{Hub: "chat", Name: "z", URLTemplate: "http://z2", Timeout: store.Duration(time.Second)}))
	equal(t, "replaced CreatedAt", put.CreatedAt, first.CreatedAt)
	equal(t, "replaced UpdatedAt", put.UpdatedAt, clk.Now())
	must[store.Upstream](t, "PutUpstream new")(c.PutUpstream(t.Context(), store.Upstream{Hub: "chat", Name: "b"}))
	equal(t, "Upstreams", upNames(must[[]store.Upstream](t, "Upstreams")(c.Upstreams(t.Context(), "chat"))),
		[]string{"chat/z", "chat/a", "chat/m", "chat/b"})
	equal(t, "Upstream after put", must[store.Upstream](t, "Upstream")(c.Upstream(t.Context(), "chat", "z")), put)
	equal(t, "AllUpstreams", upNames(must[[]store.Upstream](t, "AllUpstreams")(c.AllUpstreams(t.Context()))),
		[]string{oddHub + "/b.c/d", "chat/z", "chat/a", "chat/m", "chat/b"})
	equal(t, "Upstreams of unknown hub", len(must[[]store.Upstream](t, "Upstreams")(c.Upstreams(t.Context(), "nope"))), 0)

	// Disable and enable keep the rest.
	wantErr(t, "SetUpstreamDisabled", c.SetUpstreamDisabled(t.Context(), "chat", "a", true, "410 Gone"), nil)
	u := must[store.Upstream](t, "Upstream")(c.Upstream(t.Context(), "chat", "a"))
	if !u.Disabled || u.DisabledReason != "410 Gone" {
		t.Fatalf("disabled upstream = %+v", u)
	}
	wantErr(t, "SetUpstreamDisabled enable", c.SetUpstreamDisabled(t.Context(), "chat", "a", false, "x"), nil)
	u = must[store.Upstream](t, "Upstream")(c.Upstream(t.Context(), "chat", "a"))
	if u.Disabled || u.DisabledReason != "" {
		t.Fatalf("enabled upstream = %+v", u)
	}
	wantErr(t, "SetUpstreamDisabled missing", c.SetUpstreamDisabled(t.Context(), "chat", "nope", true, ""), store.ErrNotFound)

	wantErr(t, "DeleteUpstream", c.DeleteUpstream(t.Context(), "chat", "a"), nil)
	wantErr(t, "DeleteUpstream again", c.DeleteUpstream(t.Context(), "chat", "a"), store.ErrNotFound)
	wantErr(t, "DeleteUpstream empty", c.DeleteUpstream(t.Context(), "chat", ""), store.ErrNotFound)
	must[store.Upstream](t, "CreateUpstream again")(c.CreateUpstream(t.Context(), store.Upstream{Hub: "chat", Name: "a"}))
	equal(t, "Upstreams after delete and create", upNames(must[[]store.Upstream](t, "Upstreams")(c.Upstreams(t.Context(), "chat"))),
		[]string{"chat/z", "chat/m", "chat/b", "chat/a"})
}

func contractDeleteHub(t *testing.T, in instance, _ *testutil.Clock) {
	c := in.cfg
	wantErr(t, "DeleteHub missing", c.DeleteHub(t.Context(), "chat"), store.ErrNotFound)
	wantErr(t, "DeleteHub empty", c.DeleteHub(t.Context(), ""), store.ErrNotFound)
	for _, h := range []string{"chat", "chat2", oddHub} {
		must[store.Hub](t, "CreateHub")(c.CreateHub(t.Context(), store.Hub{Name: h}))
		must[store.Upstream](t, "CreateUpstream")(c.CreateUpstream(t.Context(), store.Upstream{Hub: h, Name: "fn"}))
		wantErr(t, "AddUserToGroup", c.AddUserToGroup(t.Context(), store.UserGroup{Hub: h, User: "u", Group: "g"}), nil)
	}
	wantErr(t, "DeleteHub", c.DeleteHub(t.Context(), "chat"), nil)
	_, err := c.Hub(t.Context(), "chat")
	wantErr(t, "Hub after delete", err, store.ErrNotFound)
	equal(t, "AllUpstreams", upNames(must[[]store.Upstream](t, "AllUpstreams")(c.AllUpstreams(t.Context()))),
		[]string{oddHub + "/fn", "chat2/fn"})
	equal(t, "UserGroups of deleted hub", len(must[[]store.UserGroup](t, "UserGroups")(c.UserGroups(t.Context(), "chat", "u"))), 0)
	equal(t, "AllUserGroups", len(must[[]store.UserGroup](t, "AllUserGroups")(c.AllUserGroups(t.Context()))), 2)
	// A hub created again starts empty.
	must[store.Hub](t, "CreateHub again")(c.CreateHub(t.Context(), store.Hub{Name: "chat"}))
	equal(t, "Upstreams of new hub", len(must[[]store.Upstream](t, "Upstreams")(c.Upstreams(t.Context(), "chat"))), 0)
}

func contractKeys(t *testing.T, in instance, clk *testutil.Clock) {
	c := in.cfg
	_, err := c.AccessKeys(t.Context())
	wantErr(t, "AccessKeys before EnsureKeys", err, store.ErrNotFound)
	_, err = c.AdminKey(t.Context())
	wantErr(t, "AdminKey before EnsureKeys", err, store.ErrNotFound)
	_, _, _, err = c.EnsureKeys(t.Context(), func() store.Key { return store.Key{} }, func() string { return "admin" })
	wantErr(t, "EnsureKeys with an empty key", err, store.ErrInvalid)

	access, admin, created, err := c.EnsureKeys(t.Context(), func() store.Key { return store.Key{ID: "k1", Secret: "s1"} }, func() string { return "adm" })
	wantErr(t, "EnsureKeys", err, nil)
	equal(t, "EnsureKeys", []any{access, admin, created}, []any{[]store.Key{{ID: "k1", Secret: "s1", CreatedAt: clk.Now()}}, "adm", true})
	calls := 0
	again, admin2, created2, err := c.EnsureKeys(t.Context(), func() store.Key { calls++; return store.Key{ID: "k2", Secret: "s2"} }, func() string { calls++; return "adm2" })
	wantErr(t, "EnsureKeys again", err, nil)
	equal(t, "EnsureKeys again", []any{again, admin2, created2, calls}, []any{access, "adm", false, 0})
	equal(t, "AdminKey", must[string](t, "AdminKey")(c.AdminKey(t.Context())), "adm")

	for _, bad := range [][]store.Key{nil, {{ID: "a"}}, {{ID: "a", Secret: "x"}, {ID: "a", Secret: "y"}}} {
		wantErr(t, "SetAccessKeys invalid", c.SetAccessKeys(t.Context(), bad), store.ErrInvalid)
	}
	next := []store.Key{{ID: "k3", Secret: "s3"}, access[0]}
	wantErr(t, "SetAccessKeys", c.SetAccessKeys(t.Context(), next), nil)
	equal(t, "AccessKeys", must[[]store.Key](t, "AccessKeys")(c.AccessKeys(t.Context())), next)
}

func groupsOf(ms []store.UserGroup) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Hub+"|"+m.User+"|"+m.Group)
	}
	return out
}

func contractUserGroups(t *testing.T, in instance, _ *testutil.Clock) {
	c := in.cfg
	for _, bad := range []store.UserGroup{{User: "u", Group: "g"}, {Hub: "h", Group: "g"}, {Hub: "h", User: "u"}} {
		wantErr(t, "AddUserToGroup invalid", c.AddUserToGroup(t.Context(), bad), store.ErrInvalid)
	}
	for _, m := range []store.UserGroup{
		{Hub: "h", User: oddUser, Group: "b"}, {Hub: "h", User: oddUser, Group: "a.b"},
		{Hub: "h", User: "u2", Group: "x"}, {Hub: "a", User: "u", Group: "g"},
		{Hub: "h", User: oddUser, Group: "b"}, // again: replaces
	} {
		wantErr(t, "AddUserToGroup", c.AddUserToGroup(t.Context(), m), nil)
	}
	equal(t, "UserGroups", groupsOf(must[[]store.UserGroup](t, "UserGroups")(c.UserGroups(t.Context(), "h", oddUser))),
		[]string{"h|" + oddUser + "|a.b", "h|" + oddUser + "|b"})
	equal(t, "AllUserGroups", groupsOf(must[[]store.UserGroup](t, "AllUserGroups")(c.AllUserGroups(t.Context()))),
		[]string{"a|u|g", "h|u2|x", "h|" + oddUser + "|a.b", "h|" + oddUser + "|b"})
	wantErr(t, "RemoveUserFromGroup", c.RemoveUserFromGroup(t.Context(), "h", oddUser, "b"), nil)
	wantErr(t, "RemoveUserFromGroup absent", c.RemoveUserFromGroup(t.Context(), "h", oddUser, "nope"), nil)
	wantErr(t, "RemoveUserFromGroup no user", c.RemoveUserFromGroup(t.Context(), "h", "nobody", "b"), nil)
	equal(t, "UserGroups after remove", groupsOf(must[[]store.UserGroup](t, "UserGroups")(c.UserGroups(t.Context(), "h", oddUser))),
		[]string{"h|" + oddUser + "|a.b"})
	wantErr(t, "RemoveUserFromAllGroups", c.RemoveUserFromAllGroups(t.Context(), "h", "u2"), nil)
	wantErr(t, "RemoveUserFromAllGroups absent", c.RemoveUserFromAllGroups(t.Context(), "h", "nobody"), nil)
	equal(t, "AllUserGroups after remove", groupsOf(must[[]store.UserGroup](t, "AllUserGroups")(c.AllUserGroups(t.Context()))),
		[]string{"a|u|g", "h|" + oddUser + "|a.b"})
	equal(t, "UserGroups of nobody", len(must[[]store.UserGroup](t, "UserGroups")(c.UserGroups(t.Context(), "h", "nobody"))), 0)
}

func contractExpiry(t *testing.T, in instance, clk *testutil.Clock) {
	c := in.cfg
	at := clk.Now().Add(time.Minute)
	for _, m := range []store.UserGroup{
		{Hub: "h", User: "u", Group: "short", ExpiresAt: at},
		{Hub: "h", User: "u", Group: "forever"},
		{Hub: "h", User: "v", Group: "short", ExpiresAt: at},
		{Hub: "h", User: "w", Group: "long", ExpiresAt: at.Add(time.Hour)},
	} {
		wantErr(t, "AddUserToGroup", c.AddUserToGroup(t.Context(), m), nil)
	}
	got := must[[]store.UserGroup](t, "UserGroups")(c.UserGroups(t.Context(), "h", "u"))
	equal(t, "UserGroups before expiry", groupsOf(got), []string{"h|u|forever", "h|u|short"})
	equal(t, "ExpiresAt", got[1].ExpiresAt, at)

	clk.Advance(time.Minute) // expiry is at ExpiresAt itself
	equal(t, "UserGroups at expiry", groupsOf(must[[]store.UserGroup](t, "UserGroups")(c.UserGroups(t.Context(), "h", "u"))), []string{"h|u|forever"})
	equal(t, "AllUserGroups at expiry", groupsOf(must[[]store.UserGroup](t, "AllUserGroups")(c.AllUserGroups(t.Context()))),
		[]string{"h|u|forever", "h|w|long"})
	// Renewing revives it.
	wantErr(t, "renew", c.AddUserToGroup(t.Context(), store.UserGroup{Hub: "h", User: "v", Group: "short", ExpiresAt: clk.Now().Add(time.Minute)}), nil)
	n := must[int](t, "PurgeExpiredUserGroups")(c.PurgeExpiredUserGroups(t.Context(), clk.Now()))
	equal(t, "purged", n, 1)
	equal(t, "purged again", must[int](t, "PurgeExpiredUserGroups")(c.PurgeExpiredUserGroups(t.Context(), clk.Now())), 0)
	// Purged records are gone even for a reader whose clock is earlier.
	equal(t, "purge at a later time", must[int](t, "PurgeExpiredUserGroups")(c.PurgeExpiredUserGroups(t.Context(), clk.Now().Add(2*time.Hour))), 2)
	clk.Advance(-time.Hour)
	equal(t, "AllUserGroups after purge", groupsOf(must[[]store.UserGroup](t, "AllUserGroups")(c.AllUserGroups(t.Context()))), []string{"h|u|forever"})
}

func contractRestart(t *testing.T, in instance, _ *testutil.Clock) {
	c := in.cfg
	hub := must[store.Hub](t, "CreateHub")(c.CreateHub(t.Context(), store.Hub{Name: oddHub, AllowAnonymous: true}))
	up1 := must[store.Upstream](t, "CreateUpstream")(c.CreateUpstream(t.Context(), store.Upstream{Hub: oddHub, Name: "z", Events: []string{"connect"}}))
	up2 := must[store.Upstream](t, "CreateUpstream")(c.CreateUpstream(t.Context(), store.Upstream{Hub: oddHub, Name: "a"}))
	access, admin, _, err := c.EnsureKeys(t.Context(), func() store.Key { return store.Key{ID: "k", Secret: "s"} }, func() string { return "adm" })
	wantErr(t, "EnsureKeys", err, nil)
	m := store.UserGroup{Hub: oddHub, User: oddUser, Group: "g"}
	wantErr(t, "AddUserToGroup", c.AddUserToGroup(t.Context(), m), nil)

	r := in.reopen()
	equal(t, "Hubs", must[[]store.Hub](t, "Hubs")(r.Hubs(t.Context())), []store.Hub{hub})
	equal(t, "Upstreams", must[[]store.Upstream](t, "Upstreams")(r.Upstreams(t.Context(), oddHub)), []store.Upstream{up1, up2})
	equal(t, "AccessKeys", must[[]store.Key](t, "AccessKeys")(r.AccessKeys(t.Context())), access)
	equal(t, "AdminKey", must[string](t, "AdminKey")(r.AdminKey(t.Context())), admin)
	equal(t, "UserGroups", must[[]store.UserGroup](t, "UserGroups")(r.UserGroups(t.Context(), oddHub, oddUser)), []store.UserGroup{m})
	up3 := must[store.Upstream](t, "CreateUpstream")(r.CreateUpstream(t.Context(), store.Upstream{Hub: oddHub, Name: "m"}))
	equal(t, "Upstreams after restart", must[[]store.Upstream](t, "Upstreams")(r.Upstreams(t.Context(), oddHub)), []store.Upstream{up1, up2, up3})
	wantErr(t, "Ping", r.Ping(t.Context()), nil)
}

// contractWatch checks that a watcher on another instance (another node, for
// KV) is told of every kind of change.
func contractWatch(t *testing.T, in instance, _ *testutil.Clock) {
	watcher := in.peer()
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan store.Change, 100)
	done := make(chan error, 1)
	go func() { done <- watcher.Watch(ctx, func(c store.Change) { changes <- c }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v, want nil after cancel", err)
		}
	}()
	next := func(want store.Change) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case c := <-changes:
				if c == want {
					return
				}
			case err := <-done:
				t.Fatalf("Watch returned %v while waiting for %+v", err, want)
			case <-timeout:
				t.Fatalf("no change %+v within 10s", want)
			}
		}
	}
	next(store.Change{Kind: store.ChangeAll})

	c := in.cfg
	must[store.Hub](t, "CreateHub")(c.CreateHub(t.Context(), store.Hub{Name: oddHub}))
	next(store.Change{Kind: store.ChangeHubs, Hub: oddHub, Key: oddHub})
	must[store.Upstream](t, "CreateUpstream")(c.CreateUpstream(t.Context(), store.Upstream{Hub: oddHub, Name: "fn.1"}))
	next(store.Change{Kind: store.ChangeUpstreams, Hub: oddHub, Key: "fn.1"})
	wantErr(t, "SetUpstreamDisabled", c.SetUpstreamDisabled(t.Context(), oddHub, "fn.1", true, "gone"), nil)
	next(store.Change{Kind: store.ChangeUpstreams, Hub: oddHub, Key: "fn.1"})
	must[[]store.Key](t, "EnsureKeys")(ensure(t, c))
	next(store.Change{Kind: store.ChangeKeys, Key: "access"})
	wantErr(t, "SetAccessKeys", c.SetAccessKeys(t.Context(), []store.Key{{ID: "k2", Secret: "s"}}), nil)
	next(store.Change{Kind: store.ChangeKeys, Key: "access"})
	wantErr(t, "AddUserToGroup", c.AddUserToGroup(t.Context(), store.UserGroup{Hub: oddHub, User: oddUser, Group: "g"}), nil)
	next(store.Change{Kind: store.ChangeUserGroups, Hub: oddHub, Key: oddUser})
	wantErr(t, "DeleteUpstream", c.DeleteUpstream(t.Context(), oddHub, "fn.1"), nil)
	next(store.Change{Kind: store.ChangeUpstreams, Hub: oddHub, Key: "fn.1"})
	wantErr(t, "DeleteHub", c.DeleteHub(t.Context(), oddHub), nil)
	next(store.Change{Kind: store.ChangeHubs, Hub: oddHub, Key: oddHub})
}

func ensure(t *testing.T, c store.Config) ([]store.Key, error) {
	keys, _, _, err := c.EnsureKeys(t.Context(), func() store.Key { return store.Key{ID: "k", Secret: "s"} }, func() string { return "adm" })
	return keys, err
}
