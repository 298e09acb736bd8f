package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/protocol"
	"github.com/switchboard-gw/switchboard/upstream"
)

// stillAlive checks that h still works: an invocation gets its result.
func stillAlive(t *testing.T, h *halfClient, id string) {
	t.Helper()
	res, _ := h.invoke(id, "echo", `["still here"]`)
	if string(res.Result) != `"still here"` {
		t.Errorf("%s connection after the bad request: echo = %s %q", h.transport, res.Result, res.Error)
	}
}

// closedWith waits for the Close message the gateway sends before it ends
// h's connection and returns its error text.
func closedWith(t *testing.T, h *halfClient) string {
	t.Helper()
	for {
		m := h.next()
		if m.Type == protocol.TypeClose {
			return m.Error
		}
	}
}

// TestHalfTransportBadInput: bad requests on the SSE and Long Polling
// paths get a status and a JSON error that says what is wrong; those that
// concern only the request leave the connection (and others) working,
// those that break the hub protocol close it as they would a WebSocket.
func TestHalfTransportBadInput(t *testing.T) {
	t.Parallel()
	g, rec := halfSetup(t)
	g.admin(http.MethodPut, "/admin/hubs/half", map[string]any{"maxMessageSize": 1024}, http.StatusOK)
	g.createHub("other", false)
	alice, bob := g.token("half", "alice"), g.token("half", "bob")

	t.Run("POST to an SSE connection with another user's token", func(t *testing.T) {
		t.Parallel()
		h := newHalfClient(t, g.url, "half", alice, "ServerSentEvents", "json", false)
		h.handshake()
		msg, _ := protocol.JSON.AppendInvocation(nil, "9", "echo", json.RawMessage(`["from bob"]`))
		h.bearer = bob
		status, body := h.post(msg)
		if status != http.StatusForbidden || !strings.Contains(errorOf(body), "another user") {
			t.Errorf("POST with bob's token = %d %s, want 403 naming another user", status, body)
		}
		h.bearer = g.token("other", "alice")
		status, body = h.post(msg)
		if status != http.StatusForbidden || !strings.Contains(errorOf(body), `not for hub "half"`) {
			t.Errorf("POST with a token for another hub = %d %s, want 403 naming the hub", status, body)
		}
		// The same token signed with a key this gateway does not hold says
		// nothing about its bearer: 401, not a 403 naming the hub.
		forged, err := negotiate.IssueToken(negotiate.NewAccessKey(), negotiate.TokenOptions{
			Audience: negotiate.ClientURL(g.url, "other"), UserID: "alice", Lifetime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		h.bearer = forged
		if status, body = h.post(msg); status != http.StatusUnauthorized || strings.Contains(errorOf(body), "not for hub") {
			t.Errorf("POST with a forged token for another hub = %d %s, want 401", status, body)
		}
		h.bearer = "not.a.jwt"
		if status, body = h.post(msg); status != http.StatusUnauthorized {
			t.Errorf("POST with a broken token = %d %s, want 401", status, body)
		}
		// A fresh token of the same user is as good as the first.
		h.bearer = g.token("half", "alice")
		stillAlive(t, h, "10")
		for _, e := range rec.all() {
			if e.Event.Event == upstream.EventMessage && strings.Contains(string(e.Event.Arguments), "from bob") {
				t.Errorf("bob's message reached the upstream: %s", e.Body)
			}
		}
	})

	t.Run("poll for a closed connection", func(t *testing.T) {
		t.Parallel()
		h := newHalfClient(t, g.url, "half", alice, "LongPolling", "json", true)
		h.handshake()
		if status, body, _ := h.request(context.Background(), http.MethodDelete, g.url, nil); status != http.StatusAccepted {
			t.Fatalf("DELETE = %d %s", status, body)
		}
		h.endedWith()
		rec.waitEvent(isEvent(upstream.EventDisconnected, h.connID))
		testutil.Eventually(t, waitFor, "a poll for the closed connection to get 404", func() bool {
			status, body := h.get(context.Background(), g.url)
			if status != http.StatusNoContent && status != http.StatusNotFound {
				t.Errorf("poll while the connection ends = %d %s, want 204 or 404", status, body)
			}
			return status == http.StatusNotFound && strings.Contains(errorOf(string(body)), "unknown or closed connection")
		})
		if status, body, _ := h.request(context.Background(), http.MethodDelete, g.url, nil); status != http.StatusNotFound {
			t.Errorf("a second DELETE = %d %s, want 404", status, body)
		}
	})

	t.Run("two concurrent polls", func(t *testing.T) {
		t.Parallel()
		h := newHalfClient(t, g.url, "half", alice, "LongPolling", "json", false)
		type answer struct {
			status int
			body   []byte
		}
		answers := make(chan answer, 2)
		ctx, cancel := context.WithTimeout(context.Background(), requestWait)
		defer cancel()
		poll := func() {
			status, body := h.get(ctx, g.url)
			answers <- answer{status, body}
		}
		h.wg.Go(poll)
		h.wg.Go(poll)
		// The older poll gives way to the newer: 204 proves both arrived.
		first := <-answers
		if first.status != http.StatusNoContent {
			t.Fatalf("of two polls, the first answer was %d %q, want 204 for the older", first.status, first.body)
		}
		if status, body := h.postAs(protocol.AppendHandshakeRequest(nil, "json", 1), "text/plain"); status != http.StatusOK {
			t.Fatalf("handshake POST = %d %s", status, body)
		}
		second := <-answers
		if second.status != http.StatusOK || !bytes.HasPrefix(second.body, []byte("{}\x1e")) {
			t.Errorf("the newer poll got %d %q, want the handshake answer", second.status, second.body)
		}
	})

	t.Run("oversized POST body", func(t *testing.T) {
		t.Parallel()
		h := newHalfClient(t, g.url, "half", alice, "LongPolling", "json", true)
		h.handshake()
		msg, _ := protocol.JSON.AppendInvocation(nil, "1", "echo", json.RawMessage(`["`+strings.Repeat("x", 2000)+`"]`))
		status, body := h.post(msg)
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(errorOf(body), "message size limit (1024 bytes)") {
			t.Errorf("oversized POST = %d %s, want 413 naming the limit", status, body)
		}
		stillAlive(t, h, "2")
	})

	for _, tc := range []struct {
		name, transport, contentType, body, want string
	}{
		{"POST with garbage", "LongPolling", "text/plain", "garbage\x1e", "invalid message"},
		{"POST with garbage to SSE", "ServerSentEvents", "text/plain", "{\"type\":1,\x1e", "invalid message"},
		{"binary POST on a JSON connection", "LongPolling", "application/octet-stream", "\x01\x02", "binary frames are not supported by the json protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bystander := newHalfClient(t, g.url, "half", bob, tc.transport, "json", true)
			bystander.handshake()
			h := newHalfClient(t, g.url, "half", alice, tc.transport, "json", true)
			h.handshake()
			status, body := h.postAs([]byte(tc.body), tc.contentType)
			if status != http.StatusBadRequest || !strings.Contains(errorOf(body), tc.want) || !strings.Contains(errorOf(body), "the connection is closed") {
				t.Errorf("POST = %d %s, want 400 saying %q and that the connection is closed", status, body, tc.want)
			}
			if reason := closedWith(t, h); !strings.Contains(reason, tc.want) {
				t.Errorf("Close message %q, want it to say %q", reason, tc.want)
			}
			ev := rec.waitEvent(isEvent(upstream.EventDisconnected, h.connID))
			if !strings.Contains(ev.Event.Reason, tc.want) {
				t.Errorf("disconnected reason %q, want %q", ev.Event.Reason, tc.want)
			}
			stillAlive(t, bystander, "1")
		})
	}

	t.Run("unknown tokens", func(t *testing.T) {
		t.Parallel()
		h := &halfClient{t: t, hub: "half", bearer: alice, codec: protocol.JSON}
		for _, token := range []string{"nope", g.node.Gateway().NodeID() + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "othernode.AAAA"} {
			h.token = token
			for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
				var body []byte
				if method == http.MethodPost {
					body = []byte(`{"type":6}` + "\x1e")
				}
				status, got, _ := h.request(context.Background(), method, g.url, body)
				if status != http.StatusNotFound || errorOf(string(got)) == "" {
					t.Errorf("%s with token %q = %d %s, want 404 with an error", method, token, status, got)
				}
			}
		}
		h.token = strings.Repeat("a", 300)
		if status, got, _ := h.request(context.Background(), http.MethodGet, g.url, nil); status != http.StatusBadRequest {
			t.Errorf("GET with a 300-byte id = %d %s, want 400", status, got)
		}
	})

	t.Run("messagepack over SSE", func(t *testing.T) {
		t.Parallel()
		h := newHalfClient(t, g.url, "half", alice, "ServerSentEvents", "json", false)
		status, body := h.postAs(protocol.AppendHandshakeRequest(nil, "messagepack", 1), "text/plain")
		if status != http.StatusBadRequest || !strings.Contains(errorOf(body), "Server-Sent Events cannot carry") {
			t.Errorf("messagepack handshake over SSE = %d %s, want 400", status, body)
		}
		if s := h.endedWith(); s != 0 {
			t.Errorf("stream ended with %d", s)
		}
	})

	t.Run("stateful reconnect over Long Polling", func(t *testing.T) {
		t.Parallel()
		h := newHalfClient(t, g.url, "half", alice, "LongPolling", "json", true)
		status, body := h.postAs(protocol.AppendHandshakeRequest(nil, "json", 2), "text/plain")
		if status != http.StatusBadRequest || !strings.Contains(errorOf(body), "only WebSockets serve") {
			t.Errorf("handshake version 2 over Long Polling = %d %s, want 400", status, body)
		}
		// A poll waiting then gets 204; one that comes after the end 404.
		if s := h.endedWith(); s != http.StatusNoContent && s != http.StatusNotFound {
			t.Errorf("the poll ended with %d, want 204 or 404", s)
		}
	})

	t.Run("DELETE of an SSE connection", func(t *testing.T) {
		t.Parallel()
		h := newHalfClient(t, g.url, "half", alice, "ServerSentEvents", "json", false)
		h.handshake()
		status, body, _ := h.request(context.Background(), http.MethodDelete, g.url, nil)
		if status != http.StatusBadRequest || !strings.Contains(errorOf(string(body)), "close its event stream") {
			t.Errorf("DELETE of an SSE connection = %d %s, want 400", status, body)
		}
		stillAlive(t, h, "1")
	})

	t.Run("second event stream and polls of an SSE connection", func(t *testing.T) {
		t.Parallel()
		h := newHalfClient(t, g.url, "half", alice, "ServerSentEvents", "json", false)
		h.handshake()
		ctx, cancel := context.WithTimeout(context.Background(), requestWait)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url(g.url)+"&access_token="+alice, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("second event stream = %d, want 409", resp.StatusCode)
		}
		if status, body := h.get(ctx, g.url); status != http.StatusBadRequest {
			t.Errorf("poll of an SSE connection = %d %s, want 400", status, body)
		}
		stillAlive(t, h, "1")
	})

	t.Run("no token where the hub needs one", func(t *testing.T) {
		t.Parallel()
		h := newHalfClient(t, g.url, "half", alice, "LongPolling", "json", true)
		h.handshake()
		// Not through h, whose polls read its token meanwhile.
		status, body := do(t, http.MethodPost, h.url(g.url), "", `{"type":6}`+"\x1e")
		if status != http.StatusUnauthorized || !strings.Contains(errorOf(string(body)), "requires an access token") {
			t.Errorf("POST without a token = %d %s, want 401", status, body)
		}
		stillAlive(t, h, "1")
	})
}
