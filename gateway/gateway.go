package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-gw/switchboard/internal/tracing"
	"github.com/switchboard-gw/switchboard/protocol"
	"github.com/switchboard-gw/switchboard/upstream"
)

// Gateway owns the connections of every hub on this node.
type Gateway struct {
	cfg Config
	log *slog.Logger
	bus Bus // Config.Bus, or a localBus

	hubs sync.Map // hub name → *hub

	mu       sync.Mutex // guards the fields below
	tokens   map[string]*negotiation
	pending  int // entries of tokens without a connection yet
	stopping bool

	serving       sync.WaitGroup // one per Serve call
	sweeperDone   chan struct{}
	workers       workerPool // goroutines for invocation workers
	stopSweep     chan struct{}
	slowConsumers atomic.Int64
	stuckWrites   atomic.Int64 // sockets the sweep dropped for a write past WriteTimeout
	limited       limitCounters
	conns         connStats
	texts         limitTexts
	// lateShare is the recent share of write loops that ran more than two
	// of their connection's message gaps late (fixed point, lateScale is 1);
	// the gateway is congested until congestedUntil (monotonic
	// nanoseconds; see noteSchedulingDelay).
	lateShare      atomic.Int64
	congestedUntil atomic.Int64
	// tracer makes spans; nil when Config.TracerProvider is nil.
	tracer trace.Tracer
}

// negotiation is a connection between negotiate and the end of its socket.
type negotiation struct {
	connID   string
	hub      string
	identity Identity
	created  time.Time
	conn     *Conn // set once a socket claimed the token
}

// Identity is what the HTTP layer learned about a client from its token.
type Identity struct {
	UserID string
	Claims map[string]any
	// Bearer is the access token the client negotiated with ("" for none),
	// so the socket that presents the same token need not be verified
	// twice.
	Bearer string
	// Trace is the span context of the negotiate request (its server span,
	// or the client's own when tracing is off): the connect event of a
	// socket that brings no trace context of its own continues it.
	Trace trace.SpanContext
}

// ConnectInfo is what the transport request carried, for the connect event.
type ConnectInfo struct {
	Query        url.Values
	Headers      http.Header
	Subprotocols []string
	// Trace is the trace context the transport request carried
	// (traceparent); it takes precedence over the negotiate request's.
	Trace trace.SpanContext
}

// New returns a running Gateway. Call Shutdown to stop it.
func New(cfg Config) *Gateway {
	cfg = cfg.withDefaults()
	g := &Gateway{
		cfg:         cfg,
		log:         cfg.Logger,
		tokens:      make(map[string]*negotiation),
		sweeperDone: make(chan struct{}),
		stopSweep:   make(chan struct{}),
		texts:       newLimitTexts(cfg.Limits),
		tracer:      tracing.Tracer(cfg.TracerProvider, tracerName),
	}
	g.bus = cfg.Bus
	if g.bus == nil {
		g.bus = localBus{g}
	}
	if cfg.SweepInterval > 0 {
		go g.sweepLoop()
	} else {
		close(g.sweeperDone)
	}
	return g
}

// NodeID is the prefix of this node's connection ids.
func (g *Gateway) NodeID() string { return g.cfg.NodeID }

// Negotiate reserves a connection for a client of hub and returns its id and
// the unguessable token the client presents when it opens its socket and,
// over Server-Sent Events and Long Polling, on every request after. Both
// carry this node's id before a dot (see NodeOf), so a request that reaches
// another node of a cluster can be sent to the connection's own.
func (g *Gateway) Negotiate(hub string, id Identity) (connID, token string, err error) {
	connID = g.cfg.NodeID + "." + randomID(12)
	token = g.cfg.NodeID + "." + randomID(24)
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.stopping:
		return "", "", ErrShuttingDown
	case g.pending >= g.cfg.MaxPendingNegotiations:
		return "", "", ErrTooManyPending
	}
	g.tokens[token] = &negotiation{connID: connID, hub: hub, identity: id, created: g.cfg.Now()}
	g.pending++
	return connID, token, nil
}

// Check reports whether token may open a socket now, so the HTTP layer can
// answer 404 or 409 before it upgrades: a token not yet used, or a stateful
// connection's, whose client may resume it on a new socket. It returns the token's hub and the
// access token and the user id it was negotiated with.
func (g *Gateway) Check(token string) (Negotiated, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.tokens[token]
	switch {
	case n == nil:
		return Negotiated{}, ErrUnknownToken
	case n.conn != nil && n.conn.rs == nil:
		return Negotiated{}, ErrTokenInUse
	case n.conn != nil && n.conn.isClosing():
		// The stock client opens a stray socket to a stateful connection
		// it was just told to close: it gets 404, as for a token gone.
		return Negotiated{}, ErrUnknownToken
	}
	return Negotiated{Hub: n.hub, Bearer: n.identity.Bearer, UserID: n.identity.UserID}, nil
}

// Negotiated is what a connection token was negotiated with.
type Negotiated struct {
	Hub    string
	Bearer string // the access token presented at negotiate
	UserID string // "" for an anonymous connection
}

// Resumable reports whether token belongs to a live stateful connection: a
// new socket for it resumes that connection (a WebSocket, the only
// transport stateful reconnect runs on).
func (g *Gateway) Resumable(token string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.tokens[token]
	return n != nil && n.conn != nil && n.conn.rs != nil && !n.conn.isClosing()
}

// Serve runs the connection negotiated under token over tr until it ends:
// handshake, connect event, then reading client messages, whose invocations
// run alongside (see invoke.go) and have ended when it returns. It closes tr
// before it returns. The returned error says why the handshake failed; once a
// connection is established Serve returns nil however it ends.
func (g *Gateway) Serve(ctx context.Context, token string, tr Transport, info ConnectInfo) error {
	c, gen, err := g.open(ctx, token, tr, info)
	if c == nil {
		return err
	}
	defer g.serving.Done()
	g.serveReads(ctx, c, tr, gen)
	return nil
}

// open does Serve's work up to reading: it finds the negotiation, resumes
// a stateful connection or runs the handshake and the connect event, and
// returns the connection to read, with g.serving counting it, and the
// socket's generation. A nil connection means there is nothing to read;
// err says why, if it is an error.
//
// It is a function of its own, never inlined, so that its frame (the
// handshake's and the connect event's locals) is gone while the
// connection reads: an idle connection's goroutine then holds only the
// read loop's frames, and the runtime can shrink the stack the handshake
// grew back to its smallest size.
//
//go:noinline
func (g *Gateway) open(ctx context.Context, token string, tr Transport, info ConnectInfo) (*Conn, int, error) {
	g.mu.Lock()
	n := g.tokens[token]
	switch {
	case g.stopping:
		g.mu.Unlock()
		_ = tr.Close(CloseGoingAway, ReasonShutdown)
		return nil, 0, ErrShuttingDown
	case n == nil:
		g.mu.Unlock()
		_ = tr.Close(ClosePolicyViolation, "unknown connection token")
		return nil, 0, ErrUnknownToken
	case n.conn != nil && n.conn.rs != nil:
		// A stateful connection's client resumes it on a new socket.
		c := n.conn
		g.serving.Add(1)
		g.mu.Unlock()
		gen, ok := c.resumeWith(tr)
		if !ok {
			_ = tr.Close(ClosePolicyViolation, "connection closed; negotiate again")
			g.serving.Done()
			return nil, 0, ErrUnknownToken
		}
		c.lastRead.Store(g.cfg.Now().UnixNano())
		return c, gen, nil
	case n.conn != nil:
		g.mu.Unlock()
		_ = tr.Close(ClosePolicyViolation, "connection token already in use")
		return nil, 0, ErrTokenInUse
	}
	h := g.hub(n.hub)
	c := &Conn{
		id: n.connID,
		// A copy: the caller's token may be a piece of the request's URL,
		// which would be held with it (with a query access token, a few
		// hundred bytes) for the connection's life.
		token:  strings.Clone(token),
		hub:    h,
		userID: n.identity.UserID,
		g:      g,
		tr:     tr,
		codec:  protocol.JSON,
		done:   make(chan struct{}),
	}
	if ka, ok := tr.(KeepAliveTransport); ok {
		c.keepsAlive = ka.InherentKeepAlive()
	}
	n.conn = c
	g.pending--
	g.serving.Add(1)
	g.mu.Unlock()
	// Outside g.mu, which every negotiate takes: the negotiation's claims
	// change only after this connection's handshake (settleToken), and
	// nothing reads c's before it.
	c.claims = encodeClaims(n.identity.Claims)

	now := g.cfg.Now().UnixNano()
	c.lastRead.Store(now)
	c.lastWrite.Store(now)

	tctx, span := g.startConnectSpan(ctx, c, info.Trace, n.identity.Trace)
	rest, err := g.handshake(tctx, c, info, n.identity.Claims)
	if err != nil {
		endSpan(span, err)
		g.forget(token)
		g.serving.Done()
		return nil, 0, err
	}
	g.log.Debug("connected", "hub", h.name, "conn", c.id, "user", c.userID)
	if g.wants(h.name, upstream.EventConnected, "") {
		ev := c.event(upstream.EventConnected)
		ev.Claims = n.identity.Claims
		g.cfg.Webhooks.Notify(tctx, ev)
	}
	g.settleToken(c, n)
	span.End()
	if len(rest) > 0 && !c.handleFrame(ctx, rest, c.codec.Binary()) {
		g.end(c)
		g.serving.Done()
		return nil, 0, nil
	}
	return c, 0, nil
}

// serveReads reads the client's messages from tr, the connection's socket
// of generation gen, until it ends. Then the connection ends, unless it is
// stateful and its client may resume it: it is detached and waits for a
// new socket, whose Serve then goes on with it, or for its window to pass.
func (g *Gateway) serveReads(ctx context.Context, c *Conn, tr Transport, gen int) {
	var readerDone chan struct{}
	if c.rs != nil {
		c.mu.Lock()
		readerDone = c.rs.readerDone
		c.mu.Unlock()
	}
	var readErr error
	for {
		more, err := c.readOne(ctx, tr)
		if !more {
			readErr = err
			break
		}
	}
	if c.rs != nil {
		close(readerDone)
		c.mu.Lock()
		superseded, resumed := c.rs.gen != gen, c.rs.resumed
		c.mu.Unlock()
		if superseded {
			return // a new socket took over: its Serve owns the connection
		}
		if readErr != nil && c.detach(gen) {
			select {
			case <-resumed:
				return
			case <-c.done: // closed while detached: its window passed, or the server closed it
			}
		}
	}
	if readErr != nil {
		c.readFailed(readErr)
	}
	g.end(c)
}

// readOne reads the client's next frame from tr and handles it. It
// reports false once reading is over: the read failed (err says why) or
// the frame ended the connection.
func (c *Conn) readOne(ctx context.Context, tr Transport) (more bool, err error) {
	data, binary, err := tr.ReadFrame(ctx)
	if err != nil {
		return false, err
	}
	c.lastRead.Store(c.g.cfg.Now().UnixNano())
	return c.handleFrame(ctx, data, binary), nil
}

// end tears a connection down once its reading ended: what is queued will
// not run and running webhook calls are cancelled. Only once every
// invocation has ended does the connection leave its groups and the
// disconnected event go out, after all of its message events.
func (g *Gateway) end(c *Conn) {
	h := c.hub
	defer g.forget(c.token)
	c.stopInvocations()
	<-c.done
	c.awaitInvocations()
	h.removeConn(c)
	reason := c.disconnectReason()
	g.countClosed(c)
	if g.wants(h.name, upstream.EventDisconnected, "") {
		ev := c.event(upstream.EventDisconnected)
		ev.Reason = reason
		g.cfg.Webhooks.Notify(c.closeContext(), ev)
	}
	// Only once the disconnected event is durable may the cluster forget
	// the connection: a node dying in between leaves the record, and a
	// survivor reports the connection as lost.
	if g.cfg.Tracker != nil {
		g.cfg.Tracker.Closed(c.id)
	}
}

// handshake reads and answers the client's handshake and runs the connect
// event. On success the connection is registered in its hub and the bytes
// after the handshake in the first frame are returned.
func (g *Gateway) handshake(ctx context.Context, c *Conn, info ConnectInfo, claims map[string]any) ([]byte, error) {
	hctx, cancel := context.WithTimeout(ctx, g.cfg.HandshakeTimeout)
	data, _, err := c.tr.ReadFrame(hctx)
	cancel()
	if err != nil {
		_ = c.tr.Close(CloseProtocolError, "no handshake")
		return nil, fmt.Errorf("gateway: read handshake: %w", err)
	}
	req, rest, err := protocol.ParseHandshakeRequest(data)
	if err != nil {
		g.rejectHandshake(c, CloseProtocolError, err.Error())
		return nil, err
	}
	codec, _ := protocol.CodecFor(req.Protocol) // ParseHandshakeRequest took only protocols with a codec
	c.query = clientQuery(info.Query)

	var groups []string
	if g.wants(c.hub.name, upstream.EventConnect, "") {
		ev := c.event(upstream.EventConnect)
		ev.Claims = claims
		ev.Client.Protocol = codec.Name()
		ev.Query = map[string][]string(info.Query)
		ev.Headers = map[string][]string(info.Headers)
		ev.Subprotocols = info.Subprotocols
		reply, err := g.cfg.Webhooks.Call(ctx, ev)
		switch {
		case err != nil:
			// The dispatcher logged the failure, naming the upstream.
			g.log.Debug("connect event failed", "hub", c.hub.name, "conn", c.id, "err", err)
			g.rejectHandshake(c, ClosePolicyViolation, clientMessage(err, clientUpstreamFailed))
			return nil, err
		case reply != nil && reply.Error != "":
			g.rejectHandshake(c, ClosePolicyViolation, reply.Error)
			return nil, fmt.Errorf("gateway: connect rejected: %s", reply.Error)
		case reply != nil:
			// ParseReply checked a webhook's reply; a Reply built any other
			// way is checked here, before its user id and groups are used.
			if err := reply.ValidateConnect(); err != nil {
				g.rejectHandshake(c, ClosePolicyViolation, "invalid connect reply: "+err.Error())
				return nil, fmt.Errorf("gateway: connect reply: %w", err)
			}
			if reply.UserID != nil {
				c.userID = *reply.UserID
			}
			groups = reply.Groups
		}
	}

	// The handshake answer must be the first bytes the client receives, and
	// when it arrives the connection must already be in its groups, so a
	// send right after start() reaches it. The answer is queued with the
	// writer held back until registration is done; fan-out that finds the
	// connection meanwhile queues behind the answer.
	// From the answer on, the connection speaks its protocol: the answer
	// itself goes out in the protocol's frame type.
	c.codec = codec
	if req.Version >= 2 { // the client asked for stateful reconnect
		c.rs = newResumable()
	}
	c.holdWrites(protocol.HandshakeOK)
	c.hub.addConn(c)
	g.countOpened(c)
	if g.cfg.Tracker != nil {
		g.cfg.Tracker.Opened(c.hub.name, c.id, c.userID)
	}
	// Groups past MaxGroupsPerConnection are left out (counted, and
	// logged once); the connection is accepted in the others.
	var refused []string
	for _, grp := range groups {
		if err := c.hub.joinGroup(c, grp); err != nil {
			refused = append(refused, grp)
		}
	}
	if c.userID != "" {
		for _, ug := range g.userGroups(ctx, c.hub, c.userID) {
			if err := c.hub.joinUserGroup(c, ug.Group, ug.Expires); err != nil {
				refused = append(refused, ug.Group)
			}
		}
	}
	if len(refused) > 0 {
		g.log.Warn("new connection left out of groups past the limit per connection", "hub", c.hub.name, "conn", c.id,
			"limit", g.cfg.Limits.MaxGroupsPerConnection, "groups", len(refused), "first", refused[0])
	}
	c.startWriter()
	return rest, nil
}

// settleToken slims the token's entry once c's handshake is done, since
// the entry lives as long as the connection. Only a stateful connection's
// token is checked again (a resume presents it with the access token it
// was negotiated with); any other's now only answers 409 to a second
// socket, which the shared tokenInUse does as well. Either way the claims
// (the connection keeps them encoded) and the trace context can go: a few
// hundred bytes per connection.
func (g *Gateway) settleToken(c *Conn, n *negotiation) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tokens[c.token] != n { // the connection has ended already
		return
	}
	if c.rs == nil {
		g.tokens[c.token] = tokenInUse
		return
	}
	n.identity = Identity{UserID: n.identity.UserID, Bearer: n.identity.Bearer}
}

// tokenInUse is the entry of every connection token whose socket has
// completed its handshake and cannot resume (see settleToken).
var tokenInUse = &negotiation{conn: &Conn{}}

func (g *Gateway) rejectHandshake(c *Conn, code int, reason string) {
	c.closeWith(code, reason, protocol.AppendHandshakeError(nil, reason))
	<-c.done
}

// forget drops a token once its socket is gone, so a later upgrade with it
// gets 404 (the stock client opens stray sockets with old tokens).
func (g *Gateway) forget(token string) {
	g.mu.Lock()
	if n := g.tokens[token]; n != nil && n.conn == nil {
		g.pending--
	}
	delete(g.tokens, token)
	g.mu.Unlock()
}

func (g *Gateway) wants(hub, event, target string) bool {
	return g.cfg.Webhooks != nil && g.cfg.Webhooks.Wants(hub, event, target)
}

// hub returns the named hub, creating it on first use.
func (g *Gateway) hub(name string) *hub {
	if h, ok := g.hubs.Load(name); ok {
		return h.(*hub)
	}
	h, _ := g.hubs.LoadOrStore(name, newHub(name, func(r Route) { g.interestChanged(name, r) }))
	return h.(*hub)
}

func (g *Gateway) lookupHub(name string) *hub {
	if h, ok := g.hubs.Load(name); ok {
		return h.(*hub)
	}
	return nil
}

// HubStatus is a live summary of one hub on this node.
type HubStatus struct {
	Name        string `json:"name"`
	Connections int    `json:"connections"`
}

// Status returns the hubs with connections on this node, sorted by name.
func (g *Gateway) Status() []HubStatus {
	var out []HubStatus
	g.hubs.Range(func(k, v any) bool {
		out = append(out, HubStatus{Name: k.(string), Connections: v.(*hub).count()})
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StuckWrites counts sockets dropped because a write took longer than
// Config.WriteTimeout.
func (g *Gateway) StuckWrites() int64 { return g.stuckWrites.Load() }

// SlowConsumers counts connections closed because their queue overflowed.
func (g *Gateway) SlowConsumers() int64 { return g.slowConsumers.Load() }

// Shutdown refuses new connections, tells every client to reconnect (a
// SignalR Close message with allowReconnect), and waits until every
// connection has ended and its disconnected event is queued, or ctx ends.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	already := g.stopping
	g.stopping = true
	g.mu.Unlock()
	if !already {
		close(g.stopSweep)
	}
	g.hubs.Range(func(_, v any) bool {
		h := v.(*hub)
		frames := closeFrames(&h.codecs, ReasonShutdown, true)
		h.eachConn(func(c *Conn) { c.closeWith(CloseGoingAway, ReasonShutdown, frames.get(c.codec)) })
		return true
	})
	done := make(chan struct{})
	go func() {
		g.serving.Wait()
		<-g.sweeperDone
		g.workers.stop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway: shutdown: %w", ctx.Err())
	}
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand never fails: it crashes the program instead (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
