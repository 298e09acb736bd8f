//go:build !unix

package httpapi

import (
	"io"
	"net"
)

// newSockReader: the pooled-chunk reader of sockreader_unix.go needs a
// Unix socket's non-blocking reads; elsewhere a WebSocket keeps its own
// read buffer.
func newSockReader(net.Conn) io.Reader { return nil }
