package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/internal/tracing"
)

// This file is the gateway's side of clustering. Everything that may concern
// connections on other nodes travels as an Op (published) or a Query
// (gathered) through the Bus; each node applies or answers it against its own
// connections with ApplyOp and AnswerQuery. A gateway configured without a
// Bus is its own, only, node: its in-memory bus (localBus) applies and
// answers everything here, so there is one path whatever the deployment.

// Op is a change for every node that may hold affected connections: an
// action, or one of the REST operations that have no action of their own.
// Exactly one of Action, Close and LeaveAll is set.
type Op struct {
	Hub      string          `json:"hub"`
	Action   *actions.Action `json:"action,omitempty"`
	Close    *CloseOp        `json:"close,omitempty"`
	LeaveAll *LeaveAllOp     `json:"leaveAll,omitempty"`
	// Until is the end of an addUserToGroup membership with a ttl, as the
	// node that saved it computed it: every node ends the membership of
	// its connections then (the sweep), the moment the saved one expires,
	// rather than ttl seconds after the op reached it. Zero otherwise.
	Until time.Time `json:"until,omitzero"`
	// TraceParent and TraceState are the W3C trace context of the request
	// that asked for a close (a closeConnection action, a REST close), so
	// the disconnected events it causes, on whichever node, continue its
	// trace. Empty for the other ops, which cause no webhook.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
}

// CloseOp closes the connections of Scope except Excluded.
type CloseOp struct {
	Scope    Scope    `json:"scope"`
	Excluded []string `json:"excluded,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

// LeaveAllOp takes a connection, or every connection of a user, out of all
// groups.
type LeaveAllOp struct {
	ConnectionID string `json:"connectionId,omitempty"`
	User         string `json:"user,omitempty"`
}

// RouteKind says which nodes an Op or Query concerns.
type RouteKind string

// Routes. A bus delivers RouteHub ops to nodes with connections in the hub,
// RouteGroup and RouteUser ops to nodes holding a member, RouteNode ops to
// the one node named, and RouteAll queries to every live node.
const (
	RouteHub   RouteKind = "hub"
	RouteGroup RouteKind = "group"
	RouteUser  RouteKind = "user"
	RouteNode  RouteKind = "node"
	RouteAll   RouteKind = "all"
)

// Route is where an Op or Query goes: a kind and, for group, user and node,
// the name.
type Route struct {
	Kind RouteKind
	Name string
}

// NodeOf returns the node id a connection id carries ("" if none).
func NodeOf(connectionID string) string {
	node, _, ok := strings.Cut(connectionID, ".")
	if !ok {
		return ""
	}
	return node
}

// Route says which nodes op concerns.
func (op *Op) Route() Route {
	switch {
	case op.Action != nil:
		a := op.Action
		switch a.Action {
		case actions.SendToGroup:
			return Route{RouteGroup, a.Group}
		case actions.SendToUser, actions.AddUserToGroup, actions.RemoveUserFromGroup:
			return Route{RouteUser, a.User}
		case actions.SendToConnection, actions.AddToGroup, actions.RemoveFromGroup, actions.CloseConnection:
			return Route{RouteNode, NodeOf(a.ConnectionID)}
		}
		return Route{RouteHub, ""}
	case op.Close != nil:
		switch {
		case op.Close.Scope.Group != "":
			return Route{RouteGroup, op.Close.Scope.Group}
		case op.Close.Scope.User != "":
			return Route{RouteUser, op.Close.Scope.User}
		}
		return Route{RouteHub, ""}
	case op.LeaveAll != nil && op.LeaveAll.ConnectionID != "":
		return Route{RouteNode, NodeOf(op.LeaveAll.ConnectionID)}
	case op.LeaveAll != nil:
		return Route{RouteUser, op.LeaveAll.User}
	}
	return Route{RouteHub, ""}
}

// QueryKind names what a Query asks.
type QueryKind string

// Queries.
const (
	QueryConnection  QueryKind = "connection"  // is ConnectionID open?
	QueryUser        QueryKind = "user"        // does User have a connection?
	QueryGroup       QueryKind = "group"       // does Group have a member?
	QueryUserInGroup QueryKind = "userInGroup" // is a connection of User in Group?
	QueryList        QueryKind = "list"        // connections of Scope after After, at most Limit
)

// Query asks every node about its connections.
type Query struct {
	Hub          string    `json:"hub"`
	Kind         QueryKind `json:"kind"`
	ConnectionID string    `json:"connectionId,omitempty"`
	User         string    `json:"user,omitempty"`
	Group        string    `json:"group,omitempty"`
	Scope        Scope     `json:"scope"`
	After        string    `json:"after,omitempty"`
	Limit        int       `json:"limit,omitempty"`
}

// Validate rejects an op no gateway would publish; a bus calls it on every
// op it receives, so that no node acts on half an op.
func (op *Op) Validate() error {
	if op.Hub == "" {
		return errors.New("gateway: op without hub")
	}
	n := 0
	if op.Action != nil {
		n++
		if err := op.Action.Validate(false); err != nil {
			return err
		}
	}
	if op.Close != nil {
		n++
		if err := op.Close.Scope.Validate(); err != nil {
			return err
		}
	}
	if op.LeaveAll != nil {
		n++
		if (op.LeaveAll.ConnectionID == "") == (op.LeaveAll.User == "") {
			return errors.New("gateway: leaveAll needs exactly one of connectionId and user")
		}
	}
	if n != 1 {
		return fmt.Errorf("gateway: op sets %d of action, close and leaveAll, want 1", n)
	}
	if !op.Until.IsZero() && (op.Action == nil || op.Action.Action != actions.AddUserToGroup) {
		return errors.New("gateway: op sets until without an addUserToGroup action")
	}
	if !tracing.Valid(op.TraceParent, op.TraceState) {
		return errors.New("gateway: op carries an invalid traceparent or tracestate")
	}
	return nil
}

// Validate rejects a query no gateway would send.
func (q *Query) Validate() error {
	if q.Hub == "" {
		return errors.New("gateway: query without hub")
	}
	switch q.Kind {
	case QueryConnection, QueryUser, QueryGroup, QueryUserInGroup:
		return nil
	case QueryList:
		if q.Limit < 1 {
			return fmt.Errorf("gateway: list connections: limit %d is below 1", q.Limit)
		}
		return q.Scope.Validate()
	}
	return fmt.Errorf("gateway: unknown query kind %q", q.Kind)
}

// Route says which nodes q must ask.
func (q *Query) Route() Route {
	if q.Kind == QueryConnection {
		return Route{RouteNode, NodeOf(q.ConnectionID)}
	}
	return Route{RouteAll, ""}
}

// Answer is one node's answer to a Query.
type Answer struct {
	Found bool       `json:"found,omitempty"`
	Conns []ConnInfo `json:"conns,omitempty"`
	More  bool       `json:"more,omitempty"`
}

// Bus carries Ops and Queries between nodes. Implementations call
// ApplyOp and AnswerQuery on each node concerned, this one included.
type Bus interface {
	// Publish delivers op to the nodes its Route names. For a RouteNode op
	// it returns that node's error (ErrNoConnection when the node or the
	// connection does not exist).
	Publish(ctx context.Context, op *Op) error
	// Gather asks the nodes q's Route names and returns their answers. A
	// node that does not answer in time is left out.
	Gather(ctx context.Context, q *Query) ([]Answer, error)
}

// InterestWatcher is implemented by buses that subscribe per group, user or
// hub: the gateway calls InterestChanged whenever it may have gained or lost
// its first or last connection of r in hub, and the bus then asks
// HasInterest for the truth. Calls may arrive out of order and repeated.
type InterestWatcher interface {
	InterestChanged(hub string, r Route)
}

// HasInterest reports whether this node holds a connection that ops routed
// to r in hub concern.
func (g *Gateway) HasInterest(hub string, r Route) bool {
	h := g.lookupHub(hub)
	if h == nil {
		return false
	}
	switch r.Kind {
	case RouteHub:
		return h.size.Load() > 0
	case RouteGroup:
		return hasMembers(&h.groups, r.Name)
	case RouteUser:
		return hasMembers(&h.users, r.Name)
	}
	return false
}

func (g *Gateway) interestChanged(hub string, r Route) {
	if w, ok := g.bus.(InterestWatcher); ok {
		w.InterestChanged(hub, r)
	}
}

// Bus is the bus this gateway publishes on: Config.Bus, or its own
// in-memory one when it is the only node.
func (g *Gateway) Bus() Bus { return g.bus }

// localBus is the Bus of a gateway that is its own, only, node: every op
// applies, and every query is answered, here at once.
type localBus struct{ g *Gateway }

func (b localBus) Publish(_ context.Context, op *Op) error { return b.g.ApplyOp(op) }

func (b localBus) Gather(_ context.Context, q *Query) ([]Answer, error) {
	a, err := b.g.AnswerQuery(q)
	if err != nil {
		return nil, err
	}
	return []Answer{a}, nil
}

func (g *Gateway) publish(ctx context.Context, op *Op) error { return g.bus.Publish(ctx, op) }

func (g *Gateway) gather(ctx context.Context, q *Query) ([]Answer, error) {
	return g.bus.Gather(ctx, q)
}

// ApplyOp carries out op on this node's connections. The bus calls it on
// every node the op's route reaches.
func (g *Gateway) ApplyOp(op *Op) error {
	switch {
	case op.Action != nil:
		return g.applyLocal(op.Hub, op.Action, op.Until, op.traceCause())
	case op.Close != nil:
		_, err := g.closeLocal(op.Hub, op.Close.Scope, op.Close.Excluded, op.Close.Reason, op.traceCause())
		return err
	case op.LeaveAll != nil && op.LeaveAll.ConnectionID != "":
		return g.leaveAllLocal(op.Hub, op.LeaveAll.ConnectionID)
	case op.LeaveAll != nil:
		g.userLeaveAllLocal(op.Hub, op.LeaveAll.User)
		return nil
	}
	return errors.New("gateway: empty op")
}

// AnswerQuery answers q about this node's connections.
func (g *Gateway) AnswerQuery(q *Query) (Answer, error) {
	switch q.Kind {
	case QueryConnection:
		return Answer{Found: g.connectionExistsLocal(q.Hub, q.ConnectionID)}, nil
	case QueryUser:
		return Answer{Found: g.userExistsLocal(q.Hub, q.User)}, nil
	case QueryGroup:
		return Answer{Found: g.groupExistsLocal(q.Hub, q.Group)}, nil
	case QueryUserInGroup:
		return Answer{Found: g.userInGroupLocal(q.Hub, q.User, q.Group)}, nil
	case QueryList:
		conns, more, err := g.connectionsLocal(q.Hub, q.Scope, q.After, q.Limit)
		return Answer{Conns: conns, More: more}, err
	}
	return Answer{}, fmt.Errorf("gateway: unknown query %q", q.Kind)
}

// found reports whether any node answered yes.
func found(answers []Answer) bool {
	return slices.ContainsFunc(answers, func(a Answer) bool { return a.Found })
}
