package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/protocol"
	"github.com/switchboard-gw/switchboard/upstream"
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

// cannedHooks answers every message event with the same reply, in process:
// the webhook call's own allocations are delivery's, pinned by
// delivery.TestCallAllocations; this keeps the gateway's share apart.
type cannedHooks struct{ reply *upstream.Reply }

func (cannedHooks) Wants(string, string, string) bool { return true }
func (h cannedHooks) Call(context.Context, *upstream.Event) (*upstream.Reply, error) {
	return h.reply, nil
}
func (cannedHooks) Notify(context.Context, *upstream.Event) {}

// signalWrites is a Transport that drops writes and says so on a channel.
type signalWrites struct {
	discard
	wrote chan struct{}
}

func (s *signalWrites) WriteFrame(context.Context, []byte, bool) error {
	s.wrote <- struct{}{}
	return nil
}

// Abort makes it a gateway Aborter, as the WebSocket is: its writes are
// bounded by the sweep, not a context per write.
func (s *signalWrites) Abort() {}

// TestInvocationAllocations pins the gateway's share of a client
// invocation: the frame parsed, the invocation admitted and run on a
// pooled worker, the message event built, the reply's result sent back
// as a Completion through the write loop. With Go 1.26 it was 15
// allocations and is 10 since write loops run on pooled goroutines and
// WebSocket writes are bounded by the sweep instead of a context per write
// (see docs/benchmarks.md), and 9 since a reply without actions skips
// RunReply's context.
func TestInvocationAllocations(t *testing.T) {
	if testutil.Race {
		t.Skip("the race detector changes allocation counts (sync.Pool drops items)")
	}
	reply := &upstream.Reply{Result: json.RawMessage(`"delivered"`)}
	// The rate limit stays on the path, too high to refuse anything.
	// A sweep loop that never runs within the test: writes are swept.
	g := New(Config{SweepInterval: time.Hour, Logger: quiet, Webhooks: cannedHooks{reply}, Limits: Limits{InvocationRate: 1e9}})
	defer g.Shutdown(context.Background())
	tr := &signalWrites{discard: *newDiscard(), wrote: make(chan struct{}, 1)}
	c := testConn(g, g.hub("h"), "c1", tr)
	c.userID = "alice"
	frame := []byte(`{"type":1,"invocationId":"7","target":"sendMessage","arguments":["hello",1732900000000]}` + "\x1e")
	ctx := context.Background()
	invoke := func() {
		if !c.handleFrame(ctx, frame, false) {
			t.Fatal("the invocation frame was refused")
		}
		<-tr.wrote
	}
	invoke()
	const pinned = 9
	if got := testing.AllocsPerRun(500, invoke); got > pinned {
		t.Errorf("an invocation allocates %v times in the gateway; pinned at %d", got, pinned)
	} else if got < pinned-3 {
		t.Logf("an invocation allocates %v times, well under the pin of %d: lower it", got, pinned)
	}
}
