package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// operatorRoutes registers what only operators use: the admin API, the
// dashboard (which calls the admin API on its own origin, so it must be
// served where the admin API is) and /metrics behind the admin key. They
// go on the main handler, or, with Config.SeparateAdmin, on AdminHandler's
// alone, so an admin listener bound to a private address (optionally with
// mutual TLS) carries them and the public listener does not. A new
// operator-only route belongs here, to move with them.
func (s *Server) operatorRoutes(e *echo.Echo) {
	e.GET("/metrics", s.metrics, s.withTimeout, s.adminAuth)
	s.adminRoutes(e.Group("/admin", s.withTimeout, s.adminAuth))
	s.dashboardRoutes(e)
}

// newAdminEcho builds the handler of the separate admin listener: the
// operator routes plus /healthz and /readyz, for probes that reach only
// that listener, with the main handler's middleware (request ids, traces).
func (s *Server) newAdminEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.requestID)
	e.Use(s.traceRequests)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	s.operatorRoutes(e)
	return e
}

// AdminHandler serves the operator routes when Config.SeparateAdmin is set
// (nil otherwise): serve it on the admin listener.
func (s *Server) AdminHandler() http.Handler {
	if s.adminEcho == nil {
		return nil
	}
	return s.adminEcho
}
