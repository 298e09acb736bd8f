package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/gateway"
)

// scopeKind says which connections a many-connection operation addresses.
type scopeKind int

const (
	scopeAll scopeKind = iota
	scopeGroup
	scopeUser
)

// restScope reads the {group} or {user} path parameter kind needs.
func restScope(c echo.Context, kind scopeKind) (gateway.Scope, error) {
	var sc gateway.Scope
	var err error
	switch kind {
	case scopeGroup:
		sc.Group, err = restGroup(c)
	case scopeUser:
		sc.User, err = restUser(c)
	}
	return sc, err
}

// restExists answers an existence check: 200, or 404 with code (HEAD
// answers carry no body, so the x-ms-error-code header is what Azure's SDKs
// read).
func restExists(c echo.Context, ok bool, err error, code, msg string) error {
	if err != nil {
		return err
	}
	if !ok {
		return restFail(http.StatusNotFound, code, msg)
	}
	return c.NoContent(http.StatusOK)
}

func (s *Server) restConnectionExists(c echo.Context) error {
	hub, err := s.restHub(c)
	if err != nil {
		return err
	}
	id, err := restConnID(c)
	if err != nil {
		return err
	}
	ok, err := s.cfg.Gateway.ConnectionExists(c.Request().Context(), hub.Name, id)
	return restExists(c, ok, err,
		"Warning.Connection.NotExisted", fmt.Sprintf("connection %q is not connected", id))
}

func (s *Server) restUserExists(c echo.Context) error {
	hub, err := s.restHub(c)
	if err != nil {
		return err
	}
	user, err := restUser(c)
	if err != nil {
		return err
	}
	ok, err := s.cfg.Gateway.UserExists(c.Request().Context(), hub.Name, user)
	return restExists(c, ok, err,
		"Warning.User.NotExisted", fmt.Sprintf("user %q has no connection", user))
}

func (s *Server) restGroupExists(c echo.Context) error {
	hub, err := s.restHub(c)
	if err != nil {
		return err
	}
	group, err := restGroup(c)
	if err != nil {
		return err
	}
	ok, err := s.cfg.Gateway.GroupExists(c.Request().Context(), hub.Name, group)
	return restExists(c, ok, err,
		"Warning.Group.NotExisted", fmt.Sprintf("group %q has no connection", group))
}

func (s *Server) restUserInGroup(c echo.Context) error {
	hub, err := s.restHub(c)
	if err != nil {
		return err
	}
	user, err := restUser(c)
	if err != nil {
		return err
	}
	group, err := restGroup(c)
	if err != nil {
		return err
	}
	in, err := s.cfg.Gateway.UserInGroup(c.Request().Context(), hub.Name, user, group)
	if err != nil {
		return err
	}
	return restExists(c, in, nil, "Info.User.NotInGroup", fmt.Sprintf("user %q is not in group %q", user, group))
}

// restCloseConnection closes one connection with a SignalR Close message
// carrying the reason query parameter. Closing a connection that is not
// there succeeds, as in Azure: the caller wanted it gone.
func (s *Server) restCloseConnection(status int) echo.HandlerFunc {
	return func(c echo.Context) error {
		hub, err := s.restHub(c)
		if err != nil {
			return err
		}
		id, err := restConnID(c)
		if err != nil {
			return err
		}
		reason, err := restReason(c)
		if err != nil {
			return err
		}
		a := &actions.Action{Action: actions.CloseConnection, ConnectionID: id, Reason: reason}
		if err := s.cfg.Gateway.Apply(c.Request().Context(), hub.Name, a); err != nil && !errors.Is(err, gateway.ErrNoConnection) {
			return restApplyError(err)
		}
		return c.NoContent(status)
	}
}

// restCloseMany closes the connections of a hub, group or user, except the
// excluded ones, and answers 204.
func (s *Server) restCloseMany(kind scopeKind) echo.HandlerFunc {
	return func(c echo.Context) error {
		hub, err := s.restHub(c)
		if err != nil {
			return err
		}
		sc, err := restScope(c, kind)
		if err != nil {
			return err
		}
		excluded, err := restExcluded(c)
		if err != nil {
			return err
		}
		reason, err := restReason(c)
		if err != nil {
			return err
		}
		if err := s.cfg.Gateway.CloseConnections(c.Request().Context(), hub.Name, sc, excluded, reason); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// restConnectionGroup adds a connection to a group or removes it: 200, or
// 404 when the connection is not connected.
func (s *Server) restConnectionGroup(add bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		hub, err := s.restHub(c)
		if err != nil {
			return err
		}
		group, err := restGroup(c)
		if err != nil {
			return err
		}
		id, err := restConnID(c)
		if err != nil {
			return err
		}
		// The connection's node answers ErrNoConnection (404) when it does
		// not hold it.
		a := &actions.Action{Action: actions.RemoveFromGroup, Group: group, ConnectionID: id}
		if add {
			a.Action = actions.AddToGroup
		}
		if err := s.cfg.Gateway.Apply(c.Request().Context(), hub.Name, a); err != nil {
			return restApplyError(err)
		}
		return c.NoContent(http.StatusOK)
	}
}

// restConnectionLeaveAll takes a connection out of every group. A
// connection that is not there is in no group, so that succeeds too.
func (s *Server) restConnectionLeaveAll(c echo.Context) error {
	hub, err := s.restHub(c)
	if err != nil {
		return err
	}
	id, err := restConnID(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Gateway.RemoveFromAllGroups(c.Request().Context(), hub.Name, id); err != nil && !errors.Is(err, gateway.ErrNoConnection) {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// restAddUserToGroup adds a user to a group. Without ttl the membership is
// saved with no expiry and applies to the user's current and future
// connections; ttl=N makes it last N seconds, on the connections open now
// as on later ones (the gateway's sweep ends it, see gateway.Gateway.Apply);
// ttl=0 adds only the user's current connections and saves nothing, as
// Azure documents.
func (s *Server) restAddUserToGroup(status int) echo.HandlerFunc {
	return func(c echo.Context) error {
		hub, err := s.restHub(c)
		if err != nil {
			return err
		}
		user, err := restUser(c)
		if err != nil {
			return err
		}
		group, err := restGroup(c)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		raw, hasTTL := c.QueryParams()["ttl"]
		if !hasTTL {
			a := &actions.Action{Action: actions.AddUserToGroup, User: user, Group: group}
			if err := s.cfg.Gateway.Apply(ctx, hub.Name, a); err != nil {
				return restApplyError(err)
			}
			return c.NoContent(status)
		}
		ttl, err := strconv.ParseInt(raw[0], 10, 64)
		if err != nil || ttl < 0 || ttl > gateway.MaxTTL {
			return restFail(http.StatusBadRequest, "Error.InvalidParameter",
				fmt.Sprintf("ttl %q must be a whole number of seconds from 0 to %d", raw[0], gateway.MaxTTL))
		}
		if ttl > 0 {
			a := &actions.Action{Action: actions.AddUserToGroup, User: user, Group: group, TTL: ttl}
			if err := s.cfg.Gateway.Apply(ctx, hub.Name, a); err != nil {
				return restApplyError(err)
			}
			return c.NoContent(status)
		}
		conns, _, err := s.cfg.Gateway.Connections(ctx, hub.Name, gateway.Scope{User: user}, "", maxInt)
		if err != nil {
			return err
		}
		for _, ci := range conns {
			a := &actions.Action{Action: actions.AddToGroup, Group: group, ConnectionID: ci.ConnectionID}
			// A connection that closed meanwhile needs no group.
			if err := s.cfg.Gateway.Apply(ctx, hub.Name, a); err != nil && !errors.Is(err, gateway.ErrNoConnection) {
				return restApplyError(err)
			}
		}
		return c.NoContent(status)
	}
}

const maxInt = int(^uint(0) >> 1)

// restRemoveUserFromGroup deletes the user's saved membership and takes the
// user's connections out of the group.
func (s *Server) restRemoveUserFromGroup(status int) echo.HandlerFunc {
	return func(c echo.Context) error {
		hub, err := s.restHub(c)
		if err != nil {
			return err
		}
		user, err := restUser(c)
		if err != nil {
			return err
		}
		group, err := restGroup(c)
		if err != nil {
			return err
		}
		a := &actions.Action{Action: actions.RemoveUserFromGroup, User: user, Group: group}
		if err := s.cfg.Gateway.Apply(c.Request().Context(), hub.Name, a); err != nil {
			return restApplyError(err)
		}
		return c.NoContent(status)
	}
}

func (s *Server) restRemoveUserFromAllGroups(status int) echo.HandlerFunc {
	return func(c echo.Context) error {
		hub, err := s.restHub(c)
		if err != nil {
			return err
		}
		user, err := restUser(c)
		if err != nil {
			return err
		}
		if err := s.cfg.Gateway.RemoveUserFromAllGroups(c.Request().Context(), hub.Name, user); err != nil {
			return err
		}
		return c.NoContent(status)
	}
}
