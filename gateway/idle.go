package gateway

import (
	"context"
	"errors"
)

// ServeWaiting is Serve for a transport that can wait for its client
// outside ReadFrame (IdleWaiter): once the connection has sent nothing for
// Config.IdleHandoff, the sweep interrupts its wait, a fresh goroutine
// waits for the client's next frame instead, and ServeWaiting returns.
// ended runs once the connection has ended, after everything Serve does
// before it returns, on whichever goroutine ends it; if the connection
// never opened, it runs before ServeWaiting returns Serve's error. A stateful
// connection, and a transport that cannot wait, are read as Serve reads
// them.
//
// Why: a goroutine parked in the WebSocket library's read holds about
// 3 KiB of frames, and the runtime shrinks a stack only while less than a
// quarter of it is in use, so every idle connection kept a 4 KiB stack.
// The fresh goroutine parks within 1 KiB, and starts at the runtime's
// smallest stack, 2 KiB, once most goroutines are such waits (the runtime
// starts new goroutines at the average stack in use). The sweep decides
// when, rather than a read deadline per wait: a deadline set and cleared
// around every frame cost the round trip about 5% of its CPU, in timer
// work spread over the scheduler.
//
// A control frame from the client (a ping, or the unsolicited pongs .NET's
// client sends every 30 s) is read inside the library, which then waits
// for the next message on the reading goroutine's stack: such a
// connection keeps that goroutine until its client sends a message.
func (g *Gateway) ServeWaiting(ctx context.Context, token string, tr Transport, info ConnectInfo, ended func()) error {
	c, gen, err := g.open(ctx, token, tr, info)
	if c == nil {
		ended()
		return err
	}
	w, ok := tr.(IdleWaiter)
	if !ok || c.rs != nil || g.cfg.IdleHandoff < 0 {
		defer ended()
		defer g.serving.Done()
		g.serveReads(ctx, c, tr, gen)
		return nil
	}
	(&idleReads{ctx: ctx, g: g, c: c, tr: tr, w: w, ended: ended}).read()
	return nil
}

// idleReads is the read loop of a connection that ServeWaiting serves.
type idleReads struct {
	ctx   context.Context
	g     *Gateway
	c     *Conn
	tr    Transport
	w     IdleWaiter
	ended func()
}

// read reads the client's frames until the connection ends, then ends it
// as serveReads does. If the sweep interrupts its wait (the client sent
// nothing for IdleHandoff), a fresh goroutine takes the wait over (wait)
// and read returns.
func (r *idleReads) read() {
	g, c := r.g, r.c
	for {
		if errors.Is(r.w.WaitReadable(true), ErrIdle) {
			go r.wait()
			return
		}
		more, err := c.readOne(r.ctx, r.tr)
		if err != nil {
			c.readFailed(err)
		}
		if !more {
			break
		}
	}
	g.end(c)
	g.serving.Done()
	r.ended()
}

// wait is the goroutine of an idle connection. While it waits, its stack
// holds only its own frame and the wait's; read's deeper ones come after.
//
//go:noinline
func (r *idleReads) wait() {
	_ = r.w.WaitReadable(false)
	r.read()
}
