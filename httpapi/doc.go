// Package httpapi is Switchboard's HTTP surface, built on echo: the client
// negotiate endpoint and WebSocket transport (SignalR compatible), the server
// REST API, the admin API and health checks. It authenticates requests,
// resolves hubs in the store and hands accepted sockets to the gateway; it
// knows nothing of fan-out.
//
// Server is safe for concurrent use once built by New.
package httpapi
