package actions

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard-gw/switchboard/input"
)

// Names of the actions, as they appear in the "action" field on the wire.
const (
	Broadcast           = "broadcast"
	SendToGroup         = "sendToGroup"
	SendToUser          = "sendToUser"
	SendToConnection    = "sendToConnection"
	AddToGroup          = "addToGroup"
	RemoveFromGroup     = "removeFromGroup"
	AddUserToGroup      = "addUserToGroup"
	RemoveUserFromGroup = "removeUserFromGroup"
	CloseConnection     = "closeConnection"
)

// MaxGroupName is the longest group name accepted, as in Azure SignalR.
const MaxGroupName = input.MaxGroup

// DefaultMaxActions is how many actions one webhook reply or one REST
// batch may carry unless the gateway is configured otherwise (the REST
// batch's limit since it exists; node.Config.MaxActions changes both).
const DefaultMaxActions = 100

// Action is one instruction for the gateway. Which fields matter depends on
// Action; the others must be empty.
type Action struct {
	Action       string          `json:"action"`
	Target       string          `json:"target,omitempty"`
	Arguments    json.RawMessage `json:"arguments,omitempty"`
	Group        string          `json:"group,omitempty"`
	User         string          `json:"user,omitempty"`
	ConnectionID string          `json:"connectionId,omitempty"`
	Excluded     []string        `json:"excluded,omitempty"`
	Reason       string          `json:"reason,omitempty"`
	// TTL is the lifetime in seconds of a user's group membership
	// (addUserToGroup). Zero means it lasts until removed.
	TTL int64 `json:"ttl,omitempty"`
}

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("actions: invalid action")

// Validate reports the first problem with a, naming the action and the field.
// Caller-relative actions (addToGroup, removeFromGroup, closeConnection) may
// omit connectionId only when a caller exists, which callerKnown says.
// Targets, groups, users, connection ids and reasons must pass the rules of
// package input; the error then wraps input.ErrInvalid as well.
func (a *Action) Validate(callerKnown bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, a.name(), fmt.Sprintf(format, args...))
	}
	check := func(err error) error {
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalid, a.name(), err)
		}
		return nil
	}
	needTarget := func() error {
		if a.Target == "" {
			return bad("target is required")
		}
		if err := check(input.Target(a.Target)); err != nil {
			return err
		}
		if len(a.Arguments) > 0 && !isJSONArray(a.Arguments) {
			return bad("arguments must be a JSON array")
		}
		return nil
	}
	needGroup := func() error {
		if a.Group == "" {
			return bad("group is required")
		}
		return check(input.Group(a.Group))
	}
	needUser := func() error {
		if a.User == "" {
			return bad("user is required")
		}
		return check(input.UserID(a.User))
	}
	needConn := func(required bool) error {
		if a.ConnectionID == "" {
			if required {
				return bad("connectionId is required")
			}
			return nil
		}
		return check(input.ConnectionID(a.ConnectionID))
	}
	excluded := func() error {
		for _, id := range a.Excluded {
			if err := input.ConnectionID(id); err != nil {
				return check(fmt.Errorf("excluded: %w", err))
			}
		}
		return nil
	}
	switch a.Action {
	case Broadcast:
		if err := needTarget(); err != nil {
			return err
		}
		return excluded()
	case SendToGroup:
		if err := needGroup(); err != nil {
			return err
		}
		if err := needTarget(); err != nil {
			return err
		}
		return excluded()
	case SendToUser:
		if err := needUser(); err != nil {
			return err
		}
		return needTarget()
	case SendToConnection:
		if err := needConn(true); err != nil {
			return err
		}
		return needTarget()
	case AddToGroup, RemoveFromGroup:
		if err := needGroup(); err != nil {
			return err
		}
		return needConn(!callerKnown)
	case AddUserToGroup, RemoveUserFromGroup:
		if err := needUser(); err != nil {
			return err
		}
		if a.TTL < 0 {
			return bad("ttl must not be negative")
		}
		return needGroup()
	case CloseConnection:
		if err := needConn(!callerKnown); err != nil {
			return err
		}
		return check(input.Reason(a.Reason))
	case "":
		return fmt.Errorf("%w: the \"action\" field is missing", ErrInvalid)
	default:
		return fmt.Errorf("%w: unknown action %s", ErrInvalid, input.Quote(a.Action))
	}
}

func (a *Action) name() string { return a.Action }

func isJSONArray(raw json.RawMessage) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '[':
			return json.Valid(raw)
		default:
			return false
		}
	}
	return false
}

// Args encodes values as a JSON arguments array. It panics only when a value
// cannot be encoded as JSON, which is a programming error.
func Args(values ...any) json.RawMessage {
	if values == nil {
		values = []any{}
	}
	b, err := json.Marshal(values)
	if err != nil {
		panic(fmt.Sprintf("actions: arguments are not JSON-encodable: %v", err))
	}
	return b
}
