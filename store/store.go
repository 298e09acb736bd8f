package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Sentinel errors; the errors the DB returns wrap them.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	// ErrInvalid reports input the store refuses to save, such as an empty name.
	ErrInvalid = errors.New("store: invalid value")
	// ErrInUse reports that another process holds the database file.
	ErrInUse = errors.New("store: database is in use by another process")
	// ErrUnavailable reports that a clustered store (NATS JetStream KV)
	// did not answer: NATS is unreachable, or the JetStream servers that
	// hold the buckets are down or have no quorum. Retrying later may work.
	ErrUnavailable = errors.New("store: shared configuration (NATS JetStream KV) unavailable")
)

// Bucket names. bucketOutbox holds the durable webhook outbox (outbox.go).
const (
	bucketHubs       = "hubs"
	bucketUpstreams  = "upstreams"
	bucketKeys       = "keys"
	bucketUserGroups = "usergroups"
	bucketOutbox     = "outbox"
)

// lockTimeout bounds the wait for the file lock: long enough to ride out a
// previous instance that is just exiting, short enough to fail visibly.
const lockTimeout = time.Second

// DB is an open store. See the package documentation for the layout and the
// concurrency contract.
type DB struct {
	bolt  *bolt.DB
	now   func() time.Time
	seal  *sealer  // secrets at rest; nil keeps them in clear
	watch watchers // Watch calls, told of every committed write
}

// Option configures Open.
type Option func(*DB)

// WithClock makes the DB read the time from now instead of time.Now: it stamps
// CreatedAt/UpdatedAt and decides which user-group memberships have expired.
func WithClock(now func() time.Time) Option {
	return func(db *DB) { db.now = now }
}

// WithSecrets seals access key secrets and upstream signing secrets with
// k.Current (AES-256-GCM) and opens those sealed with it or with k.Old.
// Without it secrets are kept in clear and sealed ones cannot be read
// (ErrSecretsKey). Reseal brings stored secrets to the current form.
func WithSecrets(k SecretsKeys) Option {
	return func(db *DB) { db.seal = newSealer(k) }
}

// inUseError names the file another process holds.
type inUseError struct{ path string }

func (e *inUseError) Error() string {
	return "store: " + e.path + " is in use by another process"
}

func (e *inUseError) Is(target error) bool { return target == ErrInUse }

// Open opens the bbolt file at path, creating it (mode 0600: it holds secrets)
// and its buckets if needed.
func Open(path string, opts ...Option) (*DB, error) {
	db := &DB{now: time.Now}
	for _, o := range opts {
		o(db)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, &inUseError{path: path}
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{bucketHubs, bucketUpstreams, bucketKeys, bucketUserGroups, bucketOutbox} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("store: create buckets in %s: %w", path, err)
	}
	db.bolt = b
	return db, nil
}

// Close releases the file. Calls after Close fail.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Ping reports whether a read transaction succeeds (for /readyz).
func (db *DB) Ping(ctx context.Context) error {
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(bucketHubs)) == nil {
			return errors.New("hubs bucket missing")
		}
		return nil
	})
	return wrap("ping", err)
}

// stamp returns the current time in UTC without a monotonic reading, so a
// value compares equal to itself after a JSON round trip.
func (db *DB) stamp() time.Time { return db.now().UTC().Round(0) }

// view and update run fn in a read or read-write transaction, unless ctx
// has ended: a bbolt transaction does not block on the network, so the
// context is checked once, before it starts.
func (db *DB) view(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return wrap(op, err)
	}
	return wrap(op, db.bolt.View(fn))
}

func (db *DB) update(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return wrap(op, err)
	}
	return wrap(op, db.bolt.Update(fn))
}

// wrap adds the operation to err. Sentinel errors already carry the
// "store:" prefix, so they get only the operation.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, ErrInvalid), errors.Is(err, ErrSecretsKey):
		return fmt.Errorf("%s: %w", op, err)
	default:
		return fmt.Errorf("store: %s: %w", op, err)
	}
}

func getJSON(b *bolt.Bucket, key []byte, v any) error {
	raw := b.Get(key)
	if raw == nil {
		return ErrNotFound
	}
	return decode(key, raw, v)
}

func decode(key, raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %q: %w", key, err)
	}
	return nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	return b.Put(key, raw)
}

// appendPart appends s with a uvarint length prefix, which keeps composite
// keys prefix-free whatever bytes s holds.
func appendPart(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// hasPrefix reports whether a cursor key k starts with prefix; nil is the
// cursor's end.
func hasPrefix(k, prefix []byte) bool {
	return k != nil && bytes.HasPrefix(k, prefix)
}

// deletePrefix removes every key of b that starts with prefix. Keys are
// collected first because deleting under a live cursor can skip entries.
func deletePrefix(b *bolt.Bucket, prefix []byte) (int, error) {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); hasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
