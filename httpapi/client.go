package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/store"
)

// DefaultMaxMessageSize applies to hubs that set no MaxMessageSize.
const DefaultMaxMessageSize = 32 << 10

// negotiateResponse is the final (non-redirect) negotiate answer, version 1.
type negotiateResponse struct {
	NegotiateVersion    int         `json:"negotiateVersion"`
	ConnectionID        string      `json:"connectionId"`
	ConnectionToken     string      `json:"connectionToken"`
	AvailableTransports []transport `json:"availableTransports"`
	// UseStatefulReconnect answers a client that asked for it
	// (useStatefulReconnect=true in the query); never set unasked, which
	// the stock client takes for an error.
	UseStatefulReconnect bool `json:"useStatefulReconnect,omitempty"`
}

type transport struct {
	Transport       string   `json:"transport"`
	TransferFormats []string `json:"transferFormats"`
}

// negotiate answers POST /client/negotiate?hub=HUB: it checks the client's
// token and reserves a connection.
func (s *Server) negotiate(c echo.Context) error {
	r := c.Request()
	query := c.QueryParams() // parsed once, kept by echo
	name, hub, err := s.hubFrom(r.Context(), query)
	if err != nil {
		s.setCORS(c, nil)
		return err
	}
	if err := s.setCORS(c, hub.AllowedOrigins); err != nil {
		return err
	}
	if err := s.limitNegotiate(c); err != nil {
		return err
	}
	id, err := s.identify(r, hub)
	if err != nil {
		return err
	}
	if err := s.limits.checkConnections(r, name, id.UserID); err != nil {
		return err
	}
	id.Trace = trace.SpanContextFromContext(r.Context()) // see traceRequests
	connID, token, err := s.cfg.Gateway.Negotiate(name, id)
	switch {
	case errors.Is(err, gateway.ErrTooManyPending):
		c.Response().Header().Set("Retry-After", "5")
		return fail(http.StatusServiceUnavailable, "too many negotiated connections are waiting for their sockets on this node; retry in a few seconds")
	case err != nil:
		return fail(http.StatusServiceUnavailable, "the gateway is shutting down; retry on another node")
	}
	return writeNegotiateResponse(c.Response(), negotiateResponse{
		NegotiateVersion:     1,
		ConnectionID:         connID,
		ConnectionToken:      token,
		AvailableTransports:  hubTransports(hub),
		UseStatefulReconnect: strings.EqualFold(query.Get("useStatefulReconnect"), "true"),
	})
}

// jsonContentType is the Content-Type of JSON answers, as echo's c.JSON
// sets it. net/http only reads a header's value slice, and Add would copy
// this one (its capacity is full), so every response may share it.
var jsonContentType = []string{echo.MIMEApplicationJSON}

// varyOrigin is the Vary header of client endpoints' answers, which depend
// on the request's Origin (setCORS).
var varyOrigin = []string{"Origin"}

// negotiateBuffers hold negotiate answers while they are built.
var negotiateBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeNegotiateResponse answers 200 with resp as JSON, the same bytes
// echo's c.JSON writes (encoding/json with HTML escaping, then a newline).
// It builds them by hand: negotiate is on every connect's path and the
// encoder cost five allocations per answer, where the only variable parts
// are two ids and a flag.
func writeNegotiateResponse(w *echo.Response, resp negotiateResponse) error {
	bp := negotiateBuffers.Get().(*[]byte)
	defer negotiateBuffers.Put(bp)
	b := appendNegotiateResponse((*bp)[:0], resp)
	*bp = b
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	return err
}

// appendNegotiateResponse appends resp as encoding/json's Encoder writes it.
func appendNegotiateResponse(b []byte, resp negotiateResponse) []byte {
	b = append(b, `{"negotiateVersion":`...)
	b = strconv.AppendInt(b, int64(resp.NegotiateVersion), 10)
	b = append(b, `,"connectionId":`...)
	b = appendJSONString(b, resp.ConnectionID)
	b = append(b, `,"connectionToken":`...)
	b = appendJSONString(b, resp.ConnectionToken)
	b = append(b, `,"availableTransports":`...)
	b = append(b, transportsJSON(resp.AvailableTransports)...)
	if resp.UseStatefulReconnect {
		b = append(b, `,"useStatefulReconnect":true`...)
	}
	return append(b, "}\n"...)
}

// allTransportsJSON is allTransports as JSON, the list nearly every hub
// offers.
var allTransportsJSON = mustMarshal(allTransports)

// transportsJSON is list as JSON.
func transportsJSON(list []transport) []byte {
	if len(list) == len(allTransports) { // hubTransports keeps allTransports' order
		return allTransportsJSON
	}
	return mustMarshal(list)
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only for values whose types always marshal
	}
	return b
}

// appendJSONString appends s as encoding/json quotes it. Strings of
// printable ASCII that needs no escaping (connection ids and tokens are)
// are copied as they are; anything else goes through encoding/json, which
// escapes HTML characters as c.JSON's encoder does.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return append(b, mustMarshal(s)...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// negotiatePreflight answers the browser's CORS preflight for negotiate.
func (s *Server) negotiatePreflight(c echo.Context) error {
	return s.preflight(c, "POST, OPTIONS")
}

// preflight answers a CORS preflight for a client endpoint serving methods.
func (s *Server) preflight(c echo.Context, methods string) error {
	var origins []string
	if _, hub, err := s.hubFromQuery(c.Request()); err == nil {
		origins = hub.AllowedOrigins
	}
	if err := s.setCORS(c, origins); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Access-Control-Allow-Methods", methods)
	if req := c.Request().Header.Get("Access-Control-Request-Headers"); headerNameList(req) {
		h.Set("Access-Control-Allow-Headers", req)
	} else {
		h.Set("Access-Control-Allow-Headers", "authorization, content-type, x-requested-with, x-signalr-user-agent")
	}
	h.Set("Access-Control-Max-Age", "600")
	return c.NoContent(http.StatusNoContent)
}

// setCORS applies the origin check (checkOrigin) to a negotiate request and
// echoes an allowed Origin with credentials, as the stock client (fetch
// with credentials: "include") requires.
// headerNameList reports whether v is what a browser sends as
// Access-Control-Request-Headers: a short comma-separated list of header
// names. Only then is it echoed; the preflight answers anything else, the
// sender's own bytes of any length, with the stock client's headers.
func headerNameList(v string) bool {
	if v == "" || len(v) > 1024 {
		return false
	}
	for name := range strings.SplitSeq(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return false
		}
		for i := 0; i < len(name); i++ {
			if !httpguts.IsTokenRune(rune(name[i])) {
				return false
			}
		}
	}
	return true
}

func (s *Server) setCORS(c echo.Context, hubOrigins []string) error {
	h := c.Response().Header()
	if _, ok := h["Vary"]; ok {
		h.Add("Vary", "Origin")
	} else {
		h["Vary"] = varyOrigin // shared, as jsonContentType is
	}
	origin := c.Request().Header.Get("Origin")
	if err := s.checkOrigin(c.Request(), hubOrigins); err != nil || origin == "" {
		return err
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	return nil
}

// checkOrigin decides whether the page a browser request comes from may use
// a hub, for negotiate (CORS) and the WebSocket alike:
//
//   - no Origin header: allowed (not a browser's cross-origin request);
//   - "null" (sandboxed frames, file: pages, some redirects) or anything
//     that is not scheme://host[:port]: refused, since it names no page
//     anyone could list;
//   - the gateway's own origin (as the request reached it, or the public
//     URL's): allowed;
//   - else the hub's allowedOrigins, or the server-wide list when the hub
//     has none, decide: scheme, host and port must match (host without
//     regard to case, default ports implied); "*" in a list allows any;
//   - no list at all: any origin, as Azure SignalR's default CORS setting
//     ("*") allows. Clients authenticate with bearer tokens, never
//     cookies, so a page on another origin gains nothing a script outside
//     any browser could not do.
//
// The error is a 403 saying what to configure.
func (s *Server) checkOrigin(r *http.Request, hubOrigins []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	o, ok := normalOrigin(origin)
	if !ok {
		return fail(http.StatusForbidden, fmt.Sprintf("origin %q is not allowed: only pages served from an origin such as "+
			"https://app.example.com may use the gateway, and only when the hub's allowedOrigins (or --allowed-origin) lists it or lists none", origin))
	}
	if self, _ := normalOrigin(baseURL(r)); o == self {
		return nil
	}
	if u, err := url.Parse(s.cfg.PublicURL); err == nil && u.Host != "" {
		if self, _ := normalOrigin(u.Scheme + "://" + u.Host); o == self {
			return nil // the public URL may have a path; its origin has none
		}
	}
	allowed := hubOrigins
	if len(allowed) == 0 {
		allowed = s.cfg.AllowedOrigins
	}
	if len(allowed) == 0 {
		return nil
	}
	for _, a := range allowed {
		if a == "*" {
			return nil
		}
		if n, ok := normalOrigin(a); ok && n == o {
			return nil
		}
	}
	return fail(http.StatusForbidden, fmt.Sprintf("origin %q is not allowed; add it to the hub's allowedOrigins", origin))
}

// normalOrigin is origin as scheme://host[:port], with scheme and host in
// lower case and the scheme's default port left out; ok is false for "null"
// and for anything but a bare origin.
func normalOrigin(origin string) (string, bool) {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" || scheme == "ws" && port == "80" || scheme == "wss" && port == "443" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// connect serves GET /client/?hub=HUB&id=TOKEN, for the transport the
// request asks for: a WebSocket upgrade, an event stream (Accept:
// text/event-stream) or else Long Polling.
func (s *Server) connect(c echo.Context) error {
	r := c.Request()
	name, hub, err := s.hubFrom(r.Context(), c.QueryParams()) // parsed once, kept by echo
	if err != nil {
		_ = s.setCORS(c, nil)
		return err
	}
	if err := s.setCORS(c, hub.AllowedOrigins); err != nil {
		return err
	}
	token, err := connectionToken(c.QueryParams(), name)
	if err != nil {
		return err
	}
	if done, err := s.redirectToOwner(c, token); done {
		return err
	}
	switch {
	case isWebSocketUpgrade(r):
		return s.connectWebSocket(c, name, hub, token)
	case acceptsEventStream(r):
		return s.serveEventStream(c, name, hub, token)
	}
	return s.longPoll(c, name, hub, token)
}

// connectWebSocket serves the WebSocket transport.
func (s *Server) connectWebSocket(c echo.Context, name string, hub store.Hub, token string) error {
	r := c.Request()
	if !hubAllows(hub, TransportWebSockets) {
		return refuseTransport(hub, TransportWebSockets)
	}
	if err := s.limitConnect(c); err != nil {
		return err
	}
	if s.half.get(token) != nil {
		return fail(http.StatusConflict, "connection token already has an open transport")
	}
	n, err := s.checkToken(name, token)
	if err != nil {
		return err
	}
	negotiated := n.Bearer
	// The access token was verified at negotiate, moments ago; the same
	// token on the socket needs no second signature check. Any other token
	// (or none, where the hub needs one) is checked as at negotiate.
	if b := bearer(r); b == "" || b != negotiated {
		if _, err := s.identify(r, hub); err != nil {
			return err
		}
	}
	info, err := connectInfo(r, c.QueryParams())
	if err != nil {
		return err
	}

	res, err := s.limits.openConnection(r, name, n.UserID)
	if err != nil {
		return err
	}
	// The origin was checked above, as for negotiate; Accept's own check
	// (host only, scheme ignored) would differ.
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true}
	sb := &smallBuffers{ResponseWriter: c.Response().Writer}
	ws, err := websocket.Accept(sb, r, opts)
	if err != nil {
		res.release()
		return nil // Accept has answered the client already
	}
	limit := hub.MaxMessageSize
	if limit <= 0 {
		limit = DefaultMaxMessageSize
	}
	ws.SetReadLimit(int64(limit))
	// The socket outlives nothing of the request: its life is the gateway's.
	// Serving it from a fresh goroutine lets this handler's goroutine, whose
	// stack grew through routing, auth and the upgrade, end now; once the
	// connection is idle, the gateway moves its wait to a goroutine with a
	// smaller stack still (ServeWaiting).
	tr := &patientReads{wsTransport: &wsTransport{ws: ws, idle: sb.idle}}
	go func() {
		_ = s.cfg.Gateway.ServeWaiting(context.Background(), token, tr, info, res.release)
	}()
	return nil
}

// patientReads is the transport the gateway serves a socket with: a read
// whose context ends leaves the socket open. coder/websocket closes the TCP
// connection at once when a read's context ends, so a client the gateway
// gives up on (no handshake within HandshakeTimeout) would see the
// connection drop (1006) instead of the close frame the gateway sends next
// (1002, "no handshake"). A read whose context can end runs in a goroutine
// of its own on a context that cannot; if the caller's context ends first,
// ReadFrame returns its error and the read stays pending: the next ReadFrame
// takes its result, and Close, whose close handshake ends it, waits for it.
// Reads on a context that cannot end (the gateway's read loop) go straight
// to the socket.
type patientReads struct {
	*wsTransport

	mu      sync.Mutex       // guards the fields below
	pending chan frameResult // a read that outlived its caller's context
	closed  bool
	reads   sync.WaitGroup // read goroutines; Add only under mu while !closed
}

type frameResult struct {
	data   []byte
	binary bool
	err    error
}

func (t *patientReads) ReadFrame(ctx context.Context) ([]byte, bool, error) {
	t.mu.Lock()
	ch := t.pending
	t.pending = nil
	if ch == nil {
		if ctx.Done() == nil || t.closed {
			t.mu.Unlock()
			return t.wsTransport.ReadFrame(ctx)
		}
		ch = make(chan frameResult, 1)
		t.reads.Add(1)
		go func() {
			defer t.reads.Done()
			data, binary, err := t.wsTransport.ReadFrame(context.WithoutCancel(ctx))
			ch <- frameResult{data, binary, err}
		}()
	}
	t.mu.Unlock()
	select {
	case r := <-ch:
		return r.data, r.binary, r.err
	case <-ctx.Done():
		t.mu.Lock()
		t.pending = ch
		t.mu.Unlock()
		return nil, false, ctx.Err()
	}
}

// WaitReadable is wsTransport's, unless a read is pending (it then has
// the next frame) or the transport is closed (ReadFrame says so).
func (t *patientReads) WaitReadable(interruptible bool) error {
	t.mu.Lock()
	busy := t.pending != nil || t.closed
	t.mu.Unlock()
	if busy {
		return nil
	}
	return t.wsTransport.WaitReadable(interruptible)
}

func (t *patientReads) Close(code int, reason string) error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	err := t.wsTransport.Close(code, reason)
	t.reads.Wait()
	return err
}

// hubFromQuery reads and checks the hub query parameter.
func (s *Server) hubFromQuery(r *http.Request) (string, store.Hub, error) {
	return s.hubFrom(r.Context(), r.URL.Query())
}

// hubFrom reads and checks the hub parameter of a parsed query.
func (s *Server) hubFrom(ctx context.Context, query url.Values) (string, store.Hub, error) {
	values := query["hub"]
	switch {
	case len(values) == 0 || values[0] == "":
		return "", store.Hub{}, fail(http.StatusBadRequest, "missing hub query parameter")
	case len(values) > 1:
		return "", store.Hub{}, fail(http.StatusBadRequest, "more than one hub query parameter")
	}
	hub, ae := s.findHub(ctx, values[0])
	if ae != nil {
		return "", store.Hub{}, ae
	}
	// The store's copy of the name, not the query's: that one is a slice of
	// the request line, which the name would keep alive for as long as the
	// negotiation or connection it is stored with.
	return hub.Name, hub, nil
}

// identify checks the client's token, if any, as a token for hub at this
// gateway's client endpoint: its aud must be the hub's client URL
// (…/client/?hub=NAME, as a string or in a list), which binds it to exactly
// that hub, compared case-sensitively as every hub name is. Without a token
// the client is anonymous, which the hub must allow.
func (s *Server) identify(r *http.Request, hub store.Hub) (gateway.Identity, error) {
	token := bearer(r)
	if token == "" {
		if hub.AllowAnonymous {
			return gateway.Identity{}, nil
		}
		return gateway.Identity{}, fail(http.StatusUnauthorized,
			fmt.Sprintf("hub %q requires an access token: send Authorization: Bearer TOKEN or the access_token query parameter", hub.Name))
	}
	id, err := s.verify(r, token, func(base string) string { return negotiate.ClientURL(base, hub.Name) })
	if err != nil {
		return gateway.Identity{}, fail(http.StatusUnauthorized, err.Error())
	}
	// The bearer is kept with the negotiation (and a stateful connection):
	// a copy, since the token is a slice of the request line or of a header
	// value, either of which may be padded far past the token itself.
	return gateway.Identity{UserID: id.UserID, Claims: id.Claims, Bearer: strings.Clone(token)}, nil
}

// verify checks a token whose audience is audience(base), base being this
// gateway as the request reached it or, when the token is for another
// address, the configured public URL.
func (s *Server) verify(r *http.Request, token string, audience func(base string) string) (*negotiate.Identity, error) {
	id, err := s.cfg.Verifier.Verify(token, audience(baseURL(r)))
	if errors.Is(err, negotiate.ErrWrongAudience) && s.cfg.PublicURL != "" {
		id2, err2 := s.cfg.Verifier.Verify(token, audience(s.cfg.PublicURL))
		if !errors.Is(err2, negotiate.ErrWrongAudience) {
			return id2, err2
		}
	}
	return id, err
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// clientQuery is the connect request's query without the secrets in it
// (access_token, and id, the connection token).
func clientQuery(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		if k != "access_token" && k != "id" {
			// Copies: the parsed values are slices of the request line,
			// which the connection would keep alive with them.
			vs := make([]string, len(v))
			for i := range v {
				vs[i] = strings.Clone(v[i])
			}
			out[strings.Clone(k)] = vs
		}
	}
	return out
}

// clientHeaders is the connect request's headers without credentials and
// WebSocket mechanics, for the connect event.
func clientHeaders(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		switch k {
		case "Authorization", "Cookie", "Sec-Websocket-Key", "Sec-Websocket-Extensions", "Connection", "Upgrade":
			continue
		}
		out[k] = v
	}
	return out
}

// ClientLimits protect the many clients from the one: caps on open
// WebSockets per user and per source address, and rates of negotiate and
// connect requests per source address. The source address is the TCP peer;
// proxy headers are not trusted. Zero fields mean the defaults; a negative
// cap or rate means no limit.
type ClientLimits struct {
	// ConnectionsPerUser caps the open WebSockets of one user id (the
	// access token's) in one hub on this node. Anonymous connections have
	// no user and only the address cap applies. Zero means 5000: far more
	// than one person's tabs and devices, room for a service identity that
	// many processes share, and a bound (about 85 MiB of idle sockets) on
	// what one leaked token can hold.
	ConnectionsPerUser int
	// ConnectionsPerAddress caps the open WebSockets from one source
	// address on this node: one IPv4 address, or one IPv6 /64 (a host
	// commonly holds a whole /64). Zero means 1000, room for an office or
	// a carrier-grade NAT.
	ConnectionsPerAddress int
	// NegotiateRate and NegotiateBurst bound negotiate requests per source
	// address: NegotiateBurst at once, refilled at NegotiateRate per
	// second. Zero means 20 per second, burst 100.
	NegotiateRate  float64
	NegotiateBurst int
	// ConnectRate and ConnectBurst do the same for WebSocket upgrades.
	// Zero means 20 per second, burst 100.
	ConnectRate  float64
	ConnectBurst int
	// Exempt are source networks the per-address limits do not apply to.
	// Nil means loopback (127.0.0.0/8, ::1): a reverse proxy on the
	// gateway's host makes every client come from there. Empty (not nil)
	// exempts nothing.
	Exempt []netip.Prefix
}

func (l ClientLimits) withDefaults() ClientLimits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.ConnectionsPerUser, 5000)
	def(&l.ConnectionsPerAddress, 1000)
	def(&l.NegotiateBurst, 100)
	def(&l.ConnectBurst, 100)
	if l.NegotiateRate == 0 {
		l.NegotiateRate = 20
	}
	if l.ConnectRate == 0 {
		l.ConnectRate = 20
	}
	if l.Exempt == nil {
		l.Exempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	return l
}

// clientLimits enforces ClientLimits. Safe for concurrent use.
type clientLimits struct {
	cfg                ClientLimits
	now                func() time.Time
	negotiate, connect *sourceRates

	mu      sync.Mutex // guards the maps below
	users   map[userKey]int
	sources map[netip.Prefix]int

	refusedUser, refusedSource, refusedNegotiate, refusedConnect atomic.Int64
}

type userKey struct{ hub, user string }

func newClientLimits(cfg ClientLimits) *clientLimits {
	cfg = cfg.withDefaults()
	return &clientLimits{
		cfg:       cfg,
		now:       time.Now,
		negotiate: newSourceRates(cfg.NegotiateRate, cfg.NegotiateBurst),
		connect:   newSourceRates(cfg.ConnectRate, cfg.ConnectBurst),
		users:     map[userKey]int{},
		sources:   map[netip.Prefix]int{},
	}
}

// sourceKey is a prefix per-address limits count a client under, with
// its multiple of each limit.
type sourceKey struct {
	prefix netip.Prefix
	times  int
}

// sourceKeys are the prefixes an address counts under (sourceKeysOf).
type sourceKeys struct {
	keys [3]sourceKey
	n    int
}

func (k *sourceKeys) list() []sourceKey { return k.keys[:k.n] }

// sourceKeysOf: an IPv4 address counts alone. An IPv6 address counts by
// its /64, which one host commonly holds whole, and also by the /56 and
// the /48 around it at 4 and 16 times each limit: a site's or a tunnel's
// allocation, which one party may hold whole too, would otherwise get 256
// or 65,536 budgets of its own.
func sourceKeysOf(a netip.Addr) sourceKeys {
	if !a.Is6() {
		p, _ := a.Prefix(32)
		return sourceKeys{keys: [3]sourceKey{{p, 1}}, n: 1}
	}
	p64, _ := a.Prefix(64)
	p56, _ := a.Prefix(56)
	p48, _ := a.Prefix(48)
	return sourceKeys{keys: [3]sourceKey{{p64, 1}, {p56, 4}, {p48, 16}}, n: 3}
}

// source is the address per-address limits count r under; ok is false
// when they do not apply (an exempt network, an address that cannot be
// read).
func (l *clientLimits) source(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	a := ap.Addr().Unmap().WithZone("")
	for _, p := range l.cfg.Exempt {
		if p.Contains(a) {
			return netip.Addr{}, false
		}
	}
	return a, true
}

// limitNegotiate applies the negotiate rate of r's source address.
func (s *Server) limitNegotiate(c echo.Context) error {
	return s.limits.rate(c, s.limits.negotiate, &s.limits.refusedNegotiate, "negotiate")
}

// limitConnect applies the connect rate of r's source address.
func (s *Server) limitConnect(c echo.Context) error {
	return s.limits.rate(c, s.limits.connect, &s.limits.refusedConnect, "WebSocket connect")
}

func (l *clientLimits) rate(c echo.Context, rates *sourceRates, refused *atomic.Int64, what string) error {
	src, ok := l.source(c.Request())
	if !ok || rates == nil {
		return nil
	}
	keys := sourceKeysOf(src)
	wait := rates.take(keys.list(), l.now())
	if wait <= 0 {
		return nil
	}
	refused.Add(1)
	secs := int(math.Ceil(wait.Seconds()))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return fail(http.StatusTooManyRequests, fmt.Sprintf("too many %s requests from your address or its network (at most %d at once, then %g per second, from an address); retry in %d s",
		what, rates.burst, float64(rates.limit), secs))
}

// checkConnections refuses, at negotiate, a connection the caps would
// refuse at connect, so the client learns why from negotiate's answer (a
// browser cannot read the status of a failed upgrade). It reserves nothing.
func (l *clientLimits) checkConnections(r *http.Request, hub, user string) error {
	src, hasSrc := l.source(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fullLocked(hub, user, src, hasSrc)
}

// openConnection reserves a connection of user in hub from r's address,
// or says which cap is full. The reservation's release gives it back, once.
func (l *clientLimits) openConnection(r *http.Request, hub, user string) (*reservation, error) {
	src, hasSrc := l.source(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.fullLocked(hub, user, src, hasSrc); err != nil {
		return nil, err
	}
	res := &reservation{l: l, user: userKey{hub, user}, src: src, hasSrc: hasSrc}
	if user != "" {
		l.users[res.user]++
	}
	if hasSrc {
		keys := sourceKeysOf(src)
		for _, k := range keys.list() {
			l.sources[k.prefix]++
		}
	}
	return res, nil
}

// reservation is one connection's place under the caps, held for the
// connection's life. A struct rather than a closure over a sync.Once:
// about 50 bytes less for every open connection.
type reservation struct {
	l        *clientLimits
	user     userKey    // user "" counts against no user's cap
	src      netip.Addr // counted under sourceKeysOf(src), if hasSrc
	hasSrc   bool
	released atomic.Bool
}

// release gives the reservation back; later calls do nothing.
func (r *reservation) release() {
	if r.released.Swap(true) {
		return
	}
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.user.user != "" {
		if l.users[r.user]--; l.users[r.user] <= 0 {
			delete(l.users, r.user)
		}
	}
	if r.hasSrc {
		keys := sourceKeysOf(r.src)
		for _, k := range keys.list() {
			if l.sources[k.prefix]--; l.sources[k.prefix] <= 0 {
				delete(l.sources, k.prefix)
			}
		}
	}
}

// fullLocked says which cap a new connection would pass, counting it
// refused; the caller holds l.mu.
func (l *clientLimits) fullLocked(hub, user string, src netip.Addr, hasSrc bool) error {
	if max := l.cfg.ConnectionsPerUser; user != "" && max > 0 && l.users[userKey{hub, user}] >= max {
		l.refusedUser.Add(1)
		return fail(http.StatusTooManyRequests, fmt.Sprintf("user %q already has %d connections to hub %q on this node, the most allowed; close one first", user, max, hub))
	}
	if max := l.cfg.ConnectionsPerAddress; hasSrc && max > 0 {
		keys := sourceKeysOf(src)
		for i, k := range keys.list() {
			if l.sources[k.prefix] < max*k.times {
				continue
			}
			l.refusedSource.Add(1)
			if i == 0 {
				return fail(http.StatusTooManyRequests, fmt.Sprintf("your address already has %d connections to this node, the most allowed; close one first", max))
			}
			return fail(http.StatusTooManyRequests, fmt.Sprintf("your network %s already has %d connections to this node, the most allowed for it; close one first", k.prefix, max*k.times))
		}
	}
	return nil
}

// status is what /admin/status shows of the limits: the settings, what
// they count now and how many requests they refused.
func (l *clientLimits) status() map[string]any {
	l.mu.Lock()
	users, sources := len(l.users), len(l.sources)
	l.mu.Unlock()
	exempt := make([]string, len(l.cfg.Exempt))
	for i, p := range l.cfg.Exempt {
		exempt[i] = p.String()
	}
	return map[string]any{
		"connectionsPerUser":    l.cfg.ConnectionsPerUser,
		"connectionsPerAddress": l.cfg.ConnectionsPerAddress,
		"negotiateRate":         l.cfg.NegotiateRate,
		"negotiateBurst":        l.cfg.NegotiateBurst,
		"connectRate":           l.cfg.ConnectRate,
		"connectBurst":          l.cfg.ConnectBurst,
		"exempt":                exempt,
		"usersConnected":        users,
		"addressesConnected":    sources,
		"addressesRateTracked":  l.negotiate.size() + l.connect.size(),
		"refused": map[string]int64{
			"connectionsPerUser":    l.refusedUser.Load(),
			"connectionsPerAddress": l.refusedSource.Load(),
			"negotiateRate":         l.refusedNegotiate.Load(),
			"connectRate":           l.refusedConnect.Load(),
		},
	}
}

// sourceRates is a token bucket (golang.org/x/time/rate) per source
// address. A bucket that has filled up again is the same as none, so full
// buckets are dropped now and then, which keeps the map as large as the
// set of addresses seen within about burst/rate seconds.
type sourceRates struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex // guards the fields below
	buckets   map[netip.Prefix]*rate.Limiter
	lastSweep time.Time
}

// sweepSize is the number of buckets past which adding one first drops
// the full ones (at most once a second).
const sweepSize = 1024

// newSourceRates returns nil (no limit) for a negative rate.
func newSourceRates(perSecond float64, burst int) *sourceRates {
	if perSecond < 0 || burst < 0 {
		return nil
	}
	return &sourceRates{limit: rate.Limit(perSecond), burst: burst, buckets: map[netip.Prefix]*rate.Limiter{}}
}

// take takes a token from the bucket of each key at now, a key's bucket
// holding its multiple of the rate and burst; a positive result is how
// long until every one has a token, and nothing was taken.
func (r *sourceRates) take(keys []sourceKey, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var reserved [len(sourceKeys{}.keys)]*rate.Reservation
	var wait time.Duration
	for i, k := range keys {
		res := r.bucket(k, now).ReserveN(now, 1)
		if !res.OK() { // a burst of 0: nothing is ever allowed
			wait = max(wait, time.Hour)
			continue
		}
		reserved[i] = res
		wait = max(wait, res.DelayFrom(now))
	}
	if wait > 0 {
		for _, res := range reserved[:len(keys)] {
			if res != nil {
				res.CancelAt(now)
			}
		}
	}
	return wait
}

// bucket is k's bucket, made if need be; the caller holds r.mu.
func (r *sourceRates) bucket(k sourceKey, now time.Time) *rate.Limiter {
	b := r.buckets[k.prefix]
	if b == nil {
		if len(r.buckets) >= sweepSize && now.Sub(r.lastSweep) >= time.Second {
			r.lastSweep = now
			for p, v := range r.buckets {
				if v.TokensAt(now) >= float64(v.Burst()) {
					delete(r.buckets, p)
				}
			}
		}
		b = rate.NewLimiter(r.limit*rate.Limit(k.times), r.burst*k.times)
		r.buckets[k.prefix] = b
	}
	return b
}

func (r *sourceRates) size() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buckets)
}
