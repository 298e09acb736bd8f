package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-gw/switchboard/internal/kvlist"
)

// The Registry's buckets. Node ids and connection ids are KV-key safe: a
// node id is hex, a connection id is "<node>.<base64url>".
const (
	bucketNodes  = "sb-nodes"  // node id → nodeValue: its connections are recorded and not yet reported
	bucketConns  = "sb-conns"  // connection id → connValue
	bucketClaims = "sb-claims" // dead node id → claimValue
)

// markerTTL is how long delete markers stay in the buckets: without it every
// closed connection would leave one behind for good.
const markerTTL = time.Minute

// writers bounds the record writes in flight at once.
const writers = 16

// ConnRecord is a connection as the registry keeps it.
type ConnRecord struct {
	Hub, ConnectionID, UserID string
}

// Liveness says which nodes are alive: the one source of truth the Registry
// decides death from. *NATS is one: its membership, kept by the bus's
// heartbeats (Members).
type Liveness interface {
	// Live returns the ids of the nodes alive now, this one included. ok is
	// false while this node is cut off from the others and cannot tell.
	// session changes each time this node's connection was lost and made
	// again, so that the caller knows the others may have gone unheard in
	// between even when it did not ask during the outage.
	Live() (ids []string, session uint64, ok bool)
}

var _ Liveness = (*NATS)(nil)

// RegistryOptions configures NewRegistry.
type RegistryOptions struct {
	// Node is this node's id, the prefix of its connection ids. Required,
	// and unique per process start (the gateway's random id is): records a
	// crashed process left under an id that a new process reuses would be
	// taken for the new one's and never reported.
	Node string
	// URL is this node's public URL, kept in its node record for people
	// reading the bucket.
	URL string
	// Live is the membership that says which nodes are alive: the node's
	// bus. Required.
	Live Liveness
	// Interval is how often the registry looks for dead nodes, refreshes a
	// claim it holds, and retries writes that failed. Zero means 1 s.
	Interval time.Duration
	// DeadAfter is how long a node with records may stay out of the live
	// set, as this node observes it, before it is dead; the same goes for a
	// claim on a dead node staying unchanged. It also bounds each NATS round
	// trip. A node leaves the live set when the bus has not heard it for
	// MemberTTL (NATSOptions), so it is declared dead MemberTTL + DeadAfter
	// after its last heartbeat: 8 s with the defaults. DeadAfter must leave
	// live nodes time to be heard after this node reconnects: several of the
	// bus's HeartbeatIntervals. Zero means 5 s.
	DeadAfter time.Duration
	// Replicas is how many JetStream servers keep each bucket (1 to 5).
	// Zero means 1.
	Replicas int
	// Now is the clock that times DeadAfter. Nil means time.Now.
	Now func() time.Time
	// Logger gets failures and dead-node recoveries. Nil means slog.Default.
	Logger *slog.Logger
	// OnLost is called for each connection of a dead node, by one surviving
	// node at a time, one connection at a time. It must make the
	// disconnected event durable before returning: the record is deleted
	// once it returns. Nil means the records are only deleted.
	OnLost func(ConnRecord)
}

// Registry keeps this node's open connections in JetStream KV, and has a
// surviving node report the connections of a node that died, so that their
// disconnected events are not lost with it. Whether a node is alive is not
// its to say: it asks Live (the bus's membership).
//
// Buckets: sb-nodes (node id → URL: the node's connections are recorded and
// not yet reported; written once at start, not a heartbeat), sb-conns
// (connection id → hub and user), sb-claims (dead node id → the node
// reporting it).
//
// Writes. Opened and Closed only note the latest state of the connection in
// memory; a writer goroutine puts or deletes the records, several at a time.
// While NATS is down, the writes fail and are retried every Interval, the
// latest state of each connection kept: the memory held is at most one entry
// per connection recorded or closed since, and a connection opened and
// closed before its record was written costs no write at all.
//
// Detection. Every Interval each node lists sb-nodes and asks Live; a node
// with a record that has stayed out of the live set for DeadAfter is dead.
// The time is this node's own clock, so clock skew does not matter; and only
// rounds in which this node was connected and could list count: after an
// outage (or a reconnection between two rounds) every node gets DeadAfter
// afresh, as nobody could be heard meanwhile, so an outage of NATS kills
// nobody. The first node to create the claim on a dead node calls OnLost for
// each of its connections, deleting each record after OnLost returned, then
// deletes the node record and the claim. A node started after every other
// died finds their node records and does the same, DeadAfter after it
// started.
//
// Guarantees. Each recorded connection of a dead node is reported once
// across the cluster, unless the claimer itself dies or stalls for DeadAfter
// mid-way: another node then takes over the claim and may report again the
// connections whose records the first did not delete yet (at least once). A
// node that was only cut off from the others for MemberTTL + DeadAfter is
// taken for dead: its connections are reported although open; it logs that
// when it finds its node record gone, and records itself again. Records
// written while a claimer works, by a node that was only cut off, may be
// left behind.
//
// All methods are safe for concurrent use. The registry runs two
// goroutines, which Close stops and waits for.
type Registry struct {
	opts                 RegistryOptions
	log                  *slog.Logger
	nodes, conns, claims jetstream.KeyValue

	ctx    context.Context // canceled by Close: stops the loops
	cancel context.CancelFunc
	wg     sync.WaitGroup // the detector and writer loops
	wake   chan struct{}  // buffered 1: pending has work

	mu       sync.Mutex // guards the fields below
	pending  map[string]connOp
	inFlight bool
	waiters  []chan struct{} // closed when pending is empty and nothing is in flight

	// Used by the detector loop only.
	absent    map[string]observed // node id → its record, out of the live set since
	claimSeen map[string]observed // dead node id → its claim, unchanged since
	counting  bool                // the last round counted: connected, and the list worked
	session   uint64              // Live's session in the last round

	// Detector rounds that counted (counted at their end, dead nodes
	// recovered), that did not, and dead nodes this node claimed and
	// reported; for tests.
	rounds, failedRounds, declared atomic.Int64
}

// connOp is the latest state of a connection still to be written.
type connOp struct {
	rec  ConnRecord
	open bool // put rec; else delete the record
	// tried: a put of the record may have reached NATS, so a later close
	// must delete it even if the put seemed to fail.
	tried bool
}

// observed is a record's revision and since when this node has seen it
// in the state it times (unchanged, or out of the live set).
type observed struct {
	rev   uint64
	since time.Time
}

type nodeValue struct {
	URL     string `json:"url"`
	Started int64  `json:"started"` // unix ms, the node's clock; for people reading the bucket
}

type connValue struct {
	Hub    string `json:"hub"`
	UserID string `json:"userId,omitempty"`
}

type claimValue struct {
	Claimer string `json:"claimer"`
	At      int64  `json:"at"` // unix ms; changes at each refresh
}

// NewRegistry creates or opens the buckets, writes this node's record and
// starts its loops. The registry owns no NATS connection: the caller keeps
// js's and closes it after Close.
func NewRegistry(ctx context.Context, js jetstream.JetStream, opts RegistryOptions) (*Registry, error) {
	if opts.Node == "" || strings.ContainsAny(opts.Node, ".*> ") {
		return nil, fmt.Errorf("cluster: new registry: node id %q must be non-empty, without dots, wildcards or spaces", opts.Node)
	}
	if opts.Live == nil {
		return nil, errors.New("cluster: new registry: Live is required: the registry decides death from the bus's membership")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.DeadAfter <= 0 {
		opts.DeadAfter = 5 * time.Second
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Registry{
		opts:      opts,
		log:       opts.Logger,
		wake:      make(chan struct{}, 1),
		pending:   make(map[string]connOp),
		absent:    make(map[string]observed),
		claimSeen: make(map[string]observed),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.log = r.log.With("node", opts.Node)
	for _, b := range []struct {
		name string
		kv   *jetstream.KeyValue
	}{{bucketNodes, &r.nodes}, {bucketConns, &r.conns}, {bucketClaims, &r.claims}} {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         b.name,
			Description:    "Switchboard connection registry",
			Replicas:       opts.Replicas,
			LimitMarkerTTL: markerTTL,
		})
		if err != nil {
			return nil, fmt.Errorf("cluster: new registry: open bucket %s: %w", b.name, err)
		}
		*b.kv = kv
	}
	if err := r.record(ctx); err != nil {
		return nil, fmt.Errorf("cluster: new registry: write node record: %w", err)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Add(2)
	go r.detectLoop()
	go r.writeLoop()
	return r, nil
}

// record writes this node's record, which tells the others that it may
// have connections recorded: they look for dead nodes among those.
func (r *Registry) record(ctx context.Context) error {
	b, _ := json.Marshal(nodeValue{URL: r.opts.URL, Started: r.opts.Now().UnixMilli()})
	_, err := r.nodes.Put(ctx, r.opts.Node, b)
	return err
}

// Opened records a connection, whose id must start with "<Node>.". It never
// blocks on NATS: the write is queued (see Registry for NATS outages).
func (r *Registry) Opened(rec ConnRecord) {
	r.mu.Lock()
	r.pending[rec.ConnectionID] = connOp{rec: rec, open: true}
	r.mu.Unlock()
	r.signal()
}

// Closed forgets a connection. It never blocks on NATS. A connection whose
// record was never written costs no write at all.
func (r *Registry) Closed(connectionID string) {
	r.mu.Lock()
	if op, ok := r.pending[connectionID]; ok && op.open && !op.tried {
		delete(r.pending, connectionID)
		r.notifyIdleLocked()
		r.mu.Unlock()
		return
	}
	r.pending[connectionID] = connOp{rec: ConnRecord{ConnectionID: connectionID}}
	r.mu.Unlock()
	r.signal()
}

// Close writes every queued change, stops the loops, then deletes this
// node's record, so that nobody reports its connections. Close the
// node's connections first: if records remain (or ctx ends before the queue
// is written), Close keeps the node record and returns an error, and a
// survivor reports what is recorded as lost, as for a crash. Close is for
// one call.
func (r *Registry) Close(ctx context.Context) error {
	var errs []error
	if err := r.flush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("cluster: close registry: write queued changes: %w", err))
	}
	r.cancel()
	r.wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	left, err := r.list(ctx, r.conns, r.opts.Node+".>")
	if err != nil {
		return fmt.Errorf("cluster: close registry: list remaining connections: %w", err)
	}
	if len(left) > 0 {
		return fmt.Errorf("cluster: close registry: %d connections still recorded; keeping the node record so that a survivor reports them", len(left))
	}
	if err := r.nodes.Purge(ctx, r.opts.Node, jetstream.PurgeTTL(markerTTL)); err != nil {
		return fmt.Errorf("cluster: close registry: delete node record: %w", err)
	}
	return nil
}

// flush waits until no change is queued or being written.
func (r *Registry) flush(ctx context.Context) error {
	done := make(chan struct{})
	r.mu.Lock()
	r.waiters = append(r.waiters, done)
	r.notifyIdleLocked()
	r.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Registry) notifyIdleLocked() {
	if len(r.pending) > 0 || r.inFlight {
		return
	}
	for _, w := range r.waiters {
		close(w)
	}
	r.waiters = nil
}

func (r *Registry) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// opCtx bounds one NATS round trip.
func (r *Registry) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.ctx, r.opts.DeadAfter)
}

// writeLoop writes the queued connection changes, latest state per
// connection, retrying every Interval while NATS fails.
func (r *Registry) writeLoop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.wake:
		}
		r.mu.Lock()
		batch := make([]connOp, 0, len(r.pending))
		for _, op := range r.pending {
			batch = append(batch, op)
		}
		r.pending = make(map[string]connOp)
		r.inFlight = len(batch) > 0
		r.mu.Unlock()

		failed := r.writeBatch(batch)

		r.mu.Lock()
		for _, op := range failed {
			r.requeueLocked(op)
		}
		r.inFlight = false
		r.notifyIdleLocked()
		more := len(r.pending) > 0
		r.mu.Unlock()
		if len(failed) > 0 {
			t := time.NewTimer(r.opts.Interval)
			select {
			case <-r.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if more {
			r.signal()
		}
	}
}

// requeueLocked puts back a change that was not written, unless a newer one
// for the same connection was queued meanwhile.
func (r *Registry) requeueLocked(op connOp) {
	id := op.rec.ConnectionID
	cur, newer := r.pending[id]
	switch {
	case !newer:
		r.pending[id] = op
	case op.open && !op.tried && !cur.open:
		delete(r.pending, id) // opened and closed, never written
	}
}

// writeBatch writes batch (one change per connection, so in any order) with
// up to writers round trips in flight, stopping at the first failure. It
// returns the changes not written.
func (r *Registry) writeBatch(batch []connOp) (failed []connOp) {
	var next atomic.Int64
	var broken atomic.Bool
	written := make([]bool, len(batch))
	var wg sync.WaitGroup
	for range min(writers, len(batch)) {
		wg.Go(func() {
			for !broken.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(batch) {
					return
				}
				if err := r.write(&batch[i]); err != nil {
					if !broken.Swap(true) && r.ctx.Err() == nil {
						r.log.Warn("cluster: registry: write connection records; retrying", "err", err)
					}
					return
				}
				written[i] = true
			}
		})
	}
	wg.Wait()
	for i, op := range batch {
		if !written[i] {
			failed = append(failed, op)
		}
	}
	return failed
}

func (r *Registry) write(op *connOp) error {
	ctx, cancel := r.opCtx()
	defer cancel()
	var err error
	if op.open {
		op.tried = true
		b, _ := json.Marshal(connValue{Hub: op.rec.Hub, UserID: op.rec.UserID})
		_, err = r.conns.Put(ctx, op.rec.ConnectionID, b)
	} else {
		err = r.conns.Purge(ctx, op.rec.ConnectionID, jetstream.PurgeTTL(markerTTL))
	}
	if errors.Is(err, jetstream.ErrInvalidKey) { // retrying cannot help
		r.log.Error("cluster: registry: connection id is not a KV key; not recorded", "conn", op.rec.ConnectionID)
		return nil
	}
	return err
}

// list returns the current entries of kv whose keys match filter.
func (r *Registry) list(ctx context.Context, kv jetstream.KeyValue, filter string) ([]jetstream.KeyValueEntry, error) {
	return kvlist.List(ctx, kv, filter)
}
