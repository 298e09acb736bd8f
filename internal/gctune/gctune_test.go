package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGoalPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		name                  string
		headroom, live, roots uint64
		want                  int
	}{
		// 2 MiB live, 1 MiB of stacks: 64 MiB of headroom would be GOGC
		// 2184, whose heap minimum (87 MiB) passes the 66 MiB wanted; 1650
		// keeps it at 66.
		{"small heap", 64 * mib, 2 * mib, 1 * mib, 1650},
		{"no heap yet", 64 * mib, 0, 0, 1600},
		// 20 MiB live, 12 of roots: 64 MiB over 32 scanned.
		{"medium heap", 64 * mib, 20 * mib, 12 * mib, 200},
		// Past the headroom the base value gives the larger goal.
		{"large heap", 64 * mib, 200 * mib, 60 * mib, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := goalPercent(100, tt.headroom, tt.live, tt.roots)
			if got != tt.want {
				t.Fatalf("goalPercent = %d, want %d", got, tt.want)
			}
			// The runtime's goal at that GOGC is at least what was asked.
			goal := max(tt.live+(tt.live+tt.roots)*uint64(got)/100, runtimeHeapMinimum*uint64(got)/100)
			if want := max(tt.live+tt.headroom, tt.live+(tt.live+tt.roots)); goal < want*99/100 {
				t.Errorf("goal %d MiB at GOGC %d, want at least %d MiB", goal/mib, got, want/mib)
			}
			if limit := tt.live + tt.headroom; got > 100 && runtimeHeapMinimum*uint64(got)/100 > limit {
				t.Errorf("GOGC %d puts the runtime's minimum heap above the %d MiB wanted", got, limit/mib)
			}
		})
	}
}

// gogc is the GOGC the runtime applies now.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// garbage allocates n bytes in 4 KiB pieces that die at once, and returns
// how many collections ran meanwhile.
func garbage(n int) uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.NumGC
	var keep []byte
	for i := 0; i < n/4096; i++ {
		keep = make([]byte, 4096)
		keep[0] = byte(i)
	}
	runtime.KeepAlive(keep)
	runtime.ReadMemStats(&ms)
	return ms.NumGC - before
}

// TestTunerMakesCollectionsRarer runs the tuner on this test's small heap
// and counts the collections that 64 MiB of short-lived garbage causes:
// with a goal of live + 32 MiB there are at most a few, where GOGC=100
// (a goal of 4 MiB here) makes more than ten. It also checks that the
// runtime applies the GOGC the tuner set, and that Stop restores it.
func TestTunerMakesCollectionsRarer(t *testing.T) {
	t.Setenv("GOGC", "") // an operator's GOGC would switch the tuner off
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)

	runtime.GC()
	untuned := garbage(64 << 20)

	tu := Start(32 << 20)
	if tu == nil {
		t.Fatal("Start returned no tuner")
	}
	defer tu.Stop()
	runtime.GC() // runs the first sentinel's finalizer, which tunes again
	deadline := time.Now().Add(10 * time.Second)
	for tu.Percent() == 100 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := tu.Percent(); got <= 100 {
		t.Fatalf("GOGC after collections of a small heap is %d; want it raised", got)
	}
	if got, want := gogc(), tu.Percent(); got != want {
		t.Fatalf("the runtime's GOGC is %d; the tuner set %d", got, want)
	}
	tuned := garbage(64 << 20)
	t.Logf("collections for 64 MiB of garbage: %d at GOGC=100, %d tuned (GOGC=%d)", untuned, tuned, tu.Percent())
	if tuned > 4 || tuned*3 > untuned {
		t.Errorf("64 MiB of garbage caused %d collections with the tuner, %d without; want at most 4, and a third", tuned, untuned)
	}

	tu.Stop()
	if got := gogc(); got != 100 {
		t.Errorf("GOGC after Stop is %d; want 100 again", got)
	}
}

func TestOperatorGOGCIsLeftAlone(t *testing.T) {
	t.Setenv("GOGC", "150")
	if tu := Start(64 << 20); tu != nil {
		tu.Stop()
		t.Fatal("Start tuned GOGC although the environment sets it")
	}
}
