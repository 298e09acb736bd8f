package delivery

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/upstream"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/store"
)

func openStore(t *testing.T) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return db, path
}

func lifecycle(conn string, n int) []*upstream.Event {
	evs := []*upstream.Event{{Hub: "chat", ConnectionID: conn, Event: upstream.EventConnected}}
	for i := range n {
		evs = append(evs, &upstream.Event{Hub: "chat", ConnectionID: conn, Event: upstream.EventDisconnected, Reason: strconv.Itoa(i)})
	}
	return evs
}

// fastRetry makes retries quick and keeps breakers out of the way.
var fastRetry = DispatcherConfig{MinRetry: time.Millisecond, MaxRetry: 5 * time.Millisecond,
	Breaker: BreakerConfig{ConsecutiveFailures: 1 << 20, MinRequests: 1 << 20}}

// checkOrder verifies that, de-duplicated by id, every connection's events
// arrived complete and in order, and that an id always names the same event.
func checkOrder(t *testing.T, hits []hit, want map[string][]string) {
	t.Helper()
	seen := map[string]string{}
	got := map[string][]string{}
	for _, x := range hits {
		key := x.ev.Event + "/" + x.ev.Reason
		if prev, ok := seen[x.id]; ok {
			if prev != key {
				t.Errorf("id %s named %s and then %s", x.id, prev, key)
			}
			continue
		}
		seen[x.id] = key
		got[x.ev.ConnectionID] = append(got[x.ev.ConnectionID], key)
	}
	for conn, w := range want {
		if !slices.Equal(got[conn], w) {
			t.Errorf("connection %s: got %v, want %v", conn, got[conn], w)
		}
	}
}

func wantKeys(evs []*upstream.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Event+"/"+ev.Reason)
	}
	return out
}

// TestOutboxRetriesInOrder: failures are retried with the same id, and a
// connection's events wait for their predecessor.
func TestOutboxRetriesInOrder(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	var mu sync.Mutex
	tries := map[string]int{}
	h.setRespond(func(_ int, x hit) (int, http.Header, string) {
		mu.Lock()
		defer mu.Unlock()
		tries[x.id]++
		if tries[x.id] <= 2 { // every event fails twice first
			return 503, nil, "busy"
		}
		return 204, nil, ""
	})
	db, _ := openStore(t)
	t.Cleanup(func() { db.Close() })
	cfg := fastRetry
	cfg.Store = db
	d := startDispatcher(t, cfg)
	d.SetTargets([]Target{h.target("chat", "fn")})
	want := map[string][]string{}
	var wg sync.WaitGroup
	for c := range 4 {
		conn := fmt.Sprintf("c%d", c)
		evs := lifecycle(conn, 3)
		want[conn] = wantKeys(evs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ev := range evs {
				d.Notify(context.Background(), ev)
			}
		}()
	}
	wg.Wait()
	testutil.Eventually(t, waitFor, "outbox drained", func() bool { return d.Status().Outbox.Depth == 0 })
	hits := h.all()
	if len(hits) != 16*3 {
		t.Errorf("got %d requests, want 48 (16 events, 3 attempts each)", len(hits))
	}
	checkOrder(t, hits, want)
	// Acknowledgements are deleted from disk by the committer, shortly after.
	testutil.Eventually(t, waitFor, "store emptied", func() bool {
		n := 0
		_ = db.OutboxLoad(func(uint64, []byte) error { n++; return nil })
		return n == 0
	})
	log, _ := d.DeliveryLog("chat", "fn")
	if len(log) == 0 || log[0].Status != 204 {
		t.Errorf("delivery log head = %+v", log[:1])
	}
}

// TestOutboxSurvivesRestart: what was not delivered before Close is
// replayed by the next dispatcher on the same store, with the same ids.
func TestOutboxSurvivesRestart(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	h.setRespond(func(int, hit) (int, http.Header, string) { return 500, nil, "" })
	db, _ := openStore(t)
	t.Cleanup(func() { db.Close() })
	cfg := fastRetry
	cfg.Store = db
	cfg.MinRetry, cfg.MaxRetry = time.Hour, time.Hour // one attempt, then wait
	cfg.Logger = testLogger(t)
	d1, err := NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d1.SetTargets([]Target{h.target("chat", "fn")})
	evs := append(lifecycle("a", 1), lifecycle("b", 2)...)
	for _, ev := range evs {
		d1.Notify(context.Background(), ev)
	}
	h.waitHits(2) // both connections' first events were tried
	if err := d1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := map[string]string{}
	for _, x := range h.all() {
		first[x.ev.ConnectionID] = x.id
	}

	h.setRespond(nil)
	cfg.MinRetry, cfg.MaxRetry = 0, 0
	d2 := startDispatcher(t, cfg)
	if st := d2.Status().Outbox; st.Depth != len(evs) {
		t.Fatalf("replayed depth = %d, want %d", st.Depth, len(evs))
	}
	d2.SetTargets([]Target{h.target("chat", "fn")})
	testutil.Eventually(t, waitFor, "replay delivered", func() bool { return d2.Status().Outbox.Depth == 0 })
	checkOrder(t, h.all(), map[string][]string{"a": wantKeys(evs[:2]), "b": wantKeys(evs[2:])})
	for _, x := range h.all()[2:] {
		if id, ok := first[x.ev.ConnectionID]; ok && x.ev.Event == upstream.EventConnected && x.id != id {
			t.Errorf("replayed %s/%s has id %s, want the original %s", x.ev.ConnectionID, x.ev.Event, x.id, id)
		}
	}
}

func TestOutboxRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	h.setRespond(func(n int, _ hit) (int, http.Header, string) {
		if n == 1 {
			return 429, http.Header{"Retry-After": {"1"}}, ""
		}
		return 204, nil, ""
	})
	d := startDispatcher(t, fastRetry)
	d.SetTargets([]Target{h.target("chat", "fn")})
	d.Notify(context.Background(), &upstream.Event{Hub: "chat", ConnectionID: "c", Event: upstream.EventConnected})
	hits := h.waitHits(2)
	if gap := hits[1].at.Sub(hits[0].at); gap < time.Second {
		t.Errorf("retried after %v, want at least the 1s of Retry-After (backoff alone is 5ms)", gap)
	}
	if hits[0].id != hits[1].id {
		t.Errorf("ids %s and %s differ across a retry", hits[0].id, hits[1].id)
	}
	// The log entry follows the answer.
	testutil.Eventually(t, waitFor, "second log entry", func() bool { log, _ := d.DeliveryLog("chat", "fn"); return len(log) == 2 })
	log, _ := d.DeliveryLog("chat", "fn")
	if len(log) != 2 || log[1].Status != 429 || !strings.Contains(log[1].Error, "retry after 1s") || log[0].Attempt != 2 {
		t.Errorf("delivery log = %+v", log)
	}
}

// TestOutboxGoneDisables: 410 disables the upstream (persisted through
// OnDisable); its events wait, and flow again once it is enabled.
func TestOutboxGoneDisables(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	h.setRespond(func(n int, _ hit) (int, http.Header, string) {
		if n == 1 {
			return 410, nil, ""
		}
		return 204, nil, ""
	})
	disabled := make(chan string, 1)
	cfg := fastRetry
	cfg.OnDisable = func(hub, name, reason string) { disabled <- hub + "/" + name + ": " + reason }
	d := startDispatcher(t, cfg)
	tg := h.target("chat", "fn")
	tg.Filter, _ = ParseFilter(nil)
	d.SetTargets([]Target{tg})
	d.Notify(context.Background(), &upstream.Event{Hub: "chat", ConnectionID: "c", Event: upstream.EventConnected})
	select {
	case r := <-disabled:
		if !strings.HasPrefix(r, "chat/fn: ") || !strings.Contains(r, "410 Gone") {
			t.Errorf("OnDisable got %q", r)
		}
	case <-time.After(waitFor):
		t.Fatal("OnDisable not called")
	}
	d.Notify(context.Background(), &upstream.Event{Hub: "chat", ConnectionID: "c", Event: upstream.EventDisconnected})
	st := d.Status().Upstreams[0]
	if !st.Disabled || !strings.Contains(st.DisabledReason, "410") || st.Outbox != 2 {
		t.Errorf("status = %+v, want disabled with 2 waiting", st)
	}
	if _, err := d.Call(context.Background(), message("c", "x")); err == nil || !strings.Contains(err.Error(), `upstream "fn" is disabled`) {
		t.Errorf("call to a disabled upstream: %v", err)
	}

	d.SetTargets([]Target{tg}) // saved again: enabled
	testutil.Eventually(t, waitFor, "delivery after enabling", func() bool { return d.Status().Outbox.Depth == 0 })
	hits := h.all()
	if len(hits) != 3 || hits[1].id != hits[0].id || hits[2].ev.Event != upstream.EventDisconnected {
		t.Errorf("requests = %d (%+v), want the 410'd event again, then the next, nothing while disabled", len(hits), hits)
	}
}

// heldDispatcher starts a dispatcher with cfg whose one upstream, fn of
// hub chat, is disabled, so every notification waits in the outbox until
// the test enables it again.
func heldDispatcher(t *testing.T, cfg DispatcherConfig) (*hook, *Dispatcher, Target) {
	t.Helper()
	h := newHook(t)
	d := startDispatcher(t, cfg)
	tg := h.target("chat", "fn")
	tg.Disabled = true
	d.SetTargets([]Target{tg})
	return h, d, tg
}

func TestOutboxLimitDropsOldest(t *testing.T) {
	t.Parallel()
	cfg := fastRetry
	cfg.OutboxLimit = 3
	h, d, tg := heldDispatcher(t, cfg)
	evs := lifecycle("c", 4)
	for _, ev := range evs {
		d.Notify(context.Background(), ev)
	}
	if st := d.Status().Outbox; st.Depth != 3 || st.Dropped != 2 || st.Limit != 3 {
		t.Fatalf("outbox = %+v, want depth 3, dropped 2", st)
	}
	tg.Disabled = false
	d.SetTargets([]Target{tg})
	testutil.Eventually(t, waitFor, "drained", func() bool { return d.Status().Outbox.Depth == 0 })
	checkOrder(t, h.all(), map[string][]string{"c": wantKeys(evs[2:])})
}

// TestOutboxLimitBytesDropsOldest: events carry their client's query,
// headers and claims, so the outbox is bounded in bytes as well as in
// count. Events of 8 KiB each against a 20 KiB budget: the newest that fit
// stay, the oldest are dropped and counted, and what stays is delivered in
// order once the upstream takes it.
func TestOutboxLimitBytesDropsOldest(t *testing.T) {
	t.Parallel()
	cfg := fastRetry
	cfg.OutboxLimitBytes = 20 << 10
	h, d, tg := heldDispatcher(t, cfg)
	evs := lifecycle("c", 9)
	for _, ev := range evs {
		ev.Client.Query = "pad=" + strings.Repeat("q", 8<<10)
		d.Notify(context.Background(), ev)
	}
	st := d.Status().Outbox
	if st.Bytes > st.LimitBytes || st.LimitBytes != 20<<10 || st.Depth != 2 || st.Dropped != int64(len(evs)-2) {
		t.Fatalf("outbox = %+v, want the 2 newest within 20 KiB and the rest dropped", st)
	}
	tg.Disabled = false
	d.SetTargets([]Target{tg})
	testutil.Eventually(t, waitFor, "drained", func() bool { return d.Status().Outbox.Depth == 0 })
	checkOrder(t, h.all(), map[string][]string{"c": wantKeys(evs[len(evs)-2:])})
	if st := d.Status().Outbox; st.Bytes != 0 {
		t.Errorf("%d bytes counted with the outbox empty", st.Bytes)
	}
}

func TestOutboxExpires(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	h.setRespond(func(int, hit) (int, http.Header, string) { return 500, nil, "" })
	clk := testutil.NewClock(time.Now())
	cfg := fastRetry
	cfg.Now, cfg.OutboxTTL = clk.Now, time.Hour
	d := startDispatcher(t, cfg)
	d.SetTargets([]Target{h.target("chat", "fn")})
	d.Notify(context.Background(), &upstream.Event{Hub: "chat", ConnectionID: "c", Event: upstream.EventConnected})
	h.waitHits(2)
	clk.Advance(time.Hour + time.Second)
	testutil.Eventually(t, waitFor, "expiry", func() bool { return d.Status().Outbox.Expired == 1 })
	if st := d.Status().Outbox; st.Depth != 0 {
		t.Errorf("outbox = %+v, want empty", st)
	}
}

// TestOutboxPausesWhileBreakerOpen: outbox failures open the breaker, which
// stops delivery; a successful probe (here by a blocking call) resumes it.
func TestOutboxPausesWhileBreakerOpen(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	h.setRespond(func(_ int, x hit) (int, http.Header, string) {
		if x.ev.Event == upstream.EventMessage {
			return 204, nil, ""
		}
		return 500, nil, ""
	})
	clk := testutil.NewClock(time.Now())
	cfg := fastRetry
	cfg.Now = clk.Now
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 3, CoolDown: time.Hour}
	d := startDispatcher(t, cfg)
	d.SetTargets([]Target{h.target("chat", "fn")})
	for _, ev := range lifecycle("c", 1) {
		d.Notify(context.Background(), ev)
	}
	testutil.Eventually(t, waitFor, "breaker open", func() bool { return d.Status().Upstreams[0].Breaker.State == BreakerOpen })
	if n := len(h.all()); n != 3 {
		t.Errorf("got %d requests before the breaker opened, want 3", n)
	}
	h.setRespond(nil)
	if _, err := d.Call(context.Background(), message("c", "x")); !errorsIsOpen(err) {
		t.Fatalf("call while open: %v", err)
	}
	clk.Advance(time.Hour)
	// The probe is the first request after the cool-down: this call, or
	// the outbox's retry when that comes first (the call is then refused
	// while the probe is in flight). Either one, answered, closes the
	// breaker.
	testutil.Eventually(t, waitFor, "a call to pass after the probe", func() bool {
		_, err := d.Call(context.Background(), message("c", "x"))
		return err == nil
	})
	testutil.Eventually(t, waitFor, "outbox resumed", func() bool { return d.Status().Outbox.Depth == 0 })
	notes := slices.DeleteFunc(h.all(), func(x hit) bool { return x.ev.Event == upstream.EventMessage })
	checkOrder(t, notes, map[string][]string{"c": wantKeys(lifecycle("c", 1))})
}

func errorsIsOpen(err error) bool {
	return err != nil && strings.Contains(err.Error(), "circuit is open")
}

func TestOutboxRepliesGoToOnReply(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	h.setRespond(func(int, hit) (int, http.Header, string) {
		return 200, http.Header{"Content-Type": {"application/json"}}, `{"actions":[{"action":"addToGroup","group":"lobby"}]}`
	})
	got := make(chan string, 1)
	cfg := fastRetry
	cfg.OnReply = func(_ context.Context, ev *upstream.Event, r *upstream.Reply) {
		got <- ev.ConnectionID + " " + r.Actions[0].Action + " " + r.Actions[0].Group
	}
	d := startDispatcher(t, cfg)
	d.SetTargets([]Target{h.target("chat", "fn")})
	d.Notify(context.Background(), &upstream.Event{Hub: "chat", ConnectionID: "c7", Event: upstream.EventConnected})
	select {
	case s := <-got:
		if s != "c7 "+actions.AddToGroup+" lobby" {
			t.Errorf("OnReply got %q", s)
		}
	case <-time.After(waitFor):
		t.Fatal("OnReply not called")
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"Sun, 01 Jun 2025 12:00:30 GMT", 30 * time.Second, true},
		{"Sunday, 01-Jun-25 12:01:00 GMT", time.Minute, true}, // RFC 850
		{"Sun, 01 Jun 2025 11:00:00 GMT", 0, true},            // in the past
		{"99999999999999999999999", 24 * time.Hour, true},     // capped
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "Sun, 01 Jun 2025 12:00:30 GMT", "Sunday, 01-Jun-25 12:01:00 GMT",
		"Sun Jun  1 12:00:30 2025", "-1", "18446744073709551616", ""} {
		f.Add(s)
	}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("parseRetryAfter(%q) = %v, outside [0, 24h]", s, d)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %v with ok false", s, d)
		}
	})
}
