package httpapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/gateway"
)

// wsTransport adapts a coder/websocket connection to gateway.Transport.
type wsTransport struct {
	ws *websocket.Conn
	// idle is the plain TCP socket's reader, whose waits WaitReadable
	// runs; nil on other sockets (TLS), which never wait idly.
	idle *sockReader
}

var _ gateway.Transport = (*wsTransport)(nil)

// WebSocketTransport is the gateway.Transport the HTTP API serves an
// accepted WebSocket with, for programs and tests that accept sockets of
// their own and hand them to a gateway.
func WebSocketTransport(ws *websocket.Conn) gateway.Transport { return &wsTransport{ws: ws} }

func (t *wsTransport) ReadFrame(ctx context.Context) ([]byte, bool, error) {
	typ, data, err := t.ws.Read(ctx)
	if err != nil {
		switch {
		case errors.Is(err, websocket.ErrMessageTooBig):
			return nil, false, fmt.Errorf("%w: %v", gateway.ErrMessageTooLarge, err)
		case isNormalClose(websocket.CloseStatus(err)):
			return nil, false, fmt.Errorf("%w: %v", gateway.ErrClientClosed, err)
		}
		return nil, false, err
	}
	return data, typ == websocket.MessageBinary, nil
}

// WaitReadable waits for the client's next frame below the WebSocket
// library (see gateway.IdleWaiter): the frameReader under the library's
// read buffer leaves every byte after the last message read in the
// sockReader, whose waitIdle sees them. Without one it returns at once,
// and ReadFrame waits.
func (t *wsTransport) WaitReadable(interruptible bool) error {
	if t.idle == nil {
		return nil
	}
	return t.idle.waitIdle(interruptible)
}

// Interrupt ends an interruptible WaitReadable under way.
func (t *wsTransport) Interrupt() {
	if t.idle != nil {
		t.idle.interrupt()
	}
}

func isNormalClose(code websocket.StatusCode) bool {
	switch code {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
		return true
	}
	return false
}

func (t *wsTransport) WriteFrame(ctx context.Context, data []byte, binary bool) error {
	typ := websocket.MessageText
	if binary {
		typ = websocket.MessageBinary
	}
	return t.ws.Write(ctx, typ, data)
}

func (t *wsTransport) Close(code int, reason string) error {
	return t.ws.Close(websocket.StatusCode(code), reason)
}

// Buffer sizes of a WebSocket after the upgrade. net/http hands a hijacked
// connection 4 KiB read and write buffers, a third of what an idle
// connection costs. Frames larger than a buffer bypass it (one extra
// syscall for a write that does not fit), and gateway frames are small: one
// message, or the few a busy connection coalesces. On a plain TCP socket
// both buffers hold only frameHold bytes: reads go through a sockReader,
// writes through a frameWriter (see each).
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 2048
)

// smallBuffers is the ResponseWriter websocket.Accept hijacks: it swaps the
// buffers net/http hands over for smaller ones. On a plain TCP socket it
// keeps the sockReader it reads through in idle, for the transport's idle
// waits (see wsTransport.WaitReadable).
type smallBuffers struct {
	http.ResponseWriter
	idle *sockReader
}

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("httpapi: response writer cannot be hijacked")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	var bw *bufio.Writer
	if tcp, ok := conn.(*net.TCPConn); ok {
		bw = bufio.NewWriterSize(&frameWriter{conn: tcp}, frameHold)
	} else { // TLS: a frame in two writes would be two records
		bw = bufio.NewWriterSize(conn, wsWriteBuffer)
	}
	// Accept reads through the returned reader, but resets it to read what
	// it buffered and then the returned conn itself: the sockReader, under
	// a frameReader, goes in as the conn's Read, and takes over the
	// client's first bytes if net/http's reader holds any.
	size := wsReadBuffer
	r := brw.Reader
	if sr, ok := newSockReader(conn).(*sockReader); ok && preloaded(sr, r) {
		conn, size = sockConn{Conn: conn, r: &frameReader{sr: sr}}, frameHold
		w.idle = sr
	}
	if r.Buffered() == 0 || w.idle != nil { // else keep it: it holds the client's first bytes
		r = bufio.NewReaderSize(conn, size)
	}
	return conn, bufio.NewReadWriter(r, bw), nil
}

// preloaded moves the client's first bytes, if net/http's reader holds
// any, into sr, so that every byte goes through a frameReader; false if
// they do not fit.
func preloaded(sr *sockReader, r *bufio.Reader) bool {
	b, _ := r.Peek(r.Buffered())
	return sr.preload(b)
}

// sockConn is a hijacked socket whose reads go through a sockReader.
type sockConn struct {
	net.Conn
	r io.Reader
}

func (c sockConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Flush lets Accept flush the 101 answer through the wrapper.
func (w *smallBuffers) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// frameWriter is the socket under a WebSocket's write buffer, which then
// needs to hold only a frame header. coder/websocket writes a frame's
// header and payload into the connection's bufio.Writer and flushes it at
// the frame's end; with a buffer the size of a frame, every idle
// connection would keep 2 KiB it is not using, and bufio.Writer has no way
// to give its buffer back. With a frameHold-byte buffer a frame reaches
// the frameWriter in pieces (the buffer's contents when it fills, then the
// rest of the payload straight from the caller's slice); the frameWriter
// reads the frame headers going through, keeps the start of an unfinished
// frame (at most a buffer's worth) and writes each frame once its last
// byte has arrived, as a single writev of that start and the rest. So a
// frame still costs one syscall, and an idle connection 16 bytes.
//
// Its Write is called only by the bufio.Writer, which coder/websocket uses
// under its write lock.
type frameWriter struct {
	conn *net.TCPConn
	held [2 * frameHold]byte // the start of an unfinished frame
	n    int                 // bytes in held
	// left is what the unfinished frame still needs, counted from held[0];
	// 0 when held has no complete header yet (or is empty).
	left int64
	// iov and vec are write's writev arguments, kept here so that a
	// frame's write does not allocate them.
	iov [2][]byte
	vec net.Buffers
}

// frameHold is the size of the bufio.Writer over a frameWriter: the
// longest frame header (14 bytes: 2, an 8-byte length, a 4-byte mask),
// rounded up to bufio's smallest useful size.
const frameHold = 16

// maxFrameHeader is the longest WebSocket frame header (RFC 6455 5.2).
const maxFrameHeader = 14

func (w *frameWriter) Write(p []byte) (int, error) {
	total := int64(w.n) + int64(len(p))
	// end is how much of held++p is whole frames.
	var end int64
	left := w.left
	for {
		if left == 0 {
			var hdr [maxFrameHeader]byte
			size, ok := frameSize(hdr[:w.copyAt(hdr[:], p, end)])
			if !ok {
				break
			}
			left = size
		}
		if total-end < left {
			break
		}
		end, left = end+left, 0
	}
	if end > 0 {
		if err := w.write(p, 0, end); err != nil {
			return 0, err
		}
	}
	tail := total - end
	if tail <= int64(len(w.held)) {
		// Keep the unfinished frame's start; it is the next write's
		// first bytes.
		if end < int64(w.n) {
			k := copy(w.held[:], w.held[end:w.n])
			copy(w.held[k:], p)
		} else {
			copy(w.held[:], p[end-int64(w.n):])
		}
		w.n, w.left = int(tail), left
		return len(p), nil
	}
	// More than held can take: not a piece a bufio.Writer of frameHold
	// bytes hands over, but a byte stream is correct written early.
	if err := w.write(p, end, total); err != nil {
		return 0, err
	}
	w.n, w.left = 0, left-tail
	return len(p), nil
}

// copyAt copies into dst the bytes of held++p from offset off.
func (w *frameWriter) copyAt(dst, p []byte, off int64) int {
	k := 0
	if off < int64(w.n) {
		k = copy(dst, w.held[off:w.n])
		off = 0
	} else {
		off -= int64(w.n)
	}
	return k + copy(dst[k:], p[off:])
}

// write writes bytes [from, to) of held++p to the socket, held's part and
// p's in one writev.
func (w *frameWriter) write(p []byte, from, to int64) error {
	n := int64(w.n)
	switch {
	case from >= n:
		_, err := w.conn.Write(p[from-n : to-n])
		return err
	case to <= n:
		_, err := w.conn.Write(w.held[from:to])
		return err
	}
	w.iov = [2][]byte{w.held[from:n], p[:to-n]}
	w.vec = w.iov[:]
	_, err := w.vec.WriteTo(w.conn)
	w.iov, w.vec = [2][]byte{}, nil // keep no reference to the caller's bytes
	return err
}

// frameSize is the length of the WebSocket frame whose header starts b,
// header included; false if b holds less than the header.
func frameSize(b []byte) (int64, bool) {
	if len(b) < 2 {
		return 0, false
	}
	hl, size := 2, int64(b[1]&0x7f)
	switch size {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	if b[1]&0x80 != 0 { // masked: a client's frame
		hl += 4
	}
	if len(b) < hl {
		return 0, false
	}
	switch size {
	case 126:
		size = int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		size = int64(binary.BigEndian.Uint64(b[2:]))
	}
	return int64(hl) + size, true
}

// frameReader is what coder/websocket's read buffer reads from on a plain
// TCP socket: the sockReader's bytes, handed out no further than the end
// of the frame being read. So the buffer holds nothing once a message has
// been read, and what the client sent after it is still in the sockReader,
// where an idle wait sees it. A buffer that read ahead would hold the next
// frame where no wait could see it, and the wait would hold that frame
// back until the client sent more. Each Read is a copy from the
// sockReader's chunk, not a syscall.
//
// Its Read is called only by the bufio.Reader, under coder/websocket's
// read lock.
type frameReader struct {
	sr   io.Reader            // the sockReader
	head [maxFrameHeader]byte // the header, as far as read, of the frame being read
	n    int                  // bytes in head
	// left is what the frame being read has not handed out yet, once its
	// header is whole; 0 while a header is being read.
	left int64
}

func (f *frameReader) Read(p []byte) (int, error) {
	if f.left > 0 {
		if int64(len(p)) > f.left {
			p = p[:f.left]
		}
		k, err := f.sr.Read(p)
		f.left -= int64(k)
		return k, err
	}
	if need := headerLen(f.head[:f.n]) - f.n; len(p) > need {
		p = p[:need]
	}
	k, err := f.sr.Read(p)
	f.n += copy(f.head[f.n:], p[:k])
	if size, ok := frameSize(f.head[:f.n]); ok {
		f.left = size - int64(f.n)
		if size < int64(f.n) { // a 64-bit length past int64 wrapped: coder/websocket refuses the frame
			f.left = math.MaxInt64
		}
		f.n = 0
	}
	return k, err
}

// headerLen is the length of the frame header that b starts; 2 while b
// holds less than its first two bytes, which say the rest.
func headerLen(b []byte) int {
	if len(b) < 2 {
		return 2
	}
	hl := 2
	switch b[1] & 0x7f {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	if b[1]&0x80 != 0 {
		hl += 4
	}
	return hl
}
