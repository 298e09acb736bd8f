package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/store"
)

// keyRoutes serves the access keys part of the admin API.
func (s *Server) keyRoutes(g *echo.Group) {
	g.GET("/keys", s.listKeys)
	// POST /keys/:rotate is served by a parameter route: echo's router
	// panics on a path segment that is a literal ':' word beside a
	// parameter segment (v4.16, "/keys/\:rotate" next to "/keys/:id").
	g.POST("/keys/:id", s.keyOperation)
	g.DELETE("/keys/:id", s.revokeKey)
}

// rotateOp is the one operation POST /admin/keys/{op} knows.
const rotateOp = ":rotate"

// routeAliases maps a route as echo registers it to the route it really
// serves, for Routes (see keyRoutes).
var routeAliases = map[Route]Route{
	{Method: http.MethodPost, Path: "/admin/keys/{id}"}: {Method: http.MethodPost, Path: "/admin/keys/" + rotateOp},
}

func (s *Server) keyOperation(c echo.Context) error {
	if c.Param("id") != rotateOp {
		return fail(http.StatusNotFound, fmt.Sprintf("no key operation %q; POST /admin/keys/:rotate rotates the keys", c.Param("id")))
	}
	return s.rotateKeys(c)
}

// keyInfo is what the admin API shows of an access key: never the secret,
// except once in the answer to a rotation.
type keyInfo struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"createdAt"`
}

func (s *Server) listKeys(c echo.Context) error {
	keys, err := s.cfg.Store.AccessKeys(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]keyInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyInfo{ID: k.ID, CreatedAt: k.CreatedAt})
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": out})
}

// rotateKeys answers POST /admin/keys/:rotate: a new key becomes primary,
// the previous primary stays as secondary so tokens it signed keep working,
// and any older key is dropped.
func (s *Server) rotateKeys(c echo.Context) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	old, err := s.cfg.Store.AccessKeys(c.Request().Context())
	if err != nil {
		return err
	}
	fresh := store.NewKey(time.Now())
	next := []store.Key{fresh}
	if len(old) > 0 {
		next = append(next, old[0])
	}
	if err := s.setKeysLocked(c.Request().Context(), next); err != nil {
		return err
	}
	dropped := make([]string, 0, len(old))
	for _, k := range old[min(1, len(old)):] {
		dropped = append(dropped, k.ID)
	}
	s.logFor(c.Request().Context()).Info("access keys rotated", "new", fresh.ID, "dropped", dropped)
	cs := negotiate.ConnectionString{Endpoint: s.publicBase(c.Request()), AccessKey: fresh.Secret, KeyID: fresh.ID, Version: "1.0"}
	keys := make([]keyInfo, len(next))
	for i, k := range next {
		keys[i] = keyInfo{ID: k.ID, CreatedAt: k.CreatedAt}
	}
	return c.JSON(http.StatusOK, map[string]any{
		"id":               fresh.ID,
		"connectionString": cs.String(),
		"keys":             keys,
		"dropped":          dropped,
	})
}

// revokeKey answers DELETE /admin/keys/{id}: tokens signed with the key stop
// verifying at once. Connections already open stay open (their token was
// checked when they connected).
func (s *Server) revokeKey(c echo.Context) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	id := c.Param("id")
	keys, err := s.cfg.Store.AccessKeys(c.Request().Context())
	if err != nil {
		return err
	}
	next := make([]store.Key, 0, len(keys))
	for _, k := range keys {
		if k.ID != id {
			next = append(next, k)
		}
	}
	switch {
	case len(next) == len(keys):
		return fail(http.StatusNotFound, fmt.Sprintf("access key %q not found; GET /admin/keys lists them", id))
	case len(next) == 0:
		return fail(http.StatusConflict, fmt.Sprintf("access key %q is the only one; rotate first (POST /admin/keys/:rotate), then revoke it", id))
	}
	if err := s.setKeysLocked(c.Request().Context(), next); err != nil {
		return err
	}
	s.logFor(c.Request().Context()).Info("access key revoked", "id", id)
	return c.NoContent(http.StatusNoContent)
}

// setKeysLocked stores keys and hands them to the Verifier, so the change
// applies to the next request. The caller holds s.keysMu.
func (s *Server) setKeysLocked(ctx context.Context, keys []store.Key) error {
	if err := s.cfg.Store.SetAccessKeys(ctx, keys); err != nil {
		return fmt.Errorf("httpapi: save access keys: %w", err)
	}
	s.cfg.Verifier.SetKeys(store.AccessKeys(keys))
	return nil
}

// publicBase is the base URL for connection strings: the configured public
// URL, else the one the request reached us at.
func (s *Server) publicBase(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	return baseURL(r)
}

// Route is one method and path the Server answers, in OpenAPI spelling:
// parameters as {name} and literal colons unescaped, e.g.
// "POST /api/hubs/{hub}/:send".
type Route struct {
	Method string
	Path   string
}

// Routes lists every route the Server serves, for documentation checks.
func (s *Server) Routes() []Route {
	var out []Route
	seen := map[Route]bool{}
	for _, r := range s.echo.Routes() {
		// echo registers internal handlers (e.g. for a group's not-found
		// catch-all) under "echo_route_not_found" and with "*" paths.
		if strings.Contains(r.Path, "*") || r.Method == echo.RouteNotFound {
			continue
		}
		rt := Route{Method: r.Method, Path: openAPIPath(r.Path)}
		if alias, ok := routeAliases[rt]; ok {
			rt = alias
		}
		if !seen[rt] {
			seen[rt] = true
			out = append(out, rt)
		}
	}
	return out
}

// openAPIPath turns echo's "/hubs/:hub/\:send" into "/hubs/{hub}/:send".
func openAPIPath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '\\' && i+1 < len(p) && p[i+1] == ':':
			b.WriteByte(':')
			i++
		case p[i] == ':':
			j := i + 1
			for j < len(p) && p[j] != '/' {
				j++
			}
			b.WriteString("{" + p[i+1:j] + "}")
			i = j - 1
		default:
			b.WriteByte(p[i])
		}
	}
	return b.String()
}
