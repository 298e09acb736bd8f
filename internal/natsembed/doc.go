// Package natsembed runs a NATS server with JetStream inside the process: for
// tests, and for development (switchboard serve --nats-embedded), where it
// spares a separate nats-server. Several embedded servers given each other's
// cluster URLs as routes form one NATS cluster with clustered JetStream, the
// way separate nats-server processes would.
//
// # Entry points
//
// [Start] starts a server from [Options] and returns once it accepts
// clients and JetStream answers; [Server.URL] is what nats.Connect takes;
// [Server.ClusterURL] is what the other servers of a cluster list in
// Options.Routes; [Server.Shutdown] stops it and waits for its goroutines.
//
// # Concurrency
//
// A Server's methods are safe for concurrent use. Shutdown may be called more
// than once.
package natsembed
