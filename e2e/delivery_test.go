package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/internal/testutil"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// note is a notification an upstream received.
type note struct {
	id, conn, event string
}

// flakyUpstream is a real upstream on a fixed loopback port that can be
// stopped and started again on the same port. It checks every signature and
// records the notifications it acknowledged.
type flakyUpstream struct {
	t      *testing.T
	addr   string
	secret string

	mu    sync.Mutex // guards the fields below
	srv   *http.Server
	done  chan struct{}
	notes []note
}

func newFlakyUpstream(t *testing.T) *flakyUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &flakyUpstream{t: t, addr: ln.Addr().String()}
	u.serve(ln)
	t.Cleanup(u.stop)
	return u
}

func (u *flakyUpstream) url() string { return "http://" + u.addr + "/{event}" }

func (u *flakyUpstream) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(u.handle)}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	u.mu.Lock()
	u.srv, u.done = srv, done
	u.mu.Unlock()
}

func (u *flakyUpstream) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	secret := u.secret
	u.mu.Unlock()
	if !validSignature(secret, r.Header, body) {
		u.t.Errorf("bad signature on %s", r.URL)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev upstream.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		u.t.Errorf("bad body %s", body)
	}
	u.mu.Lock()
	u.notes = append(u.notes, note{id: r.Header.Get("webhook-id"), conn: ev.ConnectionID, event: ev.Event})
	u.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// stop closes the server and its connections: the port refuses.
func (u *flakyUpstream) stop() {
	u.mu.Lock()
	srv, done := u.srv, u.done
	u.srv = nil
	u.mu.Unlock()
	if srv != nil {
		srv.Close()
		<-done
	}
}

// start serves again on the same port.
func (u *flakyUpstream) start() {
	ln, err := net.Listen("tcp", u.addr)
	if err != nil {
		u.t.Fatalf("listen again on %s: %v", u.addr, err)
	}
	u.serve(ln)
}

func (u *flakyUpstream) all() []note {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]note(nil), u.notes...)
}

// perConn de-duplicates notes by id and groups them by connection, in
// arrival order.
func perConn(notes []note) map[string][]string {
	seen := map[string]bool{}
	out := map[string][]string{}
	for _, n := range notes {
		if seen[n.id] {
			continue
		}
		seen[n.id] = true
		out[n.conn] = append(out[n.conn], n.event)
	}
	return out
}

// fastDelivery retries quickly so outages in tests last milliseconds.
func fastDelivery(cfg *node.Config) {
	cfg.Delivery = delivery.DispatcherConfig{MinRetry: 10 * time.Millisecond, MaxRetry: 100 * time.Millisecond,
		Breaker: delivery.BreakerConfig{CoolDown: 100 * time.Millisecond}}
}

type adminStatus struct {
	Outbox    delivery.OutboxStatus     `json:"outbox"`
	Upstreams []delivery.UpstreamStatus `json:"upstreams"`
}

func (g *gw) status() adminStatus {
	var st adminStatus
	if err := json.Unmarshal(g.admin(http.MethodGet, "/admin/status", nil, http.StatusOK), &st); err != nil {
		g.t.Fatal(err)
	}
	return st
}

// TestUpstreamOutage: the upstream goes away and comes back on the same port
// while clients come and go; afterwards every connected and disconnected
// event has arrived, in order per connection, none missing.
func TestUpstreamOutage(t *testing.T) {
	g := startNode(t, fastDelivery)
	g.createHub("chat", true)
	up := newFlakyUpstream(t)
	up.secret = g.addUpstream("chat", "notes", up.url(), "connected", "disconnected")

	var ids []string
	dial := func() *client.Conn {
		c := g.dial("chat", "", nil)
		ids = append(ids, c.ConnectionID())
		return c
	}
	before := dial()
	gone := dial()
	gone.Close()

	up.stop()
	during := []*client.Conn{dial(), dial(), dial()}
	during[0].Close()
	during[1].Close()
	before.Close()
	testutil.Eventually(t, waitFor, "events queued during the outage", func() bool { return g.status().Outbox.Depth >= 5 })

	up.start()
	during[2].Close()
	testutil.Eventually(t, waitFor, "outbox drained", func() bool {
		st := g.status()
		return st.Outbox.Depth == 0 && len(perConn(up.all())) == len(ids)
	})
	got := perConn(up.all())
	for _, id := range ids {
		if want := []string{"connected", "disconnected"}; !slices.Equal(got[id], want) {
			t.Errorf("connection %s: got %v, want %v", id, got[id], want)
		}
	}
	if st := g.status(); st.Outbox.Dropped != 0 || st.Outbox.Expired != 0 {
		t.Errorf("outbox %+v: nothing may be dropped", st.Outbox)
	}
}

// TestBreakerFailsFastThroughGateway: with the upstream down, invocations
// fail at once with the circuit-open error once the breaker opened, the
// status shows it, and the log tells why.
func TestBreakerFailsFastThroughGateway(t *testing.T) {
	g := startNode(t, fastDelivery, func(cfg *node.Config) { cfg.Delivery.Breaker.CoolDown = time.Hour })
	g.createHub("chat", true)
	var hits sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := hits.LoadOrStore("n", new(int))
		*n.(*int)++
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	g.addUpstream("chat", "fn", srv.URL, "message:*")
	c := g.dial("chat", "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var ie *client.InvocationError
	for range 5 {
		if _, err := c.Invoke(ctx, "work"); !errors.As(err, &ie) || !strings.Contains(ie.Message, "answered 500") {
			t.Fatalf("err = %v, want the 500", err)
		}
	}
	_, err := c.Invoke(ctx, "work")
	if !errors.As(err, &ie) || ie.Message != `upstream "fn" circuit is open after 5 consecutive failures; retrying in 1h0m0s` {
		t.Fatalf("err = %v, want the circuit-open completion", err)
	}
	if n, _ := hits.Load("n"); *n.(*int) != 5 {
		t.Errorf("upstream got %d requests, want 5", *n.(*int))
	}
	if st := g.status(); len(st.Upstreams) != 1 || st.Upstreams[0].Breaker.State != delivery.BreakerOpen {
		t.Errorf("status upstreams = %+v, want the breaker open", st.Upstreams)
	}
	var log []delivery.Delivery
	if err := json.Unmarshal(g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/fn/log", nil, http.StatusOK), &log); err != nil {
		t.Fatal(err)
	}
	if len(log) != 6 || !strings.Contains(log[0].Error, "circuit is open") || log[1].Status != 500 || log[1].ConnectionID != c.ConnectionID() {
		t.Errorf("log = %+v", log)
	}
	g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/nope/log", nil, http.StatusNotFound)
}

// TestSlowUpstreamIsolated: a caller of a hung upstream gets a timeout
// completion; meanwhile another hub's healthy upstream answers as usual.
func TestSlowUpstreamIsolated(t *testing.T) {
	g := startNode(t)
	g.createHub("slow", true)
	g.createHub("fast", true)
	arrived := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the gateway hanging up
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done() // hangs until the gateway gives up
	}))
	t.Cleanup(slow.Close)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"result":"ok"}`)
	}))
	t.Cleanup(fast.Close)
	g.admin(http.MethodPost, "/admin/hubs/slow/upstreams", map[string]any{"name": "s", "urlTemplate": slow.URL,
		"events": []string{"message:*"}, "timeout": "1s", "skipValidation": true}, http.StatusCreated)
	g.addUpstream("fast", "f", fast.URL)
	a, b := g.dial("slow", "", nil), g.dial("fast", "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	slowErr := make(chan error, 1)
	go func() { _, err := a.Invoke(ctx, "hang"); slowErr <- err }()
	<-arrived
	// The slow call is in flight: the other hub is served meanwhile.
	if res, err := b.Invoke(ctx, "quick"); err != nil || string(res) != `"ok"` {
		t.Fatalf("fast hub: %s %v", res, err)
	}
	var ie *client.InvocationError
	if err := <-slowErr; !errors.As(err, &ie) || ie.Message != `upstream "s" timed out after 1s` {
		t.Fatalf("slow call: %v, want the timeout completion", err)
	}
}

// TestClientLeavesDuringSlowInvocation: a client that disconnects while
// its invocation waits on a slow handler is let go at once: the gateway
// ends the webhook call (the handler sees its request cancelled) and sends
// the disconnected event, without waiting out the upstream's minute.
func TestClientLeavesDuringSlowInvocation(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", true)
	arrived, cancelled := make(chan struct{}, 1), make(chan struct{}, 1)
	disconnected := make(chan string, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the gateway hanging up
		switch r.Header.Get("ce-type") {
		case "switchboard.message":
			arrived <- struct{}{}
			select {
			case <-r.Context().Done():
				cancelled <- struct{}{}
			case <-release:
			}
		case "switchboard.disconnected":
			disconnected <- r.Header.Get("ce-connectionid")
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: frees a handler still waiting
	g.admin(http.MethodPost, "/admin/hubs/chat/upstreams", map[string]any{"name": "fn", "urlTemplate": srv.URL,
		"events": []string{"message:*", "disconnected"}, "timeout": "1m", "skipValidation": true}, http.StatusCreated)
	c := g.dial("chat", "", nil)
	go func() { _, _ = c.Invoke(context.Background(), "hang") }()
	select {
	case <-arrived:
	case <-time.After(waitFor):
		t.Fatal("the invocation never reached the handler")
	}
	id := c.ConnectionID()
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(waitFor):
		t.Fatalf("the handler's call is not cancelled within %s of the client leaving (the upstream's timeout is 1m)", waitFor)
	}
	select {
	case got := <-disconnected:
		if got != id {
			t.Errorf("disconnected event for %q, want %q", got, id)
		}
	case <-time.After(waitFor):
		t.Fatalf("no disconnected event within %s of the client leaving (the upstream's timeout is 1m)", waitFor)
	}
}

// TestGoneDisablesUpstream: 410 disables the upstream in the store and the
// status; a PUT enables it again and the waiting events flow.
func TestGoneDisablesUpstream(t *testing.T) {
	g := startNode(t, fastDelivery)
	g.createHub("chat", true)
	var mu sync.Mutex
	gone := true
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if gone {
			w.WriteHeader(http.StatusGone)
			return
		}
		got = append(got, r.Header.Get("ce-type"))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	g.addUpstream("chat", "fn", srv.URL, "connected", "disconnected")
	c := g.dial("chat", "", nil)
	testutil.Eventually(t, waitFor, "upstream disabled", func() bool {
		var u struct {
			Disabled       bool   `json:"disabled"`
			DisabledReason string `json:"disabledReason"`
		}
		_ = json.Unmarshal(g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/fn", nil, http.StatusOK), &u)
		return u.Disabled && strings.Contains(u.DisabledReason, "410 Gone")
	})
	c.Close()
	testutil.Eventually(t, waitFor, "both events waiting", func() bool {
		st := g.status()
		return len(st.Upstreams) == 1 && st.Upstreams[0].Disabled && st.Upstreams[0].Outbox == 2
	})
	mu.Lock()
	gone = false
	mu.Unlock()
	g.admin(http.MethodPut, "/admin/hubs/chat/upstreams/fn", map[string]any{"urlTemplate": srv.URL,
		"events": []string{"connected", "disconnected"}, "skipValidation": true}, http.StatusOK)
	testutil.Eventually(t, waitFor, "delivered after enabling", func() bool { return g.status().Outbox.Depth == 0 })
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"switchboard.connected", "switchboard.disconnected"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

// TestRegistrationCheck: an upstream is saved only when its receiver agrees
// to get this gateway's events, unless the admin skips the check.
func TestRegistrationCheck(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", true)
	sdk := httptest.NewServer(upstream.Handler([]string{upstream.NewSecret()}, func(context.Context, *upstream.Event) (*upstream.Reply, error) {
		return nil, nil
	}))
	t.Cleanup(sdk.Close)
	var origin sync.Map
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin.Store("o", r.Header.Get("WebHook-Request-Origin"))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(bare.Close)
	closed := "http://" + testutil.FreeAddr(t)
	tests := []struct {
		name string
		body map[string]any
		want int
		msg  string
	}{
		{"SDK handler answers", map[string]any{"name": "sdk", "urlTemplate": sdk.URL + "/{event}"}, 201, ""},
		{"no answer refused", map[string]any{"name": "bare", "urlTemplate": bare.URL}, 400,
			"was answered 204 No Content with no WebHook-Allowed-Origin header"},
		{"unreachable refused", map[string]any{"name": "gone", "urlTemplate": closed}, 400, "connection refused"},
		{"skipped on request", map[string]any{"name": "bare2", "urlTemplate": bare.URL, "skipValidation": true}, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, http.MethodPost, g.url+"/admin/hubs/chat/upstreams", g.node.AdminKey(), tt.body)
			if status != tt.want || !strings.Contains(string(body), tt.msg) {
				t.Errorf("got %d %s, want %d containing %q", status, body, tt.want, tt.msg)
			}
		})
	}
	if o, _ := origin.Load("o"); o != "localhost" {
		t.Errorf("WebHook-Request-Origin = %v, want the public URL's host", o)
	}
}

// BenchmarkMessageLatency compares a client invocation through the gateway
// (WebSocket → signed webhook → reply → Completion) with a plain POST to the
// same upstream, which answers at once. It reports p50 and p99 of each.
func BenchmarkMessageLatency(b *testing.B) {
	t := &testing.T{}
	g := startNodeWith(t, node.Config{Listen: "127.0.0.1:0", DBPath: b.TempDir() + "/sb.db",
		Logger: slog.New(slog.DiscardHandler)})
	defer g.close()
	g.createHub("chat", true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"result":1}`)
	}))
	defer srv.Close()
	g.addUpstream("chat", "fn", srv.URL, "message:*")
	c, err := g.tryDial("chat", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	body := `{"hub":"chat","connectionId":"x","userId":null,"event":"message","invocationId":"1","target":"echo","arguments":[1]}`
	var via, direct []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := c.Invoke(ctx, "echo", 1); err != nil {
			b.Fatal(err)
		}
		via = append(via, time.Since(start))
		start = time.Now()
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		direct = append(direct, time.Since(start))
	}
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[int(float64(len(d)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(via, 0.5), "gw-p50-ms")
	b.ReportMetric(pct(via, 0.99), "gw-p99-ms")
	b.ReportMetric(pct(direct, 0.5), "direct-p50-ms")
	b.ReportMetric(pct(direct, 0.99), "direct-p99-ms")
}
