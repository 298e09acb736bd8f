package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/input"
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
// data plane: the 2022-06-01 paths under /api/hubs/{hub} (api-version is
// accepted and ignored), the v1 aliases under /api/v1/hubs/{hub}, and
// Switchboard's additions (presence listings, the :actions batch). Every
// hub route takes Azure's application query parameter (restHubName).
func (s *Server) restRoutes(e *echo.Echo) {
	e.HEAD("/api/health", s.health)
	e.GET("/api/health", s.health)
	e.HEAD("/api/v1/health", s.health)

	a := e.Group("/api/hubs/:hub", s.withTimeout, s.restAuth)
	a.POST(`/\:generateToken`, s.generateToken)
	a.POST(`/\:send`, s.restSend(actions.Broadcast, http.StatusAccepted))
	a.POST(`/users/:user/\:send`, s.restSend(actions.SendToUser, http.StatusAccepted))
	a.POST(`/groups/:group/\:send`, s.restSend(actions.SendToGroup, http.StatusAccepted))
	a.POST(`/connections/:connectionId/\:send`, s.restSend(actions.SendToConnection, http.StatusAccepted))

	// Existence checks answer GET as well as HEAD, as Azure's service
	// does: its 2022-06-01 spec lists HEAD, its v1 spec GET and HEAD, and
	// the Management SDK's IsUserInGroup sends GET to
	// /users/{user}/groups/{group}.
	for _, m := range []string{http.MethodHead, http.MethodGet} {
		a.Add(m, "/connections/:connectionId", s.restConnectionExists)
		a.Add(m, "/users/:user", s.restUserExists)
		a.Add(m, "/groups/:group", s.restGroupExists)
		a.Add(m, "/users/:user/groups/:group", s.restUserInGroup)
	}

	a.DELETE("/connections/:connectionId", s.restCloseConnection(http.StatusOK))
	a.POST(`/\:closeConnections`, s.restCloseMany(scopeAll))
	a.POST(`/groups/:group/\:closeConnections`, s.restCloseMany(scopeGroup))
	a.POST(`/users/:user/\:closeConnections`, s.restCloseMany(scopeUser))

	a.PUT("/groups/:group/connections/:connectionId", s.restConnectionGroup(true))
	a.DELETE("/groups/:group/connections/:connectionId", s.restConnectionGroup(false))
	a.DELETE("/connections/:connectionId/groups", s.restConnectionLeaveAll)
	a.PUT("/users/:user/groups/:group", s.restAddUserToGroup(http.StatusOK))
	a.DELETE("/users/:user/groups/:group", s.restRemoveUserFromGroup(http.StatusNoContent))
	a.DELETE("/users/:user/groups", s.restRemoveUserFromAllGroups(http.StatusNoContent))

	a.GET("/connections", s.restList(scopeAll))
	a.GET("/groups/:group/connections", s.restList(scopeGroup))
	a.GET("/users/:user/connections", s.restList(scopeUser))

	a.POST(`/\:actions`, s.restActions)

	// Azure's v1 paths: no :send suffix, 202 for most changes.
	v1 := e.Group("/api/v1/hubs/:hub", s.withTimeout, s.restAuth)
	v1.POST("", s.restSend(actions.Broadcast, http.StatusAccepted))
	v1.POST("/users/:user", s.restSend(actions.SendToUser, http.StatusAccepted))
	v1.POST("/groups/:group", s.restSend(actions.SendToGroup, http.StatusAccepted))
	v1.POST("/connections/:connectionId", s.restSend(actions.SendToConnection, http.StatusAccepted))
	for _, m := range []string{http.MethodHead, http.MethodGet} {
		v1.Add(m, "/connections/:connectionId", s.restConnectionExists)
		v1.Add(m, "/users/:user", s.restUserExists)
		v1.Add(m, "/groups/:group", s.restGroupExists)
		v1.Add(m, "/groups/:group/users/:user", s.restUserInGroup)
	}
	v1.DELETE("/connections/:connectionId", s.restCloseConnection(http.StatusAccepted))
	v1.PUT("/groups/:group/connections/:connectionId", s.restConnectionGroup(true))
	v1.DELETE("/groups/:group/connections/:connectionId", s.restConnectionGroup(false))
	v1.PUT("/groups/:group/users/:user", s.restAddUserToGroup(http.StatusAccepted))
	v1.DELETE("/groups/:group/users/:user", s.restRemoveUserFromGroup(http.StatusAccepted))
	v1.DELETE("/users/:user/groups", s.restRemoveUserFromAllGroups(http.StatusOK))
}

// restAuth requires a Bearer JWT signed with an access key whose audience is
// the request URL (compared leniently: scheme, host and path), or, when
// the gateway trusts OIDC issuers, one of their tokens whose grants allow
// the call (restIdentityAuth).
func (s *Server) restAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		token := bearerHeader(r)
		if token == "" {
			return restFail(http.StatusUnauthorized, "Error.Unauthorized",
				"missing Authorization: Bearer TOKEN; sign a JWT with an access key and aud set to the request URL")
		}
		if s.cfg.Identities != nil && !accessKeyToken(token) {
			return s.restIdentityAuth(c, token, next)
		}
		// The escaped path, as the caller wrote it in aud: a decoded one
		// (a group named "a b") would not even parse as a URL.
		path := r.URL.EscapedPath()
		if _, err := s.verify(r, token, func(base string) string { return base + path }); err != nil {
			return restFail(http.StatusUnauthorized, "Error.Unauthorized", err.Error())
		}
		return next(c)
	}
}

// restHub resolves the hub a REST call addresses: the {hub} path
// parameter, prefixed with the application query parameter when there is
// one, as Azure does (see restHubName).
func (s *Server) restHub(c echo.Context) (store.Hub, error) {
	name, err := restHubName(c)
	if err != nil {
		return store.Hub{}, err
	}
	hub, ae := s.findHub(c.Request().Context(), name)
	if ae != nil {
		code := map[int]string{
			http.StatusBadRequest:         "Error.InvalidHub",
			http.StatusNotFound:           "Error.HubNotFound",
			http.StatusServiceUnavailable: "Error.ServiceUnavailable",
		}[ae.status]
		return store.Hub{}, restFail(ae.status, code, ae.msg)
	}
	return hub, nil
}

// restHubName is the name of the hub a REST call addresses. Azure's REST
// API takes an optional application query parameter on every hub route, and
// its SDKs set it from ServiceManagerOptions.ApplicationName, so that
// several applications can share one service: the hub then is
// "{application}_{hub}" (the SDKs send both in lower case; Switchboard's hub
// names are case-sensitive, so the two are joined as given). An empty
// application is none, as in Azure. A bad one is refused, never ignored:
// ignoring it would send the caller's messages to another application's hub.
func restHubName(c echo.Context) (string, error) {
	hub := c.Param("hub")
	apps, ok := c.QueryParams()["application"]
	if !ok || len(apps) == 1 && apps[0] == "" {
		return hub, nil
	}
	if len(apps) > 1 {
		return "", restFail(http.StatusBadRequest, "Error.InvalidApplication",
			fmt.Sprintf("application is given %d times; give it at most once", len(apps)))
	}
	app := apps[0]
	if !negotiate.ValidHubName(app) {
		return "", restFail(http.StatusBadRequest, "Error.InvalidApplication",
			fmt.Sprintf("invalid application %q: it must be 1 to 128 characters, start with a letter and contain only letters, digits and _`,.[]", app))
	}
	if !negotiate.ValidHubName(hub) {
		return hub, nil // findHub says what is wrong with it
	}
	name := app + "_" + hub
	if !negotiate.ValidHubName(name) {
		return "", restFail(http.StatusBadRequest, "Error.InvalidApplication",
			fmt.Sprintf("application %q and hub %q make the hub name %q, %d characters long; the limit is 128", app, hub, name, len(name)))
	}
	return name, nil
}

// generateToken answers POST /api/hubs/{hub}/:generateToken?userId=&minutesToExpire=
// with a client token for the hub, as Azure's 2022-11-01 API does:
// minutesToExpire defaults to 60 and may be at most Config.MaxTokenLifetime;
// userId must pass input.UserID. A request the rules refuse gets 400 saying
// which limit it broke.
func (s *Server) generateToken(c echo.Context) error {
	hub, err := s.restHub(c)
	if err != nil {
		return err
	}
	maxMinutes := max(int64(s.cfg.MaxTokenLifetime/time.Minute), 1)
	minutes := int64(60)
	if v := c.QueryParam("minutesToExpire"); v != "" {
		m, err := strconv.ParseInt(v, 10, 64)
		if err != nil || m < 1 || m > maxMinutes {
			return restFail(http.StatusBadRequest, "Error.InvalidParameter",
				fmt.Sprintf("minutesToExpire %s must be a whole number from 1 to %d (%s, the gateway's maximum token lifetime)",
					input.Quote(v), maxMinutes, s.cfg.MaxTokenLifetime))
		}
		minutes = m
	}
	minutes = min(minutes, maxMinutes)
	userID := c.QueryParam("userId")
	if userID != "" {
		if err := input.UserID(userID); err != nil {
			return restFail(http.StatusBadRequest, "Error.InvalidParameter", "userId: the "+err.Error())
		}
	}
	base := s.nodeForClient(c.Request())
	token, err := s.clientToken(c.Request().Context(), base, hub.Name, userID, time.Duration(minutes)*time.Minute)
	switch {
	case errors.Is(err, negotiate.ErrTokenTooLarge), errors.Is(err, input.ErrInvalid):
		return restFail(http.StatusBadRequest, "Error.InvalidParameter", strings.TrimPrefix(err.Error(), "negotiate: issue token: "))
	case err != nil:
		return err
	}
	// "url" is ours (Azure answers only the token): the client URL of a live
	// node, least loaded first, so an app's negotiate can spread clients
	// over a cluster and send reconnecting clients to a node that is alive.
	return c.JSON(http.StatusOK, map[string]string{"token": token, "url": negotiate.ClientURL(base, hub.Name)})
}

// nodeForClient is the base URL a new client should connect to: the least
// loaded live node of the cluster, else this node.
func (s *Server) nodeForClient(r *http.Request) string {
	if s.cfg.LiveNodes != nil {
		if nodes := s.cfg.LiveNodes(); len(nodes) > 0 {
			return nodes[0]
		}
	}
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	return baseURL(r)
}

// clientToken issues a client token for hub signed with the newest access
// key, its audience the hub's client URL on base.
func (s *Server) clientToken(ctx context.Context, base, hub, userID string, lifetime time.Duration) (string, error) {
	keys, err := s.cfg.Store.AccessKeys(ctx)
	if err != nil {
		return "", err
	}
	if len(keys) == 0 {
		return "", fmt.Errorf("httpapi: no access key")
	}
	return negotiate.IssueToken(keys[0].AccessKey(), negotiate.TokenOptions{
		Audience: negotiate.ClientURL(base, hub),
		UserID:   userID,
		Lifetime: lifetime,
	})
}
