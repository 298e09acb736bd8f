package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/input"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/protocol"
	"github.com/switchboard-gw/switchboard/store"
)

// The client transports, by the names negotiate offers them under.
const (
	TransportWebSockets       = "WebSockets"
	TransportServerSentEvents = "ServerSentEvents"
	TransportLongPolling      = "LongPolling"
)

// allTransports are the transports in the order negotiate offers them (the
// stock client tries them in that order), each with the transfer formats
// it carries: Text for JSON, Binary for MessagePack.
var allTransports = []transport{
	{Transport: TransportWebSockets, TransferFormats: []string{"Text", "Binary"}},
	{Transport: TransportServerSentEvents, TransferFormats: []string{"Text"}},
	{Transport: TransportLongPolling, TransferFormats: []string{"Text", "Binary"}},
}

// transportName returns the canonical name of a transport given in any
// case, and whether there is one.
func transportName(s string) (string, bool) {
	for _, t := range allTransports {
		if strings.EqualFold(s, t.Transport) {
			return t.Transport, true
		}
	}
	return "", false
}

// hubTransports are the transports hub offers, in negotiate's order.
func hubTransports(hub store.Hub) []transport {
	if len(hub.Transports) == 0 {
		return allTransports
	}
	out := make([]transport, 0, len(allTransports))
	for _, t := range allTransports {
		if hubAllows(hub, t.Transport) {
			out = append(out, t)
		}
	}
	return out
}

func hubAllows(hub store.Hub, name string) bool {
	if len(hub.Transports) == 0 {
		return true
	}
	for _, t := range hub.Transports {
		if strings.EqualFold(t, name) {
			return true
		}
	}
	return false
}

// refuseTransport is the error for a transport hub does not offer.
func refuseTransport(hub store.Hub, name string) error {
	var offered []string
	for _, t := range hubTransports(hub) {
		offered = append(offered, t.Transport)
	}
	return fail(http.StatusForbidden, fmt.Sprintf("hub %q does not allow the %s transport (it allows %s); negotiate again and connect with one of those",
		hub.Name, name, strings.Join(offered, ", ")))
}

// LongPolling times the Long Polling transport. Zero fields mean the
// defaults, which are ASP.NET Core's.
type LongPolling struct {
	// PollWait is how long a poll waits for messages before it is answered
	// 200 with none and the client polls again. Zero means 90 s; keep it
	// below the stock client's 100 s request timeout and any proxy's idle
	// timeout.
	PollWait time.Duration
	// IdleTimeout ends a connection that has had no poll waiting for this
	// long: its client left without saying so (a closed tab, a lost
	// network). The stock client polls again as soon as a poll is
	// answered. Zero means 15 s.
	IdleTimeout time.Duration
}

func (lp LongPolling) withDefaults() LongPolling {
	if lp.PollWait <= 0 {
		lp.PollWait = 90 * time.Second
	}
	if lp.IdleTimeout <= 0 {
		lp.IdleTimeout = 15 * time.Second
	}
	return lp
}

// halfConn is an SSE or Long Polling connection of this node, found by its
// token on every request after the first.
type halfConn struct {
	hub    string
	kind   string // TransportServerSentEvents or TransportLongPolling
	bearer string // the access token the connection was negotiated with
	user   string // its user id, "" for none
	tr     *halfTransport
	sse    *sseTransport  // set for SSE
	lp     *pollTransport // set for Long Polling
	// sending is held by the POST whose body is read and processed: one
	// at a time, so a client's concurrent POSTs hold no more than one
	// body in memory.
	sending chan struct{}
}

// halfConns are this node's SSE and Long Polling connections by token.
// Safe for concurrent use.
type halfConns struct {
	mu sync.Mutex // guards m
	m  map[string]*halfConn
}

func newHalfConns() *halfConns { return &halfConns{m: map[string]*halfConn{}} }

func (h *halfConns) get(token string) *halfConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[token]
}

// add registers hc under token unless a connection has it already.
func (h *halfConns) add(token string, hc *halfConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m[token] != nil {
		return false
	}
	// A copy: token is a slice of the request line, which the key would
	// keep alive for the connection's life (gateway.open copies its own).
	h.m[strings.Clone(token)] = hc
	return true
}

func (h *halfConns) remove(token string, hc *halfConn) {
	h.mu.Lock()
	if h.m[token] == hc {
		delete(h.m, token)
	}
	h.mu.Unlock()
}

// maxTokenLen bounds the id query parameter; a connection token is about
// 40 characters.
const maxTokenLen = 256

// connectionToken reads the id query parameter of a request on the
// connection URL.
func connectionToken(query url.Values, hub string) (string, error) {
	values := query["id"]
	switch {
	case len(values) == 0 || values[0] == "":
		return "", fail(http.StatusBadRequest, "missing id: negotiate first (POST /client/negotiate?hub="+url.QueryEscape(hub)+") and pass its connectionToken as id")
	case len(values) > 1:
		return "", fail(http.StatusBadRequest, "more than one id query parameter")
	case len(values[0]) > maxTokenLen:
		return "", fail(http.StatusBadRequest, fmt.Sprintf("id is longer than a connection token can be (%d bytes); pass negotiate's connectionToken", maxTokenLen))
	}
	return values[0], nil
}

// unknownConnection is the answer for a token this node does not know, or
// no longer: the connection never was, or has ended.
func unknownConnection() error {
	return fail(http.StatusNotFound, "unknown or closed connection; negotiate again")
}

// redirectToOwner sends a request for a connection of another node of the
// cluster there: the token carries its node's id (see gateway.Negotiate).
// It reports whether it answered. A 307 keeps the method and body;
// EventSource, fetch and XMLHttpRequest follow it. Browsers and the Node
// client drop the Authorization header on a redirect to another host, so a
// bearer from that header travels on in the access_token query parameter,
// where EventSource and WebSocket clients carry theirs anyway.
func (s *Server) redirectToOwner(c echo.Context, token string) (bool, error) {
	node := gateway.NodeOf(token) // tokens carry their node as connection ids do
	if node == "" || node == s.cfg.Gateway.NodeID() {
		return false, nil
	}
	if s.cfg.NodeURL == nil {
		return true, unknownConnection()
	}
	base, ok := s.cfg.NodeURL(node)
	base = strings.TrimRight(base, "/")
	if !ok || base == "" || base == s.cfg.PublicURL {
		return true, fail(http.StatusNotFound, fmt.Sprintf("the connection's node (%s) is not in the cluster (any more); negotiate again", node))
	}
	r := c.Request()
	query := r.URL.RawQuery
	if b := bearerHeader(r); b != "" && !r.URL.Query().Has("access_token") {
		query += "&access_token=" + url.QueryEscape(b)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	if acceptsEventStream(r) {
		// The Node client's EventSource (the eventsource package) leaves
		// the redirect's response unread, which would hold the socket open
		// until the idle timeout.
		c.Response().Header().Set("Connection", "close")
	}
	return true, c.Redirect(http.StatusTemporaryRedirect, base+r.URL.Path+"?"+query)
}

// checkToken asks the gateway whether token, negotiated for hub, may open
// its transport now, and returns what it was negotiated with.
func (s *Server) checkToken(hub, token string) (gateway.Negotiated, error) {
	n, err := s.cfg.Gateway.Check(token)
	switch {
	case errors.Is(err, gateway.ErrTokenInUse):
		return n, fail(http.StatusConflict, "connection token already has an open transport")
	case err != nil || n.Hub != hub:
		return n, unknownConnection()
	}
	return n, nil
}

// authorizeConn checks the bearer of a request for a connection negotiated
// with the access token negotiated, for user: the same token passes as it
// is (negotiate verified it); any other token (or none) is checked as at
// negotiate and must be for the same hub and user.
func (s *Server) authorizeConn(r *http.Request, hub store.Hub, negotiated, user string) error {
	b := bearer(r)
	if b != "" && b == negotiated {
		return nil
	}
	var id gateway.Identity
	if b == "" {
		var err error
		if id, err = s.identify(r, hub); err != nil {
			return err
		}
	} else {
		got, err := s.verify(r, b, func(base string) string { return negotiate.ClientURL(base, hub.Name) })
		switch {
		case errors.Is(err, negotiate.ErrWrongHub): // a good client token of this gateway, for another hub
			return fail(http.StatusForbidden, fmt.Sprintf("the access token is not for hub %q, which this connection belongs to; send the connection's own token", hub.Name))
		case err != nil:
			return fail(http.StatusUnauthorized, err.Error())
		}
		id.UserID = got.UserID
	}
	if id.UserID != user {
		return fail(http.StatusForbidden, "the access token is for another user than the connection's; send the token the connection was negotiated with")
	}
	return nil
}

// connectInfo is the first request's query and headers for the connect
// event, refused here if they break the rules, before they reach (or count
// against) an upstream.
func connectInfo(r *http.Request, query url.Values) (gateway.ConnectInfo, error) {
	info := gateway.ConnectInfo{Query: clientQuery(query), Headers: clientHeaders(r.Header),
		Trace: trace.SpanContextFromContext(r.Context())} // see traceRequests
	if err := input.ConnectQuery(info.Query); err != nil {
		return info, fail(http.StatusBadRequest, "the connect request's "+err.Error())
	}
	if err := input.ConnectHeaders(info.Headers); err != nil {
		return info, fail(http.StatusRequestHeaderFieldsTooLarge, "the connect request's "+err.Error()+
			" (credentials and WebSocket headers not counted); send fewer or smaller headers")
	}
	return info, nil
}

// acceptsEventStream reports whether a GET asks for Server-Sent Events.
func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
			if mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

// openHalf does what the first request of an SSE or Long Polling
// connection has in common: the checks WebSockets get, and the connection
// caps. It returns the connection to register and its reservation under the caps.
func (s *Server) openHalf(c echo.Context, name string, hub store.Hub, token, kind string) (*halfConn, gateway.ConnectInfo, *reservation, error) {
	r := c.Request()
	if !hubAllows(hub, kind) {
		return nil, gateway.ConnectInfo{}, nil, refuseTransport(hub, kind)
	}
	if err := s.limitConnect(c); err != nil {
		return nil, gateway.ConnectInfo{}, nil, err
	}
	if s.cfg.Gateway.Resumable(token) {
		// A stateful WebSocket connection: only a new WebSocket resumes it.
		return nil, gateway.ConnectInfo{}, nil, fail(http.StatusBadRequest,
			"cannot change transports mid-connection: this connection runs over WebSockets with stateful reconnect")
	}
	n, err := s.checkToken(name, token)
	if err != nil {
		return nil, gateway.ConnectInfo{}, nil, err
	}
	negotiated, user := n.Bearer, n.UserID
	if err := s.authorizeConn(r, hub, negotiated, user); err != nil {
		return nil, gateway.ConnectInfo{}, nil, err
	}
	info, err := connectInfo(r, c.QueryParams())
	if err != nil {
		return nil, info, nil, err
	}
	res, err := s.limits.openConnection(r, name, user)
	if err != nil {
		return nil, info, nil, err
	}
	return &halfConn{hub: name, kind: kind, bearer: negotiated, user: user, sending: make(chan struct{}, 1)}, info, res, nil
}

// serveEventStream serves GET /client/?hub=HUB&id=TOKEN with Accept:
// text/event-stream: the Server-Sent Events transport. The handler holds
// the stream for the connection's life and serves the connection itself.
func (s *Server) serveEventStream(c echo.Context, name string, hub store.Hub, token string) error {
	if s.half.get(token) != nil {
		return fail(http.StatusConflict, "connection token already has an open transport")
	}
	hc, info, res, err := s.openHalf(c, name, hub, token, TransportServerSentEvents)
	if err != nil {
		return err
	}
	defer res.release()
	tr := newSSETransport(c.Response())
	hc.sse, hc.tr = tr, &tr.halfTransport
	if !s.half.add(token, hc) {
		return fail(http.StatusConflict, "connection token already has an open transport")
	}
	defer s.half.remove(token, hc)
	if err := tr.start(); err != nil {
		return nil // the client is gone already
	}
	// The client closing the stream ends the connection.
	ctx := c.Request().Context()
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		select {
		case <-ctx.Done():
			tr.clientLeft(fmt.Errorf("%w: the event stream closed", gateway.ErrClientClosed))
		case <-stop:
		}
	})
	_ = s.cfg.Gateway.Serve(context.Background(), token, tr, info)
	close(stop)
	watch.Wait()
	tr.finish()
	return nil
}

// longPoll serves a GET /client/?hub=HUB&id=TOKEN that is neither a
// WebSocket upgrade nor an event stream: Long Polling. The first one opens
// the connection and is answered at once; the others are polls.
func (s *Server) longPoll(c echo.Context, name string, hub store.Hub, token string) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")
	if hc := s.half.get(token); hc != nil {
		return s.poll(c, name, hub, hc)
	}
	hc, info, res, err := s.openHalf(c, name, hub, token, TransportLongPolling)
	if err != nil {
		return err
	}
	delete(info.Query, "_") // the client's cache buster, new on every poll
	tr := newPollTransport(s.lp, s.noPolls)
	hc.lp, hc.tr = tr, &tr.halfTransport
	if !s.half.add(token, hc) {
		res.release()
		tr.stop()
		return fail(http.StatusConflict, "connection token already has an open transport")
	}
	// The connection outlives this request: the gateway serves it from a
	// goroutine of its own, which gives everything back once Serve returns
	// (Gateway.Shutdown waits for it).
	go func() {
		defer res.release()
		_ = s.cfg.Gateway.Serve(context.Background(), token, tr, info)
		tr.stop()
		s.half.remove(token, hc)
	}()
	return c.NoContent(http.StatusOK)
}

// poll serves a poll of an open Long Polling connection.
func (s *Server) poll(c echo.Context, name string, hub store.Hub, hc *halfConn) error {
	if hc.hub != name {
		return unknownConnection()
	}
	if hc.lp == nil {
		return fail(http.StatusBadRequest, "this connection uses "+hc.kind+": it cannot be polled; read its event stream")
	}
	if err := s.authorizeConn(c.Request(), hub, hc.bearer, hc.user); err != nil {
		return err
	}
	hc.lp.poll(c.Response(), c.Request())
	return nil
}

// connectionFor finds the SSE or Long Polling connection a POST or DELETE
// is for, after the checks every request on the connection URL gets (hub,
// origin, token, owner node, bearer). handled reports that the request was
// answered (a redirect) or refused (err).
func (s *Server) connectionFor(c echo.Context) (hc *halfConn, hub store.Hub, handled bool, err error) {
	r := c.Request()
	name, hub, err := s.hubFrom(r.Context(), c.QueryParams())
	if err != nil {
		_ = s.setCORS(c, nil)
		return nil, hub, true, err
	}
	if err := s.setCORS(c, hub.AllowedOrigins); err != nil {
		return nil, hub, true, err
	}
	token, err := connectionToken(c.QueryParams(), name)
	if err != nil {
		return nil, hub, true, err
	}
	if done, err := s.redirectToOwner(c, token); done {
		return nil, hub, true, err
	}
	hc = s.half.get(token)
	switch {
	case hc != nil && hc.hub != name:
		return nil, hub, true, unknownConnection()
	case hc == nil:
		if n, err := s.cfg.Gateway.Check(token); errors.Is(err, gateway.ErrTokenInUse) || (err == nil && n.Hub == name) {
			return nil, hub, true, fail(http.StatusMethodNotAllowed, r.Method+" is for Server-Sent Events and Long Polling connections; "+
				"this one has a WebSocket (send over it) or no transport yet (open one first)")
		}
		return nil, hub, true, unknownConnection()
	}
	if err := s.authorizeConn(r, hub, hc.bearer, hc.user); err != nil {
		return nil, hub, true, err
	}
	return hc, hub, false, nil
}

// send serves POST /client/?hub=HUB&id=TOKEN: the client's messages on an
// SSE or Long Polling connection, one or more framed hub messages per body
// (text/plain for JSON, application/octet-stream for MessagePack). It
// answers the handshake as soon as the gateway has taken it (200; the
// handshake's answer comes on the event stream or a poll) and later bodies
// once the gateway has processed them: 200, 400 if they broke the
// protocol (which closes the connection, as on a WebSocket), 404 if the
// connection has ended, 413 if the body is larger than the hub's message
// size limit (the connection goes on).
func (s *Server) send(c echo.Context) error {
	hc, hub, handled, err := s.connectionFor(c)
	if handled {
		return err
	}
	r := c.Request()
	select {
	case hc.sending <- struct{}{}:
		defer func() { <-hc.sending }()
	case <-hc.tr.done:
		return fail(http.StatusNotFound, "the connection has ended; negotiate again")
	case <-r.Context().Done():
		return nil
	}
	limit := hub.MaxMessageSize
	if limit <= 0 {
		limit = DefaultMaxMessageSize
	}
	tooLarge := fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than hub %q's message size limit (%d bytes); "+
		"send smaller messages, or fewer in one request", hc.hub, limit))
	if r.ContentLength > int64(limit) {
		return tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	switch {
	case err != nil:
		return fail(http.StatusBadRequest, "reading the body: "+err.Error())
	case len(body) > limit:
		return tooLarge
	case len(body) == 0:
		return fail(http.StatusBadRequest, "empty body: POST one or more hub messages")
	}
	binary := false
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/octet-stream" {
		binary = true
	}
	if hc.tr.takenFrames() == 0 {
		if why := refuseHandshake(hc, body); why != "" {
			hc.tr.clientLeft(errors.New("handshake refused: " + why))
			return fail(http.StatusBadRequest, why)
		}
		// The handshake's POST is answered before the gateway reads it
		// (postEarly says why); its answer, an error too, comes on the
		// event stream or a poll.
		answered, err := hc.tr.postEarly(r.Context(), body, binary)
		switch {
		case errors.Is(err, errConnectionEnded):
			return fail(http.StatusNotFound, "the connection has ended; negotiate again")
		case err != nil:
			return nil // the client gave up on the request
		}
		defer answered()
		// A length, so the flush puts the whole answer on the wire rather
		// than the start of a chunked one.
		c.Response().Header().Set(echo.HeaderContentLength, "0")
		c.Response().WriteHeader(http.StatusOK)
		_ = http.NewResponseController(c.Response()).Flush()
		return nil
	}
	var fault *clientFault
	switch err := hc.tr.post(r.Context(), body, binary); {
	case errors.Is(err, errConnectionEnded):
		return fail(http.StatusNotFound, "the connection has ended; negotiate again")
	case errors.As(err, &fault):
		return fail(http.StatusBadRequest, fault.reason+"; the connection is closed")
	case err != nil:
		return nil // the client gave up on the request
	}
	return c.NoContent(http.StatusOK)
}

// refuseHandshake says why the handshake in body cannot be served over
// hc's transport, "" if it can (or is no handshake: the gateway says what
// is wrong with it). Server-Sent Events carry text only; stateful
// reconnect (handshake version 2) resumes a WebSocket, and the stock
// client asks for it on no other transport.
func refuseHandshake(hc *halfConn, body []byte) string {
	req, _, err := protocol.ParseHandshakeRequest(body)
	if err != nil {
		return ""
	}
	if codec, ok := protocol.CodecFor(req.Protocol); ok && codec.Binary() && hc.sse != nil {
		return fmt.Sprintf("the %s protocol needs binary frames, which Server-Sent Events cannot carry; connect over WebSockets or Long Polling", req.Protocol)
	}
	if req.Version >= 2 {
		return fmt.Sprintf("handshake version %d asks for stateful reconnect, which only WebSockets serve; send version 1 over %s", req.Version, hc.kind)
	}
	return ""
}

// endLongPolling serves DELETE /client/?hub=HUB&id=TOKEN: the stock client
// ends its Long Polling connection (202, as ASP.NET Core answers; a waiting
// poll gets 204).
func (s *Server) endLongPolling(c echo.Context) error {
	hc, _, handled, err := s.connectionFor(c)
	if handled {
		return err
	}
	if hc.lp == nil {
		return fail(http.StatusBadRequest, "this connection uses "+hc.kind+": close its event stream to end it")
	}
	hc.tr.clientLeft(fmt.Errorf("%w: DELETE", gateway.ErrClientClosed))
	return c.NoContent(http.StatusAccepted)
}

// clientPreflight answers the browser's CORS preflight for the connection
// URL: Long Polling's polls and DELETE and both transports' POSTs carry an
// Authorization header, which needs one.
func (s *Server) clientPreflight(c echo.Context) error {
	return s.preflight(c, "GET, POST, DELETE, OPTIONS")
}
