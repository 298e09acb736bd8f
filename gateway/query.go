package gateway

import (
	"fmt"
	"slices"
	"strings"

	"github.com/switchboard-gw/switchboard/protocol"
)

// This file holds the operations the server REST API needs beyond Apply:
// existence checks, presence listings and the many-connection operations
// (close a group, a user or a hub; leave every group). They act on this
// node's connections only; sends and single-connection changes go through
// Apply so they reach every node.

// Scope selects connections of a hub: those in Group, those of User, or,
// with both empty, all of them. Setting both is an error.
type Scope struct {
	Group string
	User  string
}

// ConnInfo is one connection in a presence listing.
type ConnInfo struct {
	ConnectionID string
	UserID       string // "" when anonymous
}

// ConnectionExists reports whether connection id is open in hub.
func (g *Gateway) ConnectionExists(hub, id string) bool {
	h := g.lookupHub(hub)
	return h != nil && h.conn(id) != nil
}

// UserExists reports whether user has at least one open connection in hub.
func (g *Gateway) UserExists(hub, user string) bool {
	h := g.lookupHub(hub)
	return h != nil && len(members(&h.users, user)) > 0
}

// GroupExists reports whether group has at least one member in hub.
func (g *Gateway) GroupExists(hub, group string) bool {
	h := g.lookupHub(hub)
	return h != nil && len(members(&h.groups, group)) > 0
}

// UserInGroup reports whether user belongs to group: by a saved, unexpired
// user-group membership, or because one of the user's open connections is
// in the group.
func (g *Gateway) UserInGroup(hub, user, group string) (bool, error) {
	if h := g.lookupHub(hub); h != nil {
		for _, c := range members(&h.users, user) {
			if slices.Contains(c.Groups(), group) {
				return true, nil
			}
		}
	}
	var saved []string
	if s := g.cfg.UserGroups; s != nil {
		var err error
		if saved, err = s.UserGroups(hub, user); err != nil {
			return false, fmt.Errorf("gateway: load user groups: %w", err)
		}
	} else {
		saved = g.hub(hub).memUserGroups(user, g.cfg.Now())
	}
	return slices.Contains(saved, group), nil
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
func (g *Gateway) Connections(hub string, scope Scope, after string, limit int) (page []ConnInfo, more bool, err error) {
	if scope.Group != "" && scope.User != "" {
		return nil, false, fmt.Errorf("gateway: list connections: scope sets both group and user")
	}
	if limit < 1 {
		return nil, false, fmt.Errorf("gateway: list connections: limit %d is below 1", limit)
	}
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

// CloseConnections closes every connection of scope in hub except those in
// excluded, sending each a SignalR Close message with reason, and returns
// how many it closed.
func (g *Gateway) CloseConnections(hub string, scope Scope, excluded []string, reason string) (int, error) {
	if scope.Group != "" && scope.User != "" {
		return 0, fmt.Errorf("gateway: close connections: scope sets both group and user")
	}
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
	msg := protocol.AppendClose(nil, reason, false)
	if reason == "" {
		reason = "closed by the server"
	}
	skip := excluder(excluded)
	n := 0
	for _, c := range conns {
		if !skip(c.id) {
			c.closeWith(CloseNormal, reason, msg)
			n++
		}
	}
	return n, nil
}

// RemoveFromAllGroups takes connection id out of every group it is in. It
// returns ErrNoConnection if the connection is not open on this node.
func (g *Gateway) RemoveFromAllGroups(hub, id string) error {
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
// takes the user's open connections out of every group they are in.
func (g *Gateway) RemoveUserFromAllGroups(hub, user string) error {
	h := g.hub(hub)
	if s := g.cfg.UserGroups; s != nil {
		if err := s.RemoveUserFromAllGroups(hub, user); err != nil {
			return fmt.Errorf("gateway: remove user groups: %w", err)
		}
	} else {
		for _, grp := range h.memUserGroups(user, g.cfg.Now()) {
			h.memRemoveUserGroup(user, grp)
		}
	}
	for _, c := range members(&h.users, user) {
		for _, grp := range c.Groups() {
			h.leaveGroup(c, grp)
		}
	}
	return nil
}
