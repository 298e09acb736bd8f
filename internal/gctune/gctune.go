// Package gctune keeps the garbage collector's heap goal at least a fixed
// headroom above the live heap.
//
// With GOGC=100 the runtime starts a collection once the heap has grown by
// the live heap's size (plus the goroutine stacks and globals it scans),
// and by at least 4 MB. A gateway serving a hundred busy clients keeps
// only 2 to 3 MB live, so in the round-trip benchmark it collected about
// 22 times a second, each collection scanning every goroutine's stack: 5
// to 7% of the gateway's CPU. A large live heap (thousands of idle
// connections) already gets a large goal; a small one gets the headroom
// instead, memory the process may use anyway, and collections become
// rarer in proportion. After every collection the tuner sets GOGC so that
// the next goal is max(the goal at the base GOGC, live + headroom).
//
// A GOGC set in the environment is the operator's choice and is left
// alone, and GOMEMLIMIT still bounds the heap whatever GOGC says.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The runtime metrics the heap goal is computed from: the heap the last
// collection found live, and the stacks and globals it scanned.
var goalInputs = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Tuner adjusts GOGC after every collection; see the package comment.
type Tuner struct {
	headroom uint64
	base     int

	mu      sync.Mutex
	stopped bool
	percent int              // the GOGC last set
	sample  []metrics.Sample // liveHeap, stacks, globals; only tune reads it
}

// Start tunes GOGC for headroom bytes until Stop. It returns nil, and
// changes nothing, when headroom is 0 or GOGC is set in the environment.
// Only one Tuner should run in a process.
func Start(headroom uint64) *Tuner {
	if headroom == 0 || os.Getenv("GOGC") != "" {
		return nil
	}
	// SetGCPercent is the one reader of GOGC that tells "off" (-1).
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if base <= 0 {
		return nil // collection off: nothing to tune
	}
	t := &Tuner{headroom: headroom, base: base, percent: base}
	for _, name := range goalInputs {
		t.sample = append(t.sample, metrics.Sample{Name: name})
	}
	t.tune()
	t.arm()
	return t
}

// Stop ends the tuning and restores the GOGC found at Start. It may be
// called on a nil Tuner.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	debug.SetGCPercent(t.base)
}

// Percent is the GOGC the tuner set last.
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}

// sentinel is garbage as soon as it is made: its finalizer runs after the
// next collection, tunes, and arms the next sentinel.
type sentinel struct{ t *Tuner }

func (t *Tuner) arm() {
	runtime.SetFinalizer(&sentinel{t}, func(s *sentinel) {
		if s.t.tune() {
			s.t.arm()
		}
	})
}

// tune sets GOGC for the heap the last collection found, and reports
// whether the tuner still runs.
func (t *Tuner) tune() bool {
	metrics.Read(t.sample)
	want := goalPercent(t.base, t.headroom, t.value(0), t.value(1)+t.value(2))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	// A change under a tenth is not worth the runtime's recomputation of
	// its pacing.
	if d := want - t.percent; d*10 > t.percent || -d*10 > t.percent {
		debug.SetGCPercent(want)
		t.percent = want
	}
	return true
}

func (t *Tuner) value(i int) uint64 {
	if v := t.sample[i].Value; v.Kind() == metrics.KindUint64 {
		return v.Uint64()
	}
	return 0
}

// runtimeHeapMinimum is the runtime's smallest heap goal at GOGC=100; it
// scales with GOGC (4 MiB × GOGC/100).
const runtimeHeapMinimum = 4 << 20

// goalPercent is the GOGC at which a heap of live bytes, with roots bytes of
// goroutine stacks and globals, gets the goal max(the goal at base, live +
// headroom). The runtime's goal is live + (live + roots) × GOGC/100, and at
// least runtimeHeapMinimum × GOGC/100, which must stay under the goal
// wanted.
func goalPercent(base int, headroom, live, roots uint64) int {
	p := headroom * 100 / max(live+roots, 1)
	p = min(p, (live+headroom)*100/runtimeHeapMinimum)
	return max(base, int(p))
}
