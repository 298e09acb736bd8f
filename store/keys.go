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

// EnsureKeys returns the access keys (newest first), creating on first
// start whichever of them and the admin key is missing with the generators
// given (so the store does not depend on the key format). admin is the new
// admin key when this call created it, and "" otherwise: the store keeps
// only its hash. created reports whether anything was created now. A
// generated Key with a zero CreatedAt gets now.
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
			if err := putJSON(b, keyAccess, db.seal.sealKeys(access)); err != nil {
				return err
			}
			created = true
		case err != nil:
			return err
		default:
			if err := db.seal.openKeys(access); err != nil {
				return err
			}
		}
		var stored string
		switch err := getJSON(b, keyAdmin, &stored); {
		case errors.Is(err, ErrNotFound):
			admin = newAdminKey()
			if admin == "" {
				return fmt.Errorf("%w: empty admin key", ErrInvalid)
			}
			if err := putJSON(b, keyAdmin, HashAdminKey(admin)); err != nil {
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
		if err := getJSON(tx.Bucket([]byte(bucketKeys)), keyAccess, &keys); err != nil {
			return err
		}
		return db.seal.openKeys(keys)
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
		return putJSON(tx.Bucket([]byte(bucketKeys)), keyAccess, db.seal.sealKeys(keys))
	}), Change{Kind: ChangeKeys, Key: "access"})
}

// AdminKeyHash returns the admin key's hash (compare keys with
// AdminKeyMatches), or ErrNotFound before EnsureKeys created it.
func (db *DB) AdminKeyHash(ctx context.Context) (string, error) {
	var stored string
	err := db.view(ctx, "get admin key", func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket([]byte(bucketKeys)), keyAdmin, &stored)
	})
	if err != nil {
		return "", err
	}
	return adminHash(stored), nil
}

// SetAdminKey replaces the admin key (the store keeps its hash): to
// recover access when the key is lost.
func (db *DB) SetAdminKey(ctx context.Context, key string) error {
	return db.changed(db.update(ctx, "set admin key", func(tx *bolt.Tx) error {
		if key == "" {
			return fmt.Errorf("%w: empty admin key", ErrInvalid)
		}
		return putJSON(tx.Bucket([]byte(bucketKeys)), keyAdmin, HashAdminKey(key))
	}), Change{Kind: ChangeKeys, Key: "admin"})
}

// Reseal rewrites every stored secret not in the form the store writes now
// (see WithSecrets): sealed with another key, in clear while a key is
// given, sealed while none is, and an admin key stored in clear by an
// earlier version, which becomes its hash. It returns how many records it
// rewrote, all in one transaction.
func (db *DB) Reseal(ctx context.Context) (int, error) {
	n := 0
	var changes []Change
	err := db.update(ctx, "reseal secrets", func(tx *bolt.Tx) error {
		kb := tx.Bucket([]byte(bucketKeys))
		var access []Key
		switch err := getJSON(kb, keyAccess, &access); {
		case err == nil:
			changed, err := db.seal.resealKeys(access)
			if err != nil {
				return err
			}
			if changed {
				if err := putJSON(kb, keyAccess, access); err != nil {
					return err
				}
				n++
				changes = append(changes, Change{Kind: ChangeKeys, Key: "access"})
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		var admin string
		switch err := getJSON(kb, keyAdmin, &admin); {
		case err == nil && admin != adminHash(admin):
			if err := putJSON(kb, keyAdmin, adminHash(admin)); err != nil {
				return err
			}
			n++
			changes = append(changes, Change{Kind: ChangeKeys, Key: "admin"})
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		ub := tx.Bucket([]byte(bucketUpstreams))
		type rewrite struct {
			key []byte
			u   Upstream
		}
		var rewrites []rewrite
		err := ub.ForEach(func(k, v []byte) error {
			var u Upstream
			if err := decode(k, v, &u); err != nil {
				return err
			}
			changed, err := db.seal.resealUpstream(&u)
			if changed {
				rewrites = append(rewrites, rewrite{append([]byte(nil), k...), u})
			}
			return err
		})
		if err != nil {
			return err
		}
		for _, r := range rewrites { // not under ForEach: a put may move the cursor
			if err := putJSON(ub, r.key, r.u); err != nil {
				return err
			}
			n++
			changes = append(changes, Change{Kind: ChangeUpstreams, Hub: r.u.Hub, Key: r.u.Name})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	db.watch.notify(changes...)
	return n, nil
}
