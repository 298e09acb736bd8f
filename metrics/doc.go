// Package metrics exposes a node's figures to Prometheus.
//
// New builds a registry whose switchboard_* metrics are read, at scrape
// time, from the counters the gateway, the dispatcher, the HTTP API and
// the bus keep anyway (the ones /admin/status shows): a prometheus.Collector
// turns them into samples, so serving connections and fanning out messages
// pay nothing for metrics. Only webhook calls are observed as they happen
// (Metrics.ObserveAttempt, wired as delivery.DispatcherConfig.OnAttempt),
// because a latency histogram cannot be rebuilt from totals.
//
// Every label is bounded: hubs and upstreams are defined by the admin,
// transports, protocols, events, outcomes, close kinds and limits are
// fixed sets, REST operations are route patterns. No connection id, user
// id, group or invocation target ever becomes a label.
//
// docs/operations.md documents every metric; a test checks that it lists
// exactly those a node exposes.
//
// All methods are safe for concurrent use.
package metrics
