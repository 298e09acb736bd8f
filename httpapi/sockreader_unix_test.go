//go:build unix

package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/gateway"
)

// TestSockReader reads a stream the peer writes in pieces of every size
// through a frameHold-byte bufio.Reader over a sockReader: the bytes come
// out in order, EOF ends them, and whenever everything sent so far has
// been read the reader holds no chunk, as while an idle connection waits.
func TestSockReader(t *testing.T) {
	client, server := tcpPair(t)
	sr := newSockReader(client).(*sockReader)
	br := bufio.NewReaderSize(sr, frameHold)
	rng := rand.New(rand.NewPCG(3, 4))
	sizes := []int{1, 2, 15, 16, 17, 100, readChunk - 1, readChunk, readChunk + 1, 3 * readChunk, 70000}
	for i := range 60 {
		piece := make([]byte, sizes[i%len(sizes)])
		for j := range piece {
			piece[j] = byte(rng.IntN(256))
		}
		go func() { _, _ = server.Write(piece) }()
		got := make([]byte, len(piece))
		// Read as coder/websocket does: a byte at a time for headers,
		// ReadFull for payloads.
		if len(piece) < 3 {
			for k := range got {
				b, err := br.ReadByte()
				if err != nil {
					t.Fatal(err)
				}
				got[k] = b
			}
		} else if _, err := io.ReadFull(br, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, piece) {
			t.Fatalf("piece %d (%d bytes) read back different", i, len(piece))
		}
		if br.Buffered() == 0 && sr.box != nil {
			t.Fatalf("piece %d read in full, but a chunk is still held", i)
		}
	}
	server.Close()
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
}

// TestSockReaderDeadlineAndClose: a read deadline and a close end a
// waiting read as they end a socket's own Read.
func TestSockReaderDeadlineAndClose(t *testing.T) {
	client, _ := tcpPair(t)
	br := bufio.NewReaderSize(newSockReader(client), frameHold)
	if err := client.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if _, err := br.ReadByte(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	client2, _ := tcpPair(t)
	br2 := bufio.NewReaderSize(newSockReader(client2), frameHold)
	client2.Close()
	if _, err := br2.ReadByte(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read of a closed socket: %v, want net.ErrClosed", err)
	}
}

// TestSockReaderAllocs: reading what the peer sent does not allocate.
func TestSockReaderAllocs(t *testing.T) {
	client, server := tcpPair(t)
	br := bufio.NewReaderSize(newSockReader(client), frameHold)
	msg := bytes.Repeat([]byte("y"), 200)
	got := make([]byte, len(msg))
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = server.Write(msg)
		_, _ = io.ReadFull(br, got)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per read, want 0", allocs)
	}
}

// TestSmallBuffersHijack: on a TCP socket the hijacked connection reads
// through a sockReader and writes through a frameWriter, each under a
// frameHold-byte buffer (coder/websocket reads through the returned conn
// once it has drained the returned reader).
func TestSmallBuffersHijack(t *testing.T) {
	type hijacked struct {
		conn net.Conn
		brw  *bufio.ReadWriter
		err  error
	}
	got := make(chan hijacked, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := (&smallBuffers{ResponseWriter: w}).Hijack()
		got <- hijacked{conn, brw, err}
	}))
	defer srv.Close()
	go func() { _, _ = http.Get(srv.URL) }()
	h := <-got
	if h.err != nil {
		t.Fatal(h.err)
	}
	defer h.conn.Close()
	if _, ok := h.conn.(sockConn); !ok {
		t.Errorf("hijacked conn is a %T, want a sockConn", h.conn)
	}
	if h.brw.Reader.Size() != frameHold || h.brw.Writer.Size() != frameHold {
		t.Errorf("buffers of %d and %d bytes, want %d each", h.brw.Reader.Size(), h.brw.Writer.Size(), frameHold)
	}
}

// TestSockReaderWaitsHoldingNothing: reads waiting for their clients hold
// no chunk. 200 sockReaders each block in a read; once all are waiting,
// the heap holds well under a chunk per reader (a chunk each would be
// 200 × 4 KiB).
func TestSockReaderWaitsHoldingNothing(t *testing.T) {
	const readers = 200
	inUse := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	var brs []*bufio.Reader
	for range readers {
		client, _ := tcpPair(t)
		brs = append(brs, bufio.NewReaderSize(newSockReader(client), frameHold))
	}
	before := inUse()
	for _, br := range brs {
		go func() { _, _ = br.ReadByte() }() // ends when tcpPair's cleanup closes the socket
	}
	buf := make([]byte, 1<<20)
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		n := runtime.Stack(buf, true)
		if bytes.Count(buf[:n], []byte("(*sockReader).readInto")) >= readers {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatal("the readers never all waited")
		}
	}
	if per := (int64(inUse()) - int64(before)) / readers; per >= readChunk/2 {
		t.Errorf("%d bytes of heap per waiting reader, want well under a %d-byte chunk", per, readChunk)
	}
}

// TestIdleWaitSeesEveryFrame: a WebSocket accepted through smallBuffers
// waits idly (WaitReadable) below the library, so the wait must see every
// frame the library has not read yet. The client sends messages of every
// header form back to back, ending in a run of tiny ones (a whole tiny
// frame fits the 16-byte read buffer, and one fill of it then takes the
// socket's last bytes, where a wait below it could not see them; without
// the frameReader the wait before the last message fails), then a close:
// before each read the wait returns at once; after the last message it
// waits until interrupted, and the library's reads after that interrupt
// are unaffected; and it sees the close, which the next read reports.
func TestIdleWaitSeesEveryFrame(t *testing.T) {
	sizes := []int{1, 2, 3, 0, 9, 10, 11, 125, 126, 5, 65535, 65536, 4, 3000, 1, 1, 1, 1, 1, 1}
	srv, got := acceptThroughSmallBuffers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	a := <-got
	if a.err != nil || a.tr.idle == nil {
		t.Fatalf("accept: %v, idle waits %v", a.err, a.tr.idle != nil)
	}
	defer a.tr.ws.CloseNow()
	for i, n := range sizes {
		if err := client.Write(ctx, websocket.MessageBinary, bytes.Repeat([]byte{byte('a' + i)}, n)); err != nil {
			t.Fatal(err)
		}
	}
	// waitFor waits interruptibly, interrupted after d: ErrIdle means the
	// wait saw nothing for that long.
	waitFor := func(d time.Duration) error {
		stop := time.AfterFunc(d, a.tr.Interrupt)
		defer stop.Stop()
		return a.tr.WaitReadable(true)
	}
	for i, n := range sizes {
		if err := waitFor(20 * time.Second); err != nil {
			t.Fatalf("wait before message %d (%d bytes), sent already: %v", i, n, err)
		}
		data, _, err := a.tr.ReadFrame(ctx)
		if err != nil || !bytes.Equal(data, bytes.Repeat([]byte{byte('a' + i)}, n)) {
			t.Fatalf("message %d (%d bytes): %d bytes, %v", i, n, len(data), err)
		}
	}
	if err := waitFor(50 * time.Millisecond); !errors.Is(err, gateway.ErrIdle) {
		t.Fatalf("wait with nothing sent: %v, want ErrIdle", err)
	}
	// The interrupt's deadline is gone: the library's next read works.
	if err := client.Write(ctx, websocket.MessageText, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := a.tr.WaitReadable(false); err != nil {
		t.Fatalf("wait after an interrupt: %v", err)
	}
	if data, _, err := a.tr.ReadFrame(ctx); err != nil || string(data) != "after" {
		t.Fatalf("read after an interrupt: %q, %v", data, err)
	}
	// An interrupt with no interruptible wait under way does nothing.
	a.tr.Interrupt()
	go func() { _ = client.Close(websocket.StatusNormalClosure, "bye") }()
	if err := a.tr.WaitReadable(false); err != nil {
		t.Fatalf("wait for the close: %v", err)
	}
	if _, _, err := a.tr.ReadFrame(ctx); !errors.Is(err, gateway.ErrClientClosed) {
		t.Fatalf("read after the client's close: %v, want ErrClientClosed", err)
	}
}

// TestFirstBytesWithTheUpgrade: a client that sends its first frame in the
// same write as its upgrade request has that frame read by net/http's
// buffer before the hijack. The sockReader takes those bytes over, so the
// idle wait sees the frame and the read returns it.
func TestFirstBytesWithTheUpgrade(t *testing.T) {
	srv, got := acceptThroughSmallBuffers(t)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload := []byte("first")
	frame := []byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0} // a zero mask leaves the payload as it is
	frame = append(frame, payload...)
	req := "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil || a.tr.idle == nil {
		t.Fatalf("accept: %v, idle waits %v", a.err, a.tr.idle != nil)
	}
	defer a.tr.ws.CloseNow()
	stop := time.AfterFunc(20*time.Second, a.tr.Interrupt)
	defer stop.Stop()
	if err := a.tr.WaitReadable(true); err != nil {
		t.Fatalf("wait for a frame sent with the upgrade: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	data, binary, err := a.tr.ReadFrame(ctx)
	if err != nil || binary || string(data) != "first" {
		t.Fatalf("read: %q (binary %v), %v", data, binary, err)
	}
}

// accepted is a WebSocket a test server accepted through smallBuffers.
type accepted struct {
	tr  *wsTransport
	err error
}

// acceptThroughSmallBuffers serves WebSockets accepted as connectWebSocket
// accepts them (smallBuffers, a read limit of 1 MiB), each handed to the
// test on the returned channel; the server closes when the test ends.
func acceptThroughSmallBuffers(t *testing.T) (*httptest.Server, <-chan accepted) {
	got := make(chan accepted, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sb := &smallBuffers{ResponseWriter: w}
		ws, err := websocket.Accept(sb, r, nil)
		if err == nil {
			ws.SetReadLimit(1 << 20)
		}
		got <- accepted{&wsTransport{ws: ws, idle: sb.idle}, err}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}
