package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-gw/switchboard/internal/tracing"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/store"
)

const tracerName = "github.com/switchboard-gw/switchboard/httpapi"

// traceRequests reads the W3C trace context (traceparent, tracestate) of
// the requests that cause webhooks and puts it in the request's context:
//
//   - negotiate and REST requests get a server span, child of the
//     caller's trace (a new trace when there is none), when tracing is
//     on. Negotiate hands its span context to the connection (the
//     Identity), so the connect event continues it; a REST close hands it
//     to the disconnected events it causes.
//   - the transport request (GET /client/) gets no span of its own: its
//     trace context, when it brings one, becomes the parent of the
//     gateway's connect span instead of negotiate's.
//
// The propagator checks both values as the W3C specification says: a
// malformed traceparent is ignored (a new trace starts) and so is a
// malformed tracestate, never an error for the client. Everything else
// (admin, health, Long Polling sends and polls) passes untouched.
func (s *Server) traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		path := c.Path()
		var span bool
		switch {
		case strings.HasPrefix(path, "/api/hubs/") || path == "/client/negotiate":
			span = true
		case (path == "/client/" || path == "/client") && c.Request().Method == http.MethodGet:
		default:
			return next(c)
		}
		r := c.Request()
		if r.Method == http.MethodOptions {
			return next(c)
		}
		ctx := r.Context()
		if r.Header.Get("traceparent") != "" {
			ctx = tracing.Propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		if !span || s.tracer == nil {
			if ctx != r.Context() {
				c.SetRequest(r.WithContext(ctx))
			}
			return next(c)
		}
		route := strings.ReplaceAll(path, `\:`, ":") // echo's escape for a literal colon
		// The method is the client's own string. One HTTP does not define
		// is named as OpenTelemetry's conventions say, "_OTHER", and the
		// span "HTTP route", so no client writes what it likes into spans.
		method, name := r.Method, r.Method
		if !knownMethod(method) {
			method, name = "_OTHER", "HTTP"
		}
		ctx, sp := s.tracer.Start(ctx, name+" "+route,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", method),
				attribute.String("http.route", route), attribute.String("signalr.hub", hubOf(c))))
		defer sp.End()
		c.SetRequest(r.WithContext(ctx))
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = errorStatus(err)
		}
		sp.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			sp.SetStatus(codes.Error, http.StatusText(status))
		}
		return err
	}
}

// hubOf is the hub a request names, in its path or its query, when it is a
// valid hub name: the span must not carry whatever a client put there.
func hubOf(c echo.Context) string {
	h := c.Param("hub")
	if h == "" {
		h = c.QueryParam("hub")
	}
	if !negotiate.ValidHubName(h) {
		return ""
	}
	return h
}

// errorStatus is the status handleError answers err with.
func errorStatus(err error) int {
	var ae *apiError
	var re *restError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &re):
		return re.status
	case errors.As(err, &ae):
		return ae.status
	case errors.As(err, &he):
		return he.Code
	case errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
