package gateway

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-gw/switchboard/actions"
)

// Apply carries out a on every node concerned: a user's group membership is
// saved once, here, then the action travels through the Bus. a must be valid
// (actions.Validate with no caller): it is checked where it entered the
// gateway (webhook reply, REST request, bus message), not again here.
func (g *Gateway) Apply(ctx context.Context, hub string, a *actions.Action) error {
	op := &Op{Hub: hub, Action: a}
	switch a.Action {
	case actions.CloseConnection:
		op.setTrace(ctx)
	case actions.AddUserToGroup:
		until, err := g.saveUserGroup(ctx, hub, a)
		if err != nil {
			return err
		}
		op.Until = until
	case actions.RemoveUserFromGroup:
		if err := g.forgetUserGroup(ctx, hub, a); err != nil {
			return err
		}
	}
	return g.publish(ctx, op)
}

// ApplyLocal carries out a validated action on this node's connections.
// Sends to nobody are not errors; a group change or close for a connection
// this node does not hold is ErrNoConnection. User-group memberships are
// saved by Apply; here they only change the user's connections on this node
// (one with a ttl ends ttl seconds from now, see sweep).
func (g *Gateway) ApplyLocal(hubName string, a *actions.Action) error {
	return g.applyLocal(hubName, a, time.Time{}, trace.SpanContext{})
}

// applyLocal is ApplyLocal with the end of an addUserToGroup membership as
// its origin computed it (zero: now plus the action's ttl, if any) and, for
// a close, the trace context of its cause.
func (g *Gateway) applyLocal(hubName string, a *actions.Action, until time.Time, cause trace.SpanContext) error {
	switch a.Action {
	case actions.AddUserToGroup, actions.RemoveUserFromGroup:
		g.userGroupLocal(hubName, a, until)
		return nil
	}
	h := g.lookupHub(hubName)
	if h == nil {
		switch a.Action {
		case actions.AddToGroup, actions.RemoveFromGroup, actions.CloseConnection:
			return fmt.Errorf("%w: %q", ErrNoConnection, a.ConnectionID)
		}
		return nil
	}
	// n counts the recipients the message was queued for and those it was
	// not, added to the hub's counters once per action so fan-out adds no
	// shared write per recipient.
	var n tally
	defer n.addTo(h)
	switch a.Action {
	case actions.Broadcast:
		frames := invocationFrames(&h.codecs, a.Target, a.Arguments)
		skip := excluder(a.Excluded)
		h.eachConn(func(c *Conn) {
			if !skip(c.id) {
				n.add(c.enqueueFrame(&frames))
			}
		})
	case actions.SendToGroup:
		frames := invocationFrames(&h.codecs, a.Target, a.Arguments)
		skip := excluder(a.Excluded)
		eachMember(&h.groups, a.Group, func(c *Conn) {
			if !skip(c.id) {
				n.add(c.enqueueFrame(&frames))
			}
		})
	case actions.SendToUser:
		frames := invocationFrames(&h.codecs, a.Target, a.Arguments)
		eachMember(&h.users, a.User, func(c *Conn) { n.add(c.enqueueFrame(&frames)) })
	case actions.SendToConnection:
		if c := h.conn(a.ConnectionID); c != nil {
			if msg, err := c.codec.AppendInvocation(nil, "", a.Target, a.Arguments); err == nil {
				n.add(c.enqueueTracked(msg))
			} else {
				n.add(false)
				g.log.Warn("message has no form in the connection's protocol; not sent", "hub", hubName, "conn", c.id, "err", err)
			}
		}
	case actions.AddToGroup, actions.RemoveFromGroup:
		c := h.conn(a.ConnectionID)
		if c == nil {
			return fmt.Errorf("%w: %q", ErrNoConnection, a.ConnectionID)
		}
		if a.Action == actions.AddToGroup {
			return h.joinGroup(c, a.Group)
		}
		h.leaveGroup(c, a.Group)
	case actions.CloseConnection:
		c := h.conn(a.ConnectionID)
		if c == nil {
			return fmt.Errorf("%w: %q", ErrNoConnection, a.ConnectionID)
		}
		reason := a.Reason
		if reason == "" {
			reason = "closed by the server"
		}
		c.closeCausedBy(cause, CloseNormal, reason, c.codec.AppendClose(nil, a.Reason, false))
	default:
		return fmt.Errorf("%w: unknown action %q", actions.ErrInvalid, a.Action)
	}
	return nil
}

// excluder returns a predicate for connection ids in excluded.
func excluder(excluded []string) func(string) bool {
	switch {
	case len(excluded) == 0:
		return func(string) bool { return false }
	case len(excluded) <= 8:
		return func(id string) bool { return slices.Contains(excluded, id) }
	}
	set := make(map[string]struct{}, len(excluded))
	for _, id := range excluded {
		set[id] = struct{}{}
	}
	return func(id string) bool { _, ok := set[id]; return ok }
}

// saveUserGroup records a user's membership so it reaches the user's future
// connections, with its end when the action has a ttl, and returns that end.
func (g *Gateway) saveUserGroup(ctx context.Context, hubName string, a *actions.Action) (time.Time, error) {
	expires := g.membershipEnd(a.TTL)
	if err := g.cfg.UserGroups.AddUserToGroup(ctx, hubName, a.User, a.Group, expires); err != nil {
		return time.Time{}, fmt.Errorf("gateway: save user group: %w", err)
	}
	return expires, nil
}

// MaxTTL is the longest user-group membership ttl, in seconds: Azure's
// int32. A longer one from a webhook reply is cut to it.
const MaxTTL = math.MaxInt32

// membershipEnd is when a membership added now with ttl seconds ends; zero
// for no ttl.
func (g *Gateway) membershipEnd(ttl int64) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return g.cfg.Now().Add(time.Duration(min(ttl, MaxTTL)) * time.Second).Round(0)
}

func (g *Gateway) forgetUserGroup(ctx context.Context, hubName string, a *actions.Action) error {
	if err := g.cfg.UserGroups.RemoveUserFromGroup(ctx, hubName, a.User, a.Group); err != nil {
		return fmt.Errorf("gateway: remove user group: %w", err)
	}
	return nil
}

// userGroupLocal joins or leaves the user's connections on this node. A
// join with a ttl lasts until until, or ttl seconds from now when the op
// did not carry its end.
func (g *Gateway) userGroupLocal(hubName string, a *actions.Action, until time.Time) {
	h := g.lookupHub(hubName)
	if h == nil {
		return
	}
	if a.Action == actions.AddUserToGroup && until.IsZero() {
		until = g.membershipEnd(a.TTL)
	}
	for _, c := range members(&h.users, a.User) {
		if a.Action != actions.AddUserToGroup {
			h.leaveGroup(c, a.Group)
		} else if err := h.joinUserGroup(c, a.Group, until); err != nil {
			// The membership is saved; this connection of the user is
			// left out of the group (counted), the others join.
			g.log.Warn("connection of a user added to a group did not join it", "hub", hubName, "user", a.User,
				"group", a.Group, "conn", c.id, "err", err)
		}
	}
}

// userGroups returns the memberships a user's new connection joins. The
// store is asked with at most StoreTimeout: a connect must not hang on an
// outage.
//
// The lookup (a bbolt read, JSON) runs deep. On the connection's own
// goroutine it grew the stack to 8 KiB, which the idle read loop (about
// 2.5 KiB deep) then kept for the connection's life, since the runtime
// halves a stack only while less than a quarter of it is in use: about
// 3 KiB more per idle connection with a user id. A pooled goroutine,
// whose stack has grown already, makes it while this one waits.
func (g *Gateway) userGroups(ctx context.Context, h *hub, user string) []UserGroup {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.StoreTimeout)
	defer cancel()
	var groups []UserGroup
	var err error
	done := make(chan struct{})
	g.workers.run(workerTurn{fn: func() {
		defer close(done)
		groups, err = g.cfg.UserGroups.UserGroups(ctx, h.name, user)
	}})
	<-done
	if err != nil {
		g.log.Error("loading user groups; the connection joins none of them", "hub", h.name, "user", user, "err", err)
	}
	return groups
}
