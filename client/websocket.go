package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// wsTransport is the WebSocket transport. It is a single pointer, so a Conn
// holding it in its transport interface costs no allocation and no memory
// beyond the *websocket.Conn itself: the load tool holds many thousands.
type wsTransport struct{ ws *websocket.Conn }

var _ transport = wsTransport{}

// closeFrameTimeout bounds the write of the client's last hub message.
const closeFrameTimeout = 5 * time.Second

// dialWebSocket opens the WebSocket at the connect URL (http→ws), with the
// token in an Authorization header, or in access_token as browsers send it.
func dialWebSocket(ctx context.Context, n *negotiated, o *options) (transport, error) {
	wsURL := webSocketURL(connectURL(n.url, n.connectionToken))
	token, err := callToken(ctx, n.token)
	if err != nil {
		return nil, fmt.Errorf("client: access token: %w", err)
	}
	header := http.Header{}
	for k, vs := range o.Header {
		header[k] = append([]string(nil), vs...)
	}
	if token != "" {
		if o.TokenInQuery {
			wsURL = appendQuery(wsURL, "access_token="+uriComponentEncode(token))
		} else {
			header.Set("Authorization", "Bearer "+token)
		}
	}
	ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient: o.HTTPClient,
		HTTPHeader: header,
	})
	if err != nil {
		return nil, fmt.Errorf("client: websocket dial: %w", err)
	}
	ws.SetReadLimit(o.ReadLimit)
	return wsTransport{ws}, nil
}

func (wsTransport) kind() transportKind { return kindWebSockets }

func (t wsTransport) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	return t.ws.Write(ctx, typ, b)
}

// read reads one WebSocket message; coder/websocket enforces ReadLimit.
func (t wsTransport) read(ctx context.Context, buf []byte) (websocket.MessageType, []byte, error) {
	typ, r, err := t.ws.Reader(ctx)
	if err != nil {
		return 0, buf, err
	}
	b, err := appendBody(buf, r, math.MaxInt64)
	return typ, b, err
}

// stop sends closeFrame, if any, then closes with status (the close
// handshake).
func (t wsTransport) stop(status websocket.StatusCode, typ websocket.MessageType, closeFrame []byte) error {
	if closeFrame != nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeFrameTimeout)
		_ = t.ws.Write(ctx, typ, closeFrame) // best effort: the socket closes anyway
		cancel()
	}
	if err := t.ws.Close(status, ""); err != nil &&
		!errors.Is(err, net.ErrClosed) && websocket.CloseStatus(err) == -1 {
		return fmt.Errorf("client: close: %w", err)
	}
	return nil
}

func (t wsTransport) abort() { _ = t.ws.CloseNow() }
