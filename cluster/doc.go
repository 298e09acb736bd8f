// Package cluster carries actions between gateway nodes. Local is the
// in-process bus of a single node: Publish hands the action straight to the
// node's gateway. A NATS bus for several nodes implements the same
// gateway.Bus interface.
//
// All types are safe for concurrent use.
package cluster
