package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
)

// What a cluster keeps when one of the servers of its NATS cluster dies:
// three NATS servers routed together in the test process, three nodes
// joined through all of them (--nats with a list), each starting on a
// different server.

// settle bounds what waits on JetStream moving its leaders after a server
// is lost or comes back.
const settle = 45 * time.Second

type natsTrio struct {
	t       *testing.T
	client  []int // client ports
	cluster []int // route ports
	dirs    []string
	servers []*natsembed.Server
}

func startNATSTrio(t *testing.T) *natsTrio {
	t.Helper()
	n := &natsTrio{t: t, servers: make([]*natsembed.Server, 3)}
	for range 3 {
		c, _ := strconv.Atoi(freePort(t))
		r, _ := strconv.Atoi(freePort(t))
		n.client, n.cluster, n.dirs = append(n.client, c), append(n.cluster, r), append(n.dirs, t.TempDir())
	}
	for i := range 3 {
		n.start(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	for _, s := range n.servers {
		if err := s.WaitJetStream(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for i := range n.servers {
			n.stop(i)
		}
	})
	return n
}

func (n *natsTrio) name(i int) string { return fmt.Sprintf("s%d", i+1) }

func (n *natsTrio) start(i int) {
	n.t.Helper()
	var routes []string
	for _, p := range n.cluster {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	s, err := natsembed.Start(natsembed.Options{Name: n.name(i), Port: n.client[i], StoreDir: n.dirs[i], ClusterPort: n.cluster[i], Routes: routes})
	if err != nil {
		n.t.Fatalf("start NATS %s: %v", n.name(i), err)
	}
	n.servers[i] = s
}

func (n *natsTrio) stop(i int) {
	if n.servers[i] != nil {
		n.servers[i].Shutdown()
		n.servers[i] = nil
	}
}

// urls lists every server, server first first: a node given this list
// connects to first and fails over to the others.
func (n *natsTrio) urls(first int) string {
	var out []string
	for k := range 3 {
		out = append(out, fmt.Sprintf("nats://127.0.0.1:%d", n.client[(first+k)%3]))
	}
	return strings.Join(out, ",")
}

// js returns a JetStream client connected to any live server.
func (n *natsTrio) js(t *testing.T) jetstream.JetStream {
	t.Helper()
	return testutil.JetStream(t, n.urls(0), nats.MaxReconnects(-1))
}

// kvNode starts a node joined through the trio with replicas buckets.
func kvNode(t *testing.T, n *natsTrio, id string, first, replicas int, db string) *gw {
	t.Helper()
	return startNodeWith(t, node.Config{Listen: "127.0.0.1:0", DBPath: db, NodeID: id, Logger: quietLogger(t),
		NATS: n.urls(first), KVReplicas: replicas})
}

// hubNames lists the hubs g's admin API answers with, and its status.
func hubNames(t *testing.T, g *gw) (int, []string) {
	return listHubs(t, g.url, g.adminKey)
}

// listHubs lists the hubs the admin API at base answers with, and its
// status.
func listHubs(t *testing.T, base, adminKey string) (int, []string) {
	status, data := do(t, http.MethodGet, base+"/admin/hubs", adminKey, nil)
	var hubs []struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(data, &hubs)
	var names []string
	for _, h := range hubs {
		names = append(names, h.Name)
	}
	return status, names
}

// readyStatus is g's /readyz status and body.
func readyStatus(t *testing.T, g *gw) (int, string) {
	status, data := do(t, http.MethodGet, g.url+"/readyz", "", nil)
	return status, string(data)
}

// TestKVReplicasSurviveServerLoss: with --kv-replicas 3, the loss of any one
// NATS server keeps the shared configuration writable and readable on every
// node, /readyz at 200, the connection registry written, and a node that
// restarts meanwhile starts.
func TestKVReplicasSurviveServerLoss(t *testing.T) {
	t.Parallel()
	trio := startNATSTrio(t)
	dir := t.TempDir()
	nodes := make([]*gw, 3)
	for i := range nodes {
		nodes[i] = kvNode(t, trio, fmt.Sprintf("r%d", i+1), i, 3, filepath.Join(dir, fmt.Sprintf("r%d.db", i+1)))
		nodes[i].adminKey = nodes[0].adminKey // the first node made the keys
	}
	nodes[0].createHub("base", true)
	js := trio.js(t)

	for i := range 3 {
		trio.stop(i)
		hub := fmt.Sprintf("while_%s_down", trio.name(i))
		writer := nodes[(i+1)%3]
		// The streams elect new leaders first; a write during that may time
		// out after all, so a retried create may find its hub there.
		testutil.Eventually(t, settle, "a write through "+writer.url+" with "+trio.name(i)+" down", func() bool {
			status, _, err := tryDo(http.MethodPost, writer.url+"/admin/hubs", writer.adminKey, map[string]any{"name": hub, "allowAnonymous": true})
			return err == nil && (status == http.StatusCreated || status == http.StatusConflict)
		})
		for _, g := range nodes {
			testutil.Eventually(t, settle, g.url+" lists "+hub, func() bool {
				status, names := hubNames(t, g)
				return status == http.StatusOK && slices.Contains(names, hub)
			})
			if status, body := readyStatus(t, g); status != http.StatusOK {
				t.Fatalf("%s /readyz with %s down: %d %s", g.url, trio.name(i), status, body)
			}
		}
		// The registry records a connection opened now.
		c := nodes[i].dial(hub, "", nil)
		testutil.Eventually(t, settle, "the registry records "+c.ConnectionID(), func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			kv, err := js.KeyValue(ctx, "sb-conns")
			if err != nil {
				return false
			}
			_, err = kv.Get(ctx, c.ConnectionID())
			return err == nil
		})
		// A node restarts while the server is down.
		k := (i + 2) % 3
		db := nodes[k].db
		nodes[k].close()
		nodes[k] = kvNode(t, trio, fmt.Sprintf("r%d-%d", k+1, i), k, 3, db)
		nodes[k].adminKey = writer.adminKey
		if status, names := hubNames(t, nodes[k]); status != http.StatusOK || !slices.Contains(names, hub) {
			t.Fatalf("restarted node lists %v (%d), want %s among them", names, status, hub)
		}

		trio.start(i)
		ctx, cancel := context.WithTimeout(context.Background(), settle)
		if err := trio.servers[i].WaitJetStream(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}

// TestOneReplicaServesFromMemory: with one replica, losing the server that
// holds the configuration's bucket stops changes, not service: admin reads
// (and the admin key check) and /readyz answer from each node's copy, new
// clients connect, and writes fail with 503 saying why.
func TestOneReplicaServesFromMemory(t *testing.T) {
	t.Parallel()
	trio := startNATSTrio(t)
	dir := t.TempDir()
	nodes := make([]*gw, 3)
	for i := range nodes {
		nodes[i] = kvNode(t, trio, fmt.Sprintf("o%d", i+1), i, 1, filepath.Join(dir, fmt.Sprintf("o%d.db", i+1)))
		nodes[i].adminKey = nodes[0].adminKey // the first node made the keys
	}
	nodes[0].createHub("kept", true)
	for _, g := range nodes {
		testutil.Eventually(t, settle, g.url+" lists kept", func() bool {
			_, names := hubNames(t, g)
			return slices.Contains(names, "kept")
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := trio.js(t).Stream(ctx, "KV_sb-hubs")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %v", err)
	}
	holder := slices.IndexFunc([]string{"s1", "s2", "s3"}, func(s string) bool { return s == info.Cluster.Leader })
	if holder < 0 {
		t.Fatalf("bucket held by %q, not one of the trio", info.Cluster.Leader)
	}
	trio.stop(holder)

	for _, g := range nodes {
		if status, names := hubNames(t, g); status != http.StatusOK || !slices.Contains(names, "kept") {
			t.Errorf("%s: admin read with the bucket's server down = %d %v, want 200 with kept", g.url, status, names)
		}
		testutil.Eventually(t, settle, g.url+" /readyz says degraded", func() bool {
			status, body := readyStatus(t, g)
			return status == http.StatusOK && strings.Contains(body, "degraded") && strings.Contains(body, "shared configuration")
		})
		status, body := do(t, http.MethodPost, g.url+"/admin/hubs", g.adminKey, map[string]any{"name": "new"})
		if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "unavailable") {
			t.Errorf("%s: write with the bucket's server down = %d %s, want 503 saying the configuration is unavailable", g.url, status, body)
		}
		c := g.dial("kept", "", nil)
		c.Close()
	}
	// A node that starts meanwhile cannot load the configuration and says
	// which part of the cluster is missing.
	_, err = node.Start(node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(dir, "late.db"), NodeID: "late",
		Logger: quietLogger(t), NATS: trio.urls((holder + 1) % 3), KVReplicas: 1, JoinTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "KV buckets did not") || !strings.Contains(err.Error(), "start that server again") {
		t.Errorf("a node starting with the bucket's server down: %v; want an error naming the buckets' servers", err)
	}

	trio.start(holder)
	testutil.Eventually(t, settle, "writes work again once the server is back", func() bool {
		status, _, err := tryDo(http.MethodPost, nodes[1].url+"/admin/hubs", nodes[1].adminKey, map[string]any{"name": "back"})
		return err == nil && (status == http.StatusCreated || status == http.StatusConflict)
	})
}
