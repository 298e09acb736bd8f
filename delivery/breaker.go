package delivery

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// ErrCircuitOpen matches, under errors.Is, the error of a call refused
// because the upstream's circuit breaker is open.
var ErrCircuitOpen = errors.New("delivery: circuit open")

// BreakerConfig says when an upstream's circuit breaker opens and how long it
// stays open. The zero value works.
type BreakerConfig struct {
	// ConsecutiveFailures opens the breaker. Zero means 5.
	ConsecutiveFailures uint32
	// FailureRatio opens the breaker when at least MinRequests requests in
	// one Window failed in this proportion. Zero means 0.5.
	FailureRatio float64
	// MinRequests is the smallest sample FailureRatio applies to. Zero
	// means 20.
	MinRequests uint32
	// Window is the period over which the closed breaker counts. Zero means
	// 30 s.
	Window time.Duration
	// CoolDown is how long the breaker stays open before one probe request
	// is let through (half-open). Zero means 10 s.
	CoolDown time.Duration
}

func (c *BreakerConfig) fill() {
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = 5
	}
	if c.FailureRatio <= 0 {
		c.FailureRatio = 0.5
	}
	if c.MinRequests == 0 {
		c.MinRequests = 20
	}
	if c.Window <= 0 {
		c.Window = 30 * time.Second
	}
	if c.CoolDown <= 0 {
		c.CoolDown = 10 * time.Second
	}
}

// Breaker states as shown in the admin status.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// breaker is one upstream's circuit breaker. gobreaker counts requests and
// decides when a closed breaker trips; it reads time.Now for its own open
// period, so that period is set out of reach and the open and half-open
// states are kept here, timed by the dispatcher's clock, which tests control.
type breaker struct {
	name     string
	cfg      BreakerConfig
	now      func() time.Time
	onChange func(from, to string, why string)

	trip atomic.Value // gobreaker.Counts at the moment gobreaker tripped

	mu       sync.Mutex // guards the fields below
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	state    string
	until    time.Time // end of the open period
	cause    string    // why it opened, for the refusal message
	probing  bool      // a half-open probe is in flight
	failures int       // consecutive failures seen (status only)
}

func newBreaker(name string, cfg BreakerConfig, now func() time.Time, onChange func(from, to, why string)) *breaker {
	b := &breaker{name: name, cfg: cfg, now: now, onChange: onChange, state: BreakerClosed}
	b.cb = b.newCounter()
	return b
}

// newCounter returns a fresh closed gobreaker used only to count.
func (b *breaker) newCounter() *gobreaker.TwoStepCircuitBreaker[struct{}] {
	return gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:     b.name,
		Interval: b.cfg.Window,
		Timeout:  math.MaxInt64, // never half-opens by itself; see breaker
		// Ignored outcomes are excluded: neither a success (which would
		// reset the consecutive failures and dilute the ratio, letting a
		// stream of refused or abandoned calls hide a dead upstream) nor a
		// failure.
		IsExcluded: func(err error) bool { return err == errIgnored },
		ReadyToTrip: func(c gobreaker.Counts) bool {
			counted := c.Requests - min(c.TotalExclusions, c.Requests)
			trip := c.ConsecutiveFailures >= b.cfg.ConsecutiveFailures ||
				(counted >= b.cfg.MinRequests && float64(c.TotalFailures)/float64(counted) >= b.cfg.FailureRatio)
			if trip {
				b.trip.Store(c)
			}
			return trip
		},
	})
}

// outcome is what a request through the breaker ended as. Only upstream
// faults are failures: no connection, a timeout, a broken-off reply, 5xx,
// 408 and 503 (send.go). The caller's own doing (a request refused before
// it was made, a caller that left) and the admin's (a bad template or
// secret) are ignored, as are 429 and 410; any other answer is a success:
// the upstream is alive.
type outcome int

const (
	outcomeSuccess outcome = iota // the upstream is healthy
	outcomeFailure                // counts towards opening
	outcomeIgnored                // says nothing about the upstream's health
)

// allow asks to send one request. It returns done, to be called once with
// the request's outcome, or an error wrapping ErrCircuitOpen.
func (b *breaker) allow() (func(outcome), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var changed func()
	if b.state == BreakerOpen && !now.Before(b.until) {
		changed = b.setLocked(BreakerHalfOpen, "cool-down over; probing")
	}
	if changed != nil {
		defer changed()
	}
	switch b.state {
	case BreakerOpen:
		return nil, b.openErrorLocked(now)
	case BreakerHalfOpen:
		if b.probing {
			return nil, breakerError(fmt.Sprintf("upstream %q circuit is half-open (%s); a probe request is in flight", b.name, b.cause))
		}
		b.probing = true
		return b.probeDone, nil
	}
	cb := b.cb
	done, err := cb.Allow()
	if err != nil { // cannot happen: the counter's open state is mirrored here
		return nil, breakerError(fmt.Sprintf("upstream %q circuit is open", b.name))
	}
	return func(o outcome) { b.closedDone(cb, done, o) }, nil
}

// breakerError is a refusal by an open breaker. Its text holds only the
// upstream's name and failure counts, so the client is told the same.
func breakerError(msg string) error {
	return &deliveryError{msg: msg, client: msg, is: ErrCircuitOpen}
}

func (b *breaker) openErrorLocked(now time.Time) error {
	wait := b.until.Sub(now).Round(time.Second)
	if wait < time.Second {
		wait = time.Second
	}
	return breakerError(fmt.Sprintf("upstream %q circuit is open after %s; retrying in %s", b.name, b.cause, wait))
}

var (
	errCounted = errors.New("failed")
	errIgnored = errors.New("ignored") // excluded from the counts
)

func (b *breaker) closedDone(cb *gobreaker.TwoStepCircuitBreaker[struct{}], done func(error), o outcome) {
	switch o {
	case outcomeIgnored:
		done(errIgnored)
		return
	case outcomeSuccess:
		done(nil)
	default:
		done(errCounted)
	}
	b.mu.Lock()
	var changed func()
	if o == outcomeFailure {
		b.failures++
	} else {
		b.failures = 0
	}
	if b.cb == cb && b.state == BreakerClosed && cb.State() == gobreaker.StateOpen {
		c, _ := b.trip.Load().(gobreaker.Counts)
		cause := fmt.Sprintf("%d consecutive failures", c.ConsecutiveFailures)
		if c.ConsecutiveFailures < b.cfg.ConsecutiveFailures {
			cause = fmt.Sprintf("%d failures in %d requests", c.TotalFailures, c.Requests-min(c.TotalExclusions, c.Requests))
		}
		changed = b.openLocked(cause)
	}
	b.mu.Unlock()
	if changed != nil {
		changed()
	}
}

func (b *breaker) probeDone(o outcome) {
	b.mu.Lock()
	b.probing = false
	var changed func()
	switch o {
	case outcomeSuccess:
		b.failures = 0
		b.cb = b.newCounter()
		changed = b.setLocked(BreakerClosed, "probe succeeded")
	case outcomeFailure:
		b.failures++
		changed = b.openLocked(fmt.Sprintf("%d consecutive failures", b.failures))
	}
	b.mu.Unlock()
	if changed != nil {
		changed()
	}
}

func (b *breaker) openLocked(cause string) func() {
	b.cause = cause
	b.until = b.now().Add(b.cfg.CoolDown)
	return b.setLocked(BreakerOpen, cause)
}

// setLocked changes the state and returns the notification to run once the
// lock is released.
func (b *breaker) setLocked(to, why string) func() {
	from := b.state
	b.state = to
	if b.onChange == nil || from == to {
		return nil
	}
	return func() { b.onChange(from, to, why) }
}

// reset closes the breaker, as after an admin changed the upstream.
func (b *breaker) reset() {
	b.mu.Lock()
	b.failures, b.probing = 0, false
	b.cb = b.newCounter()
	changed := b.setLocked(BreakerClosed, "upstream reconfigured")
	b.mu.Unlock()
	if changed != nil {
		changed()
	}
}

// retryIn says how long until an open breaker lets a probe through; zero
// when it is not open.
func (b *breaker) retryIn() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != BreakerOpen {
		return 0
	}
	return max(b.until.Sub(b.now()), 0)
}

// BreakerStatus is a breaker's state for the admin status.
type BreakerStatus struct {
	State string `json:"state"`
	// ConsecutiveFailures since the last success.
	ConsecutiveFailures int `json:"consecutiveFailures"`
	// Cause says why it opened; empty while closed.
	Cause string `json:"cause,omitempty"`
	// RetryAt is when an open breaker lets a probe through.
	RetryAt *time.Time `json:"retryAt,omitempty"`
}

func (b *breaker) status() BreakerStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BreakerStatus{State: b.state, ConsecutiveFailures: b.failures}
	if b.state != BreakerClosed {
		s.Cause = b.cause
	}
	if b.state == BreakerOpen {
		t := b.until
		s.RetryAt = &t
	}
	return s
}
