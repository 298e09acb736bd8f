package delivery

import (
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-gw/switchboard/internal/tracing"
	"github.com/switchboard-gw/switchboard/upstream"
)

// OutboxStore keeps the outbox on disk. *store.DB implements it; the
// dispatcher's default keeps it in memory.
type OutboxStore interface {
	// OutboxCommit appends add and deletes del in one durable transaction
	// and returns the increasing numbers given to add.
	OutboxCommit(add [][]byte, del []uint64) ([]uint64, error)
	// OutboxLoad calls fn for every entry in number order.
	OutboxLoad(fn func(seq uint64, value []byte) error) error
}

// record is one notification for one upstream as stored. The event body is
// kept as sent, and the id with it, so webhook-id and ce-id stay the same
// across retries and restarts.
type record struct {
	ID       string          `json:"id"`
	Hub      string          `json:"hub"`
	Upstream string          `json:"upstream"`
	Created  time.Time       `json:"created"`
	Event    json.RawMessage `json:"event"`
	// Client is the event's upstream.Event.Client, kept for upstreams of
	// the Azure profile, whose requests carry it, so a replay after a
	// restart sends what the first attempt would have.
	Client *upstream.ClientInfo `json:"client,omitempty"`
	// TraceParent and TraceState are the W3C trace context of the event's
	// cause, so every attempt, after a restart too, continues its trace.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
}

type laneKey struct{ hub, name string }

// lane is one upstream's delivery state: breaker, log, and the chains of
// notifications waiting for it.
type lane struct {
	hub, name string
	br        *breaker
	log       *deliveryLog
	disabled  atomic.Pointer[string] // reason; nil while enabled

	// Guarded by outbox.mu:
	target Target
	known  bool // named by the last SetTargets
	gone   bool // removed by a SetTargets; its chains are dropped
	chains map[string]*chain
	parked map[*chain]struct{}
	timer  *time.Timer // releases parked chains when the breaker may probe
	depth  int
}

func (l *lane) disabledReason() string {
	if p := l.disabled.Load(); p != nil {
		return *p
	}
	return ""
}

// setDisabled reports whether l was enabled before.
func (l *lane) setDisabled(reason string) bool { return l.disabled.Swap(&reason) == nil }

type chainState int

const (
	chainReady   chainState = iota // in outbox.ready
	chainBusy                      // a worker is delivering its head
	chainWaiting                   // backoff timer running
	chainParked                    // in lane.parked
)

// chain is the notifications of one connection for one upstream, delivered
// strictly one after the other.
type chain struct {
	lane  *lane
	conn  string
	items []*item
	state chainState
	timer *time.Timer
}

type item struct {
	seq     uint64 // 0 when the store failed to keep it
	rec     record
	ev      *upstream.Event
	attempt int
	ch      *chain
	elem    *list.Element // in outbox.order
	size    int64         // itemSize, fixed when the item is made
}

// bytes is what an item counts against OutboxLimitBytes (see itemSize).
func (it *item) bytes() int64 { return it.size }

// itemSize is what an item of rec and ev holds: the encoded event, the
// client's query and claims that the Event keeps beside it (up to tens of
// KiB, from the client), and a share for the structures around them. The
// items of one event share both, so this errs high for events with
// several targets.
func itemSize(rec record, ev *upstream.Event) int64 {
	return int64(len(rec.Event)+len(ev.Client.Query)+len(ev.Client.Claims)) + itemOverhead
}

// itemOverhead is an item's size in memory beside its encoded event.
const itemOverhead = 512

// write is a batch of items from one Notify, waiting for the committer.
type write struct {
	items []*item
	done  chan struct{}
}

// outbox is the durable notification queue. Notify hands items to the
// committer goroutine, which writes every batch waiting since its last
// commit in one transaction (group commit) and only then makes them
// deliverable; workers deliver them; acknowledgements are deleted by the
// committer in later transactions.
type outbox struct {
	d *Dispatcher

	mu      sync.Mutex // guards the fields below
	cond    *sync.Cond // signals workers: ready changed or stopping
	lanes   map[laneKey]*lane
	order   *list.List // every item, oldest first
	ready   []*chain
	busy    int
	stop    bool
	dropped int64
	expired int64
	bytes   int64 // itemBytes of every item in order

	cmu      sync.Mutex // guards the committer's queue below
	writes   []*write
	acks     []uint64
	cstopped bool

	wake      chan struct{} // committer: work queued
	cstop     chan struct{} // committer: finish
	cdone     chan struct{}
	progress  chan struct{} // a delivery finished (for close)
	ctx       context.Context
	cancel    context.CancelFunc
	workers   sync.WaitGroup
	closeOnce sync.Once
}

func (o *outbox) start(d *Dispatcher) error {
	o.d = d
	o.cond = sync.NewCond(&o.mu)
	o.lanes = map[laneKey]*lane{}
	o.order = list.New()
	o.wake = make(chan struct{}, 1)
	o.cstop = make(chan struct{})
	o.cdone = make(chan struct{})
	o.progress = make(chan struct{}, 1)
	o.ctx, o.cancel = context.WithCancel(context.Background())

	// Replay: the stored items join their lanes, which stay parked until
	// SetTargets names them.
	var bad []uint64
	err := d.cfg.Store.OutboxLoad(func(seq uint64, v []byte) error {
		var rec record
		ev := new(upstream.Event)
		if json.Unmarshal(v, &rec) != nil || json.Unmarshal(rec.Event, ev) != nil {
			bad = append(bad, seq)
			return nil
		}
		rec.Event = append(json.RawMessage(nil), rec.Event...)
		if rec.Client != nil {
			ev.Client = *rec.Client
		}
		if !tracing.Valid(rec.TraceParent, rec.TraceState) {
			rec.TraceParent, rec.TraceState = "", "" // deliver it all the same, in a trace of its own
		}
		o.insertLocked(&item{seq: seq, rec: rec, ev: ev, size: itemSize(rec, ev)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("delivery: replay outbox: %w", err)
	}
	if len(bad) > 0 {
		d.log.Error("dropping unreadable outbox entries", "count", len(bad))
		o.acks = bad
	}
	if n := o.order.Len(); n > 0 {
		d.log.Info("outbox replayed", "events", n)
	}
	go o.committer()
	for range d.cfg.Workers {
		o.workers.Add(1)
		go o.worker()
	}
	return nil
}

// laneLocked returns the lane of hub's upstream name, creating it.
func (o *outbox) laneLocked(hub, name string) *lane {
	k := laneKey{hub, name}
	if l := o.lanes[k]; l != nil {
		return l
	}
	d := o.d
	l := &lane{hub: hub, name: name, log: newDeliveryLog(d.cfg.LogSize),
		chains: map[string]*chain{}, parked: map[*chain]struct{}{}}
	l.br = newBreaker(name, d.cfg.Breaker, d.cfg.Now, func(from, to, why string) {
		level := slog.LevelInfo
		if to == BreakerOpen {
			level = slog.LevelWarn
		}
		d.log.Log(context.Background(), level, "upstream circuit breaker "+to, "hub", hub, "upstream", name, "from", from, "why", why)
		o.breakerChanged(l, to)
	})
	o.lanes[k] = l
	return l
}

// insertLocked appends it to its chain; a new chain is ready at once, or
// parked while its lane cannot deliver.
func (o *outbox) insertLocked(it *item) {
	l := o.laneLocked(it.rec.Hub, it.rec.Upstream)
	it.elem = o.order.PushBack(it)
	o.bytes += it.bytes()
	l.depth++
	c := l.chains[it.ev.ConnectionID]
	if c == nil {
		c = &chain{lane: l, conn: it.ev.ConnectionID}
		l.chains[c.conn] = c
		it.ch = c
		c.items = append(c.items, it)
		if !l.known || l.disabledReason() != "" {
			c.state = chainParked
			l.parked[c] = struct{}{}
		} else {
			o.pushReadyLocked(c)
		}
		return
	}
	it.ch = c
	c.items = append(c.items, it)
}

func (o *outbox) pushReadyLocked(c *chain) {
	c.state = chainReady
	o.ready = append(o.ready, c)
	o.cond.Signal()
}

// removeLocked takes it out of its chain and the order; the chain goes
// away when empty and idle.
func (o *outbox) removeLocked(it *item) {
	c := it.ch
	o.order.Remove(it.elem)
	o.bytes -= it.bytes()
	c.lane.depth--
	for i, x := range c.items {
		if x == it {
			c.items = append(c.items[:i], c.items[i+1:]...)
			break
		}
	}
	if it.seq != 0 {
		o.cmu.Lock()
		o.acks = append(o.acks, it.seq)
		o.cmu.Unlock()
		o.kick()
	}
	if len(c.items) == 0 && c.state != chainBusy && c.state != chainReady {
		o.forgetChainLocked(c)
	}
}

// dropChainLocked drops what is left of a chain whose upstream was removed.
func (o *outbox) dropChainLocked(c *chain) {
	o.dropped += int64(len(c.items))
	for len(c.items) > 0 {
		o.removeLocked(c.items[0])
	}
	o.forgetChainLocked(c)
}

func (o *outbox) forgetChainLocked(c *chain) {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	delete(c.lane.parked, c)
	if c.lane.chains[c.conn] == c {
		delete(c.lane.chains, c.conn)
	}
}

func (o *outbox) kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// add stores one notification per target and returns once it is durable.
func (o *outbox) add(ctx context.Context, ev *upstream.Event, targets []route) {
	d := o.d
	body, err := encodeEvent(ev)
	if err != nil {
		d.log.Error("notification not queued", "hub", ev.Hub, "conn", ev.ConnectionID, "err", err)
		return
	}
	id, now := newEventID(), d.cfg.Now().UTC()
	tp, ts := tracing.Strings(ctx)
	w := &write{done: make(chan struct{})}
	for _, r := range targets {
		it := &item{ev: ev, rec: record{ID: id, Hub: ev.Hub, Upstream: r.t.Name, Created: now, Event: body,
			TraceParent: tp, TraceState: ts}}
		if r.t.Azure != nil {
			it.rec.Client = &ev.Client
		}
		it.size = itemSize(it.rec, ev)
		w.items = append(w.items, it)
	}
	o.cmu.Lock()
	if o.cstopped {
		o.cmu.Unlock()
		// After Close: keep it on disk for the next start.
		if _, err := d.cfg.Store.OutboxCommit(encodeItems(w.items), nil); err != nil {
			d.log.Error("notification lost after close", "hub", ev.Hub, "conn", ev.ConnectionID, "err", err)
		}
		return
	}
	o.writes = append(o.writes, w)
	o.cmu.Unlock()
	o.kick()
	<-w.done
}

func encodeItems(items []*item) [][]byte {
	out := make([][]byte, len(items))
	for i, it := range items {
		out[i], _ = json.Marshal(&it.rec) // cannot fail: strings, a time and valid JSON
	}
	return out
}

// committer writes queued notifications and acknowledgements in batches.
func (o *outbox) committer() {
	defer close(o.cdone)
	for {
		select {
		case <-o.wake:
		case <-o.cstop:
			o.commit() // whatever close left
			return
		}
		o.commit()
	}
}

func (o *outbox) commit() {
	d := o.d
	o.cmu.Lock()
	writes, acks := o.writes, o.acks
	o.writes, o.acks = nil, nil
	o.cmu.Unlock()
	if len(writes) == 0 && len(acks) == 0 {
		return
	}
	var items []*item
	for _, w := range writes {
		items = append(items, w.items...)
	}
	// Make room first, in the same transaction: the oldest go.
	o.mu.Lock()
	var batchBytes int64
	for _, it := range items {
		batchBytes += it.bytes()
	}
	over := o.order.Len() + len(items) - d.cfg.OutboxLimit
	overBytes := o.bytes + batchBytes - d.cfg.OutboxLimitBytes
	var dropped int
	for e := o.order.Front(); (over > 0 || overBytes > 0) && e != nil; {
		next := e.Next()
		it := e.Value.(*item)
		if it.ch.state != chainBusy || it.ch.items[0] != it {
			if it.seq != 0 {
				acks = append(acks, it.seq)
				it.seq = 0 // acknowledged here, not again by removeLocked
			}
			overBytes -= it.bytes()
			o.removeLocked(it)
			over--
			dropped++
		}
		e = next
	}
	// The batch alone passes a limit: its oldest go.
	for len(items) > 0 && (over > 0 || overBytes > 0) {
		overBytes -= items[0].bytes()
		items = items[1:]
		over--
		dropped++
	}
	o.dropped += int64(dropped)
	o.mu.Unlock()
	if dropped > 0 {
		d.log.Warn("outbox full; oldest notifications dropped", "dropped", dropped, "limit", d.cfg.OutboxLimit, "limitBytes", d.cfg.OutboxLimitBytes)
	}

	seqs, err := d.cfg.Store.OutboxCommit(encodeItems(items), acks)
	if err != nil {
		// Still delivered from memory, but not durable.
		d.log.Error("outbox write failed; notifications kept in memory only", "events", len(items), "err", err)
		seqs = make([]uint64, len(items))
	}
	o.mu.Lock()
	for i, it := range items {
		it.seq = seqs[i]
		o.insertLocked(it)
	}
	o.mu.Unlock()
	for _, w := range writes {
		close(w.done)
	}
	o.signalProgress()
}

// signalProgress tells a waiting close that something changed.
func (o *outbox) signalProgress() {
	select {
	case o.progress <- struct{}{}:
	default:
	}
}

func (o *outbox) worker() {
	defer o.workers.Done()
	o.mu.Lock()
	for {
		for len(o.ready) == 0 && !o.stop {
			o.cond.Wait()
		}
		if o.stop {
			o.mu.Unlock()
			return
		}
		c := o.ready[0]
		o.ready[0] = nil
		o.ready = o.ready[1:]
		if len(c.items) == 0 || c.lane.gone {
			o.dropChainLocked(c)
			continue
		}
		c.state = chainBusy
		o.busy++
		it := c.items[0]
		it.attempt++
		r := route{t: c.lane.target, l: c.lane}
		o.mu.Unlock()

		res, park := o.deliver(r, it)

		o.mu.Lock()
		o.busy--
		o.finishLocked(c, it, res, park)
		o.signalProgress()
	}
}

// deliver makes one attempt. park is true when the lane cannot deliver now
// (breaker open, upstream disabled): the attempt did not happen.
func (o *outbox) deliver(r route, it *item) (res result, park bool) {
	d := o.d
	if d.cfg.Now().Sub(it.rec.Created) > d.cfg.OutboxTTL {
		return result{err: errExpired}, false
	}
	if r.l.disabledReason() != "" {
		return result{}, true
	}
	done, err := r.l.br.allow()
	if err != nil {
		return result{}, true
	}
	ctx := tracing.FromStrings(o.ctx, it.rec.TraceParent, it.rec.TraceState)
	res = d.send(ctx, r, it.ev, it.rec.Event, it.rec.ID, it.attempt)
	done(res.outcome)
	if res.gone {
		d.disable(r.l, res.err.Error())
		return res, true
	}
	if res.err != nil {
		if o.ctx.Err() == nil {
			d.log.Warn("notification not delivered", "hub", r.l.hub, "upstream", r.l.name, "conn", it.ev.ConnectionID,
				"event", it.ev.Event, "attempt", it.attempt, "err", res.err)
		}
		return res, false
	}
	if res.reply != nil && len(res.reply.Actions) > 0 && d.cfg.OnReply != nil {
		d.cfg.OnReply(context.WithoutCancel(ctx), it.ev, res.reply)
	}
	return res, false
}

var errExpired = fmt.Errorf("expired")

func (o *outbox) finishLocked(c *chain, it *item, res result, park bool) {
	d := o.d
	switch {
	case park:
		it.attempt--
		o.parkLocked(c)
		return
	case res.err == errExpired:
		o.expired++
		d.log.Warn("notification expired undelivered", "hub", c.lane.hub, "upstream", c.lane.name, "conn", c.conn,
			"event", it.ev.Event, "attempts", it.attempt-1, "ttl", d.cfg.OutboxTTL)
	case res.err != nil && res.retry:
		if o.stop || o.ctx.Err() != nil {
			it.attempt--
			c.state = chainWaiting
			return
		}
		wait := res.retryAfter
		if wait <= 0 {
			wait = o.backoff(it.attempt)
		}
		c.state = chainWaiting
		c.timer = time.AfterFunc(wait, func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			if c.state == chainWaiting && !o.stop {
				c.timer = nil
				o.pushReadyLocked(c)
			}
		})
		return
	}
	// Delivered (or failed for good after the handler ran, or expired).
	c.state = chainWaiting // not busy: removeLocked may forget it
	o.removeLocked(it)
	if len(c.items) > 0 {
		o.pushReadyLocked(c)
	}
}

// backoff is the delay before attempt+1: exponential from MinRetry, capped
// at MaxRetry, with jitter over the upper half so retries spread out.
func (o *outbox) backoff(attempt int) time.Duration {
	cfg := o.d.cfg
	b := cfg.MaxRetry
	if attempt < 32 {
		b = min(cfg.MinRetry<<(attempt-1), cfg.MaxRetry)
		if b <= 0 {
			b = cfg.MaxRetry
		}
	}
	return b/2 + rand.N(b/2+1)
}

// parkLocked holds c until its lane can deliver: when the breaker's
// cool-down ends (a timer), it closes, or the upstream is enabled again.
func (o *outbox) parkLocked(c *chain) {
	l := c.lane
	c.state = chainParked
	l.parked[c] = struct{}{}
	if !l.known || l.disabledReason() != "" || l.timer != nil {
		return
	}
	st := l.br.status().State
	switch st {
	case BreakerClosed:
		o.releaseLocked(l) // it closed meanwhile
	case BreakerOpen:
		o.armLocked(l)
	}
	// Half-open: the probe's outcome changes the state, and breakerChanged
	// releases or re-arms.
}

func (o *outbox) armLocked(l *lane) {
	if l.timer != nil {
		return
	}
	l.timer = time.AfterFunc(max(l.br.retryIn(), time.Millisecond), func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		l.timer = nil
		if !o.stop {
			o.releaseLocked(l)
		}
	})
}

func (o *outbox) releaseLocked(l *lane) {
	for c := range l.parked {
		delete(l.parked, c)
		if len(c.items) == 0 {
			o.forgetChainLocked(c)
			continue
		}
		o.pushReadyLocked(c)
	}
}

func (o *outbox) breakerChanged(l *lane, to string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stop {
		return
	}
	switch to {
	case BreakerClosed:
		if l.known && l.disabledReason() == "" {
			o.releaseLocked(l)
		}
	case BreakerOpen:
		if len(l.parked) > 0 {
			o.armLocked(l)
		}
	}
}

// setTargets updates the lanes from ts, calling each for every target with
// its lane, and returns the breakers to reset (their upstream changed).
// Lanes no longer named lose their notifications.
func (o *outbox) setTargets(ts []Target, each func(Target, *lane)) []*breaker {
	o.mu.Lock()
	defer o.mu.Unlock()
	var resets []*breaker
	seen := make(map[laneKey]bool, len(ts))
	for _, t := range ts {
		t.keys, t.keysErr = upstream.ParseSecrets(t.Secrets...)
		l := o.laneLocked(t.Hub, t.Name)
		seen[laneKey{t.Hub, t.Name}] = true
		if l.known && !sameEndpoint(l.target, t) {
			resets = append(resets, l.br)
		}
		wasEnabled := l.known && l.disabledReason() == ""
		if t.Disabled {
			reason := t.DisabledReason
			if reason == "" {
				reason = "disabled"
			}
			l.disabled.Store(&reason)
		} else {
			l.disabled.Store(nil)
		}
		l.target, l.known = t, true
		if !wasEnabled && !t.Disabled {
			o.releaseLocked(l)
		}
		each(t, l)
	}
	for k, l := range o.lanes {
		if seen[k] {
			continue
		}
		n := 0
		for _, c := range l.chains {
			for _, it := range append([]*item(nil), c.items...) {
				if c.state == chainBusy && c.items[0] == it {
					continue // its worker finishes it; the lane is gone after
				}
				o.removeLocked(it)
				n++
			}
		}
		o.dropped += int64(n)
		if n > 0 {
			o.d.log.Warn("upstream removed; its undelivered notifications dropped", "hub", l.hub, "upstream", l.name, "dropped", n)
		}
		if l.timer != nil {
			l.timer.Stop()
		}
		l.known, l.gone = false, true
		delete(o.lanes, k)
	}
	return resets
}

func sameEndpoint(a, b Target) bool {
	return a.URLTemplate == b.URLTemplate && a.Timeout == b.Timeout &&
		strings.Join(a.Secrets, " ") == strings.Join(b.Secrets, " ") && sameCredentials(a.OAuth2, b.OAuth2) &&
		(a.Azure == nil) == (b.Azure == nil) // a change of profile is a new receiver
}

func (o *outbox) status() OutboxStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := OutboxStatus{Depth: o.order.Len(), Limit: o.d.cfg.OutboxLimit, Bytes: o.bytes, LimitBytes: o.d.cfg.OutboxLimitBytes,
		Dropped: o.dropped, Expired: o.expired}
	if e := o.order.Front(); e != nil {
		st.Oldest = e.Value.(*item).rec.Created
	}
	return st
}

func (o *outbox) laneDepth(l *lane) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return l.depth
}

// close waits until nothing is ready or in flight (or ctx ends), stops the
// workers and the committer, and leaves the rest on disk.
func (o *outbox) close(ctx context.Context) error {
	var err error
	o.closeOnce.Do(func() {
		// Notifications queued by Notify calls still running are made
		// durable and deliverable before the flush starts.
		for {
			o.cmu.Lock()
			pending := len(o.writes)
			o.cmu.Unlock()
			o.mu.Lock()
			idle := len(o.ready) == 0 && o.busy == 0
			o.mu.Unlock()
			if idle && pending == 0 {
				break
			}
			o.kick()
			select {
			case <-o.progress:
			case <-ctx.Done():
				err = fmt.Errorf("delivery: flush outbox: %w", ctx.Err())
			}
			if err != nil {
				break
			}
		}
		o.mu.Lock()
		o.stop = true
		for _, l := range o.lanes {
			if l.timer != nil {
				l.timer.Stop()
			}
			for _, c := range l.chains {
				if c.timer != nil {
					c.timer.Stop()
				}
			}
		}
		o.cond.Broadcast()
		o.mu.Unlock()
		o.cancel() // abandon requests in flight; they stay in the outbox
		o.workers.Wait()
		o.cmu.Lock()
		o.cstopped = true
		o.cmu.Unlock()
		close(o.cstop)
		<-o.cdone
	})
	return err
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// The delay is capped at a day.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	const maxWait = 24 * time.Hour
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return maxWait, true
			}
			return 0, false
		}
		if n > uint64(maxWait/time.Second) {
			return maxWait, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxWait), true
}

// memoryOutbox is the OutboxStore used without a store: nothing survives a
// restart.
type memoryOutbox struct {
	mu  sync.Mutex // guards the fields below
	seq uint64
	m   map[uint64][]byte
}

func (s *memoryOutbox) OutboxCommit(add [][]byte, del []uint64) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[uint64][]byte{}
	}
	for _, k := range del {
		delete(s.m, k)
	}
	seqs := make([]uint64, len(add))
	for i, v := range add {
		s.seq++
		s.m[s.seq] = v
		seqs[i] = s.seq
	}
	return seqs, nil
}

func (s *memoryOutbox) OutboxLoad(func(uint64, []byte) error) error { return nil }
