// Package client is a Go SignalR client: it speaks the ASP.NET Core SignalR
// hub protocols (JSON, and MessagePack with Options.Protocol) over a
// WebSocket and behaves on the wire like the official JavaScript client
// (@microsoft/signalr 10), so integration tests and the load tool exercise
// the gateway exactly as browsers do.
//
// Entry points:
//
//   - [Dial] negotiates (following Azure-style redirects), opens the
//     WebSocket, performs the JSON handshake and returns a [Conn].
//   - [Conn.Invoke] and [Conn.Send] call hub methods; [Conn.On] (or
//     [Options.Handlers], for messages bundled with the handshake answer)
//     receives server invocations.
//   - [Conn.Done] and [Conn.Err] report how the connection ended;
//     [Conn.Close] ends it.
//
// Wire behaviour copied from the JS client: invocation ids are a decimal
// counter from "0"; a Ping is sent right after the handshake and then
// KeepAlive after the last send, but the ping timer is only re-armed when
// data arrives (a silent server gets one ping, then the server timeout); the
// server timeout restarts on every received frame; a server Close without
// allowReconnect is answered with {"type":7}; server invocations that carry an
// invocationId get the Completion error "Client didn't provide a result."
// (client results are not supported). Per-message compression is not offered
// (it costs hundreds of KiB per connection; the load tool opens thousands).
//
// Memory: a Conn has one reader goroutine and no writer goroutine; callers
// write under a mutex. Two runtime timers (keep-alive, server timeout) fire
// short-lived callbacks. Read and encode buffers are reused and dropped when a
// large message made them grow past 32 KiB.
//
// Concurrency: all Conn methods are safe for concurrent use. Handlers run on
// the reader goroutine, one at a time and in arrival order; a handler that
// blocks stalls the connection (and may trip the server's timeout). Handlers
// may call Send, but must not call Invoke or Close (both wait for the
// reader goroutine that is running the handler; use go c.Close()). A call's
// ctx is checked before its frame is written; once writing starts the frame
// is finished (30 s at most), because coder/websocket closes a connection
// whose write is cancelled half-way.
//
// Lock order: Conn.wmu before Conn.kmu; Conn.mu is never held with either.
package client
