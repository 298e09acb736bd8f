package e2e

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/examples/functions/chat"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// TestClusterSeedScenario runs test/interop/cluster/seed.mjs: the official
// client on three nodes sees one hub (broadcast from an invocation, group,
// user and connection sends, exclusions, REST calls on another node).
func TestClusterSeedScenario(t *testing.T) {
	c := startCluster(t, 3)
	app := c.chatApp()
	c.runScenario("seed.mjs", "APP_URL="+app)
}

// TestClusterNodeKilled kills n2 with SIGKILL under clients of the stock
// client (test/interop/cluster/failover.mjs): they reconnect to live nodes
// and miss nothing, survivors get nothing twice, and the upstream gets
// exactly one `disconnected` ("node lost") per connection n2 held.
func TestClusterNodeKilled(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	app := c.chatApp()
	rec := c.record(c.nodes[0], chat.Hub, "connected", "disconnected")
	ctl := c.runScenario("failover.mjs", "APP_URL="+app, "MODE=kill", "TARGET=n2")

	lost := ctl.lostIDs()
	if len(lost) < 2 {
		t.Fatalf("the scenario lost %d connections with n2, want at least 2", len(lost))
	}
	// The upstream saw n2 open exactly these connections.
	var opened []string
	for _, e := range rec.all() {
		if e.Event.Event == "connected" && strings.HasPrefix(e.Event.ConnectionID, "n2.") {
			opened = append(opened, e.Event.ConnectionID)
		}
	}
	if !sameSet(opened, lost) {
		t.Fatalf("upstream saw n2 open %v; the clients lost %v", opened, lost)
	}
	// A survivor notices after DeadAfter (5 s) and a detection round.
	testutil.Eventually(t, 30*time.Second, "a node-lost disconnected event for every connection of n2", func() bool {
		return len(disconnects(rec, "node lost")) >= len(lost)
	})
	// A second survivor would emit its duplicate within a heartbeat or two
	// of the first; give it that long to show up.
	time.Sleep(3 * time.Second)
	got := disconnects(rec, "node lost")
	for _, id := range lost {
		if got[id] != 1 {
			t.Errorf("connection %s: %d node-lost disconnected events, want 1", id, got[id])
		}
	}
	if len(got) != len(lost) {
		t.Errorf("node-lost events for %v, want exactly the lost connections %v", got, lost)
	}
}

// TestClusterGracefulDrain sends SIGTERM to n3: its clients get a Close
// with allowReconnect and reconnect to other nodes, it exits 0, and the
// upstream gets their ordinary disconnected events, not "node lost" ones.
func TestClusterGracefulDrain(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	app := c.chatApp()
	rec := c.record(c.nodes[0], chat.Hub, "connected", "disconnected")
	goClient := c.mustDial(c.node("n3"), chat.Hub, "gopher", nil)
	ctl := c.runScenario("failover.mjs", "APP_URL="+app, "MODE=stop", "TARGET=n3")

	select {
	case <-goClient.Done():
	case <-time.After(waitFor):
		t.Fatal("the Go client on n3 is still open after n3 stopped")
	}
	var ce *client.CloseError
	if err := goClient.Err(); !errors.As(err, &ce) || !ce.AllowReconnect {
		t.Errorf("Go client on n3 ended with %v; want a CloseError with AllowReconnect", err)
	}
	lost := append(ctl.lostIDs(), goClient.ConnectionID())
	testutil.Eventually(t, 20*time.Second, "a disconnected event for every connection of n3", func() bool {
		all := disconnects(rec, "")
		for _, id := range lost {
			if all[id] == 0 {
				return false
			}
		}
		return true
	})
	// Give the survivors the time they would need to take n3 for dead: its
	// record must be gone, so no node-lost events follow.
	time.Sleep(7 * time.Second)
	all, nodeLost := disconnects(rec, ""), disconnects(rec, "node lost")
	for _, id := range lost {
		if all[id] != 1 || nodeLost[id] != 0 {
			t.Errorf("connection %s: %d disconnected events (%d node lost), want 1 and 0", id, all[id], nodeLost[id])
		}
	}
}

// disconnects counts the upstream's disconnected events per connection,
// those with reason only unless it is empty.
func disconnects(rec *recorder, reason string) map[string]int {
	out := map[string]int{}
	for _, e := range rec.all() {
		if e.Event.Event == "disconnected" && (reason == "" || e.Event.Reason == reason) {
			out[e.Event.ConnectionID]++
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
