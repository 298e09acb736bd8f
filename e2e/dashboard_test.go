package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// overviewAnswer is GET /admin/overview as a test reads it.
type overviewAnswer struct {
	Node    string   `json:"node"`
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons"`
	Hubs    []struct {
		Name        string         `json:"name"`
		Configured  bool           `json:"configured"`
		Connections int            `json:"connections"`
		Nodes       map[string]int `json:"nodes"`
		MessagesIn  int64          `json:"messagesIn"`
		MessagesOut int64          `json:"messagesOut"`
	} `json:"hubs"`
	Upstreams []struct {
		Hub     string `json:"hub"`
		Name    string `json:"name"`
		URL     string `json:"urlTemplate"`
		Breaker struct {
			State string `json:"state"`
			Cause string `json:"cause"`
		} `json:"breaker"`
		Latency *struct {
			Samples int     `json:"samples"`
			P50MS   float64 `json:"p50Ms"`
		} `json:"latency"`
		LastFailures []struct {
			Event  string `json:"event"`
			Status int    `json:"status"`
			Error  string `json:"error"`
		} `json:"lastFailures"`
	} `json:"upstreams"`
	Outbox *struct {
		Depth int `json:"depth"`
	} `json:"outbox"`
	Cluster *struct {
		Nodes []struct {
			ID          string         `json:"id"`
			Connections int            `json:"connections"`
			Hubs        map[string]int `json:"hubs"`
			Self        bool           `json:"self"`
		} `json:"nodes"`
		Bus struct {
			Healthy bool `json:"healthy"`
		} `json:"bus"`
	} `json:"cluster"`
}

func (g *gw) overview() overviewAnswer {
	g.t.Helper()
	var ov overviewAnswer
	decode(g.t, g.admin(http.MethodGet, "/admin/overview", nil, http.StatusOK), &ov)
	return ov
}

// TestAdminOverviewCounts: the overview the dashboard polls counts what
// really happened: connections per hub and node, client invocations in,
// invocations delivered out (one per recipient), and per upstream its
// latency and its failures with their reasons.
func TestAdminOverviewCounts(t *testing.T) {
	g := startNode(t, func(c *node.Config) {
		c.Delivery.Breaker.ConsecutiveFailures = 2
		c.Delivery.Breaker.CoolDown = time.Hour
	})
	g.createHub("chat", false)
	g.createHub("quiet", false)
	var failing atomic.Bool
	secret := upstream.NewSecret()
	fn := upstream.Handler([]string{secret}, func(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
		return upstream.NewReply().Broadcast("newMessage", "echo").WithResult("ok"), nil
	})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && r.Method == http.MethodPost {
			http.Error(w, `{"error":"database unreachable"}`, http.StatusServiceUnavailable)
			return
		}
		fn.ServeHTTP(w, r)
	}))
	t.Cleanup(app.Close)
	g.admin(http.MethodPost, "/admin/hubs/chat/upstreams", map[string]any{"name": "fn", "urlTemplate": app.URL,
		"events": []string{"message:*"}, "secrets": []string{secret}}, http.StatusCreated)

	inbox := newInbox()
	a := g.dial("chat", "alice", map[string]func([]json.RawMessage){"newMessage": inbox.handler()})
	g.dial("chat", "bob", nil)
	g.dial("chat", "carol", nil)

	const invokes = 4
	for range invokes {
		if _, err := a.Invoke(t.Context(), "say", "hi"); err != nil {
			t.Fatalf("invoke: %v", err)
		}
		inbox.next(t)
	}
	ov := g.overview()
	hubs := map[string]int{}
	for i, h := range ov.Hubs {
		hubs[h.Name] = i
	}
	chat, quiet := ov.Hubs[hubs["chat"]], ov.Hubs[hubs["quiet"]]
	if chat.Connections != 3 || chat.Nodes[ov.Node] != 3 || !chat.Configured {
		t.Errorf("chat = %+v, want 3 connections, all on node %s", chat, ov.Node)
	}
	if quiet.Connections != 0 || quiet.Nodes[ov.Node] != 0 {
		t.Errorf("quiet = %+v, want no connections, 0 on this node", quiet)
	}
	// Each invocation is one message in and a broadcast to 3 clients.
	if chat.MessagesIn != invokes || chat.MessagesOut != 3*invokes {
		t.Errorf("chat messages in/out = %d/%d, want %d/%d", chat.MessagesIn, chat.MessagesOut, invokes, 3*invokes)
	}
	if len(ov.Upstreams) != 1 || ov.Upstreams[0].Breaker.State != "closed" || ov.Upstreams[0].Latency == nil ||
		ov.Upstreams[0].Latency.Samples != invokes || len(ov.Upstreams[0].LastFailures) != 0 {
		t.Fatalf("upstreams = %+v, want fn closed with %d latency samples and no failure", ov.Upstreams, invokes)
	}
	if ov.Cluster != nil || ov.Outbox == nil || !ov.Ready {
		t.Errorf("single node: cluster %+v, outbox %+v, ready %v; want no cluster, an outbox, ready", ov.Cluster, ov.Outbox, ov.Ready)
	}

	// The upstream breaks: its failures are listed with the reason, and
	// the breaker opens.
	failing.Store(true)
	for range 2 {
		if _, err := a.Invoke(t.Context(), "say", "hi"); err == nil {
			t.Fatal("invoke succeeded against a failing upstream")
		}
	}
	testutil.Eventually(t, waitFor, "the breaker to open", func() bool {
		return g.overview().Upstreams[0].Breaker.State == "open"
	})
	up := g.overview().Upstreams[0]
	if len(up.LastFailures) != 2 || !strings.Contains(up.LastFailures[0].Error, "database unreachable") || up.Breaker.Cause == "" {
		t.Errorf("failing upstream = %+v, want two failures saying database unreachable and a breaker cause", up)
	}
}

// TestAdminSend: POST /admin/hubs/{hub}/:send reaches the hub's clients (or
// one group's) with the admin key, and refuses bad input with 400 and a
// reason, an unknown hub with 404 and a wrong key with 401.
func TestAdminSend(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	inA, inB := newInbox(), newInbox()
	a := g.dial("chat", "alice", map[string]func([]json.RawMessage){"newMessage": inA.handler()})
	g.dial("chat", "bob", map[string]func([]json.RawMessage){"newMessage": inB.handler()})

	body := g.admin(http.MethodPost, "/admin/hubs/chat/:send", map[string]any{"target": "newMessage", "arguments": []any{"admin", "hello"}}, http.StatusAccepted)
	if !strings.Contains(string(body), `"connectionsOnThisNode":2`) {
		t.Errorf("send answered %s, want 2 connections on this node", body)
	}
	for _, in := range []*inbox{inA, inB} {
		if args := in.next(t); len(args) != 2 || str(t, args[1]) != "hello" {
			t.Errorf("client got %s, want [admin hello]", args)
		}
	}

	// To a group: only its members get it; the next message to the whole
	// hub proves bob got nothing in between.
	g.restWant(http.MethodPut, "/api/hubs/chat/groups/ops/connections/"+a.ConnectionID(), nil, http.StatusOK)
	g.admin(http.MethodPost, "/admin/hubs/chat/:send", map[string]any{"target": "newMessage", "group": "ops", "arguments": []any{"admin", "ops only"}}, http.StatusAccepted)
	if args := inA.next(t); str(t, args[1]) != "ops only" {
		t.Errorf("alice got %s, want the group message", args)
	}
	g.admin(http.MethodPost, "/admin/hubs/chat/:send", map[string]any{"target": "newMessage", "arguments": []any{"admin", "barrier"}}, http.StatusAccepted)
	if args := inB.next(t); str(t, args[1]) != "barrier" {
		t.Errorf("bob got %s before the barrier, want only the barrier (he is not in ops)", args)
	}

	for _, tc := range []struct {
		name, path, key string
		body            any
		want            int
		says            string
	}{
		{"no target", "/admin/hubs/chat/:send", g.adminKey, map[string]any{"arguments": []any{1}}, http.StatusBadRequest, "target is required"},
		{"bad target", "/admin/hubs/chat/:send", g.adminKey, map[string]any{"target": "new\nMessage"}, http.StatusBadRequest, "target"},
		{"arguments not an array", "/admin/hubs/chat/:send", g.adminKey, map[string]any{"target": "m", "arguments": map[string]any{}}, http.StatusBadRequest, "JSON array"},
		{"bad group", "/admin/hubs/chat/:send", g.adminKey, map[string]any{"target": "m", "group": "a\u0000b"}, http.StatusBadRequest, "group"},
		{"unknown field", "/admin/hubs/chat/:send", g.adminKey, map[string]any{"target": "m", "user": "x"}, http.StatusBadRequest, "unknown field"},
		{"unknown hub", "/admin/hubs/nope/:send", g.adminKey, map[string]any{"target": "m"}, http.StatusNotFound, "not found"},
		{"wrong key", "/admin/hubs/chat/:send", "sbadm_wrong", map[string]any{"target": "m"}, http.StatusUnauthorized, "wrong admin key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, http.MethodPost, g.url+tc.path, tc.key, tc.body)
			if status != tc.want || !strings.Contains(errorBody(t, body), tc.says) {
				t.Errorf("got %d %s, want %d saying %q", status, body, tc.want, tc.says)
			}
		})
	}
}

// TestAdminOverviewCluster: two nodes on one NATS. Each node's overview
// counts the hub's connections per node (the other's from its heartbeat)
// and says the bus is connected; when NATS goes away it says the bus is
// down and the node is degraded, and a message sent from the dashboard of
// one node reaches a client of the other.
func TestAdminOverviewCluster(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	start := func(id string) *gw {
		return startNodeWith(t, node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), id+".db"),
			NodeID: id, NATS: nats.url(), Logger: quietLogger(t)})
	}
	n1 := start("n1")
	n2 := start("n2")
	n2.adminKey = n1.adminKey
	n1.createHub("chat", false)
	n1.dial("chat", "alice", nil)
	inbox := newInbox()
	n2.dial("chat", "bob", map[string]func([]json.RawMessage){"newMessage": inbox.handler()})
	n2.dial("chat", "carol", nil)

	for _, g := range []*gw{n1, n2} {
		testutil.Eventually(t, waitFor, g.node.Gateway().NodeID()+" to count both nodes' connections", func() bool {
			ov := g.overview()
			if ov.Cluster == nil || len(ov.Cluster.Nodes) != 2 || !ov.Cluster.Bus.Healthy || len(ov.Hubs) != 1 {
				return false
			}
			h := ov.Hubs[0]
			return h.Connections == 3 && h.Nodes["n1"] == 1 && h.Nodes["n2"] == 2
		})
	}

	// Sent from n1's dashboard, received on n2.
	n1.admin(http.MethodPost, "/admin/hubs/chat/:send", map[string]any{"target": "newMessage", "arguments": []any{"admin", "across"}}, http.StatusAccepted)
	if args := inbox.next(t); str(t, args[1]) != "across" {
		t.Errorf("bob on n2 got %s, want the message sent from n1", args)
	}

	nats.stop()
	testutil.Eventually(t, waitFor, "n1 to report the bus down", func() bool {
		ov := n1.overview()
		return ov.Cluster != nil && !ov.Cluster.Bus.Healthy && ov.Ready && len(ov.Reasons) > 0
	})
	// And healthy again once NATS is back (which also lets the nodes
	// leave the cluster quickly when the test ends).
	nats.start()
	testutil.Eventually(t, 3*waitFor, "n1 to report the bus back", func() bool {
		ov := n1.overview()
		return ov.Cluster != nil && ov.Cluster.Bus.Healthy
	})
}
