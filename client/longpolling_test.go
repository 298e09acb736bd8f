package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/protocol"
)

// lpOptions are Options for Long Polling with a bearer token and a custom
// header.
func lpOptions(protocolName string) *Options {
	return &Options{
		Transport:   "longpolling",
		Protocol:    protocolName,
		AccessToken: func(context.Context) (string, error) { return "tok", nil },
		Header:      http.Header{"X-Custom": {"v1"}},
	}
}

// pollQuery matches a poll's query: the connect URL's plus the JS client's
// cache-buster, milliseconds since the epoch.
var pollQuery = regexp.MustCompile(`^hub=chat&id=ctok-1&_=\d{13}$`)

// connQuery is the connect URL's query, which POSTs and the DELETE use.
const connQuery = "hub=chat&id=ctok-1"

// checkHTTPHeaders checks what the JS client's fetch sends on every Long
// Polling request.
func checkHTTPHeaders(t *testing.T, r record) {
	t.Helper()
	if r.auth != "Bearer tok" || r.header.Get("X-Requested-With") != "XMLHttpRequest" || r.custom != "v1" {
		t.Errorf("%s %s: Authorization %q, X-Requested-With %q, X-Custom %q; want Bearer tok, XMLHttpRequest, v1",
			r.method, r.query, r.auth, r.header.Get("X-Requested-With"), r.custom)
	}
}

// TestLongPollingWire checks the requests against the JS client's: the
// first poll, the handshake and sends as POSTs of the protocol's
// Content-Type, polls with the cache-buster, all with the bearer token,
// X-Requested-With and the custom header; no ping, no server timeout (both
// set absurdly short here); an empty answer polled again; and Close as
// the JS client's stop(): the DELETE, then the Close POST.
func TestLongPollingWire(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"json", "messagepack"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			got := make(chan protocol.Message, 4)
			peerDone := make(chan struct{})
			h := newHub(t, hubConfig{peer: func(p *peer) {
				defer close(peerDone)
				if !p.handshakeAs(proto, handshakeOK) {
					return
				}
				m, err := p.next() // no ping first: the invocation
				if err != nil {
					t.Errorf("server: %v", err)
					return
				}
				got <- m
				reply, _ := p.codec.AppendCompletion(nil, m.InvocationID, []byte(`"ok"`), "")
				push, _ := p.codec.AppendInvocation(nil, "", "news", []byte(`[1]`))
				if !p.poll(http.StatusOK, "") || !p.sendFrame(reply) || !p.sendFrame(push) {
					return
				}
				msgs, _ := p.drain()
				for _, m := range msgs {
					got <- m
				}
			}})
			news := make(chan string, 1)
			o := lpOptions(proto)
			o.KeepAlive, o.ServerTimeout = time.Nanosecond, time.Nanosecond
			o.Handlers = map[string]func([]json.RawMessage){"news": func(a []json.RawMessage) { news <- string(a[0]) }}
			c := dial(t, h.url("/client/?hub=chat"), o)
			if c.pingTimer != nil || c.timeoutTimer != nil {
				t.Error("Long Polling connection has keep-alive timers")
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			if res, err := c.Invoke(ctx, "echo", 5); err != nil || string(res) != `"ok"` {
				t.Errorf("Invoke = %s, %v; want \"ok\"", res, err)
			}
			if m := recv(t, got); m.Type != protocol.TypeInvocation || m.Target != "echo" || m.InvocationID != "0" {
				t.Errorf("server got %+v, want the invocation", m)
			}
			if g := recv(t, news); g != "1" {
				t.Errorf("handler got %s, want 1", g)
			}
			if err := c.Close(); err != nil || c.Err() != nil {
				t.Errorf("Close = %v, Err = %v; want nil, nil", err, c.Err())
			}
			recv(t, peerDone)
			select {
			case m := <-got:
				t.Errorf("server got %+v after the invocation; want nothing (no ping, the Close after the DELETE)", m)
			default:
			}

			reqs := h.requests()
			if len(reqs) < 5 || reqs[0].path != "/client/negotiate" {
				t.Fatalf("requests = %v", reqs)
			}
			if r := reqs[1]; r.method != http.MethodGet || !pollQuery.MatchString(r.query) {
				t.Errorf("second request %s %s, want the first poll", r.method, r.query)
			}
			wantType := "text/plain;charset=UTF-8"
			if proto == "messagepack" {
				wantType = "application/octet-stream"
			}
			hs := reqs[2]
			if want := fmt.Sprintf("{\"protocol\":%q,\"version\":1}\x1e", proto); hs.method != http.MethodPost || hs.body != want ||
				hs.header.Get("Content-Type") != "text/plain;charset=UTF-8" {
				t.Errorf("third request %s %q (%s), want the handshake POSTed as text", hs.method, hs.body, hs.header.Get("Content-Type"))
			}
			var polls, posts []record
			var tail []string // what follows the DELETE, polls aside
			deleted := false
			for _, r := range reqs[1:] {
				checkHTTPHeaders(t, r)
				switch {
				case deleted && r.method != http.MethodGet:
					tail = append(tail, r.method+" "+r.body)
				case r.method == http.MethodGet:
					polls = append(polls, r)
					if !pollQuery.MatchString(r.query) {
						t.Errorf("poll query %q, want %s", r.query, pollQuery)
					}
				case r.method == http.MethodPost:
					posts = append(posts, r)
				case r.method == http.MethodDelete:
					deleted = true
					if r.query != connQuery {
						t.Errorf("DELETE query %q, want %q", r.query, connQuery)
					}
				}
			}
			// The first poll, the handshake answer, the empty answer, the
			// completion, the push, and the one Close aborted (unless it
			// had not been sent yet).
			if len(polls) < 5 {
				t.Errorf("%d polls, want at least 5", len(polls))
			}
			closeFrame := string(c.codec.AppendClose(nil, "", false))
			if want := []string{"POST " + closeFrame}; !deleted || fmt.Sprint(tail) != fmt.Sprint(want) {
				t.Errorf("DELETE sent: %v, then %q; want the DELETE, then only the Close POST", deleted, tail)
			}
			for _, r := range posts[1:] {
				if r.query != connQuery || r.header.Get("Content-Type") != wantType {
					t.Errorf("POST %s (%s), want %s (%s)", r.query, r.header.Get("Content-Type"), connQuery, wantType)
				}
				if strings.Contains(r.body, string(c.pingFrame)) {
					t.Errorf("POST %q carries a ping", r.body)
				}
			}
		})
	}
}

// TestLongPollingServerEnds: a poll answered 204 ends the connection
// without an error, a failed poll with one; either way the server ended
// it, so the client sends no DELETE, and a pending invocation fails.
func TestLongPollingServerEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answer  outFrame
		wantErr string // "" = Err() nil
	}{
		{"204", outFrame{status: http.StatusNoContent}, ""},
		{"500", outFrame{status: http.StatusInternalServerError, body: []byte("boom")}, "500 Internal Server Error: boom"},
		{"404", outFrame{status: http.StatusNotFound, body: []byte("no such connection")}, "404 Not Found: no such connection"},
		{"202", outFrame{status: http.StatusAccepted}, "202 Accepted"},
		{"dropped", outFrame{drop: true}, "poll"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, hubConfig{peer: func(p *peer) {
				if !p.handshake(handshakeOK) {
					return
				}
				p.next() // the invocation, left pending
				if err := p.half.put(p.ctx, tt.answer); err != nil {
					t.Errorf("server: %v", err)
				}
			}})
			c := dial(t, h.url("/client/?hub=chat"), lpOptions("json"))
			if _, err := c.Invoke(context.Background(), "slow"); !errors.Is(err, ErrClosed) {
				t.Errorf("Invoke = %v, want ErrClosed", err)
			}
			waitDone(t, c)
			err := c.Err()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Err() = %v, want %q", err, tt.wantErr)
			}
			if err := c.Send(context.Background(), "x"); !errors.Is(err, ErrClosed) {
				t.Errorf("Send after the end = %v, want ErrClosed", err)
			}
			for _, r := range h.requests() {
				if r.method == http.MethodDelete {
					t.Errorf("client sent a DELETE after the server ended the connection")
				}
			}
		})
	}
}

// TestLongPollingClientEnds: every end the client decides (a server Close,
// a protocol violation, a message over ReadLimit, a refused handshake)
// sends the DELETE, as the JS client's transport.stop() does; a final
// server Close is answered with the client's Close, POSTed after it.
func TestLongPollingClientEnds(t *testing.T) {
	t.Parallel()
	big := fmt.Sprintf("{\"type\":1,\"target\":\"x\",\"arguments\":[%q]}\x1e", strings.Repeat("a", 2048))
	tests := []struct {
		name      string
		handshake string // the answer; "" = handshakeOK
		frame     string // sent after the handshake
		check     func(err error) bool
		wantClose bool // the client's Close POSTed after the DELETE
	}{
		{"final close", "", "{\"type\":7,\"error\":\"kicked\"}\x1e",
			func(err error) bool { var ce *CloseError; return errors.As(err, &ce) && ce.Message == "kicked" }, true},
		{"close allowing reconnect", "", "{\"type\":7,\"allowReconnect\":true}\x1e",
			func(err error) bool { var ce *CloseError; return errors.As(err, &ce) && ce.AllowReconnect }, false},
		{"protocol violation", "", "{\"type\":\x1e", func(err error) bool { return errors.Is(err, ErrProtocol) }, false},
		{"over ReadLimit", "", big, func(err error) bool { return errors.Is(err, websocket.ErrMessageTooBig) }, false},
		{"handshake refused", "{\"error\":\"hub is full\"}\x1e", "", func(err error) bool { return errors.Is(err, ErrHandshake) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, hubConfig{peer: func(p *peer) {
				reply := tt.handshake
				if reply == "" {
					reply = handshakeOK
				}
				if !p.handshake(reply) || tt.frame != "" && !p.send(tt.frame) {
					return
				}
				p.drain()
			}})
			o := lpOptions("json")
			o.ReadLimit = 1024
			c, err := Dial(context.Background(), h.url("/client/?hub=chat"), o)
			if err == nil {
				waitDone(t, c)
				err = c.Err()
			}
			if !tt.check(err) {
				t.Errorf("error = %v", err)
			}
			var after []string
			deleted := false
			for _, r := range h.requests() {
				switch {
				case r.method == http.MethodDelete:
					deleted = true
					checkHTTPHeaders(t, r)
				case deleted && r.method == http.MethodPost:
					after = append(after, r.body)
				}
			}
			if !deleted {
				t.Error("no DELETE")
			}
			if got := len(after) == 1 && after[0] == "{\"type\":7}\x1e"; got != tt.wantClose {
				t.Errorf("POSTs after the DELETE: %q; want the client's Close: %v", after, tt.wantClose)
			}
		})
	}
}

// TestLongPollingPollTimeout: a poll that reaches the poll timeout is sent
// again, and the connection goes on. The server is a RoundTripper here, so
// that no answer can be lost to a poll the client gave up on.
func TestLongPollingPollTimeout(t *testing.T) {
	t.Parallel()
	var polls atomic.Int32
	rt := roundTripper(func(req *http.Request) (*http.Response, error) {
		switch {
		case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/negotiate"):
			return response(http.StatusOK, `{"negotiateVersion":1,"connectionId":"c","connectionToken":"t",`+
				`"availableTransports":[{"transport":"LongPolling","transferFormats":["Text"]}]}`), nil
		case req.Method != http.MethodGet:
			return response(http.StatusOK, ""), nil // the handshake, the DELETE, the Close
		}
		switch n := polls.Add(1); {
		case n == 1:
			return response(http.StatusOK, ""), nil // the first poll, answered at once
		case n == 2:
			return response(http.StatusOK, handshakeOK), nil
		case n == 6:
			return response(http.StatusOK, "{\"type\":1,\"target\":\"news\",\"arguments\":[]}\x1e"), nil
		}
		<-req.Context().Done() // the poll timeout, or Close
		return nil, req.Context().Err()
	})
	news := make(chan struct{}, 1)
	c := dial(t, "http://gw.test/client/?hub=chat", &Options{
		Transport:   "longpolling",
		HTTPClient:  &http.Client{Transport: rt},
		pollTimeout: time.Millisecond,
		Handlers:    map[string]func([]json.RawMessage){"news": func([]json.RawMessage) { news <- struct{}{} }},
	})
	recv(t, news) // after three polls timed out
	if c.Err() != nil {
		t.Errorf("Err() = %v after poll timeouts, want nil", c.Err())
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func response(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

// TestLongPollingBatchesSends: frames written while a POST is out go
// together in the next POST, as the JS client's send queue does, and every
// writer learns the outcome of the POST that carried its frame.
func TestLongPollingBatchesSends(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	frames := make(chan string, 4)
	h := newHub(t, hubConfig{
		postHook: func(body []byte) {
			if bytes.Contains(body, []byte(`"first"`)) {
				<-release // keep the first send's POST out
			}
		},
		peer: func(p *peer) {
			if !p.handshake(handshakeOK) {
				return
			}
			for {
				b, err := p.frame()
				if err != nil {
					return
				}
				frames <- string(b)
			}
		},
	})
	t.Cleanup(releaseAll) // before the server's cleanup, which waits for the POST
	c := dial(t, h.url("/client/?hub=chat"), lpOptions("json"))
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, target := range []string{"first", "second", "third"} {
		wg.Go(func() {
			if err := c.Send(ctx, target); err != nil {
				t.Errorf("Send(%s): %v", target, err)
			}
		})
		if target == "first" {
			// Wait until the first POST is out, then queue the others.
			waitUntil(t, func() bool { return countPosts(h) == 2 })
		}
	}
	s := &c.tr.(*lpTransport).send
	waitUntil(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.next != nil && bytes.Count(s.next.body, []byte{0x1e}) == 2
	})
	releaseAll()
	wg.Wait()
	if f := recv(t, frames); f != "{\"type\":1,\"target\":\"first\",\"arguments\":[]}\x1e" {
		t.Errorf("first POST %q, want the first send alone", f)
	}
	f := recv(t, frames)
	if !strings.Contains(f, `"second"`) || !strings.Contains(f, `"third"`) || strings.Count(f, "\x1e") != 2 {
		t.Errorf("second POST %q, want the second and third sends together", f)
	}
}

func countPosts(h *hub) int {
	n := 0
	for _, r := range h.requests() {
		if r.method == http.MethodPost && r.query == connQuery {
			n++
		}
	}
	return n
}

// waitUntil polls cond until it holds, failing the test after waitLimit.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", waitLimit)
		}
		time.Sleep(time.Millisecond)
	}
}
