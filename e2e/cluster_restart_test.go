package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/negotiate"
)

// The three-node embedded cluster of docs/cluster.md, run as real processes
// and restarted as an operator would: all at once, and one at a time.

// embeddedCluster is three `switchboard serve --nats-embedded` processes
// whose NATS servers are routed together, with their stores kept across
// restarts.
type embeddedCluster struct {
	t        *testing.T
	dir      string
	http     []string // listen ports
	nats     []string // client ports of the embedded servers
	routes   []string // route ports
	procs    []*proc
	adminKey string
	cs       negotiate.ConnectionString
}

func newEmbeddedCluster(t *testing.T) *embeddedCluster {
	c := &embeddedCluster{t: t, dir: t.TempDir(), procs: make([]*proc, 3)}
	for range 3 {
		c.http = append(c.http, freePort(t))
		c.nats = append(c.nats, freePort(t))
		c.routes = append(c.routes, freePort(t))
	}
	return c
}

// start starts node i (0-based) with the recipe's flags.
func (c *embeddedCluster) start(i int) *proc {
	c.t.Helper()
	id := fmt.Sprintf("n%d", i+1)
	args := []string{"serve", "--nats-embedded", "--nats-port", c.nats[i], "--nats-cluster-port", c.routes[i],
		"--kv-replicas", "3", "--node-id", id, "--db", filepath.Join(c.dir, id+".db"),
		"--listen", "127.0.0.1:" + c.http[i], "--public-url", "http://127.0.0.1:" + c.http[i], "--log-level", "warn"}
	for _, r := range c.routes {
		args = append(args, "--nats-route", "nats-route://127.0.0.1:"+r)
	}
	p := startProc(c.t, id, args...)
	p.url = "http://127.0.0.1:" + c.http[i]
	c.procs[i] = p
	return p
}

// startAll starts the three nodes together, waits until each is ready and,
// the first time, reads the keys one of them printed.
func (c *embeddedCluster) startAll() {
	c.t.Helper()
	for i := range c.procs {
		c.start(i)
	}
	c.waitReady(c.procs...)
	if c.adminKey != "" {
		return
	}
	for _, p := range c.procs {
		out := p.out.String()
		if m := adminKeyLine.FindStringSubmatch(out); m != nil {
			c.adminKey = m[1]
			cs, err := negotiate.ParseConnectionString(connStrLine.FindStringSubmatch(out)[1])
			if err != nil {
				c.t.Fatal(err)
			}
			c.cs = cs
			return
		}
	}
	c.t.Fatal("no node printed the keys on the cluster's first start")
}

// waitReady waits until every p answers /readyz with 200. A restart of the
// whole cluster waits for JetStream to elect its leaders: allow a minute.
func (c *embeddedCluster) waitReady(ps ...*proc) {
	c.t.Helper()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() { p.waitStatus("ready", 90*time.Second) })
	}
	wg.Wait()
}

// stop sends SIGTERM to p and waits for it to exit.
func (c *embeddedCluster) stop(ps ...*proc) {
	c.t.Helper()
	for _, p := range ps {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range ps {
		_ = p.wait(60 * time.Second)
	}
}

// hubs lists the hubs p's admin API answers with.
func (c *embeddedCluster) hubs(p *proc) (int, []string) {
	c.t.Helper()
	return listHubs(c.t, p.url, c.adminKey)
}

// wantHubs waits until p lists exactly want. After a NATS server went
// away, a node whose KV watch ran on it notices only when the watch's
// heartbeats go missing (about 15 s): allow that.
func (c *embeddedCluster) wantHubs(p *proc, want ...string) {
	c.t.Helper()
	testutil.Eventually(c.t, 45*time.Second, fmt.Sprintf("%s lists hubs %v", p.id, want), func() bool {
		status, got := c.hubs(p)
		return status == http.StatusOK && strings.Join(got, ",") == strings.Join(want, ",")
	})
}

func (c *embeddedCluster) createHub(p *proc, name string) {
	c.t.Helper()
	status, data := do(c.t, http.MethodPost, p.url+"/admin/hubs", c.adminKey, map[string]any{"name": name, "allowAnonymous": true})
	if status != http.StatusCreated {
		c.t.Fatalf("create hub %s on %s: %d %s", name, p.id, status, data)
	}
}

// broadcastCrosses checks that a REST broadcast sent through one node
// reaches a client of every node.
func (c *embeddedCluster) broadcastCrosses(hub string) {
	c.t.Helper()
	tc := &testCluster{t: c.t, nodes: c.procs, adminKey: c.adminKey, cs: c.cs}
	got := make([]*atomic.Int64, len(c.procs))
	for i, p := range c.procs {
		n := new(atomic.Int64)
		got[i] = n
		tc.mustDial(p, hub, "u-"+p.id, map[string]func([]json.RawMessage){"news": func([]json.RawMessage) { n.Add(1) }})
	}
	// A node's subscription to the hub reaches NATS within a round trip:
	// send until every client got one.
	testutil.Eventually(c.t, waitFor, "a broadcast reaches every node's client", func() bool {
		if status, body := tc.rest(c.procs[0], http.MethodPost, "/api/hubs/"+hub+"/:send", map[string]any{"target": "news", "arguments": []any{"hi"}}); status != http.StatusAccepted {
			c.t.Fatalf("REST send: %d %s", status, body)
		}
		for _, n := range got {
			if n.Load() == 0 {
				return false
			}
		}
		return true
	})
}

// TestEmbeddedClusterRestartsTogether: the recipe's three nodes, stopped
// cleanly together and started again with the same commands, come back with
// their configuration. Before, every node exited after 30 s: JetStream's
// first requests after a whole-cluster restart are never answered, and the
// node asked only once.
func TestEmbeddedClusterRestartsTogether(t *testing.T) {
	t.Parallel()
	c := newEmbeddedCluster(t)
	c.startAll()
	c.createHub(c.procs[0], "kept")
	c.wantHubs(c.procs[2], "kept")

	c.stop(c.procs...)
	c.startAll()
	for _, p := range c.procs {
		c.wantHubs(p, "kept")
	}
	c.createHub(c.procs[1], "after")
	c.wantHubs(c.procs[0], "after", "kept")
	c.broadcastCrosses("kept")
}

// TestEmbeddedClusterRollingRestart: one node at a time goes down and comes
// back; meanwhile the others keep answering, and afterwards configuration
// written through any node reaches all.
func TestEmbeddedClusterRollingRestart(t *testing.T) {
	t.Parallel()
	c := newEmbeddedCluster(t)
	c.startAll()
	c.createHub(c.procs[0], "a")
	for i, p := range c.procs {
		c.stop(p)
		for _, other := range c.procs {
			if other != p {
				if status, _ := c.hubs(other); status != http.StatusOK {
					t.Fatalf("with %s down, %s answers the admin API %d", p.id, other.id, status)
				}
				if got := other.readyz(); got != "ready" && got != "degraded" {
					t.Fatalf("with %s down, %s /readyz says %q", p.id, other.id, got)
				}
			}
		}
		c.start(i)
		c.waitReady(c.procs[i])
		c.wantHubs(c.procs[i], "a")
	}
	c.createHub(c.procs[2], "b")
	for _, p := range c.procs {
		c.wantHubs(p, "a", "b")
	}
	c.broadcastCrosses("a")
}
