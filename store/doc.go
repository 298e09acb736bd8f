// Package store persists one Switchboard node's configuration and state in a
// single bbolt file: hubs, their upstreams, the access and admin keys, and
// user→group memberships. It knows nothing of the gateway, HTTP or sockets.
//
// # Entry points
//
// [Open] opens (creating if needed) the file and its buckets and returns a
// [DB]; [DB.Close] releases it. The methods are grouped by the type they
// manage: [Hub], [Upstream], [Key] and [UserGroup]. Missing records are
// reported with [ErrNotFound], duplicates with [ErrExists], unusable input
// (an empty name, an empty key list) with [ErrInvalid]; test with errors.Is.
//
// # Layout
//
// Values are JSON. Every write is one bbolt read-write transaction, so a crash
// never leaves half an operation behind. Buckets and keys:
//
//	hubs        name                              → Hub
//	upstreams   part(hub) + uint64be(seq)         → Upstream
//	keys        "access"                          → []Key (newest first)
//	            "admin"                           → "sha256:" + hash of the admin key
//	usergroups  part(hub) + part(user) + group    → UserGroup
//	outbox      uint64be(seq)                     → opaque notification (OutboxCommit)
//
// part(s) is uvarint(len(s)) followed by the bytes of s. Length prefixes keep
// keys prefix-free whatever bytes a user id holds, so "every upstream of hub
// H" or "every group of user U in hub H" is one cursor seek over a key
// prefix, and DeleteHub removes a hub's upstreams and memberships by prefix in
// the same transaction. seq comes from the upstreams bucket's sequence, so
// within a hub the key order is the creation order: the order in which
// events are tried. Replacing an upstream keeps its key, hence its place.
//
// # Secrets at rest
//
// The admin key is only compared, so only its SHA-256 is stored
// (HashAdminKey, AdminKeyMatches). Access key secrets and upstream signing
// secrets are needed as they are; opened WithSecrets (WithKVSecrets), the
// store seals them with AES-256-GCM under SecretsKeys.Current, bound to
// their record, and opens those sealed with any key it was given. Reseal
// rewrites whatever is not in the current form, which is how a key is
// rotated or encryption turned on or off. A sealed secret the store has no
// key for is an error matching ErrSecretsKey.
//
// # Shared configuration
//
// [Config] is the part a cluster shares (everything but the outbox), with
// [Config.Watch] to learn of changes. [DB] implements it for one node; [KV]
// (opened with [OpenKV]) implements it on NATS JetStream KV buckets
// sb-hubs, sb-upstreams, sb-keys and sb-usergroups for a cluster.
//
// # Concurrency
//
// A DB is safe for concurrent use by any number of goroutines: bbolt allows
// one writer and many readers at a time. Only one process may open the file;
// a second Open of a file in use fails after one second with an error that
// says so ([ErrInUse]) rather than hanging.
package store
