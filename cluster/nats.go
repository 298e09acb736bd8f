package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard-gw/switchboard/gateway"
)

// ErrClosed is returned by Publish and Gather after Close.
var ErrClosed = errors.New("cluster: bus closed")

// Node is what the bus drives on each node: it applies ops, answers queries
// and says whether it holds connections a route concerns (the bus subscribes
// accordingly). *gateway.Gateway is one.
type Node interface {
	ApplyOp(op *gateway.Op) error
	AnswerQuery(q *gateway.Query) (gateway.Answer, error)
	HasInterest(hub string, r gateway.Route) bool
}

// NATS is the bus of a cluster: it carries ops and queries between nodes
// through a NATS server, subscribing per hub, group and user only while
// this node holds a connection the subject concerns.
type NATS struct {
	nc   *nats.Conn
	opts NATSOptions
	id   string
	log  *slog.Logger
	node atomic.Pointer[nodeBox]
	mem  *members

	in    chan *nats.Msg // every subscription but heartbeats feeds it
	stop  chan struct{}  // closed by Close
	wg    sync.WaitGroup // the dispatcher and the heartbeat loop
	fixed []*nats.Subscription

	mu     sync.Mutex // guards the fields below; see doc.go for lock order
	subs   map[string]*nats.Subscription
	closed bool

	received, dropped, bufDrops atomic.Int64
	lastLog                     atomic.Int64 // unix nanos of the last drop log
}

type nodeBox struct{ n Node }

var (
	_ gateway.Bus             = (*NATS)(nil)
	_ gateway.InterestWatcher = (*NATS)(nil)
)

// NewNATS starts a bus for one node over nc, which the caller keeps owning
// (Close leaves it open). node may be nil and set later with SetNode, since
// the gateway is built with the bus; until then this node acts as one
// without connections.
func NewNATS(nc *nats.Conn, node Node, opts NATSOptions) (*NATS, error) {
	if opts.NodeID == "" {
		return nil, errors.New("cluster: new NATS bus: NodeID is required")
	}
	opts = opts.withDefaults()
	b := &NATS{
		nc:   nc,
		opts: opts,
		id:   opts.NodeID,
		log:  opts.Logger,
		mem:  newMembers(opts.MemberTTL, opts.Now),
		in:   make(chan *nats.Msg, opts.QueueLen),
		stop: make(chan struct{}),
		subs: make(map[string]*nats.Subscription),
	}
	if node != nil {
		b.SetNode(node)
	}
	for _, subj := range []string{nodeSubject(b.id), subjectQuery} {
		sub, err := nc.ChanSubscribe(subj, b.in)
		if err != nil {
			b.unsubscribeAll()
			return nil, fmt.Errorf("cluster: subscribe %s: %w", subj, err)
		}
		b.fixed = append(b.fixed, sub)
	}
	hb, err := nc.Subscribe(subjectHeartbeat+"*", b.onHeartbeat)
	if err != nil {
		b.unsubscribeAll()
		return nil, fmt.Errorf("cluster: subscribe heartbeats: %w", err)
	}
	b.fixed = append(b.fixed, hb)
	b.wg.Add(2)
	go b.dispatch()
	go b.heartbeatLoop()
	return b, nil
}

// SetNode sets the node this bus drives.
func (b *NATS) SetNode(n Node) { b.node.Store(&nodeBox{n}) }

// Healthy reports whether the NATS connection is up, for /readyz.
func (b *NATS) Healthy() bool { return b.nc.IsConnected() }

// Stats returns the bus's counters.
func (b *NATS) Stats() NATSStats {
	return NATSStats{Received: b.received.Load(), Dropped: b.dropped.Load(), BufferedDrops: b.bufDrops.Load()}
}

// Close says goodbye to the other nodes, unsubscribes and waits for the
// bus's goroutines. It does not close the NATS connection.
func (b *NATS) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	b.wg.Wait()
	b.unsubscribeAll()
	b.publishEnvelope(subjectHeartbeat+token(b.id), &envelope{Kind: kindBye})
	if b.nc.IsConnected() {
		_ = b.nc.FlushTimeout(time.Second) // best effort: the bye is a courtesy
	}
}

func (b *NATS) unsubscribeAll() {
	b.mu.Lock()
	subs := b.subs
	b.subs = map[string]*nats.Subscription{}
	b.mu.Unlock()
	for _, s := range b.fixed {
		_ = s.Unsubscribe()
	}
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
}

func (b *NATS) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// InterestChanged subscribes to or unsubscribes from r's subject in hub to
// match what the node says now, so calls out of order or repeated converge
// on the truth.
func (b *NATS) InterestChanged(hub string, r gateway.Route) {
	subj := routeSubject(hub, r)
	if subj == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	box := b.node.Load()
	want := box != nil && box.n.HasInterest(hub, r)
	sub, have := b.subs[subj]
	switch {
	case want && !have:
		// nats.go only queues the SUB here: no round trip under the lock.
		s, err := b.nc.ChanSubscribe(subj, b.in)
		if err != nil {
			b.log.Error("cluster: subscribe", "subject", subj, "err", err)
			return
		}
		b.subs[subj] = s
	case !want && have:
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.log.Error("cluster: unsubscribe", "subject", subj, "err", err)
		}
		delete(b.subs, subj)
	}
}

// Publish delivers op to the nodes its route names. Ops for a hub, group or
// user apply on this node at once and go to the others through NATS (this
// node ignores its own copy); if NATS cannot take them, they are counted in
// Stats().BufferedDrops and this node's clients still get them. A RouteNode
// op is a request to that node, whose error comes back.
func (b *NATS) Publish(ctx context.Context, op *gateway.Op) error {
	if b.isClosed() {
		return ErrClosed
	}
	r := op.Route()
	if r.Kind == gateway.RouteNode {
		return b.publishToNode(ctx, r.Name, op)
	}
	b.publishEnvelope(routeSubject(op.Hub, r), &envelope{Kind: kindOp, Op: op})
	return b.applyLocal(op)
}

func (b *NATS) publishToNode(ctx context.Context, node string, op *gateway.Op) error {
	if node == b.id {
		return b.applyLocal(op)
	}
	if node == "" {
		return fmt.Errorf("cluster: publish: %w: the connection id names no node", gateway.ErrNoConnection)
	}
	reply, err := b.request(ctx, nodeSubject(node), &envelope{Kind: kindOp, Op: op})
	if errors.Is(err, nats.ErrNoResponders) {
		return &remoteError{node: node, msg: "not reachable: no connection there", is: gateway.ErrNoConnection}
	}
	if err != nil {
		return fmt.Errorf("cluster: publish to node %s: %w", node, err)
	}
	return replyError(node, reply)
}

func (b *NATS) applyLocal(op *gateway.Op) error {
	box := b.node.Load()
	if box == nil {
		if op.Route().Kind == gateway.RouteNode {
			return fmt.Errorf("cluster: %w: node not started", gateway.ErrNoConnection)
		}
		return nil
	}
	return box.n.ApplyOp(op)
}

func (b *NATS) answerLocal(q *gateway.Query) (gateway.Answer, error) {
	box := b.node.Load()
	if box == nil {
		return gateway.Answer{}, nil
	}
	return box.n.AnswerQuery(q)
}

// Gather asks the nodes q's route names. A node that is gone or silent
// past the timeout is left out; this node answers directly.
func (b *NATS) Gather(ctx context.Context, q *gateway.Query) ([]gateway.Answer, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	if r := q.Route(); r.Kind == gateway.RouteNode && r.Name != b.id {
		return b.gatherNode(ctx, r.Name, q)
	}
	local, err := b.answerLocal(q)
	if err != nil {
		return nil, err
	}
	answers := []gateway.Answer{local}
	if q.Route().Kind == gateway.RouteNode {
		return answers, nil
	}
	return b.gatherAll(ctx, q, answers)
}

func (b *NATS) gatherNode(ctx context.Context, node string, q *gateway.Query) ([]gateway.Answer, error) {
	if node == "" {
		return nil, nil
	}
	reply, err := b.request(ctx, nodeSubject(node), &envelope{Kind: kindQuery, Query: q})
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return nil, nil // gone or silent: it holds nothing we can reach
	case err != nil:
		return nil, fmt.Errorf("cluster: gather from node %s: %w", node, err)
	}
	if err := replyError(node, reply); err != nil {
		return nil, err
	}
	if reply.Answer == nil {
		return nil, nil
	}
	return []gateway.Answer{*reply.Answer}, nil
}

// gatherAll asks every node on the query subject and collects answers until
// every live member answered or the gather timeout passes.
func (b *NATS) gatherAll(ctx context.Context, q *gateway.Query, answers []gateway.Answer) ([]gateway.Answer, error) {
	pending := map[string]bool{}
	for _, m := range b.mem.live() {
		pending[m.ID] = true
	}
	if len(pending) == 0 {
		return answers, nil
	}
	data, err := b.marshal(&envelope{Kind: kindQuery, Query: q})
	if err != nil {
		return nil, err
	}
	inbox := b.nc.NewRespInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("cluster: gather: %w", err)
	}
	defer sub.Unsubscribe()
	if err := b.nc.PublishRequest(subjectQuery, inbox, data); err != nil {
		b.bufDrops.Add(1)
		return answers, nil // the others are unreachable: answer for this node
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.GatherTimeout)
	defer cancel()
	answered := map[string]bool{b.id: true}
	for len(pending) > 0 {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			break // timeout: the silent are left out
		}
		env, err := decodeEnvelope(msg.Data)
		if err == nil && (env.Kind != kindReply || answered[env.Node]) {
			err = fmt.Errorf("%w: unexpected %s from %s", errBadMessage, env.Kind, env.Node)
		}
		if err != nil {
			b.drop("gather reply", err)
			continue
		}
		answered[env.Node] = true
		delete(pending, env.Node)
		if env.Err != "" || env.Answer == nil {
			b.drop("gather reply", replyError(env.Node, env))
			continue
		}
		answers = append(answers, *env.Answer)
	}
	return answers, nil
}

// request sends env to one node and decodes its reply.
func (b *NATS) request(ctx context.Context, subj string, env *envelope) (*envelope, error) {
	data, err := b.marshal(env)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
	defer cancel()
	msg, err := b.nc.RequestWithContext(ctx, subj, data)
	if err != nil {
		return nil, err
	}
	reply, err := decodeEnvelope(msg.Data)
	if err != nil {
		return nil, err
	}
	if reply.Kind != kindReply {
		return nil, fmt.Errorf("%w: got %q, want a reply", errBadMessage, reply.Kind)
	}
	return reply, nil
}

func (b *NATS) marshal(env *envelope) ([]byte, error) {
	env.V, env.Node = wireVersion, b.id
	data, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode %s: %w", env.Kind, err)
	}
	return data, nil
}

// publishEnvelope publishes env, counting what NATS cannot take.
func (b *NATS) publishEnvelope(subj string, env *envelope) {
	data, err := b.marshal(env)
	if err != nil {
		b.log.Error("cluster: publish", "subject", subj, "err", err)
		return
	}
	if err := b.nc.Publish(subj, data); err != nil {
		b.bufDrops.Add(1)
		b.logDrop("publish", subj, err)
	}
}

// dispatch applies received ops and answers queries, one at a time in
// arrival order, so one sender's ops reach this node's clients in the order
// it published them whatever subjects they took.
func (b *NATS) dispatch() {
	defer b.wg.Done()
	for {
		select {
		case <-b.stop:
			return
		case msg := <-b.in:
			b.handle(msg)
		}
	}
}

func (b *NATS) handle(msg *nats.Msg) {
	env, err := decodeEnvelope(msg.Data)
	if err != nil {
		b.drop(msg.Subject, err)
		b.respond(msg, &envelope{Kind: kindReply, Err: err.Error(), Code: codeInvalid})
		return
	}
	if env.Node == b.id && msg.Reply == "" {
		return // our own publication, applied when published
	}
	switch env.Kind {
	case kindOp:
		if opSubject(env.Op) != msg.Subject {
			err := fmt.Errorf("%w: op for %s arrived on %s", errBadMessage, opSubject(env.Op), msg.Subject)
			b.drop(msg.Subject, err)
			b.respond(msg, &envelope{Kind: kindReply, Err: err.Error(), Code: codeInvalid})
			return
		}
		b.received.Add(1)
		err := b.applyLocal(env.Op)
		if msg.Reply != "" {
			rep := &envelope{Kind: kindReply}
			if err != nil {
				rep.Err, rep.Code = err.Error(), errorCode(err)
			}
			b.respond(msg, rep)
		} else if err != nil {
			b.drop(msg.Subject, err)
		}
	case kindQuery:
		if env.Node == b.id {
			return // Gather answered for this node directly
		}
		b.received.Add(1)
		a, err := b.answerLocal(env.Query)
		rep := &envelope{Kind: kindReply, Answer: &a}
		if err != nil {
			rep = &envelope{Kind: kindReply, Err: err.Error(), Code: errorCode(err)}
		}
		b.respond(msg, rep)
	default:
		b.drop(msg.Subject, fmt.Errorf("%w: unexpected %q", errBadMessage, env.Kind))
	}
}

func (b *NATS) respond(msg *nats.Msg, env *envelope) {
	if msg.Reply == "" {
		return
	}
	b.publishEnvelope(msg.Reply, env)
}

// drop counts a refused message and logs it, at most once a second so a
// flood of garbage cannot flood the log too.
func (b *NATS) drop(where string, err error) {
	b.dropped.Add(1)
	b.logDrop("drop", where, err)
}

func (b *NATS) logDrop(what, where string, err error) {
	now := time.Now().UnixNano()
	last := b.lastLog.Load()
	if now-last < int64(time.Second) || !b.lastLog.CompareAndSwap(last, now) {
		return
	}
	s := b.Stats()
	b.log.Warn("cluster: message "+what, "subject", where, "err", err,
		"dropped", s.Dropped, "bufferedDrops", s.BufferedDrops)
}
