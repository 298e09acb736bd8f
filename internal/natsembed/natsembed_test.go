package natsembed_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// connect returns a JetStream handle on s, closed at the end of the test.
func connect(t *testing.T, s *natsembed.Server) jetstream.JetStream {
	t.Helper()
	return testutil.JetStream(t, s.URL())
}

func TestStandalone(t *testing.T) {
	s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Shutdown()
	if s.ClusterURL() != "" {
		t.Errorf("ClusterURL = %q, want empty for a standalone server", s.ClusterURL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitJetStream(ctx); err != nil {
		t.Fatalf("WaitJetStream: %v", err)
	}
	kv, err := connect(t, s).CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("put: %v", err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil || string(e.Value()) != "v" {
		t.Fatalf("get = %v, %v; want v", e, err)
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name string
		opts natsembed.Options
	}{
		{"no store dir", natsembed.Options{}},
		{"cluster port without routes", natsembed.Options{StoreDir: t.TempDir(), ClusterPort: natsembed.RandomPort}},
		{"bad route", natsembed.Options{StoreDir: t.TempDir(), Routes: []string{"nats-route://[::1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := natsembed.Start(tt.opts)
			if err == nil {
				s.Shutdown()
				t.Fatal("Start succeeded, want an error")
			}
		})
	}
}

// freePorts returns n ports free at the time of the call. Cluster members
// must know each other's route ports before they start, so random ports
// chosen by the servers themselves would not do.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ports = append(ports, testutil.FreePort(t))
	}
	return ports
}

func TestCluster(t *testing.T) {
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(p))
	}
	servers := make([]*natsembed.Server, 3)
	for i := range servers {
		s, err := natsembed.Start(natsembed.Options{
			Name:        "n" + strconv.Itoa(i),
			StoreDir:    t.TempDir(),
			ClusterPort: ports[i],
			Routes:      routes,
		})
		if err != nil {
			t.Fatalf("Start server %d: %v", i, err)
		}
		defer s.Shutdown()
		servers[i] = s
	}
	if got, want := servers[1].ClusterURL(), routes[1]; got != want {
		t.Errorf("ClusterURL = %q, want %q", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Go(func() { errs[i] = s.WaitJetStream(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("WaitJetStream: %v", err)
	}

	js0, js2 := connect(t, servers[0]), connect(t, servers[2])
	kv0, err := createBucket(ctx, js0, "shared")
	if err != nil {
		t.Fatalf("create bucket on server 0: %v", err)
	}
	if _, err := kv0.Put(ctx, "k", []byte("from 0")); err != nil {
		t.Fatalf("put on server 0: %v", err)
	}
	kv2, err := js2.KeyValue(ctx, "shared")
	if err != nil {
		t.Fatalf("bucket on server 2: %v", err)
	}
	e, err := kv2.Get(ctx, "k")
	if err != nil || string(e.Value()) != "from 0" {
		t.Fatalf("get on server 2 = %v, %v; want %q", e, err, "from 0")
	}
}

// createBucket retries while a fresh cluster settles: the meta leader may
// still be placing its first stream, and a request sent meanwhile may go
// unanswered, so each attempt has a short deadline of its own.
func createBucket(ctx context.Context, js jetstream.JetStream, name string) (jetstream.KeyValue, error) {
	for {
		attempt, cancel := context.WithTimeout(ctx, 3*time.Second)
		kv, err := js.CreateOrUpdateKeyValue(attempt, jetstream.KeyValueConfig{Bucket: name, Replicas: 3})
		cancel()
		if err == nil || ctx.Err() != nil {
			return kv, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestStartPortInUse: a taken port is reported as such, at once, not as a
// server that is slow to start.
func TestStartPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Port: l.Addr().(*net.TCPAddr).Port})
	if err == nil {
		s.Shutdown()
		t.Fatal("Start on a port in use succeeded")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %q does not say the address is in use", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Start took %s to report a taken port; it should not wait out its start timeout", d)
	}
}

// TestClusterRestart: a whole cluster stopped and started again on the same
// stores elects a meta leader (WaitJetStream waits for it: a restarted
// cluster takes several seconds) and keeps its data.
func TestClusterRestart(t *testing.T) {
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(p))
	}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	startAll := func() []*natsembed.Server {
		servers := make([]*natsembed.Server, 3)
		for i := range servers {
			s, err := natsembed.Start(natsembed.Options{Name: "n" + strconv.Itoa(i), StoreDir: dirs[i], ClusterPort: ports[i], Routes: routes})
			if err != nil {
				t.Fatalf("Start server %d: %v", i, err)
			}
			servers[i] = s
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make([]error, len(servers))
		for i, s := range servers {
			wg.Go(func() { errs[i] = s.WaitJetStream(ctx) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("WaitJetStream: %v", err)
		}
		return servers
	}
	servers := startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := createBucket(ctx, connect(t, servers[0]), "kept")
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("put: %v", err)
	}
	for _, s := range servers {
		s.Shutdown()
	}

	servers = startAll()
	defer func() {
		for _, s := range servers {
			s.Shutdown()
		}
	}()
	if servers[1].MetaLeader() == "" {
		t.Fatal("WaitJetStream returned without a meta leader")
	}
	// Each stream elects its own leader after the meta leader, and a
	// request sent before is never answered: clients retry with short
	// attempts, as the node does.
	js := connect(t, servers[1])
	var got string
	testutil.Eventually(t, 60*time.Second, "the bucket's value after the restart", func() bool {
		attempt, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		kv, err := js.KeyValue(attempt, "kept")
		if err != nil {
			return false
		}
		e, err := kv.Get(attempt, "k")
		if err != nil {
			return false
		}
		got = string(e.Value())
		return true
	})
	if got != "v" {
		t.Fatalf("value after restart = %q, want v", got)
	}
}

// TestQuorumReport names the routes nothing listens at.
func TestQuorumReport(t *testing.T) {
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(p))
	}
	s, err := natsembed.Start(natsembed.Options{Name: "alone", StoreDir: t.TempDir(), ClusterPort: ports[0], Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = s.WaitJetStream(ctx)
	if err == nil {
		t.Fatal("WaitJetStream succeeded with one server of three")
	}
	for _, want := range []string{"no JetStream meta leader", "majority", "127.0.0.1:" + strconv.Itoa(ports[1]), "127.0.0.1:" + strconv.Itoa(ports[2])} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
