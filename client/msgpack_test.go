package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/protocol"
)

// TestMessagePack: with Protocol "messagepack" the client asks for it in the
// handshake, writes binary frames in the MessagePack hub protocol (binary
// arguments as bin), and reads the server's, handing JSON to handlers and
// to Invoke's caller.
func TestMessagePack(t *testing.T) {
	t.Parallel()
	got := make(chan protocol.Message, 4)
	h := newHub(t, hubConfig{peer: func(p *peer) {
		typ, b, err := p.ws.Read(p.ctx)
		if want := "{\"protocol\":\"messagepack\",\"version\":1}\x1e"; err != nil || typ != websocket.MessageText || string(b) != want {
			p.t.Errorf("server: handshake = %v %q %v, want text %q", typ, b, err, want)
			return
		}
		// The answer, with a server invocation bundled behind it.
		push, _ := protocol.AppendBinaryInvocation(nil, "", "news", json.RawMessage(`["hi",{"$binary":"AQID"}]`))
		if err := p.ws.Write(p.ctx, websocket.MessageBinary, append([]byte("{}\x1e"), push...)); err != nil {
			p.t.Errorf("server: write: %v", err)
			return
		}
		for {
			typ, b, err := p.ws.Read(p.ctx)
			if err != nil {
				return
			}
			if typ != websocket.MessageBinary {
				p.t.Errorf("server: client sent a %v frame", typ)
				return
			}
			err = protocol.SplitBinaryMessages(b, func(msg []byte) error {
				m, err := protocol.ParseBinaryMessage(msg)
				if err != nil {
					return err
				}
				if m.Type == protocol.TypeInvocation && m.HasInvocationID {
					got <- m
					reply, _ := protocol.AppendBinaryCompletion(nil, m.InvocationID, m.Arguments, "")
					return p.ws.Write(p.ctx, websocket.MessageBinary, reply)
				}
				return nil
			})
			if err != nil {
				p.t.Errorf("server: %v", err)
				return
			}
		}
	}})
	news := make(chan []json.RawMessage, 1)
	c := dial(t, h.url("/client/?hub=chat"), &Options{Protocol: "messagepack",
		Handlers: map[string]func([]json.RawMessage){"news": func(a []json.RawMessage) { news <- a }}})
	args := recv(t, news)
	if len(args) != 2 || string(args[0]) != `"hi"` || string(args[1]) != `{"$binary":"AQID"}` {
		t.Errorf("handler got %s", args)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	res, err := c.Invoke(ctx, "echo", json.RawMessage(`{"$binary":"AAEC"}`), 7)
	if err != nil || !bytes.Equal(res, []byte(`[{"$binary":"AAEC"},7]`)) {
		t.Errorf("Invoke = %s, %v", res, err)
	}
	m := recv(t, got)
	if m.Target != "echo" || m.InvocationID != "0" {
		t.Errorf("server got %+v", m)
	}
}

// TestUnknownProtocol: Dial refuses a protocol it cannot speak, before any
// request.
func TestUnknownProtocol(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{})
	_, err := Dial(context.Background(), h.url("/client/?hub=chat"), &Options{Protocol: "xml"})
	if err == nil || errors.Is(err, ErrNegotiate) || len(h.requests()) != 0 {
		t.Errorf("Dial with protocol xml: %v after %d requests; want a refusal before any", err, len(h.requests()))
	}
}
