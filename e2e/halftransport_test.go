package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/protocol"
	"github.com/switchboard-gw/switchboard/upstream"
)

// halfSetup starts a node (with opts) serving hub "half" (tokens required)
// whose upstream puts every connection in group "room" and answers the
// invocations echo (the first argument back), fail (an error) and fanout
// (a broadcast, a send to group room and a send to user alice).
func halfSetup(t *testing.T, opts ...nodeOption) (*gw, *recorder) {
	t.Helper()
	g := startNode(t, opts...)
	g.createHub("half", false)
	rec := newRecorder(t)
	rec.secret = g.addUpstream("half", "fn", rec.URL()+"/{event}", "connect", "connected", "disconnected", "message:*")
	rec.setReply(halfReply)
	return g, rec
}

func halfReply(ev *upstream.Event) (int, any) {
	switch ev.Event {
	case upstream.EventConnect:
		return http.StatusOK, map[string]any{"groups": []string{"room"}}
	case upstream.EventMessage:
		var args []json.RawMessage
		_ = json.Unmarshal(ev.Arguments, &args)
		switch ev.Target {
		case "echo":
			return http.StatusOK, map[string]any{"result": args[0]}
		case "fail":
			return http.StatusOK, map[string]any{"error": "nope"}
		case "fanout":
			return http.StatusOK, map[string]any{"actions": []actions.Action{
				{Action: actions.Broadcast, Target: "b", Arguments: json.RawMessage(`["to all"]`)},
				{Action: actions.SendToGroup, Group: "room", Target: "g", Arguments: json.RawMessage(`["to room"]`)},
				{Action: actions.SendToUser, User: "alice", Target: "u", Arguments: json.RawMessage(`["to alice"]`)},
			}}
		}
	}
	return http.StatusNoContent, nil
}

// TestHalfTransports: a Server-Sent Events connection (JSON) and Long
// Polling connections (JSON and MessagePack) negotiate, shake hands,
// invoke with a result and with an error, receive a broadcast, a group
// send and a user send, and the upstream hears of their end: DELETE for
// Long Polling, the closed stream for SSE.
func TestHalfTransports(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ transport, protocol, reason string }{
		{"ServerSentEvents", "json", "client closed the connection"},
		{"LongPolling", "json", "client closed the connection"},
		{"LongPolling", "messagepack", "client closed the connection"},
	} {
		t.Run(tc.transport+"/"+tc.protocol, func(t *testing.T) {
			t.Parallel()
			g, rec := halfSetup(t)
			h := newHalfClient(t, g.url, "half", g.token("half", "alice"), tc.transport, tc.protocol, true)
			h.handshake()
			connect := rec.waitEvent(isEvent(upstream.EventConnect, h.connID))
			if connect.Event.User() != "alice" {
				t.Errorf("connect event user = %q, want alice", connect.Event.User())
			}
			if _, ok := connect.Event.Query["_"]; ok {
				t.Errorf("connect event query %v carries the Long Polling cache buster", connect.Event.Query)
			}

			res, _ := h.invoke("1", "echo", `["hi é"]`)
			if res.Error != "" || string(res.Result) != `"hi é"` {
				t.Errorf("echo completion = result %s error %q, want \"hi é\"", res.Result, res.Error)
			}
			res, _ = h.invoke("2", "fail", `[]`)
			if res.Error != "nope" {
				t.Errorf("fail completion = result %s error %q, want error nope", res.Result, res.Error)
			}
			_, got := h.invoke("3", "fanout", `[]`)
			for len(got) < 3 {
				got = append(got, h.next())
			}
			var targets []string
			for _, m := range got {
				if m.Type != protocol.TypeInvocation {
					t.Errorf("unexpected message %+v", m)
					continue
				}
				targets = append(targets, m.Target+" "+string(m.Arguments))
			}
			slices.Sort(targets)
			want := []string{`b ["to all"]`, `g ["to room"]`, `u ["to alice"]`}
			if !slices.Equal(targets, want) {
				t.Errorf("received %q, want %q", targets, want)
			}

			// The stock client's stop: DELETE for Long Polling (then a
			// waiting poll gets 204), closing the EventSource for SSE. The
			// poll loop here sends its next poll as soon as one returns
			// frames, so that poll may reach the server after the DELETE
			// ended the connection: it then gets 404 (as in halfbad_test).
			if tc.transport == "LongPolling" {
				status, body, _ := h.request(context.Background(), http.MethodDelete, g.url, nil)
				if status != http.StatusAccepted {
					t.Errorf("DELETE = %d %s, want 202", status, body)
				}
				if s := h.endedWith(); s != http.StatusNoContent && s != http.StatusNotFound {
					t.Errorf("the poll ended with %d, want 204 (waiting) or 404 (sent after the end)", s)
				}
			} else {
				h.stop()
			}
			ev := rec.waitEvent(isEvent(upstream.EventDisconnected, h.connID))
			if ev.Event.Reason != tc.reason {
				t.Errorf("disconnected reason %q, want %q", ev.Event.Reason, tc.reason)
			}
			// The final Close the stock client posts after stopping finds
			// the connection gone.
			if status, body := h.post(h.codec.AppendClose(nil, "", false)); status != http.StatusNotFound {
				t.Errorf("POST after the end = %d %s, want 404", status, body)
			}
		})
	}
}

// TestLongPollingTimeouts: a poll with nothing to answer ends empty (200)
// after the poll wait and the client polls on; a client that stops polling
// is gone after the idle timeout, and the upstream is told why.
func TestLongPollingTimeouts(t *testing.T) {
	t.Parallel()
	g, rec := halfSetup(t, func(c *node.Config) {
		c.LongPolling = httpapi.LongPolling{PollWait: 200 * time.Millisecond, IdleTimeout: 2 * time.Second}
	})
	h := newHalfClient(t, g.url, "half", g.token("half", "alice"), "LongPolling", "json", false)
	ctx, cancel := context.WithTimeout(context.Background(), requestWait)
	defer cancel()
	// Nothing to send: the poll ends empty once the wait is over.
	if status, body := h.get(ctx, g.url); status != http.StatusOK || len(body) != 0 {
		t.Fatalf("an idle poll = %d %q, want 200 empty", status, body)
	}
	h.wg.Go(func() { h.pollLoop(h.ctx) })
	h.handshake()
	if res, _ := h.invoke("1", "echo", `[1]`); string(res.Result) != "1" {
		t.Errorf("echo after empty polls = %s %q", res.Result, res.Error)
	}
	h.stop() // polls no more, says nothing
	ev := rec.waitEvent(isEvent(upstream.EventDisconnected, h.connID))
	if !strings.Contains(ev.Event.Reason, "no poll from the client for 2s") {
		t.Errorf("disconnected reason %q, want it to say the client stopped polling", ev.Event.Reason)
	}
	// Polls that come while the connection winds down get 204; once it is
	// gone, its token is unknown.
	testutil.Eventually(t, waitFor, "polls for the ended connection to get 404", func() bool {
		status, _ := h.get(ctx, g.url)
		return status == http.StatusNotFound
	})
}
