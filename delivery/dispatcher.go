package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/internal/tracing"
	"github.com/switchboard-gw/switchboard/upstream"
)

// DispatcherConfig configures a Dispatcher. The zero value works.
type DispatcherConfig struct {
	// Client sends the requests and the registration checks. Nil means a
	// client that never follows redirects (a redirect is reported as an
	// error: the signature was made for the registered URL) and dials only
	// the addresses Addresses allows. A Client given here is used as it is:
	// Addresses then applies at registration only.
	Client *http.Client
	// TLS is how the dispatcher's own client (Client nil) verifies HTTPS
	// upstreams and the certificate it presents to them. The zero value
	// trusts the system's roots and presents none.
	TLS UpstreamTLS
	// Addresses is the upstream address policy, applied at registration
	// (CheckAddress) and on every dial. The zero value refuses link-local
	// and metadata addresses (BuiltinDenied) and allows the rest.
	Addresses AddressPolicy
	// MaxReplySize caps a reply body. Zero means 1 MiB.
	MaxReplySize int64
	// MaxReplyActions is the most actions one reply may carry; a reply
	// with more is refused whole, and an invoking client's completion
	// error says so. Zero means actions.DefaultMaxActions (100).
	MaxReplyActions int
	// Workers deliver outbox notifications concurrently; events of one
	// connection to one upstream are always delivered one after the other.
	// Zero means 16.
	Workers int
	// Store keeps the outbox durable; *store.DB implements it. Nil keeps it
	// in memory only (lost on restart).
	Store OutboxStore
	// OutboxLimit bounds the number of undelivered notifications (one per
	// event and upstream); past it the oldest are dropped and counted. Zero
	// means 100 000.
	OutboxLimit int
	// OutboxLimitBytes bounds the undelivered notifications' encoded
	// events, summed; past it the oldest are dropped as past OutboxLimit.
	// An event carries its client's query, headers and claims, so the count
	// alone let a held outbox grow to gigabytes. Zero means 256 MiB.
	OutboxLimitBytes int64
	// OutboxTTL is how long a notification is retried. Zero means 24 h.
	OutboxTTL time.Duration
	// MinRetry and MaxRetry bound the exponential backoff between attempts
	// to deliver a notification (with jitter). Zero means 1 s and 5 min.
	MinRetry, MaxRetry time.Duration
	// Breaker configures every upstream's circuit breaker.
	Breaker BreakerConfig
	// LogSize is how many deliveries each upstream's delivery log keeps.
	// Zero means 100.
	LogSize int
	// Origin is sent as WebHook-Request-Origin with every delivery and the
	// registration check. Empty means "switchboard".
	Origin string
	// OnReply runs the actions of a notification's reply (connected,
	// disconnected). Nil ignores them. It is called from a delivery
	// goroutine, before the next event of the same connection is sent,
	// with a context carrying the notification's trace context.
	OnReply func(ctx context.Context, ev *upstream.Event, r *upstream.Reply)
	// OnDisable persists that an upstream answered 410 Gone and is now
	// disabled. Nil keeps it in memory only.
	OnDisable func(hub, name, reason string)
	// OnAttempt, when set, is told of every webhook call and notification
	// attempt as it ends, for metrics. It runs on the delivering goroutine
	// and must not block.
	OnAttempt func(Attempt)
	// TracerProvider makes a client span for every webhook attempt (see
	// trace.go). Nil means none; the trace context of the caller is still
	// sent in traceparent.
	TracerProvider trace.TracerProvider
	// Logger receives delivery failures and breaker changes. Nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock for ce-time, webhook-timestamp, breakers and the
	// outbox TTL. Nil means time.Now.
	Now func() time.Time
}

// ErrUpstream matches every delivery failure under errors.Is.
var ErrUpstream = errors.New("delivery: delivery failed")

// deliveryError is a delivery failure. Its text names the upstream and the
// cause in full, for the gateway log and the delivery log; ClientMessage is
// the short form the client is told (a rejected connect, a completion
// error), without addresses, transport errors or the upstream's answer
// body. is, when set, is a second sentinel it matches (ErrCircuitOpen).
type deliveryError struct {
	msg    string
	client string
	is     error
}

func (e *deliveryError) Error() string { return e.msg }

// ClientMessage is what the client may be told about the failure.
func (e *deliveryError) ClientMessage() string { return e.client }

func (e *deliveryError) Is(target error) bool {
	return target == ErrUpstream || (e.is != nil && target == e.is)
}

// failure is a delivery error whose text is safe to show the client as is.
func failure(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &deliveryError{msg: msg, client: msg}
}

// failureDetail is a delivery error whose detail stays in the logs; the
// client is told only client.
func failureDetail(client, format string, args ...any) error {
	return &deliveryError{msg: fmt.Sprintf(format, args...), client: client}
}

// Dispatcher sends events to the upstreams registered for their hub:
// blocking events at once (Call), notifications through the durable outbox
// (Notify). It implements the gateway's Webhooks interface. Safe for
// concurrent use.
type Dispatcher struct {
	cfg    DispatcherConfig
	log    *slog.Logger
	routes atomic.Pointer[map[string][]route] // hub → upstreams in registration order
	ob     outbox
	tracer trace.Tracer // nil when DispatcherConfig.TracerProvider is
	tokens tokenCache   // OAuth tokens of the upstreams that need one
	// netHTTP is cfg.Client's Do or its transport's RoundTrip (see
	// NewDispatcher), for webhooks when fast is nil.
	netHTTP func(*http.Request) (*http.Response, error)
	// fast is the webhook client when the dispatcher uses its own and no
	// proxy is configured; nil otherwise.
	fast *fastTransport
}

// route is an upstream as registered, with its live state.
type route struct {
	t Target
	l *lane
}

// NewDispatcher replays the outbox from cfg.Store and starts the delivery
// workers; replayed events wait for SetTargets to name their upstreams.
// Close stops it.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	ownClient := cfg.Client == nil
	if ownClient {
		// Upstreams are few hosts taking many concurrent calls: keep enough
		// idle connections per host that a burst of invocations reuses them
		// instead of dialling (net/http keeps 2 by default).
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// DefaultTransport's dialer settings, with the address policy
		// checked on every connection it makes.
		tr.DialContext = cfg.Addresses.DialContext(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second})
		tr.MaxIdleConns = 1024
		tr.MaxIdleConnsPerHost = 256
		tr.MaxResponseHeaderBytes = maxReplyHeaderBytes // as fastTransport's
		cfg.Client = &http.Client{
			Transport:     cfg.TLS.transport(tr),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.MaxReplySize <= 0 {
		cfg.MaxReplySize = 1 << 20
	}
	if cfg.MaxReplyActions <= 0 {
		cfg.MaxReplyActions = actions.DefaultMaxActions
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Store == nil {
		cfg.Store = &memoryOutbox{}
	}
	if cfg.OutboxLimit <= 0 {
		cfg.OutboxLimit = 100_000
	}
	if cfg.OutboxLimitBytes <= 0 {
		cfg.OutboxLimitBytes = 256 << 20
	}
	if cfg.OutboxTTL <= 0 {
		cfg.OutboxTTL = 24 * time.Hour
	}
	if cfg.MinRetry <= 0 {
		cfg.MinRetry = time.Second
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = 5 * time.Minute
	}
	cfg.MaxRetry = max(cfg.MaxRetry, cfg.MinRetry)
	cfg.Breaker.fill()
	if cfg.LogSize <= 0 {
		cfg.LogSize = 100
	}
	if cfg.Origin == "" {
		cfg.Origin = "switchboard"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, tracer: tracing.Tracer(cfg.TracerProvider, tracerName)}
	d.netHTTP = cfg.Client.Do
	if cfg.Client.Jar == nil && cfg.Client.Timeout == 0 {
		// Webhooks follow no redirects, keep no cookies and bound each call
		// with its own context, so nothing of http.Client applies: the
		// request goes straight to the transport. Client.Do would clone
		// every request's headers for redirects it never follows (5 of a
		// call's allocations).
		rt := cfg.Client.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		d.netHTTP = rt.RoundTrip
	}
	if ownClient && !useProxy() {
		// Webhooks go out through fasthttp (see fastTransport); the
		// net/http client above still fetches OAuth tokens and carries
		// webhooks when a proxy is configured.
		d.fast = newFastTransport(&cfg.Addresses, cfg.TLS, cfg.MaxReplySize)
	}
	empty := map[string][]route{}
	d.routes.Store(&empty)
	if err := d.ob.start(d); err != nil {
		return nil, err
	}
	return d, nil
}

// SetTargets replaces the registered upstreams of every hub. An upstream
// whose settings changed gets a fresh circuit breaker; one no longer listed
// loses its undelivered notifications.
func (d *Dispatcher) SetTargets(ts []Target) {
	m := make(map[string][]route)
	resets := d.ob.setTargets(ts, func(t Target, l *lane) { m[t.Hub] = append(m[t.Hub], route{t: t, l: l}) })
	d.routes.Store(&m)
	for _, b := range resets {
		b.reset()
	}
}

// Wants reports whether any upstream of hub receives event.
func (d *Dispatcher) Wants(hub, event, target string) bool {
	for _, r := range (*d.routes.Load())[hub] {
		if r.t.match(event, target) {
			return true
		}
	}
	return false
}

// Call delivers a blocking event (connect or message) to the first upstream
// of the hub whose filter matches, as Azure SignalR does, and returns its
// reply (nil when empty). For connect, a 401 or 403 answer is a reply whose
// Error is the rejection reason.
//
// The request is never repeated once it may have reached the handler; it is
// tried a second time only when the first could not connect at all. An open
// circuit breaker or a disabled upstream fails the call at once.
func (d *Dispatcher) Call(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
	for _, r := range (*d.routes.Load())[ev.Hub] {
		if r.t.match(ev.Event, ev.Target) {
			return d.call(ctx, r, ev)
		}
	}
	return nil, failure("no upstream of hub %q receives %s events", ev.Hub, ev.Event)
}

func (d *Dispatcher) call(ctx context.Context, r route, ev *upstream.Event) (*upstream.Reply, error) {
	id := newEventID()
	// An event that cannot become a request is the caller's error, told
	// as such even while the breaker is open, and never asks the breaker.
	rq, err := prepare(r.t, ev)
	if err != nil {
		res := refusal(r.t, err)
		d.observeRefused(r, ev.Event, OutcomeNotSent)
		r.l.log.add(Delivery{Time: d.cfg.Now(), ID: id, Event: ev.Event, Target: ev.Target, ConnectionID: ev.ConnectionID, Attempt: 1, Error: res.err.Error()})
		return nil, res.err
	}
	if reason := r.l.disabledReason(); reason != "" {
		err := failureDetail(fmt.Sprintf("upstream %q is disabled", r.t.Name), "upstream %q is disabled: %s", r.t.Name, reason)
		d.observeRefused(r, ev.Event, OutcomeBreakerOpen)
		r.l.log.add(Delivery{Time: d.cfg.Now(), ID: id, Event: ev.Event, Target: ev.Target, ConnectionID: ev.ConnectionID, Attempt: 1, Error: err.Error()})
		return nil, err
	}
	done, err := r.l.br.allow()
	if err != nil {
		d.observeRefused(r, ev.Event, OutcomeBreakerOpen)
		r.l.log.add(Delivery{Time: d.cfg.Now(), ID: id, Event: ev.Event, Target: ev.Target, ConnectionID: ev.ConnectionID, Attempt: 1, Error: err.Error()})
		return nil, err
	}
	body, err := encodeEvent(ev)
	if err != nil {
		done(outcomeIgnored)
		return nil, err
	}
	res := d.sendPrepared(ctx, r, ev, &rq, body, id, 1)
	if !res.sent && !res.refused && res.err != nil && ctx.Err() == nil {
		// Nothing reached the handler (the dial failed), so trying again
		// cannot invoke it twice.
		res = d.sendPrepared(ctx, r, ev, &rq, body, id, 2)
	}
	done(res.outcome)
	if res.gone {
		d.disable(r.l, res.err.Error())
	}
	if res.err != nil && ctx.Err() == nil {
		d.logFailedCall(r, ev, res.err)
	}
	return res.reply, res.err
}

// Notify makes a notification (connected, disconnected) durable in the
// outbox for every matching upstream and returns once it is stored; it is
// delivered later, in order per connection and upstream, and retried until
// OutboxTTL. The actions of each reply go to DispatcherConfig.OnReply.
// The trace context of ctx is stored with the notification, so its
// webhooks continue the trace of its cause even after a restart; ctx's
// cancellation does not matter.
func (d *Dispatcher) Notify(ctx context.Context, ev *upstream.Event) {
	var targets []route
	azureTaken := false // upstreams of the Azure profile: the first match only, as in Azure
	for _, r := range (*d.routes.Load())[ev.Hub] {
		if (r.t.Azure == nil || !azureTaken) && r.t.match(ev.Event, "") {
			targets = append(targets, r)
			azureTaken = azureTaken || r.t.Azure != nil
		}
	}
	if len(targets) == 0 {
		return
	}
	d.ob.add(ctx, ev, targets)
}

// Status is the dispatcher's live state for the admin API.
type Status struct {
	Outbox    OutboxStatus     `json:"outbox"`
	Upstreams []UpstreamStatus `json:"upstreams"`
}

// OutboxStatus counts the outbox's notifications.
type OutboxStatus struct {
	// Depth is the number of undelivered notifications.
	Depth int `json:"depth"`
	Limit int `json:"limit"`
	// Bytes is the undelivered notifications' size as LimitBytes counts it.
	Bytes      int64 `json:"bytes"`
	LimitBytes int64 `json:"limitBytes"`
	// Dropped counts notifications dropped because the outbox was full or
	// their upstream was removed; Expired those that passed OutboxTTL.
	Dropped int64 `json:"dropped"`
	Expired int64 `json:"expired"`
	// Oldest is when the oldest undelivered notification was queued; zero
	// when the outbox is empty.
	Oldest time.Time `json:"oldest,omitzero"`
}

// UpstreamStatus is one upstream's delivery state.
type UpstreamStatus struct {
	Hub     string        `json:"hub"`
	Name    string        `json:"name"`
	Breaker BreakerStatus `json:"breaker"`
	// Outbox is the number of its undelivered notifications.
	Outbox         int    `json:"outbox"`
	Disabled       bool   `json:"disabled"`
	DisabledReason string `json:"disabledReason,omitempty"`
}

// Status returns the outbox counters and every registered upstream's state,
// sorted by hub and name.
func (d *Dispatcher) Status() Status {
	st := d.ob.status()
	var ups []UpstreamStatus
	for _, rs := range *d.routes.Load() {
		for _, r := range rs {
			reason := r.l.disabledReason()
			ups = append(ups, UpstreamStatus{Hub: r.t.Hub, Name: r.t.Name, Breaker: r.l.br.status(),
				Outbox: d.ob.laneDepth(r.l), Disabled: reason != "", DisabledReason: reason})
		}
	}
	slices.SortFunc(ups, func(a, b UpstreamStatus) int {
		if a.Hub != b.Hub {
			return strings.Compare(a.Hub, b.Hub)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return Status{Outbox: st, Upstreams: ups}
}

// DeliveryLog returns the latest deliveries to the hub's upstream called
// name, newest first; ok is false when no such upstream is registered.
func (d *Dispatcher) DeliveryLog(hub, name string) (log []Delivery, ok bool) {
	for _, r := range (*d.routes.Load())[hub] {
		if r.t.Name == name {
			return r.l.log.entries(), true
		}
	}
	return nil, false
}

// Close delivers what can be delivered now (notifications not waiting for a
// retry or an open breaker) until ctx ends, then stops the workers and
// closes the idle upstream connections. What is left stays in the store
// for the next start.
func (d *Dispatcher) Close(ctx context.Context) error {
	err := d.ob.close(ctx)
	if d.fast != nil {
		// fasthttp closes idle connections only after MaxIdleConnDuration.
		d.fast.c.CloseIdleConnections()
	}
	return err
}

// disable marks l disabled after a 410 Gone and persists it.
func (d *Dispatcher) disable(l *lane, cause string) {
	reason := fmt.Sprintf("%s (at %s); save the upstream again (PUT) to enable it", cause, d.cfg.Now().UTC().Format(time.RFC3339))
	if !l.setDisabled(reason) {
		return
	}
	d.log.Warn("upstream disabled", "hub", l.hub, "upstream", l.name, "reason", reason)
	if d.cfg.OnDisable != nil {
		d.cfg.OnDisable(l.hub, l.name, reason)
	}
}

func newEventID() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand never fails: it crashes the program instead (Go 1.24+)
	return "evt_" + hex.EncodeToString(b[:])
}
