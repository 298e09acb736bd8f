package node

import (
	"context"
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
func (n *Node) watchConfig(ctx context.Context) {
	err := n.store.Watch(ctx, func(ch store.Change) {
		if ch.Kind == store.ChangeUserGroups {
			return // read per user, not copied
		}
		rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		err := n.config.refresh(rctx, ch)
		cancel()
		if err != nil {
			n.log.Warn("reading a configuration change; serving the copy held until the next change", "kind", ch.Kind, "hub", ch.Hub, "err", err)
		}
		n.reloadUpstreams()
		n.reloadKeys()
	})
	if err != nil && ctx.Err() == nil {
		n.log.Error("watching the configuration stopped; restart the node to follow changes", "err", err)
	}
}

// reloadKeys hands the access keys of the node's copy to the verifier.
func (n *Node) reloadKeys() {
	keys, err := n.config.AccessKeys(context.Background())
	if err != nil {
		n.log.Error("no access keys in the configuration; tokens cannot be verified", "err", err)
		return
	}
	n.verifier.SetKeys(store.AccessKeys(keys))
}

// readinessPing bounds each store check of /readyz.
const readinessPing = time.Second

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
