package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// This file holds the operations the server REST API needs beyond Apply:
// existence checks, presence listings and the many-connection operations
// (close a group, a user or a hub; leave every group). The exported methods
// answer for the whole cluster through the Bus (see cluster.go); the *Local
// ones are each node's part.

// Scope selects connections of a hub: those in Group, those of User, or,
// with both empty, all of them. Setting both is an error.
type Scope struct {
	Group string
	User  string
}

// Validate reports a scope that sets both Group and User.
func (s Scope) Validate() error {
	if s.Group != "" && s.User != "" {
		return errors.New("gateway: scope sets both group and user")
	}
	return nil
}

// ConnInfo is one connection in a presence listing.
type ConnInfo struct {
	ConnectionID string
	UserID       string // "" when anonymous
}

// ConnectionExists reports whether connection id is open in hub on any node.
func (g *Gateway) ConnectionExists(ctx context.Context, hub, id string) (bool, error) {
	return g.ask(ctx, &Query{Hub: hub, Kind: QueryConnection, ConnectionID: id})
}

// UserExists reports whether user has an open connection in hub on any node.
func (g *Gateway) UserExists(ctx context.Context, hub, user string) (bool, error) {
	return g.ask(ctx, &Query{Hub: hub, Kind: QueryUser, User: user})
}

// GroupExists reports whether group has a member in hub on any node.
func (g *Gateway) GroupExists(ctx context.Context, hub, group string) (bool, error) {
	return g.ask(ctx, &Query{Hub: hub, Kind: QueryGroup, Group: group})
}

// UserInGroup reports whether user belongs to group: by a saved, unexpired
// user-group membership, or because one of the user's open connections, on
// any node, is in the group.
func (g *Gateway) UserInGroup(ctx context.Context, hub, user, group string) (bool, error) {
	saved, err := g.cfg.UserGroups.UserGroups(ctx, hub, user)
	if err != nil {
		return false, fmt.Errorf("gateway: load user groups: %w", err)
	}
	if slices.ContainsFunc(saved, func(ug UserGroup) bool { return ug.Group == group }) {
		return true, nil
	}
	return g.ask(ctx, &Query{Hub: hub, Kind: QueryUserInGroup, User: user, Group: group})
}

func (g *Gateway) ask(ctx context.Context, q *Query) (bool, error) {
	answers, err := g.gather(ctx, q)
	if err != nil {
		return false, err
	}
	return found(answers), nil
}

func (g *Gateway) connectionExistsLocal(hub, id string) bool {
	h := g.lookupHub(hub)
	return h != nil && h.conn(id) != nil
}

func (g *Gateway) userExistsLocal(hub, user string) bool {
	h := g.lookupHub(hub)
	return h != nil && hasMembers(&h.users, user)
}

func (g *Gateway) groupExistsLocal(hub, group string) bool {
	h := g.lookupHub(hub)
	return h != nil && hasMembers(&h.groups, group)
}

func (g *Gateway) userInGroupLocal(hub, user, group string) bool {
	h := g.lookupHub(hub)
	if h == nil {
		return false
	}
	for _, c := range members(&h.users, user) {
		if slices.Contains(c.Groups(), group) {
			return true
		}
	}
	return false
}

// Connections returns up to limit connections of scope in hub whose ids are
// greater than after, in ascending id order, and whether more follow.
//
// Ordering by id makes paging correct while connections come and go without
// any server-side cursor: a walk that passes the last id of each page as
// after never sees an id twice (ids only grow along the walk), and a
// connection open for the whole walk is never skipped (its id lies in
// exactly one page's range). Connections opened during the walk appear when
// their random id falls after the current position. Each page costs a copy
// and a sort of the matching ids: O(n log n) for n members.
//
// Across a cluster each node returns its first limit ids after after; the
// merge keeps the smallest limit of them, so the rule holds for the union.
func (g *Gateway) Connections(ctx context.Context, hub string, scope Scope, after string, limit int) (page []ConnInfo, more bool, err error) {
	q := &Query{Hub: hub, Kind: QueryList, Scope: scope, After: after, Limit: limit}
	if err := q.Validate(); err != nil {
		return nil, false, err
	}
	answers, err := g.gather(ctx, q)
	if err != nil {
		return nil, false, err
	}
	var all []ConnInfo
	for _, a := range answers {
		all = append(all, a.Conns...)
		more = more || a.More
	}
	slices.SortFunc(all, func(a, b ConnInfo) int { return strings.Compare(a.ConnectionID, b.ConnectionID) })
	all = slices.CompactFunc(all, func(a, b ConnInfo) bool { return a.ConnectionID == b.ConnectionID })
	if len(all) > limit {
		return all[:limit:limit], true, nil
	}
	return all, more, nil
}

func (g *Gateway) connectionsLocal(hub string, scope Scope, after string, limit int) (page []ConnInfo, more bool, err error) {
	h := g.lookupHub(hub)
	if h == nil {
		return nil, false, nil
	}
	var all []ConnInfo
	keep := func(c *Conn) {
		if c.id > after {
			all = append(all, ConnInfo{ConnectionID: c.id, UserID: c.userID})
		}
	}
	switch {
	case scope.Group != "":
		eachMember(&h.groups, scope.Group, keep)
	case scope.User != "":
		eachMember(&h.users, scope.User, keep)
	default:
		h.eachConn(keep)
	}
	slices.SortFunc(all, func(a, b ConnInfo) int { return strings.Compare(a.ConnectionID, b.ConnectionID) })
	if len(all) > limit {
		return all[:limit:limit], true, nil
	}
	return all, false, nil
}

// CloseConnections closes every connection of scope in hub, on every node,
// except those in excluded, sending each a SignalR Close message with reason.
func (g *Gateway) CloseConnections(ctx context.Context, hub string, scope Scope, excluded []string, reason string) error {
	if err := scope.Validate(); err != nil {
		return err
	}
	op := &Op{Hub: hub, Close: &CloseOp{Scope: scope, Excluded: excluded, Reason: reason}}
	op.setTrace(ctx)
	return g.publish(ctx, op)
}

// closeLocal closes this node's connections of scope and returns how many;
// cause is the trace context of who asked.
func (g *Gateway) closeLocal(hub string, scope Scope, excluded []string, reason string, cause trace.SpanContext) (int, error) {
	h := g.lookupHub(hub)
	if h == nil {
		return 0, nil
	}
	var conns []*Conn
	switch {
	case scope.Group != "":
		conns = members(&h.groups, scope.Group)
	case scope.User != "":
		conns = members(&h.users, scope.User)
	default:
		h.eachConn(func(c *Conn) { conns = append(conns, c) })
	}
	frames := closeFrames(&h.codecs, reason, false)
	if reason == "" {
		reason = "closed by the server"
	}
	skip := excluder(excluded)
	n := 0
	for _, c := range conns {
		if !skip(c.id) {
			c.closeCausedBy(cause, CloseNormal, reason, frames.get(c.codec))
			n++
		}
	}
	return n, nil
}

// RemoveFromAllGroups takes connection id out of every group it is in. It
// returns ErrNoConnection if the connection is not open.
func (g *Gateway) RemoveFromAllGroups(ctx context.Context, hub, id string) error {
	return g.publish(ctx, &Op{Hub: hub, LeaveAll: &LeaveAllOp{ConnectionID: id}})
}

func (g *Gateway) leaveAllLocal(hub, id string) error {
	h := g.lookupHub(hub)
	var c *Conn
	if h != nil {
		c = h.conn(id)
	}
	if c == nil {
		return fmt.Errorf("%w: %q", ErrNoConnection, id)
	}
	for _, grp := range c.Groups() {
		h.leaveGroup(c, grp)
	}
	return nil
}

// RemoveUserFromAllGroups deletes every saved group membership of user and
// takes the user's open connections, on every node, out of every group they
// are in.
func (g *Gateway) RemoveUserFromAllGroups(ctx context.Context, hub, user string) error {
	if err := g.cfg.UserGroups.RemoveUserFromAllGroups(ctx, hub, user); err != nil {
		return fmt.Errorf("gateway: remove user groups: %w", err)
	}
	return g.publish(ctx, &Op{Hub: hub, LeaveAll: &LeaveAllOp{User: user}})
}

func (g *Gateway) userLeaveAllLocal(hub, user string) {
	h := g.lookupHub(hub)
	if h == nil {
		return
	}
	for _, c := range members(&h.users, user) {
		for _, grp := range c.Groups() {
			h.leaveGroup(c, grp)
		}
	}
}
