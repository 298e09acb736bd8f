package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	bolt "go.etcd.io/bbolt"
)

// openTemp opens a fresh store in t.TempDir and closes it when the test ends.
func openTemp(t *testing.T, opts ...Option) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	db, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, path
}

func mustCreateHub(t *testing.T, db *DB, name string) Hub {
	t.Helper()
	h, err := db.CreateHub(t.Context(), Hub{Name: name})
	if err != nil {
		t.Fatalf("CreateHub(%q): %v", name, err)
	}
	return h
}

func upstreamNames(ups []Upstream) []string {
	var names []string
	for _, u := range ups {
		names = append(names, u.Hub+"/"+u.Name)
	}
	return names
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	db, path := openTemp(t, WithClock(clk.Now))

	hub, err := db.CreateHub(t.Context(), Hub{Name: "chat", AllowAnonymous: true, MaxMessageSize: 1024, AllowedOrigins: []string{"https://a.example"}})
	if err != nil {
		t.Fatal(err)
	}
	// Names chosen so that creation order is not alphabetical order.
	for _, name := range []string{"zeta", "alpha", "mid"} {
		if _, err := db.CreateUpstream(t.Context(), Upstream{Hub: "chat", Name: name, URLTemplate: "http://x/" + name, Timeout: Duration(3 * time.Second), Secrets: []string{"whsec_a"}}); err != nil {
			t.Fatal(err)
		}
	}
	access, admin, _, err := db.EnsureKeys(t.Context(), func() Key { return Key{ID: "k1", Secret: "s1"} }, func() string { return "adm" })
	if err != nil {
		t.Fatal(err)
	}
	ug := UserGroup{Hub: "chat", User: "u1", Group: "room", ExpiresAt: clk.Now().Add(time.Hour)}
	if err := db.AddUserToGroup(t.Context(), ug); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db2, err := Open(path, WithClock(clk.Now))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { _ = db2.Close() })

	gotHub, err := db2.Hub(t.Context(), "chat")
	if err != nil {
		t.Fatal(err)
	}
	if !hubEqual(gotHub, hub) {
		t.Errorf("hub after reopen: got %+v, want %+v", gotHub, hub)
	}
	ups, err := db2.Upstreams(t.Context(), "chat")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := upstreamNames(ups), []string{"chat/zeta", "chat/alpha", "chat/mid"}; !slices.Equal(got, want) {
		t.Errorf("upstream order after reopen: got %v, want %v", got, want)
	}
	if ups[0].Timeout != Duration(3*time.Second) || !slices.Equal(ups[0].Secrets, []string{"whsec_a"}) {
		t.Errorf("upstream fields after reopen: got %+v", ups[0])
	}
	// A new upstream after the restart still goes last.
	if _, err := db2.CreateUpstream(t.Context(), Upstream{Hub: "chat", Name: "after"}); err != nil {
		t.Fatal(err)
	}
	ups, _ = db2.Upstreams(t.Context(), "chat")
	if got := upstreamNames(ups); got[len(got)-1] != "chat/after" {
		t.Errorf("upstream created after reopen: got order %v, want chat/after last", got)
	}
	gotAccess, gotAdmin, created, err := db2.EnsureKeys(t.Context(),
		func() Key { t.Error("access key generator called after reopen"); return Key{} },
		func() string { t.Error("admin key generator called after reopen"); return "" })
	if err != nil || created || gotAdmin != "" || !slices.Equal(gotAccess, access) {
		t.Errorf("keys after reopen: got %v %q created=%v err=%v, want %v, no admin key (only its hash is kept), false, nil", gotAccess, gotAdmin, created, err, access)
	}
	if h, err := db2.AdminKeyHash(t.Context()); err != nil || !AdminKeyMatches(h, admin) {
		t.Errorf("admin key after reopen: %q %v, want the hash of %q", h, err, admin)
	}
	groups, err := db2.UserGroups(t.Context(), "chat", "u1")
	if err != nil || len(groups) != 1 || groups[0] != ug {
		t.Errorf("user groups after reopen: got %+v %v, want [%+v]", groups, err, ug)
	}
}

// hubEqual compares hubs with time.Time.Equal for the timestamps.
func hubEqual(a, b Hub) bool {
	return a.Name == b.Name && a.AllowAnonymous == b.AllowAnonymous && a.MaxMessageSize == b.MaxMessageSize &&
		slices.Equal(a.AllowedOrigins, b.AllowedOrigins) && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func TestSecondOpenFailsWithInUse(t *testing.T) {
	t.Parallel()
	db, path := openTemp(t)

	// bbolt's flock is per open file, so a second Open in this process
	// contends exactly as a second process would.
	db2, err := Open(path)
	if err == nil {
		_ = db2.Close()
		t.Fatal("second Open of a file in use: got nil error, want ErrInUse")
	}
	if !errors.Is(err, ErrInUse) {
		t.Errorf("second Open: got %v, want ErrInUse", err)
	}
	if want := "store: " + path + " is in use by another process"; err.Error() != want {
		t.Errorf("second Open error: got %q, want %q", err, want)
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Errorf("first DB after the failed second Open: Ping: %v", err)
	}
}

func TestOpenLayout(t *testing.T) {
	t.Parallel()
	db, path := openTemp(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var got []string
	err = b.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			got = append(got, string(name))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{bucketHubs, bucketKeys, bucketOutbox, bucketUpstreams, bucketUserGroups}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("buckets: got %v, want %v", got, want)
	}
}

func TestOpenBadPath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing-dir", "switchboard.db")
	if db, err := Open(path); err == nil {
		_ = db.Close()
		t.Fatal("Open in a missing directory: got nil error")
	} else if !strings.Contains(err.Error(), path) {
		t.Errorf("Open error %q does not name the path %q", err, path)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping on open DB: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(t.Context()); err == nil {
		t.Error("Ping after Close: got nil, want an error")
	}
}

func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	mustCreateHub(t, db, "chat")

	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*3)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("w%d-%02d", w, i)
				if _, err := db.CreateUpstream(t.Context(), Upstream{Hub: "chat", Name: name}); err != nil {
					errs <- err
				}
				if err := db.AddUserToGroup(t.Context(), UserGroup{Hub: "chat", User: fmt.Sprintf("u%d", w), Group: name}); err != nil {
					errs <- err
				}
				if _, err := db.PutHub(t.Context(), Hub{Name: "chat", MaxMessageSize: i}); err != nil {
					errs <- err
				}
				if _, err := db.Upstreams(t.Context(), "chat"); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	ups, err := db.Upstreams(t.Context(), "chat")
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != writers*each {
		t.Fatalf("upstreams: got %d, want %d", len(ups), writers*each)
	}
	// Each writer created its upstreams one after another, so each writer's
	// names must appear in its own order.
	last := map[byte]string{}
	for _, u := range ups {
		w := u.Name[1]
		if u.Name <= last[w] {
			t.Errorf("upstream order: %s after %s", u.Name, last[w])
		}
		last[w] = u.Name
	}
	all, err := db.AllUserGroups(t.Context())
	if err != nil || len(all) != writers*each {
		t.Errorf("user groups: got %d (%v), want %d", len(all), err, writers*each)
	}
}
