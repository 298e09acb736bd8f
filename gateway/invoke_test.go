package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/upstream"
)

// waitFor bounds every wait on another goroutine: only against hangs.
const waitFor = 10 * time.Second

// withUpstream is newRigWith whose gateway sends its events through the real
// dispatcher to a real upstream on loopback (the SDK's handler, checking
// signatures), which runs fn. The upstream receives message events for the
// targets slow, echo and join, and disconnected events; its calls time out
// after a minute, far beyond the client timeout. fn must return once its
// context ends: the upstream's Close waits for its handlers.
func withUpstream(t *testing.T, cfg gateway.Config, fn upstream.Func) *rig {
	t.Helper()
	secret := upstream.NewSecret()
	srv := httptest.NewServer(upstream.Handler([]string{secret}, fn))
	t.Cleanup(srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	d, err := delivery.NewDispatcher(delivery.DispatcherConfig{Client: &http.Client{Transport: tr}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Errorf("close dispatcher: %v", err)
		}
	})
	f, err := delivery.ParseFilter([]string{"message:slow", "message:echo", "message:join", "disconnected"})
	if err != nil {
		t.Fatal(err)
	}
	d.SetTargets([]delivery.Target{{Hub: "hub", Name: "fn", URLTemplate: srv.URL + "/{event}", Filter: f,
		Timeout: time.Minute, Secrets: []string{secret}}})
	if cfg.NodeID == "" {
		cfg.NodeID = "n1"
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval, cfg.ClientTimeout = 15*time.Second, 30*time.Second
	}
	cfg.Webhooks = d
	cfg.Logger = slog.New(slog.DiscardHandler)
	return newRigWith(t, cfg)
}

// peer is a client socket read message by message: the gateway may put
// several messages in one frame.
type peer struct {
	t       *testing.T
	ws      *websocket.Conn
	id      string
	pending []string
}

func (r *rig) peer(user string) *peer {
	ws, id := r.connect(user)
	return &peer{t: r.t, ws: ws, id: id}
}

func (p *peer) send(msgs ...string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := p.ws.Write(ctx, websocket.MessageText, []byte(strings.Join(msgs, ""))); err != nil {
		p.t.Fatalf("write: %v", err)
	}
}

// invocation is a client Invocation; id "" makes it a send.
func invocationMsg(id, target string, args ...any) string {
	m := map[string]any{"type": 1, "target": target, "arguments": args}
	if args == nil {
		m["arguments"] = []any{}
	}
	if id != "" {
		m["invocationId"] = id
	}
	b, _ := json.Marshal(m)
	return string(b) + "\x1e"
}

const pingMsg = `{"type":6}` + "\x1e"

// message is what the tests read of a server message.
type message struct {
	Type           int             `json:"type"`
	InvocationID   string          `json:"invocationId"`
	Target         string          `json:"target"`
	Arguments      json.RawMessage `json:"arguments"`
	Result         json.RawMessage `json:"result"`
	Error          string          `json:"error"`
	AllowReconnect bool            `json:"allowReconnect"`
}

// next returns the next message that is not a ping; err is the read error
// once the socket is closed.
func (p *peer) next() (message, error) {
	p.t.Helper()
	for {
		for len(p.pending) > 0 {
			raw := p.pending[0]
			p.pending = p.pending[1:]
			var m message
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				p.t.Fatalf("message %q: %v", raw, err)
			}
			if m.Type != 6 {
				return m, nil
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		_, b, err := p.ws.Read(ctx)
		cancel()
		if err != nil {
			return message{}, err
		}
		for _, raw := range strings.Split(string(b), "\x1e") {
			if raw != "" {
				p.pending = append(p.pending, raw)
			}
		}
	}
}

func (p *peer) mustNext() message {
	p.t.Helper()
	m, err := p.next()
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	return m
}

// completion reads the next message and checks that it is the completion
// of id; it returns the result and the error text.
func (p *peer) completion(id string) (json.RawMessage, string) {
	p.t.Helper()
	m := p.mustNext()
	if m.Type != 3 || m.InvocationID != id {
		p.t.Fatalf("got %+v, want the completion of invocation %q", m, id)
	}
	return m.Result, m.Error
}

// result checks that the next message completes id with result want.
func (p *peer) result(id, want string) {
	p.t.Helper()
	res, errText := p.completion(id)
	if errText != "" || string(res) != want {
		p.t.Fatalf("invocation %s: result %s, error %q; want result %s", id, res, errText, want)
	}
}

// failed checks that the next message completes id with an error
// containing want.
func (p *peer) failed(id, want string) {
	p.t.Helper()
	res, errText := p.completion(id)
	if !strings.Contains(errText, want) {
		p.t.Fatalf("invocation %s: result %s, error %q; want an error containing %q", id, res, errText, want)
	}
}

// gate holds the upstream's calls of the slow target until opened (or
// until the call's context ends), telling which arrived and which ended
// by cancellation.
type gate struct {
	once      sync.Once
	open      chan struct{}
	arrived   chan string // first argument of each slow call, as it arrives
	cancelled chan string // the same, when its context ended first
}

func newGate() *gate {
	return &gate{open: make(chan struct{}), arrived: make(chan string, 64), cancelled: make(chan string, 64)}
}

// release opens the gate; tests also call it on cleanup, before the
// rig's, so that a failing test does not hang on held calls.
func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) hold(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
	var args []string
	if err := json.Unmarshal(ev.Arguments, &args); err != nil || len(args) == 0 {
		return nil, fmt.Errorf("slow takes one string argument, got %s", ev.Arguments)
	}
	g.arrived <- args[0]
	select {
	case <-g.open:
		return upstream.NewReply().WithResult("done " + args[0]), nil
	case <-ctx.Done():
		g.cancelled <- args[0]
		return nil, ctx.Err()
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out after %s waiting for %s", waitFor, what)
		panic("unreachable")
	}
}

// TestPingsReadWhileInvocationWaits: while an upstream takes longer than
// the client timeout, the gateway goes on reading the client's pings and
// messages, so the sweep keeps a client that talks and closes one that is
// silent, whatever their invocations wait on; the slow invocation then
// completes.
func TestPingsReadWhileInvocationWaits(t *testing.T) {
	g := newGate()
	r := withUpstream(t, gateway.Config{}, func(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
		return g.hold(ctx, ev)
	})
	t.Cleanup(g.release)
	live, silent := r.peer("u"), r.peer("v")
	live.send(invocationMsg("1", "slow", "live"))
	silent.send(invocationMsg("1", "slow", "silent"))
	for range 2 {
		recv(t, g.arrived, "the slow calls")
	}

	for i := range 3 {
		r.clk.Advance(12 * time.Second)
		// The ping is what keeps the client; the invocation of a target no
		// upstream handles is answered at once, which proves the ping
		// before it was read before the sweep.
		id := fmt.Sprint("probe", i)
		live.send(pingMsg, invocationMsg(id, "probe"))
		live.failed(id, `no upstream of hub "hub" handles "probe"`)
		r.g.Sweep(r.clk.Now())
	}
	// 36 s: the silent client timed out and its call was cancelled; the
	// live one is still waiting for its completion.
	m, err := silent.next()
	if err != nil || m.Type != 7 || !strings.Contains(m.Error, "no message from the client") {
		t.Fatalf("silent client got %+v, %v; want the timeout Close message", m, err)
	}
	if _, err := silent.next(); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("silent client's socket ended with %v, want close status 1000", err)
	}
	if got := recv(t, g.cancelled, "the silent client's call to be cancelled"); got != "silent" {
		t.Fatalf("cancelled call %q, want the silent client's", got)
	}
	g.release()
	live.result("1", `"done live"`)
}

// TestInflightLimitAndQueue: a connection's invocations wait on upstreams
// at most MaxInflightInvocations at a time, the next MaxQueuedInvocations
// queue, and one more is refused at once (an invoke with a completion
// error, a send dropped), counted; queued ones start in arrival order,
// and with one in flight they reach the upstream one after the other.
func TestInflightLimitAndQueue(t *testing.T) {
	for _, inflight := range []int{1, 2} {
		t.Run(fmt.Sprint("inflight=", inflight), func(t *testing.T) {
			g := newGate()
			r := withUpstream(t, gateway.Config{Limits: gateway.Limits{MaxInflightInvocations: inflight, MaxQueuedInvocations: 2}},
				func(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) { return g.hold(ctx, ev) })
			t.Cleanup(g.release)
			p := r.peer("u")
			accepted := inflight + 2
			for i := range accepted {
				p.send(invocationMsg(fmt.Sprint(i), "slow", fmt.Sprint("a", i)))
			}
			// Over the limit: the send is dropped, the invoke refused; the
			// refusal proves the send before it was read.
			p.send(invocationMsg("", "slow", "dropped"), invocationMsg("over", "slow", "refused"))
			p.failed("over", fmt.Sprintf("too many invocations at once: %d waiting on the upstream and 2 queued", inflight))
			if got, want := r.g.LimitStats(), (gateway.LimitStats{InvocationsQueueFull: 1, SendsQueueFull: 1}); got != want {
				t.Errorf("limit stats %+v, want %+v", got, want)
			}

			// Only the first ones reached the upstream; the slots are
			// taken until the upstream answers.
			var arrived []string
			for range inflight {
				arrived = append(arrived, recv(t, g.arrived, "the first calls"))
			}
			g.release()
			results := map[string]string{}
			for range accepted {
				m := p.mustNext()
				results[m.InvocationID] = string(m.Result)
			}
			for range accepted - inflight {
				arrived = append(arrived, recv(t, g.arrived, "the queued calls"))
			}
			for i := range accepted {
				if got, want := results[fmt.Sprint(i)], fmt.Sprintf(`"done a%d"`, i); got != want {
					t.Errorf("invocation %d: result %s, want %s", i, got, want)
				}
			}
			// Barrier: a call sent now arrives after anything admitted
			// before it, so the dropped send would show up first.
			p.send(invocationMsg("last", "slow", "last"))
			p.result("last", `"done last"`)
			arrived = append(arrived, recv(t, g.arrived, "the last call"))
			var want []string
			for i := range accepted {
				want = append(want, fmt.Sprint("a", i))
			}
			want = append(want, "last")
			if inflight == 1 && strings.Join(arrived, ",") != strings.Join(want, ",") {
				t.Errorf("calls reached the upstream in the order %v, want %v", arrived, want)
			}
			if inflight > 1 && (len(arrived) != len(want) || !sameSet(arrived[:inflight], want[:inflight]) || arrived[len(arrived)-1] != "last") {
				t.Errorf("calls reached the upstream as %v, want %v (the first %d in any order)", arrived, want, inflight)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// echo answers echo with its arguments and join with an addToGroup of its
// first argument, counting the echo calls.
func echo(calls *atomic.Int64) upstream.Func {
	return func(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
		var args []string
		_ = json.Unmarshal(ev.Arguments, &args)
		switch ev.Target {
		case "echo":
			calls.Add(1)
			return upstream.NewReply().WithResult(args), nil
		case "join":
			return upstream.NewReply().AddToGroup(args[0]).WithResult(args[0]), nil
		}
		return nil, nil
	}
}

// TestInvocationRateLimit: past InvocationRate (a bucket of InvocationBurst)
// an invoke gets a completion error and a send is dropped, both counted and
// neither reaching the upstream; the bucket refills with time; a client
// whose refusals alone pass the rate is closed without an invitation to
// reconnect.
func TestInvocationRateLimit(t *testing.T) {
	var calls atomic.Int64
	r := withUpstream(t, gateway.Config{Limits: gateway.Limits{InvocationRate: 1, InvocationBurst: 3}}, echo(&calls))
	p := r.peer("u")
	for i := range 3 {
		id := fmt.Sprint(i)
		p.send(invocationMsg(id, "echo", id))
		p.result(id, fmt.Sprintf(`[%q]`, id))
	}
	p.send(invocationMsg("3", "echo", "3"), invocationMsg("", "echo", "dropped"), invocationMsg("5", "echo", "5"))
	p.failed("3", "rate limit: this connection may make at most 1 invocations per second (bursts of 3)")
	p.failed("5", "rate limit")
	if got, want := r.g.LimitStats(), (gateway.LimitStats{InvocationsRateLimited: 2, SendsRateLimited: 1}); got != want {
		t.Errorf("limit stats %+v, want %+v", got, want)
	}

	r.clk.Advance(time.Second)
	p.send(invocationMsg("6", "echo", "6"))
	p.result("6", `["6"]`)
	if got := calls.Load(); got != 4 {
		t.Errorf("the upstream got %d echo calls, want the 4 admitted", got)
	}

	// Three refusals used the bucket of strikes and a second refilled one;
	// the next refusal closes the connection.
	p.send(invocationMsg("7", "echo", "7"), invocationMsg("8", "echo", "8"), invocationMsg("9", "echo", "9"))
	p.failed("7", "rate limit")
	m, err := p.next()
	if err != nil || m.Type != 7 || m.AllowReconnect || !strings.Contains(m.Error, "closed for sending far more than the 1 invocations per second") {
		t.Fatalf("got %+v, %v; want a Close message without allowReconnect", m, err)
	}
	if _, err := p.next(); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("socket ended with %v, want close status 1008", err)
	}
	if got := r.g.LimitStats().RateLimitCloses; got != 1 {
		t.Errorf("rate limit closes: %d, want 1", got)
	}
}

// TestGroupsPerConnectionLimit: a connection joins at most
// MaxGroupsPerConnection groups; a join beyond fails with a clear error, in
// the completion of the invocation whose reply asked for it and from
// Apply, and is counted; joining a group it is in still works.
func TestGroupsPerConnectionLimit(t *testing.T) {
	var calls atomic.Int64
	r := withUpstream(t, gateway.Config{Limits: gateway.Limits{MaxGroupsPerConnection: 2}}, echo(&calls))
	p := r.peer("u")
	p.send(invocationMsg("1", "join", "g1"), invocationMsg("2", "join", "g2"), invocationMsg("3", "join", "g3"), invocationMsg("4", "join", "g1"))
	p.result("1", `"g1"`)
	p.result("2", `"g2"`)
	p.failed("3", fmt.Sprintf(`actions[0] addToGroup: connection %q is already in 2 groups, the most one connection may join; remove it from one first`, p.id))
	p.result("4", `"g1"`)

	err := r.g.Apply(context.Background(), "hub", &actions.Action{Action: actions.AddToGroup, Group: "g4", ConnectionID: p.id})
	if !errors.Is(err, gateway.ErrTooManyGroups) || !errors.Is(err, actions.ErrInvalid) {
		t.Errorf("Apply addToGroup past the limit: %v; want ErrTooManyGroups, which is also actions.ErrInvalid", err)
	}
	if got := r.g.LimitStats().GroupJoinsRefused; got != 2 {
		t.Errorf("group joins refused: %d, want 2", got)
	}
	// Not in g3 or g4: the barrier sent after them is the next message.
	sendTo(t, r.g, actions.SendToGroup, "g3", "to g3")
	sendTo(t, r.g, actions.SendToGroup, "g4", "to g4")
	sendTo(t, r.g, actions.SendToGroup, "g1", "to g1")
	if m := p.mustNext(); string(m.Arguments) != `["to g1"]` {
		t.Fatalf("got %+v, want the send to g1 only", m)
	}
}

// TestCloseCancelsInvocations: a client's Close is read while its
// invocation waits on the upstream; the webhook call is cancelled, the
// queued invocation is never sent, and the disconnected event follows.
func TestCloseCancelsInvocations(t *testing.T) {
	g := newGate()
	var mu sync.Mutex
	var seen []string // the upstream's calls, in order
	disconnected := make(chan struct{})
	r := withUpstream(t, gateway.Config{}, func(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
		mu.Lock()
		seen = append(seen, ev.Event+" "+string(ev.Arguments))
		mu.Unlock()
		if ev.Event == upstream.EventDisconnected {
			close(disconnected)
			return nil, nil
		}
		return g.hold(ctx, ev)
	})
	t.Cleanup(g.release)
	p := r.peer("u")
	p.send(invocationMsg("1", "slow", "first"), invocationMsg("2", "slow", "queued"))
	recv(t, g.arrived, "the first call")
	p.send(`{"type":7}` + "\x1e")
	if got := recv(t, g.cancelled, "the call to be cancelled"); got != "first" {
		t.Fatalf("cancelled %q, want the first call", got)
	}
	recv(t, disconnected, "the disconnected event")
	mu.Lock()
	defer mu.Unlock()
	if want := []string{`message ["first"]`, "disconnected "}; strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("the upstream got %q, want %q", seen, want)
	}
	if got := r.g.LimitStats().InvocationsAbandoned; got != 2 {
		t.Errorf("invocations abandoned: %d, want 2 (one running, one queued)", got)
	}
}

// gatedGroups is the gateway's in-memory user-group store whose
// AddUserToGroup waits until the test opens it.
type gatedGroups struct {
	gateway.UserGroupStore
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
	opened  atomic.Bool
}

func (s *gatedGroups) release() {
	s.once.Do(func() {
		s.opened.Store(true)
		close(s.open)
	})
}

func (s *gatedGroups) AddUserToGroup(ctx context.Context, hub, user, group string, expires time.Time) error {
	s.entered <- struct{}{}
	<-s.open
	return s.UserGroupStore.AddUserToGroup(ctx, hub, user, group, expires)
}

// TestServeWaitsForInvocations: Serve does not return while a goroutine
// running one of its invocations is still at work (here the actions of a
// reply that arrived just before the client left), and the disconnected
// event goes out only after it.
func TestServeWaitsForInvocations(t *testing.T) {
	store := &gatedGroups{entered: make(chan struct{}, 1), open: make(chan struct{})}
	store.UserGroupStore = gateway.MemoryUserGroups(time.Now)
	disconnected := make(chan bool, 1) // whether the store was opened by then
	r := withUpstream(t, gateway.Config{UserGroups: store}, func(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
		if ev.Event == upstream.EventDisconnected {
			disconnected <- store.opened.Load()
			return nil, nil
		}
		return upstream.NewReply().AddUserToGroup("u", "g", 0).WithResult("joined"), nil
	})
	t.Cleanup(store.release)
	p := r.peer("u")
	p.send(invocationMsg("1", "join"))
	recv(t, store.entered, "the reply's addUserToGroup")
	p.ws.CloseNow()

	// Serve is parked until its invocation ends; it must not have returned.
	testutil.Eventually(t, waitFor, "Serve to wait for its invocation, or to return", func() bool {
		return r.served.Load() > 0 || stackHas("gateway.(*Conn).awaitInvocations")
	})
	if r.served.Load() > 0 {
		t.Fatal("Serve returned while its invocation's actions were still running")
	}
	store.release()
	if opened := recv(t, disconnected, "the disconnected event"); !opened {
		t.Error("the disconnected event went out before the invocation ended")
	}
	testutil.Eventually(t, waitFor, "Serve to return", func() bool { return r.served.Load() == 1 })
}

// stackHas reports whether a goroutine's stack shows fn.
func stackHas(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}
