package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/store"
)

// countingStore is a real bbolt store that counts its hub reads.
type countingStore struct {
	*store.DB
	hubReads atomic.Int64
}

func (c *countingStore) Hub(ctx context.Context, name string) (store.Hub, error) {
	c.hubReads.Add(1)
	return c.DB.Hub(ctx, name)
}

// TestUnknownHubReadsAreBounded: hub names arrive from clients before any
// credential is checked, so lookups of names the copy does not know may
// reach the store only at missReadsPerSecond. Known hubs never touch the
// store, and a hub created behind the copy's back (on another node, before
// Watch tells this one) is still found while the budget lasts.
func TestUnknownHubReadsAreBounded(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(filepath.Join(t.TempDir(), "sb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, _, _, err := db.EnsureKeys(ctx, func() store.Key { return store.NewKey(time.Now()) }, NewAdminKey); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateHub(ctx, store.Hub{Name: "chat"}); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{DB: db}
	v := newConfigView(cs)
	if err := v.load(ctx); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	const lookups = 1000
	for i := range lookups {
		if _, err := v.Hub(ctx, fmt.Sprintf("probe%d", i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown hub probe%d: err %v, want ErrNotFound", i, err)
		}
	}
	allowed := missReadsBurst + int64(time.Since(start).Seconds()*missReadsPerSecond) + 1
	if got := cs.hubReads.Load(); got > allowed || got < missReadsBurst {
		t.Fatalf("%d lookups of unknown hubs made %d store reads, want between %d and %d", lookups, got, missReadsBurst, allowed)
	}

	before := cs.hubReads.Load()
	if h, err := v.Hub(ctx, "chat"); err != nil || h.Name != "chat" {
		t.Fatalf("known hub with the budget spent: %+v, %v", h, err)
	}
	if cs.hubReads.Load() != before {
		t.Error("a known hub was read from the store")
	}

	// Another node creates a hub; this copy has not heard of it yet.
	if _, err := db.CreateHub(ctx, store.Hub{Name: "late"}); err != nil {
		t.Fatal(err)
	}
	fresh := newConfigView(cs)
	if err := fresh.load(ctx); err != nil {
		t.Fatal(err)
	}
	fresh.mu.Lock()
	delete(fresh.hubs, "late") // as if loaded a moment before it was created
	fresh.mu.Unlock()
	if h, err := fresh.Hub(ctx, "late"); err != nil || h.Name != "late" {
		t.Fatalf("hub created behind the copy's back: %+v, %v; want it read from the store", h, err)
	}
	if h, err := fresh.Hub(ctx, "late"); err != nil || h.Name != "late" {
		t.Fatalf("second lookup: %+v, %v", h, err)
	}
}
