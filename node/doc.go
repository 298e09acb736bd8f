// Package node wires one Switchboard node from its parts: the store, the
// gateway, the upstream dispatcher, the bus and the HTTP API. It is the only
// package that knows all of them. cmd/switchboard parses flags into a Config
// and calls Start; integration tests start real nodes the same way, so what
// they test is what the binary runs.
//
// A Node is safe for concurrent use; Close stops it.
package node
