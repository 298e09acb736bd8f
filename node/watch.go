package node

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/store"
)

// refreshTimeout bounds the store reads that follow one change.
const refreshTimeout = 10 * time.Second

// watchConfig follows changes to the configuration, wherever they were made
// (this node's admin API, another node's, or the store directly): it brings
// the node's copy up to date, then reloads what depends on it, the
// dispatcher's upstreams and the verifier's keys.
//
// A change that cannot be read leaves the copy as it was, marked stale; it
// is read again in full every staleRetry until that works. And every
// resyncInterval the whole copy is read again regardless: a JetStream
// watcher can stall without an error while the cluster moves its stream
// leaders (seen after a server restart), and the copy must not stay behind
// for good when it does.
func (n *Node) watchConfig(ctx context.Context) {
	var mu sync.Mutex // one refresh at a time: the watch and the retry loop
	apply := func(ch store.Change) {
		mu.Lock()
		defer mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		err := n.config.refresh(rctx, ch)
		cancel()
		if err != nil && ctx.Err() == nil {
			n.log.Warn("reading a configuration change; serving the copy held until it can be read", "kind", ch.Kind, "hub", ch.Hub, "err", err)
		}
		n.reloadUpstreams()
		n.reloadKeys()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		t := time.NewTicker(staleRetry)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if n.config.staleReason() != "" || time.Since(last) >= resyncInterval {
					apply(store.Change{Kind: store.ChangeAll})
					last = time.Now()
				}
			}
		}
	})
	// A watch ends on an error (NATS KV unavailable while it starts, or a
	// watcher closed): start it again. Each start reloads everything
	// (ChangeAll), so nothing changed meanwhile is missed.
	for {
		err := n.store.Watch(ctx, func(ch store.Change) {
			if ch.Kind != store.ChangeUserGroups { // read per user, not copied
				apply(ch)
			}
		})
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("watching the configuration stopped; starting again", "err", err, "in", staleRetry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(staleRetry):
		}
	}
}

// staleRetry is how often a copy that could not be refreshed is read again;
// resyncInterval how often it is read again anyway.
const (
	staleRetry     = 2 * time.Second
	resyncInterval = 10 * time.Second
)

// reloadKeys hands the access keys of the node's copy to the verifier.
func (n *Node) reloadKeys() {
	keys, err := n.config.AccessKeys(context.Background())
	if err != nil {
		n.log.Error("no access keys in the configuration; tokens cannot be verified", "err", err)
		return
	}
	n.verifier.SetKeys(store.AccessKeys(keys))
}

// readinessPing bounds each store check of /readyz, which load balancers
// call with short timeouts of their own.
const readinessPing = 500 * time.Millisecond

// readiness answers /readyz. A node is ready while its own bbolt file (the
// outbox) answers. In a cluster it stays ready, and says it is degraded and
// why, while the bus is disconnected or the shared configuration is
// unavailable: it still serves its clients, REST calls and admin reads from
// its copy of the configuration.
func (n *Node) readiness(ctx context.Context) httpapi.Readiness {
	ctx, cancel := context.WithTimeout(ctx, readinessPing)
	defer cancel()
	if err := n.db.Ping(ctx); err != nil {
		return httpapi.Readiness{Reasons: []string{"local database unavailable: " + err.Error()}}
	}
	r := httpapi.Readiness{Ready: true}
	if n.cl == nil {
		return r
	}
	if !n.cl.bus.Healthy() {
		// KV lives on the same NATS connection: no need to wait for it.
		r.Reasons = append(r.Reasons, "cluster bus (NATS) disconnected: local delivery continues, cross-node messages are buffered; "+
			"the shared configuration cannot change meanwhile and is served from this node's copy")
		return r
	}
	if err := n.store.Ping(ctx); err != nil {
		r.Reasons = append(r.Reasons, "shared configuration (NATS JetStream KV) unavailable: serving this node's copy; "+
			"admin changes fail until it is back: "+err.Error())
	} else if why := n.config.staleReason(); why != "" {
		r.Reasons = append(r.Reasons, "this node's copy of the configuration may be behind: "+why)
	}
	return r
}
