package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/upstream"
)

// eachClient runs f once per webhook client of the dispatcher: fasthttp,
// its default, and net/http's transport, which it uses when a proxy is
// configured. (The second is switched to after the start, not chosen with
// HTTP_PROXY: net/http reads the proxy environment once per process, and
// would send every later test's requests to the proxy.) newDispatcher
// starts a dispatcher whose one upstream, "fn" of hub "chat", takes message
// events at urlTemplate.
func eachClient(t *testing.T, f func(t *testing.T, newDispatcher func(cfg DispatcherConfig, urlTemplate string) *Dispatcher)) {
	t.Parallel()
	for _, client := range []string{"fasthttp", "net/http"} {
		t.Run(client, func(t *testing.T) {
			t.Parallel()
			f(t, func(cfg DispatcherConfig, urlTemplate string) *Dispatcher {
				d := startDispatcher(t, cfg)
				if d.fast == nil {
					t.Fatal("the dispatcher does not use fasthttp by default")
				}
				if client == "net/http" {
					d.fast = nil // before any target, so before any call
				}
				f, err := ParseFilter([]string{"message:*"})
				if err != nil {
					t.Fatal(err)
				}
				d.SetTargets([]Target{{Hub: "chat", Name: "fn", URLTemplate: urlTemplate, Filter: f, Secrets: []string{upstream.NewSecret()}}})
				return d
			})
		})
	}
}

// The dispatcher's own client reads replies of every HTTP/1.1 framing: a
// chunked reply (no Content-Length) is read whole, and a chunked one past
// MaxReplySize is refused as too large with its status logged, never
// retried, like one of announced length.
func TestChunkedReplies(t *testing.T) { eachClient(t, testChunkedReplies) }

func testChunkedReplies(t *testing.T, newDispatcher func(DispatcherConfig, string) *Dispatcher) {
	chunked := func(body string) string {
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
		for len(body) > 0 {
			n := min(len(body), 700)
			b.WriteString(strconv.FormatInt(int64(n), 16) + "\r\n" + body[:n] + "\r\n")
			body = body[n:]
		}
		b.WriteString("0\r\n\r\n")
		return b.String()
	}
	for _, tt := range []struct {
		name, body, wantErr string
	}{
		{"within the limit", `{"result":"` + strings.Repeat("x", 900) + `"}`, ""},
		{"past the limit", `{"result":"` + strings.Repeat("x", 2000) + `"}`, "replied with more than 1024 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := rawUpstream(t, chunked(tt.body))
			d := newDispatcher(DispatcherConfig{MaxReplySize: 1024}, srv+"/api")
			reply, err := d.Call(context.Background(), message("c1", "send"))
			if tt.wantErr == "" {
				if err != nil || reply == nil || len(reply.Result) != 902 {
					t.Fatalf("Call = %+v, %v; want the 900-character result", reply, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if log, _ := d.DeliveryLog("chat", "fn"); len(log) != 1 || log[0].Status != 200 {
				t.Errorf("delivery log = %+v, want one entry with status 200", log)
			}
		})
	}
}

// The request line carries the expanded URL as net/http would send it:
// percent-encoded segments stay encoded, dot segments and doubled slashes
// are not cleaned, the query is kept byte for byte, a fragment is not sent.
func TestRequestURIAsExpanded(t *testing.T) { eachClient(t, testRequestURIAsExpanded) }

func testRequestURIAsExpanded(t *testing.T, newDispatcher func(DispatcherConfig, string) *Dispatcher) {
	var mu sync.Mutex
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.RequestURI
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	tpl := srv.URL + "/api/a%2Fb/./c//{hub}?code=x%20y&e={event}#fragment"
	expanded, err := ExpandURL(tpl, "chat", "messages", "send")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(expanded)
	if err != nil {
		t.Fatal(err)
	}
	d := newDispatcher(DispatcherConfig{}, tpl)
	if _, err := d.Call(context.Background(), message("c1", "send")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := u.RequestURI(); got != want {
		t.Errorf("request URI %q, want %q", got, want)
	}
}

// fasthttp does not honour HTTP_PROXY: with a proxy in the environment the
// dispatcher keeps net/http's transport, which does.
func TestProxyKeepsNetHTTP(t *testing.T) {
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"} {
		t.Setenv(k, "")
	}
	if d := startDispatcher(t, DispatcherConfig{}); d.fast == nil {
		t.Error("without a proxy the dispatcher does not use its fasthttp client")
	}
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	if d := startDispatcher(t, DispatcherConfig{}); d.fast != nil {
		t.Error("with HTTPS_PROXY set the dispatcher uses fasthttp, which ignores the proxy")
	}
}

// A reply's headers may fill maxReplyHeaderBytes (fasthttp's own default
// buffer, 4 KiB, refused replies net/http reads); past it, the call fails
// saying so, as a reply that ran: not retried, not held against the
// upstream's health.
func TestLargeReplyHeaders(t *testing.T) { eachClient(t, testLargeReplyHeaders) }

func testLargeReplyHeaders(t *testing.T, newDispatcher func(DispatcherConfig, string) *Dispatcher) {
	reply := func(padding int) string {
		body := `{"result":"ok"}`
		return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + strings.Repeat("p", padding) +
			"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	for _, tt := range []struct {
		name    string
		padding int
		wantErr string
	}{
		{"12 KiB", 12 << 10, ""},
		{"past 16 KiB", 20 << 10, "replied with more than 16384 bytes of headers"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := rawUpstream(t, reply(tt.padding))
			d := newDispatcher(DispatcherConfig{}, srv+"/api")
			reply, err := d.Call(context.Background(), message("c1", "send"))
			if tt.wantErr == "" {
				if err != nil || reply == nil || string(reply.Result) != `"ok"` {
					t.Fatalf("Call = %+v, %v; want the result \"ok\"", reply, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if ups := d.Status().Upstreams; len(ups) != 1 || ups[0].Breaker.ConsecutiveFailures != 0 {
				t.Errorf("upstreams %+v, want one whose breaker counts no failure", ups)
			}
		})
	}
}

// An upstream closes kept-alive connections it found idle (Node after 5 s,
// Go's servers after IdleTimeout). The next call must not fail on the
// closed connection: a webhook every few seconds would otherwise fail every
// time and count against the upstream. A connection the upstream kept is
// used again, also over TLS, whose session tickets arrive after the
// handshake and must not pass for a close.
func TestUpstreamClosedIdleConnection(t *testing.T) { eachClient(t, testUpstreamClosedIdleConnection) }

func testUpstreamClosedIdleConnection(t *testing.T, newDispatcher func(DispatcherConfig, string) *Dispatcher) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[useTLS], func(t *testing.T) {
			var dials atomic.Int32
			// While burst is set, each request waits until burstSize are in
			// flight (or a generous timeout), so the burst holds that many
			// connections at once.
			const burstSize = 12
			var burst atomic.Bool
			var arrived sync.WaitGroup
			arrived.Add(burstSize)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if burst.Load() {
					arrived.Done()
					all := make(chan struct{})
					go func() { arrived.Wait(); close(all) }()
					select {
					case <-all:
					case <-time.After(waitFor):
					}
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"result":"ok"}`))
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					dials.Add(1)
				}
			}
			cfg := DispatcherConfig{}
			if useTLS {
				srv.StartTLS()
				roots := x509.NewCertPool()
				roots.AddCert(srv.Certificate())
				cfg.TLS = UpstreamTLS{Default: &tls.Config{RootCAs: roots}}
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			d := newDispatcher(cfg, srv.URL+"/api")
			call := func(what string) {
				t.Helper()
				if reply, err := d.Call(context.Background(), message("c1", "send")); err != nil || reply == nil || string(reply.Result) != `"ok"` {
					t.Fatalf("%s: %+v, %v", what, reply, err)
				}
			}
			call("first call")
			time.Sleep(3 * idleCheckAfter)
			call("call on the kept connection")
			if n := dials.Load(); n != 1 {
				t.Errorf("%d connections for two calls on a connection the upstream kept, want 1", n)
			}
			// A burst leaves more idle connections than fasthttp tries a call
			// on by default (5); the upstream closes them all; the next call
			// passes every dead one and dials.
			burst.Store(true)
			var calls sync.WaitGroup
			for range burstSize {
				calls.Go(func() { call("call of the burst") })
			}
			calls.Wait()
			burst.Store(false)
			before := dials.Load()
			if before < burstSize {
				t.Fatalf("%d connections after a burst of %d calls held at once, want at least %d", before, burstSize, burstSize)
			}
			srv.CloseClientConnections() // as an upstream's idle timeout does
			time.Sleep(3 * idleCheckAfter)
			call("call after the upstream closed the idle connections")
			if n := dials.Load(); n != before+1 {
				t.Errorf("%d connections after the upstream closed %d, want %d: one more", n, before, before+1)
			}
		})
	}
}

// Both clients hand interpret the same reply: status, the headers it reads
// (Content-Type, absent or not; Location; Retry-After) and the body.
func TestReplyAsInterpreted(t *testing.T) { eachClient(t, testReplyAsInterpreted) }

func testReplyAsInterpreted(t *testing.T, newDispatcher func(DispatcherConfig, string) *Dispatcher) {
	for _, tt := range []struct {
		name, answer, wantErr, wantResult string
	}{
		{"json", "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 12\r\n\r\n{\"result\":1}", "", "1"},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", "", ""},
		{"empty 200", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "", ""},
		{"untyped", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"result\":1}", `replied with Content-Type ""; want application/json`, ""},
		{"text", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n{\"result\":1}", `replied with Content-Type "text/plain"`, ""},
		{"redirect", "HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n", `redirect (307 to "/elsewhere")`, ""},
		{"retry after", "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy", "answered 503 Service Unavailable; retry after 7s: busy", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := rawUpstream(t, tt.answer)
			d := newDispatcher(DispatcherConfig{}, srv+"/api")
			reply, err := d.Call(context.Background(), message("c1", "send"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if reply != nil {
				got = string(reply.Result)
			}
			if got != tt.wantResult {
				t.Errorf("result %q, want %q", got, tt.wantResult)
			}
		})
	}
}

// A call whose caller leaves (the client disconnected, the gateway is
// closing) ends at once as abandoned, not when the upstream answers or its
// timeout passes: the gateway waits for a connection's calls before it
// sends the disconnected event. The upstream here never answers while the
// test runs.
func TestCallEndsWhenCallerLeaves(t *testing.T) { eachClient(t, testCallEndsWhenCallerLeaves) }

func testCallEndsWhenCallerLeaves(t *testing.T, newDispatcher func(DispatcherConfig, string) *Dispatcher) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: frees the handler
	d := newDispatcher(DispatcherConfig{}, srv.URL+"/api")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := d.Call(ctx, message("c1", "send"))
		done <- err
	}()
	select {
	case <-arrived:
	case <-time.After(waitFor):
		t.Fatal("the request never reached the upstream")
	}
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "call abandoned") {
			t.Errorf("err = %v, want the call abandoned", err)
		}
	case <-time.After(waitFor):
		t.Fatal("the call still runs after its caller left")
	}
	if ups := d.Status().Upstreams; len(ups) != 1 || ups[0].Breaker.ConsecutiveFailures != 0 {
		t.Errorf("upstreams %+v, want one whose breaker counts no failure", ups)
	}
}

// A connection the upstream switched to another protocol (101, which no
// webhook asks for) is not used for the next call.
func TestSwitchedConnectionNotReused(t *testing.T) { eachClient(t, testSwitchedConnectionNotReused) }

func testSwitchedConnectionNotReused(t *testing.T, newDispatcher func(DispatcherConfig, string) *Dispatcher) {
	const switched = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\n"
	srv := newRawServer(t, func(c net.Conn) { serveRaw(c, []byte(switched)) })
	d := newDispatcher(DispatcherConfig{}, srv.url)
	for range 2 {
		if _, err := d.Call(context.Background(), message("c1", "send")); err == nil || !strings.Contains(err.Error(), "101") {
			t.Fatalf("err = %v, want the 101 named", err)
		}
	}
	if n := srv.accepted(); n != 2 {
		t.Errorf("%d connections for two calls answered 101, want 2", n)
	}
}

// TestRepliesOutliveTheirBuffers: fasthttp reads a reply's body into a
// pooled buffer, which the dispatcher reads in place and the next call
// reuses, so whatever a call returns must be a copy. Forty calls in turn,
// each answered with its own result or its own error body, are kept and
// checked at the end: a result or an error text still pointing into the
// buffer would show a later call's answer.
func TestRepliesOutliveTheirBuffers(t *testing.T) { eachClient(t, testRepliesOutliveTheirBuffers) }

func testRepliesOutliveTheirBuffers(t *testing.T, newDispatcher func(DispatcherConfig, string) *Dispatcher) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		// Odd calls are refused with a 400, which the breaker does not
		// count; even ones succeed.
		if i := calls.Add(1); i%2 == 0 {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"result":"reply-` + strconv.FormatInt(i, 10) + `"}`))
		} else {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte("failure-" + strconv.FormatInt(i, 10)))
		}
	}))
	t.Cleanup(srv.Close)
	d := newDispatcher(DispatcherConfig{}, srv.URL+"/api")
	type answer struct {
		reply *upstream.Reply
		err   error
	}
	var answers []answer
	for range 40 {
		reply, err := d.Call(context.Background(), message("c1", "send"))
		answers = append(answers, answer{reply, err})
	}
	for i, a := range answers {
		n := strconv.Itoa(i + 1)
		if (i+1)%2 == 0 {
			if a.err != nil || a.reply == nil || string(a.reply.Result) != `"reply-`+n+`"` {
				t.Errorf("call %s: reply %+v, err %v; want the result \"reply-%s\"", n, a.reply, a.err, n)
			}
			continue
		}
		if a.err == nil || !strings.HasSuffix(a.err.Error(), ": failure-"+n) {
			t.Errorf("call %s: err %v; want it to end with its own body, failure-%s", n, a.err, n)
		}
	}
}
