package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard-gw/switchboard/upstream"
)

// Transport is an accepted client socket. The gateway reads from it in one
// goroutine and writes from at most one other; Close may be called from any.
type Transport interface {
	// ReadFrame returns the next whole message, in a slice of its own that
	// the gateway may keep (queued invocations hold their arguments).
	// binary reports a binary WebSocket frame. A clean close by the client returns an error wrapping
	// ErrClientClosed; a frame over the read limit one wrapping
	// ErrMessageTooLarge.
	ReadFrame(ctx context.Context) (data []byte, binary bool, err error)
	// WriteFrame sends data as one frame: binary (a WebSocket binary
	// frame, an application/octet-stream poll answer) for a binary hub
	// protocol, text otherwise.
	WriteFrame(ctx context.Context, data []byte, binary bool) error
	// Close closes the socket with a WebSocket status code and reason.
	Close(code int, reason string) error
}

// Aborter is implemented by transports that can drop their socket at
// once, from any goroutine, so that a write blocked on a client that reads
// nothing fails. The gateway bounds their writes from its sweep instead of
// with a context per write: their WriteFrame gets a context that never
// ends.
type Aborter interface {
	Abort()
}

// IdleWaiter is implemented by transports that can wait for their client's
// next frame outside ReadFrame, with little stack: a goroutine parked in a
// WebSocket library's read holds about 3 KiB of frames, a 4 KiB stack the
// runtime cannot shrink, for every idle connection. See ServeWaiting.
type IdleWaiter interface {
	// WaitReadable returns nil once the client has sent something, or its
	// socket has ended (the next ReadFrame says how). An interruptible
	// wait that Interrupt ends returns ErrIdle. It is called between
	// ReadFrame calls only, never alongside one.
	WaitReadable(interruptible bool) error
	// Interrupt ends an interruptible WaitReadable under way, and does
	// nothing otherwise. Any goroutine may call it.
	Interrupt()
}

// ErrIdle is the answer of an interruptible IdleWaiter.WaitReadable that
// Interrupt ended.
var ErrIdle = errors.New("gateway: the client sent nothing")

// KeepAliveTransport is implemented by transports that tell a dead client
// apart themselves (Long Polling: the polls are the sign of life). When
// InherentKeepAlive reports true the gateway neither pings the connection
// nor closes it for silence; the transport's ReadFrame fails instead once
// the client is gone.
type KeepAliveTransport interface {
	InherentKeepAlive() bool
}

// Webhooks delivers events to a hub's upstreams. delivery.Dispatcher
// implements it.
type Webhooks interface {
	// Wants reports whether any upstream of hub subscribes to event (for
	// message events, target is the invocation target).
	Wants(hub, event, target string) bool
	// Call delivers a blocking event (connect, message) and returns the
	// reply, nil for an empty one. For connect, a reply with Error set is a
	// rejection with that reason. Its errors go to the log in full; the
	// client is told their ClientMessage (see ClientError), or a generic
	// text for errors without one.
	Call(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error)
	// Notify hands over a notification (connected, disconnected) for
	// delivery. ctx carries the trace context of the notification's cause,
	// which goes with it (through the durable outbox) into its webhooks;
	// its cancellation does not stop the delivery. The actions of replies
	// are the implementation's business (delivery.Dispatcher hands them to
	// its OnReply, which survives restarts where a callback would not).
	Notify(ctx context.Context, ev *upstream.Event)
}

// UserGroupStore persists user-group memberships so that they apply to a
// user's future connections and survive restarts.
// Each call is bounded by its context: the caller's for Apply and the REST
// operations, StoreTimeout for the lookup on every connect.
type UserGroupStore interface {
	AddUserToGroup(ctx context.Context, hub, user, group string, expires time.Time) error
	RemoveUserFromGroup(ctx context.Context, hub, user, group string) error
	// RemoveUserFromAllGroups deletes every membership of user in hub.
	RemoveUserFromAllGroups(ctx context.Context, hub, user string) error
	// UserGroups returns the unexpired memberships of a user, each with
	// its end, so that a connection opened meanwhile leaves the group when
	// the membership ends.
	UserGroups(ctx context.Context, hub, user string) ([]UserGroup, error)
}

// UserGroup is one saved membership of a user in a group.
type UserGroup struct {
	Group string
	// Expires is when the membership ends (added with a ttl); zero means
	// when it is removed.
	Expires time.Time
}

// ConnTracker records which connections are open on this node. Opened and
// Closed must not block: they are called on every connect and disconnect.
type ConnTracker interface {
	Opened(hub, connectionID, userID string)
	Closed(connectionID string)
}
