package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-gw/switchboard/negotiate"
	bolt "go.etcd.io/bbolt"
)

// NewKey returns a fresh access key (negotiate.NewAccessKey) created at now.
func NewKey(now time.Time) Key {
	k := negotiate.NewAccessKey()
	return Key{ID: k.ID, Secret: k.Secret, CreatedAt: now.UTC()}
}

// AccessKey is k as package negotiate signs and verifies with it.
func (k Key) AccessKey() negotiate.AccessKey { return negotiate.AccessKey{ID: k.ID, Secret: k.Secret} }

// AccessKeys converts keys for negotiate.Verifier, in the same order.
func AccessKeys(keys []Key) []negotiate.AccessKey {
	out := make([]negotiate.AccessKey, len(keys))
	for i, k := range keys {
		out[i] = k.AccessKey()
	}
	return out
}

// Key is an access key (for client and REST tokens).
type Key struct {
	ID        string    `json:"id"`
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"createdAt"`
}

var (
	keyAccess = []byte("access")
	keyAdmin  = []byte("admin")
)

func validAccessKeys(keys []Key) error {
	if len(keys) == 0 {
		// Without an access key no token verifies: refuse rather than lock
		// every client out.
		return fmt.Errorf("%w: no access keys", ErrInvalid)
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		switch {
		case k.ID == "" || k.Secret == "":
			return fmt.Errorf("%w: access key with empty id or secret", ErrInvalid)
		case seen[k.ID]:
			return fmt.Errorf("%w: duplicate access key id %q", ErrInvalid, k.ID)
		}
		seen[k.ID] = true
	}
	return nil
}

// EnsureKeys returns the access keys (newest first) and the admin key,
// creating on first start whichever is missing with the generators given (so
// the store does not depend on the key format). created reports whether
// anything was created now. A generated Key with a zero CreatedAt gets now.
func (db *DB) EnsureKeys(ctx context.Context, newAccessKey func() Key, newAdminKey func() string) (access []Key, admin string, created bool, err error) {
	err = db.update(ctx, "ensure keys", func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketKeys))
		switch err := getJSON(b, keyAccess, &access); {
		case errors.Is(err, ErrNotFound):
			k := newAccessKey()
			if k.CreatedAt.IsZero() {
				k.CreatedAt = db.stamp()
			}
			access = []Key{k}
			if err := validAccessKeys(access); err != nil {
				return err
			}
			if err := putJSON(b, keyAccess, access); err != nil {
				return err
			}
			created = true
		case err != nil:
			return err
		}
		switch err := getJSON(b, keyAdmin, &admin); {
		case errors.Is(err, ErrNotFound):
			admin = newAdminKey()
			if admin == "" {
				return fmt.Errorf("%w: empty admin key", ErrInvalid)
			}
			if err := putJSON(b, keyAdmin, admin); err != nil {
				return err
			}
			created = true
		case err != nil:
			return err
		}
		return nil
	})
	if err != nil {
		return nil, "", false, err
	}
	if created {
		db.watch.notify(Change{Kind: ChangeKeys, Key: "access"}, Change{Kind: ChangeKeys, Key: "admin"})
	}
	return access, admin, created, nil
}

// AccessKeys returns the access keys, newest first, or ErrNotFound before
// EnsureKeys created them.
func (db *DB) AccessKeys(ctx context.Context) ([]Key, error) {
	var keys []Key
	err := db.view(ctx, "get access keys", func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket([]byte(bucketKeys)), keyAccess, &keys)
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// SetAccessKeys replaces the access keys (newest first, as given; used to
// rotate). The list must be non-empty with distinct, non-empty ids.
func (db *DB) SetAccessKeys(ctx context.Context, keys []Key) error {
	return db.changed(db.update(ctx, "set access keys", func(tx *bolt.Tx) error {
		if err := validAccessKeys(keys); err != nil {
			return err
		}
		return putJSON(tx.Bucket([]byte(bucketKeys)), keyAccess, keys)
	}), Change{Kind: ChangeKeys, Key: "access"})
}

// AdminKey returns the admin key, or ErrNotFound before EnsureKeys created it.
func (db *DB) AdminKey(ctx context.Context) (string, error) {
	var admin string
	err := db.view(ctx, "get admin key", func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket([]byte(bucketKeys)), keyAdmin, &admin)
	})
	if err != nil {
		return "", err
	}
	return admin, nil
}
