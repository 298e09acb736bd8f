package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// appendFrame appends an unmasked server frame of payload to b, as
// coder/websocket encodes it.
func appendFrame(b []byte, fin bool, payload []byte) []byte {
	op := byte(0x1)
	if fin {
		op |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, op, byte(n))
	case n <= 0xffff:
		b = append(b, op, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, op, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// tcpPair is a connected loopback TCP pair.
func tcpPair(t *testing.T) (*net.TCPConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s
}

// TestFrameWriter writes frames of every header form through a
// frameHold-byte bufio.Writer over a frameWriter, as coder/websocket does
// (header, then payload, then Flush at a final frame), and checks that the
// peer gets the bytes in order and that a flushed final frame leaves
// nothing held: each frame is on the wire once its last byte is written.
func TestFrameWriter(t *testing.T) {
	sizes := []int{0, 1, 2, 13, 14, 15, 16, 17, 30, 31, 32, 33, 100, 125, 126, 127, 1000, 65535, 65536, 70000}
	rng := rand.New(rand.NewPCG(1, 2))
	client, server := tcpPair(t)
	fw := &frameWriter{conn: client}
	bw := bufio.NewWriterSize(fw, frameHold)
	var want []byte
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(server)
		got <- b
	}()
	for i := range 200 {
		n := sizes[i%len(sizes)]
		payload := make([]byte, n)
		for j := range payload {
			payload[j] = byte(rng.IntN(256))
		}
		fin := i%7 != 3 // now and then a non-final frame, flushed only with the next final one
		frame := appendFrame(nil, fin, payload)
		want = append(want, frame...)
		hl := len(frame) - n
		if _, err := bw.Write(frame[:hl]); err != nil {
			t.Fatal(err)
		}
		if _, err := bw.Write(payload); err != nil {
			t.Fatal(err)
		}
		if fin {
			if err := bw.Flush(); err != nil {
				t.Fatal(err)
			}
			if fw.n != 0 || fw.left != 0 {
				t.Fatalf("frame %d (%d bytes) flushed: %d bytes held, %d awaited; want none", i, n, fw.n, fw.left)
			}
		}
	}
	client.CloseWrite()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("peer got %d bytes, want %d (equal: false)", len(b), len(want))
	}
}

// TestFrameWriterAllocs: a frame split between the header buffer and the
// caller's payload goes out without allocating.
func TestFrameWriterAllocs(t *testing.T) {
	client, server := tcpPair(t)
	go func() { _, _ = io.Copy(io.Discard, server) }()
	bw := bufio.NewWriterSize(&frameWriter{conn: client}, frameHold)
	frame := appendFrame(nil, true, bytes.Repeat([]byte("x"), 200))
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = bw.Write(frame[:2])
		_, _ = bw.Write(frame[2:])
		_ = bw.Flush()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per frame, want 0", allocs)
	}
}

// TestSmallBuffersWebSocket runs a real coder/websocket pair whose server
// side is accepted through smallBuffers: messages of every header form,
// pings (answered from the server's read loop) and a close handshake all
// reach the client intact.
func TestSmallBuffersWebSocket(t *testing.T) {
	sizes := []int{0, 1, 14, 15, 16, 17, 125, 126, 2047, 2048, 2049, 65535, 65536, 300000}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(&smallBuffers{ResponseWriter: w}, r, nil)
		if err != nil {
			return
		}
		ws.SetReadLimit(1 << 20)
		ctx := context.Background()
		for {
			typ, data, err := ws.Read(ctx) // echo until the client closes
			if err != nil {
				return
			}
			if err := ws.Write(ctx, typ, data); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	for i, n := range sizes {
		msg := bytes.Repeat([]byte{byte('a' + i)}, n)
		if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
		typ, got, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("message of %d bytes: %v", n, err)
		}
		if typ != websocket.MessageBinary || !bytes.Equal(got, msg) {
			t.Fatalf("message of %d bytes came back as %d bytes (type %v)", n, len(got), typ)
		}
	}
	// Pongs are read by a reader of the client's own: CloseRead's.
	ws.CloseRead(ctx)
	for range 20 {
		if err := ws.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
	}
	if err := ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
}

// FuzzFrameReader: whatever pieces the socket's bytes come in, the
// frameReader hands them out unchanged, and no Read returns bytes of two
// frames. The input is a sequence of frames built from the fuzzer's bytes
// (every length form, masked or not) and the sizes of the pieces.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{1, 0, 130, 5, 126, 0, 2}, []byte{1, 16, 3})
	f.Add([]byte{127, 0, 1, 200, 7}, []byte{2})
	f.Fuzz(func(t *testing.T, spec, pieces []byte) {
		var stream []byte
		var ends []int // offset of each frame's end in stream
		for i := 0; i+1 < len(spec) && len(ends) < 20; i += 2 {
			n := int(spec[i]) * (1 + int(spec[i+1])%40) // up to 10 KiB
			masked := spec[i+1]&1 == 1
			hdr := []byte{0x82, 0}
			switch {
			case n < 126:
				hdr[1] = byte(n)
			case n < 1<<16:
				hdr[1] = 126
				hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
			default:
				hdr[1] = 127
				hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
			}
			if spec[i]%3 == 0 && n < 1<<16 { // a longer form than needed is still valid
				hdr = append(hdr[:1], 127)
				hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
			}
			if masked {
				hdr[1] |= 0x80
				hdr = append(hdr, 1, 2, 3, 4)
			}
			stream = append(stream, hdr...)
			stream = append(stream, bytes.Repeat([]byte{spec[i]}, n)...)
			ends = append(ends, len(stream))
		}
		fr := &frameReader{sr: &pieceReader{data: stream, pieces: pieces}}
		var out []byte
		buf := make([]byte, 64)
		for len(out) < len(stream) {
			// As bufio does: a small buffer, or a large read straight
			// into the caller's slice.
			p := buf[:1+len(out)%len(buf)]
			if len(out)%7 == 0 {
				p = make([]byte, 5000)
			}
			n, err := fr.Read(p)
			if n == 0 || err != nil {
				t.Fatalf("read at %d of %d: %d bytes, %v", len(out), len(stream), n, err)
			}
			for _, e := range ends {
				if len(out) < e && len(out)+n > e {
					t.Fatalf("a read of %d bytes at %d crosses the frame end at %d", n, len(out), e)
				}
			}
			out = append(out, p[:n]...)
		}
		if !bytes.Equal(out, stream) {
			t.Fatal("the bytes came out changed")
		}
	})
}

// pieceReader returns data in pieces of the sizes pieces cycles through.
type pieceReader struct {
	data   []byte
	pieces []byte
	i      int
}

func (r *pieceReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.pieces) > 0 {
		n = 1 + int(r.pieces[r.i%len(r.pieces)])
		r.i++
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// TestFrameReaderHugeLength: a 64-bit length so large that the frame's
// size wraps past int64 (coder/websocket refuses it) leaves the reader in
// the frame, handing out what follows as payload, not parsing it as a
// header at a wrong offset.
func TestFrameReaderHugeLength(t *testing.T) {
	for _, length := range []uint64{1<<64 - 1, 1<<64 - 14, 1 << 63} {
		hdr := binary.BigEndian.AppendUint64([]byte{0x82, 0x80 | 127}, length)
		hdr = append(hdr, 1, 2, 3, 4) // the mask
		rest := []byte("payload or garbage")
		fr := &frameReader{sr: &pieceReader{data: append(hdr, rest...)}}
		if _, err := io.ReadFull(fr, make([]byte, len(hdr))); err != nil {
			t.Fatal(err)
		}
		if fr.n != 0 || fr.left < 1<<62 {
			t.Errorf("length %#x: after the header, head %d bytes, left %d; want the payload's huge rest", length, fr.n, fr.left)
		}
		n, err := fr.Read(make([]byte, 64))
		if err != nil || n != len(rest) {
			t.Errorf("length %#x: the bytes after the header came as %d bytes, %v; want all %d as payload", length, n, err, len(rest))
		}
	}
}
