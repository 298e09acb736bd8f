package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/input"
)

// ErrBadReply is wrapped by every error ParseReply returns.
var ErrBadReply = errors.New("upstream: bad reply")

// NewReply returns an empty reply to build on. The builders below also work
// on a nil *Reply, allocating one, so `var r *Reply; r = r.Broadcast(…)`
// is fine.
//
// Builders that take values (WithResult and the arguments of the send
// builders) panic when a value cannot be encoded as JSON, as actions.Args
// does: that is a programming error, and Handler answers such a panic with a
// 500 rather than sending something the author did not mean.
func NewReply() *Reply { return &Reply{} }

func (r *Reply) orNew() *Reply {
	if r == nil {
		return &Reply{}
	}
	return r
}

// WithResult sets the invocation's return value (message events) to the JSON
// encoding of v. It panics if v cannot be encoded.
func (r *Reply) WithResult(v any) *Reply {
	r = r.orNew()
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("upstream: result is not JSON-encodable: %v", err))
	}
	r.Result = b
	return r
}

// WithError makes a message invocation fail with msg, or rejects a connect
// with msg as the reason.
func (r *Reply) WithError(msg string) *Reply {
	r = r.orNew()
	r.Error = msg
	return r
}

// SetUser sets the user id of a connection being accepted (connect events).
func (r *Reply) SetUser(id string) *Reply {
	r = r.orNew()
	r.UserID = &id
	return r
}

// JoinGroups adds groups the connection joins when accepted (connect events).
func (r *Reply) JoinGroups(groups ...string) *Reply {
	r = r.orNew()
	r.Groups = append(r.Groups, groups...)
	return r
}

func (r *Reply) add(a ...actions.Action) *Reply {
	r = r.orNew()
	r.Actions = append(r.Actions, a...)
	return r
}

// Broadcast sends target(args…) to every connection of the hub.
func (r *Reply) Broadcast(target string, args ...any) *Reply {
	return r.BroadcastExcept(nil, target, args...)
}

// BroadcastExcept sends target(args…) to every connection of the hub except
// the excluded connection ids.
func (r *Reply) BroadcastExcept(excluded []string, target string, args ...any) *Reply {
	return r.add(actions.Action{Action: actions.Broadcast, Target: target, Arguments: actions.Args(args...), Excluded: excluded})
}

// SendToGroup sends target(args…) to every connection in group.
func (r *Reply) SendToGroup(group, target string, args ...any) *Reply {
	return r.SendToGroupExcept(group, nil, target, args...)
}

// SendToGroupExcept sends target(args…) to every connection in group except
// the excluded connection ids.
func (r *Reply) SendToGroupExcept(group string, excluded []string, target string, args ...any) *Reply {
	return r.add(actions.Action{Action: actions.SendToGroup, Group: group, Target: target, Arguments: actions.Args(args...), Excluded: excluded})
}

// SendToUser sends target(args…) to every connection of user.
func (r *Reply) SendToUser(user, target string, args ...any) *Reply {
	return r.add(actions.Action{Action: actions.SendToUser, User: user, Target: target, Arguments: actions.Args(args...)})
}

// SendToConnection sends target(args…) to one connection.
func (r *Reply) SendToConnection(connectionID, target string, args ...any) *Reply {
	return r.add(actions.Action{Action: actions.SendToConnection, ConnectionID: connectionID, Target: target, Arguments: actions.Args(args...)})
}

// AddToGroup adds the given connections to group; with none, the connection
// that caused the event.
func (r *Reply) AddToGroup(group string, connectionID ...string) *Reply {
	return r.add(perConnection(actions.Action{Action: actions.AddToGroup, Group: group}, connectionID)...)
}

// RemoveFromGroup removes the given connections from group; with none, the
// connection that caused the event.
func (r *Reply) RemoveFromGroup(group string, connectionID ...string) *Reply {
	return r.add(perConnection(actions.Action{Action: actions.RemoveFromGroup, Group: group}, connectionID)...)
}

// AddUserToGroup adds every current and future connection of user to group.
// A positive ttl limits the membership, rounded up to whole seconds so a
// short ttl never turns into "forever"; zero means until removed.
func (r *Reply) AddUserToGroup(user, group string, ttl time.Duration) *Reply {
	secs := int64(ttl / time.Second)
	if ttl%time.Second > 0 {
		secs++
	}
	return r.add(actions.Action{Action: actions.AddUserToGroup, User: user, Group: group, TTL: secs})
}

// RemoveUserFromGroup removes user, and all its connections, from group.
func (r *Reply) RemoveUserFromGroup(user, group string) *Reply {
	return r.add(actions.Action{Action: actions.RemoveUserFromGroup, User: user, Group: group})
}

// CloseConnection closes the given connections with reason; with none, the
// connection that caused the event.
func (r *Reply) CloseConnection(reason string, connectionID ...string) *Reply {
	return r.add(perConnection(actions.Action{Action: actions.CloseConnection, Reason: reason}, connectionID)...)
}

// perConnection copies a once per id, or returns it alone (meaning the
// caller) when ids is empty.
func perConnection(a actions.Action, ids []string) []actions.Action {
	if len(ids) == 0 {
		return []actions.Action{a}
	}
	out := make([]actions.Action, len(ids))
	for i, id := range ids {
		out[i] = a
		out[i].ConnectionID = id
	}
	return out
}

// wireReply mirrors Reply with actions kept raw, so each can be decoded and
// reported on its own with its index.
type wireReply struct {
	UserID  *string           `json:"userId"`
	Groups  []string          `json:"groups"`
	Result  json.RawMessage   `json:"result"`
	Error   string            `json:"error"`
	Actions []json.RawMessage `json:"actions"`
}

// ParseOption tunes ParseReply.
type ParseOption func(*parseOptions)

type parseOptions struct {
	maxActions int
}

// WithMaxActions sets how many actions a reply may carry. Zero or less means
// actions.DefaultMaxActions (100).
func WithMaxActions(n int) ParseOption {
	return func(o *parseOptions) { o.maxActions = n }
}

// ParseReply decodes a handler's reply body. The body must be a JSON object;
// an empty body (a 204) is a nil *Reply and a nil error. A connect reply's
// userId and groups must pass input.UserID and input.Group (an empty userId
// makes the connection anonymous); each action is checked with
// Validate(callerKnown), and there may be at most actions.DefaultMaxActions
// of them (see WithMaxActions). Errors name the offending element, e.g.
// `actions[2]: unknown action "explode"`. Unknown fields are ignored so
// replies can grow.
func ParseReply(body []byte, callerKnown bool, opts ...ParseOption) (*Reply, error) {
	o := parseOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxActions <= 0 {
		o.maxActions = actions.DefaultMaxActions
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: the body must be a JSON object", ErrBadReply)
	}
	if result, ok := onlyResult(trimmed); ok {
		return &Reply{Result: result}, nil
	}
	return parseObject(trimmed, callerKnown, o)
}

// parseObject is ParseReply for any JSON object.
func parseObject(trimmed []byte, callerKnown bool, o parseOptions) (*Reply, error) {
	var w wireReply
	if err := json.Unmarshal(trimmed, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReply, err)
	}
	rep := &Reply{UserID: w.UserID, Groups: w.Groups, Result: w.Result, Error: w.Error}
	if err := rep.ValidateConnect(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	if len(w.Actions) > o.maxActions {
		return nil, fmt.Errorf("%w: the reply carries %d actions; the limit is %d per reply", ErrBadReply, len(w.Actions), o.maxActions)
	}
	if len(w.Actions) > 0 {
		rep.Actions = make([]actions.Action, len(w.Actions))
	}
	for i, raw := range w.Actions {
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("%w: actions[%d]: an action must be a JSON object", ErrBadReply, i)
		}
		a := &rep.Actions[i]
		if err := json.Unmarshal(raw, a); err != nil {
			return nil, fmt.Errorf("%w: actions[%d]: %v", ErrBadReply, i, err)
		}
		if err := a.Validate(callerKnown); err != nil {
			return nil, &actionError{index: i, err: err}
		}
	}
	return rep, nil
}

// onlyResult reads a reply of the form {"result":VALUE}, the usual answer
// to an invocation, without json.Unmarshal's reflection (about 4% of the
// gateway's CPU per invocation): it returns a copy of VALUE, as Unmarshal
// would store it in Result, and false for any other reply, which then
// takes the general path. FuzzOnlyResult holds the two to the same answer.
func onlyResult(obj []byte) (json.RawMessage, bool) {
	const prefix = `{"result":`
	if len(obj) < len(prefix)+2 || string(obj[:len(prefix)]) != prefix || obj[len(obj)-1] != '}' {
		return nil, false
	}
	value := bytes.Trim(obj[len(prefix):len(obj)-1], jsonSpace)
	// Valid takes exactly one JSON value: a second member (`1,"error":…`)
	// or a stray brace fails it.
	if len(value) == 0 || !json.Valid(value) {
		return nil, false
	}
	return bytes.Clone(value), true
}

// jsonSpace is JSON's whitespace, narrower than bytes.TrimSpace's.
const jsonSpace = " \t\n\r"

// ValidateConnect checks what a connect reply sets on the connection: a
// non-empty UserID must pass input.UserID and every group input.Group (an
// empty UserID makes the connection anonymous). The error names the field,
// e.g. `groups[1]: group name is only whitespace`, and wraps
// input.ErrInvalid. ParseReply calls it; the gateway may call it again on a
// Reply that did not come through ParseReply.
func (r *Reply) ValidateConnect() error {
	if r == nil {
		return nil
	}
	if r.UserID != nil && *r.UserID != "" {
		if err := input.UserID(*r.UserID); err != nil {
			return fmt.Errorf("userId: %w", err)
		}
	}
	for i, g := range r.Groups {
		if err := input.Group(g); err != nil {
			return fmt.Errorf("groups[%d]: %w", i, err)
		}
	}
	return nil
}

// actionError reports an invalid action by index. It unwraps to both
// ErrBadReply and the actions.ErrInvalid error, and drops the latter's
// "actions: invalid action: " prefix from its text, which already says so.
type actionError struct {
	index int
	err   error
}

func (e *actionError) Error() string {
	msg := strings.TrimPrefix(e.err.Error(), actions.ErrInvalid.Error()+": ")
	return fmt.Sprintf("%v: actions[%d]: %s", ErrBadReply, e.index, msg)
}

func (e *actionError) Unwrap() []error { return []error{ErrBadReply, e.err} }
