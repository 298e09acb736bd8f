package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/cluster"
	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/metrics"
)

// nodeMetrics is the node's Prometheus registry and, when
// Config.MetricsListen is set, the listener that serves it without the
// admin key.
type nodeMetrics struct {
	m   *metrics.Metrics
	ln  net.Listener // nil unless MetricsListen
	srv *http.Server

	mu        sync.Mutex             // guards upstreams
	upstreams map[[2]string]struct{} // hub and name of the upstreams last loaded
}

// upstreamsLoaded drops the webhook series of the upstreams that are gone
// since the last load.
func (nm *nodeMetrics) upstreamsLoaded(ts []delivery.Target) {
	now := make(map[[2]string]struct{}, len(ts))
	for _, t := range ts {
		now[[2]string{t.Hub, t.Name}] = struct{}{}
	}
	nm.mu.Lock()
	defer nm.mu.Unlock()
	for k := range nm.upstreams {
		if _, ok := now[k]; !ok {
			nm.m.ForgetUpstream(k[0], k[1])
		}
	}
	nm.upstreams = now
}

// listenMetrics opens Config.MetricsListen, if set, so a node that cannot
// serve its metrics fails at start like one that cannot serve its API.
func (n *Node) listenMetrics() error {
	n.metrics.m = metrics.New()
	if n.cfg.MetricsListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("node: listen for metrics on %s: %w", n.cfg.MetricsListen, err)
	}
	n.metrics.ln = ln
	return nil
}

// observeAttempts wires the dispatcher's attempts into the metrics,
// keeping an OnAttempt the caller set.
func (n *Node) observeAttempts(dc *delivery.DispatcherConfig) {
	own := dc.OnAttempt
	dc.OnAttempt = func(a delivery.Attempt) {
		n.metrics.m.ObserveAttempt(a)
		if own != nil {
			own(a)
		}
	}
}

// serveMetrics points the collector at the node's parts and, with
// MetricsListen, serves /metrics there to anyone who can reach it.
func (n *Node) serveMetrics() {
	src := metrics.Sources{
		Gateway:             n.gw,
		Deliveries:          n.dispatcher.Status,
		REST:                n.api.RESTStats,
		ClientLimitsRefused: n.api.ClientLimitsRefused,
	}
	if n.cl != nil {
		bus := n.cl.bus
		src.Bus = func() cluster.NATSStats { return bus.Stats() }
	}
	n.metrics.m.SetSources(src)
	if n.metrics.ln == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.metrics.m.Handler())
	n.metrics.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() { _ = n.metrics.srv.Serve(n.metrics.ln) }()
}

// MetricsAddr is where /metrics is served without the admin key, nil
// unless Config.MetricsListen is set.
func (n *Node) MetricsAddr() net.Addr {
	if n.metrics.ln == nil {
		return nil
	}
	return n.metrics.ln.Addr()
}

// closeMetrics stops the metrics listener.
func (n *Node) closeMetrics(ctx context.Context) {
	switch {
	case n.metrics.srv != nil:
		_ = n.metrics.srv.Shutdown(ctx)
	case n.metrics.ln != nil:
		n.metrics.ln.Close() // Start failed before serving
	}
}
