package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/switchboard-gw/switchboard/protocol"
)

// discard is a Transport that drops writes, counting their bytes, and whose
// reads block until Close: the socket side of a fan-out benchmark.
type discard struct {
	written atomic.Int64
	closed  chan struct{}
}

func newDiscard() *discard { return &discard{closed: make(chan struct{})} }

func (d *discard) ReadFrame(ctx context.Context) ([]byte, bool, error) {
	select {
	case <-d.closed:
		return nil, false, ErrClientClosed
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

func (d *discard) WriteFrame(_ context.Context, b []byte, _ bool) error {
	d.written.Add(int64(len(b)))
	return nil
}

func (d *discard) Close(int, string) error { return nil }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConn is a registered connection of hub h served by tr, with no read
// loop: enough for fan-out, which only touches queues.
func testConn(g *Gateway, h *hub, id string, tr Transport) *Conn {
	c := &Conn{id: id, hub: h, g: g, tr: tr, codec: protocol.JSON, done: make(chan struct{})}
	h.addConn(c)
	return c
}

// TestEnqueueDoesNotAllocate pins the fan-out hot path: queueing an already
// encoded message, and the write loop's buffer swap, allocate nothing once a
// connection has its buffers.
func TestEnqueueDoesNotAllocate(t *testing.T) {
	g := New(Config{SweepInterval: -1, Logger: quiet})
	defer g.Shutdown(context.Background())
	c := testConn(g, g.hub("h"), "c1", newDiscard())
	msg := protocol.AppendInvocation(nil, "", "newMessage", json.RawMessage(`["hello, everyone",1732900000000]`))

	// Mark a write loop as running without starting one, so the test plays
	// the writer: enqueues only queue, take and recycle swap the buffers.
	c.holdWrites(msg)
	pass := func() {
		for range 16 {
			if !c.enqueue(msg) {
				t.Fatal("enqueue refused a message on an open connection")
			}
		}
		out, _, gen := c.take()
		if want := 16 * len(msg); len(out) < want {
			t.Fatalf("took %d bytes, want at least %d", len(out), want)
		}
		if !c.recycle(out, nil, gen) {
			t.Fatal("recycle after a good write reported a closed connection")
		}
	}
	pass() // the first pass takes the pooled buffers
	if got := testing.AllocsPerRun(1000, pass); got != 0 {
		t.Errorf("enqueue + buffer swap: got %v allocations per pass of 16 messages, want 0", got)
	}
}

// TestEnqueueKeepsOrderAndClosesSlowConsumer checks the byte queue: messages
// arrive whole and in order, and a connection whose queue passes
// MaxQueueBytes is closed as a slow consumer instead of growing.
func TestEnqueueKeepsOrderAndClosesSlowConsumer(t *testing.T) {
	g := New(Config{SweepInterval: -1, Logger: quiet, MaxQueueBytes: 1024})
	defer g.Shutdown(context.Background())
	c := testConn(g, g.hub("h"), "c1", newDiscard())
	c.holdWrites([]byte("A"))
	for _, m := range []string{"B", "CC", "DDD"} {
		c.enqueue([]byte(m))
	}
	if got, _, _ := c.take(); string(got) != "ABCCDDD" {
		t.Fatalf("queued %q, want %q", got, "ABCCDDD")
	}
	big := make([]byte, 1000)
	if !c.enqueue(big) {
		t.Fatal("a message within the limit was refused")
	}
	if c.enqueue(big) {
		t.Fatal("a message past MaxQueueBytes was queued")
	}
	if got := g.SlowConsumers(); got != 1 {
		t.Errorf("slow consumers: got %d, want 1", got)
	}
	if c.enqueue([]byte("x")) {
		t.Error("a closing connection accepted a message")
	}
}
