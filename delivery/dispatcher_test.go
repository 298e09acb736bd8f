package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/upstream"
)

// The gateway tells clients a delivery error's ClientMessage.
var _ gateway.ClientError = (*deliveryError)(nil)

// waitFor bounds every wait on another goroutine.
const waitFor = 10 * time.Second

// testSecret signs the test upstreams' webhooks.
var testSecret = upstream.NewSecret()

// hit is one request a hook received.
type hit struct {
	id  string
	ev  upstream.Event
	at  time.Time
	hdr http.Header
}

// hook is a real upstream on loopback that records what it receives and
// answers with whatever respond says.
type hook struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex // guards the fields below
	hits     []hit
	urlPaths []string // every request's path, as the server decoded it
	respond  func(n int, h hit) (status int, header http.Header, body string)
}

func newHook(t *testing.T) *hook {
	h := &hook{t: t}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev upstream.Event
	_ = json.Unmarshal(body, &ev)
	x := hit{id: r.Header.Get(upstream.HeaderID), ev: ev, at: time.Now(), hdr: r.Header.Clone()}
	if r.Header.Get("ce-id") != x.id || x.id == "" {
		h.t.Errorf("ce-id %q differs from webhook-id %q", r.Header.Get("ce-id"), x.id)
	}
	h.mu.Lock()
	h.hits = append(h.hits, x)
	h.urlPaths = append(h.urlPaths, r.URL.Path)
	n, respond := len(h.hits), h.respond
	h.mu.Unlock()
	if respond == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	status, header, out := respond(n, x)
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, out)
}

func (h *hook) setRespond(fn func(n int, x hit) (int, http.Header, string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.respond = fn
}

func (h *hook) paths() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.urlPaths...)
}

func (h *hook) all() []hit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hit(nil), h.hits...)
}

// waitHits waits until at least n requests arrived.
func (h *hook) waitHits(n int) []hit {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		if got := h.all(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("got %d requests, want %d", len(h.all()), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *hook) target(hub, name string) Target {
	return Target{Hub: hub, Name: name, URLTemplate: h.srv.URL + "/{event}", Secrets: []string{testSecret}, Timeout: 2 * time.Second}
}

func startDispatcher(t *testing.T, cfg DispatcherConfig) *Dispatcher {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	d, err := NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d
}

func message(conn, target string) *upstream.Event {
	id := "1"
	return &upstream.Event{Hub: "chat", ConnectionID: conn, Event: upstream.EventMessage, Target: target, InvocationID: &id, Arguments: json.RawMessage(`[]`)}
}

func TestCallBreakerFailsFastAndRecovers(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	h.setRespond(func(int, hit) (int, http.Header, string) { return 500, nil, "down" })
	clk := testutil.NewClock(time.Now())
	d := startDispatcher(t, DispatcherConfig{Now: clk.Now, Breaker: BreakerConfig{ConsecutiveFailures: 3, CoolDown: 30 * time.Second}})
	d.SetTargets([]Target{h.target("chat", "fn")})
	ctx := context.Background()

	for i := range 3 {
		if _, err := d.Call(ctx, message("c1", "send")); err == nil || !strings.Contains(err.Error(), "answered 500") {
			t.Fatalf("call %d: err = %v, want the 500", i, err)
		}
	}
	// Open: refused without a request.
	_, err := d.Call(ctx, message("c1", "send"))
	if !errors.Is(err, ErrCircuitOpen) || err.Error() != `upstream "fn" circuit is open after 3 consecutive failures; retrying in 30s` {
		t.Fatalf("err = %v, want the circuit-open error", err)
	}
	if n := len(h.all()); n != 3 {
		t.Fatalf("upstream got %d requests, want 3: an open breaker must not send", n)
	}
	if st := d.Status().Upstreams[0].Breaker; st.State != BreakerOpen {
		t.Errorf("status breaker = %+v, want open", st)
	}

	// The upstream recovers; after the cool-down the probe closes the breaker.
	h.setRespond(nil)
	clk.Advance(30 * time.Second)
	if _, err := d.Call(ctx, message("c1", "send")); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if _, err := d.Call(ctx, message("c1", "send")); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if st := d.Status().Upstreams[0].Breaker; st.State != BreakerClosed {
		t.Errorf("status breaker = %+v, want closed", st)
	}
	log, _ := d.DeliveryLog("chat", "fn")
	if len(log) != 6 || !strings.Contains(log[2].Error, "circuit is open") || log[0].Status != 204 {
		t.Errorf("delivery log = %+v, want 6 entries with the refusal", log)
	}
}

// TestCallNotRepeatedOnceSent: a request that may have reached the handler
// is never sent twice; one that could not connect is tried once more.
func TestCallNotRepeatedOnceSent(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for handlers
	h.setRespond(func(_ int, x hit) (int, http.Header, string) {
		if x.ev.Target == "slow" {
			<-release
		}
		return 204, nil, ""
	})
	reset := newRawServer(t, func(conn net.Conn) { // reads the request, then hangs up
		buf := make([]byte, 4096)
		_, _ = conn.Read(buf)
		conn.Close()
	})
	d := startDispatcher(t, DispatcherConfig{Breaker: BreakerConfig{ConsecutiveFailures: 100}})
	slow := h.target("chat", "fn")
	// Long enough for the request to reach the handler on a loaded machine:
	// the test is about what happens once it may have.
	slow.Timeout = 2 * time.Second
	d.SetTargets([]Target{slow, {Hub: "reset", Name: "rst", URLTemplate: reset.url, Secrets: []string{testSecret}}})

	if _, err := d.Call(context.Background(), message("c1", "slow")); err == nil || err.Error() != `upstream "fn" timed out after 2s` {
		t.Fatalf("err = %v, want the timeout", err)
	}
	if n := len(h.all()); n != 1 {
		t.Errorf("slow upstream got %d requests, want 1", n)
	}
	ev := message("c1", "x")
	ev.Hub = "reset"
	if _, err := d.Call(context.Background(), ev); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v, want unreachable", err)
	}
	if n := reset.accepted(); n != 1 {
		t.Errorf("resetting upstream got %d connections, want 1", n)
	}
}

// TestUnreachableKeepsAddressFromClient: the client is told the upstream is
// unreachable; the address and the transport error stay in the log.
func TestUnreachableKeepsAddressFromClient(t *testing.T) {
	t.Parallel()
	addr := testutil.FreeAddr(t)
	d := startDispatcher(t, DispatcherConfig{})
	d.SetTargets([]Target{{Hub: "chat", Name: "fn", URLTemplate: "http://" + addr + "/hook", Secrets: []string{testSecret}}})
	for _, ev := range []*upstream.Event{message("c1", "send"), {Hub: "chat", ConnectionID: "c1", Event: upstream.EventConnect}} {
		_, err := d.Call(context.Background(), ev)
		var ce interface{ ClientMessage() string }
		if err == nil || !errors.As(err, &ce) {
			t.Fatalf("%s: err = %v, want a delivery error with a client message", ev.Event, err)
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("%s: error %q does not name the address for the log", ev.Event, err)
		}
		if got := ce.ClientMessage(); got != `upstream "fn" is unreachable` {
			t.Errorf("%s: client message %q, want %q", ev.Event, got, `upstream "fn" is unreachable`)
		}
	}
	log, _ := d.DeliveryLog("chat", "fn")
	if len(log) == 0 || !strings.Contains(log[0].Error, addr) {
		t.Errorf("delivery log %+v does not keep the detail", log)
	}
}

func TestCallRetriesRefusedDial(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	// A port nobody listens on gives a real "connection refused".
	refused := testutil.FreeAddr(t)
	var mu sync.Mutex
	dials := 0
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dials++
		first := dials == 1
		mu.Unlock()
		if first {
			addr = refused // the first dial fails for real, the second reaches h
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	d := startDispatcher(t, DispatcherConfig{Client: &http.Client{Transport: tr}})
	d.SetTargets([]Target{h.target("chat", "fn")})
	if _, err := d.Call(context.Background(), message("c1", "send")); err != nil {
		t.Fatalf("call: %v", err)
	}
	if n := len(h.all()); n != 1 {
		t.Errorf("upstream got %d requests, want 1", n)
	}
	log, _ := d.DeliveryLog("chat", "fn")
	if len(log) != 2 || log[1].Attempt != 1 || !strings.Contains(log[1].Error, "refused") || log[0].Attempt != 2 || log[0].Error != "" {
		t.Errorf("delivery log = %+v, want a refused attempt 1 and a good attempt 2", log)
	}
}

// rawServer accepts TCP connections and hands each to fn.
type rawServer struct {
	url string
	mu  sync.Mutex // guards n
	n   int
}

func (s *rawServer) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func newRawServer(t *testing.T, fn func(net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{url: "http://" + ln.Addr().String() + "/hook"}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.n++
			s.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer conn.Close(); fn(conn) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

// TestBadRepliesAreLogged: every bad answer is a clear error for the caller
// and an entry in the delivery log.
func TestBadRepliesAreLogged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   string
		client string // the whole ClientMessage; "" means the same text as the error
	}{
		{"not JSON", 200, http.Header{"Content-Type": {"application/json"}}, "{nope", "sent an invalid reply", ""},
		{"too large", 200, http.Header{"Content-Type": {"application/json"}}, `{"result":"` + strings.Repeat("x", 2000) + `"}`, "replied with more than 1024 bytes", ""},
		{"wrong content type", 200, http.Header{"Content-Type": {"text/html"}}, "<p>hi</p>", `replied with Content-Type "text/html"`, ""},
		{"redirect", 302, http.Header{"Location": {"http://10.1.2.3/internal"}}, "", `answered with a redirect (302 to "http://10.1.2.3/internal")`,
			`upstream "fn" answered with a redirect (302); redirects are not followed`},
		{"server error", 502, nil, "bad gateway", "answered 502 Bad Gateway: bad gateway", `upstream "fn" answered 502 Bad Gateway`},
		{"server error with internals", 500, nil, "pq: dial tcp 10.1.2.3:5432: connect: connection refused", "10.1.2.3:5432",
			`upstream "fn" answered 500 Internal Server Error`},
		{"unavailable with Retry-After", 503, http.Header{"Retry-After": {"1"}}, "db at 10.1.2.3 down", "10.1.2.3",
			`upstream "fn" answered 503 Service Unavailable`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHook(t)
			h.setRespond(func(int, hit) (int, http.Header, string) { return tt.status, tt.header, tt.body })
			d := startDispatcher(t, DispatcherConfig{MaxReplySize: 1024})
			d.SetTargets([]Target{h.target("chat", "fn")})
			_, err := d.Call(context.Background(), message("c1", "send"))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `upstream "fn"`) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			wantClient := tt.client
			if wantClient == "" {
				wantClient = err.Error()
			}
			var ce interface{ ClientMessage() string }
			if !errors.As(err, &ce) || ce.ClientMessage() != wantClient {
				t.Errorf("client message of %v = %v, want %q", err, ce, wantClient)
			}
			log, ok := d.DeliveryLog("chat", "fn")
			if !ok || len(log) != 1 || log[0].Status != tt.status || log[0].Error != err.Error() ||
				log[0].Event != upstream.EventMessage || log[0].Target != "send" || log[0].ConnectionID != "c1" || log[0].ID == "" {
				t.Errorf("delivery log = %+v, want one entry with status %d and the error", log, tt.status)
			}
			if n := len(h.all()); n != 1 {
				t.Errorf("upstream got %d requests, want 1 (never retried)", n)
			}
		})
	}
}

// testLogger sends the dispatcher's warnings to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
