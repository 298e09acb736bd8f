// Package httpapi is Switchboard's HTTP surface, built on echo: the client
// negotiate endpoint and transports (SignalR compatible: WebSockets,
// Server-Sent Events and Long Polling on the connection URL /client/), the
// server REST API, the admin API and health checks, and the admin dashboard
// (dashboard.go: static files embedded from dashboard/, fed by
// GET /admin/overview in overview.go). It authenticates
// requests, resolves hubs in the store and hands accepted transports to the
// gateway; it knows nothing of fan-out.
//
// A WebSocket is served from a goroutine of its own once upgraded; once
// the client has been quiet for a while its wait moves to a goroutine with
// a small stack (Gateway.ServeWaiting, below the WebSocket library:
// frameReader, sockReader.waitIdle). An event
// stream is served by its GET handler, which holds the response for the
// connection's life; the client's messages arrive as POSTs. A Long Polling
// connection is served from a goroutine of its own started by its first
// GET; its later GETs are polls, which the gateway's writes answer (see
// halftransport.go). Each connection's goroutines end with it, which
// Gateway.Shutdown waits for. Connection tokens carry the id
// of the node that issued them: a request for another node's connection is
// redirected there (Config.NodeURL).
//
// Server is safe for concurrent use once built by New. Call StopPolling
// when the HTTP server begins to shut down.
package httpapi
