package gateway

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/input"
	"github.com/switchboard-gw/switchboard/protocol"
	"github.com/switchboard-gw/switchboard/upstream"
)

// A connection's invocations run off its read loop, so the loop goes on
// reading pings, further messages and a Close while upstreams answer.
//
// The read loop admits each invocation (rate limit, an upstream that wants
// it, the in-flight bound and queue) and hands it to the connection's
// invoker, which runs at most Limits.MaxInflightInvocations workers. A
// worker's turn starts when an invocation finds a free slot; it runs that
// invocation, then the queued ones in arrival order, and ends when the
// queue is empty, so an idle connection has none. Turns run on the
// gateway's pool of goroutines (workers.go), which keep the stack a
// webhook call grows. Serve owns the
// workers: when the connection ends it drops what is queued, cancels the
// context every webhook call of the connection runs under, and waits for
// the workers before it removes the connection and sends the disconnected
// event. That event therefore goes out after every message event of the
// connection has ended (answered, failed or cancelled); an upstream whose
// handler ignores the cancellation may still be running one.

// invoker runs the invocations of one connection. The read loop creates it
// at the connection's first invocation.
type invoker struct {
	// ctx bounds every webhook call of the connection's invocations; Serve
	// cancels it when the connection ends.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per running worker; Serve waits on it
	// limiter admits invocations at Limits.InvocationRate; strikes counts
	// refusals at the same rate, and a connection that runs out of those
	// too is closed. Only the read loop uses them; nil without a rate.
	limiter, strikes *rate.Limiter

	mu      sync.Mutex // guards the fields below
	running int        // workers running
	queue   []*protocol.Message
	closed  bool // the connection ended: nothing more starts
}

// invoker returns c's invoker, creating it. Only the read loop calls it.
func (c *Conn) invoker(ctx context.Context) *invoker {
	if c.inv != nil {
		return c.inv
	}
	iv := &invoker{}
	iv.ctx, iv.cancel = context.WithCancel(ctx)
	if l := c.g.cfg.Limits; l.InvocationRate > 0 {
		iv.limiter = rate.NewLimiter(rate.Limit(l.InvocationRate), l.InvocationBurst)
		iv.strikes = rate.NewLimiter(rate.Limit(l.InvocationRate), l.InvocationBurst)
	}
	c.inv = iv
	return iv
}

// limitTexts are the client-facing texts of the invocation limits, built
// once per gateway.
type limitTexts struct {
	rateLimited, rateClose, queueFull string
}

func newLimitTexts(l Limits) limitTexts {
	return limitTexts{
		rateLimited: fmt.Sprintf("rate limit: this connection may make at most %g invocations per second (bursts of %d); slow down",
			l.InvocationRate, l.InvocationBurst),
		rateClose: fmt.Sprintf("closed for sending far more than the %g invocations per second a connection may make", l.InvocationRate),
		queueFull: fmt.Sprintf("too many invocations at once: %d waiting on the upstream and %d queued on this connection; wait for their completions",
			l.MaxInflightInvocations, l.MaxQueuedInvocations),
	}
}

// receiveInvocation admits a client invocation and starts or queues it. It
// runs on the read loop and never waits on an upstream.
func (c *Conn) receiveInvocation(ctx context.Context, m *protocol.Message) {
	g := c.g
	if c.isClosing() {
		return // closed for a reason of its own: no refusal, no event
	}
	c.hub.traffic.in.Add(1)
	iv := c.invoker(ctx)
	if iv.limiter != nil {
		now := g.cfg.Now()
		if !iv.limiter.AllowN(now, 1) {
			if !iv.strikes.AllowN(now, 1) {
				g.limited.rateCloses.Add(1)
				// Its "connection closed" line says why, at info.
				g.log.Debug("closing connection that keeps passing its invocation rate", "hub", c.hub.name, "conn", c.id)
				c.closeWith(ClosePolicyViolation, g.texts.rateClose, c.codec.AppendClose(nil, g.texts.rateClose, false))
				return
			}
			c.refuse(m, g.texts.rateLimited, &g.limited.invRate, &g.limited.sendRate)
			return
		}
	}
	// The target goes into the webhook's URL and headers: a client's bad
	// one is that client's error, refused here, before any upstream or
	// breaker hears of it.
	if err := input.Target(m.Target); err != nil {
		// One line per message would let a client flood the log.
		g.log.Debug("invocation refused", "hub", c.hub.name, "conn", c.id, "err", err)
		if m.HasInvocationID {
			c.replyCompletion(m.InvocationID, nil, "invalid invocation: "+err.Error())
		}
		return
	}
	if !g.wants(c.hub.name, upstream.EventMessage, m.Target) {
		if m.HasInvocationID {
			c.replyCompletion(m.InvocationID, nil,
				fmt.Sprintf("no upstream of hub %q handles %q", c.hub.name, m.Target))
		}
		return
	}
	held := *m // m is the parser's; the worker keeps its own
	if !iv.start(c, &held) {
		c.refuse(m, g.texts.queueFull, &g.limited.invQueue, &g.limited.sendQueue)
	}
}

// refuse answers an invoke with a completion error and drops a send,
// counting either.
func (c *Conn) refuse(m *protocol.Message, text string, invokes, sends *atomic.Int64) {
	if m.HasInvocationID {
		invokes.Add(1)
		c.replyCompletion(m.InvocationID, nil, text)
		return
	}
	sends.Add(1)
}

// start runs m on a new worker if a slot is free, else queues it; it
// reports false when the queue is full too.
func (iv *invoker) start(c *Conn, m *protocol.Message) bool {
	l := c.g.cfg.Limits
	iv.mu.Lock()
	defer iv.mu.Unlock()
	switch {
	case iv.closed:
		return true // the connection ended; dropping it is no refusal
	case iv.running < l.MaxInflightInvocations:
		iv.running++
		iv.wg.Add(1)
		c.g.workers.run(workerTurn{c: c, iv: iv, m: m})
	case len(iv.queue) < l.MaxQueuedInvocations:
		iv.queue = append(iv.queue, m)
	default:
		return false
	}
	return true
}

// work runs m, then queued invocations in arrival order, until none is
// left or the connection ended.
func (c *Conn) work(iv *invoker, m *protocol.Message) {
	defer iv.wg.Done()
	for m != nil {
		c.invoke(iv.ctx, m)
		m = iv.next()
	}
}

// next takes the oldest queued invocation, or ends the worker's turn and
// returns nil.
func (iv *invoker) next() *protocol.Message {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if iv.closed || len(iv.queue) == 0 {
		iv.running--
		return nil
	}
	m := iv.queue[0]
	n := copy(iv.queue, iv.queue[1:])
	iv.queue[n] = nil
	iv.queue = iv.queue[:n]
	return m
}

// stopInvocations drops c's queued invocations and cancels the webhook
// calls of the running ones. Serve calls it once the read loop ended.
func (c *Conn) stopInvocations() {
	iv := c.inv
	if iv == nil {
		return
	}
	iv.mu.Lock()
	iv.closed = true
	left := iv.running + len(iv.queue)
	iv.queue = nil
	iv.mu.Unlock()
	iv.cancel()
	if left > 0 {
		c.g.limited.abandoned.Add(int64(left))
		c.g.log.Debug("connection ended with invocations in flight; cancelled", "hub", c.hub.name, "conn", c.id, "invocations", left)
	}
}

// awaitInvocations returns once every worker of c has ended, so Serve
// outlives the goroutines it started.
func (c *Conn) awaitInvocations() {
	if c.inv != nil {
		c.inv.wg.Wait()
	}
}

// invoke delivers a client invocation as a message event, runs the reply's
// actions in order and, when the client expects one, sends a Completion.
// ctx ends with the connection: the webhook call is then cancelled. The
// actions of a reply that did arrive run to the end whatever happens to
// the connection meanwhile, as the upstream asked.
func (c *Conn) invoke(ctx context.Context, m *protocol.Message) {
	g := c.g
	ctx, span := g.startInvokeSpan(ctx, c, m)
	var failed error
	defer func() { endSpan(span, failed) }()
	wantsReply := m.HasInvocationID
	ev := c.event(upstream.EventMessage)
	if wantsReply {
		id := m.InvocationID
		ev.InvocationID = &id
	}
	ev.Target = m.Target
	ev.Arguments = m.Arguments
	reply, err := g.cfg.Webhooks.Call(ctx, ev)
	failed = err
	if err != nil {
		if ctx.Err() != nil {
			g.log.Debug("message event cancelled: the connection ended", "hub", c.hub.name, "conn", c.id, "target", m.Target)
			return
		}
		// The dispatcher logged the failure, naming the upstream.
		g.log.Debug("message event failed", "hub", c.hub.name, "conn", c.id, "target", m.Target, "err", err)
		if wantsReply {
			c.replyCompletion(m.InvocationID, nil, clientMessage(err, clientUpstreamFailed))
		}
		return
	}
	var actErr error
	if reply != nil && len(reply.Actions) > 0 { // most replies carry a result alone
		actErr = g.RunReply(context.WithoutCancel(ctx), ev, reply)
	}
	failed = actErr
	if !wantsReply {
		return
	}
	switch {
	case reply != nil && reply.Error != "":
		c.replyCompletion(m.InvocationID, nil, reply.Error)
	case actErr != nil:
		c.replyCompletion(m.InvocationID, nil, clientMessage(actErr, clientActionFailed))
	case reply != nil:
		c.replyCompletion(m.InvocationID, reply.Result, "")
	default:
		c.replyCompletion(m.InvocationID, nil, "")
	}
}

// isClosing reports whether c accepts no more messages.
func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}
