package node

import (
	"context"
	"slices"
	"time"

	"github.com/switchboard-gw/switchboard/cluster"
)

// purgeUserGroups deletes the expired user-group memberships from the store
// every PurgeInterval until ctx ends. Readers skip expired memberships
// anyway; purging keeps the store from growing with every ttl ever given.
// In a cluster one node purges at a time: the live node with the smallest
// id, as the bus's membership (the cluster's one view of which nodes are
// alive) says; the others skip the round. Purged memberships are counted.
func (n *Node) purgeUserGroups(ctx context.Context) {
	t := time.NewTicker(n.cfg.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !n.purgesThisRound() {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		purged, err := n.store.PurgeExpiredUserGroups(pctx, time.Now())
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			n.log.Warn("purging expired user-group memberships; trying again next round", "err", err)
		case purged > 0:
			n.purged.Add(int64(purged))
			n.log.Info("purged expired user-group memberships", "count", purged)
		}
	}
}

// purgesThisRound reports whether this node is the one that purges.
func (n *Node) purgesThisRound() bool {
	if n.cl == nil {
		return true
	}
	// The live members, this node included: it purges when none has a
	// smaller id.
	return !slices.ContainsFunc(n.cl.bus.Members(), func(m cluster.Member) bool { return m.ID < n.cfg.NodeID })
}

// PurgedUserGroups counts the expired memberships this node purged.
func (n *Node) PurgedUserGroups() int64 { return n.purged.Load() }
