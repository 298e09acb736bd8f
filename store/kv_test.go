package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/store"
)

// startNATS starts an embedded NATS server with JetStream for the test.
func startNATS(t testing.TB) *natsembed.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// openKV connects to s, as one node would, and opens the shared config.
func openKV(t testing.TB, s *natsembed.Server, opts ...store.KVOption) *store.KV {
	t.Helper()
	js := testutil.JetStream(t, s.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := store.OpenKV(ctx, js, opts...)
	if err != nil {
		t.Fatalf("OpenKV: %v", err)
	}
	return kv
}

// TestKVRaces runs the writes that must be atomic across nodes from several
// KV instances at once, as nodes starting or configured together would.
func TestKVRaces(t *testing.T) {
	s := startNATS(t)
	const nodes = 4
	kvs := make([]*store.KV, nodes)
	for i := range kvs {
		kvs[i] = openKV(t, s)
	}
	race := func(fn func(i int, kv *store.KV)) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, kv := range kvs {
			wg.Go(func() {
				<-start
				fn(i, kv)
			})
		}
		close(start)
		wg.Wait()
	}

	t.Run("EnsureKeys: the first node's keys win", func(t *testing.T) {
		type result struct {
			access  []store.Key
			admin   string
			created bool
			err     error
		}
		results := make([]result, nodes)
		race(func(i int, kv *store.KV) {
			id := strconv.Itoa(i)
			a, adm, c, err := kv.EnsureKeys(t.Context(),
				func() store.Key { return store.Key{ID: "k" + id, Secret: "s" + id} },
				func() string { return "admin" + id })
			results[i] = result{a, adm, c, err}
		})
		want, err := kvs[0].AccessKeys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		adminHash, err := kvs[0].AdminKeyHash(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		creators, adminShown := 0, 0
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("node %d: EnsureKeys: %v", i, r.err)
			}
			if !reflect.DeepEqual(r.access, want) {
				t.Errorf("node %d got keys %v; want %v", i, r.access, want)
			}
			// Only the node whose admin key won sees it, once.
			if r.admin != "" {
				adminShown++
				if !store.AdminKeyMatches(adminHash, r.admin) {
					t.Errorf("node %d was shown admin key %q, which is not the stored one", i, r.admin)
				}
			}
			if r.created {
				creators++
			}
		}
		if adminShown != 1 {
			t.Errorf("%d nodes were shown the admin key, want exactly 1", adminShown)
		}
		// Access and admin keys are created separately, so up to two nodes
		// may each have created one of them; at least one did.
		if creators < 1 || creators > 2 {
			t.Errorf("%d nodes report created, want 1 or 2", creators)
		}
	})

	t.Run("CreateHub: exactly one wins", func(t *testing.T) {
		errs := make([]error, nodes)
		race(func(i int, kv *store.KV) {
			_, errs[i] = kv.CreateHub(t.Context(), store.Hub{Name: "chat", MaxMessageSize: i + 1})
		})
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrExists):
				t.Errorf("node %d: CreateHub: %v, want nil or ErrExists", i, err)
			}
		}
		if wins != 1 {
			t.Errorf("%d nodes created the hub, want 1", wins)
		}
	})

	t.Run("CreateUpstream: all kept, each once", func(t *testing.T) {
		race(func(i int, kv *store.KV) {
			for j := range 3 {
				if _, err := kv.CreateUpstream(t.Context(), store.Upstream{Hub: "chat", Name: fmt.Sprintf("n%d-%d", i, j)}); err != nil {
					t.Errorf("CreateUpstream: %v", err)
				}
			}
		})
		ups, err := kvs[1].Upstreams(t.Context(), "chat")
		if err != nil {
			t.Fatal(err)
		}
		if len(ups) != nodes*3 {
			t.Fatalf("got %d upstreams, want %d", len(ups), nodes*3)
		}
		// Each node's own creations keep their order.
		last := map[byte]byte{}
		for _, u := range ups {
			node, seq := u.Name[1], u.Name[3]
			if prev, ok := last[node]; ok && seq <= prev {
				t.Errorf("upstream %s listed after n%c-%c", u.Name, node, prev)
			}
			last[node] = seq
		}
	})

	t.Run("AddUserToGroup: no lost update", func(t *testing.T) {
		race(func(i int, kv *store.KV) {
			if err := kv.AddUserToGroup(t.Context(), store.UserGroup{Hub: "chat", User: "u", Group: "g" + strconv.Itoa(i)}); err != nil {
				t.Errorf("AddUserToGroup: %v", err)
			}
		})
		ms, err := kvs[2].UserGroups(t.Context(), "chat", "u")
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != nodes {
			t.Errorf("user has %d groups, want %d: %v", len(ms), nodes, ms)
		}
	})
}

func TestOpenKVInvalidReplicas(t *testing.T) {
	s := startNATS(t)
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 6} {
		if _, err := store.OpenKV(context.Background(), js, store.WithKVReplicas(n)); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("replicas %d: error %v, want ErrInvalid", n, err)
		}
	}
}

// TestKVWatchEndsWithConnection checks that Watch reports losing NATS for
// good instead of hanging: its caller must learn that changes stopped.
func TestKVWatchEndsWithConnection(t *testing.T) {
	s := startNATS(t)
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := store.OpenKV(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- kv.Watch(context.Background(), func(c store.Change) {
			if c.Kind == store.ChangeAll {
				close(ready)
			}
		})
	}()
	<-ready
	nc.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Watch returned nil after the connection closed, want an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return within 10s of the connection closing")
	}
}

// FuzzKVNames checks that any hub, user and group name (user ids come from
// client tokens) round-trips through the KV key encoding without colliding
// with another name or failing the write.
func FuzzKVNames(f *testing.F) {
	f.Add("chat", "alice", "room")
	f.Add("a.b", "*", ">")
	f.Add("h", "u/ü\x00", "g g")
	kv := openKV(f, startNATS(f))
	f.Fuzz(func(t *testing.T, hub, user, group string) {
		// Values are JSON, which turns invalid UTF-8 into U+FFFD in DB and
		// KV alike; names reach the store from JSON, so they are valid.
		if hub == "" || user == "" || group == "" || !utf8.ValidString(hub) || !utf8.ValidString(user) || !utf8.ValidString(group) {
			return
		}
		m := store.UserGroup{Hub: hub, User: user, Group: group}
		if err := kv.AddUserToGroup(t.Context(), m); err != nil {
			t.Fatalf("AddUserToGroup(%q, %q, %q): %v", hub, user, group, err)
		}
		defer func() { _ = kv.RemoveUserFromAllGroups(t.Context(), hub, user) }()
		ms, err := kv.UserGroups(t.Context(), hub, user)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0] != m {
			t.Fatalf("UserGroups(%q, %q) = %+v, want [%+v]", hub, user, ms, m)
		}
	})
}
