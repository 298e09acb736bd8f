package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// This file is the Registry's detector: finding dead nodes and reporting
// their connections.

// detectLoop looks for dead nodes every Interval, starting at once.
func (r *Registry) detectLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.Interval)
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

// detect lists the node records, asks Live which nodes are alive, and
// recovers each node that has been out of the live set for DeadAfter.
//
// Absence is timed by this node's own clock, from the first round that
// found the node out of the live set: no clock is compared with another, so
// skew between nodes does not matter. Only rounds in which this node was
// connected and could list count: after any other, or when Live's session
// changed (a reconnection between two rounds), every node gets DeadAfter
// afresh, as nobody could be heard meanwhile.
func (r *Registry) detect() {
	ids, session, ok := r.opts.Live.Live()
	if !ok {
		r.miss()
		return
	}
	ctx, cancel := r.opCtx()
	entries, err := r.list(ctx, r.nodes, ">")
	cancel()
	if err != nil {
		if r.ctx.Err() == nil {
			r.log.Warn("cluster: registry: list nodes", "err", err)
		}
		r.miss()
		return
	}
	now := r.opts.Now()
	if !r.counting || session != r.session {
		for _, m := range []map[string]observed{r.absent, r.claimSeen} {
			for id, o := range m {
				o.since = now
				m[id] = o
			}
		}
		r.counting, r.session = true, session
	}
	live := make(map[string]bool, len(ids))
	for _, id := range ids {
		live[id] = true
	}
	var dead []jetstream.KeyValueEntry
	recorded, self := make(map[string]bool, len(entries)), false
	for _, e := range entries {
		id := e.Key()
		switch {
		case id == r.opts.Node:
			self = true
		case live[id]: // alive: any absence seen before is over
		default:
			// A new revision is a new life: the node recorded itself again
			// after being taken for dead.
			recorded[id] = true
			if o, seen := r.absent[id]; !seen || o.rev != e.Revision() {
				r.absent[id] = observed{rev: e.Revision(), since: now}
			} else if now.Sub(o.since) >= r.opts.DeadAfter {
				dead = append(dead, e)
			}
		}
	}
	for id := range r.absent {
		if !recorded[id] {
			delete(r.absent, id)
		}
	}
	for id := range r.claimSeen {
		if !recorded[id] {
			delete(r.claimSeen, id)
		}
	}
	if !self {
		r.rerecord()
	}
	for _, e := range dead {
		if r.ctx.Err() != nil {
			return
		}
		r.recover(e, now, session)
	}
	r.rounds.Add(1)
}

// miss notes a round that could not count.
func (r *Registry) miss() {
	r.counting = false
	r.failedRounds.Add(1)
}

// rerecord writes this node's record again after finding it gone: only a
// claimer deletes it, after reporting this node's connections as lost, so
// the others took this node for dead while they could not hear it (it was
// cut off from them, or stalled). Its connections opened from now on are
// reported if it dies.
func (r *Registry) rerecord() {
	r.log.Warn("cluster: registry: other nodes took this node for dead while they could not hear it, and reported its connections as lost although they are open; recording this node again")
	ctx, cancel := r.opCtx()
	defer cancel()
	if err := r.record(ctx); err != nil && r.ctx.Err() == nil {
		r.log.Warn("cluster: registry: write node record", "err", err)
	}
}

// stillDead reports whether Live still leaves dead out, in the session the
// round that found it dead counted in.
func (r *Registry) stillDead(dead string, session uint64) bool {
	ids, s, ok := r.opts.Live.Live()
	return ok && s == session && !slices.Contains(ids, dead)
}

// recover reports every connection of the dead node whose record is node,
// if this node wins the claim on it, then deletes the node record and the
// claim. The claim is refreshed every Interval while it lasts: another node
// takes over a claim unchanged for DeadAfter, and this one then stops.
func (r *Registry) recover(node jetstream.KeyValueEntry, now time.Time, session uint64) {
	dead := node.Key()
	if !r.stillDead(dead, session) {
		return
	}
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
	// Another node may have reported it between this round's list and the
	// claim (the record is gone then), or it recorded itself again (a new
	// revision): either way it is not this node's to report.
	ctx, cancel := r.opCtx()
	cur, err := r.nodes.Get(ctx, dead)
	cancel()
	if err != nil || cur.Revision() != node.Revision() {
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			log.Warn("cluster: registry: read a dead node's record", "err", err)
		}
		return
	}
	ctx, cancel = r.opCtx()
	recs, err := r.list(ctx, r.conns, dead+".>")
	cancel()
	if err != nil {
		log.Warn("cluster: registry: list the connections of a dead node", "err", err)
		return
	}
	r.declared.Add(1)
	log.Info("cluster: registry: node dead; reporting its connections", "connections", len(recs))
	refreshed := now
	for _, e := range recs {
		if r.ctx.Err() != nil {
			return
		}
		if t := r.opts.Now(); t.Sub(refreshed) >= r.opts.Interval {
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
			log.Warn("cluster: registry: dropping a garbled connection record", "conn", e.Key(), "err", err)
		} else if r.opts.OnLost != nil {
			r.opts.OnLost(ConnRecord{Hub: v.Hub, ConnectionID: e.Key(), UserID: v.UserID})
		}
		ctx, cancel := r.opCtx()
		err = r.conns.Purge(ctx, e.Key(), jetstream.PurgeTTL(markerTTL))
		cancel()
		if err != nil {
			log.Warn("cluster: registry: delete a reported connection record", "conn", e.Key(), "err", err)
			return
		}
	}
	ctx, cancel = r.opCtx()
	defer cancel()
	// The node record goes only if unchanged: a node that was cut off,
	// noticed and recorded itself again keeps it.
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
	if err != nil || !r.staleClaim(dead, e.Revision(), now) {
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

// staleClaim records the revision of the claim on dead and reports whether
// it has not changed for DeadAfter.
func (r *Registry) staleClaim(dead string, rev uint64, now time.Time) bool {
	o, ok := r.claimSeen[dead]
	if !ok || o.rev != rev {
		r.claimSeen[dead] = observed{rev: rev, since: now}
		return false
	}
	return now.Sub(o.since) >= r.opts.DeadAfter
}
