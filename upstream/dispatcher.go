package upstream

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DispatcherConfig configures a Dispatcher. The zero value works.
type DispatcherConfig struct {
	// Client sends the requests. Nil means a client that never follows
	// redirects (a redirect is reported as an error: the signature was made
	// for the registered URL).
	Client *http.Client
	// MaxReplySize caps a reply body. Zero means 1 MiB.
	MaxReplySize int64
	// Workers deliver notifications; events of one connection always go to
	// the same worker, so they arrive in order. Zero means 8.
	Workers int
	// QueueSize bounds each worker's queue; a notification that finds it full
	// is dropped and counted. Zero means 4096.
	QueueSize int
	// Logger receives delivery failures. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock used for ce-time and webhook-timestamp. Nil means
	// time.Now.
	Now func() time.Time
}

// ErrUpstream matches every delivery failure under errors.Is.
var ErrUpstream = errors.New("upstream: delivery failed")

// deliveryError is a delivery failure whose text is meant for the caller's
// completion error: it names the upstream and the cause, without a package
// prefix.
type deliveryError struct{ msg string }

func (e *deliveryError) Error() string        { return e.msg }
func (e *deliveryError) Is(target error) bool { return target == ErrUpstream }

func failure(format string, args ...any) error {
	return &deliveryError{msg: fmt.Sprintf(format, args...)}
}

// Dispatcher sends events to the upstreams registered for their hub. It
// implements the gateway's Webhooks interface. Safe for concurrent use.
type Dispatcher struct {
	cfg     DispatcherConfig
	log     *slog.Logger
	targets atomic.Pointer[map[string][]Target] // hub → upstreams in registration order
	queues  []chan notification
	seed    maphash.Seed
	wg      sync.WaitGroup
	dropped atomic.Int64

	closeOnce sync.Once
}

type notification struct {
	ev   *Event
	then func(*Reply)
}

// NewDispatcher starts a dispatcher's notification workers. Close stops them.
func NewDispatcher(cfg DispatcherConfig) *Dispatcher {
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.MaxReplySize <= 0 {
		cfg.MaxReplySize = 1 << 20
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, seed: maphash.MakeSeed()}
	empty := map[string][]Target{}
	d.targets.Store(&empty)
	d.queues = make([]chan notification, cfg.Workers)
	for i := range d.queues {
		d.queues[i] = make(chan notification, cfg.QueueSize)
		d.wg.Add(1)
		go d.work(d.queues[i])
	}
	return d
}

// SetTargets replaces the registered upstreams of every hub.
func (d *Dispatcher) SetTargets(ts []Target) {
	m := make(map[string][]Target)
	for _, t := range ts {
		m[t.Hub] = append(m[t.Hub], t)
	}
	d.targets.Store(&m)
}

// Wants reports whether any upstream of hub receives event.
func (d *Dispatcher) Wants(hub, event, target string) bool {
	for _, t := range (*d.targets.Load())[hub] {
		if t.Filter.Match(event, target) {
			return true
		}
	}
	return false
}

// Call delivers a blocking event (connect or message) to the first upstream
// of the hub whose filter matches, as Azure SignalR does, and returns its
// reply (nil when empty). For connect, a 401 or 403 answer is a reply whose
// Error is the rejection reason.
func (d *Dispatcher) Call(ctx context.Context, ev *Event) (*Reply, error) {
	for _, t := range (*d.targets.Load())[ev.Hub] {
		if t.Filter.Match(ev.Event, ev.Target) {
			return d.send(ctx, t, ev, newEventID())
		}
	}
	return nil, failure("no upstream of hub %q receives %s events", ev.Hub, ev.Event)
}

// Notify queues a notification (connected, disconnected) for every matching
// upstream; then, if not nil, receives each reply. Events of one connection
// are delivered in the order they were queued.
func (d *Dispatcher) Notify(ev *Event, then func(*Reply)) {
	q := d.queues[maphash.String(d.seed, ev.ConnectionID)%uint64(len(d.queues))]
	select {
	case q <- notification{ev: ev, then: then}:
	default:
		d.dropped.Add(1)
		d.log.Error("notification queue full; event dropped", "hub", ev.Hub, "conn", ev.ConnectionID, "event", ev.Event)
	}
}

// Dropped counts notifications dropped because a queue was full.
func (d *Dispatcher) Dropped() int64 { return d.dropped.Load() }

// Close delivers what is queued and stops the workers, or gives up when ctx
// ends.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.closeOnce.Do(func() {
		for _, q := range d.queues {
			close(q)
		}
	})
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("upstream: close dispatcher: %w", ctx.Err())
	}
}

func (d *Dispatcher) work(q chan notification) {
	defer d.wg.Done()
	for n := range q {
		id := newEventID()
		for _, t := range (*d.targets.Load())[n.ev.Hub] {
			if !t.Filter.Match(n.ev.Event, "") {
				continue
			}
			reply, err := d.send(context.Background(), t, n.ev, id)
			if err != nil {
				d.log.Warn("notification not delivered", "hub", n.ev.Hub, "conn", n.ev.ConnectionID, "event", n.ev.Event, "err", err)
				continue
			}
			if n.then != nil {
				n.then(reply)
			}
		}
	}
}

// send makes one signed POST of ev to t and interprets the answer.
func (d *Dispatcher) send(ctx context.Context, t Target, ev *Event, id string) (*Reply, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, failure("encode %s event: %v", ev.Event, err)
	}
	eventName := ev.Event
	if ev.Event == EventMessage {
		eventName = ev.Target
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		Expand(t.URLTemplate, ev.Hub, ev.Category(), eventName), bytes.NewReader(body))
	if err != nil {
		return nil, failure("upstream %q: bad URL: %v", t.Name, err)
	}
	now := d.cfg.Now()
	sig, err := Sign(t.Secrets, id, now, body)
	if err != nil {
		return nil, failure("upstream %q: %v", t.Name, err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Switchboard")
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", id)
	h.Set("ce-source", "/hubs/"+ev.Hub+"/connections/"+ev.ConnectionID)
	h.Set("ce-type", "switchboard."+ev.Event)
	h.Set("ce-time", now.UTC().Format(time.RFC3339Nano))
	h.Set("ce-hub", ev.Hub)
	h.Set("ce-connectionid", ev.ConnectionID)
	if ev.UserID != nil {
		h.Set("ce-userid", *ev.UserID)
	}
	h.Set("ce-eventname", eventName)
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, fmt.Sprint(now.Unix()))
	h.Set(HeaderSignature, sig)

	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return nil, failure("upstream %q timed out after %s", t.Name, timeout)
		}
		return nil, failure("upstream %q is unreachable: %v", t.Name, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, d.cfg.MaxReplySize+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, failure("upstream %q timed out after %s", t.Name, timeout)
		}
		return nil, failure("upstream %q: reading reply: %v", t.Name, err)
	}
	if int64(len(data)) > d.cfg.MaxReplySize {
		return nil, failure("upstream %q replied with more than %d bytes", t.Name, d.cfg.MaxReplySize)
	}
	return d.interpret(t, ev, resp, data)
}

func (d *Dispatcher) interpret(t Target, ev *Event, resp *http.Response, data []byte) (*Reply, error) {
	status := resp.StatusCode
	switch {
	case status == http.StatusNoContent:
		return nil, nil
	case status >= 300 && status < 400:
		return nil, failure("upstream %q answered with a redirect (%d to %q); redirects are not followed, register the final URL",
			t.Name, status, resp.Header.Get("Location"))
	case ev.Event == EventConnect && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		reason := fmt.Sprintf("connection rejected by upstream %q (%d)", t.Name, status)
		var r struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &r) == nil && r.Error != "" {
			reason = r.Error
		}
		return &Reply{Error: reason}, nil
	case status < 200 || status >= 300:
		return nil, failure("upstream %q answered %d %s%s", t.Name, status, http.StatusText(status), snippet(data))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, failure("upstream %q replied with Content-Type %q; want application/json",
			t.Name, resp.Header.Get("Content-Type"))
	}
	reply, err := ParseReply(data, true)
	if err != nil {
		return nil, failure("upstream %q sent an invalid reply: %s", t.Name, strings.TrimPrefix(err.Error(), "upstream: bad reply: "))
	}
	return reply, nil
}

// snippet quotes the start of an error body so function authors see it.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	if len(b) > 200 {
		b = append(b[:200:200], "…"...)
	}
	return ": " + string(b)
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "evt_" + hex.EncodeToString(b[:])
}
