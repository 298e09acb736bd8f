package node

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-gw/switchboard/cluster"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/store"
	"github.com/switchboard-gw/switchboard/upstream"
)

// ReasonNodeLost is the disconnected reason of connections whose node died.
const ReasonNodeLost = "node lost"

// clustering is what a node holds when it is part of a cluster: the NATS
// connection (and an embedded server, in development), the shared config in
// KV, the bus and the connection registry.
type clustering struct {
	embedded *natsembed.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	kv       *store.KV
	bus      *cluster.NATS
	registry *cluster.Registry
}

// attemptTimeout bounds one JetStream request while joining. A request sent
// while JetStream has no leader is never answered, so a node asks again
// rather than wait for the whole Config.JoinTimeout on the first request.
const attemptTimeout = 3 * time.Second

// joinCluster connects to NATS (starting an embedded server first if asked)
// and opens the shared config. An unreachable NATS is an error at once:
// a node that cannot join must not start as if it were alone.
func joinCluster(cfg Config) (*clustering, error) {
	c := &clustering{}
	url := cfg.NATS
	if e := cfg.NATSEmbedded; e != nil {
		// The routes may or may not name this server itself: the cluster
		// has at most one server more than distinct routes.
		if most := 1 + len(slices.Compact(slices.Sorted(slices.Values(e.Routes)))); cfg.KVReplicas > most {
			return nil, fmt.Errorf("node: --kv-replicas %d needs a NATS cluster of at least %d servers; the embedded server's --nats-route flags name at most %d",
				cfg.KVReplicas, cfg.KVReplicas, most)
		}
		srv, err := natsembed.Start(*e)
		if err != nil {
			return nil, fmt.Errorf("node: embedded NATS: %w", err)
		}
		c.embedded, url = srv, srv.URL()
	}
	opts := append(cluster.DialOptions("switchboard-"+cfg.NodeID, cfg.NATSBuffer), nats.Timeout(5*time.Second))
	if tlsOpt, err := cfg.TLS.natsTLS(cfg); err != nil {
		c.close(context.Background())
		return nil, err
	} else if tlsOpt != nil {
		opts = append(opts, tlsOpt)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		c.close(context.Background())
		return nil, fmt.Errorf("node: cannot reach NATS at %s: %w", url, err)
	}
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		c.close(context.Background())
		return nil, fmt.Errorf("node: JetStream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.JoinTimeout)
	defer cancel()
	if c.embedded != nil && len(cfg.NATSEmbedded.Routes) > 0 {
		if err := c.embedded.WaitJetStream(ctx); err != nil {
			c.close(context.Background())
			return nil, fmt.Errorf("node: embedded NATS cluster not ready after %s: %w", cfg.JoinTimeout, err)
		}
	}
	err = retryJetStream(ctx, func(ctx context.Context) (err error) {
		c.kv, err = store.OpenKV(ctx, c.js, store.WithKVReplicas(max(cfg.KVReplicas, 1)), store.WithKVSecrets(cfg.Secrets))
		return err
	})
	if err != nil {
		err = c.joinError(cfg, url, "the shared configuration", err)
		c.close(context.Background())
		return nil, err
	}
	return c, nil
}

// retryJetStream calls fn with attempts of attemptTimeout until it succeeds,
// fails for a reason retrying cannot change, or ctx ends.
func retryJetStream(ctx context.Context, fn func(ctx context.Context) error) error {
	for {
		attempt, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := fn(attempt)
		cancel()
		if err == nil || !retriable(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Error codes of JetStream answers about replicas. Too few servers for the
// replicas asked may mean they are still starting, so a node retries until
// JoinTimeout; a standalone server never takes more than one replica.
const (
	jsClusterNoPeers        = 10005 // no suitable peers for placement
	jsInsufficientResources = 10023
	jsReplicasNotSupported  = 10074 // replicas > 1 on a standalone server
)

// retriable reports whether asking again may succeed.
func retriable(err error) bool {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, store.ErrInvalid),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return false
	case errors.As(err, &api):
		return api.ErrorCode != jsReplicasNotSupported
	}
	return true
}

// joinError says why what (the shared configuration, the connection
// registry) could not be opened, naming the cause an operator can act on.
func (c *clustering) joinError(cfg Config, url, what string, err error) error {
	replicas := cfg.KVReplicas
	var api *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return fmt.Errorf("node: %s needs JetStream, which is not enabled on the NATS server at %s: start it with -js (or use --nats-embedded): %w", what, url, err)
	case errors.As(err, &api) && (api.ErrorCode == jsReplicasNotSupported || api.ErrorCode == jsInsufficientResources || api.ErrorCode == jsClusterNoPeers):
		return fmt.Errorf("node: %s: --kv-replicas %d asks for more JetStream servers than the NATS cluster at %s has running; start them, or lower --kv-replicas: %w", what, max(replicas, 1), url, err)
	case !retriable(err):
		return fmt.Errorf("node: %s: %w", what, err)
	}
	// Timed out: say whether JetStream answers at all.
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	if _, infoErr := c.js.AccountInfo(ctx); infoErr != nil {
		why := "a clustered JetStream has no meta leader until a majority of its servers run and are routed to each other"
		if c.embedded != nil {
			why = c.embedded.QuorumReport()
		}
		return fmt.Errorf("node: %s: JetStream at %s did not answer within %s: %s: %w", what, url, cfg.JoinTimeout, why, err)
	}
	return fmt.Errorf("node: %s: JetStream at %s answers, but its KV buckets did not within %s: the NATS servers holding their replicas are down or have no quorum "+
		"(with --kv-replicas 1 each bucket lives on a single server: start that server again; with 3, two of three must run): %w", what, url, cfg.JoinTimeout, err)
}

// start builds the gateway on the NATS bus, with the registry tracking its
// connections.
func (c *clustering) start(n *Node, gc *gateway.Config) error {
	// The bus heartbeats before the gateway that needs it exists.
	var gw atomic.Pointer[gateway.Gateway]
	bus, err := cluster.NewNATS(c.nc, nil, cluster.NATSOptions{
		NodeID: n.cfg.NodeID,
		URL:    n.cfg.PublicURL,
		Conns:  func() int { return connections(gw.Load()) },
		// HubConns feeds the dashboard's connections per hub and node.
		HubConns: func() map[string]int { return hubConns(gw.Load()) },
		Logger:   n.log,
	})
	if err != nil {
		return fmt.Errorf("node: bus: %w", err)
	}
	c.bus = bus
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.JoinTimeout)
	defer cancel()
	err = retryJetStream(ctx, func(ctx context.Context) (err error) {
		c.registry, err = cluster.NewRegistry(ctx, c.js, cluster.RegistryOptions{
			Node:     n.cfg.NodeID,
			URL:      n.cfg.PublicURL,
			Live:     bus, // the bus's membership decides which nodes are alive
			Replicas: max(n.cfg.KVReplicas, 1),
			Logger:   n.log,
			OnLost:   n.connectionLost,
		})
		return err
	})
	if err != nil {
		return c.joinError(n.cfg, n.cfg.NATS, "the connection registry", err)
	}
	gc.Bus = bus
	gc.Tracker = tracker{c.registry}
	n.gw = gateway.New(*gc)
	gw.Store(n.gw)
	bus.SetNode(n.gw)
	return nil
}

// liveNodes returns the public URLs of the live nodes, least loaded first.
// Connection counts come from heartbeats up to a second old, so a burst of
// negotiations would all go to the same node: the nodes within a small
// margin of the least loaded one are shuffled, spreading the burst.
func (c *clustering) liveNodes() []string {
	members := c.bus.Members()
	slices.SortStableFunc(members, func(a, b cluster.Member) int { return a.Conns - b.Conns })
	if len(members) == 0 {
		return nil
	}
	margin := max(members[0].Conns/10, 10)
	near := 1
	for near < len(members) && members[near].Conns <= members[0].Conns+margin {
		near++
	}
	rand.Shuffle(near, func(i, j int) { members[i], members[j] = members[j], members[i] })
	out := make([]string, 0, len(members))
	for _, m := range members {
		if m.URL != "" {
			out = append(out, m.URL)
		}
	}
	return out
}

// close leaves the cluster: the registry first (this node's connections are
// closed by then), then the bus, the NATS connection and an embedded server.
func (c *clustering) close(ctx context.Context) error {
	var errs []error
	if c.registry != nil {
		if err := c.registry.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if c.bus != nil {
		c.bus.Close()
	}
	if c.nc != nil {
		c.nc.Close()
	}
	if c.embedded != nil {
		c.embedded.Shutdown()
	}
	return errors.Join(errs...)
}

// connectionLost makes the disconnected event of a dead node's connection
// durable in this node's outbox; the registry calls it for exactly one node
// of the cluster.
func (n *Node) connectionLost(rec cluster.ConnRecord) {
	ev := &upstream.Event{Hub: rec.Hub, ConnectionID: rec.ConnectionID, Event: upstream.EventDisconnected, Reason: ReasonNodeLost}
	if rec.UserID != "" {
		u := rec.UserID
		ev.UserID = &u
	}
	n.dispatcher.Notify(context.Background(), ev) // no cause to trace: the node died
}

// connections counts gw's connections (0 before it exists).
func connections(gw *gateway.Gateway) int {
	if gw == nil {
		return 0
	}
	total := 0
	for _, h := range gw.Status() {
		total += h.Connections
	}
	return total
}

// tracker feeds the gateway's connections to the registry.
type tracker struct{ r *cluster.Registry }

func (t tracker) Opened(hub, id, user string) {
	t.r.Opened(cluster.ConnRecord{Hub: hub, ConnectionID: id, UserID: user})
}

func (t tracker) Closed(id string) { t.r.Closed(id) }

// newNodeID returns a random node id: short, and without the "." that
// separates it from the rest of a connection id.
func newNodeID() string {
	var b [4]byte
	crand.Read(b[:]) // crypto/rand never fails: it crashes the program instead (Go 1.24+)
	return hex.EncodeToString(b[:])
}
