package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/store"
)

// restError is an error of the server REST API, answered in Azure SignalR's
// ErrorDetail shape ({"code","message"}) with the x-ms-error-code header, so
// Azure clients report it as they would Azure's own.
type restError struct {
	status int
	code   string
	msg    string
}

func (e *restError) Error() string { return e.msg }

func restFail(status int, code, msg string) error {
	return &restError{status: status, code: code, msg: msg}
}

// restRoutes serves the server REST API, compatible with Azure SignalR's
// data plane.
func (s *Server) restRoutes(e *echo.Echo) {
	e.HEAD("/api/health", s.health)
	e.GET("/api/health", s.health)
	e.HEAD("/api/v1/health", s.health)
	e.POST(`/api/hubs/:hub/\:generateToken`, s.generateToken, s.restAuth)
}

// restAuth requires a Bearer JWT signed with an access key whose audience is
// the request URL (compared leniently: scheme, host and path).
func (s *Server) restAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		token := ""
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			token = strings.TrimSpace(h[7:])
		}
		if token == "" {
			return restFail(http.StatusUnauthorized, "Error.Unauthorized",
				"missing Authorization: Bearer TOKEN; sign a JWT with an access key and aud set to the request URL")
		}
		if _, err := s.verify(r, token, r.URL.Path); err != nil {
			return restFail(http.StatusUnauthorized, "Error.Unauthorized", err.Error())
		}
		return next(c)
	}
}

// restHub resolves the {hub} path parameter.
func (s *Server) restHub(c echo.Context) (store.Hub, error) {
	name := c.Param("hub")
	if !negotiate.ValidHubName(name) {
		return store.Hub{}, restFail(http.StatusBadRequest, "Error.InvalidHub",
			fmt.Sprintf("invalid hub name %q: it must start with a letter and contain only letters, digits and _`,.[]", name))
	}
	hub, err := s.cfg.Store.Hub(name)
	if err != nil {
		return store.Hub{}, restFail(http.StatusNotFound, "Error.HubNotFound", fmt.Sprintf("hub %q not found", name))
	}
	return hub, nil
}

// generateToken answers POST /api/hubs/{hub}/:generateToken?userId=&minutesToExpire=
// with a client token for the hub, as Azure's 2022-11-01 API does.
func (s *Server) generateToken(c echo.Context) error {
	hub, err := s.restHub(c)
	if err != nil {
		return err
	}
	minutes := 60
	if v := c.QueryParam("minutesToExpire"); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m < 1 {
			return restFail(http.StatusBadRequest, "Error.InvalidParameter", "minutesToExpire must be a whole number of at least 1")
		}
		minutes = m
	}
	token, err := s.ClientToken(c.Request(), hub.Name, c.QueryParam("userId"), time.Duration(minutes)*time.Minute)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"token": token})
}

// ClientToken issues a client token for hub signed with the newest access
// key, its audience the client URL at which r reached the gateway.
func (s *Server) ClientToken(r *http.Request, hub, userID string, lifetime time.Duration) (string, error) {
	keys, err := s.cfg.Store.AccessKeys()
	if err != nil {
		return "", err
	}
	if len(keys) == 0 {
		return "", fmt.Errorf("httpapi: no access key")
	}
	base := s.cfg.PublicURL
	if base == "" {
		base = baseURL(r)
	}
	return negotiate.IssueToken(negotiate.AccessKey{ID: keys[0].ID, Secret: keys[0].Secret}, negotiate.TokenOptions{
		Audience: negotiate.ClientURL(base, hub),
		UserID:   userID,
		Lifetime: lifetime,
	})
}
