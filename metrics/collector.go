package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-gw/switchboard/delivery"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The metrics the collector reads at scrape time. Each is documented in
// docs/operations.md.
var (
	descConns = desc("switchboard_connections",
		"Client connections open on this node.", "hub", "transport", "protocol")
	descOpened = desc("switchboard_connections_opened_total",
		"Client connections that completed their handshake.", "hub", "transport", "protocol")
	descClosed = desc("switchboard_connections_closed_total",
		"Client connections that ended, by why.", "hub", "transport", "protocol", "reason")
	descReceived = desc("switchboard_messages_received_total",
		"Invocations received from clients (invoke and send).", "hub")
	descSent = desc("switchboard_messages_sent_total",
		"Invocations queued to clients: one per recipient of a send.", "hub")
	descDropped = desc("switchboard_messages_dropped_total",
		"Recipients a message was not queued for: send queue full (slow consumer), connection closing, or a protocol that cannot carry it.", "hub")
	descSlow = desc("switchboard_slow_consumer_closes_total",
		"Connections closed because their send queue overflowed; the messages that overflowed it were dropped.")
	descStuck = desc("switchboard_stuck_write_aborts_total",
		"WebSocket sockets dropped because one write took longer than the write timeout (10 s): the client stopped reading.")
	descLimits = desc("switchboard_limits_hit_total",
		"Requests and messages refused by a limit.", "limit")
	descBreaker = desc("switchboard_upstream_breaker_state",
		"Circuit breaker of an upstream: 0 closed, 1 half-open, 2 open, 3 disabled (it answered 410 Gone).", "hub", "upstream")
	descUpOutbox = desc("switchboard_upstream_outbox_depth",
		"Notifications waiting for one upstream.", "hub", "upstream")
	descOutbox = desc("switchboard_outbox_depth",
		"Notifications in the outbox, not yet delivered.")
	descOutboxLimit = desc("switchboard_outbox_limit",
		"Notifications the outbox keeps before it drops the oldest.")
	descOutboxAge = desc("switchboard_outbox_oldest_age_seconds",
		"Age of the oldest undelivered notification; 0 when the outbox is empty.")
	descOutboxDropped = desc("switchboard_outbox_dropped_total",
		"Notifications dropped undelivered: the outbox was full or their upstream was removed.")
	descOutboxExpired = desc("switchboard_outbox_expired_total",
		"Notifications dropped undelivered after the outbox TTL.")
	descREST = desc("switchboard_rest_calls_total",
		"REST API calls by operation (method and route) and HTTP status.", "operation", "status")
	descBusReceived = desc("switchboard_bus_messages_received_total",
		"Messages from other nodes this node acted on (clustered nodes only).", "node")
	descBusDropped = desc("switchboard_bus_messages_dropped_total",
		"Bus messages lost, by why: invalid (received and refused), buffer (not published: NATS unreachable and the reconnect buffer full).", "node", "reason")
)

// collector turns the parts' counters into samples at scrape time.
type collector struct {
	src Sources
}

var _ prometheus.Collector = (*collector)(nil)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descOpened, descClosed, descReceived, descSent, descDropped, descSlow, descStuck, descLimits,
		descBreaker, descUpOutbox, descOutbox, descOutboxLimit, descOutboxAge, descOutboxDropped, descOutboxExpired,
		descREST, descBusReceived, descBusDropped} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	limits := map[string]int64{}
	if g := s.Gateway; g != nil {
		for _, st := range g.ConnStats() {
			gauge(descConns, float64(st.Open()), st.Hub, st.Transport, st.Protocol)
			counter(descOpened, float64(st.Opened), st.Hub, st.Transport, st.Protocol)
			for kind, n := range st.Closed {
				counter(descClosed, float64(n), st.Hub, st.Transport, st.Protocol, string(kind))
			}
		}
		for _, st := range g.MessageStats() {
			counter(descReceived, float64(st.Received), st.Hub)
			counter(descSent, float64(st.Sent), st.Hub)
			counter(descDropped, float64(st.Dropped), st.Hub)
		}
		counter(descSlow, float64(g.SlowConsumers()))
		counter(descStuck, float64(g.StuckWrites()))
		ls := g.LimitStats()
		limits["invocationsRateLimited"] = ls.InvocationsRateLimited
		limits["sendsRateLimited"] = ls.SendsRateLimited
		limits["rateLimitCloses"] = ls.RateLimitCloses
		limits["invocationsQueueFull"] = ls.InvocationsQueueFull
		limits["sendsQueueFull"] = ls.SendsQueueFull
		limits["groupJoinsRefused"] = ls.GroupJoinsRefused
	}
	if s.ClientLimitsRefused != nil {
		for k, v := range s.ClientLimitsRefused() {
			limits[k] = v
		}
	}
	for k, v := range limits {
		counter(descLimits, float64(v), k)
	}
	if s.Deliveries != nil {
		st := s.Deliveries()
		gauge(descOutbox, float64(st.Outbox.Depth))
		gauge(descOutboxLimit, float64(st.Outbox.Limit))
		age := 0.0
		if !st.Outbox.Oldest.IsZero() {
			age = max(0, s.Now().Sub(st.Outbox.Oldest).Seconds())
		}
		gauge(descOutboxAge, age)
		counter(descOutboxDropped, float64(st.Outbox.Dropped))
		counter(descOutboxExpired, float64(st.Outbox.Expired))
		for _, u := range st.Upstreams {
			gauge(descBreaker, breakerValue(u), u.Hub, u.Name)
			gauge(descUpOutbox, float64(u.Outbox), u.Hub, u.Name)
		}
	}
	if s.REST != nil {
		for _, r := range s.REST() {
			counter(descREST, float64(r.Count), r.Operation, strconv.Itoa(r.Status))
		}
	}
	if s.Bus != nil && s.Gateway != nil {
		st, node := s.Bus(), s.Gateway.NodeID()
		counter(descBusReceived, float64(st.Received), node)
		counter(descBusDropped, float64(st.Dropped), node, "invalid")
		counter(descBusDropped, float64(st.BufferedDrops), node, "buffer")
	}
}

func breakerValue(u delivery.UpstreamStatus) float64 {
	switch {
	case u.Disabled:
		return 3
	case u.Breaker.State == delivery.BreakerOpen:
		return 2
	case u.Breaker.State == delivery.BreakerHalfOpen:
		return 1
	}
	return 0
}
