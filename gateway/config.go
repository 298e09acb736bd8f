package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Config configures a Gateway. The zero value works; each field says its
// default.
type Config struct {
	// NodeID prefixes every connection id so that a cluster can route to the
	// node owning a connection. Zero means 6 random hex characters.
	NodeID string
	// PingInterval is how long a connection may go without a frame from us
	// before we send a Ping. Zero means 15 s.
	PingInterval time.Duration
	// ClientTimeout closes a connection that sent nothing for this long.
	// Zero means 30 s.
	ClientTimeout time.Duration
	// HandshakeTimeout bounds the wait for the client's handshake. Zero means
	// 15 s.
	HandshakeTimeout time.Duration
	// NegotiateTTL is how long a negotiated connection token waits for its
	// socket. Zero means 30 s.
	NegotiateTTL time.Duration
	// MaxPendingNegotiations bounds the negotiated connections waiting for
	// their socket, node-wide; past it Negotiate fails with
	// ErrTooManyPending. Anonymous hubs let anyone negotiate, and the
	// per-address limits multiply by every address a client can use. Zero
	// means 100,000: far more than clients negotiate in NegotiateTTL even
	// in a reconnect storm, since each connects within moments.
	MaxPendingNegotiations int
	// WriteTimeout bounds one socket write. Zero means 10 s. A WebSocket's
	// write is bounded by the sweep (at most one SweepInterval late); with
	// the sweep off, and for other transports, by a context per write.
	WriteTimeout time.Duration
	// WriteCoalesce is the shortest time between two writes to one socket:
	// a message that finds the socket quiet that long goes out at once;
	// under load, messages arriving within the window share one frame and
	// one syscall. It adds at most this much latency, only to busy
	// connections; while the gateway is CPU-bound (write loops run more
	// than two of their connection's message gaps late) it widens per
	// connection to about two of those gaps, at most 150 ms.
	// Replies a client waits for skip it. Zero means 10 ms; negative writes
	// as soon as possible.
	WriteCoalesce time.Duration
	// MaxQueueBytes is the per-connection send queue limit; a client that
	// falls further behind is closed as a slow consumer. Zero means 4 MiB.
	MaxQueueBytes int
	// Limits bound what one connection may ask: invocations in flight,
	// queued and per second, and groups. Zero fields mean their defaults.
	Limits Limits
	// IdleHandoff is how long a connection served by ServeWaiting may send
	// nothing before the sweep moves its wait to a fresh goroutine with a
	// small stack (at most one SweepInterval later). Zero means 2 s;
	// negative means never.
	IdleHandoff time.Duration
	// SweepInterval is how often pings, timeouts and expired negotiations are
	// checked. Zero means 1 s; negative disables the background sweep (tests
	// drive it by hand).
	SweepInterval time.Duration
	// StatefulReconnectWindow is how long a stateful connection (a client
	// with stateful reconnect) whose socket broke waits for its client to
	// open a new one before it is disconnected. Zero means 30 s.
	StatefulReconnectWindow time.Duration
	// StatefulReconnectBuffer bounds, in bytes, what a stateful connection
	// keeps of the messages its client has not acknowledged; a client that
	// lets more go unacknowledged is closed. Zero means 100 000, as ASP.NET
	// Core.
	StatefulReconnectBuffer int
	// Webhooks delivers events upstream. Nil means no upstreams: connects are
	// accepted as they are and invocations fail with a clear error.
	Webhooks Webhooks
	// Bus carries ops and queries between nodes (package cluster's NATS).
	// Nil means this gateway is the only node: they apply here.
	Bus Bus
	// UserGroups persists user-group memberships. Nil keeps them in memory
	// for the life of the process.
	UserGroups UserGroupStore
	// StoreTimeout bounds the user-group lookup of each new connection.
	// Zero means 5 s.
	StoreTimeout time.Duration
	// Tracker is told of every connection that opens and closes, so a
	// cluster can emit disconnected events for the connections of a node
	// that died. Nil means nobody tracks them.
	Tracker ConnTracker
	// TracerProvider makes the spans of connects and invocations (see
	// trace.go). Nil means none are made; a trace context a client sends is
	// still carried to the webhooks it causes.
	TracerProvider trace.TracerProvider
	// Logger receives structured logs. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.NodeID == "" {
		var b [3]byte
		rand.Read(b[:]) // crypto/rand never fails: it crashes the program instead (Go 1.24+)
		c.NodeID = hex.EncodeToString(b[:])
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 15 * time.Second
	}
	if c.ClientTimeout <= 0 {
		c.ClientTimeout = 30 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 15 * time.Second
	}
	if c.NegotiateTTL <= 0 {
		c.NegotiateTTL = 30 * time.Second
	}
	if c.MaxPendingNegotiations <= 0 {
		c.MaxPendingNegotiations = 100_000
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.WriteCoalesce == 0 {
		c.WriteCoalesce = 10 * time.Millisecond
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 4 << 20
	}
	c.Limits = c.Limits.withDefaults()
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Second
	}
	if c.IdleHandoff == 0 {
		c.IdleHandoff = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.StatefulReconnectWindow <= 0 {
		c.StatefulReconnectWindow = 30 * time.Second
	}
	if c.StatefulReconnectBuffer <= 0 {
		c.StatefulReconnectBuffer = 100_000
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 5 * time.Second
	}
	if c.UserGroups == nil {
		c.UserGroups = &memoryUserGroups{now: c.Now}
	}
	return c
}
