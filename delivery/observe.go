package delivery

import (
	"time"

	"github.com/switchboard-gw/switchboard/upstream"
)

// Attempt is one webhook call as DispatcherConfig.OnAttempt sees it, for
// metrics: every value is bounded (admin-defined hub and upstream names,
// the event's kind, a fixed outcome), so it can label a time series.
type Attempt struct {
	Hub, Upstream string
	// Event is connect, connected, message or disconnected: never the
	// invocation target, which clients choose.
	Event string
	// Outcome is one of the Outcome constants.
	Outcome string
	// Latency is from sending to the end of the answer; zero for a call
	// never sent (OutcomeNotSent, OutcomeBreakerOpen).
	Latency time.Duration
}

// Outcomes of an Attempt.
const (
	// OutcomeOK: the upstream answered with a reply the gateway accepted
	// (for connect, a rejection with 401 or 403 too).
	OutcomeOK = "ok"
	// OutcomeError: the call reached the upstream, or may have, and failed:
	// an error status, a timeout, a broken or invalid reply.
	OutcomeError = "error"
	// OutcomeNotSent: no request reached the handler: the connection could
	// not be made, the address policy refused it, or the event could not
	// become a request.
	OutcomeNotSent = "not_sent"
	// OutcomeBreakerOpen: the upstream's circuit breaker failed the call
	// at once (or it is disabled after a 410 Gone).
	OutcomeBreakerOpen = "breaker_open"
)

// observe hands one attempt to OnAttempt.
func (d *Dispatcher) observe(r route, event string, res result, latency time.Duration) {
	if d.cfg.OnAttempt == nil {
		return
	}
	a := Attempt{Hub: r.t.Hub, Upstream: r.t.Name, Event: event, Latency: latency}
	switch {
	case res.err == nil:
		a.Outcome = OutcomeOK
	case !res.sent:
		a.Outcome = OutcomeNotSent
	default:
		a.Outcome = OutcomeError
	}
	d.cfg.OnAttempt(a)
}

// observeRefused hands OnAttempt a call that failed before any request.
func (d *Dispatcher) observeRefused(r route, event, outcome string) {
	if d.cfg.OnAttempt != nil {
		d.cfg.OnAttempt(Attempt{Hub: r.t.Hub, Upstream: r.t.Name, Event: event, Outcome: outcome})
	}
}

// logFailedCall writes the one line a failed synchronous call (connect,
// message) gets. Calls an open breaker fails at once are not logged: the
// breaker's opening was, and the metrics count them.
func (d *Dispatcher) logFailedCall(r route, ev *upstream.Event, err error) {
	attrs := []any{"hub", ev.Hub, "upstream", r.t.Name, "conn", ev.ConnectionID, "event", ev.Event}
	if ev.Target != "" {
		attrs = append(attrs, "target", ev.Target)
	}
	d.log.Warn("webhook call failed", append(attrs, "err", err)...)
}
