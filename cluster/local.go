package cluster

import (
	"context"

	"github.com/switchboard-gw/switchboard/gateway"
)

// Node is what a bus drives on each node; *gateway.Gateway is one.
type Node interface {
	ApplyOp(op *gateway.Op) error
	AnswerQuery(q *gateway.Query) (gateway.Answer, error)
}

// Local is the bus of a single node: every op applies, and every query is
// answered, by that node at once.
type Local struct {
	// Node receives the ops. It is read on every call, so it may be set
	// after the gateway that uses this bus is built.
	Node Node
}

var _ gateway.Bus = (*Local)(nil)

// Publish applies op on the local node.
func (l *Local) Publish(_ context.Context, op *gateway.Op) error {
	return l.Node.ApplyOp(op)
}

// Gather answers q on the local node.
func (l *Local) Gather(_ context.Context, q *gateway.Query) ([]gateway.Answer, error) {
	a, err := l.Node.AnswerQuery(q)
	if err != nil {
		return nil, err
	}
	return []gateway.Answer{a}, nil
}
