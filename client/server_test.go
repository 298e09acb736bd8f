package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/protocol"
)

// This file is an in-test SignalR server that plays the remote peer for the
// client's unit tests: negotiate endpoints and a WebSocket endpoint whose
// behaviour each test scripts.

// waitLimit bounds every wait in these tests; reaching it is a failure.
const waitLimit = 10 * time.Second

// hubConfig scripts a test server.
type hubConfig struct {
	// negotiate answers POSTs by path; "/client/negotiate" defaults to
	// negotiateOK.
	negotiate map[string]http.HandlerFunc
	// upgradeStatus, when set, refuses WebSocket upgrades with it.
	upgradeStatus int
	// peer plays the accepted socket; the socket is dropped when it
	// returns. Nil: answer the handshake, then read until the client leaves.
	peer func(p *peer)
}

// record is one HTTP request the server saw.
type record struct {
	method, path, query, auth, body, upgrade string
	custom                                   string // the X-Custom header
}

type hub struct {
	t   *testing.T
	cfg hubConfig
	srv *httptest.Server
	wg  sync.WaitGroup // peers still running

	mu   sync.Mutex // guards reqs
	reqs []record
}

func newHub(t *testing.T, cfg hubConfig) *hub {
	t.Helper()
	h := &hub{t: t, cfg: cfg}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serveHTTP))
	t.Cleanup(func() {
		h.srv.Close()
		done := make(chan struct{})
		go func() { h.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitLimit):
			t.Error("test server peer did not finish")
		}
	})
	return h
}

// url is the server's base URL plus path.
func (h *hub) url(path string) string { return h.srv.URL + path }

// requests returns a copy of the recorded requests.
func (h *hub) requests() []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), h.reqs...)
}

func (h *hub) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.reqs = append(h.reqs, record{
		method: r.Method, path: r.URL.Path, query: r.URL.RawQuery,
		auth: r.Header.Get("Authorization"), body: string(body),
		upgrade: r.Header.Get("Upgrade"), custom: r.Header.Get("X-Custom"),
	})
	h.mu.Unlock()

	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		h.serveSocket(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "unexpected method", http.StatusMethodNotAllowed)
		return
	}
	if fn := h.cfg.negotiate[r.URL.Path]; fn != nil {
		fn(w, r)
		return
	}
	if r.URL.Path == "/client/negotiate" {
		negotiateOK(w, r)
		return
	}
	http.NotFound(w, r)
}

func (h *hub) serveSocket(w http.ResponseWriter, r *http.Request) {
	if h.cfg.upgradeStatus != 0 {
		http.Error(w, "no such connection", h.cfg.upgradeStatus)
		return
	}
	// Add before Accept hijacks the connection: until then srv.Close in the
	// cleanup waits for this handler, which orders Add before Wait.
	h.wg.Add(1)
	defer h.wg.Done()
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		h.t.Errorf("accept: %v", err)
		return
	}
	defer ws.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	p := &peer{t: h.t, ws: ws, ctx: ctx}
	if h.cfg.peer == nil {
		if p.handshake(handshakeOK) {
			p.drain()
		}
		return
	}
	h.cfg.peer(p)
}

const handshakeOK = "{}\x1e"

// negotiateOK is a gateway's normal negotiate answer.
func negotiateOK(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"negotiateVersion":1,"connectionId":"cid-1","connectionToken":"ctok-1",`+
		`"availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}`)
}

// answer returns a handler that replies with status and body.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// peer is the server side of one socket. Its methods report problems with
// t.Error (they run off the test goroutine) and return false.
type peer struct {
	t       *testing.T
	ws      *websocket.Conn
	ctx     context.Context
	pending []protocol.Message // messages of the last frame not yet returned
}

// handshake reads the client's handshake, checks it is exactly the JS
// client's, and writes reply (which may carry more messages).
func (p *peer) handshake(reply string) bool {
	typ, b, err := p.ws.Read(p.ctx)
	if err != nil {
		p.t.Errorf("server: read handshake: %v", err)
		return false
	}
	if want := "{\"protocol\":\"json\",\"version\":1}\x1e"; typ != websocket.MessageText || string(b) != want {
		p.t.Errorf("server: handshake = %v %q, want text %q", typ, b, want)
		return false
	}
	return p.send(reply)
}

// send writes one text frame.
func (p *peer) send(frame string) bool {
	if err := p.ws.Write(p.ctx, websocket.MessageText, []byte(frame)); err != nil {
		p.t.Errorf("server: write: %v", err)
		return false
	}
	return true
}

// frame reads one raw frame; errors are returned, not reported.
func (p *peer) frame() ([]byte, error) {
	typ, b, err := p.ws.Read(p.ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		return nil, fmt.Errorf("client sent a %v frame", typ)
	}
	return b, nil
}

// next returns the client's next hub message, pings included.
func (p *peer) next() (protocol.Message, error) {
	for len(p.pending) == 0 {
		b, err := p.frame()
		if err != nil {
			return protocol.Message{}, err
		}
		err = protocol.SplitMessages(b, func(msg []byte) error {
			m, err := protocol.ParseMessage(msg)
			p.pending = append(p.pending, m)
			return err
		})
		if err != nil {
			return protocol.Message{}, fmt.Errorf("client sent %q: %w", b, err)
		}
	}
	m := p.pending[0]
	p.pending = p.pending[1:]
	return m, nil
}

// nextNonPing returns the client's next message that is not a Ping.
func (p *peer) nextNonPing() (protocol.Message, error) {
	for {
		m, err := p.next()
		if err != nil || m.Type != protocol.TypePing {
			return m, err
		}
	}
}

// drain reads until the client closes the socket and returns every
// message it sent and the close status (-1 when the socket just broke).
func (p *peer) drain() ([]protocol.Message, websocket.StatusCode) {
	var got []protocol.Message
	for {
		m, err := p.next()
		if err != nil {
			return got, websocket.CloseStatus(err)
		}
		got = append(got, m)
	}
}

// recv waits for a value from ch, failing the test after waitLimit.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for the test server", waitLimit)
		panic("unreachable")
	}
}

// waitDone waits for c to end, failing the test after waitLimit.
func waitDone(t *testing.T, c *Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(waitLimit):
		t.Fatalf("connection did not end within %v", waitLimit)
	}
}

// dial connects to h with opts and closes the connection at cleanup.
func dial(t *testing.T, url string, opts *Options) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial(%s): %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hasMessage reports whether msgs contain a message of type typ.
func hasMessage(msgs []protocol.Message, typ int) bool {
	for _, m := range msgs {
		if m.Type == typ {
			return true
		}
	}
	return false
}
