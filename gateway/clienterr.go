package gateway

import (
	"errors"
	"fmt"
	"strings"

	"github.com/switchboard-gw/switchboard/actions"
)

// ClientError is an error that knows what a client may be told about it.
// Error is the full story, for the gateway log; ClientMessage is the short
// form a rejected connect or a failed invocation shows the client: no
// addresses, no transport errors, no upstream answer bodies. The errors of
// delivery.Dispatcher's Call implement it.
type ClientError interface {
	error
	ClientMessage() string
}

// Client texts for errors that carry none of their own.
const (
	clientUpstreamFailed = "the upstream call failed; the gateway log has the details"
	clientActionFailed   = "failed; the gateway log has the details"
)

// clientMessage is what the client is told about err: its ClientMessage,
// each part's for joined errors, else a generic text.
func clientMessage(err error, generic string) string {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		parts := joined.Unwrap()
		texts := make([]string, 0, len(parts))
		for _, e := range parts {
			texts = append(texts, clientMessage(e, generic))
		}
		return strings.Join(texts, "\n")
	}
	var ce ClientError
	if errors.As(err, &ce) {
		return ce.ClientMessage()
	}
	return generic
}

// actionError is the failure of one action of a reply. Its text, for the
// log, wraps the cause; its client message names the action and, for a
// connection that is not there, the connection, or gives the cause's own
// client message (a join past the groups limit), and nothing else.
type actionError struct {
	index  int
	action actions.Action
	err    error
}

func (e *actionError) Error() string {
	return fmt.Sprintf("actions[%d] %s: %v", e.index, e.action.Action, e.err)
}

func (e *actionError) Unwrap() error { return e.err }

func (e *actionError) ClientMessage() string {
	if errors.Is(e.err, ErrNoConnection) {
		return fmt.Sprintf("actions[%d] %s: connection %q not found", e.index, e.action.Action, e.action.ConnectionID)
	}
	var ce ClientError
	if errors.As(e.err, &ce) {
		return fmt.Sprintf("actions[%d] %s: %s", e.index, e.action.Action, ce.ClientMessage())
	}
	return fmt.Sprintf("actions[%d] %s %s", e.index, e.action.Action, clientActionFailed)
}
