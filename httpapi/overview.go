package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/delivery"
)

// ClusterView is what a clustered node knows of the cluster, for the admin
// overview: the live nodes and the health of its own bus connection.
type ClusterView struct {
	Nodes []NodeView `json:"nodes"`
	Bus   BusView    `json:"bus"`
}

// NodeView is one live node as its heartbeats describe it.
type NodeView struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Connections is its client connections at its last heartbeat.
	Connections int `json:"connections"`
	// Hubs is its connections per hub at its last heartbeat; nil when the
	// node does not announce them (an older version).
	Hubs     map[string]int `json:"hubs"`
	LastSeen time.Time      `json:"lastSeen"`
	Self     bool           `json:"self,omitempty"`
}

// BusView is this node's NATS bus: connected or not, and its counters
// since start.
type BusView struct {
	Healthy bool `json:"healthy"`
	// Received counts bus messages received; Dropped those refused as
	// malformed or of another version; BufferedDrops those lost because
	// the buffer for a disconnected NATS filled.
	Received      int64 `json:"received"`
	Dropped       int64 `json:"dropped"`
	BufferedDrops int64 `json:"bufferedDrops"`
}

// overviewFailures is how many of an upstream's latest failed deliveries
// the overview lists.
const overviewFailures = 5

// overview is the answer of GET /admin/overview: everything the dashboard
// shows, in one request, so a poll every few seconds costs one round trip.
type overview struct {
	Node string    `json:"node"`
	Time time.Time `json:"time"`
	// Ready and Reasons are what /readyz says.
	Ready     bool                   `json:"ready"`
	Reasons   []string               `json:"reasons"`
	Hubs      []hubOverview          `json:"hubs"`
	Upstreams []upstreamOverview     `json:"upstreams"`
	Outbox    *delivery.OutboxStatus `json:"outbox"`
	// Cluster is nil on a single node.
	Cluster       *ClusterView `json:"cluster"`
	SlowConsumers int64        `json:"slowConsumers"`
}

// hubOverview is a configured hub, or one with connections that is not
// (any more) configured, with its live figures.
type hubOverview struct {
	Name           string `json:"name"`
	Configured     bool   `json:"configured"`
	AllowAnonymous bool   `json:"allowAnonymous"`
	// Connections is the cluster-wide count: this node's now plus the
	// others' at their last heartbeat.
	Connections int `json:"connections"`
	// Nodes is the count per node id (this node's included).
	Nodes map[string]int `json:"nodes"`
	// MessagesIn and MessagesOut count this node's client invocations and
	// the invocations it queued to clients, since start; the dashboard
	// turns two readings into a rate.
	MessagesIn  int64 `json:"messagesIn"`
	MessagesOut int64 `json:"messagesOut"`
}

// upstreamOverview is one upstream with its delivery state and what its
// delivery log says.
type upstreamOverview struct {
	Hub            string                 `json:"hub"`
	Name           string                 `json:"name"`
	URLTemplate    string                 `json:"urlTemplate"`
	Events         []string               `json:"events"`
	Breaker        delivery.BreakerStatus `json:"breaker"`
	Outbox         int                    `json:"outbox"`
	Disabled       bool                   `json:"disabled"`
	DisabledReason string                 `json:"disabledReason,omitempty"`
	// Latency summarises the answered deliveries in the log; nil when
	// there are none.
	Latency *latencySummary `json:"latency"`
	// LastFailures are the latest failed deliveries, newest first.
	LastFailures []delivery.Delivery `json:"lastFailures"`
	// LastDelivery is the newest delivery, failed or not.
	LastDelivery *delivery.Delivery `json:"lastDelivery"`
}

// latencySummary is over the deliveries the upstream answered (with any
// status) among those its delivery log keeps.
type latencySummary struct {
	Samples int     `json:"samples"`
	LastMS  float64 `json:"lastMs"`
	P50MS   float64 `json:"p50Ms"`
	P95MS   float64 `json:"p95Ms"`
	MaxMS   float64 `json:"maxMs"`
}

func (s *Server) overviewRoutes(g *echo.Group) {
	g.GET("/overview", s.overview)
	g.POST("/hubs/:hub/\\:send", s.adminSend)
}

func (s *Server) overview(c echo.Context) error {
	ctx := c.Request().Context()
	out := overview{Node: s.cfg.Gateway.NodeID(), Time: time.Now().UTC(), Ready: true, Reasons: []string{},
		Hubs: []hubOverview{}, Upstreams: []upstreamOverview{}, SlowConsumers: s.cfg.Gateway.SlowConsumers()}
	if s.cfg.Readiness != nil {
		r := s.cfg.Readiness(ctx)
		out.Ready = r.Ready
		if r.Reasons != nil {
			out.Reasons = r.Reasons
		}
	}
	if s.cfg.Cluster != nil {
		cv := s.cfg.Cluster()
		out.Cluster = &cv
	}

	hubs, err := s.cfg.Store.Hubs(ctx)
	if err != nil {
		return err
	}
	byName := map[string]*hubOverview{}
	for _, h := range hubs {
		out.Hubs = append(out.Hubs, hubOverview{Name: h.Name, Configured: true, AllowAnonymous: h.AllowAnonymous, Nodes: map[string]int{}})
	}
	for i := range out.Hubs {
		byName[out.Hubs[i].Name] = &out.Hubs[i]
	}
	hub := func(name string) *hubOverview {
		if h, ok := byName[name]; ok {
			return h
		}
		out.Hubs = append(out.Hubs, hubOverview{Name: name, Nodes: map[string]int{}})
		// Appending may move the slice: rebuild the index.
		for i := range out.Hubs {
			byName[out.Hubs[i].Name] = &out.Hubs[i]
		}
		return byName[name]
	}
	self := s.cfg.Gateway.NodeID()
	for _, t := range s.cfg.Gateway.Traffic() {
		h := hub(t.Name)
		h.MessagesIn, h.MessagesOut = t.MessagesIn, t.MessagesOut
		h.Connections += t.Connections
		h.Nodes[self] = t.Connections
	}
	if out.Cluster != nil {
		for _, n := range out.Cluster.Nodes {
			if n.Self {
				continue
			}
			for name, count := range n.Hubs {
				h := hub(name)
				h.Connections += count
				h.Nodes[n.ID] = count
			}
		}
	}
	// A hub this node never saw and no node announces has no entry for
	// this node yet: show it as 0 here rather than leave the node out.
	for i := range out.Hubs {
		if _, ok := out.Hubs[i].Nodes[self]; !ok {
			out.Hubs[i].Nodes[self] = 0
		}
	}
	sort.Slice(out.Hubs, func(i, j int) bool { return out.Hubs[i].Name < out.Hubs[j].Name })

	if s.cfg.Deliveries != nil {
		st := s.cfg.Deliveries.Status()
		out.Outbox = &st.Outbox
		for _, u := range st.Upstreams {
			out.Upstreams = append(out.Upstreams, s.upstreamOverview(c, u))
		}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) upstreamOverview(c echo.Context, u delivery.UpstreamStatus) upstreamOverview {
	v := upstreamOverview{Hub: u.Hub, Name: u.Name, Breaker: u.Breaker, Outbox: u.Outbox,
		Disabled: u.Disabled, DisabledReason: u.DisabledReason, LastFailures: []delivery.Delivery{}}
	if cfg, err := s.cfg.Store.Upstream(c.Request().Context(), u.Hub, u.Name); err == nil {
		v.URLTemplate, v.Events = cfg.URLTemplate, cfg.Events
	}
	log, _ := s.cfg.Deliveries.DeliveryLog(u.Hub, u.Name) // newest first
	if len(log) > 0 {
		v.LastDelivery = &log[0]
	}
	var lat []float64
	for _, d := range log {
		if d.Error != "" && len(v.LastFailures) < overviewFailures {
			v.LastFailures = append(v.LastFailures, d)
		}
		if d.Status != 0 { // answered: a latency worth showing
			lat = append(lat, d.LatencyMS)
		}
	}
	if len(lat) > 0 {
		last := lat[0]
		slices.Sort(lat)
		v.Latency = &latencySummary{Samples: len(lat), LastMS: last,
			P50MS: percentile(lat, 0.50), P95MS: percentile(lat, 0.95), MaxMS: lat[len(lat)-1]}
	}
	return v
}

// percentile of sorted values by the nearest-rank method.
func percentile(sorted []float64, p float64) float64 {
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// adminSendInput is the body of POST /admin/hubs/{hub}/:send.
type adminSendInput struct {
	Target    string          `json:"target"`
	Arguments json.RawMessage `json:"arguments"`
	// Group, when set, sends to the group only; else to the whole hub.
	Group string `json:"group"`
}

// adminSend answers POST /admin/hubs/{hub}/:send: a message to every
// connection of the hub (or of one group), on every node, with the admin
// key, so an admin can check that clients receive without minting a REST
// token. It answers how many connections the hub (or this node's part of
// the group) had when it was sent.
func (s *Server) adminSend(c echo.Context) error {
	name := c.Param("hub")
	if _, apiErr := s.findHub(c.Request().Context(), name); apiErr != nil {
		return apiErr
	}
	var in adminSendInput
	if err := decodeStrict(c, &in); err != nil {
		return err
	}
	a := actions.Action{Action: actions.Broadcast, Target: in.Target, Arguments: in.Arguments}
	if in.Group != "" {
		a = actions.Action{Action: actions.SendToGroup, Group: in.Group, Target: in.Target, Arguments: in.Arguments}
	}
	if len(a.Arguments) == 0 || string(a.Arguments) == "null" {
		a.Arguments = json.RawMessage("[]")
	}
	// Validate checks target, group and arguments with the rules of
	// package input, as for a REST call.
	if err := a.Validate(false); err != nil {
		return fail(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "actions: "))
	}
	if err := s.cfg.Gateway.Apply(c.Request().Context(), name, &a); err != nil {
		if errors.Is(err, actions.ErrInvalid) {
			return fail(http.StatusBadRequest, err.Error())
		}
		return fmt.Errorf("httpapi: admin send: %w", err)
	}
	local := 0
	for _, t := range s.cfg.Gateway.Traffic() {
		if t.Name == name {
			local = t.Connections
		}
	}
	return c.JSON(http.StatusAccepted, map[string]any{"hub": name, "target": in.Target, "group": in.Group,
		"connectionsOnThisNode": local})
}
