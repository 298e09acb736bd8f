package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/upstream"
)

// actionClient is a connected client with an inbox for target "msg".
type actionClient struct {
	conn *client.Conn
	box  *inbox
}

// actionRig is a hub whose upstream answers every invocation of "do" with
// the actions in its first argument, so a test can drive any action
// sequence through a real webhook round trip.
func actionRig(t *testing.T) (*gw, func(user string) *actionClient) {
	g, rec := setup(t)
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event != upstream.EventMessage || ev.Target != "do" {
			return http.StatusNoContent, nil
		}
		var args []json.RawMessage
		if err := json.Unmarshal(ev.Arguments, &args); err != nil || len(args) != 1 {
			return http.StatusOK, map[string]string{"error": "do takes one argument: the actions"}
		}
		return http.StatusOK, `{"result":"done","actions":` + string(args[0]) + `}`
	})
	return g, func(user string) *actionClient {
		box := newInbox()
		c := g.dial("chat", user, map[string]func([]json.RawMessage){"msg": box.handler()})
		return &actionClient{conn: c, box: box}
	}
}

func (c *actionClient) do(t *testing.T, acts ...map[string]any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := c.conn.Invoke(ctx, "do", acts)
	return err
}

func (c *actionClient) mustDo(t *testing.T, acts ...map[string]any) {
	t.Helper()
	if err := c.do(t, acts...); err != nil {
		t.Fatalf("do %v: %v", acts, err)
	}
}

// expect checks that the next messages on c are exactly want, in order.
func (c *actionClient) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := str(t, c.box.next(t)[0]); got != w {
			t.Fatalf("got message %q, want %q", got, w)
		}
	}
}

func send(action string, fields map[string]any, text string) map[string]any {
	m := map[string]any{"action": action, "target": "msg", "arguments": []string{text}}
	for k, v := range fields {
		m[k] = v
	}
	return m
}

// barrier broadcasts a marker; a client that must not have received an
// earlier message sees the marker next. Messages to one connection keep
// their order, so this proves absence without sleeping.
func barrier(t *testing.T, by *actionClient, name string) {
	by.mustDo(t, send("broadcast", nil, name))
}

func TestActions(t *testing.T) {
	_, connect := actionRig(t)
	a, b, c := connect("ua"), connect("ub"), connect("uc")

	// broadcast with an exclusion
	a.mustDo(t, send("broadcast", map[string]any{"excluded": []string{c.conn.ConnectionID()}}, "all but c"))
	a.expect(t, "all but c")
	b.expect(t, "all but c")
	barrier(t, a, "b1")
	c.expect(t, "b1")
	a.expect(t, "b1")
	b.expect(t, "b1")

	// addToGroup (explicit id and the caller by default), sendToGroup, exclusion
	a.mustDo(t,
		map[string]any{"action": "addToGroup", "group": "room", "connectionId": b.conn.ConnectionID()},
		map[string]any{"action": "addToGroup", "group": "room"},
		send("sendToGroup", map[string]any{"group": "room"}, "room 1"),
		send("sendToGroup", map[string]any{"group": "room", "excluded": []string{a.conn.ConnectionID()}}, "room 2"),
	)
	a.expect(t, "room 1")
	b.expect(t, "room 1", "room 2")
	barrier(t, a, "b2")
	a.expect(t, "b2")
	b.expect(t, "b2")
	c.expect(t, "b2")

	// removeFromGroup
	a.mustDo(t,
		map[string]any{"action": "removeFromGroup", "group": "room", "connectionId": b.conn.ConnectionID()},
		send("sendToGroup", map[string]any{"group": "room"}, "room 3"),
	)
	a.expect(t, "room 3")
	barrier(t, a, "b3")
	b.expect(t, "b3")

	// sendToUser and sendToConnection
	a.mustDo(t, send("sendToUser", map[string]any{"user": "ub"}, "to ub"),
		send("sendToConnection", map[string]any{"connectionId": c.conn.ConnectionID()}, "to c"))
	b.expect(t, "to ub")
	c.expect(t, "b3", "to c")
	barrier(t, a, "b4")
	a.expect(t, "b3", "b4")
	b.expect(t, "b4")
	c.expect(t, "b4")

	// addUserToGroup reaches the user's current and future connections.
	a.mustDo(t, map[string]any{"action": "addUserToGroup", "user": "uc", "group": "fans"},
		send("sendToGroup", map[string]any{"group": "fans"}, "fans 1"))
	c.expect(t, "fans 1")
	c2 := connect("uc")
	a.mustDo(t, send("sendToGroup", map[string]any{"group": "fans"}, "fans 2"))
	c.expect(t, "fans 2")
	c2.expect(t, "fans 2")

	// removeUserFromGroup
	a.mustDo(t, map[string]any{"action": "removeUserFromGroup", "user": "uc", "group": "fans"},
		send("sendToGroup", map[string]any{"group": "fans"}, "fans 3"))
	barrier(t, a, "b5")
	c.expect(t, "b5")
	c2.expect(t, "b5")

	// closeConnection with a reason
	a.mustDo(t, map[string]any{"action": "closeConnection", "connectionId": c.conn.ConnectionID(), "reason": "bye c"})
	select {
	case <-c.conn.Done():
	case <-time.After(waitFor):
		t.Fatal("closeConnection did not close c")
	}
	var ce *client.CloseError
	if !errors.As(c.conn.Err(), &ce) || ce.Message != "bye c" || ce.AllowReconnect {
		t.Errorf("c ended with %v, want a Close message \"bye c\" without allowReconnect", c.conn.Err())
	}
	// The caller closing itself is the default.
	if err := b.do(t, map[string]any{"action": "closeConnection", "reason": "self"}); err != nil && !errors.Is(err, client.ErrClosed) {
		t.Errorf("self close: %v", err)
	}
	select {
	case <-b.conn.Done():
	case <-time.After(waitFor):
		t.Fatal("closeConnection without id did not close the caller")
	}
	a.mustDo(t, send("broadcast", nil, "still here"))
	a.expect(t, "b5", "still here")
}

// TestUserGroupTTL: a membership with a ttl applies until it expires.
func TestUserGroupTTL(t *testing.T) {
	_, connect := actionRig(t)
	a := connect("ua")
	a.mustDo(t, map[string]any{"action": "addUserToGroup", "user": "ux", "group": "brief", "ttl": 1})
	x := connect("ux")
	a.mustDo(t, send("sendToGroup", map[string]any{"group": "brief"}, "within ttl"))
	x.expect(t, "within ttl")
	// A connection opened after expiry does not join. Expiry is wall-clock
	// in the store; wait it out (bounded, 1 s ttl).
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		y := connect("ux")
		a.mustDo(t, send("sendToGroup", map[string]any{"group": "brief"}, "probe"))
		barrier(t, a, "after probe")
		first := str(t, y.box.next(t)[0])
		y.conn.Close()
		if first == "after probe" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("user group with ttl 1s still applied to new connections after 10s")
}

// TestBadActions: a bad action in a reply is a completion error naming it;
// the gateway keeps serving.
func TestBadActions(t *testing.T) {
	_, connect := actionRig(t)
	a := connect("ua")
	tests := []struct {
		name string
		acts []map[string]any
		want string
	}{
		{"unknown action", []map[string]any{{"action": "explode"}}, `actions[0]: unknown action "explode"`},
		{"missing target", []map[string]any{{"action": "broadcast"}}, "target is required"},
		{"arguments not an array", []map[string]any{{"action": "broadcast", "target": "msg", "arguments": "x"}}, "arguments must be a JSON array"},
		{"no such connection", []map[string]any{{"action": "addToGroup", "group": "g", "connectionId": "nope"}}, `actions[0] addToGroup: connection "nope" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := a.do(t, tt.acts...)
			var ie *client.InvocationError
			if !errors.As(err, &ie) || !strings.Contains(ie.Message, tt.want) {
				t.Fatalf("err = %v, want a completion error containing %q", err, tt.want)
			}
		})
	}
	a.mustDo(t, send("broadcast", nil, "alive"))
	a.expect(t, "alive")
}

// TestInvokeOutcomes covers every way an upstream can answer an invocation.
func TestInvokeOutcomes(t *testing.T) {
	g, rec := setup(t)
	var mu sync.Mutex
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rec.setReply(func(ev *upstream.Event) (int, any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Target {
		case "result":
			return http.StatusOK, `{"result":{"n":1}}`
		case "void":
			return http.StatusNoContent, nil
		case "fail":
			return http.StatusOK, `{"error":"handler says no"}`
		case "crash":
			return http.StatusInternalServerError, "boom"
		case "garbage":
			return http.StatusOK, "{not json"
		case "slow":
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
			return http.StatusNoContent, nil
		}
		return http.StatusNoContent, nil
	})
	c := g.dial("chat", "alice", nil)
	tests := []struct {
		target     string
		wantResult string
		wantErr    string
	}{
		{"result", `{"n":1}`, ""},
		{"void", "", ""},
		{"fail", "", "handler says no"},
		{"crash", "", `upstream "rec" answered 500 Internal Server Error`},
		{"garbage", "", `upstream "rec" sent an invalid reply`},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			res, err := c.Invoke(ctx, tt.target)
			if tt.wantErr != "" {
				var ie *client.InvocationError
				if !errors.As(err, &ie) || !strings.Contains(ie.Message, tt.wantErr) {
					t.Fatalf("err = %v, want completion error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantResult != "" && string(res) != tt.wantResult {
				t.Errorf("result %s, want %s", res, tt.wantResult)
			}
			if tt.wantResult == "" && len(res) != 0 && string(res) != "null" {
				t.Errorf("result %s, want none", res)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		// The upstream was registered with a 2 s timeout; it answers after 5 s.
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_, err := c.Invoke(ctx, "slow")
		var ie *client.InvocationError
		if !errors.As(err, &ie) || ie.Message != `upstream "rec" timed out after 2s` {
			t.Fatalf("err = %v, want the timeout completion", err)
		}
	})
	t.Run("no upstream for target", func(t *testing.T) {
		g.admin(http.MethodPut, "/admin/hubs/chat/upstreams/rec", map[string]any{
			"urlTemplate": rec.URL(), "events": []string{"connect", "message:result"}, "secrets": []string{rec.secret}, "skipValidation": true}, http.StatusOK)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_, err := c.Invoke(ctx, "void")
		var ie *client.InvocationError
		if !errors.As(err, &ie) || ie.Message != `no upstream of hub "chat" handles "void"` {
			t.Fatalf("err = %v", err)
		}
		if _, err := c.Invoke(ctx, "RESULT"); err != nil {
			t.Fatalf("message filter must match targets case-insensitively: %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		g.admin(http.MethodPut, "/admin/hubs/chat/upstreams/rec", map[string]any{
			"urlTemplate": "http://127.0.0.1:1/hook", "secrets": []string{rec.secret}, "skipValidation": true}, http.StatusOK)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_, err := c.Invoke(ctx, "x")
		var ie *client.InvocationError
		if !errors.As(err, &ie) || !strings.Contains(ie.Message, `upstream "rec" is unreachable`) {
			t.Fatalf("err = %v", err)
		}
	})
}
