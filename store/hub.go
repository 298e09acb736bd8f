package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Hub is a hub's settings. Zero values mean defaults (documented on the
// gateway side).
type Hub struct {
	Name           string   `json:"name"`
	AllowAnonymous bool     `json:"allowAnonymous"`
	MaxMessageSize int      `json:"maxMessageSize,omitempty"` // bytes; 0 = default 32 KiB
	AllowedOrigins []string `json:"allowedOrigins,omitempty"` // CORS/WebSocket origins; empty = any
	// Transports are the client transports the hub offers in negotiate and
	// serves, by their SignalR names (WebSockets, ServerSentEvents,
	// LongPolling); empty = all three. The admin API checks the names.
	Transports []string  `json:"transports,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

func validHubName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: hub name is empty", ErrInvalid)
	}
	return nil
}

// CreateHub saves a new hub, setting CreatedAt and UpdatedAt to now. It fails
// with ErrExists if a hub of that name exists.
func (db *DB) CreateHub(ctx context.Context, h Hub) (Hub, error) {
	err := db.update(ctx, fmt.Sprintf("create hub %q", h.Name), func(tx *bolt.Tx) error {
		if err := validHubName(h.Name); err != nil {
			return err
		}
		b := tx.Bucket([]byte(bucketHubs))
		if b.Get([]byte(h.Name)) != nil {
			return ErrExists
		}
		h.CreatedAt = db.stamp()
		h.UpdatedAt = h.CreatedAt
		return putJSON(b, []byte(h.Name), h)
	})
	if err := db.changed(err, Change{Kind: ChangeHubs, Hub: h.Name, Key: h.Name}); err != nil {
		return Hub{}, err
	}
	return h, nil
}

// PutHub creates or replaces a hub. Replacing keeps the existing CreatedAt;
// UpdatedAt is always now.
func (db *DB) PutHub(ctx context.Context, h Hub) (Hub, error) {
	err := db.update(ctx, fmt.Sprintf("put hub %q", h.Name), func(tx *bolt.Tx) error {
		if err := validHubName(h.Name); err != nil {
			return err
		}
		b := tx.Bucket([]byte(bucketHubs))
		h.UpdatedAt = db.stamp()
		var old Hub
		switch err := getJSON(b, []byte(h.Name), &old); {
		case err == nil:
			h.CreatedAt = old.CreatedAt
		case errors.Is(err, ErrNotFound):
			h.CreatedAt = h.UpdatedAt
		default:
			return err
		}
		return putJSON(b, []byte(h.Name), h)
	})
	if err := db.changed(err, Change{Kind: ChangeHubs, Hub: h.Name, Key: h.Name}); err != nil {
		return Hub{}, err
	}
	return h, nil
}

// Hub returns the named hub or ErrNotFound.
func (db *DB) Hub(ctx context.Context, name string) (Hub, error) {
	var h Hub
	err := db.view(ctx, fmt.Sprintf("get hub %q", name), func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket([]byte(bucketHubs)), []byte(name), &h)
	})
	if err != nil {
		return Hub{}, err
	}
	return h, nil
}

// Hubs returns every hub, sorted by name.
func (db *DB) Hubs(ctx context.Context) ([]Hub, error) {
	var hubs []Hub
	err := db.view(ctx, "list hubs", func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketHubs)).ForEach(func(k, v []byte) error {
			var h Hub
			if err := decode(k, v, &h); err != nil {
				return err
			}
			hubs = append(hubs, h)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// Keys are already in byte order; sorting states the contract rather than
	// relying on it.
	sort.SliceStable(hubs, func(i, j int) bool { return hubs[i].Name < hubs[j].Name })
	return hubs, nil
}

// DeleteHub removes the hub with its upstreams and user-group memberships, in
// one transaction. It fails with ErrNotFound if there is no such hub.
func (db *DB) DeleteHub(ctx context.Context, name string) error {
	return db.changed(db.update(ctx, fmt.Sprintf("delete hub %q", name), func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketHubs))
		if b.Get([]byte(name)) == nil {
			return ErrNotFound
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		prefix := appendPart(nil, name)
		if _, err := deletePrefix(tx.Bucket([]byte(bucketUpstreams)), prefix); err != nil {
			return fmt.Errorf("upstreams: %w", err)
		}
		if _, err := deletePrefix(tx.Bucket([]byte(bucketUserGroups)), prefix); err != nil {
			return fmt.Errorf("user groups: %w", err)
		}
		return nil
	}), Change{Kind: ChangeHubs, Hub: name, Key: name})
}
