//go:build unix

package httpapi

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// sockReader is the socket under a WebSocket's read buffer, which then
// needs only frameHold bytes. An idle connection's read waits for the
// client's next frame for minutes or hours; with a read buffer of its own
// (512 bytes) every idle connection would keep one it is not using, and
// bufio.Reader cannot give its buffer back. sockReader waits for the
// socket to become readable holding no buffer, then reads what has arrived
// into a pooled chunk in one syscall and hands it out until it is drained,
// when the chunk goes back to the pool. A read of a chunk's size or more
// with nothing held goes straight into the caller's slice.
//
// Its Read is called only by the bufio.Reader, which coder/websocket uses
// under its read lock.
type sockReader struct {
	raw  syscall.RawConn
	box  *[]byte // the pooled chunk being handed out; nil when drained
	off  int     // unread bytes are (*box)[off:end]
	end  int
	read func(fd uintptr) bool // readFD, bound once so a read does not allocate

	dst []byte // readFD's target, and its results
	n   int
	err error
}

// readChunk is the size of a pooled read chunk: a read takes what a busy
// client has sent, up to this, in one syscall.
const readChunk = 4096

var chunkPool = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

// newSockReader returns a sockReader for conn, or nil if conn is not a
// socket it can read that way.
func newSockReader(conn net.Conn) io.Reader {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return nil
	}
	r := &sockReader{raw: raw}
	r.read = r.readFD
	return r
}

func (r *sockReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.box == nil {
		if len(p) >= readChunk {
			return r.readInto(p)
		}
		// No target: readFD takes a pooled chunk only once the socket has
		// something, and keeps it in box while it has unread bytes.
		if n, err := r.readInto(nil); n == 0 {
			return 0, err
		}
	}
	n := copy(p, (*r.box)[r.off:r.end])
	r.off += n
	if r.off == r.end {
		chunkPool.Put(r.box)
		r.box = nil
	}
	return n, nil
}

// readInto reads once into b (nil: into a pooled chunk, see readFD),
// waiting until the socket has something.
func (r *sockReader) readInto(b []byte) (int, error) {
	r.dst = b
	err := r.raw.Read(r.read)
	n, rerr := r.n, r.err
	r.dst, r.n, r.err = nil, 0, nil
	switch {
	case err != nil: // closed, or a deadline passed
		return 0, err
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readFD is RawConn.Read's callback: false (nothing yet) makes it wait
// until the socket is readable and call again. Without a target it reads
// into a pooled chunk, which it gives back at once if nothing came, so a
// waiting read holds none.
func (r *sockReader) readFD(fd uintptr) bool {
	dst, box := r.dst, (*[]byte)(nil)
	if dst == nil {
		box = chunkPool.Get().(*[]byte)
		dst = *box
	}
	for {
		n, err := syscall.Read(int(fd), dst)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			if box != nil {
				chunkPool.Put(box)
			}
			return false
		}
		n = max(n, 0)
		if box != nil {
			if n > 0 {
				r.box, r.off, r.end = box, 0, n
			} else {
				chunkPool.Put(box)
			}
		}
		r.n, r.err = n, err
		return true
	}
}
