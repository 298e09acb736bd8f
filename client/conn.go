package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/protocol"
)

// noResultError is the JS client's answer to a server invocation expecting a
// result when no handler provides one.
const noResultError = "Client didn't provide a result."

// maxKeptBuffer is the largest read or encode buffer kept between messages.
const maxKeptBuffer = 32 << 10

// errStop ends the read loop after a server Close message; the reason is
// already recorded.
var errStop = errors.New("client: stop")

// Conn is one SignalR connection. Create it with Dial.
type Conn struct {
	tr            transport             // WebSocket, Server-Sent Events or Long Polling
	codec         protocol.Codec        // the hub protocol
	frameType     websocket.MessageType // text for JSON, binary for MessagePack
	pingFrame     []byte                // frames that never change
	closeFrame    []byte
	id            string
	keepAlive     time.Duration
	serverTimeout time.Duration
	handleFn      func([]byte) error // c.handleMessage, bound once
	done          chan struct{}      // closed when the connection has ended
	closeOnce     sync.Once
	closeErr      error

	pingTimer    *time.Timer // sends the keep-alive ping; nil for Long Polling
	timeoutTimer *time.Timer // ends the connection on server silence; nil for Long Polling

	wmu  sync.Mutex // guards wbuf (the encode buffer)
	wbuf []byte

	kmu       sync.Mutex // guards the keep-alive state below
	nextPing  time.Time  // keepAlive after the last send
	pingArmed bool       // pingTimer is set; cleared by every send

	mu       sync.Mutex // guards the fields below
	handlers map[string][]func([]json.RawMessage)
	pending  map[string]chan completion
	nextID   uint64
	cause    error          // why the connection ended; nil after Close
	ended    bool           // the read loop has finished or is finishing
	closing  bool           // Close was called
	timerFns sync.WaitGroup // timer callbacks at work; Add under mu while !ended

	rbuf []byte // read buffer; owned by the reader goroutine
}

// completion is the outcome of one Invoke.
type completion struct {
	result json.RawMessage
	err    error
}

// Dial connects to a SignalR hub. rawURL is what the JS client's withUrl()
// takes: an app negotiate URL that redirects ("http://host/api") or the
// gateway's client URL ("http://host/client/?hub=chat"). Dial negotiates,
// following up to 100 redirects, starts a transport (Options.Transport) at
// the last URL plus "id=<connectionToken>", performs the JSON handshake and
// returns once the server answered it. Messages that came with the answer
// have been handled (by Options.Handlers) when Dial returns. ctx bounds the
// whole of Dial only.
//
// Errors wrap ErrNegotiate (with the server's {"error"} text, the status and
// body, or the transports the server offers when none fits), ErrHandshake
// (with the server's reason), or the transport's start error, whose text
// includes the HTTP status of a refused upgrade, event stream or first poll.
func Dial(ctx context.Context, rawURL string, opts *Options) (*Conn, error) {
	o := opts.withDefaults()
	if o.codec == nil {
		return nil, fmt.Errorf("client: unknown hub protocol %q: use json or messagepack", o.Protocol)
	}
	if o.transports == 0 {
		return nil, fmt.Errorf("client: unknown transport %q: use websockets, serversentevents or longpolling", o.Transport)
	}
	if o.transports == kindServerSentEvents && o.codec.Binary() {
		return nil, fmt.Errorf("client: Server-Sent Events carry only text: use the json protocol (or another transport) with %s", o.codec.Name())
	}
	neg, err := negotiate(ctx, rawURL, &o.Options)
	if err != nil {
		return nil, err
	}
	tr, err := startTransport(ctx, neg, &o)
	if err != nil {
		return nil, err
	}
	c := &Conn{
		tr:            tr,
		codec:         o.codec,
		frameType:     websocket.MessageText,
		pingFrame:     o.codec.AppendPing(nil),
		closeFrame:    o.codec.AppendClose(nil, "", false),
		id:            neg.connectionID,
		keepAlive:     o.KeepAlive,
		serverTimeout: o.ServerTimeout,
		done:          make(chan struct{}),
		handlers:      lowerHandlers(o.Handlers),
		pending:       make(map[string]chan completion),
	}
	if o.codec.Binary() {
		c.frameType = websocket.MessageBinary
	}
	c.handleFn = c.handleMessage
	if !tr.kind().inherentKeepAlive() {
		c.pingTimer = time.AfterFunc(time.Hour, c.onPingTimer)
		c.pingTimer.Stop()
	}
	if err := c.handshake(ctx); err != nil {
		c.finish(err)
		return nil, c.Err()
	}
	go c.readLoop()
	return c, nil
}

// handshake sends the handshake (JSON text whatever the protocol), reads
// the answer and handles any messages bundled with it, then sends the
// post-handshake Ping (not on Long Polling, like the JS client).
func (c *Conn) handshake(ctx context.Context) error {
	req := protocol.AppendHandshakeRequest(nil, c.codec.Name(), 1)
	if err := c.write(ctx, websocket.MessageText, req); err != nil {
		return fmt.Errorf("%w: send: %w", ErrHandshake, err)
	}
	if c.pingTimer != nil {
		// Like the JS client, the server timeout starts with the handshake.
		c.timeoutTimer = time.AfterFunc(c.serverTimeout, c.onServerTimeout)
	}
	typ, frame, err := c.readFrame(ctx)
	if err != nil {
		if errors.Is(err, errEnded) {
			return fmt.Errorf("%w: the server ended the connection before answering", ErrHandshake)
		}
		return c.readError(err)
	}
	rest, err := protocol.ParseHandshakeResponse(frame)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if len(rest) > 0 {
		if typ == websocket.MessageText && c.frameType == websocket.MessageBinary {
			typ = websocket.MessageBinary // the answer may come as text; what follows it is the protocol's
		}
		if err := c.handleFrame(typ, rest); err != nil {
			return err
		}
	}
	if c.pingTimer != nil {
		if err := c.write(ctx, c.frameType, c.pingFrame); err != nil {
			return fmt.Errorf("client: ping: %w", err)
		}
	}
	return nil
}

// ConnectionID is the connectionId from negotiate ("" for a version-0
// server that sent none).
func (c *Conn) ConnectionID() string { return c.id }

// Transport is the transport in use, by its negotiate name: "WebSockets",
// "ServerSentEvents" or "LongPolling".
func (c *Conn) Transport() string { return c.tr.kind().String() }

// On registers fn for server invocations of target, matched
// case-insensitively like the JS client; several handlers for one target all
// run, in registration order. Handlers run on the reader goroutine and must
// not block for long, nor call Invoke or Close (see the package doc). args is the invocation's
// "arguments" array, one raw JSON value per argument, owned by fn.
func (c *Conn) On(target string, fn func(args []json.RawMessage)) {
	k := strings.ToLower(target)
	c.mu.Lock()
	c.handlers[k] = append(c.handlers[k], fn)
	c.mu.Unlock()
}

// Invoke calls a hub method and waits for its Completion. It returns the
// raw result (nil when the Completion had none), an *InvocationError when
// the Completion carried an error, an error wrapping ErrClosed when the
// connection ended first, or ctx's error (the Completion is then dropped).
// args are encoded with encoding/json; a json.RawMessage passes as is.
func (c *Conn) Invoke(ctx context.Context, target string, args ...any) (json.RawMessage, error) {
	rawArgs, err := encodeArgs(args)
	if err != nil {
		return nil, fmt.Errorf("client: invoke %s: %w", target, err)
	}
	ch := make(chan completion, 1)
	c.mu.Lock()
	if c.ended {
		err := closedError(c.cause)
		c.mu.Unlock()
		return nil, err
	}
	id := strconv.FormatUint(c.nextID, 10)
	c.nextID++
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.writeInvocation(ctx, id, target, rawArgs); err != nil {
		c.forget(id)
		return nil, err
	}
	select {
	case r := <-ch:
		return r.result, r.err
	case <-ctx.Done():
		c.forget(id)
		return nil, fmt.Errorf("client: invoke %s: %w", target, ctx.Err())
	}
}

// forget drops a pending invocation.
func (c *Conn) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// Send calls a hub method without waiting: an Invocation without id, to
// which the server sends nothing back.
func (c *Conn) Send(ctx context.Context, target string, args ...any) error {
	rawArgs, err := encodeArgs(args)
	if err != nil {
		return fmt.Errorf("client: send %s: %w", target, err)
	}
	return c.writeInvocation(ctx, "", target, rawArgs)
}

// SendRaw writes frame as one frame of the protocol's type (a WebSocket
// message, a POST body), unchecked: for tests that feed the server several
// messages at once or garbage. Over Long Polling and Server-Sent Events,
// frames written while a POST is out share the next POST, as with the JS
// client.
func (c *Conn) SendRaw(ctx context.Context, frame []byte) error {
	return c.write(ctx, c.frameType, frame)
}

// WriteText writes b as one text frame: a text WebSocket message, or a
// text/plain POST (which a MessagePack hub server must refuse).
func (c *Conn) WriteText(ctx context.Context, b []byte) error {
	return c.write(ctx, websocket.MessageText, b)
}

// WriteBinary writes b as one binary frame: a binary WebSocket message, or
// an application/octet-stream POST (which a JSON hub server must refuse).
func (c *Conn) WriteBinary(ctx context.Context, b []byte) error {
	return c.write(ctx, websocket.MessageBinary, b)
}

// Close ends the connection like the JS client's stop() and waits for the
// reader goroutine. Over a WebSocket it sends {"type":7} and closes the
// socket with status 1000. Over Long Polling it aborts the poll, waits for
// it, sends the DELETE and then {"type":7}; over Server-Sent Events it
// closes the event stream and then POSTs {"type":7}: the JS client's final
// Close reaches the server after the transport ended too. Pending
// invocations fail with ErrClosed. Close is idempotent and Err returns nil
// afterwards unless the connection had already ended.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		ended := c.ended
		c.mu.Unlock()
		if !ended {
			c.closeErr = c.tr.stop(websocket.StatusNormalClosure, c.frameType, c.closeFrame)
		}
		<-c.done
	})
	return c.closeErr
}

// Done is closed when the connection has ended, for whatever reason.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err tells why the connection ended: nil while it is open, after Close,
// and after the server ended a Long Polling connection with a 204 or ended
// the Server-Sent Events stream (which the JS client does not report as
// errors either); a *CloseError when the server sent a Close message;
// ErrServerTimeout; an error wrapping ErrProtocol; or the transport error
// (a failed poll's names its status). For a WebSocket close by the server,
// websocket.CloseStatus(err) gives its status (1000 for a clean close
// without a Close message); a message over ReadLimit gives an error
// wrapping websocket.ErrMessageTooBig.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ended {
		return nil
	}
	return c.cause
}

// encodeArgs encodes call arguments as a JSON array.
func encodeArgs(args []any) (json.RawMessage, error) {
	if len(args) == 0 {
		return nil, nil // protocol writes []
	}
	return json.Marshal(args)
}

// writeInvocation encodes and writes one Invocation ("" id: a send). A
// WebSocket writes from the caller's bytes, so invocations are encoded into
// one buffer reused under wmu. The HTTP transports copy a frame into their
// POST queue and wait for the POST: there each invocation is encoded on its
// own, so that calls made while a POST is out share the next one.
func (c *Conn) writeInvocation(ctx context.Context, id, target string, args json.RawMessage) error {
	if c.tr.kind().queuesFrames() {
		b, err := c.codec.AppendInvocation(nil, id, target, args)
		if err != nil {
			return fmt.Errorf("client: %s: %w", target, err)
		}
		return c.write(ctx, c.frameType, b)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if c.wbuf, err = c.codec.AppendInvocation(c.wbuf[:0], id, target, args); err != nil {
		return fmt.Errorf("client: %s: %w", target, err)
	}
	err = c.write(ctx, c.frameType, c.wbuf)
	if cap(c.wbuf) > maxKeptBuffer {
		c.wbuf = nil
	}
	return err
}

// writeTimeout bounds one write: a WebSocket message, or a POST (with the
// wait for the POST before it).
const writeTimeout = 30 * time.Second

// write writes one frame. Like the JS client it restarts the keep-alive
// interval before sending, so an answer that arrives before the write
// returns re-arms the ping timer. The transports serialise concurrent
// writers themselves.
func (c *Conn) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	if c.pingTimer != nil {
		c.kmu.Lock()
		c.nextPing = time.Now().Add(c.keepAlive)
		c.pingArmed = false
		c.pingTimer.Stop()
		c.kmu.Unlock()
	}
	// coder/websocket closes the whole connection when a write's context
	// ends mid-frame, and a POST cut short may or may not have reached the
	// server. A caller giving up on one call must not kill the connection,
	// so the write keeps the caller's values but not its cancellation,
	// bounded by its own timeout instead.
	if err := ctx.Err(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if err := c.tr.write(wctx, typ, b); err != nil {
		c.mu.Lock()
		ended, cause := c.ended, c.cause
		c.mu.Unlock()
		if ended || errors.Is(err, net.ErrClosed) {
			return closedError(cause)
		}
		return fmt.Errorf("client: write: %w", err)
	}
	return nil
}
