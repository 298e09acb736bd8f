package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Upstream is one webhook receiver registered for a hub.
type Upstream struct {
	Hub         string    `json:"hub"`
	Name        string    `json:"name"` // unique within the hub
	URLTemplate string    `json:"urlTemplate"`
	Events      []string  `json:"events,omitempty"`  // filter, e.g. ["connect","connected","disconnected","message:*"]; empty = all
	Timeout     Duration  `json:"timeout,omitempty"` // 0 = default 10s
	Secrets     []string  `json:"secrets"`           // whsec_… signing secrets, newest first
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`

	// Disabled is set when the upstream answered 410 Gone; saving the
	// upstream again clears it. DisabledReason says when and why.
	Disabled       bool   `json:"disabled,omitempty"`
	DisabledReason string `json:"disabledReason,omitempty"`

	// UpstreamProfile says which webhook format the upstream receives.
	UpstreamProfile

	// OAuth2, when set, adds a client-credentials bearer token to every
	// request (see OAuth2); nil sends the signature alone.
	OAuth2 *OAuth2 `json:"oauth2,omitempty"`
}

// findUpstream returns the key and value of the hub's upstream called name,
// as stored (secrets sealed), or ErrNotFound. A hub has a handful of upstreams, so a scan of its prefix
// is cheaper to keep right than a second index bucket.
func findUpstream(b *bolt.Bucket, hub, name string) ([]byte, Upstream, error) {
	prefix := appendPart(nil, hub)
	c := b.Cursor()
	for k, v := c.Seek(prefix); hasPrefix(k, prefix); k, v = c.Next() {
		var u Upstream
		if err := decode(k, v, &u); err != nil {
			return nil, Upstream{}, err
		}
		if u.Name == name {
			return append([]byte(nil), k...), u, nil
		}
	}
	return nil, Upstream{}, ErrNotFound
}

// putUpstream saves u, creating or (if replace) replacing it. The hub must exist.
func (db *DB) putUpstream(tx *bolt.Tx, u *Upstream, replace bool) error {
	if u.Name == "" {
		return fmt.Errorf("%w: upstream name is empty", ErrInvalid)
	}
	if tx.Bucket([]byte(bucketHubs)).Get([]byte(u.Hub)) == nil {
		return fmt.Errorf("hub: %w", ErrNotFound)
	}
	b := tx.Bucket([]byte(bucketUpstreams))
	u.UpdatedAt = db.stamp()
	key, old, err := findUpstream(b, u.Hub, u.Name)
	switch {
	case err == nil && !replace:
		return ErrExists
	case err == nil:
		u.CreatedAt = old.CreatedAt // same key: keeps its place in the order
	case errors.Is(err, ErrNotFound):
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		key = binary.BigEndian.AppendUint64(appendPart(nil, u.Hub), seq)
		u.CreatedAt = u.UpdatedAt
	default:
		return err
	}
	return putJSON(b, key, db.seal.sealUpstream(*u))
}

// CreateUpstream saves a new upstream after the hub's existing ones. It fails
// with ErrNotFound if the hub does not exist and ErrExists if the hub already
// has an upstream of that name.
func (db *DB) CreateUpstream(ctx context.Context, u Upstream) (Upstream, error) {
	err := db.update(ctx, fmt.Sprintf("create upstream %q of hub %q", u.Name, u.Hub), func(tx *bolt.Tx) error {
		return db.putUpstream(tx, &u, false)
	})
	if err := db.changed(err, Change{Kind: ChangeUpstreams, Hub: u.Hub, Key: u.Name}); err != nil {
		return Upstream{}, err
	}
	return u, nil
}

// PutUpstream creates or replaces an upstream (the hub must exist). Replacing
// keeps CreatedAt and the upstream's place in the order.
func (db *DB) PutUpstream(ctx context.Context, u Upstream) (Upstream, error) {
	err := db.update(ctx, fmt.Sprintf("put upstream %q of hub %q", u.Name, u.Hub), func(tx *bolt.Tx) error {
		return db.putUpstream(tx, &u, true)
	})
	if err := db.changed(err, Change{Kind: ChangeUpstreams, Hub: u.Hub, Key: u.Name}); err != nil {
		return Upstream{}, err
	}
	return u, nil
}

// Upstream returns the hub's upstream called name, or ErrNotFound.
func (db *DB) Upstream(ctx context.Context, hub, name string) (Upstream, error) {
	var u Upstream
	err := db.view(ctx, fmt.Sprintf("get upstream %q of hub %q", name, hub), func(tx *bolt.Tx) error {
		var err error
		if _, u, err = findUpstream(tx.Bucket([]byte(bucketUpstreams)), hub, name); err != nil {
			return err
		}
		return db.seal.openUpstream(&u)
	})
	if err != nil {
		return Upstream{}, err
	}
	return u, nil
}

// Upstreams returns the hub's upstreams in creation order, the order in which
// events are tried. A hub without upstreams, or no hub, gives an empty list.
func (db *DB) Upstreams(ctx context.Context, hub string) ([]Upstream, error) {
	var ups []Upstream
	err := db.view(ctx, fmt.Sprintf("list upstreams of hub %q", hub), func(tx *bolt.Tx) error {
		prefix := appendPart(nil, hub)
		c := tx.Bucket([]byte(bucketUpstreams)).Cursor()
		for k, v := c.Seek(prefix); hasPrefix(k, prefix); k, v = c.Next() {
			var u Upstream
			if err := decode(k, v, &u); err != nil {
				return err
			}
			if err := db.seal.openUpstream(&u); err != nil {
				return err
			}
			ups = append(ups, u)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ups, nil
}

// AllUpstreams returns every upstream, sorted by hub name and, within a hub,
// in creation order.
func (db *DB) AllUpstreams(ctx context.Context) ([]Upstream, error) {
	var ups []Upstream
	err := db.view(ctx, "list upstreams", func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketUpstreams)).ForEach(func(k, v []byte) error {
			var u Upstream
			if err := decode(k, v, &u); err != nil {
				return err
			}
			if err := db.seal.openUpstream(&u); err != nil {
				return err
			}
			ups = append(ups, u)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// Key order groups by hub length first (the length prefix); a stable sort
	// by name keeps the creation order inside each hub.
	sort.SliceStable(ups, func(i, j int) bool { return ups[i].Hub < ups[j].Hub })
	return ups, nil
}

// DeleteUpstream removes the hub's upstream called name, or fails with
// ErrNotFound.
func (db *DB) DeleteUpstream(ctx context.Context, hub, name string) error {
	return db.changed(db.update(ctx, fmt.Sprintf("delete upstream %q of hub %q", name, hub), func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketUpstreams))
		key, _, err := findUpstream(b, hub, name)
		if err != nil {
			return err
		}
		return b.Delete(key)
	}), Change{Kind: ChangeUpstreams, Hub: hub, Key: name})
}
