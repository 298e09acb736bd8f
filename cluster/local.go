package cluster

import (
	"context"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/gateway"
)

// Applier is the node-side receiver of actions; *gateway.Gateway is one.
type Applier interface {
	ApplyLocal(hub string, a *actions.Action) error
}

// Local is the bus of a single node: every action applies locally at once.
type Local struct {
	// Node receives the actions. It is read on every Publish, so it may be
	// set after the gateway that uses this bus is built.
	Node Applier
}

var _ gateway.Bus = (*Local)(nil)

// Publish applies a on the local node.
func (l *Local) Publish(_ context.Context, hub string, a *actions.Action) error {
	return l.Node.ApplyLocal(hub, a)
}
