package store

import (
	"context"
	"sync"
	"time"
)

// Config is the configuration a node shares with the other nodes of its
// cluster: hubs, upstreams, keys and user-group memberships. [DB] implements
// it for one node, [KV] on NATS JetStream KV for a cluster; both keep the
// same contract (store/contract_test.go), so callers do not care which they
// hold. The outbox is not part of it: it stays in each node's DB.
//
// Every method takes a context first and is bounded by it alone: KV waits
// on NATS as long as the context lasts, so callers give it a deadline. The
// packages that read the configuration declare the smaller interfaces they
// need (httpapi.Store, gateway.UserGroupStore); the node wires one copy of
// it in memory in front of the store.
type Config interface {
	CreateHub(ctx context.Context, h Hub) (Hub, error)
	PutHub(ctx context.Context, h Hub) (Hub, error)
	Hub(ctx context.Context, name string) (Hub, error)
	Hubs(ctx context.Context) ([]Hub, error)
	DeleteHub(ctx context.Context, name string) error

	CreateUpstream(ctx context.Context, u Upstream) (Upstream, error)
	PutUpstream(ctx context.Context, u Upstream) (Upstream, error)
	Upstream(ctx context.Context, hub, name string) (Upstream, error)
	Upstreams(ctx context.Context, hub string) ([]Upstream, error)
	AllUpstreams(ctx context.Context) ([]Upstream, error)
	DeleteUpstream(ctx context.Context, hub, name string) error
	SetUpstreamDisabled(ctx context.Context, hub, name string, disabled bool, reason string) error

	EnsureKeys(ctx context.Context, newAccessKey func() Key, newAdminKey func() string) (access []Key, admin string, created bool, err error)
	AccessKeys(ctx context.Context) ([]Key, error)
	SetAccessKeys(ctx context.Context, keys []Key) error
	AdminKeyHash(ctx context.Context) (string, error)
	SetAdminKey(ctx context.Context, key string) error
	// Reseal brings every stored secret to the form the store writes now
	// (see WithSecrets) and returns how many records it rewrote.
	Reseal(ctx context.Context) (int, error)

	AddUserToGroup(ctx context.Context, m UserGroup) error
	RemoveUserFromGroup(ctx context.Context, hub, user, group string) error
	RemoveUserFromAllGroups(ctx context.Context, hub, user string) error
	UserGroups(ctx context.Context, hub, user string) ([]UserGroup, error)
	AllUserGroups(ctx context.Context) ([]UserGroup, error)
	PurgeExpiredUserGroups(ctx context.Context, now time.Time) (int, error)

	// Ping reports whether the store answers (for /readyz).
	Ping(ctx context.Context) error
	// Watch calls fn for every change made after it started, by this
	// instance or (KV) by any other node, from one goroutine, in the order
	// each record changed. It first calls fn with a Change of kind
	// ChangeAll once it is watching, so a caller that loads everything on
	// ChangeAll misses nothing. It returns when ctx ends (with nil) or on an
	// error that ends watching. See [Change] for what a change names.
	Watch(ctx context.Context, fn func(Change)) error
}

var (
	_ Config = (*DB)(nil)
	_ Config = (*KV)(nil)
)

// Change kinds.
const (
	// ChangeAll means anything may have changed: reload everything. Watch
	// sends it first, once it is watching.
	ChangeAll        = "all"
	ChangeHubs       = "hubs"
	ChangeUpstreams  = "upstreams"
	ChangeKeys       = "keys"
	ChangeUserGroups = "usergroups"
)

// Change names a record that changed (created, replaced or deleted); it does
// not carry the value, so the receiver re-reads what it needs and never acts
// on a stale copy. By kind:
//
//	hubs        Hub and Key: the hub's name
//	upstreams   Hub, and Key: the upstream's name
//	keys        Key: "access" or "admin"
//	usergroups  Hub, and Key: the user whose memberships changed
//	            (re-read UserGroups(Hub, Key))
//
// A hubs change of a hub that no longer exists means its upstreams and
// memberships are gone too; KV also reports each of them, DB does not.
// Expiry of a membership is not a change: readers filter expired
// memberships, and PurgeExpiredUserGroups reports the users it purged.
type Change struct {
	Kind string
	Hub  string
	Key  string
}

// watchers fans a DB's changes out to its Watch calls. Writers only queue
// (never wait for a slow fn); each Watch call delivers its queue from its own
// goroutine, in order.
type watchers struct {
	mu  sync.Mutex // guards fns
	fns map[*watcher]struct{}
}

type watcher struct {
	wake chan struct{} // capacity 1: "the queue is not empty"

	mu    sync.Mutex // guards queue
	queue []Change
}

// notify queues the changes for every watcher, after the write committed.
func (w *watchers) notify(changes ...Change) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for x := range w.fns {
		x.mu.Lock()
		x.queue = append(x.queue, changes...)
		x.mu.Unlock()
		select {
		case x.wake <- struct{}{}:
		default:
		}
	}
}

// Watch implements [Config.Watch] for the changes made through this DB.
func (db *DB) Watch(ctx context.Context, fn func(Change)) error {
	x := &watcher{wake: make(chan struct{}, 1)}
	db.watch.mu.Lock()
	if db.watch.fns == nil {
		db.watch.fns = make(map[*watcher]struct{})
	}
	db.watch.fns[x] = struct{}{}
	db.watch.mu.Unlock()
	defer func() {
		db.watch.mu.Lock()
		delete(db.watch.fns, x)
		db.watch.mu.Unlock()
	}()

	fn(Change{Kind: ChangeAll})
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-x.wake:
		}
		x.mu.Lock()
		batch := x.queue
		x.queue = nil
		x.mu.Unlock()
		for _, c := range batch {
			if ctx.Err() != nil {
				return nil
			}
			fn(c)
		}
	}
}

// changed tells the watchers about changes when err is nil (the write
// committed) and returns err, so a write method wraps its result in it.
func (db *DB) changed(err error, changes ...Change) error {
	if err == nil {
		db.watch.notify(changes...)
	}
	return err
}
