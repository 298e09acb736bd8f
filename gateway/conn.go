package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-gw/switchboard/protocol"
)

// Conn is one client connection: its identity, groups and outbound queue.
// The socket serving it is a Transport, kept apart so later transports
// (SSE, long polling, stateful reconnect) can serve the same connection.
type Conn struct {
	id     string
	token  string
	hub    *hub
	userID string
	// claims are the claims of the client's token as one JSON object, for
	// webhooks that carry them on every event (see upstream.ClientInfo).
	claims json.RawMessage
	g      *Gateway
	tr     Transport
	// codec is the hub protocol: JSON until the handshake chose one, set
	// before the connection joins its hub (whose lock publishes it) and
	// never changed after.
	codec protocol.Codec
	// rs is the state of a stateful connection (handshake version 2), set
	// with codec; nil for the others.
	rs *resumable
	// query is the client's connect query as webhooks of the Azure
	// profile carry it (see clientQuery), set before the connect event.
	query string

	lastRead  atomic.Int64 // unix nanoseconds of the last frame from the client
	lastWrite atomic.Int64 // unix nanoseconds of the last frame to the client

	mu sync.Mutex // guards the fields below
	// buf holds encoded, framed messages not yet written, back to back (the
	// JSON hub protocol allows several messages per frame, so the write loop
	// sends it as it is); spare is the buffer being written or kept for the
	// next swap. Both come from bufPool when traffic starts and go back once
	// the connection has been quiet for a while (releaseIdle, from the
	// sweep), so busy connections do not churn the pool and idle ones hold
	// no buffer.
	buf, spare []byte
	writing    bool // a write loop is running
	closing    bool // no more messages are accepted
	settled    bool // a write loop's turn has ended with nothing queued
	// keepsAlive: the transport tells a dead client apart itself (Long
	// Polling), so the sweep neither pings it nor times it out. Set
	// before the connection is shared and never changed; it sits with
	// the flags above only to share their word.
	keepsAlive bool
	// ended says how the connection closed, set with closing; nil before.
	// A pointer, because most of a connection's life it is nil: the
	// fields inline were 88 of an idle connection's bytes.
	ended  *closeState
	groups map[string]membership
	done   chan struct{} // closed when the socket is closed

	// leaseDue is the earliest end (unix nanoseconds) of a group
	// membership this connection holds through its user with a ttl, 0 for
	// none; the sweep looks at it to skip the others in O(1). It may be
	// early (a membership since renewed or removed): the sweep then finds
	// nothing to end and sets it again.
	leaseDue atomic.Int64

	// lastFlush is when the write loop last started a write (monotonic
	// nanoseconds since processStart).
	lastFlush atomic.Int64
	// gap is an average of the time between two messages queued here
	// (monotonic nanoseconds), for the congestion window; lastEnq is when
	// the last one was queued, and spawned when the running write loop was
	// started.
	gap, lastEnq, spawned atomic.Int64
	// writeSince is when the write in progress began (monoNow), 0 when
	// none is; see write.
	writeSince atomic.Int64
	// urgent is set while the buffer holds a reply someone is waiting for
	// (a Completion): it goes out at once instead of waiting out the
	// coalescing window, which only pays for server-initiated traffic.
	urgent atomic.Bool

	// inv runs the connection's invocations; the read loop creates it at
	// the first one (invoke.go).
	inv *invoker

	// stats are the counters of the connection's hub, transport and
	// protocol, set when its handshake succeeded (nil before); opened is
	// when; received counts its invocations, for its lifecycle log line.
	stats    *connCounters
	opened   time.Time
	received atomic.Int64
}

// ID is the connection id (URL-safe, prefixed with the node id).
func (c *Conn) ID() string { return c.id }

// UserID is the user id, "" for an anonymous connection.
func (c *Conn) UserID() string { return c.userID }

// Hub is the name of the connection's hub.
func (c *Conn) Hub() string { return c.hub.name }

// enqueue copies an encoded message into the send buffer and makes sure a
// write loop runs. It never blocks on the socket. A connection whose buffer
// would pass MaxQueueBytes is closed as a slow consumer. It reports whether
// msg was queued. Once the connection has a buffer it does not allocate.
func (c *Conn) enqueue(msg []byte) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if len(c.buf)+len(msg) > c.g.cfg.MaxQueueBytes {
		c.mu.Unlock()
		c.g.slowConsumers.Add(1)
		c.closeWith(CloseTryAgainLater, ReasonSlowConsumer, c.codec.AppendClose(nil, ReasonSlowConsumer, true))
		return false
	}
	c.appendLocked(msg)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
	return true
}

// enqueueFrame queues the connection's protocol's form of a message encoded
// for many; a message its protocol cannot carry is skipped.
func (c *Conn) enqueueFrame(f *frameSet) bool {
	msg := f.get(c.codec)
	if msg == nil {
		return false
	}
	return c.enqueueTracked(msg)
}

// replyCompletion queues the Completion of an invocation, in the
// connection's protocol. A result the protocol cannot carry (a number
// beyond MessagePack's range) becomes a completion error saying so.
func (c *Conn) replyCompletion(invocationID string, result json.RawMessage, errMsg string) bool {
	msg, err := c.codec.AppendCompletion(nil, invocationID, result, errMsg)
	if err != nil {
		msg, _ = c.codec.AppendCompletion(nil, invocationID, nil, "the upstream's result cannot be sent in the "+c.codec.Name()+" protocol: "+err.Error())
	}
	return c.reply(msg)
}

// reply queues a message the client is waiting for (a Completion); it is
// written without waiting for the coalescing window.
func (c *Conn) reply(msg []byte) bool {
	c.urgent.Store(true)
	return c.enqueueTracked(msg)
}

// appendLocked adds msg to buf, taking a pooled buffer when there is none,
// and keeps the average gap between messages.
func (c *Conn) appendLocked(msg []byte) {
	if c.buf == nil {
		c.buf = getBuf()
	}
	c.buf = append(c.buf, msg...)
	now := monoNow()
	if last := c.lastEnq.Swap(now); last != 0 {
		d, g := now-last, c.gap.Load()
		if g == 0 {
			c.gap.Store(d)
		} else {
			c.gap.Store(g + (d-g)/8)
		}
	}
}

func monoNow() int64 { return int64(time.Since(processStart)) }

// holdWrites queues first and marks a write loop as running without
// starting one, so later enqueues only queue. The caller must start
// writeLoop to release them.
func (c *Conn) holdWrites(first []byte) {
	c.mu.Lock()
	c.appendLocked(first)
	c.writing = true
	c.mu.Unlock()
}

// closeWith stops accepting messages, queues final (a SignalR Close message,
// may be nil) and has the write loop close the socket once everything queued
// before it is written. The first call decides the code and reason.
func (c *Conn) closeWith(code int, reason string, final []byte) {
	c.closeCausedBy(trace.SpanContext{}, code, reason, final)
}

// closeCausedBy is closeWith for a close that an action or REST call asked
// for: cause, the trace context of that request, becomes the parent of the
// disconnected event's webhooks (see closeContext).
func (c *Conn) closeCausedBy(cause trace.SpanContext, code int, reason string, final []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.ended = &closeState{code: code, reason: reason, cause: cause}
	if c.rs != nil && c.rs.detached {
		// No socket to say it on: the connection just ends, and the Serve
		// waiting for a resume tears it down.
		close(c.done)
		c.mu.Unlock()
		return
	}
	if final != nil {
		c.appendLocked(final)
	}
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
}

// startWriter runs writeLoop on a pooled goroutine, noting when, for the
// congestion detector.
func (c *Conn) startWriter() {
	c.spawned.Store(monoNow())
	c.g.workers.run(workerTurn{c: c})
}

// processStart anchors lastFlush to the monotonic clock.
var processStart = time.Now()

// writeLoop writes the send buffer as one frame per pass, at most one pass
// per Config.WriteCoalesce, and exits when the buffer is empty, handing its
// buffers back to the pool. After a close it closes the socket.
func (c *Conn) writeLoop() {
	c.g.noteSchedulingDelay(monoNow()-c.spawned.Load(), c.gap.Load())
	for {
		window := c.window()
		last := c.lastFlush.Load()
		// Wait out the window only with something queued: a loop that just
		// wrote must not hold back the next message for a window while it
		// finds out that nothing is left.
		if wait := last + window - int64(time.Since(processStart)); window > 0 && last != 0 && wait > 0 && !c.urgent.Load() && c.pending() {
			time.Sleep(time.Duration(wait))
		}
		out, tr, gen := c.take()
		if out == nil {
			return
		}
		c.lastFlush.Store(int64(time.Since(processStart)))
		err := c.write(tr, out)
		if !c.recycle(out, err, gen) {
			return
		}
		c.lastWrite.Store(c.g.cfg.Now().UnixNano())
	}
}

// write writes out as one frame on tr within Config.WriteTimeout. A
// transport that can drop its socket at once (Aborter, the WebSocket) gets
// no deadline of its own: the sweep aborts a write that has taken longer
// than WriteTimeout, at most one SweepInterval late. A context with a
// timeout per write cost four allocations here and three more in the
// WebSocket library, about 6% of the gateway's CPU in fan-out.
func (c *Conn) write(tr Transport, out []byte) error {
	if _, ok := tr.(Aborter); ok && c.g.cfg.SweepInterval > 0 {
		c.writeSince.Store(monoNow())
		err := tr.WriteFrame(context.Background(), out, c.codec.Binary())
		c.writeSince.Store(0)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.g.cfg.WriteTimeout)
	defer cancel()
	return tr.WriteFrame(ctx, out, c.codec.Binary())
}

// abortStuckWrite drops the socket of a write that began before since
// (monoNow units), so the write loop finds it failed; the sweep calls it.
func (c *Conn) abortStuckWrite(since int64) {
	if s := c.writeSince.Load(); s == 0 || s > since {
		return
	}
	c.mu.Lock()
	tr := c.tr
	c.mu.Unlock()
	if a, ok := tr.(Aborter); ok {
		c.g.stuckWrites.Add(1)
		a.Abort()
	}
}

// interruptWait ends the wait of a connection that has been quiet for
// IdleHandoff, if its transport waits in a way that can be moved (see
// ServeWaiting); a wait already moved is not interruptible and stays.
func (c *Conn) interruptWait() {
	c.mu.Lock()
	tr := c.tr
	c.mu.Unlock()
	if w, ok := tr.(IdleWaiter); ok {
		w.Interrupt()
	}
}

// window is the coalescing window of this connection. While the gateway
// is congested it is about two of this connection's message gaps (at
// least WriteCoalesce, at most maxCoalesce), so that a connection
// receiving a message every 66 ms shares a write between two or three of
// them instead of paying a syscall for each while the CPU is the
// bottleneck. Otherwise it is WriteCoalesce where messages come closer
// than that, and zero where they come further apart: there a message
// waiting out the window would rarely find another to share its write,
// and would only be late (chat-like traffic at a message every 10 ms or
// more per connection).
func (c *Conn) window() int64 {
	base := int64(c.g.cfg.WriteCoalesce)
	switch gap := c.gap.Load(); {
	case base <= 0:
		return base
	case c.g.congested():
		return min(max(2*gap, base), maxCoalesce)
	case gap >= base:
		return 0
	}
	return base
}

// maxCoalesce bounds the congestion window.
const maxCoalesce = int64(150 * time.Millisecond)

// noteSchedulingDelay feeds the congestion detector with how long a write
// loop waited to run after it was started (d) and the usual time between
// two messages to its connection (gap; 0 until the connection has had
// two). A write loop that waited longer than two gaps is late: two more
// messages came while the first waited to be written. While more than
// half of the recent turns are late the CPU is not keeping up and the
// gateway counts as congested; it stays so for congestionHold after the
// last time it did: wider windows soon bring the lateness down, and
// without that hold the windows would flap between wide and narrow. A turn
// late by less than that needs no window: the messages that came meanwhile
// already share its write.
//
// The delay alone is no sign of congestion. A message to 1,000
// connections starts 1,000 write loops at once, and the last of them runs
// the time of 999 writes later, about 15 ms on a small machine, with the
// CPU not saturated. A fixed bound of 10 ms on the average delay counted
// that as congestion and held chat messages sent every 20 ms for a 40 ms
// window: a p99 of 129 ms instead of 23 (docs/benchmarks.md, "Coalescing
// under a fan-out").
//
// The share is updated without a lock: a lost update only blurs it.
func (g *Gateway) noteSchedulingDelay(d, gap int64) {
	if gap <= 0 {
		return
	}
	var late int64
	if d > 2*gap {
		late = lateScale
	}
	share := g.lateShare.Load()
	share += (late - share) / 64
	g.lateShare.Store(share)
	if share > lateScale/2 {
		g.congestedUntil.Store(monoNow() + int64(congestionHold))
	}
}

// lateScale is 1 in the fixed point of Gateway.lateShare.
const lateScale = 1 << 16

// congestionHold is how long the gateway stays congested after the last
// sign of it.
const congestionHold = 2 * time.Second

func (g *Gateway) congested() bool { return monoNow() < g.congestedUntil.Load() }

// pending reports whether anything is queued.
func (c *Conn) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf) > 0
}

// take swaps the send buffer for the spare and returns what was queued, with
// the socket to write it to and that socket's generation (see resumable).
// With nothing queued it ends the write loop's turn: it closes the socket
// if the connection is closing, and returns nil.
func (c *Conn) take() ([]byte, Transport, int) {
	c.mu.Lock()
	if len(c.buf) == 0 || (c.rs != nil && c.rs.detached) {
		c.writing = false
		ended := c.ended.get()
		closing, code, reason := c.closing, ended.code, ended.reason
		if closing || (!c.settled && len(c.buf) == 0) {
			// The first turn wrote the handshake's answer, after which
			// most connections stay quiet for long: its buffers go back
			// now rather than after the sweep's quiet period, so that a
			// burst of connects shares a few pooled buffers instead of
			// holding one each for seconds.
			c.settled = true
			c.releaseLocked()
		}
		c.mu.Unlock()
		if closing {
			c.closeSocket(code, reason)
		}
		return nil, nil, 0
	}
	out := c.buf
	c.urgent.Store(false)
	c.buf = c.spare
	if c.buf != nil {
		c.buf = c.buf[:0]
	}
	c.spare = nil
	tr, gen := c.tr, 0
	if c.rs != nil {
		gen = c.rs.gen
	}
	c.mu.Unlock()
	return out, tr, gen
}

// recycle keeps a written buffer as the spare. After a failed write it
// closes the connection and reports false; a stateful connection loses only
// the socket, which its reader then finds broken (the messages are kept for
// the replay), and a write to a socket that was replaced meanwhile is no
// failure of the connection at all.
func (c *Conn) recycle(out []byte, err error, gen int) bool {
	c.mu.Lock()
	c.spare = out[:0]
	if err == nil || (c.rs != nil && c.rs.gen != gen) {
		c.mu.Unlock()
		return true
	}
	if c.rs != nil && !c.closing {
		c.writing = false
		c.buf = c.buf[:0]
		tr := c.tr
		c.mu.Unlock()
		_ = tr.Close(CloseInternalError, "write failed")
		return false
	}
	if !c.closing {
		c.closing, c.ended = true, &closeState{code: CloseInternalError, reason: "write failed: " + err.Error()}
	}
	c.writing = false
	c.buf = c.buf[:0]
	c.releaseLocked()
	c.mu.Unlock()
	c.closeSocket(CloseInternalError, "write failed")
	return false
}

// releaseIdle returns the buffers of a connection with no write in flight
// and none since quietSince (monotonic nanoseconds since processStart).
func (c *Conn) releaseIdle(quietSince int64) {
	c.mu.Lock()
	if !c.writing && len(c.buf) == 0 && c.lastFlush.Load() < quietSince {
		c.releaseLocked()
	}
	c.mu.Unlock()
}

// releaseLocked returns the (empty) buffers to the pool.
func (c *Conn) releaseLocked() {
	if c.buf != nil {
		putBuf(c.buf)
		c.buf = nil
	}
	if c.spare != nil {
		putBuf(c.spare)
		c.spare = nil
	}
}

func (c *Conn) closeSocket(code int, reason string) {
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return
	default:
		close(c.done)
	}
	c.mu.Unlock()
	_ = c.tr.Close(code, truncateReason(reason))
}

// truncateReason keeps a WebSocket close reason within the 123 bytes a close
// frame allows.
func truncateReason(s string) string {
	if len(s) <= 120 {
		return s
	}
	return s[:120]
}

// membership is how a connection is in a group: as itself (direct: an
// addToGroup action or REST call, the connect reply, a ttl=0 user add) and
// through its user's saved membership (user), which ends at until when the
// membership was added with a ttl. The connection stays in the group while
// either holds.
type membership struct {
	direct bool
	user   bool
	until  time.Time // end of the user membership; zero: until removed
}

// userEnded reports whether the user membership ended by now.
func (m membership) userEnded(now time.Time) bool {
	return m.user && !m.until.IsZero() && !now.Before(m.until)
}

// addGroup records that c is in group g: directly, or through its user
// (user set) until until (zero: until removed; a later add replaces the end,
// as the saved membership's does). It reports whether c was not in g
// before; a closing connection joins nothing. A join that would put c in
// more than Limits.MaxGroupsPerConnection groups fails with a
// groupLimitError.
func (c *Conn) addGroup(g string, user bool, until time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing && c.groups == nil {
		return false, nil
	}
	if c.groups == nil {
		c.groups = make(map[string]membership)
	}
	m, had := c.groups[g]
	if limit := c.g.cfg.Limits.MaxGroupsPerConnection; !had && len(c.groups) >= limit {
		return false, &groupLimitError{conn: c.id, limit: limit}
	}
	if user {
		m.user, m.until = true, until
		if !until.IsZero() {
			if due := c.leaseDue.Load(); due == 0 || until.UnixNano() < due {
				c.leaseDue.Store(until.UnixNano())
			}
		}
	} else {
		m.direct = true
	}
	c.groups[g] = m
	return !had, nil
}

func (c *Conn) removeGroup(g string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.groups[g]; !ok {
		return false
	}
	delete(c.groups, g)
	return true
}

// leaseDueBy reports whether a user membership of c may have ended by now
// (unix nanoseconds).
func (c *Conn) leaseDueBy(now int64) bool {
	due := c.leaseDue.Load()
	return due != 0 && due <= now
}

// endedGroups returns the groups whose user membership ended by now, and
// sets leaseDue to the earliest end still ahead.
func (c *Conn) endedGroups(now time.Time) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ended []string
	var next int64
	for g, m := range c.groups {
		switch {
		case m.userEnded(now):
			ended = append(ended, g)
		case m.user && !m.until.IsZero():
			if u := m.until.UnixNano(); next == 0 || u < next {
				next = u
			}
		}
	}
	c.leaseDue.Store(next)
	return ended
}

// endUserGroup ends c's membership of g through its user if it ended by
// now (a renewal since then keeps it), and reports whether c left g: it
// stays while it is also a direct member. The caller holds g's shard lock,
// so no join or leave of g interleaves.
func (c *Conn) endUserGroup(g string, now time.Time) (left bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.groups[g]
	if !ok || !m.userEnded(now) {
		return false
	}
	if m.direct {
		c.groups[g] = membership{direct: true}
		return false
	}
	delete(c.groups, g)
	return true
}

// takeGroups empties the connection's group set and returns what it held;
// after it, addGroup fails, so a concurrent join cannot leak a membership.
func (c *Conn) takeGroups() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.groups))
	for g := range c.groups {
		out = append(out, g)
	}
	c.groups = nil
	c.closing = true
	return out
}

// Groups returns the groups the connection is in.
func (c *Conn) Groups() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.groups))
	for g := range c.groups {
		out = append(out, g)
	}
	return out
}

// bufPool holds send buffers. Pooling *[]byte with the pointer kept in
// the pooled value would allocate on every Put; bufBox recycles the boxes.
var (
	bufPool = sync.Pool{New: func() any { return &bufBox{b: make([]byte, 0, 2048)} }}
	boxPool = sync.Pool{New: func() any { return new(bufBox) }}
)

type bufBox struct{ b []byte }

// maxPooledBuf keeps buffers that grew for a burst out of the pool.
const maxPooledBuf = 64 << 10

func getBuf() []byte {
	box := bufPool.Get().(*bufBox)
	b := box.b[:0]
	box.b = nil
	boxPool.Put(box)
	return b
}

func putBuf(b []byte) {
	if cap(b) > maxPooledBuf {
		return
	}
	box := boxPool.Get().(*bufBox)
	box.b = b[:0]
	bufPool.Put(box)
}

// closeState is how a connection closed: the WebSocket close code, the
// disconnect reason for the webhook, and the trace context of whoever
// asked for the close.
type closeState struct {
	code   int
	reason string
	cause  trace.SpanContext
}

// get is s, or the zero state for a connection not closing.
func (s *closeState) get() closeState {
	if s == nil {
		return closeState{}
	}
	return *s
}
