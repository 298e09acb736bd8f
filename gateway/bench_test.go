package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/protocol"
)

// BenchmarkBroadcast measures fan-out: encoding a group send once and
// queueing it to every member, plus the members' write loops (started,
// draining, ending) against a transport that discards the bytes. It is the
// cost of fan-out, not of sockets. Coalescing is off so the benchmark never
// waits on a window; every 256 sends it waits until everything queued has
// been written, so queues stay small and the write loops' cost is counted.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			g := New(Config{SweepInterval: -1, Logger: quiet, WriteCoalesce: -1})
			defer g.Shutdown(context.Background())
			h := g.hub("bench")
			trs := make([]*discard, n)
			for i := range trs {
				trs[i] = newDiscard()
				c := testConn(g, h, fmt.Sprintf("c%d", i), trs[i])
				h.joinGroup(c, "room")
			}
			a := &actions.Action{Action: actions.SendToGroup, Group: "room", Target: "newMessage",
				Arguments: json.RawMessage(`["hello, everyone",1732900000000]`)}
			size := int64(len(protocol.AppendInvocation(nil, "", a.Target, a.Arguments)))
			written := func() int64 {
				var sum int64
				for _, t := range trs {
					sum += t.written.Load()
				}
				return sum
			}
			wait := func(want int64) {
				deadline := time.Now().Add(time.Minute)
				for written() < want {
					if time.Now().After(deadline) {
						b.Fatalf("writes stalled: %d of %d bytes", written(), want)
					}
					runtime.Gosched()
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			sent := int64(0)
			for b.Loop() {
				if err := g.ApplyLocal("bench", a); err != nil {
					b.Fatal(err)
				}
				sent++
				if sent%256 == 0 {
					wait(sent * size * int64(n))
				}
			}
			wait(sent * size * int64(n))
			b.ReportMetric(float64(sent*int64(n))/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
