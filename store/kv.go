package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KV bucket names. Keys inside them are made of encoded names (see enc), as
// JetStream KV keys allow only [-/_=.a-zA-Z0-9]; values are JSON and repeat
// the names, so nothing has to be decoded from a key but a watched change.
const (
	kvBucketHubs       = "sb-hubs"       // enc(hub) → Hub
	kvBucketUpstreams  = "sb-upstreams"  // enc(hub).enc(name) → kvUpstream; "seq" → counter
	kvBucketKeys       = "sb-keys"       // "access" → []Key; "admin" → string
	kvBucketUserGroups = "sb-usergroups" // enc(hub).enc(user) → []UserGroup, sorted by group
)

// kvSeqKey holds the last upstream sequence number given out. It has no dot,
// so it never equals an upstream's key.
const kvSeqKey = "seq"

// KV is the cluster's shared [Config] on NATS JetStream KV: every node opens
// one on the same NATS (cluster) and sees the others' writes; reads go to
// NATS each time (no cache), so a node reads its own writes at once.
//
// It keeps DB's contract, with these differences. Single-record writes are
// atomic across nodes (kv.Create for CreateHub, CreateUpstream and
// EnsureKeys, so the first node's keys win; revision-checked updates for the
// rest). Operations over several records are not: DeleteHub is several
// steps (see there), and CreateUpstream checks its hub in a separate read.
// All memberships of a user in a hub are one record, so UserGroups is one
// read. Upstream order is a counter record taken at creation. A KV has no
// goroutine of its own and nothing to close; its methods are safe for
// concurrent use and bounded by their context alone: give each call a
// deadline, or a NATS outage makes it wait as long as the context lasts.
type KV struct {
	hubs, upstreams, keys, groups jetstream.KeyValue

	now  func() time.Time
	seal *sealer // secrets at rest; nil keeps them in clear
}

// KVOption configures OpenKV.
type KVOption func(*kvOptions)

type kvOptions struct {
	replicas int
	now      func() time.Time
	secrets  SecretsKeys
}

// WithKVReplicas sets how many JetStream servers keep each bucket (1 to 5;
// default 1). It applies when OpenKV creates or updates the buckets.
func WithKVReplicas(n int) KVOption { return func(o *kvOptions) { o.replicas = n } }

// WithKVClock makes the KV read the time from now instead of time.Now, like
// WithClock for DB.
func WithKVClock(now func() time.Time) KVOption { return func(o *kvOptions) { o.now = now } }

// WithKVSecrets is WithSecrets for KV. Every node of a cluster must be able
// to open what the others seal: see Reseal for a rotation.
func WithKVSecrets(k SecretsKeys) KVOption { return func(o *kvOptions) { o.secrets = k } }

// OpenKV creates the buckets if they are missing (or updates their replica
// count) and returns a KV on them. Several nodes may call it at once.
func OpenKV(ctx context.Context, js jetstream.JetStream, opts ...KVOption) (*KV, error) {
	o := kvOptions{replicas: 1, now: time.Now}
	for _, fn := range opts {
		fn(&o)
	}
	if o.replicas < 1 || o.replicas > 5 {
		return nil, fmt.Errorf("store: open kv: %w: %d replicas, want 1 to 5", ErrInvalid, o.replicas)
	}
	s := &KV{now: o.now, seal: newSealer(o.secrets)}
	for _, b := range []struct {
		name string
		kv   *jetstream.KeyValue
	}{
		{kvBucketHubs, &s.hubs},
		{kvBucketUpstreams, &s.upstreams},
		{kvBucketKeys, &s.keys},
		{kvBucketUserGroups, &s.groups},
	} {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      b.name,
			Description: "Switchboard shared configuration",
			Replicas:    o.replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("store: open kv bucket %s: %w", b.name, err)
		}
		*b.kv = kv
	}
	return s, nil
}

// BindKV returns a KV on the buckets a cluster's nodes made (OpenKV),
// without creating or changing them: for tools that work on a cluster's
// configuration from outside. WithKVReplicas is ignored.
func BindKV(ctx context.Context, js jetstream.JetStream, opts ...KVOption) (*KV, error) {
	o := kvOptions{now: time.Now}
	for _, fn := range opts {
		fn(&o)
	}
	s := &KV{now: o.now, seal: newSealer(o.secrets)}
	for _, b := range []struct {
		name string
		kv   *jetstream.KeyValue
	}{
		{kvBucketHubs, &s.hubs},
		{kvBucketUpstreams, &s.upstreams},
		{kvBucketKeys, &s.keys},
		{kvBucketUserGroups, &s.groups},
	} {
		kv, err := js.KeyValue(ctx, b.name)
		if err != nil {
			return nil, fmt.Errorf("store: bind kv bucket %s (has a node of the cluster started?): %w", b.name, err)
		}
		*b.kv = kv
	}
	return s, nil
}

// enc turns a name into a KV key token: base64url without padding, whose
// alphabet KV keys allow and which contains no dot, the token separator.
func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func dec(s string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err == nil
}

// pairKey is the key of a record named by a hub and a second name. Empty
// names have no key: callers treat them as absent, as DB finds nothing.
func pairKey(hub, name string) (string, bool) {
	if hub == "" || name == "" {
		return "", false
	}
	return enc(hub) + "." + enc(name), true
}

// splitPair decodes a pairKey.
func splitPair(key string) (hub, name string, ok bool) {
	a, b, found := strings.Cut(key, ".")
	if !found {
		return "", "", false
	}
	hub, ok1 := dec(a)
	name, ok2 := dec(b)
	return hub, name, ok1 && ok2
}

// stamp is DB.stamp for KV.
func (s *KV) stamp() time.Time { return s.now().UTC().Round(0) }

// kvWrap is wrap for KV: a missing key is ErrNotFound, and any other
// failure that is not the store's own verdict (exists, invalid) came from
// NATS and is ErrUnavailable.
func kvWrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		err = ErrNotFound
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, ErrInvalid), errors.Is(err, ErrSecretsKey):
	default:
		return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
	}
	return wrap(op, err)
}

// kvGet decodes the value at key into v and returns its revision, or
// ErrNotFound.
func kvGet(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return e.Revision(), decode([]byte(key), e.Value(), v)
}

// errUnchanged, returned by a casUpdate fn, leaves the value as it is.
var errUnchanged = errors.New("store: unchanged")

// casUpdate applies fn to the value at key with optimistic concurrency,
// retrying when another writer changed the key in between. fn gets the
// current value (nil if absent) and returns the next one, nil to delete
// the key, or errUnchanged to write nothing. It returns fn's other errors
// as they are.
func casUpdate(ctx context.Context, kv jetstream.KeyValue, key string, fn func(cur []byte) ([]byte, error)) error {
	for {
		var cur []byte
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			cur, rev = e.Value(), e.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return err
		}
		next, err := fn(cur)
		if err == errUnchanged {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case next == nil && cur == nil:
			return nil
		case next == nil:
			err = kv.Delete(ctx, key, jetstream.LastRevision(rev))
		case cur == nil:
			_, err = kv.Create(ctx, key, next)
		default:
			_, err = kv.Update(ctx, key, next, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		return err
	}
}

// Ping reports whether JetStream answers for the hubs bucket.
func (s *KV) Ping(ctx context.Context) error {
	_, err := s.hubs.Status(ctx)
	return kvWrap("ping", err)
}

// Watch implements [Config.Watch] with one watcher per bucket, started with
// the updates only (current values are not replayed: ChangeAll stands for
// them). Updates made through any KV on the same NATS arrive within a round
// trip. Ordered consumers resume after a NATS reconnect without gaps.
func (s *KV) Watch(ctx context.Context, fn func(Change)) error {
	kinds := []struct {
		kind string
		kv   jetstream.KeyValue
	}{
		{ChangeHubs, s.hubs}, {ChangeUpstreams, s.upstreams}, {ChangeKeys, s.keys}, {ChangeUserGroups, s.groups},
	}
	watchers := make([]jetstream.KeyWatcher, 0, len(kinds))
	// Merge the four streams into this goroutine. Order is kept per
	// bucket, which is per record: that is all Change promises.
	type item struct {
		kind string
		e    jetstream.KeyValueEntry
		ok   bool
	}
	merged := make(chan item)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(done)
		for _, w := range watchers {
			_ = w.Stop()
		}
		// A forwarder drains its watcher until Stop closes it, so the
		// client's delivery callback never blocks on a full channel.
		wg.Wait()
	}()
	for _, k := range kinds {
		w, err := k.kv.WatchAll(ctx, jetstream.UpdatesOnly())
		if err != nil {
			return fmt.Errorf("store: watch %s: %w", k.kind, err)
		}
		watchers = append(watchers, w)
		wg.Go(func() {
			for e := range w.Updates() {
				select {
				case merged <- item{k.kind, e, true}:
				case <-done:
				}
			}
			select {
			case merged <- item{kind: k.kind}:
			case <-done:
			}
		})
	}
	fn(Change{Kind: ChangeAll})
	for {
		var it item
		select {
		case <-ctx.Done():
			return nil
		case it = <-merged:
		}
		if !it.ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("store: watch %s: watcher closed", it.kind)
		}
		if c, ok := changeOf(it.kind, it.e); ok {
			fn(c)
		}
	}
}

// changeOf names the record a watched entry is about; ok is false for
// entries that are not records (the upstream sequence counter, the nil
// marker).
func changeOf(kind string, e jetstream.KeyValueEntry) (Change, bool) {
	if e == nil {
		return Change{}, false
	}
	key := e.Key()
	switch kind {
	case ChangeHubs:
		name, ok := dec(key)
		return Change{Kind: kind, Hub: name, Key: name}, ok
	case ChangeKeys:
		return Change{Kind: kind, Key: key}, true
	default:
		if kind == ChangeUpstreams && key == kvSeqKey {
			return Change{}, false
		}
		hub, name, ok := splitPair(key)
		return Change{Kind: kind, Hub: hub, Key: name}, ok
	}
}

// marshal is json.Marshal wrapped as the store reports encoding errors.
func marshal(key string, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %q: %w", key, err)
	}
	return raw, nil
}
