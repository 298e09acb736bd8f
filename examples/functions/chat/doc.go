// Package chat is the example function behind the demo: a plain HTTP app that
// never holds a connection. It serves
//
//	GET  /             the chat page (stock @microsoft/signalr client)
//	GET  /signalr.js   the client library, from the npm install in web/
//	POST /api/negotiate the app's own negotiate: a redirect to the gateway
//	                   with a token for the user named in ?user=
//	POST /api/webhook  the upstream: connect, connected, message and
//	                   disconnected events, answered with actions
//
// Client methods: sendMessage(text) broadcasts; joinRoom(room) and
// leaveRoom(room) change groups; sendToRoom(room, text) reaches one room;
// whoami() returns the caller's ids; echo(args...) returns its arguments.
// A user named "blocked" is refused at connect.
package chat
