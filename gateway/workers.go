package gateway

import (
	"sync"

	"github.com/switchboard-gw/switchboard/protocol"
)

// workerPool runs invocation workers (see invoker) and write loops on
// goroutines that outlive one turn. A webhook call runs deep (net/http's client, the
// breaker, the tracer) and grows a fresh goroutine's stack twice or more
// before it returns: a CPU profile of the round-trip benchmark had
// runtime.newstack at 7% of the gateway's time, all of it under
// invocation workers started per invocation. A pooled goroutine grows its
// stack once and keeps it for the next connection's turn. Write loops
// start whenever a quiet connection gets a message: in fan-out to 10k
// connections at 15 messages/s each, starting a goroutine per write
// (runtime.newproc1 and stackpoolalloc) was 7% of the gateway's time.
//
// Idle goroutines are kept last-in, first-out: under steady load the same
// few stay warm, and the ones a burst left over stay at the bottom, where
// the sweep ends them once they have been idle for workerIdle, so a quiet
// gateway holds none.
type workerPool struct {
	mu      sync.Mutex
	idle    []*pooledWorker // parked goroutines, the most recent last
	stopped bool            // Shutdown ended the pool: turns run on goroutines of their own
}

// pooledWorker is one parked goroutine and the channel that wakes it.
type pooledWorker struct {
	turns     chan workerTurn // capacity 1: handing a turn never blocks
	idleSince int64           // monoNow when it parked
}

// workerTurn is what a worker runs: c's invocation m, then c's queue; or,
// without an invoker, c's write loop; or fn, for work that would grow a
// connection's own stack (see Gateway.userGroups).
type workerTurn struct {
	c  *Conn
	iv *invoker
	m  *protocol.Message
	fn func()
}

func (t workerTurn) run() {
	switch {
	case t.fn != nil:
		t.fn()
	case t.iv == nil:
		t.c.writeLoop()
	default:
		t.c.work(t.iv, t.m)
	}
}

// workerIdle is how long a parked goroutine is kept.
const workerIdle = int64(2e9) // 2 s, in monoNow units (ns)

// run starts a worker's turn on a parked goroutine, or on a new one.
func (p *workerPool) run(t workerTurn) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.turns <- t
		return
	}
	p.mu.Unlock()
	go p.serve(&pooledWorker{turns: make(chan workerTurn, 1)}, t)
}

// serve runs turns until the sweep or Shutdown closes w.turns.
func (p *workerPool) serve(w *pooledWorker, t workerTurn) {
	for {
		t.run()
		t = workerTurn{} // a parked goroutine holds no connection
		w.idleSince = monoNow()
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		var ok bool
		if t, ok = <-w.turns; !ok {
			return
		}
	}
}

// trim ends the goroutines parked since before now-workerIdle. They sit at
// the bottom of the stack, the oldest first.
func (p *workerPool) trim(now int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for n < len(p.idle) && now-p.idle[n].idleSince > workerIdle {
		close(p.idle[n].turns)
		n++
	}
	if n > 0 {
		left := copy(p.idle, p.idle[n:])
		clear(p.idle[left:])
		p.idle = p.idle[:left]
	}
}

// stop ends every parked goroutine; goroutines still running a turn end
// after it.
func (p *workerPool) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for _, w := range p.idle {
		close(w.turns)
	}
	p.idle = nil
}
