package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// TestConnStatsCountLifecycles: three real WebSocket connections, ended
// by their client, by the client timeout and by a closeConnection action,
// are counted as opened once under their hub, transport and protocol and
// closed once each under the right kind; a broadcast counts one message
// sent per recipient.
func TestConnStatsCountLifecycles(t *testing.T) {
	r := newRig(t)
	byClient, _ := r.connect("a")
	silent, _ := r.connect("b")
	kickedWS, kicked := r.connect("c")

	r.g.ApplyLocal("hub", &actions.Action{Action: actions.Broadcast, Target: "t", Arguments: []byte(`[1]`)})
	for _, ws := range []*websocket.Conn{byClient, silent, kickedWS} {
		read(t, ws)
	}
	// The sockets the server closes are read to their end, so their close
	// handshakes complete at once.
	done := make(chan struct{}, 2)
	for _, ws := range []*websocket.Conn{silent, kickedWS} {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				if _, _, err := ws.Read(context.Background()); err != nil {
					return
				}
			}
		}()
	}
	defer func() { <-done; <-done }()
	if got := r.g.MessageStats(); len(got) != 1 || got[0].Hub != "hub" || got[0].Sent != 3 || got[0].Dropped != 0 {
		t.Errorf("MessageStats after a broadcast to 3: %+v, want hub sent 3 dropped 0", got)
	}

	byClient.Close(websocket.StatusNormalClosure, "")
	if err := r.g.ApplyLocal("hub", &actions.Action{Action: actions.CloseConnection, ConnectionID: kicked, Reason: "bye"}); err != nil {
		t.Fatal(err)
	}
	// b stays silent past the client timeout (c is gone before the sweep).
	testutil.Eventually(t, 10*time.Second, "c to close", func() bool { return closedTotal(r.g) == 2 })
	r.clk.Advance(31 * time.Second)
	r.g.Sweep(r.clk.Now())
	testutil.Eventually(t, 10*time.Second, "b to time out", func() bool { return closedTotal(r.g) == 3 })

	stats := r.g.ConnStats()
	if len(stats) != 1 {
		t.Fatalf("ConnStats: %+v, want one key", stats)
	}
	st := stats[0]
	if st.Hub != "hub" || st.Transport != "websockets" || st.Protocol != "json" || st.Opened != 3 || st.Open() != 0 {
		t.Errorf("ConnStats: %+v, want hub/websockets/json opened 3, open 0", st)
	}
	want := map[gateway.CloseKind]int64{gateway.CloseKindClient: 1, gateway.CloseKindTimeout: 1, gateway.CloseKindServer: 1}
	for k, v := range want {
		if st.Closed[k] != v {
			t.Errorf("closed %s = %d, want %d (all: %v)", k, st.Closed[k], v, st.Closed)
		}
	}
}

func closedTotal(g *gateway.Gateway) int64 {
	var n int64
	for _, st := range g.ConnStats() {
		for _, v := range st.Closed {
			n += v
		}
	}
	return n
}
