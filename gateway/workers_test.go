package gateway_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// TestInvocationWorkersArePooled: invocations and write loops run on
// pooled goroutines. One connection invoking in turn reuses a few (a
// goroutine per turn would leave none parked), a burst from several
// connections leaves at most three per connection, and goroutines idle
// for longer than the pool keeps them end, after which invocations still
// run.
func TestInvocationWorkersArePooled(t *testing.T) {
	var calls atomic.Int64
	r := withUpstream(t, gateway.Config{}, echo(&calls))
	p := r.peer("u")
	for i := range 20 {
		id := fmt.Sprint(i)
		p.send(invocationMsg(id, "echo", id))
		p.result(id, `["`+id+`"]`)
		// The completion is written before the goroutines park. At most
		// three ever run at once for this connection: its user-group
		// lookup and handshake write at connect, then its worker and write
		// loop, which reuse them.
		testutil.Eventually(t, waitFor, "the goroutines to park", func() bool {
			n := r.g.ParkedWorkers()
			return n >= 1 && n <= 3
		})
	}

	peers := []*peer{p, r.peer("v"), r.peer("w")}
	for round := range 5 {
		for i, q := range peers {
			q.send(invocationMsg(fmt.Sprint(round, i), "echo", "x"))
		}
		for i, q := range peers {
			q.result(fmt.Sprint(round, i), `["x"]`)
		}
	}
	testutil.Eventually(t, waitFor, "the workers to park", func() bool {
		n := r.g.ParkedWorkers()
		return n >= 1 && n <= 3*len(peers)
	})
	if n := r.g.ParkedWorkers(); n > 3*len(peers) {
		t.Fatalf("%d goroutines parked for %d connections", n, len(peers))
	}

	r.g.TrimWorkers(time.Second) // not idle long enough yet
	if r.g.ParkedWorkers() == 0 {
		t.Fatal("goroutines idle for less than the pool keeps them were ended")
	}
	r.g.TrimWorkers(time.Minute)
	if n := r.g.ParkedWorkers(); n != 0 {
		t.Fatalf("%d goroutines still parked after the idle limit", n)
	}
	p.send(invocationMsg("after", "echo", "y"))
	p.result("after", `["y"]`)
	if got := calls.Load(); got != 20+5*3+1 {
		t.Errorf("upstream saw %d echo calls, want %d", got, 20+5*3+1)
	}
}
