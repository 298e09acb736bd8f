package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
)

// TestExpiredUserGroupsPurged: a membership whose ttl ran out is deleted
// from the store while the node runs, counted once, and a membership
// without a ttl stays.
func TestExpiredUserGroupsPurged(t *testing.T) {
	t.Parallel()
	g := startNode(t, func(c *node.Config) { c.PurgeInterval = 20 * time.Millisecond })
	g.createHub("purge", false)
	g.restWant(http.MethodPut, "/api/hubs/purge/users/ann/groups/brief?ttl=1", nil, http.StatusOK)
	g.restWant(http.MethodPut, "/api/hubs/purge/users/bob/groups/kept", nil, http.StatusOK)

	testutil.Eventually(t, waitFor, "the expired membership is purged", func() bool { return g.node.PurgedUserGroups() == 1 })
	var status struct {
		Purged int64 `json:"userGroupsPurged"`
	}
	if err := json.Unmarshal(g.admin(http.MethodGet, "/admin/status", nil, http.StatusOK), &status); err != nil || status.Purged != 1 {
		t.Errorf("/admin/status userGroupsPurged = %d (%v), want 1", status.Purged, err)
	}
	// Rounds go on; a membership counted once was deleted, not skipped.
	time.Sleep(100 * time.Millisecond)
	if n := g.node.PurgedUserGroups(); n != 1 {
		t.Errorf("purged %d memberships, want 1: the same one counted again was never deleted", n)
	}
	ms, err := g.node.Store().AllUserGroups(t.Context())
	if err != nil || len(ms) != 1 || ms[0].User != "bob" {
		t.Errorf("memberships left = %+v, %v; want bob's only", ms, err)
	}
}
