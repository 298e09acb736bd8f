package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// Small enough for quick tests, large enough that a busy machine does not
// delay a live node's heartbeat past MemberTTL + DeadAfter.
const (
	testInterval  = 100 * time.Millisecond // registry rounds and bus heartbeats
	testMemberTTL = time.Second
	// Generous against a loaded machine: under -race with other packages
	// compiling, a heartbeat goroutine can stall for a second.
	testDeadAfter = 3 * time.Second
)

// testNode is one node of a test as the node package wires it: a NATS
// connection, the bus on it, and the registry deciding death from the bus.
type testNode struct {
	id  string
	nc  *nats.Conn
	bus *NATS
	reg *Registry
}

// nodeConfig sets what differs between tests; zero values mean the
// real-time test settings above.
type nodeConfig struct {
	now       func() time.Time // the bus's and the registry's clock
	heartbeat time.Duration    // the bus's HeartbeatInterval
	interval  time.Duration    // the registry's Interval
	memberTTL time.Duration
	deadAfter time.Duration
	logger    *slog.Logger
}

// kill stops the node as a crash would: the registry's loops end without
// Close (its records stay in KV), the connection closes, and the bus says
// no goodbye that anyone hears.
func (n *testNode) kill() {
	n.reg.cancel()
	n.reg.wg.Wait()
	n.nc.Close()
	n.bus.Close()
}

// regEnv is one embedded NATS and what the registries report.
type regEnv struct {
	t   *testing.T
	srv *natsembed.Server
	dir string
	js  jetstream.JetStream
	nc  *nats.Conn // js's

	mu   sync.Mutex
	lost map[string][]ConnRecord // reporting node → records, in order
	hook func(node string, rec ConnRecord)
}

// newRegEnv starts NATS for one test and checks, after everything the test
// registered is cleaned up, that no goroutine of it is left.
func newRegEnv(t *testing.T) *regEnv {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	e := &regEnv{t: t, dir: t.TempDir(), lost: make(map[string][]ConnRecord)}
	srv, err := natsembed.Start(natsembed.Options{StoreDir: e.dir})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	t.Cleanup(func() { e.srv.Shutdown() })
	e.nc = e.connect()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	e.js = js
	return e
}

// connect opens a client that keeps reconnecting, as a node's would.
func (e *regEnv) connect() *nats.Conn {
	e.t.Helper()
	// No reconnect buffer: writes fail while NATS is down instead of being
	// sent late, as they could be in a longer outage.
	nc, err := nats.Connect(e.srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	return nc
}

// start starts a node with the real-time test settings; the test's cleanup
// stops it unless the test did.
func (e *regEnv) start(id string) *testNode {
	e.t.Helper()
	return e.startWith(id, nodeConfig{})
}

func (e *regEnv) startWith(id string, cfg nodeConfig) *testNode {
	e.t.Helper()
	if cfg.heartbeat == 0 {
		cfg.heartbeat = testInterval
	}
	if cfg.interval == 0 {
		cfg.interval = testInterval
	}
	if cfg.memberTTL == 0 {
		cfg.memberTTL = testMemberTTL
	}
	if cfg.deadAfter == 0 {
		cfg.deadAfter = testDeadAfter
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	n := &testNode{id: id, nc: e.connect()}
	bus, err := NewNATS(n.nc, nil, NATSOptions{
		NodeID: id, URL: "http://" + id + ".test",
		HeartbeatInterval: cfg.heartbeat, MemberTTL: cfg.memberTTL,
		Now: cfg.now, Logger: cfg.logger,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	n.bus = bus
	e.t.Cleanup(bus.Close)
	js, err := jetstream.New(n.nc)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := NewRegistry(ctx, js, RegistryOptions{
		Node:      id,
		URL:       "http://" + id + ".test",
		Live:      bus,
		Interval:  cfg.interval,
		DeadAfter: cfg.deadAfter,
		Now:       cfg.now,
		Logger:    cfg.logger,
		OnLost:    func(rec ConnRecord) { e.report(id, rec) },
	})
	if err != nil {
		e.t.Fatal(err)
	}
	n.reg = r
	e.t.Cleanup(func() {
		if r.ctx.Err() == nil {
			r.cancel()
		}
		r.wg.Wait()
	})
	return n
}

func (e *regEnv) report(node string, rec ConnRecord) {
	e.mu.Lock()
	e.lost[node] = append(e.lost[node], rec)
	hook := e.hook
	e.mu.Unlock()
	if hook != nil {
		hook(node, rec)
	}
}

// reported returns how many times each connection was reported, and by
// which nodes.
func (e *regEnv) reported() (count map[string]int, by map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	count, by = make(map[string]int), make(map[string]bool)
	for node, recs := range e.lost {
		for _, rec := range recs {
			count[rec.ConnectionID]++
			by[node] = true
		}
	}
	return count, by
}

// records returns the connection ids recorded in KV under node.
func (e *regEnv) records(node string) []string {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), bucketConns)
	if err != nil {
		e.t.Fatal(err)
	}
	r := &Registry{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	entries, err := r.list(ctx, kv, node+".>")
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, en := range entries {
		ids = append(ids, en.Key())
	}
	return ids
}

// hasKey reports whether bucket holds key (not deleted).
func (e *regEnv) hasKey(bucket, key string) bool {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = kv.Get(context.Background(), key)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

// open records n connections of node and waits until they are in KV.
func (e *regEnv) open(node *testNode, n int) []ConnRecord {
	e.t.Helper()
	var recs []ConnRecord
	for i := range n {
		rec := ConnRecord{Hub: "chat", ConnectionID: fmt.Sprintf("%s.c%02d", node.id, i), UserID: "u" + strconv.Itoa(i)}
		recs = append(recs, rec)
		node.reg.Opened(rec)
	}
	testutil.Eventually(e.t, 15*time.Second, "records written", func() bool { return len(e.records(node.id)) == n })
	return recs
}

// waitRounds waits until every node's registry has completed enough
// detection rounds to have taken any silent node for dead.
func waitRounds(t *testing.T, ns ...*testNode) {
	t.Helper()
	start := make([]int64, len(ns))
	for i, n := range ns {
		start[i] = n.reg.rounds.Load()
	}
	testutil.Eventually(t, 15*time.Second, "detector rounds", func() bool {
		for i, n := range ns {
			if n.reg.rounds.Load()-start[i] < int64((testMemberTTL+testDeadAfter)/testInterval)+3 {
				return false
			}
		}
		return true
	})
}

// closeNode closes the node as the node package does: the registry, then
// the bus (which says goodbye).
func closeNode(t *testing.T, n *testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.reg.Close(ctx); err != nil {
		t.Errorf("close %s: %v", n.id, err)
	}
	n.bus.Close()
}

// memberIDs returns the ids of the nodes n's bus takes for alive.
func memberIDs(n *testNode) string {
	var ids []string
	for _, m := range n.bus.Members() {
		ids = append(ids, m.ID)
	}
	return strings.Join(ids, ",")
}

func TestRegistryDeadNodeReportedOnce(t *testing.T) {
	e := newRegEnv(t)
	a, b, c := e.start("a1"), e.start("b2"), e.start("c3")
	want := e.open(b, 50)
	// Closed connections, whether written or not, are not reported.
	b.reg.Opened(ConnRecord{Hub: "chat", ConnectionID: "b2.quick"})
	b.reg.Closed("b2.quick")
	b.reg.Opened(ConnRecord{Hub: "chat", ConnectionID: "b2.late"})
	testutil.Eventually(t, 15*time.Second, "late record", func() bool { return e.hasKey(bucketConns, "b2.late") })
	b.reg.Closed("b2.late")
	testutil.Eventually(t, 15*time.Second, "late record deleted", func() bool { return !e.hasKey(bucketConns, "b2.late") })
	testutil.Eventually(t, 15*time.Second, "all nodes live", func() bool { return memberIDs(a) == "a1,b2,c3" && memberIDs(c) == "a1,b2,c3" })

	b.kill()
	testutil.Eventually(t, 15*time.Second, "b2's node record deleted", func() bool { return !e.hasKey(bucketNodes, "b2") })
	testutil.Eventually(t, 15*time.Second, "claim released", func() bool { return !e.hasKey(bucketClaims, "b2") })
	waitRounds(t, a, c) // anything reported late or twice would show now

	count, by := e.reported()
	if len(by) != 1 {
		t.Errorf("reported by %v, want exactly one node", by)
	}
	if len(count) != len(want) {
		t.Errorf("%d connections reported, want %d", len(count), len(want))
	}
	for _, rec := range want {
		if count[rec.ConnectionID] != 1 {
			t.Errorf("%s reported %d times, want 1", rec.ConnectionID, count[rec.ConnectionID])
		}
	}
	e.mu.Lock()
	for _, recs := range e.lost {
		for _, rec := range recs {
			i, _ := strconv.Atoi(strings.TrimPrefix(rec.ConnectionID, "b2.c"))
			if rec != want[i] {
				t.Errorf("reported %+v, want %+v", rec, want[i])
			}
		}
	}
	e.mu.Unlock()
	if left := e.records("b2"); len(left) != 0 {
		t.Errorf("records left: %v", left)
	}
	if got := memberIDs(a); got != "a1,c3" {
		t.Errorf("a1 sees nodes %s, want a1,c3", got)
	}
	closeNode(t, a)
	closeNode(t, c)
	if e.hasKey(bucketNodes, "a1") || e.hasKey(bucketNodes, "c3") {
		t.Error("node records left after Close")
	}
}

func TestRegistryGracefulClose(t *testing.T) {
	e := newRegEnv(t)
	a, b := e.start("a1"), e.start("b2")
	for _, rec := range e.open(b, 10) {
		b.reg.Closed(rec.ConnectionID)
	}
	closeNode(t, b)
	if e.hasKey(bucketNodes, "b2") {
		t.Error("b2's node record left after Close")
	}
	if left := e.records("b2"); len(left) != 0 {
		t.Errorf("records left: %v", left)
	}

	// A node closed with connections still recorded leaves them to a
	// survivor rather than losing their events.
	d := e.start("d4")
	recs := e.open(d, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.reg.Close(ctx); err == nil {
		t.Error("Close with recorded connections: got no error")
	}
	d.bus.Close() // the node leaves the bus all the same
	testutil.Eventually(t, 15*time.Second, "d4's connections reported", func() bool {
		count, _ := e.reported()
		return len(count) == len(recs)
	})
	waitRounds(t, a)
	count, _ := e.reported()
	for _, rec := range recs {
		if count[rec.ConnectionID] != 1 {
			t.Errorf("%s reported %d times, want 1", rec.ConnectionID, count[rec.ConnectionID])
		}
	}
	if len(count) != len(recs) {
		t.Errorf("reported %v, want only d4's connections", count)
	}
	closeNode(t, a)
}

func TestRegistryReportsNodeDeadBeforeStart(t *testing.T) {
	e := newRegEnv(t)
	b := e.start("b2")
	want := e.open(b, 5)
	b.kill()
	d := e.start("d4") // no survivor saw b2 die
	testutil.Eventually(t, 15*time.Second, "b2's connections reported", func() bool {
		count, _ := e.reported()
		return len(count) == len(want)
	})
	testutil.Eventually(t, 15*time.Second, "b2's node record deleted", func() bool { return !e.hasKey(bucketNodes, "b2") })
	count, _ := e.reported()
	for _, rec := range want {
		if count[rec.ConnectionID] != 1 {
			t.Errorf("%s reported %d times, want 1", rec.ConnectionID, count[rec.ConnectionID])
		}
	}
	closeNode(t, d)
}

func TestRegistryNATSRestart(t *testing.T) {
	e := newRegEnv(t)
	a, b := e.start("a1"), e.start("b2")
	u, err := url.Parse(e.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	e.open(b, 1) // what a1 would report if it took b2 for dead
	testutil.Eventually(t, 15*time.Second, "a1 sees b2", func() bool { return memberIDs(a) == "a1,b2" })

	e.srv.Shutdown()
	down := time.Now()
	a.reg.Opened(ConnRecord{Hub: "chat", ConnectionID: "a1.kept", UserID: "u"})
	a.reg.Opened(ConnRecord{Hub: "chat", ConnectionID: "a1.gone"})
	a.reg.Closed("a1.gone")
	// Keep NATS down longer than it takes to declare a node dead: nobody
	// may be taken for dead for heartbeats that NATS could not carry.
	testutil.Eventually(t, 15*time.Second, "a long outage", func() bool {
		return time.Since(down) > 2*(testMemberTTL+testDeadAfter) && a.reg.failedRounds.Load() > 0 && b.reg.failedRounds.Load() > 0
	})
	srv, err := natsembed.Start(natsembed.Options{StoreDir: e.dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	testutil.Eventually(t, 15*time.Second, "the test's client reconnected", e.nc.IsConnected)

	testutil.Eventually(t, 15*time.Second, "queued record written", func() bool { return e.hasKey(bucketConns, "a1.kept") })
	a.reg.Opened(ConnRecord{Hub: "chat", ConnectionID: "a1.after"})
	testutil.Eventually(t, 15*time.Second, "record written after restart", func() bool { return e.hasKey(bucketConns, "a1.after") })
	waitRounds(t, a, b)
	if count, _ := e.reported(); len(count) != 0 {
		t.Errorf("reported %v after a NATS outage, want nothing", count)
	}
	if e.hasKey(bucketConns, "a1.gone") {
		t.Error("a1.gone recorded although closed")
	}
	if got := memberIDs(a); got != "a1,b2" {
		t.Errorf("nodes %s, want a1,b2", got)
	}
	a.reg.Closed("a1.kept")
	a.reg.Closed("a1.after")
	b.reg.Closed("b2.c00")
	closeNode(t, a)
	closeNode(t, b)
}

func TestRegistryStalledClaimTakenOver(t *testing.T) {
	e := newRegEnv(t)
	a, b, c := e.start("a1"), e.start("b2"), e.start("c3")
	want := e.open(b, 20)

	// The first claimer stalls in its fifth OnLost, as if it died there.
	var (
		once    sync.Once
		stuck   = make(chan string, 1)
		release = make(chan struct{})
		calls   int
	)
	e.mu.Lock()
	e.hook = func(node string, rec ConnRecord) {
		e.mu.Lock()
		calls++
		n := calls
		e.mu.Unlock()
		if n == 5 {
			once.Do(func() { stuck <- node })
			<-release
		}
	}
	e.mu.Unlock()
	b.kill()
	first := <-stuck
	testutil.Eventually(t, 15*time.Second, "b2's node record deleted by the other node", func() bool { return !e.hasKey(bucketNodes, "b2") })
	close(release)

	count, by := e.reported()
	for _, rec := range want {
		if count[rec.ConnectionID] < 1 {
			t.Errorf("%s not reported", rec.ConnectionID)
		}
	}
	dups := 0
	for _, n := range count {
		dups += n - 1
	}
	// Only the record the stalled claimer was reporting is reported again.
	if dups > 1 {
		t.Errorf("%d duplicate reports, want at most 1", dups)
	}
	if len(by) != 2 {
		t.Errorf("reported by %v, want both survivors", by)
	}
	closeNode(t, a)
	closeNode(t, c)
	e.mu.Lock()
	if n := len(e.lost[first]); n != 5 {
		t.Errorf("stalled claimer %s reported %d after losing its claim, want 5", first, n)
	}
	e.mu.Unlock()
}

// The liveness tests below control time: every node's heartbeats go out
// only at start, in answer to a node heard anew, and when the test calls
// tick, and the clocks move only when told. A node is then live exactly
// while its last heartbeat is at most MemberTTL old on the listener's
// clock, and the edges can be tested to the step.
const (
	edgeMemberTTL = 3 * time.Second
	edgeDeadAfter = 5 * time.Second
)

func edgeConfig(clk *testutil.Clock) nodeConfig {
	return nodeConfig{now: clk.Now, heartbeat: time.Hour, memberTTL: edgeMemberTTL, deadAfter: edgeDeadAfter}
}

// tick advances clk by d, has each of beating heartbeat, and waits until
// every listener heard each of them at the new time, then until every
// listener's registry completed a detection round begun after that.
func tick(t *testing.T, clk *testutil.Clock, d time.Duration, beating, listening []*testNode) {
	t.Helper()
	clk.Advance(d)
	now := clk.Now()
	for _, n := range beating {
		n.bus.heartbeat()
	}
	testutil.Eventually(t, 10*time.Second, "heartbeats heard", func() bool {
		for _, l := range listening {
			for _, n := range beating {
				if n != l && !heardAt(l, n.id, now) {
					return false
				}
			}
		}
		return true
	})
	settle(t, listening...)
}

// heardAt reports whether l's bus last heard id at the time at.
func heardAt(l *testNode, id string, at time.Time) bool {
	l.bus.mem.mu.Lock()
	defer l.bus.mem.mu.Unlock()
	m, ok := l.bus.mem.m[id]
	return ok && m.LastSeen.Equal(at)
}

// settle waits until each node's registry completed two detection rounds
// that counted, so the second began after settle was called.
func settle(t *testing.T, ns ...*testNode) {
	t.Helper()
	start := make([]int64, len(ns))
	for i, n := range ns {
		start[i] = n.reg.rounds.Load()
	}
	testutil.Eventually(t, 10*time.Second, "two detection rounds", func() bool {
		for i, n := range ns {
			if n.reg.rounds.Load()-start[i] < 2 {
				return false
			}
		}
		return true
	})
}

// declared counts the dead nodes that ns claimed and reported.
func declared(ns ...*testNode) int64 {
	var sum int64
	for _, n := range ns {
		sum += n.reg.declared.Load()
	}
	return sum
}

// logBuffer collects what a node logs.
type logBuffer struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A node whose NATS connection is cut is out of the live set once its last
// heartbeat is past MemberTTL (3 s) old, and dead when it stayed out for
// DeadAfter (5 s): at 9 s in whole seconds, not at 8. Of four survivors
// exactly one declares it dead and reports each of its connections, once. A
// node silent as long but heard again at 8 s is not dead.
func TestRegistrySilentNodeDeadOnce(t *testing.T) {
	e := newRegEnv(t)
	clk := testutil.NewClock(time.Unix(1_800_000_000, 0))
	a, b, c := e.startWith("a1", edgeConfig(clk)), e.startWith("b2", edgeConfig(clk)), e.startWith("c3", edgeConfig(clk))
	x, y := e.startWith("x8", edgeConfig(clk)), e.startWith("y9", edgeConfig(clk))
	for _, n := range []*testNode{a, b, c, x, y} {
		testutil.Eventually(t, 10*time.Second, n.id+" to hear everyone", func() bool { return memberIDs(n) == "a1,b2,c3,x8,y9" })
	}
	wantX := e.open(x, 10)
	e.open(y, 3)

	x.nc.Close() // x is heard no more, and its registry can write nothing
	survivors := []*testNode{a, b, c, y}
	for sec := 1; sec <= 8; sec++ {
		beating := []*testNode{a, b, c} // y is silent until 8 s
		if sec == 8 {
			beating = survivors
		}
		tick(t, clk, time.Second, beating, survivors)
		if sec >= 4 && sec < 8 && strings.Contains(memberIDs(a), "y9") {
			t.Fatalf("at %d s a1 still takes y9 for alive, want it out of the live set past MemberTTL", sec)
		}
		if n := declared(survivors...); n != 0 {
			t.Fatalf("at %d s %d nodes declared dead, want none before 9 s", sec, n)
		}
	}
	if !strings.Contains(memberIDs(a), "y9") {
		t.Fatal("y9 heard again at 8 s, but a1 does not take it for alive")
	}

	// The claimer holds its first report until the other survivors have
	// each completed two detection rounds, all of them finding x8 dead.
	var held atomic.Bool
	e.mu.Lock()
	e.hook = func(node string, _ ConnRecord) {
		if held.Swap(true) {
			return
		}
		start := make([]int64, len(survivors))
		for i, n := range survivors {
			start[i] = n.reg.rounds.Load()
		}
		others := func() bool {
			for i, n := range survivors {
				if n.id != node && n.reg.rounds.Load()-start[i] < 2 {
					return false
				}
			}
			return true
		}
		for deadline := time.Now().Add(10 * time.Second); !others(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Error("the other survivors completed no detection round while the claimer reported")
				return
			}
		}
	}
	e.mu.Unlock()
	tick(t, clk, time.Second, survivors, survivors) // 9 s
	if n := declared(survivors...); n != 1 {
		t.Fatalf("at 9 s %d nodes declared dead, want x8 alone", n)
	}
	count, by := e.reported()
	if len(by) != 1 || len(count) != len(wantX) {
		t.Errorf("reported %v by %v, want x8's %d connections by one node", count, by, len(wantX))
	}
	for _, rec := range wantX {
		if count[rec.ConnectionID] != 1 {
			t.Errorf("%s reported %d times, want 1", rec.ConnectionID, count[rec.ConnectionID])
		}
	}
	if e.hasKey(bucketNodes, "x8") || e.hasKey(bucketClaims, "x8") || len(e.records("x8")) != 0 {
		t.Error("x8's node record, claim or connection records left after it was reported")
	}

	// Nothing more, however long it lasts: x8 is reported, y9 is heard.
	for range 2 * (edgeMemberTTL + edgeDeadAfter) / time.Second {
		tick(t, clk, time.Second, survivors, survivors)
	}
	if n := declared(survivors...); n != 1 {
		t.Errorf("%d nodes declared dead in all, want x8 alone, once", n)
	}
	if count, _ := e.reported(); len(count) != len(wantX) {
		t.Errorf("reported %v, want only x8's connections", count)
	}
	if !e.hasKey(bucketNodes, "y9") {
		t.Error("y9's node record is gone")
	}
}

// An observer cut off from NATS hears nobody, however long, and must not
// take that for deaths: after it reconnects, every node gets DeadAfter
// afresh, even one that was already out of its live set when the outage
// began. The same absence counts once the observer is connected again; the
// node it then takes for dead was alive, and finds out and says so.
func TestRegistryOutageKillsNobody(t *testing.T) {
	e := newRegEnv(t)
	// Each node its own clock; only the observer's moves.
	clkS, clkA := testutil.NewClock(time.Unix(1_800_000_000, 0)), testutil.NewClock(time.Unix(1_800_000_000, 0))
	logA := &logBuffer{}
	// s1 looks seldom, a2 often: a2 records itself again, once s1 took it
	// for dead, before s1's next look.
	cfgS := edgeConfig(clkS)
	cfgS.interval = 300 * time.Millisecond
	s := e.startWith("s1", cfgS)
	cfgA := edgeConfig(clkA)
	cfgA.interval = 10 * time.Millisecond
	cfgA.logger = slog.New(slog.NewTextHandler(logA, nil))
	a := e.startWith("a2", cfgA)
	for _, n := range []*testNode{s, a} {
		testutil.Eventually(t, 10*time.Second, n.id+" to hear the other", func() bool { return memberIDs(n) == "a2,s1" })
	}
	want := e.open(a, 3)

	// a2 is not heard again: past MemberTTL on s1's clock it is out of s1's
	// live set, and s1 starts timing its absence.
	clkS.Advance(edgeMemberTTL + time.Second)
	settle(t, s)
	if got := memberIDs(s); got != "s1" {
		t.Fatalf("s1 takes %s for alive, want itself alone", got)
	}

	u, err := url.Parse(e.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	failed := s.reg.failedRounds.Load()
	e.srv.Shutdown()
	testutil.Eventually(t, 15*time.Second, "s1 to miss a round", func() bool { return s.reg.failedRounds.Load() > failed })
	clkS.Advance(2 * edgeDeadAfter)
	srv, err := natsembed.Start(natsembed.Options{StoreDir: e.dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	testutil.Eventually(t, 15*time.Second, "everyone to reconnect", func() bool {
		return e.nc.IsConnected() && s.nc.IsConnected() && a.nc.IsConnected()
	})
	settle(t, s, a) // a2 too: a round of it begun during the outage may linger
	if n := declared(s); n != 0 {
		t.Fatalf("s1 declared %d nodes dead just after an outage, want none", n)
	}
	if count, _ := e.reported(); len(count) != 0 {
		t.Fatalf("reported %v just after an outage, want nothing", count)
	}

	clkS.Advance(edgeDeadAfter)
	settle(t, s)
	if n := declared(s); n != 1 {
		t.Fatalf("s1 declared %d nodes dead DeadAfter after reconnecting, want a2", n)
	}
	count, _ := e.reported()
	for _, rec := range want {
		if count[rec.ConnectionID] != 1 {
			t.Errorf("%s reported %d times, want 1", rec.ConnectionID, count[rec.ConnectionID])
		}
	}
	testutil.Eventually(t, 15*time.Second, "a2 to say it was taken for dead", func() bool {
		return strings.Contains(logA.String(), "took this node for dead")
	})
	testutil.Eventually(t, 15*time.Second, "a2 to record itself again", func() bool { return e.hasKey(bucketNodes, "a2") })
	// Recorded again, a2 is a new life to s1: DeadAfter from now, not at once.
	settle(t, s)
	if n := declared(s); n != 1 {
		t.Errorf("s1 declared %d deaths, want a2's once", n)
	}
}

func TestRegistryQueue(t *testing.T) {
	open := connOp{rec: ConnRecord{Hub: "h", ConnectionID: "n.1"}, open: true}
	tried := open
	tried.tried = true
	closeOp := connOp{rec: ConnRecord{ConnectionID: "n.1"}}
	tests := []struct {
		name    string
		pending map[string]connOp // before
		do      func(r *Registry)
		want    map[string]connOp
	}{
		{"opened", nil, func(r *Registry) { r.Opened(open.rec) }, map[string]connOp{"n.1": open}},
		{"opened then closed: no write", nil, func(r *Registry) { r.Opened(open.rec); r.Closed("n.1") }, nil},
		{"closed after a put was tried", map[string]connOp{"n.1": tried}, func(r *Registry) { r.Closed("n.1") }, map[string]connOp{"n.1": closeOp}},
		{"closed after the put left the queue", nil, func(r *Registry) { r.Closed("n.1") }, map[string]connOp{"n.1": closeOp}},
		{"failed untried put, closed since", map[string]connOp{"n.1": closeOp}, func(r *Registry) { r.requeueLocked(open) }, nil},
		{"failed tried put, closed since", map[string]connOp{"n.1": closeOp}, func(r *Registry) { r.requeueLocked(tried) }, map[string]connOp{"n.1": closeOp}},
		{"failed put, nothing since", nil, func(r *Registry) { r.requeueLocked(tried) }, map[string]connOp{"n.1": tried}},
		{"failed delete", nil, func(r *Registry) { r.requeueLocked(closeOp) }, map[string]connOp{"n.1": closeOp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Registry{pending: make(map[string]connOp), wake: make(chan struct{}, 1)}
			for k, v := range tt.pending {
				r.pending[k] = v
			}
			tt.do(r)
			if len(r.pending) != len(tt.want) {
				t.Fatalf("pending %v, want %v", r.pending, tt.want)
			}
			for k, v := range tt.want {
				if r.pending[k] != v {
					t.Errorf("pending[%s] = %+v, want %+v", k, r.pending[k], v)
				}
			}
		})
	}
}
