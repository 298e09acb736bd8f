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

// sockReader stands in for sockreader_unix.go's, which newSockReader never
// returns here: a WebSocket then never waits below its library.
type sockReader struct{}

func (*sockReader) preload([]byte) bool      { return false }
func (*sockReader) waitIdle(bool) error      { return nil }
func (*sockReader) interrupt()               {}
func (*sockReader) Read([]byte) (int, error) { return 0, io.EOF }
