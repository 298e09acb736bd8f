package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// This file is the Registry's detector: finding dead nodes and reporting
// their connections.

// detectLoop looks for dead nodes every Heartbeat, starting at once.
func (r *Registry) detectLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.Heartbeat)
	defer t.Stop()
	for {
		r.detect()
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// detect lists the nodes, refreshes Nodes, and recovers each dead one.
//
// A node is dead when this node has seen the revision of its record stay
// the same for DeadAfter, timed by this node's own clock: no clock is
// compared with another, so skew between nodes or with NATS does not matter.
// Only rounds that reached NATS count: after a failed list every node gets
// DeadAfter afresh, as nobody could heartbeat while NATS was unreachable.
func (r *Registry) detect() {
	ctx, cancel := r.opCtx()
	entries, err := r.list(ctx, r.nodes, ">")
	cancel()
	if err != nil {
		if r.ctx.Err() == nil {
			r.log.Warn("cluster: registry: list nodes", "err", err)
		}
		r.lastListOK = false
		r.failedRounds.Add(1)
		return
	}
	now := r.opts.Now()
	if !r.lastListOK {
		for k, o := range r.seen {
			o.since = now
			r.seen[k] = o
		}
		r.lastListOK = true
	}
	r.rounds.Add(1)
	var live []NodeRecord
	var dead []jetstream.KeyValueEntry
	keep := make(map[string]bool, 2*len(entries))
	for _, e := range entries {
		id := e.Key()
		if id != r.opts.Node {
			keep["n/"+id] = true
			if r.stale("n/"+id, e.Revision(), now) {
				keep["c/"+id] = true
				dead = append(dead, e)
				continue
			}
		}
		var v nodeValue
		_ = json.Unmarshal(e.Value(), &v) // a garbled record still heartbeats
		live = append(live, NodeRecord{ID: id, URL: v.URL, Heartbeat: e.Created()})
	}
	for k := range r.seen {
		if !keep[k] {
			delete(r.seen, k)
		}
	}
	// This node is alive to itself even when its record is briefly absent
	// (others took it for dead after a stall, and its heartbeat has not
	// written the record again yet).
	if !slices.ContainsFunc(live, func(n NodeRecord) bool { return n.ID == r.opts.Node }) {
		live = append(live, NodeRecord{ID: r.opts.Node, URL: r.opts.URL, Heartbeat: now})
	}
	slices.SortFunc(live, func(a, b NodeRecord) int { return strings.Compare(a.ID, b.ID) })
	r.mu.Lock()
	r.live = live
	r.mu.Unlock()
	for _, e := range dead {
		if r.ctx.Err() != nil {
			return
		}
		r.recover(e, now)
	}
}

// stale records the revision seen at key and reports whether it has not
// changed for DeadAfter.
func (r *Registry) stale(key string, rev uint64, now time.Time) bool {
	o, ok := r.seen[key]
	if !ok || o.rev != rev {
		r.seen[key] = observed{rev: rev, since: now}
		return false
	}
	return now.Sub(o.since) >= r.opts.DeadAfter
}

// recover reports every connection of the dead node whose record is node,
// if this node wins the claim on it, then deletes the node record and the
// claim. The claim is refreshed every Heartbeat while it lasts: another node
// takes over a claim unchanged for DeadAfter, and this one then stops.
func (r *Registry) recover(node jetstream.KeyValueEntry, now time.Time) {
	dead := node.Key()
	claimRev, ok := r.claim(dead, now)
	if !ok {
		return
	}
	log := r.log.With("dead", dead)
	done := false
	defer func() {
		if !done { // let the next round, here or elsewhere, start over at once
			ctx, cancel := context.WithTimeout(context.Background(), r.opts.DeadAfter)
			_ = r.claims.Purge(ctx, dead, jetstream.LastRevision(claimRev), jetstream.PurgeTTL(markerTTL))
			cancel()
		}
	}()
	ctx, cancel := r.opCtx()
	recs, err := r.list(ctx, r.conns, dead+".>")
	cancel()
	if err != nil {
		log.Warn("cluster: registry: list the connections of a dead node", "err", err)
		return
	}
	log.Info("cluster: registry: reporting the connections of a dead node", "connections", len(recs))
	refreshed := now
	for _, e := range recs {
		if r.ctx.Err() != nil {
			return
		}
		if t := r.opts.Now(); t.Sub(refreshed) >= r.opts.Heartbeat {
			ctx, cancel := r.opCtx()
			claimRev, err = r.claims.Update(ctx, dead, r.claimValue(), claimRev)
			cancel()
			if err != nil {
				done = errors.Is(err, jetstream.ErrKeyRevisionMismatch) // not ours to release any more
				log.Warn("cluster: registry: lost the claim on a dead node; stopping", "err", err)
				return
			}
			refreshed = t
		}
		var v connValue
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			log.Warn("cluster: registry: dropping a garbled connection record", "connection", e.Key(), "err", err)
		} else if r.opts.OnLost != nil {
			r.opts.OnLost(ConnRecord{Hub: v.Hub, ConnectionID: e.Key(), UserID: v.UserID})
		}
		ctx, cancel := r.opCtx()
		err = r.conns.Purge(ctx, e.Key(), jetstream.PurgeTTL(markerTTL))
		cancel()
		if err != nil {
			log.Warn("cluster: registry: delete a reported connection record", "connection", e.Key(), "err", err)
			return
		}
	}
	ctx, cancel = r.opCtx()
	defer cancel()
	// The node record goes only if unchanged: a node that was merely slow
	// and heartbeats again keeps it.
	if err := r.nodes.Purge(ctx, dead, jetstream.LastRevision(node.Revision()), jetstream.PurgeTTL(markerTTL)); err != nil {
		log.Warn("cluster: registry: delete a dead node's record", "err", err)
	}
	done = true
	if err := r.claims.Purge(ctx, dead, jetstream.LastRevision(claimRev), jetstream.PurgeTTL(markerTTL)); err != nil {
		log.Warn("cluster: registry: delete a claim", "err", err)
	}
}

// claim tries to become the node that reports dead's connections: by
// creating the claim, or by taking over one that stayed unchanged for
// DeadAfter because its claimer died or stalled.
func (r *Registry) claim(dead string, now time.Time) (uint64, bool) {
	ctx, cancel := r.opCtx()
	defer cancel()
	rev, err := r.claims.Create(ctx, dead, r.claimValue())
	if err == nil {
		return rev, true
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		r.log.Warn("cluster: registry: claim a dead node", "dead", dead, "err", err)
		return 0, false
	}
	e, err := r.claims.Get(ctx, dead)
	if err != nil || !r.stale("c/"+dead, e.Revision(), now) {
		return 0, false
	}
	rev, err = r.claims.Update(ctx, dead, r.claimValue(), e.Revision())
	if err != nil {
		return 0, false
	}
	var c claimValue
	_ = json.Unmarshal(e.Value(), &c)
	r.log.Warn("cluster: registry: took over a stalled claim; connections it reported may be reported again",
		"dead", dead, "claimer", c.Claimer)
	return rev, true
}

func (r *Registry) claimValue() []byte {
	b, _ := json.Marshal(claimValue{Claimer: r.opts.Node, At: r.opts.Now().UnixMilli()})
	return b
}
