package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/store"
)

// configView is the node's copy in memory of its configuration: hubs,
// upstreams and keys, read on every negotiate, REST call and admin request.
// Reads are answered from memory, so a clustered node keeps serving clients,
// REST calls, admin reads and /readyz while NATS KV is unavailable, and a
// lookup costs neither a network round trip nor a bbolt read. Writes go to
// the store with the caller's context and update the copy once they
// succeeded, so a node reads its own writes at once; other nodes' writes
// arrive through the store's Watch (refresh). A hub or upstream the copy
// does not know yet (created on another node a moment ago) is read from the
// store, within missReads. User-group memberships are not copied: they are
// read per user.
type configView struct {
	store store.Config
	// missReads bounds the store reads that lookups of unknown hubs make.
	// A hub name comes from the client before any credential is checked
	// (negotiate, connect, a CORS preflight), so without a bound anyone could
	// make the node read NATS KV or bbolt as often as they liked. Past it, a
	// miss is answered from the copy, which Watch keeps current: only a hub
	// created on another node in the last moments is then not found yet.
	missReads *rate.Limiter

	mu        sync.RWMutex // guards the fields below
	hubs      map[string]store.Hub
	upstreams map[string][]store.Upstream // by hub, in the order events try them
	keys      []store.Key
	adminHash string
	// stale says why the copy may be behind the store ("" when it is not):
	// a refresh failed, and the next one reloads everything.
	stale string
}

// Store reads for unknown hub names: per second, and at once.
const (
	missReadsPerSecond = 20
	missReadsBurst     = 20
)

func newConfigView(s store.Config) *configView {
	return &configView{store: s, missReads: rate.NewLimiter(missReadsPerSecond, missReadsBurst)}
}

var (
	_ httpapi.Store          = (*configView)(nil)
	_ gateway.UserGroupStore = (*configView)(nil)
)

// load reads the whole configuration into memory.
func (v *configView) load(ctx context.Context) error {
	hubs, err := v.store.Hubs(ctx)
	if err != nil {
		return err
	}
	ups, err := v.store.AllUpstreams(ctx)
	if err != nil {
		return err
	}
	keys, admin, err := v.readKeys(ctx)
	if err != nil {
		return err
	}
	hm := make(map[string]store.Hub, len(hubs))
	for _, h := range hubs {
		hm[h.Name] = h
	}
	um := make(map[string][]store.Upstream)
	for _, u := range ups { // AllUpstreams keeps each hub's order
		um[u.Hub] = append(um[u.Hub], u)
	}
	v.mu.Lock()
	v.hubs, v.upstreams, v.keys, v.adminHash, v.stale = hm, um, keys, admin, ""
	v.mu.Unlock()
	return nil
}

// refresh brings the copy up to date after ch. What it cannot read is
// logged by the caller; the copy then stays as it was, marked stale, and
// the next change reloads everything.
func (v *configView) refresh(ctx context.Context, ch store.Change) error {
	v.mu.RLock()
	stale := v.stale != ""
	v.mu.RUnlock()
	var err error
	switch {
	case ch.Kind == store.ChangeAll || stale:
		err = v.load(ctx)
	case ch.Kind == store.ChangeHubs:
		err = v.reloadHub(ctx, ch.Hub)
	case ch.Kind == store.ChangeUpstreams:
		err = v.reloadUpstreams(ctx, ch.Hub)
	case ch.Kind == store.ChangeKeys:
		err = v.reloadKeys(ctx)
	}
	if err != nil {
		v.mu.Lock()
		v.stale = err.Error()
		v.mu.Unlock()
	}
	return err
}

func (v *configView) reloadHub(ctx context.Context, name string) error {
	h, err := v.store.Hub(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		v.mu.Lock()
		delete(v.hubs, name)
		delete(v.upstreams, name) // a deleted hub takes its upstreams along
		v.mu.Unlock()
		return nil
	case err != nil:
		return err
	}
	v.rememberHub(h)
	return nil
}

func (v *configView) reloadUpstreams(ctx context.Context, hub string) error {
	ups, err := v.store.Upstreams(ctx, hub)
	if err != nil {
		return err
	}
	v.mu.Lock()
	if len(ups) == 0 {
		delete(v.upstreams, hub)
	} else {
		v.upstreams[hub] = ups
	}
	v.mu.Unlock()
	return nil
}

func (v *configView) reloadKeys(ctx context.Context) error {
	keys, admin, err := v.readKeys(ctx)
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.keys, v.adminHash = keys, admin
	v.mu.Unlock()
	return nil
}

func (v *configView) readKeys(ctx context.Context) ([]store.Key, string, error) {
	keys, err := v.store.AccessKeys(ctx)
	if err != nil {
		return nil, "", err
	}
	admin, err := v.store.AdminKeyHash(ctx)
	return keys, admin, err
}

// staleReason says why the copy may be behind the store; "" when it is not.
func (v *configView) staleReason() string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.stale
}

func (v *configView) rememberHub(h store.Hub) {
	v.mu.Lock()
	v.hubs[h.Name] = h
	v.mu.Unlock()
}

// ---- hubs

func (v *configView) Hub(ctx context.Context, name string) (store.Hub, error) {
	v.mu.RLock()
	h, ok := v.hubs[name]
	v.mu.RUnlock()
	if ok {
		return h, nil
	}
	if !v.missReads.Allow() {
		return store.Hub{}, fmt.Errorf("hub %q: %w (not in this node's copy; the store was not asked, past %d reads a second)", name, store.ErrNotFound, missReadsPerSecond)
	}
	h, err := v.store.Hub(ctx, name)
	if err == nil {
		v.rememberHub(h)
	}
	return h, err
}

func (v *configView) Hubs(context.Context) ([]store.Hub, error) {
	v.mu.RLock()
	out := make([]store.Hub, 0, len(v.hubs))
	for _, h := range v.hubs {
		out = append(out, h)
	}
	v.mu.RUnlock()
	slices.SortFunc(out, func(a, b store.Hub) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (v *configView) CreateHub(ctx context.Context, h store.Hub) (store.Hub, error) {
	h, err := v.store.CreateHub(ctx, h)
	if err == nil {
		v.rememberHub(h)
	}
	return h, err
}

func (v *configView) PutHub(ctx context.Context, h store.Hub) (store.Hub, error) {
	h, err := v.store.PutHub(ctx, h)
	if err == nil {
		v.rememberHub(h)
	}
	return h, err
}

func (v *configView) DeleteHub(ctx context.Context, name string) error {
	err := v.store.DeleteHub(ctx, name)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		v.mu.Lock()
		delete(v.hubs, name)
		delete(v.upstreams, name)
		v.mu.Unlock()
	}
	return err
}

// ---- upstreams

func (v *configView) Upstream(ctx context.Context, hub, name string) (store.Upstream, error) {
	v.mu.RLock()
	for _, u := range v.upstreams[hub] {
		if u.Name == name {
			v.mu.RUnlock()
			return u, nil
		}
	}
	v.mu.RUnlock()
	return v.store.Upstream(ctx, hub, name)
}

func (v *configView) Upstreams(_ context.Context, hub string) ([]store.Upstream, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return slices.Clone(v.upstreams[hub]), nil
}

// AllUpstreams returns every hub's upstreams, by hub name and in each hub's
// order.
func (v *configView) AllUpstreams() []store.Upstream {
	v.mu.RLock()
	hubs := make([]string, 0, len(v.upstreams))
	for h := range v.upstreams {
		hubs = append(hubs, h)
	}
	slices.Sort(hubs)
	var out []store.Upstream
	for _, h := range hubs {
		out = append(out, v.upstreams[h]...)
	}
	v.mu.RUnlock()
	return out
}

func (v *configView) CreateUpstream(ctx context.Context, u store.Upstream) (store.Upstream, error) {
	u, err := v.store.CreateUpstream(ctx, u)
	if err == nil {
		v.rememberUpstream(u)
	}
	return u, err
}

func (v *configView) PutUpstream(ctx context.Context, u store.Upstream) (store.Upstream, error) {
	u, err := v.store.PutUpstream(ctx, u)
	if err == nil {
		v.rememberUpstream(u)
	}
	return u, err
}

// SetUpstreamDisabled saves that an upstream answered 410 Gone (or is
// enabled again).
func (v *configView) SetUpstreamDisabled(ctx context.Context, hub, name string, disabled bool, reason string) error {
	if err := v.store.SetUpstreamDisabled(ctx, hub, name, disabled, reason); err != nil {
		return err
	}
	u, err := v.store.Upstream(ctx, hub, name)
	if err == nil {
		v.rememberUpstream(u)
	}
	return nil
}

// rememberUpstream replaces u in its hub's list, keeping its place, or adds
// it at the end (a new upstream is tried last).
func (v *configView) rememberUpstream(u store.Upstream) {
	v.mu.Lock()
	defer v.mu.Unlock()
	list := v.upstreams[u.Hub]
	if i := slices.IndexFunc(list, func(x store.Upstream) bool { return x.Name == u.Name }); i >= 0 {
		list = slices.Clone(list)
		list[i] = u
	} else {
		list = append(slices.Clip(list), u)
	}
	v.upstreams[u.Hub] = list
}

func (v *configView) DeleteUpstream(ctx context.Context, hub, name string) error {
	err := v.store.DeleteUpstream(ctx, hub, name)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		v.mu.Lock()
		v.upstreams[hub] = slices.DeleteFunc(slices.Clone(v.upstreams[hub]), func(u store.Upstream) bool { return u.Name == name })
		v.mu.Unlock()
	}
	return err
}

// ---- keys

func (v *configView) AccessKeys(context.Context) ([]store.Key, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if len(v.keys) == 0 {
		return nil, fmt.Errorf("node: no access key loaded: %w", store.ErrNotFound)
	}
	return slices.Clone(v.keys), nil
}

func (v *configView) SetAccessKeys(ctx context.Context, keys []store.Key) error {
	if err := v.store.SetAccessKeys(ctx, keys); err != nil {
		return err
	}
	v.mu.Lock()
	v.keys = slices.Clone(keys)
	v.mu.Unlock()
	return nil
}

func (v *configView) AdminKeyHash(context.Context) (string, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.adminHash == "" {
		return "", fmt.Errorf("node: no admin key loaded: %w", store.ErrNotFound)
	}
	return v.adminHash, nil
}

// ---- user groups, read from the store per user

func (v *configView) AddUserToGroup(ctx context.Context, hub, user, group string, expires time.Time) error {
	return v.store.AddUserToGroup(ctx, store.UserGroup{Hub: hub, User: user, Group: group, ExpiresAt: expires})
}

func (v *configView) RemoveUserFromGroup(ctx context.Context, hub, user, group string) error {
	return v.store.RemoveUserFromGroup(ctx, hub, user, group)
}

func (v *configView) RemoveUserFromAllGroups(ctx context.Context, hub, user string) error {
	return v.store.RemoveUserFromAllGroups(ctx, hub, user)
}

func (v *configView) UserGroups(ctx context.Context, hub, user string) ([]gateway.UserGroup, error) {
	ms, err := v.store.UserGroups(ctx, hub, user)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.UserGroup, len(ms))
	for i, m := range ms {
		out[i] = gateway.UserGroup{Group: m.Group, Expires: m.ExpiresAt}
	}
	return out, nil
}
