package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/protocol"
	"github.com/switchboard-gw/switchboard/upstream"
)

// TestHalfTransportHandshakeAnsweredFirst: on Server-Sent Events and Long
// Polling the POST that carries the handshake is answered before the
// gateway acts on the handshake, so before the handshake's answer (an
// error too) reaches the client. The stock client awaits that POST before
// it awaits the handshake's answer; an answer that came first, here a
// connect the upstream rejects, was an unhandled promise rejection in the
// client, which ends a Node process. The upstream holds the connect event
// until the POST has its answer: a gateway that answered the POST only
// after the handshake never answers it, and the test fails.
func TestHalfTransportHandshakeAnsweredFirst(t *testing.T) {
	t.Parallel()
	g, rec := halfSetup(t)
	release := make(chan struct{})
	var released bool
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event == upstream.EventConnect {
			<-release
			if strings.HasPrefix(ev.User(), "blocked") {
				return http.StatusForbidden, map[string]string{"error": "blocked users may not connect"}
			}
		}
		return halfReply(ev)
	})
	type conn struct {
		h    *halfClient
		user string
	}
	var conns []conn
	for _, transport := range []string{"ServerSentEvents", "LongPolling"} {
		for _, user := range []string{"alice", "blocked-bob"} {
			conns = append(conns, conn{newHalfClient(t, g.url, "half", g.token("half", user), transport, "json", true), user})
		}
	}
	for _, c := range conns {
		if status, body := c.h.post(protocol.AppendHandshakeRequest(nil, "json", 1)); status != http.StatusOK {
			t.Fatalf("%s %s: handshake POST = %d %s, want 200", c.h.transport, c.user, status, body)
		}
	}
	// Every handshake POST has its answer while the upstream still holds
	// every connect.
	released = true
	close(release)
	for _, c := range conns {
		answer, err := protocol.ParseHandshakeResponse(c.h.frame())
		switch {
		case c.user == "alice" && err != nil:
			t.Errorf("%s %s: handshake answer: %v, want success", c.h.transport, c.user, err)
		case c.user == "alice":
			c.h.decode(answer)
			stillAlive(t, c.h, "1")
		case err == nil || !strings.Contains(err.Error(), "blocked users may not connect"):
			t.Errorf("%s %s: handshake answer error %v, want the upstream's reason", c.h.transport, c.user, err)
		}
	}
}
