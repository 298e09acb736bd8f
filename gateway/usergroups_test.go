package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/cluster"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// quietRig is a rig whose connections are neither pinged nor timed out
// within the minutes its tests move the clock.
func quietRig(t *testing.T, cfg gateway.Config) *rig {
	cfg.PingInterval, cfg.ClientTimeout = time.Hour, 2*time.Hour
	return newRigWith(t, cfg)
}

func invocation(target, arg string) string {
	return fmt.Sprintf(`{"type":1,"target":%q,"arguments":[%q]}`, target, arg) + "\x1e"
}

// expectNext checks that the next frame on each socket is the invocation
// of "msg" with arg: a socket that was wrongly sent an earlier message
// shows that one instead, so a barrier proves absence without waiting.
func expectNext(t *testing.T, arg string, wss ...*websocket.Conn) {
	t.Helper()
	for i, ws := range wss {
		if got, want := read(t, ws), invocation("msg", arg); got != want {
			t.Fatalf("socket %d got %q, want %q", i, got, want)
		}
	}
}

func sendTo(t *testing.T, g *gateway.Gateway, kind, name, arg string) {
	t.Helper()
	a := &actions.Action{Action: kind, Target: "msg", Arguments: json.RawMessage(fmt.Sprintf("[%q]", arg))}
	switch kind {
	case actions.SendToGroup:
		a.Group = name
	case actions.SendToUser:
		a.User = name
	}
	if err := g.Apply(context.Background(), "hub", a); err != nil {
		t.Fatal(err)
	}
}

func addUser(t *testing.T, g *gateway.Gateway, user, group string, ttl int64) {
	t.Helper()
	a := &actions.Action{Action: actions.AddUserToGroup, User: user, Group: group, TTL: ttl}
	if err := g.Apply(context.Background(), "hub", a); err != nil {
		t.Fatal(err)
	}
}

// TestUserGroupTTLEndsOnLiveConnections: a user added to a group with a
// ttl is in it, on the connections open when it was added and on those
// opened later, until the ttl runs out and not a moment longer than the
// next sweep; a connection that is also in the group as itself stays; a
// renewal moves the end.
func TestUserGroupTTLEndsOnLiveConnections(t *testing.T) {
	r := quietRig(t, gateway.Config{NodeID: "n1"})
	ctx := context.Background()
	live, _ := r.connect("u")
	other, otherID := r.connect("v")
	if err := r.g.ApplyLocal("hub", &actions.Action{Action: actions.AddToGroup, Group: "g", ConnectionID: otherID}); err != nil {
		t.Fatal(err)
	}
	addUser(t, r.g, "u", "g", 60)
	addUser(t, r.g, "v", "g", 60) // v is in g as a connection too: that stays
	later, _ := r.connect("u")

	inGroup := func(user string) bool {
		t.Helper()
		in, err := r.g.UserInGroup(ctx, "hub", user, "g")
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	sendTo(t, r.g, actions.SendToGroup, "g", "before")
	expectNext(t, "before", live, other, later)

	r.clk.Advance(59 * time.Second)
	r.g.Sweep(r.clk.Now())
	sendTo(t, r.g, actions.SendToGroup, "g", "a second before the end")
	expectNext(t, "a second before the end", live, other, later)
	if !inGroup("u") {
		t.Fatal("u left g a second before its ttl ran out")
	}

	r.clk.Advance(time.Second)
	r.g.Sweep(r.clk.Now())
	if inGroup("u") {
		t.Fatal("u is still in g once its ttl ran out")
	}
	if !inGroup("v") {
		t.Fatal("v left g, which its connection joined as itself")
	}
	sendTo(t, r.g, actions.SendToGroup, "g", "after")
	sendTo(t, r.g, actions.SendToUser, "u", "barrier")
	expectNext(t, "after", other)
	expectNext(t, "barrier", live, later)

	// A renewal before the end moves it; the first end passes unnoticed.
	addUser(t, r.g, "u", "g", 10)
	r.clk.Advance(5 * time.Second)
	addUser(t, r.g, "u", "g", 30)
	r.clk.Advance(5 * time.Second)
	r.g.Sweep(r.clk.Now())
	if !inGroup("u") {
		t.Fatal("u left g at the end its renewal replaced")
	}
	r.clk.Advance(25 * time.Second)
	r.g.Sweep(r.clk.Now())
	if inGroup("u") {
		t.Fatal("u is still in g after its renewed ttl ran out")
	}
	ok, err := r.g.GroupExists(ctx, "hub", "g")
	if err != nil || !ok {
		t.Fatalf("group g without v's connection: %v %v", ok, err)
	}

	// Without a ttl the membership stays, even after one with a ttl.
	addUser(t, r.g, "u", "g", 5)
	addUser(t, r.g, "u", "g", 0)
	r.clk.Advance(time.Hour)
	r.g.Sweep(r.clk.Now())
	if !inGroup("u") {
		t.Fatal("a membership without ttl ended")
	}
}

// frames reads a socket's frames into a channel until it closes.
func frames(t *testing.T, ws *websocket.Conn) <-chan string {
	ch := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			ch <- string(b)
		}
	}()
	t.Cleanup(func() { ws.CloseNow(); <-done })
	return ch
}

func nextFrame(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case f, ok := <-ch:
		if !ok {
			t.Fatal("the socket closed")
		}
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10s")
	}
	return ""
}

// TestUserGroupTTLAcrossNodes: the node holding a connection ends its
// user's membership at the end the adding node saved, whatever its own
// clock says when the op arrives, and the other nodes see it gone.
func TestUserGroupTTLAcrossNodes(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	var rigs [2]*rig
	var buses [2]*cluster.NATS
	for i := range rigs {
		nc, err := nats.Connect(srv.URL(), cluster.DialOptions(fmt.Sprintf("node%d", i), 0)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		id := fmt.Sprintf("n%d", i)
		bus, err := cluster.NewNATS(nc, nil, cluster.NATSOptions{NodeID: id, URL: "http://" + id, HeartbeatInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bus.Close)
		rigs[i] = quietRig(t, gateway.Config{NodeID: id, Bus: bus})
		bus.SetNode(rigs[i].g)
		buses[i] = bus
	}
	for _, b := range buses {
		testutil.Eventually(t, 10*time.Second, "the nodes to see each other", func() bool { return len(b.Members()) == 2 })
	}
	ctx := context.Background()
	adder, holder := rigs[0], rigs[1]
	// The holder's clock runs 5 s ahead: were the ttl counted from the op's
	// arrival there, the membership would end 5 s late.
	holder.clk.Advance(5 * time.Second)
	ws, _ := holder.connect("u")
	in := frames(t, ws)

	// Subscriptions follow interest asynchronously: send until a message
	// arrives. Messages from one node reach another in order, so once
	// probe n arrived no earlier one is still on its way.
	probe := func(kind, name string) {
		t.Helper()
		n := 0
		testutil.Eventually(t, 10*time.Second, "a "+kind+" send to reach the other node", func() bool {
			n++
			want := invocation("msg", fmt.Sprintf("probe %d", n))
			sendTo(t, adder.g, kind, name, fmt.Sprintf("probe %d", n))
			deadline := time.After(100 * time.Millisecond)
			for {
				select {
				case f := <-in:
					if f == want {
						return true
					}
				case <-deadline:
					return false
				}
			}
		})
	}
	probe(actions.SendToUser, "u")
	addUser(t, adder.g, "u", "g", 30)
	probe(actions.SendToGroup, "g")

	groupExists := func() bool {
		t.Helper()
		ok, err := adder.g.GroupExists(ctx, "hub", "g")
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	holder.clk.Advance(24 * time.Second) // the adder's t0+29
	holder.g.Sweep(holder.clk.Now())
	if !groupExists() {
		t.Fatal("the membership ended a second before its ttl ran out")
	}
	holder.clk.Advance(time.Second) // the adder's t0+30
	holder.g.Sweep(holder.clk.Now())
	if groupExists() {
		t.Fatal("the connection is still in the group when its user's ttl ran out on the adding node")
	}
	sendTo(t, adder.g, actions.SendToGroup, "g", "after")
	sendTo(t, adder.g, actions.SendToUser, "u", "barrier")
	if got, want := nextFrame(t, in), invocation("msg", "barrier"); got != want {
		t.Fatalf("got %q, want only the barrier", got)
	}
}
