//go:build unix

package httpapi

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard-gw/switchboard/gateway"
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
// Its Read is called by the bufio.Reader, which coder/websocket uses under
// its read lock, and waitIdle by the connection's read loop between
// frames; a close handshake may read while the loop waits, so both hold
// mu.
type sockReader struct {
	raw  syscall.RawConn
	conn net.Conn              // the socket, for waitIdle's deadline
	read func(fd uintptr) bool // readFD, bound once so a read does not allocate

	mu  sync.Mutex // guards the fields below
	box *[]byte    // the pooled chunk being handed out; nil when drained
	off int        // unread bytes are (*box)[off:end]
	end int
	// failed is what ended the socket, found by waitIdle (EOF, a reset, a
	// close): every later Read returns it.
	failed error

	// imu guards waiting and interrupted, which interrupt reads while a
	// wait holds mu.
	imu         sync.Mutex
	waiting     bool // an interruptible waitIdle is waiting
	interrupted bool // interrupt set a past read deadline, which the wait clears

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
	r := &sockReader{raw: raw, conn: conn}
	r.read = r.readFD
	return r
}

func (r *sockReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.box == nil {
		if r.failed != nil {
			return 0, r.failed
		}
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

// preload makes b, bytes of the client that were read before the socket
// was handed over, the first ones Read returns. It reports false, taking
// nothing, if b does not fit a chunk.
func (r *sockReader) preload(b []byte) bool {
	switch {
	case len(b) == 0:
		return true // nothing to take over
	case len(b) > readChunk:
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	box := chunkPool.Get().(*[]byte)
	r.box, r.off, r.end = box, 0, copy(*box, b)
	return true
}

// waitIdle waits until the client has sent something, or, if the wait
// is interruptible, until interrupt ends it, when it returns
// gateway.ErrIdle. What arrives is read into a pooled chunk, as Read
// would have read it; an error that ends the socket is kept for the next
// Read, and waitIdle returns nil for it. Its caller waits between frames,
// when the read buffer above holds nothing (see frameReader): then
// nothing can be waiting unseen.
func (r *sockReader) waitIdle(interruptible bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.box != nil || r.failed != nil {
		return nil
	}
	if interruptible {
		r.imu.Lock()
		r.waiting = true
		r.imu.Unlock()
	}
	_, err := r.readInto(nil)
	interrupted := interruptible && r.endWait()
	if err != nil {
		if interrupted && errors.Is(err, os.ErrDeadlineExceeded) {
			return gateway.ErrIdle
		}
		r.failed = err
	}
	return nil
}

// endWait ends an interruptible wait, clearing the deadline interrupt set,
// if it did, before any Read can run; it reports whether it did.
func (r *sockReader) endWait() bool {
	r.imu.Lock()
	defer r.imu.Unlock()
	r.waiting = false
	if !r.interrupted {
		return false
	}
	r.interrupted = false
	_ = r.conn.SetReadDeadline(time.Time{})
	return true
}

// interrupt ends an interruptible waitIdle under way by setting the
// socket's read deadline to the past. Nothing else sets a deadline on a
// hijacked socket, and the wait clears it before any Read runs, so it
// never reaches the WebSocket library's reads.
func (r *sockReader) interrupt() {
	r.imu.Lock()
	defer r.imu.Unlock()
	if r.waiting && !r.interrupted {
		r.interrupted = true
		_ = r.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// readInto reads once into b (nil: into a pooled chunk, see readFD),
// waiting until the socket has something. The caller holds mu.
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
