package cluster_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/cluster"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

func startServer(t *testing.T, opts natsembed.Options) *natsembed.Server {
	t.Helper()
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	s, err := natsembed.Start(opts)
	if err != nil {
		t.Fatalf("start NATS: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// routedServers starts n NATS servers routed into one cluster.
func routedServers(t *testing.T, n int) []*natsembed.Server {
	t.Helper()
	var ports []int
	var routes []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ports = append(ports, p)
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(p))
	}
	var servers []*natsembed.Server
	for i := range n {
		servers = append(servers, startServer(t, natsembed.Options{Name: fmt.Sprint("s", i), ClusterPort: ports[i], Routes: routes}))
	}
	return servers
}

func TestNATSBus(t *testing.T) {
	t.Run("one node", func(t *testing.T) {
		s := startServer(t, natsembed.Options{})
		testBus(t, 1, func(t *testing.T, n int) []*nodeUnderTest { return natsCluster(t, []*natsembed.Server{s}, n) })
	})
	t.Run("three nodes on one server", func(t *testing.T) {
		s := startServer(t, natsembed.Options{})
		testBus(t, 3, func(t *testing.T, n int) []*nodeUnderTest { return natsCluster(t, []*natsembed.Server{s}, n) })
	})
	t.Run("two nodes on two routed servers", func(t *testing.T) {
		servers := routedServers(t, 2)
		testBus(t, 2, func(t *testing.T, n int) []*nodeUnderTest { return natsCluster(t, servers, n) })
	})
}

// flush makes sure the server has every node's subscriptions.
func flush(t *testing.T, nodes []*nodeUnderTest) {
	t.Helper()
	for _, n := range nodes {
		if err := n.nc.FlushTimeout(10 * time.Second); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

func received(nodes []*nodeUnderTest) []int64 {
	var out []int64
	for _, n := range nodes {
		out = append(out, n.nats.Stats().Received)
	}
	return out
}

func TestNATSInterest(t *testing.T) {
	s := startServer(t, natsembed.Options{})
	nodes := natsCluster(t, []*natsembed.Server{s}, 3)
	pub, holder, other := nodes[0], nodes[1], nodes[2]
	baseSubs := holder.nc.NumSubscriptions()

	clients := []*client{pub.connect(t, "int", ""), holder.connect(t, "int", ""), other.connect(t, "int", "")}
	member := clients[1]
	mustPublish(t, pub, &gateway.Op{Hub: "int", Action: &actions.Action{Action: actions.AddToGroup, Group: "room", ConnectionID: member.id}})
	// The add is a request: the holder subscribed before it answered.
	if got, want := holder.nc.NumSubscriptions(), baseSubs+2; got != want {
		t.Errorf("holder has %d subscriptions, want %d (hub and group)", got, want)
	}
	if got, want := other.nc.NumSubscriptions(), baseSubs+1; got != want {
		t.Errorf("other node has %d subscriptions, want %d (hub only)", got, want)
	}
	flush(t, nodes)

	sendAndFence := func(n int, fenceName string) []int64 {
		t.Helper()
		before := received(nodes)
		for range n {
			mustPublish(t, pub, &gateway.Op{Hub: "int", Action: &actions.Action{Action: actions.SendToGroup, Group: "room", Target: "x"}})
		}
		fence(t, pub, "int", fenceName)
		for _, c := range clients {
			c.until(t, fenceName)
		}
		after := received(nodes)
		for i := range after {
			after[i] -= before[i]
		}
		return after
	}
	// Only the holder receives the group's messages; the others get the
	// fence alone (the publisher not even that: it applies its own).
	if got, want := sendAndFence(3, "f1"), []int64{0, 4, 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("messages received per node = %v, want %v", got, want)
	}

	mustPublish(t, pub, &gateway.Op{Hub: "int", Action: &actions.Action{Action: actions.RemoveFromGroup, Group: "room", ConnectionID: member.id}})
	if got, want := holder.nc.NumSubscriptions(), baseSubs+1; got != want {
		t.Errorf("after the last member left, holder has %d subscriptions, want %d", got, want)
	}
	flush(t, nodes)
	if got, want := sendAndFence(2, "f2"), []int64{0, 1, 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after leaving: messages received per node = %v, want %v", got, want)
	}
}

// subject builds a bus subject the way the wire format documents it, so
// the test does not lean on the code under test.
func subject(prefix string, names ...string) string {
	parts := []string{prefix}
	for _, n := range names {
		parts = append(parts, base64.RawURLEncoding.EncodeToString([]byte(n)))
	}
	return strings.Join(parts, ".")
}

func TestNATSBadInput(t *testing.T) {
	s := startServer(t, natsembed.Options{})
	nodes := natsCluster(t, []*natsembed.Server{s}, 1)
	node := nodes[0]
	c := node.connect(t, "bad hub.*", "")
	flush(t, nodes)
	raw, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	hubSubj := subject("sb.h", "bad hub.*")
	tests := []struct {
		name, subject, data string
	}{
		{"garbage", hubSubj, "\x00not json"},
		{"empty", hubSubj, ""},
		{"wrong version", hubSubj, `{"v":2,"kind":"op","node":"x","op":{"hub":"bad hub.*","action":{"action":"broadcast","target":"t"}}}`},
		{"no sender", hubSubj, `{"v":1,"kind":"op","op":{"hub":"bad hub.*","action":{"action":"broadcast","target":"t"}}}`},
		{"unknown kind", hubSubj, `{"v":1,"kind":"boom","node":"x"}`},
		{"invalid action", hubSubj, `{"v":1,"kind":"op","node":"x","op":{"hub":"bad hub.*","action":{"action":"broadcast"}}}`},
		{"unknown action", hubSubj, `{"v":1,"kind":"op","node":"x","op":{"hub":"bad hub.*","action":{"action":"explode","target":"t"}}}`},
		{"two ops in one", hubSubj, `{"v":1,"kind":"op","node":"x","op":{"hub":"bad hub.*","action":{"action":"broadcast","target":"t"},"close":{"scope":{}}}}`},
		{"empty op", hubSubj, `{"v":1,"kind":"op","node":"x","op":{"hub":"bad hub.*"}}`},
		{"wrong subject", hubSubj, `{"v":1,"kind":"op","node":"x","op":{"hub":"bad hub.*","action":{"action":"sendToGroup","group":"g","target":"t"}}}`},
		{"another hub's op", hubSubj, `{"v":1,"kind":"op","node":"x","op":{"hub":"other","action":{"action":"broadcast","target":"t"}}}`},
		{"bad query", "sb.q", `{"v":1,"kind":"query","node":"x","query":{"hub":"h","kind":"everything"}}`},
		{"node subject garbage", subject("sb.n", "n0"), `[1,2,3]`},
		{"heartbeat garbage", subject("sb.hb", "x"), `{"v":1}`},
		{"heartbeat of another", subject("sb.hb", "x"), `{"v":1,"kind":"hb","node":"y"}`},
	}
	want := node.nats.Stats().Dropped
	for _, tc := range tests {
		if err := raw.Publish(tc.subject, []byte(tc.data)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want++
		testutil.Eventually(t, 10*time.Second, tc.name+" to be dropped", func() bool { return node.nats.Stats().Dropped == want })
	}
	// A request with garbage is answered, not left to time out.
	msg, err := raw.Request(subject("sb.n", "n0"), []byte("nope"), 10*time.Second)
	if err != nil || !strings.Contains(string(msg.Data), `"code":"invalid"`) {
		t.Errorf("garbage request: reply %q, %v; want an invalid-code reply", msgData(msg), err)
	}
	// The node still works: a well-formed op from another sender arrives.
	good := `{"v":1,"kind":"op","node":"x","op":{"hub":"bad hub.*","action":{"action":"broadcast","target":"fine"}}}`
	if err := raw.Publish(hubSubj, []byte(good)); err != nil {
		t.Fatal(err)
	}
	if e := c.next(t); e.Target != "fine" {
		t.Errorf("after bad input got %+v, want the good broadcast", e)
	}
}

func msgData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}

func TestNATSMembers(t *testing.T) {
	s := startServer(t, natsembed.Options{})
	clk := testutil.NewClock(time.Unix(1_800_000_000, 0))
	var buses []*cluster.NATS
	for i := range 3 {
		nc, err := nats.Connect(s.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		id := fmt.Sprint("m", i)
		// No periodic heartbeats within the test: only the first one and
		// the answers to it, so the clock alone decides liveness.
		b, err := cluster.NewNATS(nc, nil, cluster.NATSOptions{
			NodeID: id, URL: "http://" + id, Conns: func() int { return 10 + i },
			HubConns:          func() map[string]int { return map[string]int{"chat": 10 + i} },
			HeartbeatInterval: time.Hour, Now: clk.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		buses = append(buses, b)
	}
	ids := func(b *cluster.NATS) string {
		var out []string
		for _, m := range b.Members() {
			out = append(out, m.ID)
		}
		return strings.Join(out, ",")
	}
	for _, b := range buses {
		testutil.Eventually(t, 10*time.Second, "everyone to see everyone", func() bool { return ids(b) == "m0,m1,m2" })
	}
	if ids, _, ok := buses[0].Live(); !ok || strings.Join(ids, ",") != "m0,m1,m2" {
		t.Errorf("Live() = %v, %v; want the members' ids, ok", ids, ok)
	}
	m1 := buses[0].Members()[1]
	// Heartbeats carry the connections per hub, for the admin dashboard.
	if want := (cluster.Member{ID: "m1", URL: "http://m1", Conns: 11, Hubs: map[string]int{"chat": 11}, LastSeen: clk.Now()}); !reflect.DeepEqual(m1, want) {
		t.Errorf("member = %+v, want %+v", m1, want)
	}

	// A node that closes says goodbye: the others forget it at once, and a
	// request to it finds no one.
	buses[2].Close()
	testutil.Eventually(t, 10*time.Second, "m2 to be forgotten", func() bool { return ids(buses[0]) == "m0,m1" && ids(buses[1]) == "m0,m1" })
	err := buses[0].Publish(context.Background(), &gateway.Op{Hub: "h", Action: &actions.Action{Action: actions.AddToGroup, Group: "g", ConnectionID: "m2.abc"}})
	if !isNoConnection(err) {
		t.Errorf("op to a closed node: got %v, want ErrNoConnection", err)
	}
	answers, err := buses[0].Gather(context.Background(), &gateway.Query{Hub: "h", Kind: gateway.QueryConnection, ConnectionID: "m2.abc"})
	if err != nil || len(answers) != 0 {
		t.Errorf("query to a closed node = %v, %v; want no answer, no error", answers, err)
	}

	// Silence: live up to the TTL (3 s), gone after it.
	clk.Advance(3 * time.Second)
	if got := ids(buses[0]); got != "m0,m1" {
		t.Errorf("at the TTL: members %s, want m0,m1", got)
	}
	clk.Advance(time.Millisecond)
	if got := ids(buses[0]); got != "m0" {
		t.Errorf("past the TTL: members %s, want m0", got)
	}
}

func TestNATSOutage(t *testing.T) {
	s := startServer(t, natsembed.Options{})
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	nc, err := nats.Connect(s.URL(), cluster.DialOptions("outage", 1024)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bus, err := cluster.NewNATS(nc, nil, cluster.NATSOptions{NodeID: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	node := startNode(t, 0, "o1", bus)
	bus.SetNode(node.g)
	c := node.connect(t, "h", "")
	if !bus.Healthy() {
		t.Fatal("not healthy while connected")
	}
	ids, session, ok := bus.Live()
	if !ok || strings.Join(ids, ",") != "o1" {
		t.Fatalf("Live() = %v, %v while connected; want [o1], true", ids, ok)
	}

	s.Shutdown()
	testutil.Eventually(t, 10*time.Second, "the bus to notice the outage", func() bool { return !bus.Healthy() })
	// Cut off, the bus cannot tell who is alive: the registry must not
	// count this time.
	if _, _, ok := bus.Live(); ok {
		t.Error("Live() says ok while NATS is down")
	}
	big := `["` + strings.Repeat("x", 600) + `"]`
	for i := range 4 {
		mustPublish(t, node, &gateway.Op{Hub: "h", Action: &actions.Action{Action: actions.Broadcast, Target: fmt.Sprint("b", i), Arguments: []byte(big)}})
	}
	// Local clients get every broadcast; what the 1 KiB buffer could not
	// hold for the other nodes is counted.
	for i := range 4 {
		if e := c.next(t); e.Target != fmt.Sprint("b", i) {
			t.Fatalf("got %+v, want broadcast b%d", e, i)
		}
	}
	if got := bus.Stats().BufferedDrops; got < 1 {
		t.Errorf("BufferedDrops = %d, want at least 1", got)
	}

	startServer(t, natsembed.Options{Port: port})
	testutil.Eventually(t, 10*time.Second, "the bus to reconnect", bus.Healthy)
	// A new session: absences seen before the outage count no more.
	if _, again, ok := bus.Live(); !ok || again == session {
		t.Errorf("Live() after reconnecting: session %d, ok %v; want a session other than %d, ok", again, ok, session)
	}
}

// The publishing node applies its own ops at once and must not apply them
// again when NATS echoes them back.
func TestNATSOwnOpsApplyOnce(t *testing.T) {
	s := startServer(t, natsembed.Options{})
	nodes := natsCluster(t, []*natsembed.Server{s}, 1)
	node := nodes[0]
	c := node.connect(t, "h", "u")
	mustPublish(t, node, &gateway.Op{Hub: "h", Action: &actions.Action{Action: actions.AddToGroup, Group: "g", ConnectionID: c.id}})
	flush(t, nodes)
	raw, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, a := range []*actions.Action{
		{Action: actions.Broadcast, Target: "once"},
		{Action: actions.SendToGroup, Group: "g", Target: "once"},
		{Action: actions.SendToUser, User: "u", Target: "once"},
	} {
		mustPublish(t, node, &gateway.Op{Hub: "h", Action: a})
		// Once the server has the node's publication, its echo is queued
		// to the node ahead of anything published after.
		flush(t, nodes)
		fenceOp := `{"v":1,"kind":"op","node":"raw","op":{"hub":"h","action":{"action":"broadcast","target":"fence"}}}`
		if err := raw.Publish(subject("sb.h", "h"), []byte(fenceOp)); err != nil {
			t.Fatal(err)
		}
		if got := c.until(t, "fence"); len(got) != 1 {
			t.Errorf("%s: got %q, want one delivery", a.Action, got)
		}
	}
}
