package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/upstream"
)

// TestClusterConfigChange adds an upstream through n1's admin API and polls
// until n2 uses it for its next event.
func TestClusterConfigChange(t *testing.T) {
	c := startCluster(t, 3)
	n1, n2 := c.node("n1"), c.node("n2")
	c.admin(n1, http.MethodPost, "/admin/hubs", map[string]any{"name": "cfg"}, http.StatusCreated)

	// The hub made on n1 serves n2's clients once n2 has seen it.
	var conn *client.Conn
	testutil.Eventually(t, 5*time.Second, "n2 knows hub cfg created on n1", func() bool {
		cl, err := c.dial(n2, "cfg", "ann", nil)
		if err == nil {
			conn = cl
		}
		return err == nil
	})
	// No upstream takes messages yet: the invocation fails, saying so.
	if _, err := invoke(conn, "ping"); err == nil || !strings.Contains(err.Error(), "no upstream") {
		t.Fatalf("invoke before any upstream: %v; want a no-upstream error", err)
	}

	rec := newRecorder(t)
	rec.setReply(func(ev *upstream.Event) (int, any) {
		return http.StatusOK, map[string]any{"result": "pong from " + ev.Target}
	})
	secret := c.addUpstream(n1, "cfg", "late", rec.URL()+"/{event}", "message:*")
	rec.mu.Lock()
	rec.secret = secret
	rec.mu.Unlock()
	added := time.Now()
	var res json.RawMessage
	testutil.Eventually(t, 5*time.Second, "n2 sends its next message event to the upstream added on n1", func() bool {
		r, err := invoke(conn, "ping")
		res = r
		return err == nil
	})
	t.Logf("n2 used the upstream added on n1 after %s", time.Since(added).Round(time.Millisecond))
	if got := str(t, res); got != "pong from ping" {
		t.Errorf("result %q, want the new upstream's %q", got, "pong from ping")
	}
	if e := rec.waitEvent(isEvent("message", "")); !strings.HasPrefix(e.Event.ConnectionID, "n2.") {
		t.Errorf("the upstream got a message from %s, want a connection of n2", e.Event.ConnectionID)
	}
}

// TestClusterNATSRestart stops NATS while a client of n1 makes a numbered
// sequence of broadcasts (through its upstream), then starts NATS again on
// the same port and store: the nodes say degraded, then ready again by
// themselves, n1's other client gets every broadcast in order, and
// cross-node delivery resumes.
func TestClusterNATSRestart(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	n1, n2 := c.node("n1"), c.node("n2")
	c.admin(n1, http.MethodPost, "/admin/hubs", map[string]any{"name": "live"}, http.StatusCreated)
	rec := newRecorder(t)
	rec.setReply(func(ev *upstream.Event) (int, any) {
		var args []int
		if err := json.Unmarshal(ev.Arguments, &args); err != nil || len(args) != 1 {
			return http.StatusBadRequest, map[string]string{"error": "want [n]"}
		}
		return http.StatusOK, upstream.NewReply().Broadcast("seq", args[0])
	})
	secret := c.addUpstream(n1, "live", "seq", rec.URL()+"/{event}", "message:*")
	rec.mu.Lock()
	rec.secret = secret
	rec.mu.Unlock()

	local, remote := &seqInbox{}, &seqInbox{}
	var sender *client.Conn
	testutil.Eventually(t, 5*time.Second, "n2 knows hub live", func() bool {
		_, err := c.dial(n2, "live", "remote", map[string]func([]json.RawMessage){"seq": remote.add(t)})
		return err == nil
	})
	c.mustDial(n1, "live", "local", map[string]func([]json.RawMessage){"seq": local.add(t)})
	sender = c.mustDial(n1, "live", "sender", nil)

	next := 0
	send := func() {
		t.Helper()
		if _, err := invoke(sender, "seq", next); err != nil {
			t.Fatalf("broadcast %d from n1: %v", next, err)
		}
		next++
	}
	for range 10 {
		send()
	}
	testutil.Eventually(t, waitFor, "n2's client gets n1's first broadcasts", func() bool { return remote.len() >= 10 })

	c.nats.stop()
	testutil.Eventually(t, waitFor, "every node says degraded", func() bool {
		send()
		for _, p := range c.nodes {
			if p.readyz() != "degraded" {
				return false
			}
		}
		return true
	})
	for range 20 {
		send()
	}
	outage := next
	c.nats.start()
	testutil.Eventually(t, 30*time.Second, "every node says ready again", func() bool {
		send()
		for _, p := range c.nodes {
			if p.readyz() != "ready" {
				return false
			}
		}
		return true
	})
	after := next
	testutil.Eventually(t, waitFor, "n2's client gets a broadcast made after NATS came back", func() bool {
		send()
		return remote.max() >= after
	})
	t.Logf("sent %d broadcasts (%d before every node was ready again); n2's client got %d of them", next, after, remote.len())
	testutil.Eventually(t, waitFor, "n1's client gets every broadcast", func() bool { return local.len() >= next })
	if got := local.all(); !isSequence(got, next) {
		t.Errorf("n1's client got %v, want 0…%d once each in order (NATS stopped after #%d)", got, next-1, outage)
	}
}

// TestClusterRESTDuringNATSOutage: a node's REST API and client endpoint
// keep serving its hubs while NATS is down.
func TestClusterRESTDuringNATSOutage(t *testing.T) {
	c := startCluster(t, 2)
	n1 := c.node("n1")
	c.admin(n1, http.MethodPost, "/admin/hubs", map[string]any{"name": "live"}, http.StatusCreated)
	in := newInbox()
	c.mustDial(n1, "live", "local", map[string]func([]json.RawMessage){"seq": in.handler()})
	c.nats.stop()
	testutil.Eventually(t, waitFor, "n1 says degraded", func() bool { return n1.readyz() == "degraded" })
	if status, body := c.rest(n1, http.MethodPost, "/api/hubs/live/:send", map[string]any{"target": "seq", "arguments": []int{1}}); status != http.StatusAccepted {
		t.Fatalf("REST broadcast on n1 during the outage: status %d: %s; want 202", status, body)
	}
	in.next(t)
	if _, err := c.dial(n1, "live", "late", nil); err != nil {
		t.Errorf("a new client of n1 during the outage: %v", err)
	}
}

// TestClusterBadInput: a node that cannot reach NATS at start fails fast
// with a clear message; malformed bus messages are dropped, logged and
// crash nothing.
func TestClusterBadInput(t *testing.T) {
	t.Run("start", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			want string
		}{
			{name: "unreachable NATS", args: []string{"--nats", "nats://127.0.0.1:" + freePort(t)}, want: "cannot reach NATS"},
			{name: "both NATS modes", args: []string{"--nats", "nats://127.0.0.1:1", "--nats-embedded"}, want: "exclude each other"},
			{name: "route without embedded", args: []string{"--nats-route", "nats-route://127.0.0.1:1"}, want: "add --nats-embedded"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"serve", "--listen", "127.0.0.1:0", "--db", t.TempDir() + "/n.db"}, tc.args...)
				p := startProc(t, "serve", args...)
				err := p.wait(15 * time.Second)
				if err == nil {
					t.Fatalf("exited 0; want a failure")
				}
				if out := p.out.String(); !strings.Contains(out, tc.want) {
					t.Errorf("output %q does not say %q", out, tc.want)
				}
			})
		}
	})

	t.Run("bus messages", func(t *testing.T) {
		c := startCluster(t, 3)
		n1, n2 := c.node("n1"), c.node("n2")
		c.admin(n1, http.MethodPost, "/admin/hubs", map[string]any{"name": "bad"}, http.StatusCreated)
		in := newInbox()
		var cl *client.Conn
		testutil.Eventually(t, 5*time.Second, "n1 serves hub bad", func() bool {
			conn, err := c.dial(n1, "bad", "target", map[string]func([]json.RawMessage){"ok": in.handler()})
			if err == nil {
				cl = conn
			}
			return err == nil
		})

		nc, err := nats.Connect(c.nats.url())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		tok := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		subjects := []string{"sb.n." + tok("n1"), "sb.q", "sb.h." + tok("bad"), "sb.u." + tok("bad") + "." + tok("target"), "sb.hb." + tok("evil")}
		payloads := []string{
			"", "garbage", "{", `[]`, `null`, `{"v":2,"kind":"op","node":"n9"}`, `{"v":1,"kind":"op","node":"n9"}`,
			`{"v":1,"kind":"op","node":"n9","op":{}}`, `{"v":1,"kind":"op","node":"n9","op":{"hub":"bad","close":{"scope":"nope"}}}`,
			`{"v":1,"kind":"query","node":"n9","query":{"hub":"bad","kind":"nope"}}`, `{"v":1,"kind":"reply","node":"n9"}`,
			`{"v":1,"kind":"zzz","node":"n9"}`, `{"v":1,"kind":"hb","node":"","conns":-5}`, strings.Repeat("x", 64*1024),
		}
		for _, subj := range subjects {
			for _, p := range payloads {
				if err := nc.Publish(subj, []byte(p)); err != nil {
					t.Fatal(err)
				}
				// As a request too: a node that answers must not crash either.
				if _, err := nc.Request(subj, []byte(p), 50*time.Millisecond); err != nil && err != nats.ErrTimeout && err != nats.ErrNoResponders {
					t.Logf("request on %s: %v", subj, err)
				}
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}

		// n1 still works, as part of the cluster: n2's broadcast and a
		// REST send to the connection made on n2 reach n1's client.
		for i, path := range []string{"/api/hubs/bad/:send", "/api/hubs/bad/connections/" + cl.ConnectionID() + "/:send"} {
			if status, body := c.rest(n2, http.MethodPost, path, map[string]any{"target": "ok", "arguments": []int{i}}); status != http.StatusAccepted {
				t.Fatalf("POST %s on n2: status %d: %s", path, status, body)
			}
			if got := in.next(t); len(got) != 1 || string(got[0]) != fmt.Sprint(i) {
				t.Errorf("n1's client got %s, want [%d]", got, i)
			}
		}
		for _, p := range c.nodes {
			if !p.running() || p.readyz() != "ready" {
				t.Errorf("%s: running %t, /readyz %q after the garbage; want running and ready", p.id, p.running(), p.readyz())
			}
		}
		testutil.Eventually(t, 5*time.Second, "n1 logs the dropped messages", func() bool {
			return strings.Contains(n1.out.String(), "cluster: message drop")
		})
	})
}

// seqInbox collects the integers of "seq" invocations.
type seqInbox struct {
	mu  sync.Mutex // guards got
	got []int
}

func (s *seqInbox) add(t *testing.T) func([]json.RawMessage) {
	return func(args []json.RawMessage) {
		var n int
		if len(args) != 1 || json.Unmarshal(args[0], &n) != nil {
			t.Errorf("seq invocation %s, want one integer", args)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, n)
		s.mu.Unlock()
	}
}

func (s *seqInbox) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *seqInbox) max() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := -1
	for _, n := range s.got {
		m = max(m, n)
	}
	return m
}

func (s *seqInbox) all() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.got...)
}

func isSequence(got []int, n int) bool {
	if len(got) != n {
		return false
	}
	for i, v := range got {
		if v != i {
			return false
		}
	}
	return true
}

// invoke calls target on conn, bounded.
func invoke(conn *client.Conn, target string, args ...any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	return conn.Invoke(ctx, target, args...)
}
