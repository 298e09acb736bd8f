package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/negotiate"
)

// Hub is a hub of the gateway. The zero value is not usable; get one from
// Client.Hub.
type Hub struct {
	c        *Client
	name     string
	excluded []string
}

// Name is the hub's name.
func (h Hub) Name() string { return h.name }

// Except returns a copy of h whose Broadcast and CloseAll skip the given
// connections (Azure's repeatable "excluded" parameter).
func (h Hub) Except(connectionIDs ...string) Hub {
	h.excluded = append(append([]string(nil), h.excluded...), connectionIDs...)
	return h
}

// Group names a group of the hub.
func (h Hub) Group(name string) Group { return Group{h: h.base(), name: name} }

// User names a user of the hub: every connection with that user id.
func (h Hub) User(id string) User { return User{h: h.base(), id: id} }

// Connection names one connection of the hub.
func (h Hub) Connection(id string) Connection { return Connection{h: h.base(), id: id} }

// base is h without exclusions, for the scopes derived from it.
func (h Hub) base() Hub { return Hub{c: h.c, name: h.name} }

// path is the escaped path of the hub followed by parts.
func (h Hub) path(parts ...string) string {
	return escapePath(append([]string{"api", "hubs", h.name}, parts...)...)
}

// Broadcast sends an invocation of target with args to every connection of
// the hub (except those of Except). The gateway accepts it for delivery
// (202); it does not wait for clients to receive it.
func (h Hub) Broadcast(ctx context.Context, target string, args ...any) error {
	return h.send(ctx, h.path(":send"), h.excluded, target, args)
}

// CloseAll closes every connection of the hub (except those of Except),
// with reason in the clients' Close message.
func (h Hub) CloseAll(ctx context.Context, reason string) error {
	_, err := h.c.do(ctx, http.MethodPost, h.path(":closeConnections"), closeQuery(reason, h.excluded), nil, nil)
	return err
}

// AddUserToGroup is h.User(user).AddToGroup(ctx, group, ttl).
func (h Hub) AddUserToGroup(ctx context.Context, user, group string, ttl time.Duration) error {
	return h.User(user).AddToGroup(ctx, group, ttl)
}

// ActionResult is the outcome of one action of a batch.
type ActionResult struct {
	Index  int    `json:"index"`
	Status string `json:"status"`          // "ok" or "error"
	Error  string `json:"error,omitempty"` // why, when Status is "error"
}

// Actions runs a batch of actions (DESIGN §6) in order and returns one
// result per action. The gateway validates the whole batch first: if any
// action is invalid, none runs and the call fails with a 400 *Error naming
// it. There is no caller, so actions that default to the caller's
// connection must name a connectionId.
func (h Hub) Actions(ctx context.Context, batch []actions.Action) ([]ActionResult, error) {
	if batch == nil {
		batch = []actions.Action{}
	}
	var out struct {
		Results []ActionResult `json:"results"`
	}
	if _, err := h.c.do(ctx, http.MethodPost, h.path(":actions"), nil, batch, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// GenerateToken asks the gateway for a client token for the hub, for userID
// ("" for none), valid for lifetime rounded up to whole minutes (zero means
// the gateway's default, one hour). Tokens can also be signed locally with
// negotiate.NewResponse; this call suits callers that should not hold the key.
func (h Hub) GenerateToken(ctx context.Context, userID string, lifetime time.Duration) (string, error) {
	resp, err := h.Negotiate(ctx, userID, lifetime)
	return resp.AccessToken, err
}

// Negotiate returns what an app's own negotiate function answers the stock
// SignalR client: the client URL of a live node (in a cluster, the least
// loaded one) and a token for userID ("" for none) valid for lifetime (zero
// means the gateway's default, 1 h). Because the gateway picks the node,
// clients spread over the cluster, and a client reconnecting after its node
// died is sent to one that is alive.
func (h Hub) Negotiate(ctx context.Context, userID string, lifetime time.Duration) (negotiate.Response, error) {
	q := url.Values{}
	if userID != "" {
		q.Set("userId", userID)
	}
	if lifetime > 0 {
		minutes := (lifetime + time.Minute - 1) / time.Minute
		q.Set("minutesToExpire", strconv.FormatInt(int64(minutes), 10))
	}
	var out struct {
		Token string `json:"token"`
		URL   string `json:"url"`
	}
	if _, err := h.c.do(ctx, http.MethodPost, h.path(":generateToken"), q, nil, &out); err != nil {
		return negotiate.Response{}, err
	}
	if out.Token == "" {
		return negotiate.Response{}, errors.New("rest: generate token: the gateway answered without a token")
	}
	if out.URL == "" { // a gateway that answers like Azure: the client URL is the endpoint's
		out.URL = negotiate.ClientURL(h.c.Endpoint(), h.name)
	}
	return negotiate.Response{URL: out.URL, AccessToken: out.Token}, nil
}

// Connections lists the hub's connections, pageSize (1 to 200; zero means
// the gateway's default) at a time.
func (h Hub) Connections(pageSize int) *Pages {
	return h.pages(h.path("connections"), pageSize)
}

// message is the body of the send operations.
type message struct {
	Target    string          `json:"target"`
	Arguments json.RawMessage `json:"arguments"`
}

func (h Hub) send(ctx context.Context, path string, excluded []string, target string, args []any) error {
	if args == nil {
		args = []any{}
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("rest: encode arguments of %q: %w", target, err)
	}
	var q url.Values
	if len(excluded) > 0 {
		q = url.Values{"excluded": excluded}
	}
	_, err = h.c.do(ctx, http.MethodPost, path, q, message{Target: target, Arguments: raw}, nil)
	return err
}

func closeQuery(reason string, excluded []string) url.Values {
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	if len(excluded) > 0 {
		q["excluded"] = excluded
	}
	return q
}

// exists answers a HEAD existence check: 200 is true, a 404 that names no
// error (Azure answers "Warning.…" or "Info.…" codes, or none) is false, and
// any other answer, a 404 for an unknown hub included, is an error.
func (h Hub) exists(ctx context.Context, path string) (bool, error) {
	_, err := h.c.do(ctx, http.MethodHead, path, nil, nil, nil)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound && !strings.HasPrefix(e.Code, "Error.") {
		return false, nil
	}
	return err == nil, err
}

// Group is a group of a hub. Get one from Hub.Group.
type Group struct {
	h        Hub
	name     string
	excluded []string
}

// Except returns a copy of g whose Send and Close skip the given connections.
func (g Group) Except(connectionIDs ...string) Group {
	g.excluded = append(append([]string(nil), g.excluded...), connectionIDs...)
	return g
}

// Send sends an invocation of target with args to the group's connections.
func (g Group) Send(ctx context.Context, target string, args ...any) error {
	return g.h.send(ctx, g.h.path("groups", g.name, ":send"), g.excluded, target, args)
}

// Exists reports whether the group has at least one connection.
func (g Group) Exists(ctx context.Context) (bool, error) {
	return g.h.exists(ctx, g.h.path("groups", g.name))
}

// Close closes the group's connections with reason.
func (g Group) Close(ctx context.Context, reason string) error {
	_, err := g.h.c.do(ctx, http.MethodPost, g.h.path("groups", g.name, ":closeConnections"), closeQuery(reason, g.excluded), nil, nil)
	return err
}

// Add adds a connection to the group. A connection that does not exist is
// a 404 *Error.
func (g Group) Add(ctx context.Context, connectionID string) error {
	_, err := g.h.c.do(ctx, http.MethodPut, g.h.path("groups", g.name, "connections", connectionID), nil, nil, nil)
	return err
}

// Remove removes a connection from the group.
func (g Group) Remove(ctx context.Context, connectionID string) error {
	_, err := g.h.c.do(ctx, http.MethodDelete, g.h.path("groups", g.name, "connections", connectionID), nil, nil, nil)
	return err
}

// Connections lists the group's connections, pageSize at a time (see
// Hub.Connections).
func (g Group) Connections(pageSize int) *Pages {
	return g.h.pages(g.h.path("groups", g.name, "connections"), pageSize)
}

// User is a user of a hub. Get one from Hub.User.
type User struct {
	h        Hub
	id       string
	excluded []string
}

// Except returns a copy of u whose Close skips the given connections.
func (u User) Except(connectionIDs ...string) User {
	u.excluded = append(append([]string(nil), u.excluded...), connectionIDs...)
	return u
}

// Send sends an invocation of target with args to every connection of the
// user. A user with no connection is not an error: nothing is sent.
func (u User) Send(ctx context.Context, target string, args ...any) error {
	return u.h.send(ctx, u.h.path("users", u.id, ":send"), nil, target, args)
}

// Exists reports whether the user has at least one connection.
func (u User) Exists(ctx context.Context) (bool, error) {
	return u.h.exists(ctx, u.h.path("users", u.id))
}

// Close closes the user's connections with reason.
func (u User) Close(ctx context.Context, reason string) error {
	_, err := u.h.c.do(ctx, http.MethodPost, u.h.path("users", u.id, ":closeConnections"), closeQuery(reason, u.excluded), nil, nil)
	return err
}

// AddToGroup adds the user to group: the user's current connections join
// it, and so do connections the user opens later, for ttl (rounded up to
// whole seconds). Zero or less means until removed.
func (u User) AddToGroup(ctx context.Context, group string, ttl time.Duration) error {
	var q url.Values
	if ttl > 0 {
		secs := (ttl + time.Second - 1) / time.Second
		q = url.Values{"ttl": {strconv.FormatInt(int64(secs), 10)}}
	}
	_, err := u.h.c.do(ctx, http.MethodPut, u.h.path("users", u.id, "groups", group), q, nil, nil)
	return err
}

// RemoveFromGroup removes the user, and the user's connections, from group.
func (u User) RemoveFromGroup(ctx context.Context, group string) error {
	_, err := u.h.c.do(ctx, http.MethodDelete, u.h.path("users", u.id, "groups", group), nil, nil, nil)
	return err
}

// RemoveFromAllGroups removes the user from every group.
func (u User) RemoveFromAllGroups(ctx context.Context) error {
	_, err := u.h.c.do(ctx, http.MethodDelete, u.h.path("users", u.id, "groups"), nil, nil, nil)
	return err
}

// InGroup reports whether the user is a member of group.
func (u User) InGroup(ctx context.Context, group string) (bool, error) {
	return u.h.exists(ctx, u.h.path("users", u.id, "groups", group))
}

// Connections lists the user's connections, pageSize at a time (see
// Hub.Connections).
func (u User) Connections(pageSize int) *Pages {
	return u.h.pages(u.h.path("users", u.id, "connections"), pageSize)
}

// Connection is one connection of a hub. Get one from Hub.Connection.
type Connection struct {
	h  Hub
	id string
}

// Send sends an invocation of target with args to the connection.
func (c Connection) Send(ctx context.Context, target string, args ...any) error {
	return c.h.send(ctx, c.h.path("connections", c.id, ":send"), nil, target, args)
}

// Exists reports whether the connection is open.
func (c Connection) Exists(ctx context.Context) (bool, error) {
	return c.h.exists(ctx, c.h.path("connections", c.id))
}

// Close closes the connection with reason in its Close message.
func (c Connection) Close(ctx context.Context, reason string) error {
	_, err := c.h.c.do(ctx, http.MethodDelete, c.h.path("connections", c.id), closeQuery(reason, nil), nil, nil)
	return err
}

// RemoveFromAllGroups removes the connection from every group.
func (c Connection) RemoveFromAllGroups(ctx context.Context) error {
	_, err := c.h.c.do(ctx, http.MethodDelete, c.h.path("connections", c.id, "groups"), nil, nil, nil)
	return err
}
