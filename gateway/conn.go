package gateway

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/switchboard-gw/switchboard/protocol"
)

// Conn is one client connection: its identity, groups and outbound queue.
// The socket serving it is a Transport, kept apart so later transports
// (SSE, long polling, stateful reconnect) can serve the same connection.
type Conn struct {
	id      string
	token   string
	hub     *hub
	userID  string
	claims  map[string]any
	g       *Gateway
	tr      Transport
	maxSize int

	lastRead  atomic.Int64 // unix nanoseconds of the last frame from the client
	lastWrite atomic.Int64 // unix nanoseconds of the last frame to the client

	mu sync.Mutex // guards the fields below
	// queue holds encoded, framed messages not yet written; spare is the
	// drained slice kept for reuse so steady-state enqueues do not allocate.
	queue, spare [][]byte
	queued       int  // bytes in queue
	writing      bool // a write loop is running
	closing      bool // no more messages are accepted
	closeCode    int
	closeReason  string // disconnect reason for the webhook
	groups       map[string]struct{}
	done         chan struct{} // closed when the socket is closed
}

// ID is the connection id (URL-safe, prefixed with the node id).
func (c *Conn) ID() string { return c.id }

// UserID is the user id, "" for an anonymous connection.
func (c *Conn) UserID() string { return c.userID }

// Hub is the name of the connection's hub.
func (c *Conn) Hub() string { return c.hub.name }

// enqueue appends an encoded message to the send queue and makes sure a write
// loop runs. It never blocks on the socket. A connection whose queue would
// pass MaxQueueBytes is closed as a slow consumer. It reports whether msg was
// queued.
func (c *Conn) enqueue(msg []byte) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if c.queued+len(msg) > c.g.cfg.MaxQueueBytes {
		c.mu.Unlock()
		c.g.slowConsumers.Add(1)
		c.closeWith(CloseTryAgainLater, ReasonSlowConsumer, protocol.AppendClose(nil, ReasonSlowConsumer, true))
		return false
	}
	c.queue = append(c.queue, msg)
	c.queued += len(msg)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
	return true
}

// holdWrites queues first and marks a write loop as running without
// starting one, so later enqueues only queue. The caller must start
// writeLoop to release them.
func (c *Conn) holdWrites(first []byte) {
	c.mu.Lock()
	c.queue = append(c.queue, first)
	c.queued += len(first)
	c.writing = true
	c.mu.Unlock()
}

// closeWith stops accepting messages, queues final (a SignalR Close message,
// may be nil) and has the write loop close the socket once everything queued
// before it is written. The first call decides the code and reason.
func (c *Conn) closeWith(code int, reason string, final []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.closeCode = code
	c.closeReason = reason
	if final != nil {
		c.queue = append(c.queue, final)
		c.queued += len(final)
	}
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// writeLoop drains the queue, writing everything queued at once as one frame
// (the JSON hub protocol allows several messages per frame), and exits when
// the queue is empty. After a close it closes the socket.
func (c *Conn) writeLoop() {
	var frame []byte
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.writing = false
			closing, code, reason := c.closing, c.closeCode, c.closeReason
			c.mu.Unlock()
			if frame != nil {
				putBuf(frame)
			}
			if closing {
				c.closeSocket(code, reason)
			}
			return
		}
		batch := c.queue
		c.queue = c.spare[:0]
		c.queued = 0
		c.mu.Unlock()

		var out []byte
		if len(batch) == 1 {
			out = batch[0]
		} else {
			if frame == nil {
				frame = getBuf()
			}
			frame = frame[:0]
			for _, m := range batch {
				frame = append(frame, m...)
			}
			out = frame
		}
		clear(batch)
		c.mu.Lock()
		c.spare = batch[:0]
		c.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), c.g.cfg.WriteTimeout)
		err := c.tr.WriteFrame(ctx, out)
		cancel()
		if err != nil {
			c.mu.Lock()
			c.queue, c.queued, c.writing = nil, 0, false
			if !c.closing {
				c.closing, c.closeCode, c.closeReason = true, CloseInternalError, "write failed: "+err.Error()
			}
			c.mu.Unlock()
			c.closeSocket(CloseInternalError, "write failed")
			if frame != nil {
				putBuf(frame)
			}
			return
		}
		c.lastWrite.Store(c.g.cfg.Now().UnixNano())
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

// addGroup records membership; false if already a member or closing.
func (c *Conn) addGroup(g string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing && c.groups == nil {
		return false
	}
	if c.groups == nil {
		c.groups = make(map[string]struct{})
	}
	if _, ok := c.groups[g]; ok {
		return false
	}
	c.groups[g] = struct{}{}
	return true
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

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) > 1<<20 {
		return
	}
	bufPool.Put(&b)
}
