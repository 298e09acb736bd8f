// Package client is a Go SignalR client: it speaks the ASP.NET Core SignalR
// hub protocols (JSON, and MessagePack with Options.Protocol) over
// WebSockets, Server-Sent Events (JSON only) or Long Polling
// (Options.Transport), and behaves on the wire like the official JavaScript
// client (@microsoft/signalr 10), so integration tests and the load tool
// exercise the gateway exactly as browsers do.
//
// Entry points:
//
//   - [Dial] negotiates (following Azure-style redirects), starts a
//     transport (the first the server offers, or the one asked for, falling
//     back like the JS client), performs the JSON handshake and returns a
//     [Conn].
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
// Transports, as the JS client drives them: the WebSocket at the connect URL
// (http→ws) with the token in an Authorization header (or access_token,
// Options.TokenInQuery). Server-Sent Events: GET with Accept:
// text/event-stream and the token in access_token, sends as POSTs with the
// token in Authorization; the end of the stream ends the connection without
// an error. Long Polling: a first GET answered at once, then polls
// (connect URL plus "&_=<ms>") one after the other; an empty 200 or a poll
// timeout (100 s) polls again, a 204 ends the connection without an error,
// any other answer with one; sends are POSTs; every end the client decides
// sends a DELETE; Long Polling keeps itself alive, so no pings and no server
// timeout. On both HTTP transports one POST is out at a time and frames
// written meanwhile share the next, and on Close the client's {"type":7}
// is POSTed after the transport stopped (after the DELETE, after the stream
// closed), as the JS client's arrives.
//
// Memory: a Conn has one reader goroutine (over Long Polling, the poll
// loop) and no writer goroutine; callers write under a mutex, or, on the
// HTTP transports, wait for the POST carrying their frame. Two runtime
// timers (keep-alive, server timeout) fire short-lived callbacks. Read and
// encode buffers are reused and dropped when a large message made them grow
// past 32 KiB. The WebSocket transport adds nothing to a Conn but its
// socket.
//
// Concurrency: all Conn methods are safe for concurrent use. Handlers run on
// the reader goroutine, one at a time and in arrival order; a handler that
// blocks stalls the connection (and may trip the server's timeout). Handlers
// may call Send, but must not call Invoke or Close (both wait for the
// reader goroutine that is running the handler; use go c.Close()). A call's
// ctx is checked before its frame is written; once writing starts the frame
// is finished (30 s at most), because coder/websocket closes a connection
// whose write is cancelled half-way and a POST cut short may have arrived.
//
// Lock order: Conn.wmu before Conn.kmu, and before a transport's locks;
// Conn.mu is never held with any other. Transports never call back into
// the Conn.
package client
