// Package cluster carries the gateway's Ops and Queries (gateway/cluster.go)
// between nodes. A single node needs nothing from it: a gateway without a
// Bus is its own, only, node. The bus of a cluster keeps the same contract,
// checked by one test suite run against both (contract_test.go):
//
//   - NATS, the bus of a cluster (NewNATS over a *nats.Conn dialled with
//     DialOptions). It also implements gateway.InterestWatcher and tracks
//     the cluster's members by heartbeat (Members).
//
//   - Registry (registry.go) keeps each node's open connections in
//     JetStream KV; when a node dies, exactly one survivor claims it and
//     reports each of its connections (OnLost), so their disconnected
//     events survive the node.
//
// # Which nodes are alive
//
// One place decides: the bus's membership. Every node publishes a heartbeat
// every HeartbeatInterval (1 s); a node is alive while its last one is at
// most MemberTTL (3 s) old, as the receiving node's clock times it, and
// until it says goodbye on Close. Members (and Live, its ids) is that set;
// Gather waits for exactly its members, negotiation spreads clients over them,
// and the Registry, given the bus as its Liveness, takes for dead a node
// that has stayed out of it for DeadAfter (5 s), so MemberTTL + DeadAfter
// (8 s) after its last heartbeat. The Registry writes no heartbeat of its
// own: its node record (sb-nodes), written once at start and deleted by
// Close or by the survivor that reported the node, only says that the node
// has connections recorded that nobody reported yet, so that survivors know
// whose death to look for, including the nodes that died before they
// started. The DeadAfter margin is what keeps an outage from killing: a node
// that was cut off hears nobody, so its registry counts absence only while
// its connection is up, and gives everyone DeadAfter afresh after it
// reconnects; DeadAfter must therefore exceed a few HeartbeatIntervals.
//
// # NATS subjects and messages
//
// Subjects are interest-based: a node subscribes to sb.h.<hub>,
// sb.g.<hub>.<group> and sb.u.<hub>.<user> only while it holds a connection
// concerned, and always to sb.n.<node> (ops and queries for its
// connections, as requests), sb.q (queries to all) and sb.hb.* (heartbeats
// and goodbyes). Each name is one base64url token without padding ("-" for
// the empty name), so any characters are safe. Every message is a JSON
// envelope {"v":1,"kind":"op"|"query"|"reply"|"hb"|"bye","node":sender,…};
// a node drops and counts (NATS.Stats) a message of another version, one it
// cannot parse, an op or query no gateway would send, and an op that
// arrived on a subject other than its route's.
//
// The publishing node applies its hub, group and user ops itself at once and
// ignores their echo, so its own clients are served exactly once even while
// NATS is down. An op for one node is a request answered with that node's
// error (ErrNoConnection travels as a code); a node that is gone answers
// ErrNoConnection through NATS's no-responders status. A query to all waits
// for every live member or GatherTimeout, whichever comes first.
//
// # Concurrency
//
// All types are safe for concurrent use. A NATS bus runs two goroutines,
// ended by Close: one applies received messages in arrival order (so one
// sender's ops reach a client in the order it published them, whatever
// their subjects), one sends heartbeats. Lock order: NATS.mu may be held
// while the gateway's shard locks are taken (InterestChanged asks
// HasInterest under it); the bus never holds it while applying an op.
package cluster
