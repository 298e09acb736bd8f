package gateway

import "errors"

// WebSocket close codes the gateway uses (RFC 6455 §7.4.1). 1000 and 1001
// tell a client it may reconnect; the rest mark a fault of the client.
const (
	CloseNormal          = 1000 // orderly close, after a SignalR Close message
	CloseGoingAway       = 1001 // server shutting down; reconnect elsewhere
	CloseProtocolError   = 1002 // handshake or hub protocol violated
	CloseUnsupportedData = 1003 // binary frame on the JSON protocol
	ClosePolicyViolation = 1008 // rejected by the connect handler or auth
	CloseMessageTooBig   = 1009 // frame over the hub's message size limit
	CloseInternalError   = 1011 // unexpected failure on our side
	CloseTryAgainLater   = 1013 // slow consumer: the client fell too far behind
)

// Errors a Transport wraps so the gateway can tell why a read ended.
var (
	ErrClientClosed    = errors.New("gateway: client closed the connection")
	ErrMessageTooLarge = errors.New("gateway: message exceeds the size limit")
)

// Errors of the gateway's own API.
var (
	ErrUnknownToken = errors.New("gateway: unknown or closed connection token")
	ErrTokenInUse   = errors.New("gateway: connection token already has a socket")
	ErrNoConnection = errors.New("gateway: connection not found")
	ErrShuttingDown = errors.New("gateway: shutting down")
	// ErrTooManyPending: Config.MaxPendingNegotiations connections are
	// negotiated and waiting for their sockets.
	ErrTooManyPending = errors.New("gateway: too many negotiated connections are waiting for their sockets")
)

// Disconnect reasons, as sent in disconnected events.
const (
	ReasonClientClosed = "client closed the connection"
	ReasonShutdown     = "server shutting down"
	ReasonSlowConsumer = "slow consumer: send queue full"
	// ReasonResumeBufferFull closes a stateful connection whose client
	// left more than StatefulReconnectBuffer bytes unacknowledged.
	ReasonResumeBufferFull = "stateful reconnect buffer full: the client acknowledged too little"
)
