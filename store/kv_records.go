package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-gw/switchboard/internal/kvlist"
)

// ---- hubs

// CreateHub implements [Config.CreateHub]; kv.Create makes it atomic across
// nodes.
func (s *KV) CreateHub(ctx context.Context, h Hub) (Hub, error) {
	op := fmt.Sprintf("create hub %q", h.Name)
	if err := validHubName(h.Name); err != nil {
		return Hub{}, wrap(op, err)
	}
	h.CreatedAt = s.stamp()
	h.UpdatedAt = h.CreatedAt
	raw, err := marshal(h.Name, h)
	if err == nil {
		_, err = s.hubs.Create(ctx, enc(h.Name), raw)
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		err = ErrExists
	}
	if err != nil {
		return Hub{}, kvWrap(op, err)
	}
	return h, nil
}

// PutHub implements [Config.PutHub].
func (s *KV) PutHub(ctx context.Context, h Hub) (Hub, error) {
	op := fmt.Sprintf("put hub %q", h.Name)
	if err := validHubName(h.Name); err != nil {
		return Hub{}, wrap(op, err)
	}
	err := casUpdate(ctx, s.hubs, enc(h.Name), func(cur []byte) ([]byte, error) {
		h.UpdatedAt = s.stamp()
		h.CreatedAt = h.UpdatedAt
		if cur != nil {
			var old Hub
			if err := decode([]byte(h.Name), cur, &old); err != nil {
				return nil, err
			}
			h.CreatedAt = old.CreatedAt
		}
		return marshal(h.Name, h)
	})
	if err != nil {
		return Hub{}, kvWrap(op, err)
	}
	return h, nil
}

// Hub implements [Config.Hub].
func (s *KV) Hub(ctx context.Context, name string) (Hub, error) {
	op := fmt.Sprintf("get hub %q", name)
	if name == "" {
		return Hub{}, wrap(op, ErrNotFound)
	}
	var h Hub
	if _, err := kvGet(ctx, s.hubs, enc(name), &h); err != nil {
		return Hub{}, kvWrap(op, err)
	}
	return h, nil
}

// Hubs implements [Config.Hubs].
func (s *KV) Hubs(ctx context.Context) ([]Hub, error) {
	hubs, err := listJSON[Hub](ctx, s.hubs, jetstream.AllKeys)
	if err != nil {
		return nil, kvWrap("list hubs", err)
	}
	sort.Slice(hubs, func(i, j int) bool { return hubs[i].Name < hubs[j].Name })
	return hubs, nil
}

// DeleteHub implements [Config.DeleteHub] in several steps, not atomically:
// the hub's upstreams and memberships first, then the hub, then its
// upstreams and memberships once more for any created meanwhile. If a step
// fails the hub is still there (or only leftovers created concurrently
// remain), so deleting again finishes the job; and a hub deleted and created
// again never inherits the old hub's upstreams. Meanwhile readers may see
// the hub with only part of its upstreams.
func (s *KV) DeleteHub(ctx context.Context, name string) error {
	op := fmt.Sprintf("delete hub %q", name)
	if name == "" {
		return wrap(op, ErrNotFound)
	}
	var h Hub
	if _, err := kvGet(ctx, s.hubs, enc(name), &h); err != nil {
		return kvWrap(op, err)
	}
	if err := s.deleteHubRecords(ctx, name); err != nil {
		return kvWrap(op, err)
	}
	if err := s.hubs.Delete(ctx, enc(name)); err != nil {
		return kvWrap(op, err)
	}
	return kvWrap(op, s.deleteHubRecords(ctx, name))
}

func (s *KV) deleteHubRecords(ctx context.Context, hub string) error {
	for _, kv := range []jetstream.KeyValue{s.upstreams, s.groups} {
		entries, err := kvlist.List(ctx, kv, enc(hub)+".*")
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := kv.Delete(ctx, e.Key()); err != nil {
				return fmt.Errorf("%s: %w", kv.Bucket(), err)
			}
		}
	}
	return nil
}

// listJSON decodes every current value matching filter.
func listJSON[T any](ctx context.Context, kv jetstream.KeyValue, filter string) ([]T, error) {
	entries, err := kvlist.List(ctx, kv, filter)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(entries))
	for _, e := range entries {
		if kv.Bucket() == kvBucketUpstreams && e.Key() == kvSeqKey {
			continue
		}
		var v T
		if err := decode([]byte(e.Key()), e.Value(), &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// ---- upstreams

// kvUpstream is an upstream with its place in the creation order, which a
// KV (unlike a bbolt cursor) does not keep.
type kvUpstream struct {
	Upstream
	Seq uint64 `json:"seq"`
}

// nextSeq takes the next upstream sequence number from the counter key.
func (s *KV) nextSeq(ctx context.Context) (uint64, error) {
	var n uint64
	err := casUpdate(ctx, s.upstreams, kvSeqKey, func(cur []byte) ([]byte, error) {
		n = 0
		if cur != nil {
			v, err := strconv.ParseUint(string(cur), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("decode %q: %w", kvSeqKey, err)
			}
			n = v
		}
		n++
		return []byte(strconv.FormatUint(n, 10)), nil
	})
	return n, err
}

// putUpstream is DB.putUpstream for KV. The hub check and the write are two
// steps: an upstream created while its hub is deleted may be left behind,
// which DeleteHub's last sweep makes unlikely.
func (s *KV) putUpstream(ctx context.Context, u *Upstream, replace bool) error {
	if u.Name == "" {
		return fmt.Errorf("%w: upstream name is empty", ErrInvalid)
	}
	if u.Hub == "" {
		return fmt.Errorf("hub: %w", ErrNotFound)
	}
	var h Hub
	if _, err := kvGet(ctx, s.hubs, enc(u.Hub), &h); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	key, _ := pairKey(u.Hub, u.Name)
	var seq uint64 // taken once, only when the upstream turns out to be new
	return casUpdate(ctx, s.upstreams, key, func(cur []byte) ([]byte, error) {
		u.UpdatedAt = s.stamp()
		next := kvUpstream{Upstream: *u}
		switch {
		case cur != nil && !replace:
			return nil, ErrExists
		case cur != nil:
			var old kvUpstream
			if err := decode([]byte(key), cur, &old); err != nil {
				return nil, err
			}
			next.CreatedAt, next.Seq = old.CreatedAt, old.Seq
		default:
			if seq == 0 {
				var err error
				if seq, err = s.nextSeq(ctx); err != nil {
					return nil, err
				}
			}
			next.CreatedAt, next.Seq = u.UpdatedAt, seq
		}
		*u = next.Upstream
		next.Upstream = s.seal.sealUpstream(next.Upstream)
		return marshal(key, next)
	})
}

// CreateUpstream implements [Config.CreateUpstream].
func (s *KV) CreateUpstream(ctx context.Context, u Upstream) (Upstream, error) {
	if err := s.putUpstream(ctx, &u, false); err != nil {
		return Upstream{}, kvWrap(fmt.Sprintf("create upstream %q of hub %q", u.Name, u.Hub), err)
	}
	return u, nil
}

// PutUpstream implements [Config.PutUpstream].
func (s *KV) PutUpstream(ctx context.Context, u Upstream) (Upstream, error) {
	if err := s.putUpstream(ctx, &u, true); err != nil {
		return Upstream{}, kvWrap(fmt.Sprintf("put upstream %q of hub %q", u.Name, u.Hub), err)
	}
	return u, nil
}

// Upstream implements [Config.Upstream].
func (s *KV) Upstream(ctx context.Context, hub, name string) (Upstream, error) {
	op := fmt.Sprintf("get upstream %q of hub %q", name, hub)
	key, ok := pairKey(hub, name)
	if !ok {
		return Upstream{}, wrap(op, ErrNotFound)
	}
	var u kvUpstream
	if _, err := kvGet(ctx, s.upstreams, key, &u); err != nil {
		return Upstream{}, kvWrap(op, err)
	}
	if err := s.seal.openUpstream(&u.Upstream); err != nil {
		return Upstream{}, wrap(op, err)
	}
	return u.Upstream, nil
}

// Upstreams implements [Config.Upstreams].
func (s *KV) Upstreams(ctx context.Context, hub string) ([]Upstream, error) {
	if hub == "" {
		return nil, nil
	}
	return s.listUpstreams(ctx, fmt.Sprintf("list upstreams of hub %q", hub), enc(hub)+".*")
}

// AllUpstreams implements [Config.AllUpstreams].
func (s *KV) AllUpstreams(ctx context.Context) ([]Upstream, error) {
	return s.listUpstreams(ctx, "list upstreams", "*.*")
}

func (s *KV) listUpstreams(ctx context.Context, op, filter string) ([]Upstream, error) {
	list, err := listJSON[kvUpstream](ctx, s.upstreams, filter)
	if err != nil {
		return nil, kvWrap(op, err)
	}
	sort.Slice(list, func(i, j int) bool {
		if a, b := list[i].Hub, list[j].Hub; a != b {
			return a < b
		}
		return list[i].Seq < list[j].Seq
	})
	var ups []Upstream
	for _, u := range list {
		if err := s.seal.openUpstream(&u.Upstream); err != nil {
			return nil, wrap(op, err)
		}
		ups = append(ups, u.Upstream)
	}
	return ups, nil
}

// DeleteUpstream implements [Config.DeleteUpstream].
func (s *KV) DeleteUpstream(ctx context.Context, hub, name string) error {
	op := fmt.Sprintf("delete upstream %q of hub %q", name, hub)
	key, ok := pairKey(hub, name)
	if !ok {
		return wrap(op, ErrNotFound)
	}
	return kvWrap(op, casUpdate(ctx, s.upstreams, key, func(cur []byte) ([]byte, error) {
		if cur == nil {
			return nil, ErrNotFound
		}
		return nil, nil
	}))
}

// SetUpstreamDisabled implements [Config.SetUpstreamDisabled].
func (s *KV) SetUpstreamDisabled(ctx context.Context, hub, name string, disabled bool, reason string) error {
	op := fmt.Sprintf("disable upstream %q of hub %q", name, hub)
	key, ok := pairKey(hub, name)
	if !ok {
		return wrap(op, ErrNotFound)
	}
	return kvWrap(op, casUpdate(ctx, s.upstreams, key, func(cur []byte) ([]byte, error) {
		if cur == nil {
			return nil, ErrNotFound
		}
		var u kvUpstream
		if err := decode([]byte(key), cur, &u); err != nil {
			return nil, err
		}
		u.Disabled, u.DisabledReason = disabled, reason
		if !disabled {
			u.DisabledReason = ""
		}
		u.UpdatedAt = s.stamp()
		return marshal(key, u)
	}))
}

// ---- keys

// EnsureKeys implements [Config.EnsureKeys]. Each key is written with
// kv.Create, so when nodes start together the first writer wins and the
// others return the winner's keys (and no admin key: only the winner saw
// it).
func (s *KV) EnsureKeys(ctx context.Context, newAccessKey func() Key, newAdminKey func() string) (access []Key, admin string, created bool, err error) {
	access, c1, err := ensureKey(ctx, s.keys, string(keyAccess), func() ([]Key, error) {
		k := newAccessKey()
		if k.CreatedAt.IsZero() {
			k.CreatedAt = s.stamp()
		}
		keys := []Key{k}
		return s.seal.sealKeys(keys), validAccessKeys(keys)
	})
	if err == nil {
		err = s.seal.openKeys(access)
	}
	if err != nil {
		return nil, "", false, kvWrap("ensure keys", err)
	}
	var fresh string
	_, c2, err := ensureKey(ctx, s.keys, string(keyAdmin), func() (string, error) {
		fresh = newAdminKey()
		if fresh == "" {
			return "", fmt.Errorf("%w: empty admin key", ErrInvalid)
		}
		return HashAdminKey(fresh), nil
	})
	if err != nil {
		return nil, "", false, kvWrap("ensure keys", err)
	}
	if c2 {
		admin = fresh
	}
	return access, admin, c1 || c2, nil
}

// ensureKey returns the value at key, creating it with gen if absent;
// created reports whether this call's value won.
func ensureKey[T any](ctx context.Context, kv jetstream.KeyValue, key string, gen func() (T, error)) (v T, created bool, err error) {
	for {
		if _, err := kvGet(ctx, kv, key, &v); !errors.Is(err, ErrNotFound) {
			return v, false, err
		}
		v, err = gen()
		if err != nil {
			return v, false, err
		}
		raw, err := marshal(key, v)
		if err != nil {
			return v, false, err
		}
		_, err = kv.Create(ctx, key, raw)
		switch {
		case err == nil:
			return v, true, nil
		case errors.Is(err, jetstream.ErrKeyExists):
			continue // another node created it first: read theirs
		}
		// The create may have been stored though its answer was lost (a
		// timeout on a loaded cluster). A stored value equal to ours, which
		// holds fresh random keys, is ours: the caller must show it, as the
		// admin key is kept only as a hash.
		if e, gerr := kv.Get(ctx, key); gerr == nil && bytes.Equal(e.Value(), raw) {
			return v, true, nil
		}
		return v, false, err
	}
}

// AccessKeys implements [Config.AccessKeys].
func (s *KV) AccessKeys(ctx context.Context) ([]Key, error) {
	var keys []Key
	if _, err := kvGet(ctx, s.keys, string(keyAccess), &keys); err != nil {
		return nil, kvWrap("get access keys", err)
	}
	if err := s.seal.openKeys(keys); err != nil {
		return nil, wrap("get access keys", err)
	}
	return keys, nil
}

// SetAccessKeys implements [Config.SetAccessKeys].
func (s *KV) SetAccessKeys(ctx context.Context, keys []Key) error {
	if err := validAccessKeys(keys); err != nil {
		return wrap("set access keys", err)
	}
	raw, err := marshal(string(keyAccess), s.seal.sealKeys(keys))
	if err == nil {
		_, err = s.keys.Put(ctx, string(keyAccess), raw)
	}
	return kvWrap("set access keys", err)
}

// AdminKeyHash implements [Config.AdminKeyHash].
func (s *KV) AdminKeyHash(ctx context.Context) (string, error) {
	var stored string
	if _, err := kvGet(ctx, s.keys, string(keyAdmin), &stored); err != nil {
		return "", kvWrap("get admin key", err)
	}
	return adminHash(stored), nil
}

// SetAdminKey implements [Config.SetAdminKey].
func (s *KV) SetAdminKey(ctx context.Context, key string) error {
	if key == "" {
		return wrap("set admin key", fmt.Errorf("%w: empty admin key", ErrInvalid))
	}
	raw, err := marshal(string(keyAdmin), HashAdminKey(key))
	if err == nil {
		_, err = s.keys.Put(ctx, string(keyAdmin), raw)
	}
	return kvWrap("set admin key", err)
}

// Reseal implements [Config.Reseal], one revision-checked write per record
// that needs one, so nodes resealing at once (each at its start) do the
// work once and lose nothing written meanwhile. During a key rotation in a
// cluster, every node must hold the new key (as an Old key) before any
// node seals with it.
func (s *KV) Reseal(ctx context.Context) (int, error) {
	const op = "reseal secrets"
	n := 0
	count := func(changed bool) {
		if changed {
			n++
		}
	}
	var changed bool
	err := casUpdate(ctx, s.keys, string(keyAccess), func(cur []byte) ([]byte, error) {
		changed = false
		if cur == nil {
			return nil, errUnchanged
		}
		var keys []Key
		if err := decode(keyAccess, cur, &keys); err != nil {
			return nil, err
		}
		c, err := s.seal.resealKeys(keys)
		if err == nil && !c {
			err = errUnchanged
		}
		if err != nil {
			return nil, err
		}
		changed = true
		return marshal(string(keyAccess), keys)
	})
	if err != nil {
		return n, kvWrap(op, err)
	}
	count(changed)
	err = casUpdate(ctx, s.keys, string(keyAdmin), func(cur []byte) ([]byte, error) {
		changed = false
		if cur == nil {
			return nil, errUnchanged
		}
		var stored string
		if err := decode(keyAdmin, cur, &stored); err != nil {
			return nil, err
		}
		if stored == adminHash(stored) {
			return nil, errUnchanged
		}
		changed = true
		return marshal(string(keyAdmin), adminHash(stored))
	})
	if err != nil {
		return n, kvWrap(op, err)
	}
	count(changed)
	entries, err := kvlist.List(ctx, s.upstreams, jetstream.AllKeys)
	if err != nil {
		return n, kvWrap(op, err)
	}
	for _, e := range entries {
		if e.Key() == kvSeqKey {
			continue
		}
		err := casUpdate(ctx, s.upstreams, e.Key(), func(cur []byte) ([]byte, error) {
			changed = false
			if cur == nil {
				return nil, errUnchanged // deleted meanwhile
			}
			var u kvUpstream
			if err := decode([]byte(e.Key()), cur, &u); err != nil {
				return nil, err
			}
			c, err := s.seal.resealUpstream(&u.Upstream)
			if err == nil && !c {
				err = errUnchanged
			}
			if err != nil {
				return nil, err
			}
			changed = true
			return marshal(e.Key(), u)
		})
		if err != nil {
			return n, kvWrap(op, err)
		}
		count(changed)
	}
	return n, nil
}

// ---- user groups
//
// All memberships of one user in one hub share a key, so UserGroups, read
// on every connect, is one Get; writes read-modify-write it with a revision
// check.

// updateUser applies fn to the user's memberships (sorted by group) and
// saves the result, deleting the key when none remain.
func (s *KV) updateUser(ctx context.Context, hub, user string, fn func([]UserGroup) []UserGroup) error {
	key, ok := pairKey(hub, user)
	if !ok {
		return nil
	}
	return casUpdate(ctx, s.groups, key, func(cur []byte) ([]byte, error) {
		var ms []UserGroup
		if cur != nil {
			if err := decode([]byte(key), cur, &ms); err != nil {
				return nil, err
			}
		}
		ms = fn(ms)
		if len(ms) == 0 {
			return nil, nil
		}
		return marshal(key, ms)
	})
}

// AddUserToGroup implements [Config.AddUserToGroup].
func (s *KV) AddUserToGroup(ctx context.Context, m UserGroup) error {
	op := fmt.Sprintf("add user %q to group %q of hub %q", m.User, m.Group, m.Hub)
	if m.Hub == "" || m.User == "" || m.Group == "" {
		return wrap(op, fmt.Errorf("%w: empty hub, user or group", ErrInvalid))
	}
	if !m.ExpiresAt.IsZero() {
		m.ExpiresAt = m.ExpiresAt.UTC().Round(0)
	}
	return kvWrap(op, s.updateUser(ctx, m.Hub, m.User, func(ms []UserGroup) []UserGroup {
		i, found := slices.BinarySearchFunc(ms, m.Group, func(x UserGroup, g string) int { return strings.Compare(x.Group, g) })
		if found {
			ms[i] = m
			return ms
		}
		return slices.Insert(ms, i, m)
	}))
}

// RemoveUserFromGroup implements [Config.RemoveUserFromGroup].
func (s *KV) RemoveUserFromGroup(ctx context.Context, hub, user, group string) error {
	op := fmt.Sprintf("remove user %q from group %q of hub %q", user, group, hub)
	return kvWrap(op, s.updateUser(ctx, hub, user, func(ms []UserGroup) []UserGroup {
		return slices.DeleteFunc(ms, func(x UserGroup) bool { return x.Group == group })
	}))
}

// RemoveUserFromAllGroups implements [Config.RemoveUserFromAllGroups].
func (s *KV) RemoveUserFromAllGroups(ctx context.Context, hub, user string) error {
	op := fmt.Sprintf("remove user %q from all groups of hub %q", user, hub)
	return kvWrap(op, s.updateUser(ctx, hub, user, func([]UserGroup) []UserGroup { return nil }))
}

// UserGroups implements [Config.UserGroups].
func (s *KV) UserGroups(ctx context.Context, hub, user string) ([]UserGroup, error) {
	key, ok := pairKey(hub, user)
	if !ok {
		return nil, nil
	}
	now := s.now()
	var ms []UserGroup
	_, err := kvGet(ctx, s.groups, key, &ms)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, kvWrap(fmt.Sprintf("list groups of user %q in hub %q", user, hub), err)
	}
	return unexpired(ms, now), nil
}

func unexpired(ms []UserGroup, now time.Time) []UserGroup {
	return slices.DeleteFunc(ms, func(m UserGroup) bool { return m.expired(now) })
}

// AllUserGroups implements [Config.AllUserGroups].
func (s *KV) AllUserGroups(ctx context.Context) ([]UserGroup, error) {
	now := s.now()
	lists, err := listJSON[[]UserGroup](ctx, s.groups, jetstream.AllKeys)
	if err != nil {
		return nil, kvWrap("list user groups", err)
	}
	var ms []UserGroup
	for _, l := range lists {
		ms = append(ms, unexpired(l, now)...)
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

// PurgeExpiredUserGroups implements [Config.PurgeExpiredUserGroups]: one
// revision-checked write per user with expired memberships, so a membership
// renewed meanwhile on another node survives.
func (s *KV) PurgeExpiredUserGroups(ctx context.Context, now time.Time) (int, error) {
	entries, err := kvlist.List(ctx, s.groups, jetstream.AllKeys)
	if err != nil {
		return 0, kvWrap("purge expired user groups", err)
	}
	n := 0
	for _, e := range entries {
		var ms []UserGroup
		if err := json.Unmarshal(e.Value(), &ms); err != nil || len(ms) == 0 {
			continue
		}
		if !slices.ContainsFunc(ms, func(m UserGroup) bool { return m.expired(now) }) {
			continue
		}
		removed := 0 // of the attempt that was saved: casUpdate may retry
		err := s.updateUser(ctx, ms[0].Hub, ms[0].User, func(cur []UserGroup) []UserGroup {
			before := len(cur)
			cur = slices.DeleteFunc(cur, func(m UserGroup) bool { return m.expired(now) })
			removed = before - len(cur)
			return cur
		})
		if err != nil {
			return 0, kvWrap("purge expired user groups", err)
		}
		n += removed
	}
	return n, nil
}
