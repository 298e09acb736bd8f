package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/protocol"
)

func TestServerClose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		frame          string
		want           CloseError
		wantCloseReply bool // the JS client answers only a final Close
	}{
		{"final", "{\"type\":7,\"error\":\"kicked by admin\"}\x1e", CloseError{Message: "kicked by admin"}, true},
		{"reconnect allowed", "{\"type\":7,\"error\":\"node draining\",\"allowReconnect\":true}\x1e",
			CloseError{Message: "node draining", AllowReconnect: true}, false},
		{"bare", "{\"type\":7}\x1e", CloseError{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			type result struct {
				msgs   []protocol.Message
				status websocket.StatusCode
			}
			got := make(chan result, 1)
			h := newHub(t, hubConfig{peer: func(p *peer) {
				if !p.handshake(handshakeOK) || !p.send(tt.frame) {
					return
				}
				msgs, status := p.drain()
				got <- result{msgs, status}
			}})
			c := dial(t, h.url("/client/?hub=chat"), nil)
			waitDone(t, c)
			var ce *CloseError
			if err := c.Err(); !errors.As(err, &ce) || *ce != tt.want {
				t.Errorf("Err() = %v, want CloseError %+v", err, tt.want)
			}
			r := recv(t, got)
			if hasMessage(r.msgs, protocol.TypeClose) != tt.wantCloseReply {
				t.Errorf("client sent %+v; want a Close back: %v", r.msgs, tt.wantCloseReply)
			}
			if r.status != websocket.StatusNormalClosure {
				t.Errorf("socket close status = %v, want 1000", r.status)
			}
			if _, err := c.Invoke(context.Background(), "x"); !errors.Is(err, ErrClosed) || !errors.As(err, &ce) {
				t.Errorf("Invoke after close = %v, want ErrClosed wrapping the CloseError", err)
			}
		})
	}
}

func TestServerTimeout(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{}) // answers the handshake, then stays silent
	c := dial(t, h.url("/client/?hub=chat"), &Options{ServerTimeout: 100 * time.Millisecond})
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, ErrServerTimeout) {
		t.Errorf("Err() = %v, want ErrServerTimeout", err)
	}
}

// TestKeepAlive: with a server that talks, the client keeps pinging every
// KeepAlive after its last send.
func TestKeepAlive(t *testing.T) {
	t.Parallel()
	const want = 4
	pings := make(chan int, 1)
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if !p.handshake(handshakeOK) {
			return
		}
		n := 0
		for n < want {
			m, err := p.next()
			if err != nil {
				t.Errorf("server: %v after %d pings", err, n)
				return
			}
			if m.Type != protocol.TypePing {
				t.Errorf("server got %+v, want only pings", m)
				return
			}
			n++
			// Data from the server re-arms the client's ping timer.
			if !p.send("{\"type\":6}\x1e") {
				return
			}
		}
		pings <- n
		p.drain()
	}})
	dial(t, h.url("/client/?hub=chat"), &Options{KeepAlive: 20 * time.Millisecond})
	if n := recv(t, pings); n != want {
		t.Errorf("server counted %d pings, want %d", n, want)
	}
}

func TestTokenInQuery(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{})
	dial(t, h.url("/client/?hub=chat"), &Options{
		TokenInQuery: true,
		AccessToken:  func(context.Context) (string, error) { return "a.b/c+d e", nil },
	})
	reqs := h.requests()
	if len(reqs) != 2 {
		t.Fatalf("requests = %v, want negotiate and upgrade", reqs)
	}
	if got, want := reqs[0].auth, "Bearer a.b/c+d e"; got != want {
		t.Errorf("negotiate Authorization = %q, want %q", got, want)
	}
	up := reqs[1]
	if want := "hub=chat&id=ctok-1&access_token=a.b%2Fc%2Bd%20e"; up.query != want {
		t.Errorf("upgrade query = %q, want %q", up.query, want)
	}
	if q, _ := url.ParseQuery(up.query); q.Get("access_token") != "a.b/c+d e" {
		t.Errorf("access_token decodes to %q", q.Get("access_token"))
	}
	if up.auth != "" {
		t.Errorf("upgrade Authorization = %q, want none", up.auth)
	}
}

func TestPendingInvokeFailsWhenServerDrops(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if !p.handshake(handshakeOK) {
			return
		}
		p.nextNonPing() // the invocation; then drop the socket unanswered
		p.ws.CloseNow()
	}})
	c := dial(t, h.url("/client/?hub=chat"), nil)
	_, err := c.Invoke(context.Background(), "slow")
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Invoke error = %v, want ErrClosed", err)
	}
	waitDone(t, c)
	if c.Err() == nil {
		t.Error("Err() = nil after the server dropped the socket")
	}
}

func TestInvokeContextCancel(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	got := make(chan protocol.Message, 4)
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if !p.handshake(handshakeOK) {
			return
		}
		m, _ := p.nextNonPing()
		got <- m
		<-release // answer the first invocation only after it was abandoned
		p.send(fmt.Sprintf("{\"type\":3,\"invocationId\":%q,\"result\":\"late\"}\x1e", m.InvocationID))
		m, _ = p.nextNonPing()
		p.send(fmt.Sprintf("{\"type\":3,\"invocationId\":%q,\"result\":\"second\"}\x1e", m.InvocationID))
		p.drain()
	}})
	c := dial(t, h.url("/client/?hub=chat"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctx, "first")
		errc <- err
	}()
	recv(t, got)
	cancel()
	if err := recv(t, errc); !errors.Is(err, context.Canceled) {
		t.Errorf("Invoke error = %v, want context.Canceled", err)
	}
	close(release)
	res, err := c.Invoke(context.Background(), "second")
	if err != nil || string(res) != `"second"` {
		t.Errorf("second Invoke = %s, %v; want \"second\" (the late completion dropped)", res, err)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	type result struct {
		msgs   []protocol.Message
		status websocket.StatusCode
	}
	got := make(chan result, 1)
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if p.handshake(handshakeOK) {
			msgs, status := p.drain()
			got <- result{msgs, status}
		}
	}})
	c := dial(t, h.url("/client/?hub=chat"), nil)
	for i := range 2 {
		if err := c.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done not closed after Close returned")
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err() = %v after Close, want nil", err)
	}
	r := recv(t, got)
	if len(r.msgs) == 0 || r.msgs[len(r.msgs)-1].Type != protocol.TypeClose || r.status != websocket.StatusNormalClosure {
		t.Errorf("server got %+v and status %v, want a Close message then 1000", r.msgs, r.status)
	}
	if err := c.Send(context.Background(), "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}

func TestReadLimit(t *testing.T) {
	t.Parallel()
	status := make(chan websocket.StatusCode, 1)
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if !p.handshake(handshakeOK) {
			return
		}
		big := fmt.Sprintf("{\"type\":1,\"target\":\"x\",\"arguments\":[%q]}\x1e", strings.Repeat("a", 2048))
		p.send(big)
		_, s := p.drain()
		status <- s
	}})
	c := dial(t, h.url("/client/?hub=chat"), &Options{ReadLimit: 1024})
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, websocket.ErrMessageTooBig) {
		t.Errorf("Err() = %v, want websocket.ErrMessageTooBig", err)
	}
	if s := recv(t, status); s != websocket.StatusMessageTooBig {
		t.Errorf("server saw close status %v, want 1009", s)
	}
}

func TestProtocolViolation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		binary bool
		frame  string
	}{
		{"binary frame", true, "{\"type\":6}\x1e"},
		{"invalid JSON", false, "{\"type\":\x1e"},
		{"incomplete message", false, "{\"type\":6}"},
		{"completion without id", false, "{\"type\":3,\"result\":1}\x1e"},
		{"type not a number", false, "{\"type\":\"1\"}\x1e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, hubConfig{peer: func(p *peer) {
				if !p.handshake(handshakeOK) {
					return
				}
				typ := websocket.MessageText
				if tt.binary {
					typ = websocket.MessageBinary
				}
				p.ws.Write(p.ctx, typ, []byte(tt.frame))
				p.drain()
			}})
			c := dial(t, h.url("/client/?hub=chat"), nil)
			waitDone(t, c)
			if err := c.Err(); !errors.Is(err, ErrProtocol) {
				t.Errorf("Err() = %v, want ErrProtocol", err)
			}
		})
	}
}

func TestServerTimeoutDuringHandshake(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{peer: func(p *peer) {
		p.frame() // the handshake, never answered
		p.drain()
	}})
	_, err := Dial(context.Background(), h.url("/client/?hub=chat"), &Options{ServerTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrServerTimeout) {
		t.Errorf("Dial error = %v, want ErrServerTimeout", err)
	}
}

func TestWriteBinary(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 1)
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if !p.handshake(handshakeOK) {
			return
		}
		for {
			typ, b, err := p.ws.Read(p.ctx)
			if err != nil {
				return
			}
			if typ == websocket.MessageBinary {
				got <- b
			}
		}
	}})
	c := dial(t, h.url("/client/?hub=chat"), nil)
	if err := c.WriteBinary(context.Background(), []byte{1, 2, 0x1e}); err != nil {
		t.Fatalf("WriteBinary: %v", err)
	}
	if b := recv(t, got); string(b) != "\x01\x02\x1e" {
		t.Errorf("server got binary %q, want 01 02 1e", b)
	}
}
