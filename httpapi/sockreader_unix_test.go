//go:build unix

package httpapi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
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
		conn, brw, err := smallBuffers{w}.Hijack()
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
