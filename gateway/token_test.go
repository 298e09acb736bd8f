package gateway_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/upstream"
)

// eventLog records every webhook event the gateway hands over.
type eventLog struct {
	mu     sync.Mutex
	events []upstream.Event
}

func (l *eventLog) Wants(string, string, string) bool { return true }

func (l *eventLog) Call(_ context.Context, ev *upstream.Event) (*upstream.Reply, error) {
	l.add(ev)
	return nil, nil
}

func (l *eventLog) Notify(_ context.Context, ev *upstream.Event) { l.add(ev) }

func (l *eventLog) add(ev *upstream.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, *ev)
}

func (l *eventLog) find(name string) (upstream.Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.events {
		if ev.Event == name {
			return ev, true
		}
	}
	return upstream.Event{}, false
}

// dialWith opens a socket for token and sends handshake, returning the
// socket and the handshake answer (or the close error that came instead).
func (r *rig) dialWith(token, handshake string) (*websocket.Conn, string, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(r.srv.URL, "http")+"/?id="+token, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { ws.CloseNow() })
	if err := ws.Write(ctx, websocket.MessageText, []byte(handshake)); err != nil {
		return ws, "", err
	}
	_, b, err := ws.Read(ctx)
	return ws, string(b), err
}

// TestTokenAfterHandshake: once a connection's handshake is done, its
// token's entry is slimmed for the connection's life (settleToken) and
// must still do every job it has: refuse a second socket, keep what a
// stateful connection's resume checks, and be gone when the connection
// is. The claims, kept encoded, still reach every event, and the connect
// and connected events get them decoded.
func TestTokenAfterHandshake(t *testing.T) {
	t.Parallel()
	hooks := &eventLog{}
	r := newRigWith(t, gateway.Config{NodeID: "n1", PingInterval: 15 * time.Second, ClientTimeout: 30 * time.Second, Webhooks: hooks})
	id := gateway.Identity{UserID: "ann", Bearer: "the-access-token", Claims: map[string]any{"role": "admin", "n": 3.0}}

	t.Run("plain", func(t *testing.T) {
		_, tok, err := r.g.Negotiate("hub", id)
		if err != nil {
			t.Fatal(err)
		}
		ws, answer, err := r.dialWith(tok, `{"protocol":"json","version":1}`+"\x1e")
		if err != nil || answer != "{}\x1e" {
			t.Fatalf("handshake: %q, %v", answer, err)
		}
		if _, err := r.g.Check(tok); !errors.Is(err, gateway.ErrTokenInUse) {
			t.Errorf("check of a token in use: %v, want ErrTokenInUse", err)
		}
		if r.g.Resumable(tok) {
			t.Error("a version 1 connection counts as resumable")
		}
		_, _, err = r.dialWith(tok, `{"protocol":"json","version":1}`+"\x1e")
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation || !strings.Contains(err.Error(), "already in use") {
			t.Errorf("a second socket with the token: %v, want 1008 already in use", err)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":1,"target":"hello","arguments":[]}`+"\x1e")); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, "message event", func() bool { _, ok := hooks.find(upstream.EventMessage); return ok })
		ws.Close(websocket.StatusNormalClosure, "")
		testutil.Eventually(t, 10*time.Second, "disconnected event", func() bool { _, ok := hooks.find(upstream.EventDisconnected); return ok })
		testutil.Eventually(t, 10*time.Second, "token forgotten", func() bool {
			_, err := r.g.Check(tok)
			return errors.Is(err, gateway.ErrUnknownToken)
		})

		for _, name := range []string{upstream.EventConnect, upstream.EventConnected, upstream.EventMessage, upstream.EventDisconnected} {
			ev, ok := hooks.find(name)
			if !ok {
				t.Errorf("no %s event", name)
				continue
			}
			if got := string(ev.Client.Claims); got != `{"n":3,"role":"admin"}` {
				t.Errorf("%s event: client claims %s", name, got)
			}
			decoded := name == upstream.EventConnect || name == upstream.EventConnected
			if decoded != (ev.Claims["role"] == "admin" && ev.Claims["n"] == 3.0 && len(ev.Claims) == 2) {
				t.Errorf("%s event: claims %v", name, ev.Claims)
			}
		}
	})

	t.Run("stateful", func(t *testing.T) {
		_, tok, err := r.g.Negotiate("hub", id)
		if err != nil {
			t.Fatal(err)
		}
		if _, answer, err := r.dialWith(tok, `{"protocol":"json","version":2}`+"\x1e"); err != nil || answer != "{}\x1e" {
			t.Fatalf("handshake: %q, %v", answer, err)
		}
		// A resume presents the token again with the access token it was
		// negotiated with; both must still be known.
		n, err := r.g.Check(tok)
		if err != nil || n.Bearer != id.Bearer || n.UserID != id.UserID || n.Hub != "hub" || !r.g.Resumable(tok) {
			t.Errorf("check of a stateful connection's token: %+v, %v, resumable %v", n, err, r.g.Resumable(tok))
		}
	})
}
