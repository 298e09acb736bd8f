package main

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/node"
)

// startGateway runs a real node in-process and a target for it, as the tool
// would see a gateway started by hand.
func startGateway(t *testing.T) *target {
	t.Helper()
	// No per-connection invocation rate, as for a spawned gateway: a
	// closed-loop client on loopback passes the default 200/s whenever the
	// machine is quick enough, and the workloads count refusals as errors.
	n, err := node.Start(node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), "sb.db"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Limits: gateway.Limits{InvocationRate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	cs, err := n.ConnectionString()
	if err != nil {
		t.Fatal(err)
	}
	base, err := loopbackBase("http://" + n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tg, err := newTarget(base, n.AdminKey(), cs.String(), "bench", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tg.close)
	return tg
}

// servedCombos are the transport and protocol pairs the JS client allows,
// each as --transport and --protocol.
var servedCombos = [][2]string{
	{"websockets", "json"},
	{"websockets", "messagepack"},
	{"longpolling", "json"},
	{"longpolling", "messagepack"},
	{"serversentevents", "json"},
	{"websockets", "mixed"},
	{"longpolling", "mixed"},
}

// TestWorkloads runs each workload briefly against an in-process gateway,
// on every transport and protocol, and checks the counts: every
// client connected, every message accounted for, nothing lost, and the
// report names the transport and protocol. No figure of speed is asserted.
func TestWorkloads(t *testing.T) {
	tg := startGateway(t)
	for _, combo := range servedCombos {
		t.Run(combo[0]+"-"+combo[1], func(t *testing.T) { testWorkloads(t, tg, combo[0], combo[1]) })
	}
}

func testWorkloads(t *testing.T, tg *target, transport, protocol string) {
	tests := []struct {
		name  string
		cfg   config
		check func(t *testing.T, r *result)
	}{
		{"idle", config{Workload: "idle", Clients: 50, Rate: 500, Hold: 10 * time.Millisecond, Duration: time.Second, PID: os.Getpid()},
			func(t *testing.T, r *result) {
				if r.ConnectRate <= 0 || r.RSSAfter <= 0 {
					t.Errorf("connect rate %v, RSS after %d KiB: want both measured", r.ConnectRate, r.RSSAfter)
				}
			}},
		{"fanout", config{Workload: "fanout", Clients: 50, Rate: 40, ConnectRate: 500, Duration: time.Second, Drain: 10 * time.Second, PID: os.Getpid()},
			func(t *testing.T, r *result) {
				if r.Sent != 40 || r.Expected != 40*50 {
					t.Errorf("sent %d, expected %d deliveries; want 40 and %d", r.Sent, r.Expected, 40*50)
				}
			}},
		{"roundtrip", config{Workload: "roundtrip", Clients: 10, ConnectRate: 500, Duration: time.Second},
			func(t *testing.T, r *result) {
				if r.Sent == 0 || r.P99 <= 0 {
					t.Errorf("%d invocations, p99 %v ms: want some, with latencies", r.Sent, r.P99)
				}
			}},
		{"chat", config{Workload: "chat", Clients: 50, Senders: 3, Rate: 30, ConnectRate: 500, Duration: time.Second, Drain: 10 * time.Second},
			func(t *testing.T, r *result) {
				if r.Sent != 30 || r.Expected != 30*50 || r.Senders != 3 {
					t.Errorf("sent %d from %d senders, expected %d; want 30 from 3, %d", r.Sent, r.Senders, r.Expected, 30*50)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			tt.cfg.Transport, tt.cfg.Protocol = transport, protocol
			r, err := run(ctx, tg, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			r.print(&out)
			t.Log(out.String())
			if r.Clients != tt.cfg.Clients || r.Errors != 0 || r.Disconnects != 0 {
				t.Fatalf("clients %d, errors %d (%s), disconnects %d; want %d, 0, 0",
					r.Clients, r.Errors, r.FirstError, r.Disconnects, tt.cfg.Clients)
			}
			if r.Lost != 0 || r.Delivered != r.Expected {
				t.Errorf("delivered %d of %d (lost %d); want all", r.Delivered, r.Expected, r.Lost)
			}
			if want := fmt.Sprintf(`{"workload":%q,"transport":%q,"protocol":%q,`, tt.name, transport, protocol); !strings.Contains(out.String(), want) {
				t.Errorf("output has no JSON line starting %s:\n%s", want, out.String())
			}
			if want := fmt.Sprintf("%s over %s/%s:", tt.name, transport, protocol); !strings.HasPrefix(out.String(), want) {
				t.Errorf("output does not start with %q:\n%s", want, out.String())
			}
			tt.check(t, r)
		})
	}
}

func TestOnlyLoopbackTargets(t *testing.T) {
	tests := []struct {
		url, want string // want "" means refused
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://localhost:9000/", "http://127.0.0.1:9000"},
		{"http://127.3.2.1:1", "http://127.3.2.1:1"},
		{"http://10.0.0.1:8080", ""},
		{"http://example.com", ""},
		{"http://[::1]:8080", ""},
		{"https://127.0.0.1:8443", ""},
		{"127.0.0.1:8080", ""},
	}
	for _, tt := range tests {
		got, err := loopbackBase(tt.url)
		if tt.want == "" && err == nil {
			t.Errorf("loopbackBase(%q) = %q, want refused", tt.url, got)
		}
		if tt.want != "" && (err != nil || got != tt.want) {
			t.Errorf("loopbackBase(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
	dial := loopbackDialer(4)
	if _, err := dial(context.Background(), "tcp", "192.0.2.1:80"); !errors.Is(err, errNotLoopback) {
		t.Errorf("dialing 192.0.2.1: got %v, want errNotLoopback", err)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	vals := make([]time.Duration, 10000)
	for i := range vals {
		vals[i] = time.Duration(i+1) * 37 * time.Microsecond
	}
	rand.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	for _, v := range vals {
		h.record(v)
	}
	for _, q := range []float64{0.5, 0.99, 1} {
		want := time.Duration(q*10000) * 37 * time.Microsecond
		got := h.quantile(q)
		if diff := float64(got-want) / float64(want); diff < -0.04 || diff > 0.04 {
			t.Errorf("quantile(%v) = %v, want %v within 4%%", q, got, want)
		}
	}
	for i := 1; i < len(h.counts); i++ {
		if bucketValue(i) <= bucketValue(i-1) || bucketOf(bucketValue(i)) != i {
			t.Fatalf("bucket %d: bounds not increasing or not round-tripping", i)
		}
	}
}

// TestClientBases: --urls spreads clients over the listed gateways in turn
// and refuses any that is not on loopback.
func TestClientBases(t *testing.T) {
	tests := []struct {
		name    string
		urls    []string
		want    []string // the bases of four clients in a row
		wantErr bool
	}{
		{name: "none keeps --url", urls: nil, want: []string{"http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:1"}},
		{name: "three nodes in turn", urls: []string{"http://127.0.0.1:2", " http://localhost:3", "http://127.0.0.4:4/"},
			want: []string{"http://127.0.0.1:2", "http://127.0.0.1:3", "http://127.0.0.4:4", "http://127.0.0.1:2"}},
		{name: "not loopback", urls: []string{"http://127.0.0.1:2", "http://10.0.0.1:8080"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg, err := newTarget("http://127.0.0.1:1", "", "", "bench", 1)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.close()
			err = tg.setClientBases(tt.urls)
			if tt.wantErr {
				if !errors.Is(err, errNotLoopback) {
					t.Fatalf("setClientBases(%q) = %v, want errNotLoopback", tt.urls, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.want {
				if got := tg.clientBase(); got != want {
					t.Errorf("client %d goes to %s, want %s", i, got, want)
				}
			}
		})
	}
}

// TestClientFlags: --protocol and --transport take what the JS client
// allows, default to the figures' WebSockets and JSON, and refuse the rest
// before any connection.
func TestClientFlags(t *testing.T) {
	base := config{Workload: "idle", Clients: 1, Duration: time.Second, Protocol: "json", Transport: "websockets"}
	tests := []struct {
		transport, protocol string
		wantErr             string // "" = accepted
	}{
		{"websockets", "json", ""},
		{"websockets", "messagepack", ""},
		{"longpolling", "json", ""},
		{"longpolling", "messagepack", ""},
		{"serversentevents", "json", ""},
		{"serversentevents", "messagepack", "only JSON"},
		{"webtransport", "json", "--transport must be one of"},
		{"websockets", "xml", "--protocol must be one of"},
	}
	for _, tt := range tests {
		c := base
		c.Transport, c.Protocol = tt.transport, tt.protocol
		err := c.check()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s/%s: check() = %v, want %q", tt.transport, tt.protocol, err, tt.wantErr)
		}
	}
	// The flags reach the check; their defaults pass it (the run then stops
	// at the admin API, which this gateway-less call does not have).
	var out strings.Builder
	if err := mainErr([]string{"idle", "--url", "http://127.0.0.1:1", "--transport", "serversentevents", "--protocol", "messagepack"}, &out); err == nil || !strings.Contains(err.Error(), "only JSON") {
		t.Errorf("mainErr with SSE and MessagePack = %v, want the refusal", err)
	}
	if err := mainErr([]string{"idle", "--url", "http://127.0.0.1:1"}, &out); err == nil || !strings.Contains(err.Error(), "admin API") {
		t.Errorf("mainErr with the default flags = %v, want it past the check, stopped at the admin API", err)
	}
}

// TestUsers: with --users N client i connects as bench-user-<i mod N>, so
// the gateway knows exactly N users; without it, clients have no user id.
func TestUsers(t *testing.T) {
	tg := startGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := tg.ensureHub(ctx); err != nil {
		t.Fatal(err)
	}
	exists := func(user string) bool {
		t.Helper()
		path := "/api/hubs/bench/users/" + user
		tok, err := tg.restToken(path)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, tg.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		err = tg.do(req, []int{http.StatusOK})
		if err != nil && !strings.Contains(err.Error(), "404") {
			t.Fatal(err)
		}
		return err == nil
	}
	var errs errCounter
	f, _ := tg.connect(ctx, 3, 0, noHandlers, &errs) // no user ids
	if len(f.conns) != 3 {
		t.Fatalf("%d clients connected (first error %v), want 3", len(f.conns), errs.first.Load())
	}
	if exists("bench-user-0") {
		t.Error("without --users, bench-user-0 exists")
	}
	f.closeAll()
	tg.users = 2
	f, _ = tg.connect(ctx, 3, 0, noHandlers, &errs)
	defer f.closeAll()
	if len(f.conns) != 3 {
		t.Fatalf("%d clients connected (first error %v), want 3", len(f.conns), errs.first.Load())
	}
	for user, want := range map[string]bool{"bench-user-0": true, "bench-user-1": true, "bench-user-2": false} {
		if got := exists(user); got != want {
			t.Errorf("user %s exists: %v, want %v", user, got, want)
		}
	}
}

// TestCPUProfile: --cpuprofile leaves a gzip-compressed profile of the run
// behind, and a path it cannot create fails the run before any traffic.
func TestCPUProfile(t *testing.T) {
	tg := startGateway(t)
	path := filepath.Join(t.TempDir(), "tool.cpu")
	var out strings.Builder
	args := []string{"idle", "--url", tg.base, "--admin-key", tg.adminKey, "--clients", "3", "--hold", "50ms", "--sources", "1", "--timeout", "1m", "--cpuprofile", path}
	if err := mainErr(args, &out); err != nil {
		t.Fatalf("run with --cpuprofile: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("profile is not gzip, as pprof writes it: %v", err)
	}
	if n, err := io.Copy(io.Discard, zr); err != nil || n == 0 {
		t.Fatalf("profile: %d bytes, %v", n, err)
	}
	args[len(args)-1] = filepath.Join(t.TempDir(), "missing", "tool.cpu")
	if err := mainErr(args, &out); err == nil || !strings.Contains(err.Error(), "--cpuprofile") {
		t.Errorf("run with an uncreatable --cpuprofile = %v, want it refused", err)
	}
}
