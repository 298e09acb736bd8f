package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/actions"
)

type batchResult struct {
	Index  int    `json:"index"`
	Status string `json:"status"` // "ok" or "error"
	Error  string `json:"error,omitempty"`
}

// restActions runs a batch of actions (DESIGN §6): at most
// Config.MaxActions, or the whole batch is refused. Every action is
// validated first, with no caller (so connectionId is required where an
// action needs one); one invalid action refuses the whole batch with 400
// naming its index, and none runs. Then they run in order, and a failure of
// one (a connection that is gone) does not stop the rest: the answer is 200
// with a result per action.
func (s *Server) restActions(c echo.Context) error {
	hub, err := s.restHub(c)
	if err != nil {
		return err
	}
	body, mt, err := readRESTBody(c)
	if err != nil {
		return err
	}
	if mt == mimeMsgpack || mt == mimeBinary {
		return restFail(http.StatusUnsupportedMediaType, "Error.UnsupportedMediaType",
			fmt.Sprintf("content type %q is not supported here: send the batch as application/json (MessagePack bodies are for the :send operations)", mt))
	}
	var list []actions.Action
	if err := json.Unmarshal(body, &list); err != nil {
		return restFail(http.StatusBadRequest, "Error.InvalidBody",
			`the body must be a JSON array of actions, e.g. [{"action":"broadcast","target":"news","arguments":["hi"]}]: `+err.Error())
	}
	if len(list) > s.cfg.MaxActions {
		return restFail(http.StatusBadRequest, "Error.InvalidBody",
			fmt.Sprintf("the batch has %d actions; the limit is %d, split it", len(list), s.cfg.MaxActions))
	}
	for i := range list {
		if err := list[i].Validate(false); err != nil {
			return restFail(http.StatusBadRequest, "Error.InvalidAction",
				fmt.Sprintf("action %d: %v; no action of this batch was run", i, err))
		}
	}
	if err := s.authorizeActions(c, hub.Name, list); err != nil {
		return err
	}
	ctx := c.Request().Context()
	results := make([]batchResult, len(list))
	for i := range list {
		results[i] = batchResult{Index: i, Status: "ok"}
		if err := s.cfg.Gateway.Apply(ctx, hub.Name, &list[i]); err != nil {
			if !errors.Is(err, actions.ErrInvalid) && !isNotFound(err) {
				s.log.Error("REST batch action failed", "hub", hub.Name, "index", i, "action", list[i].Action, "err", err)
			}
			results[i] = batchResult{Index: i, Status: "error", Error: err.Error()}
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"results": results})
}

func isNotFound(err error) bool {
	var re *restError
	return errors.As(restApplyError(err), &re) && re.status == http.StatusNotFound
}
