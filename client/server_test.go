package client

import (
	"context"
	"errors"
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
// client's unit tests: negotiate endpoints and the three transports
// (WebSocket, Server-Sent Events, Long Polling), whose connections a peer
// function scripts through one API whatever the transport.

// waitLimit bounds every wait in these tests; reaching it is a failure.
const waitLimit = 10 * time.Second

// hubConfig scripts a test server.
type hubConfig struct {
	// negotiate answers POSTs by path; "/client/negotiate" defaults to
	// h.negotiateOK.
	negotiate map[string]http.HandlerFunc
	// offer is the availableTransports of the default negotiate answer;
	// empty means all three, in the gateway's order.
	offer string
	// refuse answers the request that starts a transport (the upgrade, the
	// event stream, the first poll) with a status, by negotiate name.
	refuse map[string]int
	// streamType is the event stream's Content-Type; empty means
	// text/event-stream.
	streamType string
	// postHook, when set, runs before a POST to a connection is taken in
	// (it may block, keeping the POST in flight).
	postHook func(body []byte)
	// peer plays one connection; it ends when peer returns (a WebSocket is
	// dropped, polls are answered 204, the event stream ends). Nil: answer
	// the handshake, then read until the client leaves.
	peer func(p *peer)
}

const allTransports = `[{"transport":"WebSockets","transferFormats":["Text","Binary"]},` +
	`{"transport":"ServerSentEvents","transferFormats":["Text"]},` +
	`{"transport":"LongPolling","transferFormats":["Text","Binary"]}]`

// record is one HTTP request the server saw.
type record struct {
	method, path, query, auth, body, upgrade string
	custom                                   string      // the X-Custom header
	header                                   http.Header // all of them
}

// String shows what the request-list tests compare.
func (r record) String() string {
	return fmt.Sprintf("{%s %s %s %s %s}", r.method, r.path, r.query, r.auth, r.upgrade)
}

type hub struct {
	t       *testing.T
	cfg     hubConfig
	srv     *httptest.Server
	ctx     context.Context // ends at cleanup: bounds every peer
	wg      sync.WaitGroup  // peers still running
	closing chan struct{}   // closed at cleanup: long polls give up

	mu     sync.Mutex // guards the fields below
	reqs   []record
	tokens int                  // connection tokens handed out
	halves map[string]*halfConn // Long Polling and SSE connections by token
}

func newHub(t *testing.T, cfg hubConfig) *hub {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	h := &hub{t: t, cfg: cfg, ctx: ctx, closing: make(chan struct{}), halves: map[string]*halfConn{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serveHTTP))
	t.Cleanup(func() {
		close(h.closing)
		h.srv.Close()
		done := make(chan struct{})
		go func() { h.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitLimit):
			t.Error("test server peer did not finish")
		}
		cancel()
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
		header: r.Header.Clone(),
	})
	h.mu.Unlock()

	switch {
	case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
		h.serveSocket(w, r)
	case r.URL.Query().Get("id") != "":
		h.serveHalf(w, r, body)
	case r.Method != http.MethodPost:
		http.Error(w, "unexpected method", http.StatusMethodNotAllowed)
	case h.cfg.negotiate[r.URL.Path] != nil:
		h.cfg.negotiate[r.URL.Path](w, r)
	case r.URL.Path == "/client/negotiate":
		h.negotiateOK(w, r)
	default:
		http.NotFound(w, r)
	}
}

// negotiateOK is a gateway's normal negotiate answer, with a new
// connection (cid-N, ctok-N) each time.
func (h *hub) negotiateOK(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	h.tokens++
	n := h.tokens
	h.mu.Unlock()
	offer := h.cfg.offer
	if offer == "" {
		offer = allTransports
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"negotiateVersion":1,"connectionId":"cid-%d","connectionToken":"ctok-%d","availableTransports":%s}`, n, n, offer)
}

// refused answers a transport's start with the configured status, if any.
func (h *hub) refused(w http.ResponseWriter, transport string) bool {
	if status := h.cfg.refuse[transport]; status != 0 {
		http.Error(w, "no such connection", status)
		return true
	}
	return false
}

func (h *hub) serveSocket(w http.ResponseWriter, r *http.Request) {
	if h.refused(w, "WebSockets") {
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
	h.run(&peer{t: h.t, ws: ws, conn: wsPeerConn{ws}, ctx: h.ctx, codec: protocol.JSON})
}

// run plays the configured script on p.
func (h *hub) run(p *peer) {
	if h.cfg.peer == nil {
		if p.handshake(handshakeOK) {
			p.drain()
		}
		return
	}
	h.cfg.peer(p)
}

const handshakeOK = "{}\x1e"

// answer returns a handler that replies with status and body.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// peerConn is the server end of one connection: frames in and out.
type peerConn interface {
	// read returns the client's next frame (a WebSocket message, a POST
	// body) and its type (POSTs: from the Content-Type).
	read(ctx context.Context) (websocket.MessageType, []byte, error)
	// write sends one frame (a WebSocket message, a poll answer, an event).
	write(ctx context.Context, typ websocket.MessageType, b []byte) error
}

type wsPeerConn struct{ ws *websocket.Conn }

func (c wsPeerConn) read(ctx context.Context) (websocket.MessageType, []byte, error) {
	return c.ws.Read(ctx)
}

func (c wsPeerConn) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	return c.ws.Write(ctx, typ, b)
}

// peer is the server side of one connection. Its methods report problems
// with t.Error (they run off the test goroutine) and return false.
type peer struct {
	t       *testing.T
	ws      *websocket.Conn // WebSocket only
	half    *halfConn       // Server-Sent Events and Long Polling only
	conn    peerConn
	ctx     context.Context
	codec   protocol.Codec     // the client's hub protocol, from its handshake
	pending []protocol.Message // messages of the last frame not yet returned
}

// handshake reads the client's handshake, checks it is exactly the JS
// client's for JSON, and writes reply (which may carry more messages).
func (p *peer) handshake(reply string) bool {
	return p.handshakeAs("json", reply)
}

// handshakeAs reads the client's handshake, checks it is exactly the JS
// client's for protocol (always a text frame), and writes reply as a text
// frame for JSON, a binary one for MessagePack.
func (p *peer) handshakeAs(protocolName, reply string) bool {
	typ, b, err := p.conn.read(p.ctx)
	if err != nil {
		p.t.Errorf("server: read handshake: %v", err)
		return false
	}
	if want := fmt.Sprintf("{\"protocol\":%q,\"version\":1}\x1e", protocolName); typ != websocket.MessageText || string(b) != want {
		p.t.Errorf("server: handshake = %v %q, want text %q", typ, b, want)
		return false
	}
	p.codec, _ = protocol.CodecFor(protocolName)
	return p.sendFrame([]byte(reply))
}

// frameType is the type of the protocol's frames.
func (p *peer) frameType() websocket.MessageType {
	if p.codec.Binary() {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// send writes one text frame.
func (p *peer) send(frame string) bool {
	if err := p.conn.write(p.ctx, websocket.MessageText, []byte(frame)); err != nil {
		p.t.Errorf("server: write: %v", err)
		return false
	}
	return true
}

// sendFrame writes one frame of the protocol's type.
func (p *peer) sendFrame(b []byte) bool {
	if err := p.conn.write(p.ctx, p.frameType(), b); err != nil {
		p.t.Errorf("server: write: %v", err)
		return false
	}
	return true
}

// frame reads one raw frame of the protocol's type; errors are returned,
// not reported.
func (p *peer) frame() ([]byte, error) {
	typ, b, err := p.conn.read(p.ctx)
	if err != nil {
		return nil, err
	}
	if typ != p.frameType() {
		return nil, fmt.Errorf("client sent a %v frame on a %s connection", typ, p.codec.Name())
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
		err = p.codec.Split(b, func(msg []byte) error {
			m, err := p.codec.Parse(msg)
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

// drain reads until the client leaves and returns every message it sent
// and the WebSocket close status (-1 when the socket just broke, and for
// the HTTP transports).
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

// Server-Sent Events and Long Polling.

// errClientGone ends a half connection's reads once the client left.
var errClientGone = errors.New("server: the client left")

// halfConn is the server side of an SSE or Long Polling connection: POST
// bodies in, poll answers or events out.
type halfConn struct {
	h         *hub
	transport string       // "ServerSentEvents" or "LongPolling"
	in        chan inFrame // POST bodies, in order
	out       chan outFrame
	gone      chan struct{} // closed when the client left (DELETE, closed stream)
	goneOnce  sync.Once
	ended     chan struct{} // closed when the peer returned
	endOnce   sync.Once
}

type inFrame struct {
	typ  websocket.MessageType
	body []byte
}

// outFrame is one poll answer (status and body; drop: the connection
// closed instead) or, on SSE, one event (raw: written as it is, not framed
// as data lines).
type outFrame struct {
	status int
	body   []byte
	raw    bool
	drop   bool
}

func (c *halfConn) leave() { c.goneOnce.Do(func() { close(c.gone) }) }
func (c *halfConn) end()   { c.endOnce.Do(func() { close(c.ended) }) }

func (c *halfConn) read(ctx context.Context) (websocket.MessageType, []byte, error) {
	select {
	case f := <-c.in:
		return f.typ, f.body, nil
	case <-c.gone:
		return 0, nil, errClientGone
	case <-c.h.closing:
		return 0, nil, errClientGone
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

func (c *halfConn) write(ctx context.Context, _ websocket.MessageType, b []byte) error {
	return c.put(ctx, outFrame{status: http.StatusOK, body: b})
}

// put hands f to the next poll (or the event stream) and returns once it
// was taken.
func (c *halfConn) put(ctx context.Context, f outFrame) error {
	select {
	case c.out <- f:
		return nil
	case <-c.gone:
		return errClientGone
	case <-c.h.closing:
		return errClientGone
	case <-ctx.Done():
		return ctx.Err()
	}
}

// poll answers the next poll with status and body (an empty 200, a 204, a
// 500), as the peer's script decides.
func (p *peer) poll(status int, body string) bool {
	if err := p.half.put(p.ctx, outFrame{status: status, body: []byte(body)}); err != nil {
		p.t.Errorf("server: answer poll %d: %v", status, err)
		return false
	}
	return true
}

// rawEvents writes s to the event stream as it is.
func (p *peer) rawEvents(s string) bool {
	if err := p.half.put(p.ctx, outFrame{raw: true, body: []byte(s)}); err != nil {
		p.t.Errorf("server: write events: %v", err)
		return false
	}
	return true
}

// start creates a half connection for token and runs the peer on it.
func (h *hub) start(token, transport string) *halfConn {
	c := &halfConn{h: h, transport: transport, in: make(chan inFrame, 64), out: make(chan outFrame),
		gone: make(chan struct{}), ended: make(chan struct{})}
	h.mu.Lock()
	h.halves[token] = c
	h.mu.Unlock()
	// Called from a handler, so srv.Close in the cleanup orders this Add
	// before its Wait.
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer c.end()
		h.run(&peer{t: h.t, half: c, conn: c, ctx: h.ctx, codec: protocol.JSON})
	}()
	return c
}

func (h *hub) half(token string) *halfConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.halves[token]
}

// serveHalf serves the connect URL without an upgrade: the event stream,
// polls, POSTs and the DELETE, as an ASP.NET Core server does.
func (h *hub) serveHalf(w http.ResponseWriter, r *http.Request, body []byte) {
	token := r.URL.Query().Get("id")
	c := h.half(token)
	switch {
	case r.Method == http.MethodGet && r.Header.Get("Accept") == "text/event-stream":
		if c != nil {
			http.Error(w, "the stream is already open", http.StatusConflict)
			return
		}
		if h.refused(w, "ServerSentEvents") {
			return
		}
		h.serveStream(w, r, h.start(token, "ServerSentEvents"))
	case r.Method == http.MethodGet:
		if c == nil {
			// The first poll starts the connection and is answered at once.
			if !h.refused(w, "LongPolling") {
				h.start(token, "LongPolling")
			}
			return
		}
		h.servePoll(w, r, c)
	case r.Method == http.MethodPost:
		if c == nil || isClosed(c.gone) || isClosed(c.ended) {
			http.NotFound(w, r)
			return
		}
		if h.cfg.postHook != nil {
			h.cfg.postHook(body)
		}
		typ := websocket.MessageText
		if r.Header.Get("Content-Type") == "application/octet-stream" {
			typ = websocket.MessageBinary
		}
		select {
		case c.in <- inFrame{typ, body}:
		case <-c.ended:
			http.NotFound(w, r)
		case <-r.Context().Done():
		}
	case r.Method == http.MethodDelete:
		if c == nil {
			http.NotFound(w, r)
			return
		}
		c.leave()
		w.WriteHeader(http.StatusAccepted)
	default:
		http.Error(w, "unexpected method", http.StatusMethodNotAllowed)
	}
}

func (h *hub) servePoll(w http.ResponseWriter, r *http.Request, c *halfConn) {
	select {
	case f := <-c.out:
		if f.drop {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.WriteHeader(f.status)
		w.Write(f.body)
	case <-c.ended:
		w.WriteHeader(http.StatusNoContent)
	case <-c.gone: // a DELETE completes the poll
		w.WriteHeader(http.StatusNoContent)
	case <-r.Context().Done(): // the client aborted it
	case <-h.closing:
		w.WriteHeader(http.StatusNoContent)
	}
}

// serveStream writes the event stream like ASP.NET Core: a comment first,
// then each frame as one event of data lines ended by CRLF.
func (h *hub) serveStream(w http.ResponseWriter, r *http.Request, c *halfConn) {
	ct := "text/event-stream"
	if h.cfg.streamType != "" {
		ct = h.cfg.streamType
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	io.WriteString(w, ":\r\n")
	w.(http.Flusher).Flush()
	defer c.leave() // a stream that ends, either way, ends the connection
	for {
		select {
		case f := <-c.out:
			if f.raw {
				w.Write(f.body)
			} else {
				var b strings.Builder
				for line := range strings.SplitSeq(string(f.body), "\n") {
					b.WriteString("data: " + line + "\r\n")
				}
				b.WriteString("\r\n")
				io.WriteString(w, b.String())
			}
			w.(http.Flusher).Flush()
		case <-c.ended:
			return
		case <-r.Context().Done():
			return
		case <-h.closing:
			return
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
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
