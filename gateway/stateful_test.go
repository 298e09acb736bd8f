package gateway_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/upstream"
)

// statefulPeer is a client with stateful reconnect, speaking the wire as
// the stock client does (shared/reference/signalr-client.md §6): a version
// 2 handshake, then, on a new socket with the same token, no handshake but
// a Sequence and the replay of what the server did not acknowledge.
type statefulPeer struct {
	*peer
	r     *rig
	token string
}

func (r *rig) statefulPeer(user string) *statefulPeer {
	r.t.Helper()
	_, tok, err := r.g.Negotiate("hub", gateway.Identity{UserID: user})
	if err != nil {
		r.t.Fatal(err)
	}
	p := &statefulPeer{r: r, token: tok}
	p.peer = &peer{t: r.t, ws: p.dial()}
	p.send(`{"protocol":"json","version":2}` + "\x1e")
	if got := read(r.t, p.ws); got != "{}\x1e" {
		r.t.Fatalf("handshake answer %q", got)
	}
	return p
}

func (p *statefulPeer) dial() *websocket.Conn {
	p.r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.r.srv.URL, "http")+"/?id="+p.token, nil)
	if err != nil {
		p.r.t.Fatalf("dial: %v", err)
	}
	p.r.t.Cleanup(func() { ws.CloseNow() })
	return ws
}

// drop breaks the socket without a Close message, as a network drop does.
func (p *statefulPeer) drop() { p.ws.CloseNow() }

// reconnect opens a new socket with the same token and sends the client's
// Sequence and replay.
func (p *statefulPeer) reconnect(firstUnacked int, replay ...string) {
	p.ws = p.dial()
	p.pending = nil
	p.send(append([]string{`{"type":9,"sequenceId":` + itoa(firstUnacked) + "}\x1e"}, replay...)...)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// rawNext is the next message, pings skipped, as raw JSON with its type.
func (p *statefulPeer) rawNext() (int, string) {
	p.t.Helper()
	for {
		for len(p.pending) > 0 {
			raw := p.pending[0]
			p.pending = p.pending[1:]
			var m struct {
				Type int `json:"type"`
			}
			_ = json.Unmarshal([]byte(raw), &m)
			if m.Type != 6 {
				return m.Type, raw
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		_, b, err := p.ws.Read(ctx)
		cancel()
		if err != nil {
			p.t.Fatalf("read: %v", err)
		}
		for _, raw := range strings.Split(string(b), "\x1e") {
			if raw != "" {
				p.pending = append(p.pending, raw)
			}
		}
	}
}

// events records the upstream's disconnected events and counts echo calls.
type events struct {
	mu           sync.Mutex
	disconnected []string
	echoes       atomic.Int64
}

func (e *events) fn(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
	switch {
	case ev.Event == upstream.EventDisconnected:
		e.mu.Lock()
		e.disconnected = append(e.disconnected, ev.Reason)
		e.mu.Unlock()
	case ev.Target == "echo":
		e.echoes.Add(1)
		return upstream.NewReply().WithResult(json.RawMessage(ev.Arguments)), nil
	}
	return nil, nil
}

func (e *events) gone() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.disconnected...)
}

func broadcast(r *rig, target string) {
	r.t.Helper()
	if err := r.g.ApplyLocal("hub", &actions.Action{Action: actions.Broadcast, Target: target, Arguments: json.RawMessage(`[]`)}); err != nil {
		r.t.Fatal(err)
	}
}

// TestStatefulReconnectLosesNothing: messages the client did not
// acknowledge, and those sent while it was away, are replayed on its new
// socket after a Sequence naming the first; the client's own replay of an
// invocation already processed does not reach the upstream twice; and no
// disconnected event goes out.
func TestStatefulReconnectLosesNothing(t *testing.T) {
	ev := &events{}
	r := withUpstream(t, gateway.Config{}, ev.fn)
	p := r.statefulPeer("ann")

	broadcast(r, "a") // sequence 1
	broadcast(r, "b") // 2
	for _, want := range []string{`"a"`, `"b"`} {
		if _, raw := p.rawNext(); !strings.Contains(raw, `"target":`+want) {
			t.Fatalf("got %s, want the broadcast %s", raw, want)
		}
	}
	p.send(`{"type":8,"sequenceId":1}` + "\x1e") // a acknowledged, b not
	// The client invokes (its sequence 1) and the socket breaks before the
	// completion is acknowledged.
	p.send(invocationMsg("1", "echo", "x"))
	p.result("1", `["x"]`) // server sequence 3
	p.drop()
	broadcast(r, "c") // sent while away: sequence 4

	// The client resumes: it never got an Ack from the server, so it
	// replays its invocation from its sequence 1.
	p.reconnect(1, invocationMsg("1", "echo", "x"))
	typ, raw := p.rawNext()
	if typ != 9 || !strings.Contains(raw, `"sequenceId":2`) {
		t.Fatalf("first message after the resume %s, want Sequence 2 (the oldest unacknowledged)", raw)
	}
	var got []string
	for range 3 {
		_, raw := p.rawNext()
		got = append(got, raw)
	}
	if !strings.Contains(got[0], `"target":"b"`) || !strings.Contains(got[1], `"invocationId":"1"`) || !strings.Contains(got[2], `"target":"c"`) {
		t.Fatalf("replayed %q, want b, the completion of 1, c", got)
	}
	// A barrier: a new invocation is answered, and the replayed one never
	// reached the upstream again.
	p.send(invocationMsg("2", "echo", "y"))
	p.result("2", `["y"]`)
	if n := ev.echoes.Load(); n != 2 {
		t.Errorf("upstream saw %d echo calls, want 2 (the replayed one dropped)", n)
	}
	if gone := ev.gone(); len(gone) != 0 {
		t.Errorf("disconnected events %q during a resume, want none", gone)
	}
}

// TestStatefulReconnectWindow: a client that does not come back within
// StatefulReconnectWindow is disconnected, with a reason saying so, and
// its token no longer opens a socket.
func TestStatefulReconnectWindow(t *testing.T) {
	ev := &events{}
	r := withUpstream(t, gateway.Config{StatefulReconnectWindow: 10 * time.Second}, ev.fn)
	p := r.statefulPeer("bob")
	broadcast(r, "a")
	p.rawNext()
	p.drop()
	// The sweep finds it detached only once the socket's end was read: wait
	// for it, the clock does not move meanwhile.
	for deadline := time.Now().Add(waitFor); ; {
		r.clk.Advance(time.Second)
		r.g.Sweep(r.clk.Now())
		if len(ev.gone()) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	gone := ev.gone()
	if len(gone) != 1 || !strings.Contains(gone[0], "not resumed within 10s") {
		t.Fatalf("disconnected events %q, want one saying the client did not resume", gone)
	}
	if _, err := r.g.Check(p.token); err == nil {
		t.Error("the token of a connection that ended still opens a socket")
	}
}

// TestStatefulReconnectBufferBounded: a client that acknowledges nothing
// is closed once StatefulReconnectBuffer bytes wait for it, with the reason.
func TestStatefulReconnectBufferBounded(t *testing.T) {
	ev := &events{}
	r := withUpstream(t, gateway.Config{StatefulReconnectBuffer: 200}, ev.fn)
	p := r.statefulPeer("cy")
	for range 10 {
		broadcast(r, "something-of-size")
	}
	for {
		typ, raw := p.rawNext()
		if typ == 7 {
			if !strings.Contains(raw, gateway.ReasonResumeBufferFull) {
				t.Fatalf("closed with %s, want %q", raw, gateway.ReasonResumeBufferFull)
			}
			return
		}
	}
}
