package store

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The outbox holds webhook notifications until their upstream acknowledged
// them. Values are opaque to the store (the upstream package encodes them);
// keys are the bucket's sequence as uint64be, so a cursor walks them in the
// order they were written.

// OutboxCommit appends add and deletes the entries numbered del in one
// transaction, which is on disk when OutboxCommit returns. It returns the
// numbers given to add, in order; numbers only grow, so they order entries
// across restarts. Deleting a missing number is not an error (an entry may
// be acknowledged after it was dropped).
func (db *DB) OutboxCommit(add [][]byte, del []uint64) ([]uint64, error) {
	seqs := make([]uint64, len(add))
	err := db.update(context.Background(), "commit outbox", func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketOutbox))
		var key [8]byte
		for _, s := range del {
			binary.BigEndian.PutUint64(key[:], s)
			if err := b.Delete(key[:]); err != nil {
				return err
			}
		}
		for i, v := range add {
			s, err := b.NextSequence()
			if err != nil {
				return err
			}
			binary.BigEndian.PutUint64(key[:], s)
			if err := b.Put(key[:], v); err != nil {
				return err
			}
			seqs[i] = s
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return seqs, nil
}

// OutboxLoad calls fn for every outbox entry in the order they were written.
// value is only valid during the call.
func (db *DB) OutboxLoad(fn func(seq uint64, value []byte) error) error {
	return db.view(context.Background(), "load outbox", func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketOutbox)).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("outbox key %x is not a sequence number", k)
			}
			return fn(binary.BigEndian.Uint64(k), v)
		})
	})
}

// SetUpstreamDisabled marks the hub's upstream called name as disabled (with
// reason) or enabled again, keeping the rest of it. The dispatcher disables
// an upstream that answered 410 Gone; saving the upstream again (PutUpstream)
// enables it.
func (db *DB) SetUpstreamDisabled(ctx context.Context, hub, name string, disabled bool, reason string) error {
	return db.changed(db.update(ctx, fmt.Sprintf("disable upstream %q of hub %q", name, hub), func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketUpstreams))
		key, u, err := findUpstream(b, hub, name)
		if err != nil {
			return err
		}
		u.Disabled, u.DisabledReason = disabled, reason
		if !disabled {
			u.DisabledReason = ""
		}
		u.UpdatedAt = db.stamp()
		return putJSON(b, key, u)
	}), Change{Kind: ChangeUpstreams, Hub: hub, Key: name})
}
