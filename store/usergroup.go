package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// UserGroup is one persisted user→group membership; it applies to the user's
// current and future connections.
type UserGroup struct {
	Hub       string    `json:"hub"`
	User      string    `json:"user"`
	Group     string    `json:"group"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"` // zero = never
}

// expired reports whether m no longer applies at now. A membership expires at
// ExpiresAt itself, so a TTL of d means "for d", not "for d and a tick".
func (m UserGroup) expired(now time.Time) bool {
	return !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt)
}

func userPrefix(hub, user string) []byte { return appendPart(appendPart(nil, hub), user) }

// AddUserToGroup saves the membership, replacing an existing one of the same
// hub, user and group (so a new ExpiresAt wins). The hub is not checked: the
// gateway decides which hubs accept memberships; DeleteHub still removes them.
func (db *DB) AddUserToGroup(ctx context.Context, m UserGroup) error {
	op := fmt.Sprintf("add user %q to group %q of hub %q", m.User, m.Group, m.Hub)
	return db.changed(db.update(ctx, op, func(tx *bolt.Tx) error {
		if m.Hub == "" || m.User == "" || m.Group == "" {
			return fmt.Errorf("%w: empty hub, user or group", ErrInvalid)
		}
		if !m.ExpiresAt.IsZero() {
			m.ExpiresAt = m.ExpiresAt.UTC().Round(0)
		}
		key := append(userPrefix(m.Hub, m.User), m.Group...)
		return putJSON(tx.Bucket([]byte(bucketUserGroups)), key, m)
	}), Change{Kind: ChangeUserGroups, Hub: m.Hub, Key: m.User})
}

// RemoveUserFromGroup deletes the membership; an absent one is not an error.
func (db *DB) RemoveUserFromGroup(ctx context.Context, hub, user, group string) error {
	op := fmt.Sprintf("remove user %q from group %q of hub %q", user, group, hub)
	return db.changed(db.update(ctx, op, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketUserGroups)).Delete(append(userPrefix(hub, user), group...))
	}), Change{Kind: ChangeUserGroups, Hub: hub, Key: user})
}

// RemoveUserFromAllGroups deletes every membership of the user in the hub.
func (db *DB) RemoveUserFromAllGroups(ctx context.Context, hub, user string) error {
	op := fmt.Sprintf("remove user %q from all groups of hub %q", user, hub)
	return db.changed(db.update(ctx, op, func(tx *bolt.Tx) error {
		_, err := deletePrefix(tx.Bucket([]byte(bucketUserGroups)), userPrefix(hub, user))
		return err
	}), Change{Kind: ChangeUserGroups, Hub: hub, Key: user})
}

// UserGroups returns the user's unexpired memberships in the hub, sorted by
// group.
func (db *DB) UserGroups(ctx context.Context, hub, user string) ([]UserGroup, error) {
	now := db.now()
	var ms []UserGroup
	err := db.view(ctx, fmt.Sprintf("list groups of user %q in hub %q", user, hub), func(tx *bolt.Tx) error {
		prefix := userPrefix(hub, user)
		c := tx.Bucket([]byte(bucketUserGroups)).Cursor()
		for k, v := c.Seek(prefix); hasPrefix(k, prefix); k, v = c.Next() {
			var m UserGroup
			if err := decode(k, v, &m); err != nil {
				return err
			}
			if !m.expired(now) {
				ms = append(ms, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ms, nil // key order is group order: the prefix is fixed
}

// AllUserGroups returns every unexpired membership, sorted by hub, user and
// group, for loading at start.
func (db *DB) AllUserGroups(ctx context.Context) ([]UserGroup, error) {
	now := db.now()
	var ms []UserGroup
	err := db.view(ctx, "list user groups", func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketUserGroups)).ForEach(func(k, v []byte) error {
			var m UserGroup
			if err := decode(k, v, &m); err != nil {
				return err
			}
			if !m.expired(now) {
				ms = append(ms, m)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(ms, func(i, j int) bool {
		a, b := ms[i], ms[j]
		if a.Hub != b.Hub {
			return a.Hub < b.Hub
		}
		if a.User != b.User {
			return a.User < b.User
		}
		return a.Group < b.Group
	})
	return ms, nil
}

// PurgeExpiredUserGroups deletes the memberships expired at now and returns
// how many it deleted.
func (db *DB) PurgeExpiredUserGroups(ctx context.Context, now time.Time) (int, error) {
	var n int
	var purged []Change
	err := db.update(ctx, "purge expired user groups", func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketUserGroups))
		var stale [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var m UserGroup
			if err := decode(k, v, &m); err != nil {
				return err
			}
			if m.expired(now) {
				stale = append(stale, append([]byte(nil), k...))
				purged = append(purged, Change{Kind: ChangeUserGroups, Hub: m.Hub, Key: m.User})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(stale)
		return nil
	})
	if err := db.changed(err, purged...); err != nil {
		return 0, err
	}
	return n, nil
}
