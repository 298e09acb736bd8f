package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/cluster"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// nodeUnderTest is one gateway serving real WebSockets, with its bus.
type nodeUnderTest struct {
	idx  int
	g    *gateway.Gateway
	bus  gateway.Bus
	nats *cluster.NATS // nil for Local
	nc   *nats.Conn    // nil for Local
	url  string
}

// startNode starts a gateway with id on bus (built by mkBus once the
// gateway exists) and serves it on loopback until the test ends.
func startNode(t *testing.T, idx int, id string, bus gateway.Bus) *nodeUnderTest {
	t.Helper()
	n := &nodeUnderTest{idx: idx, bus: bus}
	n.g = gateway.New(gateway.Config{NodeID: id, SweepInterval: -1, Bus: bus})
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		n.g.Serve(context.Background(), r.URL.Query().Get("id"), httpapi.WebSocketTransport(ws), gateway.ConnectInfo{})
	}))
	n.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		wg.Wait()
		srv.Close()
	})
	return n
}

// localCluster is a gateway without a bus: one node on its own in-memory
// bus.
func localCluster(t *testing.T, n int) []*nodeUnderTest {
	if n != 1 {
		t.Fatalf("a gateway without a bus is a cluster of one node, not %d", n)
	}
	node := startNode(t, 0, "solo", nil)
	node.bus = node.g.Bus()
	return []*nodeUnderTest{node}
}

// natsCluster starts n nodes, node i connected to servers[i%len(servers)],
// and waits until every node sees every other.
func natsCluster(t *testing.T, servers []*natsembed.Server, n int) []*nodeUnderTest {
	t.Helper()
	nodes := make([]*nodeUnderTest, n)
	for i := range nodes {
		nc, err := nats.Connect(servers[i%len(servers)].URL(), cluster.DialOptions(fmt.Sprintf("node%d", i), 0)...)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(nc.Close)
		id := fmt.Sprintf("n%d", i)
		bus, err := cluster.NewNATS(nc, nil, cluster.NATSOptions{NodeID: id, URL: "http://" + id, HeartbeatInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("NewNATS: %v", err)
		}
		t.Cleanup(bus.Close)
		nodes[i] = startNode(t, i, id, bus)
		nodes[i].nats, nodes[i].nc = bus, nc
		bus.SetNode(nodes[i].g)
	}
	for _, node := range nodes {
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("node %d to see %d members", node.idx, n), func() bool { return len(node.nats.Members()) == n })
	}
	return nodes
}

// client is a SignalR client socket whose frames a goroutine reads into
// events; probes are recorded apart.
type client struct {
	id   string
	ws   *websocket.Conn
	ev   chan event
	done chan struct{}

	mu     sync.Mutex // guards probes
	probes map[string]int
}

type event struct {
	Type      int             `json:"type"`
	Target    string          `json:"target"`
	Arguments json.RawMessage `json:"arguments"`
	Error     string          `json:"error"`
	closed    bool
}

func (n *nodeUnderTest) connect(t *testing.T, hub, user string) *client {
	t.Helper()
	id, tok, err := n.g.Negotiate(hub, gateway.Identity{UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, n.url+"/?id="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"protocol":"json","version":1}`+"\x1e")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || string(b) != "{}\x1e" {
		t.Fatalf("handshake answer %q, %v", b, err)
	}
	c := &client{id: id, ws: ws, ev: make(chan event, 1024), done: make(chan struct{}), probes: map[string]int{}}
	go c.read()
	t.Cleanup(func() { ws.CloseNow(); <-c.done })
	return c
}

func (c *client) read() {
	defer close(c.done)
	defer close(c.ev)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.ev <- event{closed: true}
			return
		}
		for _, f := range bytes.Split(b, []byte{0x1e}) {
			var e event
			if len(f) == 0 || json.Unmarshal(f, &e) != nil || e.Type == 6 {
				continue
			}
			if e.Target == "probe" {
				c.mu.Lock()
				c.probes[string(e.Arguments)]++
				c.mu.Unlock()
				continue
			}
			c.ev <- e
		}
	}
}

func (c *client) probed(from string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.probes[from] > 0
}

func (c *client) next(t *testing.T) event {
	t.Helper()
	select {
	case e, ok := <-c.ev:
		if !ok {
			return event{closed: true}
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatalf("client %s: no message in 10 s", c.id)
		return event{}
	}
}

// until returns the targets c receives before fence.
func (c *client) until(t *testing.T, fence string) []string {
	t.Helper()
	var got []string
	for {
		e := c.next(t)
		switch {
		case e.closed:
			t.Fatalf("client %s closed before %s; got %q", c.id, fence, got)
		case e.Target == fence:
			return got
		}
		got = append(got, e.Target)
	}
}

// closeReason waits for c's Close message and returns its error text.
func (c *client) closeReason(t *testing.T) string {
	t.Helper()
	for {
		e := c.next(t)
		switch {
		case e.closed:
			t.Fatalf("client %s: socket ended without a Close message", c.id)
		case e.Type == 7:
			return e.Error
		}
	}
}

// syncRoute publishes probe (an action whose target gets set to "probe") from
// every node until every receiver got one from each, so that the subjects
// of the probe's route carry the next ops from any node to them.
func syncRoute(t *testing.T, nodes []*nodeUnderTest, hub string, probe actions.Action, receivers ...*client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, n := range nodes {
			a := probe
			a.Target, a.Arguments = "probe", json.RawMessage(fmt.Sprintf("[%d]", n.idx))
			if err := n.g.Apply(context.Background(), hub, &a); err != nil {
				t.Fatalf("probe: %v", err)
			}
		}
		poll := time.Now().Add(100 * time.Millisecond)
		for time.Now().Before(poll) {
			if allProbed(nodes, receivers) {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe %s in %s did not reach every receiver", probe.Action, hub)
		}
	}
}

func allProbed(nodes []*nodeUnderTest, receivers []*client) bool {
	for _, c := range receivers {
		for _, n := range nodes {
			if !c.probed(fmt.Sprintf("[%d]", n.idx)) {
				return false
			}
		}
	}
	return true
}

// fence broadcasts target in hub from node; every client in the hub then
// reads up to it (see until): what one node published before the fence
// has arrived by then.
func fence(t *testing.T, n *nodeUnderTest, hub, target string) {
	t.Helper()
	if err := n.g.Apply(context.Background(), hub, &actions.Action{Action: actions.Broadcast, Target: target}); err != nil {
		t.Fatalf("fence: %v", err)
	}
}

func mustPublish(t *testing.T, n *nodeUnderTest, op *gateway.Op) {
	t.Helper()
	if err := n.bus.Publish(context.Background(), op); err != nil {
		t.Fatalf("publish from node %d: %v", n.idx, err)
	}
}

func isNoConnection(err error) bool { return errors.Is(err, gateway.ErrNoConnection) }
