package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-gw/switchboard/delivery"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/internal/tracing"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/store"
)

// Config wires a Server. Gateway, Store and Verifier are required.
type Config struct {
	Gateway *gateway.Gateway
	// Store holds the configuration. Each call gets the request's context,
	// which RequestTimeout bounds on admin and REST routes.
	Store    Store
	Verifier *negotiate.Verifier
	// Identities, when set, lets REST and admin callers authenticate with
	// tokens of trusted OpenID Connect issuers (docs/identity.md). Nil
	// accepts access-key tokens and the admin key only.
	Identities Identities
	// UpstreamsChanged is called after the admin API changed upstreams or
	// hubs, so the dispatcher can reload them. Nil means nobody listens.
	UpstreamsChanged func()
	// PublicURL is the gateway's external base URL (http://host:port), used
	// in connection strings and accepted as token audience besides the
	// request's own URL. Empty means the request's URL only.
	PublicURL string
	// AllowedOrigins applies to hubs that set none. Empty means any origin.
	AllowedOrigins []string
	// Deliveries feeds /admin/status and the upstream delivery logs, and
	// checks new upstreams before they are saved. Nil shows no upstream
	// state and registers upstreams without checking them (tests only).
	Deliveries Deliveries
	// NodeStatus adds the node's own counters to /admin/status. Nil adds
	// nothing.
	NodeStatus func() map[string]any
	// Cluster describes the cluster for the admin overview (the dashboard).
	// Nil means a single node.
	Cluster func() ClusterView
	// Readiness answers /readyz. Nil means always ready.
	Readiness func(ctx context.Context) Readiness
	// RequestTimeout bounds each admin and REST request, and with it every
	// store and bus call it makes. Zero means 10 s.
	RequestTimeout time.Duration
	// MaxActions is the most actions one POST /api/hubs/{hub}/:actions may
	// carry (webhook replies have the same limit, set on the dispatcher).
	// Zero means actions.DefaultMaxActions (100).
	MaxActions int
	// MaxTokenLifetime is the longest lifetime :generateToken issues a token
	// for; a longer minutesToExpire is refused with 400. Zero means
	// negotiate.DefaultMaxLifetime (24 h). The Verifier enforces its own
	// bound on the tokens it accepts (negotiate.WithMaxLifetime).
	MaxTokenLifetime time.Duration
	// LiveNodes returns the public base URLs of the cluster's live nodes,
	// least loaded first, for handing clients a node. Nil means this node.
	LiveNodes func() []string
	// NodeURL returns the public base URL of the live cluster node with
	// the given id. A request on the connection URL for a connection of
	// another node (its token carries the node's id) is redirected there
	// (307). Nil means a single node: such a token is unknown (404).
	NodeURL func(id string) (string, bool)
	// LongPolling times the Long Polling transport; zero fields mean the
	// defaults (see LongPolling).
	LongPolling LongPolling
	// Limits caps connections per user and per source address and rates
	// negotiate and connect requests per source address; zero fields mean
	// the defaults (see ClientLimits).
	Limits ClientLimits
	// TrustedProxies are the networks of proxies in front of the gateway
	// whose Forwarded and X-Forwarded-For/-Proto/-Host headers say who the
	// client is, which scheme it used and which host it asked for (see
	// fromProxy). From other peers those headers are ignored. Empty means
	// none: the peer of the TCP connection is the client.
	TrustedProxies []netip.Prefix
	// ProxyHeaders names the headers the trusted proxies write: only those
	// are read, since a proxy passes the other family through as the
	// client sent it. Zero means ProxyXForwarded.
	ProxyHeaders ProxyHeaders
	// SeparateAdmin moves the admin API off the main handler onto
	// AdminHandler, for a listener of its own. False serves it on the main
	// handler.
	SeparateAdmin bool
	// Metrics serves GET /metrics (Prometheus) to callers with the admin
	// key. Nil answers 404.
	Metrics http.Handler
	// TracerProvider makes a server span for every negotiate and REST
	// request (see trace.go). Nil means none; the trace context such a
	// request carries is still passed on.
	TracerProvider trace.TracerProvider
	// Logger receives request errors. Nil means slog.Default().
	Logger *slog.Logger
}

// Store is the configuration as the HTTP API reads and writes it: hub
// lookups for negotiate and REST, hubs and upstreams for the admin API, and
// the keys. The node's in-memory copy of its store.Config implements it.
// Errors wrap the store's sentinels: store.ErrNotFound, store.ErrExists,
// and store.ErrUnavailable (answered 503).
type Store interface {
	Hub(ctx context.Context, name string) (store.Hub, error)
	Hubs(ctx context.Context) ([]store.Hub, error)
	CreateHub(ctx context.Context, h store.Hub) (store.Hub, error)
	PutHub(ctx context.Context, h store.Hub) (store.Hub, error)
	DeleteHub(ctx context.Context, name string) error

	Upstream(ctx context.Context, hub, name string) (store.Upstream, error)
	Upstreams(ctx context.Context, hub string) ([]store.Upstream, error)
	CreateUpstream(ctx context.Context, u store.Upstream) (store.Upstream, error)
	PutUpstream(ctx context.Context, u store.Upstream) (store.Upstream, error)
	DeleteUpstream(ctx context.Context, hub, name string) error

	AccessKeys(ctx context.Context) ([]store.Key, error)
	SetAccessKeys(ctx context.Context, keys []store.Key) error
	// AdminKeyHash is the admin key as the store keeps it (see
	// store.AdminKeyMatches).
	AdminKeyHash(ctx context.Context) (string, error)
}

// Readiness is what /readyz answers: 503 unless Ready; 200 "degraded" with
// the reasons when ready with some, else 200 "ready".
type Readiness struct {
	Ready   bool
	Reasons []string
}

// Deliveries is the upstream delivery engine as the admin API sees it;
// *delivery.Dispatcher implements it.
type Deliveries interface {
	Status() delivery.Status
	DeliveryLog(hub, name string) ([]delivery.Delivery, bool)
	// CheckAddress applies the upstream address policy to a new upstream;
	// CheckRegistration runs the receiver's abuse-protection check.
	CheckAddress(ctx context.Context, hub, urlTemplate string) error
	CheckRegistration(ctx context.Context, hub, urlTemplate string) error
}

var _ Deliveries = (*delivery.Dispatcher)(nil)

// Server serves the HTTP API.
type Server struct {
	cfg    Config
	log    *slog.Logger
	echo   *echo.Echo
	limits *clientLimits
	half   *halfConns  // this node's SSE and Long Polling connections
	lp     LongPolling // Config.LongPolling with the defaults filled in
	// noPolls is closed by StopPolling: no poll can come any more.
	noPolls     chan struct{}
	stopPolling sync.Once

	// keysMu serialises access-key changes: rotate and revoke read the key
	// list, change it and write it back, and two interleaved changes would
	// lose one. It also keeps the Verifier's key set in the order the store
	// saw the writes.
	keysMu sync.Mutex
	// secretsMu serialises upstream secret rotations, which read an
	// upstream's secrets, change them and write them back.
	secretsMu sync.Mutex

	// adminEcho serves the operator routes when Config.SeparateAdmin is
	// set; nil otherwise.
	adminEcho *echo.Echo
	rest      restCounters // REST calls by operation and status (metrics.go)
	tracer    trace.Tracer // nil when Config.TracerProvider is

	// lookupLog thins the log of hub lookups the store failed: the names
	// are clients', unauthenticated, and while the store is down every
	// name the node's copy lacks fails. lookupQuiet counts the failures
	// not logged since the last line, which reports them.
	lookupLog   *rate.Limiter
	lookupQuiet atomic.Int64
}

// A failed hub lookup is logged at most once per lookupLogEvery.
const lookupLogEvery = 10 * time.Second

// New builds the routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.MaxActions <= 0 {
		cfg.MaxActions = actions.DefaultMaxActions
	}
	if cfg.MaxTokenLifetime <= 0 {
		cfg.MaxTokenLifetime = negotiate.DefaultMaxLifetime
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{cfg: cfg, log: cfg.Logger, echo: e, limits: newClientLimits(cfg.Limits),
		half: newHalfConns(), lp: cfg.LongPolling.withDefaults(), noPolls: make(chan struct{}),
		tracer: tracing.Tracer(cfg.TracerProvider, tracerName), lookupLog: rate.NewLimiter(rate.Every(lookupLogEvery), 1)}
	e.HTTPErrorHandler = s.handleError
	s.routes()
	if cfg.SeparateAdmin {
		s.adminEcho = s.newAdminEcho()
	}
	return s
}

// StopPolling tells the Long Polling connections that no poll will come
// any more: the HTTP server serving s is shutting down (wire it with
// http.Server.RegisterOnShutdown). A message for a client with no poll
// waiting then fails at once instead of waiting for the next poll, so the
// gateway's Shutdown need not wait out its write timeout for each such
// connection. Safe to call more than once.
func (s *Server) StopPolling() { s.stopPolling.Do(func() { close(s.noPolls) }) }

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.echo.ServeHTTP(w, s.fromProxy(r))
}

func (s *Server) routes() {
	e := s.echo
	e.Use(s.requestID)
	e.Use(s.traceRequests)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)

	e.POST("/client/negotiate", s.negotiate)
	e.OPTIONS("/client/negotiate", s.negotiatePreflight)
	for _, path := range []string{"/client/", "/client"} {
		e.GET(path, s.connect)
		e.POST(path, s.send)
		e.DELETE(path, s.endLongPolling)
		e.OPTIONS(path, s.clientPreflight)
	}

	s.restRoutes(e)

	if !s.cfg.SeparateAdmin {
		s.operatorRoutes(e)
	}
}

// withTimeout bounds a request by Config.RequestTimeout: its context, and
// with it every store and bus call the request makes, ends then.
func (s *Server) withTimeout(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.RequestTimeout)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// apiError is an error with an HTTP status, answered as {"error": msg}.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func fail(status int, msg string) error { return &apiError{status: status, msg: msg} }

// handleError answers every error as JSON with a status that says who is at
// fault; unexpected errors are logged and answered 500 without details.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *apiError
	var he *echo.HTTPError
	var re *restError
	switch {
	case errors.As(err, &re):
		c.Response().Header().Set("x-ms-error-code", re.code)
		err = c.JSON(re.status, map[string]string{"code": re.code, "message": re.msg})
	case errors.As(err, &ae):
		err = c.JSON(ae.status, map[string]string{"error": ae.msg})
	case errors.Is(err, store.ErrUnavailable):
		s.logFor(c.Request().Context()).Warn("request failed: configuration store unavailable", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		err = c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "the shared configuration (NATS JetStream KV) is unavailable, so changes cannot be saved; " +
			"reads are served from this node's copy. Retry once the NATS servers holding it are back (/readyz says why)"})
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		err = c.JSON(he.Code, map[string]string{"error": msg})
	default:
		s.logFor(c.Request().Context()).Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		err = c.JSON(http.StatusInternalServerError, map[string]string{"error": "internal error; see the gateway log"})
	}
	if err != nil {
		s.log.Debug("writing error response", "err", err)
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers from Config.Readiness. A node that serves its clients
// with part of the cluster unreachable (NATS bus down, shared configuration
// unavailable) answers 200 "degraded": taking every node out of rotation
// during a NATS outage would turn a partial outage into a full one.
func (s *Server) readyz(c echo.Context) error {
	if s.cfg.Readiness == nil {
		return c.JSON(http.StatusOK, map[string]any{"status": "ready"})
	}
	r := s.cfg.Readiness(c.Request().Context())
	switch {
	case !r.Ready:
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable",
			"error": strings.Join(r.Reasons, "; "), "reasons": r.Reasons})
	case len(r.Reasons) > 0:
		return c.JSON(http.StatusOK, map[string]any{"status": "degraded",
			"reason": strings.Join(r.Reasons, "; "), "reasons": r.Reasons})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ready"})
}

func (s *Server) health(c echo.Context) error {
	return c.NoContent(http.StatusOK)
}

// baseURL is the scheme and host the request reached us at, or, through a
// trusted proxy, the client reached the proxy at.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || forwardedHTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// bearer returns the token of an "Authorization: Bearer" header, or, when
// there is no Authorization header, of the access_token query parameter
// (browsers cannot set headers on WebSockets and EventSource).
func bearer(r *http.Request) string {
	if r.Header.Get("Authorization") != "" {
		return bearerHeader(r)
	}
	return r.URL.Query().Get("access_token")
}

// bearerHeader returns the token of an "Authorization: Bearer" header, ""
// if there is none.
func bearerHeader(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// findHub checks a hub name and looks the hub up. The error is an apiError
// whose status says what went wrong (400 a bad name, 404 no such hub, 503
// the configuration store cannot answer); restHub gives it Azure's codes.
func (s *Server) findHub(ctx context.Context, name string) (store.Hub, *apiError) {
	if !negotiate.ValidHubName(name) {
		return store.Hub{}, &apiError{status: http.StatusBadRequest,
			msg: fmt.Sprintf("invalid hub name %q: it must start with a letter and contain only letters, digits and _`,.[]", name)}
	}
	hub, err := s.cfg.Store.Hub(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Hub{}, &apiError{status: http.StatusNotFound, msg: fmt.Sprintf("hub %q not found", name)}
	case err != nil:
		if s.lookupLog.Allow() {
			s.logFor(ctx).Error("looking up a hub", "hub", name, "err", err, "failuresNotLogged", s.lookupQuiet.Swap(0))
		} else {
			s.lookupQuiet.Add(1)
		}
		return store.Hub{}, &apiError{status: http.StatusServiceUnavailable,
			msg: fmt.Sprintf("hub %q cannot be looked up right now (configuration store unreachable); retry", name)}
	}
	return hub, nil
}
