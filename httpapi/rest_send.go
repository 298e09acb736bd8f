package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/input"
)

// MaxRESTBody is the largest REST request body accepted, as in Azure
// SignalR; larger bodies get 413.
const MaxRESTBody = 1 << 20

// restSend answers the send operations (broadcast, user, group, connection)
// with status once the message is handed to the bus: 202 means accepted,
// not delivered, as in Azure. Sending to nobody is not an error.
func (s *Server) restSend(kind string, status int) echo.HandlerFunc {
	return func(c echo.Context) error {
		hub, err := s.restHub(c)
		if err != nil {
			return err
		}
		a := &actions.Action{Action: kind}
		switch kind {
		case actions.Broadcast:
			if a.Excluded, err = restExcluded(c); err != nil {
				return err
			}
		case actions.SendToGroup:
			if a.Group, err = restGroup(c); err != nil {
				return err
			}
			if a.Excluded, err = restExcluded(c); err != nil {
				return err
			}
		case actions.SendToUser:
			if a.User, err = restUser(c); err != nil {
				return err
			}
		case actions.SendToConnection:
			if a.ConnectionID, err = restConnID(c); err != nil {
				return err
			}
		}
		if err := readMessage(c, a); err != nil {
			return err
		}
		if err := s.cfg.Gateway.Apply(c.Request().Context(), hub.Name, a); err != nil {
			return restApplyError(err)
		}
		return c.NoContent(status)
	}
}

// readMessage reads a send body into a: {"target": "…", "arguments": […]}
// in JSON, or in MessagePack as Azure also takes it (rest_msgpack.go).
func readMessage(c echo.Context, a *actions.Action) error {
	body, mt, err := readRESTBody(c)
	if err != nil {
		return err
	}
	var target string
	var args json.RawMessage
	switch mt {
	case mimeMsgpack:
		if target, args, err = decodeMsgpackMessage(body); err != nil {
			return restFail(http.StatusBadRequest, "Error.InvalidBody",
				`an application/x-msgpack body must be a MessagePack map {"target": "method", "arguments": [...]}: `+err.Error())
		}
	case mimeBinary:
		if target, args, err = decodeBinaryPayload(body); err != nil {
			return restFail(http.StatusBadRequest, "Error.InvalidBody",
				`an application/octet-stream body must be a MessagePack map from hub protocol ("json" or "messagepack") `+
					`to the serialized invocation, as Azure's Management SDK sends it: `+err.Error())
		}
	default:
		if target, args, err = jsonMessage(body); err != nil {
			return err
		}
	}
	if strings.TrimSpace(target) == "" {
		return restFail(http.StatusBadRequest, "Error.InvalidBody",
			`"target" is required: the name of the client method to invoke`)
	}
	if err := input.Target(target); err != nil {
		return restFail(http.StatusBadRequest, "Error.InvalidBody", "the "+err.Error())
	}
	if len(args) == 0 {
		args = []byte("[]")
	}
	a.Target, a.Arguments = target, args
	return nil
}

// jsonMessage reads a JSON send body.
func jsonMessage(body []byte) (string, json.RawMessage, error) {
	var msg struct {
		Target    *string         `json:"target"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return "", nil, restFail(http.StatusBadRequest, "Error.InvalidBody",
			`the body must be a JSON object {"target": "method", "arguments": [...]}: `+err.Error())
	}
	if msg.Target == nil {
		return "", nil, restFail(http.StatusBadRequest, "Error.InvalidBody",
			`"target" is required: the name of the client method to invoke`)
	}
	args := bytes.TrimSpace(msg.Arguments)
	switch {
	case len(args) == 0 || string(args) == "null":
		args = nil
	case args[0] != '[':
		return "", nil, restFail(http.StatusBadRequest, "Error.InvalidBody",
			`"arguments" must be a JSON array, e.g. ["hello"]`)
	}
	return *msg.Target, args, nil
}

// readRESTBody reads a request body of at most MaxRESTBody bytes and
// returns it with its media type ("" when the request names none).
func readRESTBody(c echo.Context) ([]byte, string, error) {
	r := c.Request()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	tooLarge := restFail(http.StatusRequestEntityTooLarge, "Error.BodyTooLarge",
		fmt.Sprintf("the body is larger than %d bytes; send smaller messages", MaxRESTBody))
	if r.ContentLength > MaxRESTBody {
		return nil, "", tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, MaxRESTBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", tooLarge
		}
		return nil, "", restFail(http.StatusBadRequest, "Error.InvalidBody", "reading the body: "+err.Error())
	}
	return body, mt, nil
}

// restApplyError maps an error of Gateway.Apply to a REST answer.
func restApplyError(err error) error {
	switch {
	case errors.Is(err, actions.ErrInvalid):
		return restFail(http.StatusBadRequest, "Error.InvalidParameter", err.Error())
	case errors.Is(err, gateway.ErrNoConnection):
		return restFail(http.StatusNotFound, "Error.Connection.NotExisted", err.Error())
	}
	return err
}

// pathParam returns the unescaped path parameter name. Echo matches on the
// raw path when the request has escapes it cannot undo (%2F), and then
// hands out escaped values.
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", restFail(http.StatusBadRequest, "Error.InvalidParameter",
			fmt.Sprintf("%s %q is not correctly URL-escaped", name, v))
	}
	return u, nil
}

// restGroup returns the {group} path parameter: 1 to 1024 characters, not
// only whitespace, as Azure requires, and no control characters
// (input.Group).
func restGroup(c echo.Context) (string, error) {
	g, err := pathParam(c, "group")
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(g) == "" {
		return "", restFail(http.StatusBadRequest, "Error.InvalidGroup",
			"the group name is empty; give a name of 1 to 1024 characters")
	}
	if err := input.Group(g); err != nil {
		return "", restFail(http.StatusBadRequest, "Error.InvalidGroup", "the "+err.Error())
	}
	return g, nil
}

// restUser returns the {user} path parameter (input.UserID).
func restUser(c echo.Context) (string, error) {
	u, err := pathParam(c, "user")
	if err != nil {
		return "", err
	}
	if err := input.UserID(u); err != nil {
		return "", restFail(http.StatusBadRequest, "Error.InvalidUser", "the "+err.Error())
	}
	return u, nil
}

// restConnID returns the {connectionId} path parameter
// (input.ConnectionID).
func restConnID(c echo.Context) (string, error) {
	id, err := pathParam(c, "connectionId")
	if err != nil {
		return "", err
	}
	if err := input.ConnectionID(id); err != nil {
		return "", restFail(http.StatusBadRequest, "Error.InvalidConnectionId", "the "+err.Error())
	}
	return id, nil
}

// restExcluded returns the excluded query parameters, each a connection id
// (input.ConnectionID).
func restExcluded(c echo.Context) ([]string, error) {
	ids := c.QueryParams()["excluded"]
	for _, id := range ids {
		if err := input.ConnectionID(id); err != nil {
			return nil, restFail(http.StatusBadRequest, "Error.InvalidParameter", "excluded: "+err.Error())
		}
	}
	return ids, nil
}

// restReason returns the reason query parameter (input.Reason).
func restReason(c echo.Context) (string, error) {
	r := c.QueryParam("reason")
	if err := input.Reason(r); err != nil {
		return "", restFail(http.StatusBadRequest, "Error.InvalidParameter", err.Error())
	}
	return r, nil
}
