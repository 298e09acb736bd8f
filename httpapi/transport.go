package httpapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/gateway"
)

// wsTransport adapts a coder/websocket connection to gateway.Transport.
type wsTransport struct {
	ws *websocket.Conn
}

var _ gateway.Transport = (*wsTransport)(nil)

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

func (t *wsTransport) WriteFrame(ctx context.Context, data []byte) error {
	return t.ws.Write(ctx, websocket.MessageText, data)
}

func (t *wsTransport) Close(code int, reason string) error {
	return t.ws.Close(websocket.StatusCode(code), reason)
}
