package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

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
}

type transport struct {
	Transport       string   `json:"transport"`
	TransferFormats []string `json:"transferFormats"`
}

// Only WebSockets with the JSON (text) protocol are served so far; a client
// asking for anything else fails with the stock client's own clear message.
var transports = []transport{{Transport: "WebSockets", TransferFormats: []string{"Text"}}}

// negotiate answers POST /client/negotiate?hub=HUB: it checks the client's
// token and reserves a connection.
func (s *Server) negotiate(c echo.Context) error {
	r := c.Request()
	name, hub, err := s.hubFromQuery(r)
	if err != nil {
		s.setCORS(c, nil)
		return err
	}
	if err := s.setCORS(c, hub.AllowedOrigins); err != nil {
		return err
	}
	id, err := s.identify(r, hub, "/client/")
	if err != nil {
		return err
	}
	connID, token, err := s.cfg.Gateway.Negotiate(name, id)
	if err != nil {
		return fail(http.StatusServiceUnavailable, "the gateway is shutting down; retry on another node")
	}
	return c.JSON(http.StatusOK, negotiateResponse{
		NegotiateVersion:    1,
		ConnectionID:        connID,
		ConnectionToken:     token,
		AvailableTransports: transports,
	})
}

// negotiatePreflight answers the browser's CORS preflight for negotiate.
func (s *Server) negotiatePreflight(c echo.Context) error {
	var origins []string
	if _, hub, err := s.hubFromQuery(c.Request()); err == nil {
		origins = hub.AllowedOrigins
	}
	if err := s.setCORS(c, origins); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	if req := c.Request().Header.Get("Access-Control-Request-Headers"); req != "" {
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
func (s *Server) setCORS(c echo.Context, hubOrigins []string) error {
	h := c.Response().Header()
	h.Add("Vary", "Origin")
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
	if self, _ := normalOrigin(s.cfg.PublicURL); o == self {
		return nil
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

// connect serves GET /client/?hub=HUB&id=TOKEN: the WebSocket transport.
func (s *Server) connect(c echo.Context) error {
	r := c.Request()
	name, hub, err := s.hubFromQuery(r)
	if err != nil {
		return err
	}
	if err := s.checkOrigin(r, hub.AllowedOrigins); err != nil {
		return err
	}
	token := r.URL.Query().Get("id")
	if token == "" {
		return fail(http.StatusBadRequest, "missing id: negotiate first (POST /client/negotiate?hub="+url.QueryEscape(name)+") and pass its connectionToken as id")
	}
	tokenHub, negotiated, err := s.cfg.Gateway.Check(token)
	switch {
	case errors.Is(err, gateway.ErrTokenInUse):
		return fail(http.StatusConflict, "connection token already has an open socket")
	case err != nil || tokenHub != name:
		return fail(http.StatusNotFound, "unknown or closed connection; negotiate again")
	}
	if !isWebSocketUpgrade(r) {
		return fail(http.StatusBadRequest, "only the WebSockets transport is served; send a WebSocket upgrade request")
	}
	// The access token was verified at negotiate, moments ago; the same
	// token on the socket needs no second signature check. Any other token
	// (or none, where the hub needs one) is checked as at negotiate.
	if b := bearer(r); b == "" || b != negotiated {
		if _, err := s.identify(r, hub, "/client/"); err != nil {
			return err
		}
	}

	// The origin was checked above, as for negotiate; Accept's own check
	// (host only, scheme ignored) would differ.
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true}
	ws, err := websocket.Accept(smallBuffers{c.Response().Writer}, r, opts)
	if err != nil {
		return nil // Accept has answered the client already
	}
	limit := hub.MaxMessageSize
	if limit <= 0 {
		limit = DefaultMaxMessageSize
	}
	ws.SetReadLimit(int64(limit))
	info := gateway.ConnectInfo{Query: clientQuery(r.URL.Query()), Headers: clientHeaders(r.Header)}
	// The socket outlives nothing of the request: its life is the gateway's.
	// Serving it from a fresh goroutine lets this handler's goroutine, whose
	// stack grew through routing, auth and the upgrade, end now; an idle
	// connection then costs one small stack instead of a grown one.
	go func() {
		_ = s.cfg.Gateway.Serve(context.Background(), token, &patientReads{wsTransport: &wsTransport{ws: ws}}, info)
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
	values := r.URL.Query()["hub"]
	switch {
	case len(values) == 0 || values[0] == "":
		return "", store.Hub{}, fail(http.StatusBadRequest, "missing hub query parameter")
	case len(values) > 1:
		return "", store.Hub{}, fail(http.StatusBadRequest, "more than one hub query parameter")
	}
	hub, ae := s.findHub(r.Context(), values[0])
	if ae != nil {
		return "", store.Hub{}, ae
	}
	return values[0], hub, nil
}

// identify checks the client's token, if any, against the client endpoint
// audience. Without a token the client is anonymous, which the hub must
// allow.
func (s *Server) identify(r *http.Request, hub store.Hub, path string) (gateway.Identity, error) {
	token := bearer(r)
	if token == "" {
		if hub.AllowAnonymous {
			return gateway.Identity{}, nil
		}
		return gateway.Identity{}, fail(http.StatusUnauthorized,
			fmt.Sprintf("hub %q requires an access token: send Authorization: Bearer TOKEN or the access_token query parameter", hub.Name))
	}
	id, err := s.verify(r, token, path)
	if err != nil {
		return gateway.Identity{}, fail(http.StatusUnauthorized, err.Error())
	}
	if tokenHub := audienceHub(id.Claims["aud"]); tokenHub != "" && !strings.EqualFold(tokenHub, hub.Name) {
		return gateway.Identity{}, fail(http.StatusUnauthorized, fmt.Sprintf("token is for hub %q, not %q", tokenHub, hub.Name))
	}
	return gateway.Identity{UserID: id.UserID, Claims: id.Claims, Bearer: token}, nil
}

// audienceHub is the hub query parameter of a client token's audience
// (Azure's SDKs issue aud = ".../client/?hub=NAME"). The audience check
// ignores queries, so the hub is compared here: a token for one hub must
// not open another. "" when the audience names no hub.
func audienceHub(aud any) string {
	s, ok := aud.(string)
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Query().Get("hub")
}

// verify checks a token whose audience is path on this gateway, reached
// either as the request says or at the configured public URL.
func (s *Server) verify(r *http.Request, token, path string) (*negotiate.Identity, error) {
	id, err := s.cfg.Verifier.Verify(token, baseURL(r)+path)
	if err != nil && s.cfg.PublicURL != "" {
		if id2, err2 := s.cfg.Verifier.Verify(token, s.cfg.PublicURL+path); err2 == nil {
			return id2, nil
		}
	}
	return id, err
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// clientQuery is the connect request's query without the secrets in it.
func clientQuery(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		if k != "access_token" && k != "id" {
			out[k] = v
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
