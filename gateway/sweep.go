package gateway

import (
	"fmt"
	"time"
)

// bufferIdleAfter is how long a connection keeps its send buffers after its
// last write.
const bufferIdleAfter = 2 * time.Second

// sweepLoop runs sweep every SweepInterval until Shutdown. One loop for all
// connections costs less than a timer per connection.
func (g *Gateway) sweepLoop() {
	defer close(g.sweeperDone)
	t := time.NewTicker(g.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stopSweep:
			return
		case <-t.C:
			g.sweep(g.cfg.Now())
			g.workers.trim(monoNow())
		}
	}
}

// sweep pings connections we have not written to for PingInterval, closes
// those the client has been silent on for ClientTimeout, ends the group
// memberships that connections hold through their user with a ttl that ran
// out, and drops negotiations whose socket never came.
//
// Ending expired memberships here, on the node that holds the connection,
// keeps fan-out free of any per-recipient check: a group send still only
// walks the group's member set. Every node ends them on its own
// connections at the same moment (the membership's end travels with the
// addUserToGroup op, see Op.Until), at most one SweepInterval late; until
// then the connection still receives group sends and counts in existence
// checks, consistently.
func (g *Gateway) sweep(now time.Time) {
	pingBefore := now.Add(-g.cfg.PingInterval).UnixNano()
	deadBefore := now.Add(-g.cfg.ClientTimeout).UnixNano()
	nowNano := now.UnixNano()
	timeout := fmt.Sprintf("no message from the client for %s", g.cfg.ClientTimeout)
	// Send buffers go back to the pool after a quiet spell. This is memory
	// housekeeping, not protocol, so it runs on the real clock.
	quietSince := int64(time.Since(processStart) - bufferIdleAfter)
	// Writes are timed on the same clock (see Conn.write).
	stuckSince := monoNow() - int64(g.cfg.WriteTimeout)
	idleBefore := int64(0) // lastRead at or before it: move the wait (see ServeWaiting)
	if g.cfg.IdleHandoff > 0 {
		idleBefore = now.Add(-g.cfg.IdleHandoff).UnixNano()
	}
	var leased []*Conn
	g.hubs.Range(func(_, v any) bool {
		h := v.(*hub)
		leased = leased[:0]
		h.eachConn(func(c *Conn) {
			c.releaseIdle(quietSince)
			c.abortStuckWrite(stuckSince)
			if c.lastRead.Load() <= idleBefore {
				c.interruptWait()
			}
			if c.leaseDueBy(nowNano) {
				leased = append(leased, c)
			}
			switch {
			case c.detachedTooLong(now):
				c.closeWith(CloseGoingAway, g.resumeTimeout(), nil)
			case c.isDetached(): // its window runs; nothing to say to nobody
			case c.keepsAlive: // the transport notices a dead client
			case c.lastRead.Load() <= deadBefore:
				c.closeWith(CloseNormal, "timeout: "+timeout, c.codec.AppendClose(nil, timeout, true))
			case c.lastWrite.Load() <= pingBefore:
				c.enqueue(pingFrames[codecIndex(c.codec)])
			}
			if ack, ok := c.ackDue(); ok {
				c.enqueue(ack)
			}
		})
		// Outside eachConn: ending a membership takes a group shard lock.
		for _, c := range leased {
			h.endUserGroups(c, now)
		}
		return true
	})

	expired := now.Add(-g.cfg.NegotiateTTL)
	g.mu.Lock()
	for tok, n := range g.tokens {
		if n.conn == nil && n.created.Before(expired) {
			delete(g.tokens, tok)
			g.pending--
		}
	}
	g.mu.Unlock()
}
