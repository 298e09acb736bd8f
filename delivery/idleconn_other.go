//go:build !unix

package delivery

import "syscall"

// closedByPeer: a non-blocking peek needs a Unix socket; elsewhere an
// upstream's closing of an idle connection shows on the next call.
func closedByPeer(syscall.RawConn) bool { return false }
