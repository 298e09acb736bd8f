package delivery

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
)

type change struct{ from, to string }

func newTestBreaker(cfg BreakerConfig) (*breaker, *testutil.Clock, func() []change) {
	cfg.fill()
	clk := testutil.NewClock(time.Now())
	var mu sync.Mutex
	var changes []change
	b := newBreaker("fn", cfg, clk.Now, func(from, to, _ string) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, change{from, to})
	})
	return b, clk, func() []change {
		mu.Lock()
		defer mu.Unlock()
		return append([]change(nil), changes...)
	}
}

// run sends one request through b with outcome o, failing the test if b
// refuses it.
func run(t *testing.T, b *breaker, o outcome) {
	t.Helper()
	done, err := b.allow()
	if err != nil {
		t.Fatalf("allow: %v", err)
	}
	done(o)
}

func TestBreakerTrips(t *testing.T) {
	t.Parallel()
	S, F, I := outcomeSuccess, outcomeFailure, outcomeIgnored
	tests := []struct {
		name      string
		cfg       BreakerConfig
		outcomes  []outcome
		wantOpen  bool
		wantCause string
	}{
		{"consecutive failures", BreakerConfig{ConsecutiveFailures: 3}, []outcome{F, F, F}, true, "circuit is open after 3 consecutive failures; retrying in 10s"},
		{"a success resets the run", BreakerConfig{ConsecutiveFailures: 3}, []outcome{F, F, S, F, F}, false, ""},
		{"ignored outcomes do not count", BreakerConfig{ConsecutiveFailures: 3}, []outcome{F, I, I, F, I}, false, ""},
		{"ignored outcomes do not reset the run", BreakerConfig{ConsecutiveFailures: 3}, []outcome{F, I, F, I, I, F}, true, "after 3 consecutive failures"},
		{"ignored outcomes do not dilute the ratio", BreakerConfig{ConsecutiveFailures: 10, MinRequests: 4, FailureRatio: 0.5},
			[]outcome{S, S, F, I, I, I, I, F}, true, "after 2 failures in 4 requests"},
		{"ignored outcomes alone never open it", BreakerConfig{ConsecutiveFailures: 1, MinRequests: 1, FailureRatio: 0.01},
			[]outcome{I, I, I, I, I, I, I, I, I, I}, false, ""},
		{"failure ratio", BreakerConfig{ConsecutiveFailures: 10, MinRequests: 4, FailureRatio: 0.5}, []outcome{S, F, S, F}, true, "after 2 failures in 4 requests"},
		{"ratio needs the minimum sample", BreakerConfig{ConsecutiveFailures: 10, MinRequests: 5, FailureRatio: 0.5}, []outcome{S, F, S, F}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, _, _ := newTestBreaker(tt.cfg)
			for _, o := range tt.outcomes {
				run(t, b, o)
			}
			_, err := b.allow()
			if gotOpen := err != nil; gotOpen != tt.wantOpen {
				t.Fatalf("open = %v (%v), want %v", gotOpen, err, tt.wantOpen)
			}
			if tt.wantOpen {
				if !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), tt.wantCause) {
					t.Errorf("err = %q, want ErrCircuitOpen containing %q", err, tt.wantCause)
				}
				if !strings.HasPrefix(err.Error(), `upstream "fn" circuit is open`) {
					t.Errorf("err = %q, want it to name the upstream", err)
				}
			}
		})
	}
}

func TestBreakerHalfOpenProbe(t *testing.T) {
	t.Parallel()
	b, clk, changes := newTestBreaker(BreakerConfig{ConsecutiveFailures: 2, CoolDown: 10 * time.Second})
	run(t, b, outcomeFailure)
	run(t, b, outcomeFailure)
	if st := b.status(); st.State != BreakerOpen || st.RetryAt == nil {
		t.Fatalf("status = %+v, want open with a retry time", st)
	}

	clk.Advance(4 * time.Second)
	if _, err := b.allow(); err == nil || !strings.Contains(err.Error(), "retrying in 6s") {
		t.Fatalf("during cool-down: err = %v, want open, retrying in 6s", err)
	}
	if got := b.retryIn(); got != 6*time.Second {
		t.Errorf("retryIn = %v, want 6s", got)
	}

	// After the cool-down exactly one probe goes through.
	clk.Advance(6 * time.Second)
	probe, err := b.allow()
	if err != nil {
		t.Fatalf("probe refused: %v", err)
	}
	if _, err := b.allow(); !errors.Is(err, ErrCircuitOpen) || !strings.Contains(err.Error(), "half-open") {
		t.Fatalf("second request while probing: err = %v, want half-open refusal", err)
	}
	probe(outcomeFailure) // the probe fails: open again for a full cool-down
	if st := b.status(); st.State != BreakerOpen {
		t.Fatalf("after failed probe: %+v, want open", st)
	}
	clk.Advance(10 * time.Second)
	run(t, b, outcomeSuccess) // this probe succeeds
	if st := b.status(); st.State != BreakerClosed || st.ConsecutiveFailures != 0 {
		t.Fatalf("after good probe: %+v, want closed", st)
	}
	// Closed again, it counts from zero.
	run(t, b, outcomeFailure)
	run(t, b, outcomeSuccess)

	want := []change{{BreakerClosed, BreakerOpen}, {BreakerOpen, BreakerHalfOpen}, {BreakerHalfOpen, BreakerOpen},
		{BreakerOpen, BreakerHalfOpen}, {BreakerHalfOpen, BreakerClosed}}
	if got := changes(); !equalChanges(got, want) {
		t.Errorf("changes = %v, want %v", got, want)
	}
}

func TestBreakerReset(t *testing.T) {
	t.Parallel()
	b, _, _ := newTestBreaker(BreakerConfig{ConsecutiveFailures: 1})
	run(t, b, outcomeFailure)
	if _, err := b.allow(); err == nil {
		t.Fatal("want open")
	}
	b.reset()
	run(t, b, outcomeSuccess)
}

func equalChanges(a, b []change) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
