package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/upstream"
)

// TestEventLifecycle follows one connection through every event and checks
// headers, URL template expansion and body identity fields.
func TestEventLifecycle(t *testing.T) {
	g, rec := setup(t)
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event == upstream.EventMessage {
			return http.StatusOK, map[string]any{"result": map[string]any{"echo": json.RawMessage(ev.Arguments)}}
		}
		return http.StatusNoContent, nil
	})
	c := g.dial("chat", "alice", nil)
	id := c.ConnectionID()
	if !strings.HasPrefix(id, g.node.Gateway().NodeID()+".") {
		t.Errorf("connection id %q does not carry the node id %q", id, g.node.Gateway().NodeID())
	}

	connect := rec.waitEvent(isEvent("connect", id))
	h := connect.Header
	for k, want := range map[string]string{
		"ce-specversion":  "1.0",
		"ce-type":         "switchboard.connect",
		"ce-source":       "/hubs/chat/connections/" + id,
		"ce-hub":          "chat",
		"ce-connectionid": id,
		"ce-userid":       "alice",
		"ce-eventname":    "connect",
		"Content-Type":    "application/json",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if h.Get("ce-id") == "" || h.Get("ce-id") != h.Get("webhook-id") {
		t.Errorf("ce-id %q and webhook-id %q must be equal and set", h.Get("ce-id"), h.Get("webhook-id"))
	}
	if _, err := time.Parse(time.RFC3339Nano, h.Get("ce-time")); err != nil {
		t.Errorf("ce-time %q: %v", h.Get("ce-time"), err)
	}
	ev := connect.Event
	if ev.Hub != "chat" || ev.ConnectionID != id || ev.User() != "alice" {
		t.Errorf("connect body identity = %+v", ev)
	}
	if ev.Claims["nameid"] != "alice" {
		t.Errorf("connect claims = %v, want nameid alice", ev.Claims)
	}
	if ev.Query["hub"][0] != "chat" || ev.Query["access_token"] != nil || ev.Query["id"] != nil {
		t.Errorf("connect query = %v: want hub, without access_token and id", ev.Query)
	}
	if ev.Headers["Authorization"] != nil {
		t.Errorf("connect headers leak Authorization")
	}

	rec.waitEvent(isEvent("connected", id))

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := c.Invoke(ctx, "Echo", "hi", 2)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if string(res) != `{"echo":["hi",2]}` {
		t.Errorf("result = %s", res)
	}
	msg := rec.waitEvent(isEvent("message", id))
	if msg.Event.Target != "Echo" || msg.Event.InvocationID == nil || *msg.Event.InvocationID != "0" {
		t.Errorf("message event = %+v", msg.Event)
	}
	if msg.Header.Get("ce-eventname") != "Echo" || msg.Header.Get("ce-type") != "switchboard.message" {
		t.Errorf("message headers = %v", msg.Header)
	}
	if err := c.Send(ctx, "Note", "x"); err != nil {
		t.Fatal(err)
	}
	note := rec.waitEvent(func(e *received) bool { return e.Event.Target == "Note" })
	if note.Event.InvocationID != nil {
		t.Errorf("send carried invocationId %q; want null", *note.Event.InvocationID)
	}

	c.Close()
	dis := rec.waitEvent(isEvent("disconnected", id))
	if dis.Event.Reason != "client closed the connection" {
		t.Errorf("disconnected reason = %q", dis.Event.Reason)
	}
}

// TestURLTemplateExpansion checks the path each event is posted to.
func TestURLTemplateExpansion(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	got := make(chan string, 16)
	paths := newPathRecorder(t, got)
	g.addUpstream("chat", "paths", paths+"/{hub}/{category}/{event}")
	c := g.dial("chat", "bob", nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := c.Invoke(ctx, "Send Message"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// connected comes through the outbox, so the synchronous message event
	// may overtake it; notifications keep their order among themselves.
	want := []string{"/chat/connections/connect", "/chat/connections/connected", "/chat/messages/Send%20Message", "/chat/connections/disconnected"}
	var swapped bool
	for i, w := range want {
		select {
		case p := <-got:
			switch {
			case p == w:
			case i == 1 && p == want[2]:
				swapped = true
			case i == 2 && swapped && p == want[1]:
			default:
				t.Errorf("path %q, want %q", p, w)
			}
		case <-time.After(waitFor):
			t.Fatalf("no request for %s", w)
		}
	}
}

// newPathRecorder is an upstream that only records the path of each request.
func newPathRecorder(t *testing.T, got chan<- string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.EscapedPath()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestConnectShapesConnection: a connect reply sets the user id and groups.
func TestConnectShapesConnection(t *testing.T) {
	g, rec := setup(t)
	rec.setReply(func(ev *upstream.Event) (int, any) {
		switch ev.Event {
		case upstream.EventConnect:
			if ev.User() == "carol" {
				return http.StatusOK, map[string]any{"userId": "carol-from-upstream", "groups": []string{"vip"}}
			}
		case upstream.EventMessage:
			return http.StatusOK, map[string]any{"actions": []map[string]any{
				{"action": "sendToGroup", "group": "vip", "target": "msg", "arguments": []string{"to vip"}},
				{"action": "sendToUser", "user": "carol-from-upstream", "target": "msg", "arguments": []string{"to user"}},
			}}
		}
		return http.StatusNoContent, nil
	})
	box := newInbox()
	carol := g.dial("chat", "carol", map[string]func([]json.RawMessage){"msg": box.handler()})
	dave := g.dial("chat", "dave", nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := dave.Invoke(ctx, "go"); err != nil {
		t.Fatal(err)
	}
	if got := str(t, box.next(t)[0]); got != "to vip" {
		t.Errorf("first message %q, want to vip", got)
	}
	if got := str(t, box.next(t)[0]); got != "to user" {
		t.Errorf("second message %q, want to user", got)
	}
	ev := rec.waitEvent(isEvent("connected", carol.ConnectionID()))
	if ev.Event.User() != "carol-from-upstream" {
		t.Errorf("connected event user %q, want the id the connect reply set", ev.Event.User())
	}
}

// TestConnectReject: a 401/403 answer fails the client's start with the
// handler's reason, and the connection never exists.
func TestConnectReject(t *testing.T) {
	g, rec := setup(t)
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event != upstream.EventConnect {
			return http.StatusNoContent, nil
		}
		switch ev.User() {
		case "mallory":
			return http.StatusForbidden, map[string]string{"error": "mallory is banned"}
		case "eve":
			return http.StatusUnauthorized, nil
		}
		return http.StatusNoContent, nil
	})
	for user, want := range map[string]string{
		"mallory": "mallory is banned",
		"eve":     `connection rejected by upstream "rec" (401)`,
	} {
		_, err := g.tryDial("chat", user, nil)
		if err == nil || !errors.Is(err, client.ErrHandshake) || !strings.Contains(err.Error(), want) {
			t.Errorf("dial as %s: err = %v, want a handshake error containing %q", user, err, want)
		}
	}
	for _, e := range rec.all() {
		if e.Event.Event == "connected" {
			t.Errorf("a rejected client got a connected event: %+v", e.Event)
		}
	}
	// Others are unaffected.
	g.dial("chat", "alice", nil)
}
