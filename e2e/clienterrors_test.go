package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/upstream"
)

// TestClientErrorsKeepInternalsOut: what a client is told about a failed
// connect or invocation names the upstream and the kind of failure, never
// an address, a transport error or the upstream's error body; the admin's
// delivery log keeps the detail.
func TestClientErrorsKeepInternalsOut(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there any more
	_, port, _ := net.SplitHostPort(closed)
	g.addUpstream("chat", "fn", "http://"+closed+"/{event}", "connect")
	leaks := func(msg string) []string {
		var found []string
		for _, s := range []string{closed, port, "127.0.0.1", "dial", "tcp", "refused", "pq:", "10.1.2.3"} {
			if strings.Contains(msg, s) {
				found = append(found, s)
			}
		}
		return found
	}

	t.Run("rejected connect", func(t *testing.T) {
		_, err := g.tryDial("chat", "alice", nil)
		if err == nil || !errors.Is(err, client.ErrHandshake) {
			t.Fatalf("dial = %v, want a handshake error", err)
		}
		if !strings.Contains(err.Error(), `upstream "fn" is unreachable`) {
			t.Errorf("the client was told %q, want it to say the upstream is unreachable", err)
		}
		if l := leaks(err.Error()); len(l) > 0 {
			t.Errorf("the client was told %q, which leaks %q", err, l)
		}
		var log []struct {
			Error string `json:"error"`
		}
		decode(t, g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/fn/log", nil, http.StatusOK), &log)
		if len(log) == 0 || !strings.Contains(log[0].Error, closed) {
			t.Errorf("delivery log %+v does not keep the address for the admin", log)
		}
	})

	t.Run("failed invocation", func(t *testing.T) {
		rec := newRecorder(t)
		secret := g.addUpstream("chat", "app", rec.URL(), "message:*")
		rec.mu.Lock()
		rec.secret = secret
		rec.mu.Unlock()
		rec.setReply(func(ev *upstream.Event) (int, any) {
			if ev.Target == "crash" {
				return http.StatusInternalServerError, `{"error":"pq: dial tcp 10.1.2.3:5432: connect: connection refused"}`
			}
			return http.StatusOK, `{"result":"ok","actions":[{"action":"addToGroup","group":"g","connectionId":"nope"}]}`
		})
		// Connect events now go nowhere: "fn" takes only connect, so drop it.
		g.admin(http.MethodDelete, "/admin/hubs/chat/upstreams/fn", nil, http.StatusNoContent)
		c := g.dial("chat", "alice", nil)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		for target, want := range map[string]string{
			"crash":  `upstream "app" answered 500 Internal Server Error`,
			"action": `actions[0] addToGroup: connection "nope" not found`,
		} {
			_, err := c.Invoke(ctx, target)
			var ie *client.InvocationError
			if !errors.As(err, &ie) || ie.Message != want {
				t.Errorf("invoke %s = %v, want the completion error %q", target, err, want)
			}
			if ie != nil {
				if l := leaks(ie.Message); len(l) > 0 {
					t.Errorf("invoke %s: the client was told %q, which leaks %q", target, ie.Message, l)
				}
			}
		}
		var log []struct {
			Error string `json:"error"`
		}
		decode(t, g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/app/log", nil, http.StatusOK), &log)
		found := false
		for _, d := range log {
			found = found || strings.Contains(d.Error, "10.1.2.3:5432")
		}
		if !found {
			t.Errorf("delivery log %+v does not keep the upstream's error body", log)
		}
	})
}

// decode unmarshals an admin API answer or fails the test.
func decode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
}
