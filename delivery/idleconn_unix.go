//go:build unix

package delivery

import "syscall"

// closedByPeer reports whether the peer of an idle connection has closed
// it, or sent something no request asked for (either way it cannot carry
// the next request), without waiting: a peek that finds the end of the
// stream, data, or an error other than "nothing yet".
func closedByPeer(raw syscall.RawConn) bool {
	closed := false
	err := raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = n > 0 || err == nil || (err != syscall.EAGAIN && err != syscall.EWOULDBLOCK && err != syscall.EINTR)
		return true // never wait for readability
	})
	return closed || err != nil
}
