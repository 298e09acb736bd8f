package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/gateway"
)

// wsTransport adapts a coder/websocket connection to gateway.Transport.
type wsTransport struct {
	ws *websocket.Conn
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
// message, or the few a busy connection coalesces.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 2048
)

// smallBuffers is the ResponseWriter websocket.Accept hijacks: it swaps the
// buffers net/http hands over for smaller ones.
type smallBuffers struct{ http.ResponseWriter }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
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
	r := brw.Reader
	if r.Buffered() == 0 { // else keep it: it holds the client's first bytes
		r = bufio.NewReaderSize(conn, wsReadBuffer)
	}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}

// Flush lets Accept flush the 101 answer through the wrapper.
func (w smallBuffers) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
