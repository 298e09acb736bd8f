package httpapi

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/labstack/echo/v4"
)

// restKey is what REST calls are counted by: the route's method and
// pattern (never the path itself, which carries hub, user, group and
// connection names) and the answer's status.
type restKey struct {
	op     string
	status int
}

// restCounters count the REST API's calls.
type restCounters struct {
	m sync.Map // restKey → *atomic.Int64
}

// RESTStat is how many REST calls of one operation got one status.
type RESTStat struct {
	// Operation is the method and route pattern, as in the API's
	// reference: "POST /api/hubs/{hub}/groups/{group}/:send".
	Operation string
	Status    int
	Count     int64
}

// countREST is middleware of the REST routes: it answers errors itself,
// the way echo would after it, so the status it counts is the one sent.
func (s *Server) countREST(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := next(c); err != nil {
			c.Error(err)
		}
		k := restKey{op: restRouteLabel(countedMethod(c.Request().Method), c.Path()), status: c.Response().Status}
		v, ok := s.rest.m.Load(k)
		if !ok {
			v, _ = s.rest.m.LoadOrStore(k, new(atomic.Int64))
		}
		v.(*atomic.Int64).Add(1)
		return nil
	}
}

// countedMethod is method as REST calls are counted: one of the methods
// HTTP defines, else "OTHER". The method is the client's own string, and it
// is counted before the call's credentials are checked (a 401 is counted
// too), so every invented method would otherwise add a counter and a
// Prometheus series for as long as the node runs.
func countedMethod(method string) string {
	if knownMethod(method) {
		return method
	}
	return "OTHER"
}

// knownMethod reports whether method is one HTTP defines.
func knownMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// restRouteLabel turns echo's route pattern (":hub", `\:send`) into the
// OpenAPI form ("{hub}", ":send").
func restRouteLabel(method, pattern string) string {
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, `\:`):
			parts[i] = p[1:]
		case strings.HasPrefix(p, ":"):
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return method + " " + strings.Join(parts, "/")
}

// RESTStats returns the REST API's calls since the server started, by
// operation and status, sorted.
func (s *Server) RESTStats() []RESTStat {
	var out []RESTStat
	s.rest.m.Range(func(k, v any) bool {
		key := k.(restKey)
		out = append(out, RESTStat{Operation: key.op, Status: key.status, Count: v.(*atomic.Int64).Load()})
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Operation != out[j].Operation {
			return out[i].Operation < out[j].Operation
		}
		return out[i].Status < out[j].Status
	})
	return out
}

// ClientLimitsRefused counts the requests the per-address and per-user
// limits refused, by limit: connectionsPerUser, connectionsPerAddress,
// negotiateRate, connectRate.
func (s *Server) ClientLimitsRefused() map[string]int64 {
	l := s.limits
	return map[string]int64{
		"connectionsPerUser":    l.refusedUser.Load(),
		"connectionsPerAddress": l.refusedSource.Load(),
		"negotiateRate":         l.refusedNegotiate.Load(),
		"connectRate":           l.refusedConnect.Load(),
	}
}

// metrics serves Config.Metrics to callers with the admin key.
func (s *Server) metrics(c echo.Context) error {
	if s.cfg.Metrics == nil {
		return fail(http.StatusNotFound, "metrics are not served by this node")
	}
	s.cfg.Metrics.ServeHTTP(c.Response(), c.Request())
	return nil
}
