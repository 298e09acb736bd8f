// Package node wires one Switchboard node from its parts: the store, the
// gateway, the delivery dispatcher, the bus and the HTTP API. It is the only
// package that knows all of them. cmd/switchboard parses flags into a Config
// and calls Start; integration tests start real nodes the same way, so what
// they test is what the binary runs.
//
// What the node itself adds:
//
//   - A copy in memory of the configuration (configView, config.go): every
//     read of hubs, upstreams and keys is answered from it, writes go to the
//     store and update it, and the store's Watch (watch.go) refreshes it,
//     with a full reread every resyncInterval. A clustered node thus keeps
//     serving clients, REST, admin reads and /readyz while NATS KV is
//     unavailable.
//   - Joining a cluster (cluster.go): the embedded NATS server if asked, the
//     shared configuration in KV with KVReplicas replicas, the bus and the
//     connection registry, each JetStream request tried again in short
//     attempts until JoinTimeout, and an error that names the real cause.
//   - The order of Start: the listener first, so a node that cannot serve
//     fails before it makes keys nobody would see printed; then the store
//     (sealing secrets with Config.Secrets, and resealing at start what is
//     not sealed with the current key), the keys, the dispatcher (with the
//     upstream address policy in Config.Delivery.Addresses), the gateway,
//     and the HTTP server with Config.HTTP's timeouts and
//     Config.ClientLimits.
//   - Background work it owns and stops in Close: the configuration watch
//     and the purge of expired user-group memberships (purge.go, one node
//     of a cluster at a time).
//
// A Node is safe for concurrent use; Close stops it.
package node
