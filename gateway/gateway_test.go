package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig serves one gateway over real WebSockets on loopback, with sweeping
// driven by the test.
type rig struct {
	t   *testing.T
	g   *gateway.Gateway
	clk *testutil.Clock
	srv *httptest.Server
	wg  sync.WaitGroup
	// served counts the Serve calls that returned.
	served atomic.Int64
}

func newRig(t *testing.T) *rig {
	return newRigWith(t, gateway.Config{
		NodeID:       "n1",
		PingInterval: 15 * time.Second, ClientTimeout: 30 * time.Second,
	})
}

// newRigWith is newRig with cfg, whose clock and sweep the rig takes over.
func newRigWith(t *testing.T, cfg gateway.Config) *rig {
	r := &rig{t: t, clk: testutil.NewClock(time.Unix(1_800_000_000, 0))}
	// Tests sweep by hand on the fake clock, unless they ask for the loop.
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = -1
	}
	cfg.Now = r.clk.Now
	r.g = gateway.New(cfg)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ws, err := websocket.Accept(w, req, nil)
		if err != nil {
			return
		}
		r.wg.Add(1)
		defer r.wg.Done()
		r.g.Serve(context.Background(), req.URL.Query().Get("id"), httpapi.WebSocketTransport(ws), gateway.ConnectInfo{})
		r.served.Add(1)
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		r.wg.Wait()
		r.srv.Close()
	})
	return r
}

// connect negotiates and completes the handshake; it returns the socket and
// the connection id.
func (r *rig) connect(user string) (*websocket.Conn, string) {
	r.t.Helper()
	id, tok, err := r.g.Negotiate("hub", gateway.Identity{UserID: user})
	if err != nil {
		r.t.Fatal(err)
	}
	ws, answer, err := r.dialWith(tok, `{"protocol":"json","version":1}`+"\x1e")
	if err != nil || answer != "{}\x1e" {
		r.t.Fatalf("handshake answer %q, %v", answer, err)
	}
	return ws, id
}

func read(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func TestPingAfterWriteSilence(t *testing.T) {
	r := newRig(t)
	ws, _ := r.connect("u")
	r.clk.Advance(14 * time.Second)
	r.g.Sweep(r.clk.Now())
	// Not yet due: a broadcast sent now must be the next frame, not a ping.
	r.g.ApplyLocal("hub", &actions.Action{Action: actions.Broadcast, Target: "t", Arguments: []byte(`[1]`)})
	if got := read(t, ws); got != `{"type":1,"target":"t","arguments":[1]}`+"\x1e" {
		t.Fatalf("got %q, want the broadcast", got)
	}
	// That write reset the interval; 15 s after it a ping is due.
	r.clk.Advance(15 * time.Second)
	r.g.Sweep(r.clk.Now())
	if got := read(t, ws); got != `{"type":6}`+"\x1e" {
		t.Fatalf("got %q, want a ping", got)
	}
}

func TestClientTimeout(t *testing.T) {
	r := newRig(t)
	ws, _ := r.connect("u")
	live, _ := r.connect("v")

	// live keeps talking; ws stays silent.
	for i := 0; i < 3; i++ {
		r.clk.Advance(12 * time.Second)
		// An invocation is answered (no upstream: a completion error), and
		// the answer proves the gateway read the frame before the sweep.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := live.Write(ctx, websocket.MessageText, []byte(`{"type":1,"invocationId":"1","target":"x","arguments":[]}`+"\x1e")); err != nil {
			t.Fatal(err)
		}
		cancel()
		for !strings.Contains(read(t, live), `"type":3`) {
		}
		r.g.Sweep(r.clk.Now())
	}
	// 36 s of silence from ws: it was pinged, then closed with a Close
	// message that invites a reconnect.
	var frames []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	for {
		var b []byte
		_, b, err = ws.Read(ctx)
		if err != nil {
			break
		}
		frames = append(frames, string(b))
	}
	joined := strings.Join(frames, "")
	if !strings.Contains(joined, `{"type":7,"error":"no message from the client for 30s","allowReconnect":true}`) {
		t.Errorf("frames %q lack the timeout Close message", frames)
	}
	if s := websocket.CloseStatus(err); s != websocket.StatusNormalClosure {
		t.Errorf("close status %v, want 1000", s)
	}
	// The talking client is still connected and gets broadcasts.
	r.g.ApplyLocal("hub", &actions.Action{Action: actions.Broadcast, Target: "t"})
	for {
		got := read(t, live)
		if strings.HasPrefix(got, `{"type":1`) {
			break
		}
	}
}

func TestShutdownInvitesReconnect(t *testing.T) {
	r := newRig(t)
	ws, _ := r.connect("u")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- r.g.Shutdown(ctx)
	}()
	if got := read(t, ws); got != `{"type":7,"error":"server shutting down","allowReconnect":true}`+"\x1e" {
		t.Fatalf("got %q", got)
	}
	// Reading on lets the close handshake complete, as a real client does.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("read after Close message: %v, want close status 1001", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.g.Negotiate("hub", gateway.Identity{}); !errors.Is(err, gateway.ErrShuttingDown) {
		t.Errorf("negotiate after shutdown: %v", err)
	}
}

func TestSlowConsumerIsClosed(t *testing.T) {
	r := newRig(t)
	ws, _ := r.connect("u")
	_ = ws // never read: its queue fills
	big := []byte(`["` + strings.Repeat("x", 64<<10) + `"]`)
	deadline := time.Now().Add(10 * time.Second)
	for r.g.SlowConsumers() == 0 && time.Now().Before(deadline) {
		r.g.ApplyLocal("hub", &actions.Action{Action: actions.Broadcast, Target: "t", Arguments: big})
	}
	if r.g.SlowConsumers() != 1 {
		t.Fatalf("slow consumers = %d, want 1", r.g.SlowConsumers())
	}
}

// TestStuckWriteIsAborted: a client that reads nothing fills its socket
// until the gateway's write blocks; the sweep drops the socket once that
// write has taken longer than WriteTimeout, which ends the connection.
// The queue limit is far away, so only the write timeout can end it.
func TestStuckWriteIsAborted(t *testing.T) {
	r := newRigWith(t, gateway.Config{SweepInterval: 20 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxQueueBytes: 1 << 30})
	ws, _ := r.connect("u")
	big := []byte(`["` + strings.Repeat("x", 64<<10) + `"]`)
	deadline := time.Now().Add(waitFor)
	for i := 0; r.g.StuckWrites() == 0; i++ {
		if i == 2000 || time.Now().After(deadline) { // 128 MB, far past any socket buffer
			t.Fatalf("no write was aborted after %d messages of 64 KiB", i)
		}
		r.g.ApplyLocal("hub", &actions.Action{Action: actions.Broadcast, Target: "t", Arguments: big})
		if i > 300 {
			time.Sleep(5 * time.Millisecond) // the socket is full by now: wait for the sweep
		}
	}
	if n := r.g.SlowConsumers(); n != 0 {
		t.Fatalf("closed as a slow consumer (%d), not for its stuck write", n)
	}
	testutil.Eventually(t, waitFor, "the connection to end", func() bool { return r.served.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the client's socket stayed open")
			}
			break
		}
	}
}

// TestPendingNegotiationsAreBounded: negotiated connections waiting for
// their sockets are capped node-wide (anyone may negotiate on an anonymous
// hub, from as many addresses as they have). Past the cap Negotiate fails
// with ErrTooManyPending; a socket that opens, and a negotiation that
// expires unused, each make room again.
func TestPendingNegotiationsAreBounded(t *testing.T) {
	r := newRigWith(t, gateway.Config{NodeID: "n1", MaxPendingNegotiations: 3})
	for range 2 {
		if _, _, err := r.g.Negotiate("hub", gateway.Identity{}); err != nil {
			t.Fatal(err)
		}
	}
	ws, _ := r.connect("") // the third negotiation, then its socket
	defer ws.CloseNow()
	if _, _, err := r.g.Negotiate("hub", gateway.Identity{}); err != nil {
		t.Fatalf("third pending, with the opened one no longer waiting: %v", err)
	}
	if _, _, err := r.g.Negotiate("hub", gateway.Identity{}); !errors.Is(err, gateway.ErrTooManyPending) {
		t.Fatalf("fourth pending: %v, want ErrTooManyPending", err)
	}
	r.clk.Advance(31 * time.Second) // past NegotiateTTL
	r.g.Sweep(r.clk.Now())
	for i := range 3 {
		if _, _, err := r.g.Negotiate("hub", gateway.Identity{}); err != nil {
			t.Fatalf("negotiation %d after the others expired: %v", i, err)
		}
	}
	if _, _, err := r.g.Negotiate("hub", gateway.Identity{}); !errors.Is(err, gateway.ErrTooManyPending) {
		t.Fatalf("past the cap again: %v, want ErrTooManyPending", err)
	}
}
