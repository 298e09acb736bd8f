package cluster

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSOptions configures NewNATS. The zero value works except for NodeID.
type NATSOptions struct {
	// NodeID is this node's id: the gateway's NodeID, the prefix of its
	// connection ids. Required.
	NodeID string
	// URL is this node's public URL, announced in heartbeats (Member.URL).
	URL string
	// Conns returns this node's connection count for heartbeats. Nil
	// reports 0.
	Conns func() int
	// HubConns returns this node's connections per hub for heartbeats
	// (Member.Hubs). Nil announces none.
	HubConns func() map[string]int
	// RequestTimeout bounds an op or query sent to one node. Zero means 2 s.
	RequestTimeout time.Duration
	// GatherTimeout bounds the wait for every live node's answer to a
	// query sent to all. Zero means 750 ms.
	GatherTimeout time.Duration
	// HeartbeatInterval is how often this node announces itself. Zero
	// means 1 s.
	HeartbeatInterval time.Duration
	// MemberTTL is how long a node counts as live after its last
	// heartbeat: for Members, Gather, and the Registry, which takes a node
	// for dead once it has been out of the live set for its DeadAfter more
	// (see "Which nodes are alive" in the package doc). Keep it a few
	// HeartbeatIntervals. Zero means 3 s.
	MemberTTL time.Duration
	// QueueLen is how many received messages may wait for this node to
	// apply them; beyond it NATS drops messages (a slow consumer). Zero
	// means 65536.
	QueueLen int
	// Logger receives drop reports (at most one a second) and errors. Nil
	// means slog.Default().
	Logger *slog.Logger
	// Now is the clock for membership. Nil means time.Now.
	Now func() time.Time
}

func (o NATSOptions) withDefaults() NATSOptions {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 2 * time.Second
	}
	if o.GatherTimeout <= 0 {
		o.GatherTimeout = 750 * time.Millisecond
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = time.Second
	}
	if o.MemberTTL <= 0 {
		o.MemberTTL = 3 * time.Second
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 1 << 16
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Conns == nil {
		o.Conns = func() int { return 0 }
	}
	return o
}

// DefaultReconnectBuffer is how many bytes of publications DialOptions lets
// nats.go hold while disconnected.
const DefaultReconnectBuffer = 8 << 20

// DialOptions returns the nats.Connect options a bus connection wants: a
// client name, reconnecting forever, and a bound of bufBytes (zero means
// DefaultReconnectBuffer) on publications held while disconnected. Past it
// Publish drops what other nodes would have received, counts it in
// Stats().BufferedDrops, and still delivers to this node's clients.
func DialOptions(name string, bufBytes int) []nats.Option {
	if bufBytes <= 0 {
		bufBytes = DefaultReconnectBuffer
	}
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(bufBytes),
	}
}

// NATSStats are a bus's counters since NewNATS.
type NATSStats struct {
	// Received counts ops and queries from other nodes this node acted on.
	Received int64
	// Dropped counts messages this node refused: not JSON, another
	// version, an op or query no gateway would send, one that arrived on
	// the wrong subject, or one the node failed to apply.
	Dropped int64
	// BufferedDrops counts publications NATS would not take: mostly while
	// disconnected with the reconnect buffer full, or after the connection
	// closed; also a message over the server's payload limit.
	BufferedDrops int64
}
