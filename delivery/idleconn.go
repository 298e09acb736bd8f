package delivery

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// idleCheckAfter is how long a kept-alive upstream connection must have
// been unused before a call looks whether the upstream closed it. Servers
// close idle connections after seconds (Node 5 s, nginx 75 s), so a
// connection used within this time is still open; checking every call
// would add a system call to the busy path for nothing.
const idleCheckAfter = 100 * time.Millisecond

// errIdleConnClosed says the upstream closed a kept-alive connection while
// it sat idle: nothing of the request was written, so sending it on another
// connection cannot run the handler twice.
var errIdleConnClosed = errors.New("upstream closed the idle connection")

// idleCheckedConn is an upstream connection that, before the first write
// after idleCheckAfter unused, looks whether the upstream has closed it.
// net/http's transport learns this from a read goroutine per connection;
// fasthttp has none and would send the request into the closed connection,
// then fail it (a POST is never retried). The check answers
// errIdleConnClosed instead, which fastTransport retries.
//
// fasthttp uses a connection from one goroutine at a time, so last needs no
// lock.
type idleCheckedConn struct {
	net.Conn
	raw  syscall.RawConn
	last time.Time // the last read or write; zero before the first
}

// checkIdle wraps c when its socket can be inspected (closedByPeer).
func checkIdle(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &idleCheckedConn{Conn: c, raw: raw}
}

func (c *idleCheckedConn) Write(p []byte) (int, error) {
	if !c.last.IsZero() && time.Since(c.last) > idleCheckAfter && closedByPeer(c.raw) {
		return 0, errIdleConnClosed
	}
	n, err := c.Conn.Write(p)
	c.last = time.Now()
	return n, err
}

func (c *idleCheckedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.last = time.Now()
	return n, err
}
