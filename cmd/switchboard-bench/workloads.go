package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-gw/switchboard/client"
)

// config is one run's parameters.
type config struct {
	Workload    string
	PID         int           // gateway process for RSS and CPU; 0: not measured
	Clients     int           // connections (roundtrip: concurrent invokers)
	Rate        int           // idle: connects/s; fanout: messages/s; chat: messages/s over all senders
	ConnectRate int           // connects/s while setting up the other workloads
	Duration    time.Duration // sending time of fanout, roundtrip and chat
	Senders     int           // chat
	Hold        time.Duration // idle: time held open before RSS is read
	Drain       time.Duration // longest wait for deliveries after sending stops
	Protocol    string        // the clients' hub protocol: json, messagepack or mixed (they alternate)
	Transport   string        // the clients' transport: websockets, longpolling or serversentevents
	Users       int           // distinct user ids the clients cycle through; 0: none
}

// The clients' protocols and transports, as the JS client allows them
// (Server-Sent Events carry only JSON). With "mixed" every other client
// speaks MessagePack, so one group holds both and each message is encoded
// for both.
var (
	protocols  = []string{"json", "messagepack", "mixed"}
	transports = []string{"websockets", "longpolling", "serversentevents"}
)

// Bounds on every run, whatever the flags say.
const (
	maxClients  = 19500
	maxDuration = 5 * time.Minute
	maxRate     = 100000
)

func (c *config) check() error {
	switch {
	case c.Clients < 1 || c.Clients > maxClients:
		return fmt.Errorf("bench: --clients must be 1..%d", maxClients)
	case c.Duration <= 0 || c.Duration > maxDuration:
		return fmt.Errorf("bench: --duration must be in (0, %s]", maxDuration)
	case c.Rate < 0 || c.Rate > maxRate || c.ConnectRate < 0 || c.ConnectRate > maxRate:
		return fmt.Errorf("bench: rates must be 0..%d per second", maxRate)
	case c.Users < 0 || c.Users > maxClients:
		return fmt.Errorf("bench: --users must be 0..%d", maxClients)
	case c.Hold < 0 || c.Hold > maxDuration || c.Drain < 0 || c.Drain > maxDuration:
		return fmt.Errorf("bench: --hold and --drain must be 0..%s", maxDuration)
	case c.Workload == "chat" && (c.Senders < 1 || c.Senders > c.Clients):
		return fmt.Errorf("bench: --senders must be 1..--clients")
	case (c.Workload == "fanout" || c.Workload == "chat") && c.Rate < 1:
		return fmt.Errorf("bench: %s needs --rate ≥ 1", c.Workload)
	case !slices.Contains(protocols, c.Protocol):
		return fmt.Errorf("bench: --protocol must be one of %s", strings.Join(protocols, ", "))
	case !slices.Contains(transports, c.Transport):
		return fmt.Errorf("bench: --transport must be one of %s", strings.Join(transports, ", "))
	case c.Transport == "serversentevents" && c.Protocol != "json":
		return fmt.Errorf("bench: Server-Sent Events carry only JSON: use --protocol json")
	}
	return nil
}

// run performs one workload against t.
func run(ctx context.Context, t *target, cfg config) (*result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := t.ensureHub(ctx); err != nil {
		return nil, err
	}
	t.protocol, t.transport = cfg.Protocol, cfg.Transport
	var r *result
	var err error
	switch cfg.Workload {
	case "idle":
		r, err = runIdle(ctx, t, cfg)
	case "fanout":
		r, err = runFanout(ctx, t, cfg)
	case "roundtrip":
		r, err = runRoundtrip(ctx, t, cfg)
	case "chat":
		r, err = runChat(ctx, t, cfg)
	default:
		return nil, fmt.Errorf("bench: unknown workload %q: use idle, fanout, roundtrip or chat", cfg.Workload)
	}
	if r != nil {
		r.Transport, r.Protocol, r.Users = cfg.Transport, cfg.Protocol, cfg.Users
	}
	return r, err
}

// sink counts stamped messages ([seq, unixNanos]) and their latency.
type sink struct {
	hist    histogram
	got     atomic.Int64
	bad     atomic.Int64
	lastNs  atomic.Int64 // when the latest message arrived
	handler map[string]func([]json.RawMessage)
}

func newSink(target string) *sink {
	s := &sink{}
	s.handler = map[string]func([]json.RawMessage){target: s.receive}
	return s
}

func (s *sink) receive(args []json.RawMessage) {
	now := time.Now().UnixNano()
	if len(args) < 2 {
		s.bad.Add(1)
		return
	}
	sent, err := strconv.ParseInt(string(args[1]), 10, 64)
	if err != nil {
		s.bad.Add(1)
		return
	}
	s.hist.record(time.Duration(now - sent))
	s.got.Add(1)
	s.lastNs.Store(now)
}

// drain waits until want messages arrived, ctx ends or d passes.
func (s *sink) drain(ctx context.Context, want int64, d time.Duration) {
	deadline := time.Now().Add(d)
	for s.got.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// finish fills the delivery figures: rate over first send to last arrival.
func (s *sink) finish(r *result, start time.Time, expected int64) {
	r.Expected, r.Delivered = expected, s.got.Load()
	r.Lost = max(expected-r.Delivered, 0)
	if last := s.lastNs.Load(); last > 0 {
		if el := time.Duration(last - start.UnixNano()).Seconds(); el > 0 {
			r.Rate = float64(r.Delivered) / el
		}
	}
	r.latencies(&s.hist)
}

func runIdle(ctx context.Context, t *target, cfg config) (*result, error) {
	if err := t.removeUpstream(ctx); err != nil {
		return nil, err
	}
	r := &result{Workload: "idle"}
	var errs errCounter
	if cfg.PID > 0 {
		rss, err := rssKiB(cfg.PID)
		if err != nil {
			return nil, err
		}
		r.RSSBefore = rss
	}
	cpu := startCPU(cfg.PID)
	f, took := t.connect(ctx, cfg.Clients, cfg.Rate, noHandlers, &errs)
	defer f.closeAll()
	r.Clients = len(f.conns)
	r.ConnectRate = float64(len(f.conns)) / took.Seconds()
	cpu.stop(r)
	sleepCtx(ctx, cfg.Hold)
	if cfg.PID > 0 {
		rss, err := rssKiB(cfg.PID)
		if err != nil {
			return nil, err
		}
		r.RSSAfter = rss
		if r.Clients > 0 {
			r.RSSPerConn = float64(r.RSSAfter-r.RSSBefore) / float64(r.Clients)
		}
	}
	r.Seconds = (took + cfg.Hold).Seconds()
	r.Disconnects = f.disconnects.Load()
	errs.fill(r)
	return r, nil
}

func noHandlers(int) map[string]func([]json.RawMessage) { return nil }

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// withUpstream starts the tool's upstream, registers it for events and
// returns its cleanup.
func withUpstream(ctx context.Context, t *target, events ...string) (func(), error) {
	u, err := startUpstream()
	if err != nil {
		return nil, err
	}
	if err := t.setUpstream(ctx, u, events); err != nil {
		u.close()
		return nil, err
	}
	return func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = t.removeUpstream(cctx)
		u.close()
	}, nil
}

// pace calls fn(i) for i in [0, n) at rate per second from start, on up to
// workers goroutines; a call that finds every worker busy waits, so the
// achieved rate can fall below the asked one but never exceeds it.
func pace(ctx context.Context, n, rate, workers int, fn func(i int)) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				fn(i)
			}
		}()
	}
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
}

func runFanout(ctx context.Context, t *target, cfg config) (*result, error) {
	path := "/api/hubs/" + url.PathEscape(t.hub) + "/groups/" + benchGroup + "/:send"
	token, err := t.restToken(path)
	if err != nil {
		return nil, err
	}
	cleanup, err := withUpstream(ctx, t, "connect")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var errs errCounter
	s := newSink("fanout")
	f, _ := t.connect(ctx, cfg.Clients, cfg.ConnectRate, func(int) map[string]func([]json.RawMessage) { return s.handler }, &errs)
	defer f.closeAll()
	r := &result{Workload: "fanout", Clients: len(f.conns)}

	var sent atomic.Int64
	total := int(float64(cfg.Rate) * cfg.Duration.Seconds())
	cpu := startCPU(cfg.PID)
	start := time.Now()
	pace(ctx, total, cfg.Rate, 16, func(i int) {
		body := fmt.Appendf(nil, `{"target":"fanout","arguments":[%d,%d]}`, i, time.Now().UnixNano())
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+path+"?api-version=2022-06-01", bytes.NewReader(body))
		if err != nil {
			errs.add(err)
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		if err := t.do(req, []int{http.StatusAccepted}); err != nil {
			errs.add(err)
			return
		}
		sent.Add(1)
	})
	expected := sent.Load() * int64(len(f.conns))
	s.drain(ctx, expected, cfg.Drain)
	cpu.stop(r)
	r.Sent = sent.Load()
	s.finish(r, start, expected)
	r.Seconds = time.Since(start).Seconds()
	r.Disconnects = f.disconnects.Load()
	errs.fill(r)
	return r, nil
}

func runRoundtrip(ctx context.Context, t *target, cfg config) (*result, error) {
	cleanup, err := withUpstream(ctx, t, "message:echo")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var errs errCounter
	f, _ := t.connect(ctx, cfg.Clients, cfg.ConnectRate, noHandlers, &errs)
	defer f.closeAll()
	r := &result{Workload: "roundtrip", Clients: len(f.conns)}

	var h histogram
	var done atomic.Int64
	cpu := startCPU(cfg.PID)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for _, c := range f.conns {
		wg.Add(1)
		go func(c *client.Conn) {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := c.Invoke(ictx, "echo", t0.UnixNano())
				cancel()
				if err != nil {
					errs.add(err)
					if c.Err() != nil {
						return
					}
					continue
				}
				h.record(time.Since(t0))
				done.Add(1)
			}
		}(c)
	}
	wg.Wait()
	el := time.Since(start)
	cpu.stop(r)
	r.Seconds = el.Seconds()
	r.Sent = done.Load()
	r.Rate = float64(done.Load()) / el.Seconds()
	r.latencies(&h)
	r.Disconnects = f.disconnects.Load()
	errs.fill(r)
	return r, nil
}

func runChat(ctx context.Context, t *target, cfg config) (*result, error) {
	cleanup, err := withUpstream(ctx, t, "connect", "message:chat")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var errs errCounter
	s := newSink("chat")
	f, _ := t.connect(ctx, cfg.Clients, cfg.ConnectRate, func(int) map[string]func([]json.RawMessage) { return s.handler }, &errs)
	defer f.closeAll()
	senders := min(cfg.Senders, len(f.conns))
	r := &result{Workload: "chat", Clients: len(f.conns), Senders: senders}
	if senders == 0 {
		errs.fill(r)
		return r, fmt.Errorf("bench: no client connected: %s", r.FirstError)
	}

	var sent atomic.Int64
	total := int(float64(cfg.Rate) * cfg.Duration.Seconds())
	cpu := startCPU(cfg.PID)
	start := time.Now()
	// Message i goes out from sender i mod senders; each sender has its own
	// worker so one slow completion does not hold the others back.
	var wg sync.WaitGroup
	queues := make([]chan int, senders)
	for k := range queues {
		queues[k] = make(chan int, 64)
		wg.Add(1)
		go func(c *client.Conn, q chan int) {
			defer wg.Done()
			for i := range q {
				ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := c.Invoke(ictx, "chat", i, time.Now().UnixNano())
				cancel()
				if err != nil {
					errs.add(err)
					continue
				}
				sent.Add(1)
			}
		}(f.conns[k], queues[k])
	}
	pace(ctx, total, cfg.Rate, 1, func(i int) { queues[i%senders] <- i })
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	expected := sent.Load() * int64(len(f.conns))
	s.drain(ctx, expected, cfg.Drain)
	cpu.stop(r)
	r.Sent = sent.Load()
	s.finish(r, start, expected)
	r.Seconds = time.Since(start).Seconds()
	r.Disconnects = f.disconnects.Load()
	errs.fill(r)
	return r, nil
}
