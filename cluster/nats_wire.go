package cluster

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/gateway"
)

// This file is the wire format of the NATS bus: subjects and the envelope
// every message travels in.

// wireVersion is the envelope version this code speaks. A node drops
// messages of any other version, so a mixed-version cluster degrades to
// counted drops, never to misread ops.
const wireVersion = 1

// Envelope kinds.
const (
	kindOp    = "op"    // an Op, published or requested (RouteNode)
	kindQuery = "query" // a Query, requested
	kindReply = "reply" // the answer to an op or query request
	kindHello = "hb"    // a heartbeat
	kindBye   = "bye"   // a node leaving on purpose
)

// Error codes a reply carries, so the requesting node can hand its caller
// the same sentinel the remote gateway returned.
const (
	codeNoConnection = "noConnection"
	codeInvalid      = "invalid"
)

// envelope is every message of the bus. Node is the sender.
type envelope struct {
	V      int             `json:"v"`
	Kind   string          `json:"kind"`
	Node   string          `json:"node"`
	Op     *gateway.Op     `json:"op,omitempty"`
	Query  *gateway.Query  `json:"query,omitempty"`
	Answer *gateway.Answer `json:"answer,omitempty"`
	Err    string          `json:"err,omitempty"`
	Code   string          `json:"code,omitempty"`
	URL    string          `json:"url,omitempty"`
	Conns  int             `json:"conns,omitempty"`
	// Hubs is a heartbeat's connections per hub (hubs with none left
	// out), for the admin dashboard. Older nodes send none.
	Hubs map[string]int `json:"hubs,omitempty"`
}

// errBadMessage is wrapped by every error decodeEnvelope returns.
var errBadMessage = errors.New("cluster: bad message")

// decodeEnvelope parses and checks a message. It returns an error for
// anything a node must not act on; it never panics.
func decodeEnvelope(data []byte) (*envelope, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadMessage, err)
	}
	if env.V != wireVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errBadMessage, env.V, wireVersion)
	}
	if env.Node == "" {
		return nil, fmt.Errorf("%w: no sender", errBadMessage)
	}
	switch env.Kind {
	case kindOp:
		if env.Op == nil {
			return nil, fmt.Errorf("%w: op message without op", errBadMessage)
		}
		if err := env.Op.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadMessage, err)
		}
	case kindQuery:
		if env.Query == nil {
			return nil, fmt.Errorf("%w: query message without query", errBadMessage)
		}
		if err := env.Query.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadMessage, err)
		}
	case kindReply, kindHello, kindBye:
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", errBadMessage, env.Kind)
	}
	return &env, nil
}

// Subjects. Names may hold any character (dots, spaces, wildcards), so each
// becomes one base64url token; "-" stands for the empty name, which base64
// never produces.

const (
	subjectQuery     = "sb.q"
	subjectHeartbeat = "sb.hb."
)

func token(name string) string {
	if name == "" {
		return "-"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(name))
}

func nodeSubject(node string) string { return "sb.n." + token(node) }

// routeSubject is where ops of route r in hub are published; "" for
// RouteNode and RouteAll, which are requests, not publications.
func routeSubject(hub string, r gateway.Route) string {
	switch r.Kind {
	case gateway.RouteHub:
		return "sb.h." + token(hub)
	case gateway.RouteGroup:
		return "sb.g." + token(hub) + "." + token(r.Name)
	case gateway.RouteUser:
		return "sb.u." + token(hub) + "." + token(r.Name)
	}
	return ""
}

// opSubject is the subject op must arrive on: a node acts only on ops that
// came the way their route says, so a stray or forged message on a group
// subject cannot broadcast to the hub.
func opSubject(op *gateway.Op) string {
	r := op.Route()
	if r.Kind == gateway.RouteNode {
		return nodeSubject(r.Name)
	}
	return routeSubject(op.Hub, r)
}

// errorCode names the sentinel err wraps, for a reply.
func errorCode(err error) string {
	switch {
	case errors.Is(err, gateway.ErrNoConnection):
		return codeNoConnection
	case errors.Is(err, actions.ErrInvalid), errors.Is(err, errBadMessage):
		return codeInvalid
	}
	return ""
}

// remoteError is an error another node returned.
type remoteError struct {
	node, msg string
	is        error // the sentinel named by the reply's code, or nil
}

func (e *remoteError) Error() string {
	return "cluster: node " + e.node + ": " + strings.TrimPrefix(e.msg, "cluster: ")
}

func (e *remoteError) Unwrap() error { return e.is }

func replyError(node string, env *envelope) error {
	if env.Err == "" {
		return nil
	}
	e := &remoteError{node: node, msg: env.Err}
	switch env.Code {
	case codeNoConnection:
		e.is = gateway.ErrNoConnection
	case codeInvalid:
		e.is = actions.ErrInvalid
	}
	return e
}
