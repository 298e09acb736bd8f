// Package gateway is the heart of Switchboard: hubs, connections, groups and
// users, the connection lifecycle, per-connection send queues, local fan-out
// and the execution of actions.
//
// It knows no HTTP router, socket library, bus or database. The HTTP layer
// negotiates a connection (Gateway.Negotiate), accepts the socket and hands it
// over as a Transport (Gateway.Serve, which blocks for the connection's
// lifetime, or Gateway.ServeWaiting, which hands a quiet connection's
// reading to a goroutine with a small stack and returns; idle.go). Events go out through the Webhooks interface and actions come in
// through Gateway.Apply (from webhook replies and the REST API). Anything that
// may concern connections on other nodes travels as an Op or a Query
// (cluster.go) through the Bus, which calls ApplyOp and AnswerQuery on each
// node; without a Bus the gateway is its own, only, node. A ConnTracker, if
// set, hears of every connection that opens and closes (the cluster's
// registry of connections, for nodes that die).
//
// What a client is told about a failed connect or invocation is an error's
// ClientMessage (ClientError), never its full text, which goes to the log.
//
// Traces: every webhook call runs under a context carrying the W3C trace
// context of its cause (an invocation's headers, the negotiate or transport
// request, whoever closed the connection), with spans when
// Config.TracerProvider is set (trace.go).
//
// Hub protocols: a connection speaks the protocol its handshake chose, JSON
// or MessagePack (protocol.Codec, codec.go). A message for many connections
// is encoded once per protocol in use and the same bytes go to every
// connection of that protocol. A client with stateful reconnect (handshake
// version 2) keeps its connection across a broken socket: the connection is
// detached, keeps what it sent until the client acknowledges it, and is
// resumed on the client's new socket with a replay (stateful.go); only a
// client that does not come back within StatefulReconnectWindow is
// disconnected.
//
// Concurrency: every exported method is safe for concurrent use. Each
// connection has one reader (the goroutine in Serve, or the one
// ServeWaiting moved its wait to; after a resume, the Serve of the new
// socket, which starts reading once the old reader stopped) and at most one writer (a write loop started only while its
// queue is non-empty); nothing else touches the socket, except the sweep,
// which drops the socket of a write that has run past WriteTimeout
// (Aborter). A connection's invocations run on workers of their own (at
// most Limits.MaxInflightInvocations, started only while there are
// invocations), so the reader goes on reading pings and a Close while
// upstreams answer; the reader cancels their webhook calls when the
// connection ends and waits for them before it ends it (invoke.go). Workers and write
// loops run on a gateway-wide pool of goroutines that outlive one turn
// (workers.go). Fan-out only appends already-encoded bytes to queues and
// never blocks on a socket: a connection whose queue passes its byte limit
// is closed as a slow consumer. Writes to a busy socket are coalesced (see
// Config.WriteCoalesce), except where a connection's messages come further
// apart than the window; replies a client waits for are not.
//
// User-group memberships with a ttl end on the node that holds each
// connection: a connection records, per group, whether it is in it as itself
// and/or through its user's membership and when that ends (the end the adding
// node saved, carried by the op), and the sweep takes it out of the group once
// the end has passed, unless it is also a member as itself. Fan-out therefore
// checks nothing per recipient; a membership ends at most one SweepInterval
// late, for sends and existence checks alike.
//
// Lock order: a hub shard's lock (connections, groups, users) may be held while
// taking a Conn's mu, and so may Gateway.mu (the negotiated tokens); never
// the other way round. An invoker's mu is taken alone. No I/O happens under
// any lock.
package gateway
