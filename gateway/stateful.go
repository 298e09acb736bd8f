package gateway

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/switchboard-gw/switchboard/protocol"
)

// Stateful reconnect (ASP.NET Core SignalR's, which the stock client asks
// for with withStatefulReconnect and a handshake of version 2): a
// connection outlives its socket. Each side numbers the trackable messages
// it sends (types 1 to 5) from 1 and acknowledges what it received (Ack);
// the gateway keeps what it sent since the client's last Ack. When the
// socket breaks without the client's Close message, the connection is
// detached, not ended: fan-out keeps adding to what will be replayed, its
// invocations keep running, and the client has StatefulReconnectWindow to
// open a new socket with the same connection token (no negotiate, no
// handshake). The gateway then sends a Sequence naming the first message it
// replays, replays every message not acknowledged, and reading goes on;
// the client does the same the other way, and each side drops what it has
// already processed. No disconnected/connected pair reaches the upstream.
// A client that does not come back in time is disconnected as usual; one
// that lets more than StatefulReconnectBuffer bytes go unacknowledged is
// closed with a reason saying so.

// resumable is a stateful connection's state.
type resumable struct {
	// Guarded by Conn.mu:
	sent      []sentMsg // trackable messages not acknowledged, oldest first
	sentBytes int
	nextSeq   int64 // sequence id of the next trackable message sent
	detached  bool  // the socket broke; waiting for the client to resume
	detachAt  time.Time
	// gen counts the sockets the connection had; a reader whose socket was
	// replaced sees another gen and leaves the connection to the new one.
	gen int
	// resumed is closed when a new socket took over a detached connection.
	resumed chan struct{}
	// readerDone is closed when the current socket's reader stopped.
	readerDone chan struct{}

	// Owned by the reader goroutine:
	inSeq     int64 // sequence id of the last trackable message received
	processed int64 // the highest sequence id processed

	// For the sweep's Acks (atomics, read off the reader):
	received, acked atomic.Int64
}

type sentMsg struct {
	seq int64
	msg []byte // shared with other recipients: never modified
}

func newResumable() *resumable {
	return &resumable{nextSeq: 1, resumed: make(chan struct{}), readerDone: make(chan struct{})}
}

// trackable reports whether a message type counts in the sequence.
func trackable(typ int) bool {
	return typ >= protocol.TypeInvocation && typ <= protocol.TypeCancelInvocation
}

// enqueueTracked queues a trackable message (an invocation or a
// completion): a stateful connection also keeps it until the client
// acknowledges it, and a detached one only keeps it, for the replay.
func (c *Conn) enqueueTracked(msg []byte) bool {
	rs := c.rs
	if rs == nil {
		return c.enqueue(msg)
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if rs.sentBytes+len(msg) > c.g.cfg.StatefulReconnectBuffer {
		c.mu.Unlock()
		c.g.log.Debug("closing stateful connection whose client acknowledges too little", "hub", c.hub.name, "conn", c.id)
		c.closeWith(CloseTryAgainLater, ReasonResumeBufferFull, c.codec.AppendClose(nil, ReasonResumeBufferFull, true))
		return false
	}
	rs.sent = append(rs.sent, sentMsg{seq: rs.nextSeq, msg: msg})
	rs.nextSeq++
	rs.sentBytes += len(msg)
	if rs.detached {
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()
	return c.enqueue(msg)
}

// acknowledged drops the messages the client acknowledged up to seq.
func (c *Conn) acknowledged(seq int64) {
	rs := c.rs
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for n < len(rs.sent) && rs.sent[n].seq <= seq {
		rs.sentBytes -= len(rs.sent[n].msg)
		n++
	}
	if n == len(rs.sent) {
		rs.sent = nil // an idle connection keeps no buffer
	} else {
		rs.sent = rs.sent[n:]
	}
}

// receivedTrackable counts a trackable message from the client and reports
// whether it is new; one the client replays after a resume that was
// processed already is not. Reader goroutine only.
func (c *Conn) receivedTrackable() bool {
	rs := c.rs
	rs.inSeq++
	rs.received.Store(rs.inSeq)
	if rs.inSeq <= rs.processed {
		return false
	}
	rs.processed = rs.inSeq
	return true
}

// detach keeps a stateful connection whose socket broke, for the client to
// resume, and reports whether it did: not when the connection is closing
// anyway or when gen is no longer the current socket.
func (c *Conn) detach(gen int) bool {
	rs := c.rs
	c.mu.Lock()
	if c.closing || rs.gen != gen {
		c.mu.Unlock()
		return false
	}
	rs.detached = true
	rs.detachAt = c.g.cfg.Now()
	// What was queued but not written is replayed from sent, trackable
	// or not worth replaying (pings, acks).
	c.buf = c.buf[:0]
	tr := c.tr
	c.mu.Unlock()
	_ = tr.Close(CloseGoingAway, "connection lost")
	c.g.log.Debug("stateful connection detached; waiting for the client to resume", "hub", c.hub.name, "conn", c.id)
	return true
}

// resumeWith hands a detached (or, for a client that is quicker to notice
// than the gateway, still attached) stateful connection a new socket, and
// queues the Sequence and the replay. It reports false when the connection
// is closing.
func (c *Conn) resumeWith(tr Transport) (gen int, ok bool) {
	rs := c.rs
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return 0, false
	}
	if !rs.detached { // a takeover: the old socket goes first
		old, oldDone := c.tr, rs.readerDone
		rs.detached, rs.detachAt = true, c.g.cfg.Now()
		c.buf = c.buf[:0]
		c.mu.Unlock()
		_ = old.Close(CloseGoingAway, "replaced by a new socket")
		<-oldDone // one reader at a time
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return 0, false
		}
	}
	rs.gen++
	rs.detached = false
	c.tr = tr
	first := rs.nextSeq
	if len(rs.sent) > 0 {
		first = rs.sent[0].seq
	}
	c.buf = c.buf[:0]
	c.appendLocked(c.codec.AppendSequence(nil, first))
	for _, s := range rs.sent {
		c.appendLocked(s.msg)
	}
	close(rs.resumed)
	rs.resumed = make(chan struct{})
	rs.readerDone = make(chan struct{})
	gen = rs.gen
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	c.urgent.Store(true)
	if start {
		c.startWriter()
	}
	c.g.log.Debug("stateful connection resumed", "hub", c.hub.name, "conn", c.id, "replayed", first)
	return gen, true
}

// detachedTooLong reports whether a detached connection's window passed.
func (c *Conn) detachedTooLong(now time.Time) bool {
	if c.rs == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rs.detached && now.Sub(c.rs.detachAt) >= c.g.cfg.StatefulReconnectWindow
}

// isDetached reports whether the connection waits for its client to resume.
func (c *Conn) isDetached() bool {
	if c.rs == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rs.detached
}

// ackDue returns the Ack the client should get, if it sent trackable
// messages since the last one.
func (c *Conn) ackDue() ([]byte, bool) {
	rs := c.rs
	if rs == nil {
		return nil, false
	}
	r := rs.received.Load()
	if r <= rs.acked.Load() {
		return nil, false
	}
	rs.acked.Store(r)
	return c.codec.AppendAck(nil, r), true
}

// resumeTimeout is the reason of a connection whose client did not resume
// in time.
func (g *Gateway) resumeTimeout() string {
	return fmt.Sprintf("connection lost and not resumed within %s", g.cfg.StatefulReconnectWindow)
}
