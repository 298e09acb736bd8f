package gateway

import (
	"sort"
	"sync/atomic"
)

// traffic counts a hub's messages on this node, for the admin dashboard's
// messages per second. Counters only grow; a reader derives rates from two
// readings.
type traffic struct {
	// in counts client invocations (invoke and send) the hub received.
	in atomic.Int64
	// out counts invocations queued to the hub's clients: each recipient
	// of a broadcast, group, user or connection send counts once.
	out atomic.Int64
}

// HubTraffic is one hub's message counters on this node since start.
type HubTraffic struct {
	Name        string `json:"name"`
	Connections int    `json:"connections"`
	MessagesIn  int64  `json:"messagesIn"`
	MessagesOut int64  `json:"messagesOut"`
}

// Traffic returns every hub this node has seen since start (with or
// without connections now) with its connections and message counters,
// sorted by name.
func (g *Gateway) Traffic() []HubTraffic {
	var out []HubTraffic
	g.hubs.Range(func(k, v any) bool {
		h := v.(*hub)
		out = append(out, HubTraffic{Name: k.(string), Connections: h.count(),
			MessagesIn: h.traffic.in.Load(), MessagesOut: h.traffic.out.Load()})
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
