package cluster

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Member is a node of the cluster as its heartbeats describe it.
type Member struct {
	ID       string
	URL      string // the node's public URL, as it announced it
	Conns    int    // its client connections at the last heartbeat
	LastSeen time.Time
	// Hubs is its connections per hub at the last heartbeat; nil when
	// it announces none.
	Hubs map[string]int
}

// members tracks the other nodes' heartbeats.
type members struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex // guards m
	m  map[string]Member
}

func newMembers(ttl time.Duration, now func() time.Time) *members {
	return &members{ttl: ttl, now: now, m: make(map[string]Member)}
}

// seen records a heartbeat of id and reports whether id was not live before
// (a new or returning node), which deserves an early answer.
func (ms *members) seen(id, url string, conns int, hubs map[string]int) (fresh bool) {
	now := ms.now()
	ms.mu.Lock()
	defer ms.mu.Unlock()
	old, ok := ms.m[id]
	fresh = !ok || !ms.liveLocked(old, now)
	ms.m[id] = Member{ID: id, URL: url, Conns: conns, Hubs: hubs, LastSeen: now}
	return fresh
}

// gone forgets id at once: it said goodbye.
func (ms *members) gone(id string) {
	ms.mu.Lock()
	delete(ms.m, id)
	ms.mu.Unlock()
}

func (ms *members) liveLocked(m Member, now time.Time) bool {
	return now.Sub(m.LastSeen) <= ms.ttl
}

// live returns the live members sorted by id, and forgets those silent for
// ten times the TTL so the map does not grow with every node ever seen.
func (ms *members) live() []Member {
	now := ms.now()
	ms.mu.Lock()
	out := make([]Member, 0, len(ms.m))
	for id, m := range ms.m {
		switch {
		case ms.liveLocked(m, now):
			out = append(out, m)
		case now.Sub(m.LastSeen) > 10*ms.ttl:
			delete(ms.m, id)
		}
	}
	ms.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Members returns the live nodes, this one included, sorted by id: those
// whose last heartbeat is at most MemberTTL old and that did not say
// goodbye.
func (b *NATS) Members() []Member {
	self := Member{ID: b.id, URL: b.opts.URL, Conns: b.opts.Conns(), Hubs: b.hubConns(), LastSeen: b.opts.Now()}
	out := append(b.mem.live(), self)
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Live returns the ids of the live nodes, this one included, sorted, as
// Members does; ok is false while the NATS connection is down (or the bus closed),
// and session counts the connection's reconnections. It is how the Registry
// learns which nodes are alive.
func (b *NATS) Live() (ids []string, session uint64, ok bool) {
	session = b.nc.Stats().Reconnects
	for _, m := range b.mem.live() {
		ids = append(ids, m.ID)
	}
	ids = append(ids, b.id)
	slices.Sort(ids)
	return ids, session, b.nc.IsConnected() && !b.isClosed()
}

// heartbeatLoop announces this node every HeartbeatInterval, starting at
// once so that the others learn of it without waiting.
func (b *NATS) heartbeatLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		b.heartbeat()
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
	}
}

func (b *NATS) heartbeat() {
	b.publishEnvelope(subjectHeartbeat+token(b.id), &envelope{Kind: kindHello, URL: b.opts.URL, Conns: b.opts.Conns(), Hubs: b.hubConns()})
}

// hubConns is NATSOptions.HubConns, nil when unset.
func (b *NATS) hubConns() map[string]int {
	if b.opts.HubConns == nil {
		return nil
	}
	return b.opts.HubConns()
}

// onHeartbeat records another node's heartbeat. A node seen for the first
// time (or again after going silent) gets a heartbeat back at once, so two
// nodes know each other within a round trip instead of an interval, and a
// Gather right after start already waits for everyone.
func (b *NATS) onHeartbeat(msg *nats.Msg) {
	env, err := decodeEnvelope(msg.Data)
	if err == nil && msg.Subject != subjectHeartbeat+token(env.Node) {
		err = fmt.Errorf("%w: heartbeat of %s on %s", errBadMessage, env.Node, msg.Subject)
	}
	if err != nil {
		b.drop(msg.Subject, err)
		return
	}
	if env.Node == b.id {
		return
	}
	switch env.Kind {
	case kindHello:
		if b.mem.seen(env.Node, env.URL, env.Conns, env.Hubs) && !b.isClosed() {
			b.heartbeat()
		}
	case kindBye:
		b.mem.gone(env.Node)
	default:
		b.drop(msg.Subject, fmt.Errorf("%w: %q on the heartbeat subject", errBadMessage, env.Kind))
	}
}
