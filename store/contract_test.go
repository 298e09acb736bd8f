package store_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/store"
)

// instance is one store under test. reopen closes it (DB) or drops it (KV)
// and returns a new instance on the same data, as after a restart;
// reopenWith does so with other secrets keys; peer returns another instance
// sharing the data, as another node would hold (for DB, which one process
// owns, the same instance). stored returns every byte the store keeps on
// disk: the bbolt file, or the JetStream server's files.
type instance struct {
	cfg        store.Config
	reopen     func() store.Config
	reopenWith func(store.SecretsKeys) store.Config
	peer       func() store.Config
	stored     func() []byte
}

type backend struct {
	name string
	open func(t *testing.T, now func() time.Time, keys store.SecretsKeys) instance
}

var backends = []backend{
	{"bbolt", func(t *testing.T, now func() time.Time, keys store.SecretsKeys) instance {
		path := filepath.Join(t.TempDir(), "switchboard.db")
		open := func(k store.SecretsKeys) *store.DB {
			db, err := store.Open(path, store.WithClock(now), store.WithSecrets(k))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return db
		}
		db := open(keys)
		t.Cleanup(func() { _ = db.Close() })
		reopen := func(k store.SecretsKeys) store.Config {
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			db = open(k)
			return db
		}
		return instance{
			cfg:        db,
			reopen:     func() store.Config { return reopen(keys) },
			reopenWith: reopen,
			peer:       func() store.Config { return db },
			stored:     func() []byte { return readTree(t, path) },
		}
	}},
	{"nats-kv", func(t *testing.T, now func() time.Time, keys store.SecretsKeys) instance {
		dir := t.TempDir()
		s, err := natsembed.Start(natsembed.Options{StoreDir: dir})
		if err != nil {
			t.Fatalf("start nats: %v", err)
		}
		t.Cleanup(s.Shutdown)
		open := func(k store.SecretsKeys) store.Config {
			return openKV(t, s, store.WithKVClock(now), store.WithKVSecrets(k))
		}
		return instance{
			cfg:        open(keys),
			reopen:     func() store.Config { return open(keys) },
			reopenWith: open,
			peer:       func() store.Config { return open(keys) },
			stored:     func() []byte { return readTree(t, dir) },
		}
	}},
}

// readTree returns the bytes of the file at root, or of every file under
// it.
func readTree(t *testing.T, root string) []byte {
	t.Helper()
	var all []byte
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		all = append(all, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// testSecretsKey is a fixed secrets key for the sealed runs of the suite.
func testSecretsKey(n byte) store.SecretsKey {
	var k store.SecretsKey
	for i := range k {
		k[i] = n + byte(i)
	}
	return k
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
	sealing := testSecretsKey(100)
	for _, b := range backends {
		// Every case runs on a store that keeps secrets in clear and on one
		// that seals them: sealing changes nothing a caller sees.
		for _, mode := range []struct {
			name string
			keys store.SecretsKeys
		}{{"", store.SecretsKeys{}}, {" sealed", store.SecretsKeys{Current: &sealing}}} {
			t.Run(b.name+mode.name, func(t *testing.T) {
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						clk := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
						tt.run(t, b.open(t, clk.Now, mode.keys), clk)
					})
				}
			})
		}
		t.Run(b.name+" secrets", func(t *testing.T) {
			for _, tt := range []struct {
				name string
				run  func(t *testing.T, in instance, clk *testutil.Clock)
			}{
				{"at rest", contractSecretsAtRest},
				{"reseal and rotate", contractReseal},
			} {
				t.Run(tt.name, func(t *testing.T) {
					clk := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
					tt.run(t, b.open(t, clk.Now, store.SecretsKeys{}), clk)
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
	created := must[store.Hub](t, "CreateHub")(c.CreateHub(t.Context(), store.Hub{Name: "chat", AllowAnonymous: true, AllowedOrigins: []string{"https://x"},
		Transports: []string{"ServerSentEvents", "LongPolling"}}))
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
	put := must[store.Hub](t, "PutHub")(c.PutHub(t.Context(), store.Hub{Name: "chat", MaxMessageSize: 100, Transports: []string{"WebSockets"}}))
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
	_, err = c.AdminKeyHash(t.Context())
	wantErr(t, "AdminKeyHash before EnsureKeys", err, store.ErrNotFound)
	_, _, _, err = c.EnsureKeys(t.Context(), func() store.Key { return store.Key{} }, func() string { return "admin" })
	wantErr(t, "EnsureKeys with an empty key", err, store.ErrInvalid)

	access, admin, created, err := c.EnsureKeys(t.Context(), func() store.Key { return store.Key{ID: "k1", Secret: "s1"} }, func() string { return "adm" })
	wantErr(t, "EnsureKeys", err, nil)
	equal(t, "EnsureKeys", []any{access, admin, created}, []any{[]store.Key{{ID: "k1", Secret: "s1", CreatedAt: clk.Now()}}, "adm", true})
	calls := 0
	again, admin2, created2, err := c.EnsureKeys(t.Context(), func() store.Key { calls++; return store.Key{ID: "k2", Secret: "s2"} }, func() string { calls++; return "adm2" })
	wantErr(t, "EnsureKeys again", err, nil)
	// The admin key is shown once, when created: the store keeps its hash.
	equal(t, "EnsureKeys again", []any{again, admin2, created2, calls}, []any{access, "", false, 0})
	hash := must[string](t, "AdminKeyHash")(c.AdminKeyHash(t.Context()))
	equal(t, "AdminKeyHash", []bool{store.AdminKeyMatches(hash, "adm"), store.AdminKeyMatches(hash, "adm2"), strings.Contains(hash, "adm")}, []bool{true, false, false})
	wantErr(t, "SetAdminKey empty", c.SetAdminKey(t.Context(), ""), store.ErrInvalid)
	wantErr(t, "SetAdminKey", c.SetAdminKey(t.Context(), "adm3"), nil)
	hash = must[string](t, "AdminKeyHash")(c.AdminKeyHash(t.Context()))
	equal(t, "AdminKeyHash after SetAdminKey", []bool{store.AdminKeyMatches(hash, "adm3"), store.AdminKeyMatches(hash, "adm")}, []bool{true, false})

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
	equal(t, "admin key", store.AdminKeyMatches(must[string](t, "AdminKeyHash")(r.AdminKeyHash(t.Context())), "adm"), true)
	equal(t, "admin key shown at creation", admin, "adm")
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

// The secrets of contractSecretsAtRest and contractReseal: long enough that
// a match in the stored bytes is no accident.
const (
	accessSecret   = "ACCESS-SECRET-0f3a9c5b7d1e2f4a"
	accessSecret2  = "ACCESS-SECRET-2b8e4d6f0a1c3e5b"
	adminKey       = "sbadm_ADMIN-KEY-9d7c5b3a1f2e4d6c"
	webhookSecret  = "whsec_WEBHOOK-SECRET-1a2b3c4d5e6f"
	webhookSecret2 = "whsec_WEBHOOK-SECRET-6f5e4d3c2b1a"
	oauthSecret    = "OAUTH-CLIENT-SECRET-0a9b8c7d6e"
	markerURL      = "http://marker-7c1e.example/hook"
)

// writeSecrets stores one of each kind of secret in c: access keys (made,
// then rotated), the admin key, upstream signing secrets (made, then
// rotated), and a second upstream.
func writeSecrets(t *testing.T, c store.Config) {
	t.Helper()
	must[store.Hub](t, "CreateHub")(c.CreateHub(t.Context(), store.Hub{Name: "chat"}))
	_, admin, _, err := c.EnsureKeys(t.Context(), func() store.Key { return store.Key{ID: "k1", Secret: accessSecret} }, func() string { return adminKey })
	wantErr(t, "EnsureKeys", err, nil)
	equal(t, "admin key shown at creation", admin, adminKey)
	keys := must[[]store.Key](t, "AccessKeys")(c.AccessKeys(t.Context()))
	wantErr(t, "SetAccessKeys", c.SetAccessKeys(t.Context(), append([]store.Key{{ID: "k2", Secret: accessSecret2}}, keys...)), nil)
	must[store.Upstream](t, "CreateUpstream")(c.CreateUpstream(t.Context(), store.Upstream{Hub: "chat", Name: "fn", URLTemplate: markerURL, Secrets: []string{webhookSecret}}))
	must[store.Upstream](t, "PutUpstream")(c.PutUpstream(t.Context(), store.Upstream{Hub: "chat", Name: "fn", URLTemplate: markerURL, Secrets: []string{webhookSecret2, webhookSecret}}))
	must[store.Upstream](t, "CreateUpstream")(c.CreateUpstream(t.Context(), store.Upstream{Hub: "chat", Name: "other", URLTemplate: markerURL + "2", Secrets: []string{webhookSecret2},
		OAuth2: &store.OAuth2{TokenURL: "https://idp.example/token", ClientID: "switchboard", ClientSecret: oauthSecret}}))
	wantErr(t, "SetUpstreamDisabled", c.SetUpstreamDisabled(t.Context(), "chat", "other", true, "410"), nil)
}

// readSecrets checks that c reads back what writeSecrets stored.
func readSecrets(t *testing.T, c store.Config) {
	t.Helper()
	keys := must[[]store.Key](t, "AccessKeys")(c.AccessKeys(t.Context()))
	equal(t, "access key secrets", []string{keys[0].Secret, keys[1].Secret}, []string{accessSecret2, accessSecret})
	equal(t, "admin key", store.AdminKeyMatches(must[string](t, "AdminKeyHash")(c.AdminKeyHash(t.Context())), adminKey), true)
	equal(t, "Upstream secrets", must[store.Upstream](t, "Upstream")(c.Upstream(t.Context(), "chat", "fn")).Secrets, []string{webhookSecret2, webhookSecret})
	ups := must[[]store.Upstream](t, "Upstreams")(c.Upstreams(t.Context(), "chat"))
	equal(t, "Upstreams secrets", [][]string{ups[0].Secrets, ups[1].Secrets}, [][]string{{webhookSecret2, webhookSecret}, {webhookSecret2}})
	all := must[[]store.Upstream](t, "AllUpstreams")(c.AllUpstreams(t.Context()))
	equal(t, "AllUpstreams secrets", all[1].Secrets, []string{webhookSecret2})
	equal(t, "disabled kept", all[1].Disabled, true)
	equal(t, "OAuth2 client secret", all[1].OAuth2.ClientSecret, oauthSecret)
}

// waitStored waits until the stored bytes hold markerURL (JetStream writes
// its files a moment after it acknowledged), so a search of them for a
// secret is a search of the data, and returns them.
func waitStored(t *testing.T, in instance) []byte {
	t.Helper()
	var b []byte
	testutil.Eventually(t, 10*time.Second, "the store's files hold the records", func() bool {
		b = in.stored()
		return bytes.Contains(b, []byte(markerURL))
	})
	return b
}

// contractSecretsAtRest: no secret is ever in the store's files in clear
// when the store seals (access keys, upstream signing secrets), the admin
// key never is (only its hash), and a store without the key cannot read
// the sealed secrets. In clear mode the same search finds the secrets,
// which proves the search.
func contractSecretsAtRest(t *testing.T, in instance, _ *testutil.Clock) {
	secrets := []string{accessSecret, accessSecret2, webhookSecret, webhookSecret2, oauthSecret}
	k1 := testSecretsKey(1)

	writeSecrets(t, in.cfg) // in clear
	stored := waitStored(t, in)
	for _, s := range secrets {
		if !bytes.Contains(stored, []byte(s)) {
			t.Fatalf("a store without a secrets key keeps %q somewhere the search does not find: the search proves nothing", s)
		}
	}
	if bytes.Contains(stored, []byte(adminKey)) {
		t.Errorf("the admin key is stored in clear; want its hash only")
	}

	fresh := newInstanceSealed(t, in, k1)
	writeSecrets(t, fresh.cfg)
	readSecrets(t, fresh.cfg)
	stored = waitStored(t, fresh)
	for _, s := range append(secrets, adminKey) {
		if bytes.Contains(stored, []byte(s)) {
			t.Errorf("a store sealing with a secrets key keeps %q in clear in its files", s)
		}
	}
	if !bytes.Contains(stored, []byte("sbsealed:v1:"+k1.ID()+":")) {
		t.Errorf("no value sealed with key %s in the files", k1.ID())
	}
	readSecrets(t, fresh.reopen())

	// Without the key, or with another, sealed secrets do not open; the
	// rest of the configuration still reads.
	k2 := testSecretsKey(2)
	for _, keys := range []store.SecretsKeys{{}, {Current: &k2}, {Old: []store.SecretsKey{k2}}} {
		c := fresh.reopenWith(keys)
		_, err := c.AccessKeys(t.Context())
		wantErr(t, "AccessKeys with the wrong key", err, store.ErrSecretsKey)
		_, _, _, err = c.EnsureKeys(t.Context(), func() store.Key { return store.Key{ID: "x", Secret: "y"} }, func() string { return "z" })
		wantErr(t, "EnsureKeys with the wrong key", err, store.ErrSecretsKey)
		_, err = c.Upstream(t.Context(), "chat", "fn")
		wantErr(t, "Upstream with the wrong key", err, store.ErrSecretsKey)
		_, err = c.Upstreams(t.Context(), "chat")
		wantErr(t, "Upstreams with the wrong key", err, store.ErrSecretsKey)
		_, err = c.AllUpstreams(t.Context())
		wantErr(t, "AllUpstreams with the wrong key", err, store.ErrSecretsKey)
		_, err = c.Reseal(t.Context())
		wantErr(t, "Reseal with the wrong key", err, store.ErrSecretsKey)
		must[store.Hub](t, "Hub with the wrong key")(c.Hub(t.Context(), "chat"))
		equal(t, "admin key with the wrong secrets key", store.AdminKeyMatches(must[string](t, "AdminKeyHash")(c.AdminKeyHash(t.Context())), adminKey), true)
	}
}

// newInstanceSealed is a second, empty store of in's backend that seals
// with k.
func newInstanceSealed(t *testing.T, in instance, k store.SecretsKey) instance {
	t.Helper()
	for _, b := range backends {
		if b.name == backendOf(in) {
			return b.open(t, time.Now, store.SecretsKeys{Current: &k})
		}
	}
	t.Fatal("unknown backend")
	return instance{}
}

func backendOf(in instance) string {
	if _, ok := in.cfg.(*store.DB); ok {
		return "bbolt"
	}
	return "nats-kv"
}

// contractReseal: a store written in clear is sealed by Reseal once a key
// is given; a rotation (new key current, old key kept to open) moves every
// secret to the new key, after which the old key is not needed; and with
// the key given as old only, Reseal brings the secrets back in clear. Each
// step reads back the same secrets, and a second Reseal finds nothing to do.
func contractReseal(t *testing.T, in instance, _ *testutil.Clock) {
	k1, k2 := testSecretsKey(1), testSecretsKey(2)
	writeSecrets(t, in.cfg)
	equal(t, "Reseal of a store in clear without a key", must[int](t, "Reseal")(in.cfg.Reseal(t.Context())), 0)

	steps := []struct {
		name string
		keys store.SecretsKeys
		want int // records rewritten: the access keys and two upstreams
	}{
		{"seal with k1", store.SecretsKeys{Current: &k1}, 3},
		{"rotate to k2", store.SecretsKeys{Current: &k2, Old: []store.SecretsKey{k1}}, 3},
		{"k2 alone", store.SecretsKeys{Current: &k2}, 0},
		{"back in clear", store.SecretsKeys{Old: []store.SecretsKey{k2}}, 3},
		{"no key", store.SecretsKeys{}, 0},
	}
	for _, st := range steps {
		c := in.reopenWith(st.keys)
		readSecrets(t, c)
		equal(t, st.name+": records resealed", must[int](t, "Reseal")(c.Reseal(t.Context())), st.want)
		equal(t, st.name+": records resealed again", must[int](t, "Reseal")(c.Reseal(t.Context())), 0)
		readSecrets(t, c)
		if st.name == "rotate to k2" {
			_, err := in.reopenWith(store.SecretsKeys{Current: &k1}).AccessKeys(t.Context())
			wantErr(t, "k1 after the rotation", err, store.ErrSecretsKey)
		}
	}
}
