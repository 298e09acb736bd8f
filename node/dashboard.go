package node

import (
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/httpapi"
)

// clusterView describes the cluster for the admin overview: the live nodes
// from their heartbeats (this one with its figures of now) and this node's
// bus.
func (c *clustering) clusterView(self string) httpapi.ClusterView {
	var v httpapi.ClusterView
	for _, m := range c.bus.Members() {
		v.Nodes = append(v.Nodes, httpapi.NodeView{ID: m.ID, URL: m.URL, Connections: m.Conns,
			Hubs: m.Hubs, LastSeen: m.LastSeen.UTC(), Self: m.ID == self})
	}
	st := c.bus.Stats()
	v.Bus = httpapi.BusView{Healthy: c.bus.Healthy(), Received: st.Received, Dropped: st.Dropped, BufferedDrops: st.BufferedDrops}
	return v
}

// hubConns counts gw's connections per hub, leaving out hubs with none,
// for heartbeats (nil before gw exists).
func hubConns(gw *gateway.Gateway) map[string]int {
	if gw == nil {
		return nil
	}
	out := map[string]int{}
	for _, h := range gw.Status() {
		if h.Connections > 0 {
			out[h.Name] = h.Connections
		}
	}
	return out
}
