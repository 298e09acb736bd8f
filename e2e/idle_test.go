package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// idleWaits counts the goroutines of this process that wait for an idle
// connection's next frame (gateway.ServeWaiting's small-stack wait).
func idleWaits(t *testing.T) int {
	t.Helper()
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	return strings.Count(b.String(), "gateway.(*idleReads).wait(")
}

// TestIdleConnectionsWaitSmall: a WebSocket that has sent nothing for the
// gateway's IdleHandoff waits on a goroutine of its own (see
// gateway.ServeWaiting). Nothing of the connection may notice: frames sent
// to it while it waits arrive, several frames sent at once are all read
// (none held back in a read buffer until the client sends more), server
// pushes and a server-side close reach it, and its client's close ends it
// with its disconnected event.
func TestIdleConnectionsWaitSmall(t *testing.T) {
	// Not parallel: it counts this process's goroutines.
	g, rec := setup(t, func(c *node.Config) { c.IdleHandoff = 20 * time.Millisecond })
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event == upstream.EventMessage {
			return http.StatusOK, map[string]any{"result": json.RawMessage(ev.Arguments)}
		}
		return http.StatusNoContent, nil
	})

	before := idleWaits(t)
	pushes := newInbox()
	ann := g.dial("chat", "ann", map[string]func([]json.RawMessage){"push": pushes.handler()})
	bob := g.dial("chat", "bob", nil)
	testutil.Eventually(t, waitFor, "both connections waiting idle", func() bool { return idleWaits(t) >= before+2 })

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	// Three invocations written back to back reach the gateway in one
	// read: each must be answered, none left waiting for a fourth.
	results := make(chan error, 3)
	for i := range 3 {
		go func() {
			res, err := ann.Invoke(ctx, "Echo", i)
			if err == nil && string(res) != "["+string(rune('0'+i))+"]" {
				err = &unexpected{string(res)}
			}
			results <- err
		}()
	}
	for range 3 {
		if err := <-results; err != nil {
			t.Fatalf("invoke after an idle wait: %v", err)
		}
	}
	testutil.Eventually(t, waitFor, "ann waiting idle again", func() bool { return idleWaits(t) >= before+2 })

	g.restWant(http.MethodPost, "/api/hubs/chat/users/ann/:send", map[string]any{"target": "push", "arguments": []any{"while idle"}}, http.StatusAccepted)
	if args := pushes.next(t); len(args) != 1 || string(args[0]) != `"while idle"` {
		t.Errorf("push to an idle connection: %s", args)
	}

	g.restWant(http.MethodDelete, "/api/hubs/chat/connections/"+bob.ConnectionID()+"?reason=bye", nil, http.StatusOK)
	waitClosed(t, bob, "bye")
	rec.waitEvent(isEvent("disconnected", bob.ConnectionID()))

	ann.Close()
	dis := rec.waitEvent(isEvent("disconnected", ann.ConnectionID()))
	if dis.Event.Reason != "client closed the connection" {
		t.Errorf("disconnected reason of a client that closed while idle: %q", dis.Event.Reason)
	}
	testutil.Eventually(t, waitFor, "the idle waits ended with their connections", func() bool { return idleWaits(t) <= before })
}

type unexpected struct{ got string }

func (e *unexpected) Error() string { return "unexpected result " + e.got }

// waitClosed waits for c to end and checks that the server's close carried
// reason.
func waitClosed(t *testing.T, c *client.Conn, reason string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(waitFor):
		t.Fatal("the connection did not close")
	}
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), reason) {
		t.Errorf("connection ended with %v, want the reason %q", err, reason)
	}
}

// TestIdleHandoffOff: with a negative IdleHandoff (serve's --idle-handoff
// -1s) a quiet WebSocket keeps waiting on the goroutine that read its
// handshake. A node with the move on runs beside it, so that the test
// knows when sweeps have had their chance.
func TestIdleHandoffOff(t *testing.T) {
	// Not parallel: it counts this process's goroutines.
	on, _ := setup(t, func(c *node.Config) { c.IdleHandoff = 20 * time.Millisecond })
	off, _ := setup(t, func(c *node.Config) { c.IdleHandoff = -1 })
	before := idleWaits(t)
	pushes := newInbox()
	off.dial("chat", "kept", map[string]func([]json.RawMessage){"push": pushes.handler()})
	on.dial("chat", "moved", nil)
	testutil.Eventually(t, waitFor, "the connection of the node with the move on waiting idle", func() bool { return idleWaits(t) >= before+1 })
	// The sweep runs every second: give the node with the move off two.
	time.Sleep(2500 * time.Millisecond)
	if n := idleWaits(t); n != before+1 {
		t.Errorf("%d idle waits, want %d: the node with --idle-handoff -1s moved its connection's wait", n-before, 1)
	}
	off.restWant(http.MethodPost, "/api/hubs/chat/users/kept/:send", map[string]any{"target": "push", "arguments": []any{"still here"}}, http.StatusAccepted)
	if args := pushes.next(t); len(args) != 1 || string(args[0]) != `"still here"` {
		t.Errorf("push to a connection that stayed on its reading goroutine: %s", args)
	}
}
