package gateway

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// NamedTransport is implemented by transports that can say what they are
// ("websockets", "serversentevents", "longpolling"), for the connection
// counters and the lifecycle log line. Others count as "unknown".
type NamedTransport interface {
	TransportName() string
}

// CloseKind is why a connection ended, from a small fixed set, so it can
// label a metric: the full reason (which may carry an error's text) goes
// to the disconnected event and the log instead.
type CloseKind string

// The close kinds, in the order ConnStats lists them.
const (
	CloseKindClient        CloseKind = "client_closed"      // the client closed it
	CloseKindTimeout       CloseKind = "timeout"            // the client fell silent past ClientTimeout
	CloseKindServer        CloseKind = "server_closed"      // a closeConnection action or REST call
	CloseKindShutdown      CloseKind = "shutdown"           // this node shut down
	CloseKindResumeTimeout CloseKind = "resume_timeout"     // a stateful client did not come back in time
	CloseKindProtocol      CloseKind = "protocol_error"     // bad frames or hub protocol messages
	CloseKindPolicy        CloseKind = "policy"             // closed for sending past its rate
	CloseKindTooBig        CloseKind = "message_too_big"    // a frame over the hub's size limit
	CloseKindLost          CloseKind = "connection_lost"    // the socket failed
	CloseKindSlowConsumer  CloseKind = "slow_consumer"      // its send queue overflowed
	CloseKindResumeBuffer  CloseKind = "resume_buffer_full" // a stateful client acknowledged too little
)

var closeKinds = [...]CloseKind{CloseKindClient, CloseKindTimeout, CloseKindServer, CloseKindShutdown, CloseKindResumeTimeout,
	CloseKindProtocol, CloseKindPolicy, CloseKindTooBig, CloseKindLost, CloseKindSlowConsumer, CloseKindResumeBuffer}

// closeKind classifies a close by the code and reason closeWith was given.
func closeKind(code int, reason string) CloseKind {
	switch code {
	case CloseNormal:
		switch {
		case reason == ReasonClientClosed:
			return CloseKindClient
		case strings.HasPrefix(reason, "timeout: "):
			return CloseKindTimeout
		}
		return CloseKindServer
	case CloseGoingAway:
		if reason == ReasonShutdown {
			return CloseKindShutdown
		}
		return CloseKindResumeTimeout
	case CloseProtocolError, CloseUnsupportedData:
		return CloseKindProtocol
	case ClosePolicyViolation:
		return CloseKindPolicy
	case CloseMessageTooBig:
		return CloseKindTooBig
	case CloseTryAgainLater:
		if reason == ReasonResumeBufferFull {
			return CloseKindResumeBuffer
		}
		return CloseKindSlowConsumer
	}
	return CloseKindLost
}

func closeKindIndex(k CloseKind) int {
	for i, x := range closeKinds {
		if x == k {
			return i
		}
	}
	return len(closeKinds) - 1
}

// connKey is what connection counters are kept by: all bounded, since
// hubs are defined by the admin and transports and protocols are few.
type connKey struct{ hub, transport, protocol string }

// connCounters count the connections of one connKey. They change once per
// connection lifecycle, never per message.
type connCounters struct {
	key    connKey
	opened atomic.Int64
	closed [len(closeKinds)]atomic.Int64
}

// connStats holds the gateway's connCounters.
type connStats struct {
	m sync.Map // connKey → *connCounters
}

func (s *connStats) get(k connKey) *connCounters {
	if v, ok := s.m.Load(k); ok {
		return v.(*connCounters)
	}
	v, _ := s.m.LoadOrStore(k, &connCounters{key: k})
	return v.(*connCounters)
}

func transportName(tr Transport) string {
	if n, ok := tr.(NamedTransport); ok {
		return n.TransportName()
	}
	return "unknown"
}

// countOpened records that c finished its handshake and joined its hub.
func (g *Gateway) countOpened(c *Conn) {
	c.stats = g.conns.get(connKey{c.hub.name, transportName(c.tr), c.codec.Name()})
	c.stats.opened.Add(1)
	c.opened = g.cfg.Now()
}

// countClosed records why c ended and logs its one lifecycle line: the
// line every connection gets at info level, whatever its traffic.
func (g *Gateway) countClosed(c *Conn) {
	if c.stats == nil {
		return // never opened: its handshake failed
	}
	c.mu.Lock()
	ended := c.ended.get()
	c.mu.Unlock()
	code, reason := ended.code, ended.reason
	kind := closeKind(code, reason)
	c.stats.closed[closeKindIndex(kind)].Add(1)
	// The transport is the one the connection opened on (a resumed
	// stateful connection keeps its kind): c.tr may be swapped meanwhile.
	attrs := []any{"hub", c.hub.name, "conn", c.id, "transport", c.stats.key.transport, "protocol", c.codec.Name(),
		"duration", g.cfg.Now().Sub(c.opened).Round(time.Millisecond), "kind", string(kind), "reason", reason,
		"received", c.received.Load()}
	if c.userID != "" {
		attrs = append(attrs, "user", c.userID)
	}
	g.log.Info("connection closed", attrs...)
}

// ConnStat is the connection counters of one hub, transport and protocol.
type ConnStat struct {
	Hub, Transport, Protocol string
	// Opened counts connections that completed their handshake; Closed
	// those that ended since, by kind. Opened minus every Closed is the
	// number open now.
	Opened int64
	Closed map[CloseKind]int64
}

// Open is the number of these connections open now.
func (s ConnStat) Open() int64 {
	n := s.Opened
	for _, v := range s.Closed {
		n -= v
	}
	return n
}

// ConnStats returns the connection counters since the gateway started,
// sorted by hub, transport and protocol. Kinds never seen are left out of
// Closed.
func (g *Gateway) ConnStats() []ConnStat {
	var out []ConnStat
	g.conns.m.Range(func(k, v any) bool {
		key, cc := k.(connKey), v.(*connCounters)
		// Closed is read before opened: a connection that opens and closes
		// in between then counts as open rather than making Open negative.
		st := ConnStat{Hub: key.hub, Transport: key.transport, Protocol: key.protocol, Closed: map[CloseKind]int64{}}
		for i := range cc.closed {
			if n := cc.closed[i].Load(); n > 0 {
				st.Closed[closeKinds[i]] = n
			}
		}
		st.Opened = cc.opened.Load()
		out = append(out, st)
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Hub != b.Hub {
			return a.Hub < b.Hub
		}
		if a.Transport != b.Transport {
			return a.Transport < b.Transport
		}
		return a.Protocol < b.Protocol
	})
	return out
}

// MessageStat counts one hub's messages since the gateway started: the
// counters behind Traffic, with the drops besides.
type MessageStat struct {
	Hub string
	// Received counts the invocations clients sent (invoke and send);
	// pings, completions, acks and other protocol messages are not counted.
	Received int64
	// Sent counts the invocations queued to clients: each recipient of a
	// broadcast, group, user or connection send once. Completions are not
	// counted.
	Sent int64
	// Dropped counts the recipients of a send the message was not queued
	// for: their send queue was full (the slow consumer is closed), they
	// were closing, or their protocol cannot carry the message.
	Dropped int64
}

// tally counts one action's recipients.
type tally struct{ sent, dropped int64 }

func (t *tally) add(queued bool) {
	if queued {
		t.sent++
	} else {
		t.dropped++
	}
}

func (t *tally) addTo(h *hub) {
	if t.sent > 0 {
		h.traffic.out.Add(t.sent)
	}
	if t.dropped > 0 {
		h.traffic.dropped.Add(t.dropped)
	}
}

// MessageStats returns the message counters of every hub this node has
// served, sorted by hub.
func (g *Gateway) MessageStats() []MessageStat {
	var out []MessageStat
	g.hubs.Range(func(k, v any) bool {
		h := v.(*hub)
		out = append(out, MessageStat{Hub: k.(string), Received: h.traffic.in.Load(), Sent: h.traffic.out.Load(), Dropped: h.traffic.dropped.Load()})
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Hub < out[j].Hub })
	return out
}
