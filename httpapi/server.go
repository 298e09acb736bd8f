package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/switchboard-gw/switchboard/delivery"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/store"
)

// Config wires a Server. Gateway, Store and Verifier are required.
type Config struct {
	Gateway *gateway.Gateway
	// Store holds the configuration: the node's bbolt file, or NATS KV
	// shared by a cluster.
	Store    store.Config
	Verifier *negotiate.Verifier
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
	// BusHealthy reports whether the cluster bus is connected; /readyz says
	// "degraded" while it is not. Nil means a single node, always healthy.
	BusHealthy func() bool
	// LiveNodes returns the public base URLs of the cluster's live nodes,
	// least loaded first, for handing clients a node. Nil means this node.
	LiveNodes func() []string
	// Logger receives request errors. Nil means slog.Default().
	Logger *slog.Logger
}

// Deliveries is the upstream delivery engine as the admin API sees it;
// *delivery.Dispatcher implements it.
type Deliveries interface {
	Status() delivery.Status
	DeliveryLog(hub, name string) ([]delivery.Delivery, bool)
	CheckRegistration(ctx context.Context, hub, urlTemplate string) error
}

var _ Deliveries = (*delivery.Dispatcher)(nil)

// Server serves the HTTP API.
type Server struct {
	cfg  Config
	log  *slog.Logger
	echo *echo.Echo

	// keysMu serialises access-key changes: rotate and revoke read the key
	// list, change it and write it back, and two interleaved changes would
	// lose one. It also keeps the Verifier's key set in the order the store
	// saw the writes.
	keysMu sync.Mutex
}

// New builds the routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{cfg: cfg, log: cfg.Logger, echo: e}
	e.HTTPErrorHandler = s.handleError
	s.routes()
	return s
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)

	e.POST("/client/negotiate", s.negotiate)
	e.OPTIONS("/client/negotiate", s.negotiatePreflight)
	e.GET("/client/", s.connect)
	e.GET("/client", s.connect)

	s.restRoutes(e)

	s.adminRoutes(e.Group("/admin", s.adminAuth))
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
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		err = c.JSON(he.Code, map[string]string{"error": msg})
	default:
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		err = c.JSON(http.StatusInternalServerError, map[string]string{"error": "internal error; see the gateway log"})
	}
	if err != nil {
		s.log.Debug("writing error response", "err", err)
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 503 when the store is unreachable. While the cluster bus is
// disconnected it still answers 200, with status "degraded": local clients
// are served and cross-node messages are buffered, and taking every node out
// of rotation during a NATS outage would turn a partial outage into a full
// one.
func (s *Server) readyz(c echo.Context) error {
	// The bus first: a clustered store lives on the same NATS, so pinging
	// it during an outage would wait out its timeout and answer 503.
	if s.cfg.BusHealthy != nil && !s.cfg.BusHealthy() {
		return c.JSON(http.StatusOK, map[string]string{"status": "degraded",
			"reason": "cluster bus (NATS) disconnected: local delivery continues, cross-node messages are buffered"})
	}
	if err := s.cfg.Store.Ping(); err != nil {
		return fail(http.StatusServiceUnavailable, "store unavailable: "+err.Error())
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) health(c echo.Context) error {
	return c.NoContent(http.StatusOK)
}

// baseURL is the scheme and host the request reached us at.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
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
	hub, err := s.cfg.Store.Hub(name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Hub{}, &apiError{status: http.StatusNotFound, msg: fmt.Sprintf("hub %q not found", name)}
	case err != nil:
		s.log.Error("looking up a hub", "hub", name, "err", err)
		return store.Hub{}, &apiError{status: http.StatusServiceUnavailable,
			msg: fmt.Sprintf("hub %q cannot be looked up right now (configuration store unreachable); retry", name)}
	}
	return hub, nil
}
