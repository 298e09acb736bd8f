package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/node"
)

// startGateway runs a real node in-process and a target for it, as the tool
// would see a gateway started by hand.
func startGateway(t *testing.T) *target {
	t.Helper()
	n, err := node.Start(node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), "sb.db"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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

// TestWorkloads runs each workload briefly against an in-process gateway and
// checks the counts: every client connected, every message accounted for,
// nothing lost. No figure of speed is asserted.
func TestWorkloads(t *testing.T) {
	tg := startGateway(t)
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
			if !strings.Contains(out.String(), `{"workload":"`+tt.name+`"`) {
				t.Errorf("output has no JSON line for %s:\n%s", tt.name, out.String())
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
