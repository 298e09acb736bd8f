package client

import (
	"errors"
	"fmt"
)

var (
	// ErrNegotiate reports a negotiate request the server answered with an
	// error (a {"error":…} body, a non-200 status, or an unusable answer).
	ErrNegotiate = errors.New("client: negotiate failed")
	// ErrHandshake reports a failed hub protocol handshake; the error text
	// contains the server's reason.
	ErrHandshake = errors.New("client: handshake failed")
	// ErrClosed reports use of, or a pending invocation on, a connection that
	// has ended. It is wrapped together with the reason (see Conn.Err).
	ErrClosed = errors.New("client: connection closed")
	// ErrServerTimeout reports that nothing arrived from the server for
	// Options.ServerTimeout.
	ErrServerTimeout = errors.New("client: server timeout elapsed without receiving a message from the server")
	// ErrProtocol reports a message from the server that breaks the hub
	// protocol (the JS client closes the connection on these too).
	ErrProtocol = errors.New("client: protocol violation by server")
)

// InvocationError is the error of a Completion: the hub method failed and
// the server said why.
type InvocationError struct {
	Message string
}

func (e *InvocationError) Error() string { return "client: invocation failed: " + e.Message }

// CloseError is the reason of a connection ended by a server Close message.
type CloseError struct {
	Message        string // the Close message's "error"; "" when absent
	AllowReconnect bool   // the server allows an automatic reconnect
}

func (e *CloseError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("client: server closed the connection (allowReconnect=%t)", e.AllowReconnect)
	}
	return fmt.Sprintf("client: server returned an error on close: %s (allowReconnect=%t)", e.Message, e.AllowReconnect)
}

// closedError is what pending and later calls get once the connection ended.
func closedError(cause error) error {
	if cause == nil {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, cause)
}
