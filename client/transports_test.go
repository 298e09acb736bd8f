package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/protocol"
)

// combos are the transport and protocol pairs the JS client allows.
var combos = []struct {
	transport, protocol, name string
}{
	{"websockets", "json", "WebSockets"},
	{"websockets", "messagepack", "WebSockets"},
	{"serversentevents", "json", "ServerSentEvents"},
	{"longpolling", "json", "LongPolling"},
	{"longpolling", "messagepack", "LongPolling"},
}

// TestTransportsInvokeSendReceive runs one conversation over every
// transport and protocol: the handshake over the transport (with a push
// bundled in its answer), an invocation and its completion, a push, a send,
// and Close. Keep-alive differs: every transport but Long Polling pings
// after the handshake.
func TestTransportsInvokeSendReceive(t *testing.T) {
	t.Parallel()
	for _, tc := range combos {
		t.Run(tc.transport+"/"+tc.protocol, func(t *testing.T) {
			t.Parallel()
			got := make(chan protocol.Message, 8)
			pings := make(chan int, 1)
			h := newHub(t, hubConfig{peer: func(p *peer) {
				codec, _ := protocol.CodecFor(tc.protocol)
				push, _ := codec.AppendInvocation(nil, "", "news", json.RawMessage(`["hi",1]`))
				if !p.handshakeAs(tc.protocol, handshakeOK+string(push)) {
					return
				}
				n := 0
				defer func() { pings <- n }()
				for {
					m, err := p.next()
					if err != nil {
						return
					}
					if m.Type == protocol.TypePing {
						n++
						continue
					}
					got <- m
					if m.Type == protocol.TypeInvocation && m.HasInvocationID {
						reply, _ := p.codec.AppendCompletion(nil, m.InvocationID, m.Arguments, "")
						after, _ := p.codec.AppendInvocation(nil, "", "news", json.RawMessage(`["after"]`))
						if !p.sendFrame(reply) || !p.sendFrame(after) {
							return
						}
					}
				}
			}})
			news := make(chan string, 4)
			c := dial(t, h.url("/client/?hub=chat"), &Options{Transport: tc.transport, Protocol: tc.protocol,
				Handlers: map[string]func([]json.RawMessage){"news": func(a []json.RawMessage) {
					b, _ := json.Marshal(a)
					news <- string(b)
				}}})
			if got := c.Transport(); got != tc.name {
				t.Errorf("Transport() = %q, want %q", got, tc.name)
			}
			if g := recv(t, news); g != `["hi",1]` {
				t.Errorf("bundled push: handler got %s", g)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			res, err := c.Invoke(ctx, "echo", "x", 2)
			if err != nil || string(res) != `["x",2]` {
				t.Errorf("Invoke = %s, %v; want [\"x\",2]", res, err)
			}
			if m := recv(t, got); m.Target != "echo" || m.InvocationID != "0" {
				t.Errorf("server got %+v, want echo with id 0", m)
			}
			if g := recv(t, news); g != `["after"]` {
				t.Errorf("push: handler got %s", g)
			}
			if err := c.Send(ctx, "tell", "y"); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if m := recv(t, got); m.Target != "tell" || m.HasInvocationID || string(m.Arguments) != `["y"]` {
				t.Errorf("server got %+v, want tell [\"y\"] without id", m)
			}
			if err := c.Close(); err != nil || c.Err() != nil {
				t.Errorf("Close = %v, Err = %v; want nil, nil", err, c.Err())
			}
			n := recv(t, pings)
			if tc.name == "LongPolling" && n != 0 {
				t.Errorf("server got %d pings over Long Polling, want none", n)
			}
			if tc.name != "LongPolling" && n == 0 {
				t.Errorf("server got no ping over %s, want the post-handshake one", tc.name)
			}
		})
	}
}

// TestTransportSelection: the transport is picked from the negotiate
// answer as the JS client picks it, and an impossible wish is refused with
// what the server offers (before any request when no server could help).
func TestTransportSelection(t *testing.T) {
	t.Parallel()
	const (
		wsTextOnly = `[{"transport":"WebSockets","transferFormats":["Text"]},{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]`
		lpOnly     = `[{"transport":"LongPolling","transferFormats":["Text","Binary"]}]`
		lpFirst    = `[{"transport":"Carrier","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text"]},{"transport":"WebSockets","transferFormats":["Text"]}]`
	)
	tests := []struct {
		name, transport, protocol, offer string
		want                             string   // the transport used; "" = an error
		wantErr                          []string // in the error
		noRequest                        bool     // refused before negotiate
	}{
		{name: "default is the first offered", want: "WebSockets"},
		{name: "the server's order", offer: lpFirst, want: "LongPolling"},
		{name: "long polling asked", transport: "longpolling", want: "LongPolling"},
		{name: "names in any case", transport: "ServerSentEvents", want: "ServerSentEvents"},
		{name: "messagepack skips text-only transports", protocol: "messagepack", offer: wsTextOnly, want: "LongPolling"},
		{name: "asked for one not offered", transport: "websockets", offer: lpOnly,
			wantErr: []string{"asked for websockets", "the server offers LongPolling (Text, Binary)"}},
		{name: "format not offered", transport: "websockets", protocol: "messagepack", offer: wsTextOnly,
			wantErr: []string{"Binary transfer format", "WebSockets (Text)"}},
		{name: "sse with messagepack", transport: "serversentevents", protocol: "messagepack",
			wantErr: []string{"only text"}, noRequest: true},
		{name: "unknown transport", transport: "pigeon", wantErr: []string{`unknown transport "pigeon"`}, noRequest: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, hubConfig{offer: tt.offer, peer: func(p *peer) {
				if p.handshakeAs(protocolName(tt.protocol), handshakeOK) {
					p.drain()
				}
			}})
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			c, err := Dial(ctx, h.url("/client/?hub=chat"), &Options{Transport: tt.transport, Protocol: tt.protocol})
			if err == nil {
				defer c.Close()
			}
			switch {
			case tt.want != "" && err != nil:
				t.Fatalf("Dial: %v", err)
			case tt.want != "":
				if c.Transport() != tt.want {
					t.Errorf("Transport() = %q, want %q", c.Transport(), tt.want)
				}
				return
			case err == nil:
				t.Fatalf("Dial over %s succeeded, want an error", c.Transport())
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if n := len(h.requests()); tt.noRequest && n != 0 {
				t.Errorf("%d requests before the refusal, want none", n)
			}
			if !tt.noRequest && !errors.Is(err, ErrNegotiate) {
				t.Errorf("error %q does not wrap ErrNegotiate", err)
			}
		})
	}
}

// protocolName is the handshake name of a Protocol option.
func protocolName(opt string) string {
	if opt == "" {
		return "json"
	}
	return opt
}

// TestTransportFallback: with Transport "" a transport that fails to start
// makes the client negotiate again at the same URL and try the next, in the
// server's order, as the JS client does.
func TestTransportFallback(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{refuse: map[string]int{"WebSockets": 404, "ServerSentEvents": 503}})
	c := dial(t, h.url("/client/?hub=chat"), &Options{
		AccessToken: func(context.Context) (string, error) { return "tok", nil },
	})
	if c.Transport() != "LongPolling" || c.ConnectionID() != "cid-3" {
		t.Errorf("connected over %s as %s, want LongPolling as cid-3", c.Transport(), c.ConnectionID())
	}
	want := []string{
		"POST /client/negotiate hub=chat&negotiateVersion=1",
		"GET /client/ hub=chat&id=ctok-1 websocket",
		"POST /client/negotiate hub=chat&negotiateVersion=1",
		"GET /client/ hub=chat&id=ctok-2&access_token=tok",
		"POST /client/negotiate hub=chat&negotiateVersion=1",
		"GET /client/ hub=chat&id=ctok-3&_=",
	}
	reqs := h.requests()
	for i, w := range want {
		if i >= len(reqs) {
			t.Fatalf("only %d requests: %v", len(reqs), reqs)
		}
		r := reqs[i]
		got := strings.TrimSpace(r.method + " " + r.path + " " + r.query + " " + r.upgrade)
		if !strings.HasPrefix(got, w) {
			t.Errorf("request %d = %q, want %q", i, got, w)
		}
	}
}

// TestTransportFallbackAllFail: when every transport fails to start, the
// error names each failure.
func TestTransportFallbackAllFail(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{refuse: map[string]int{"WebSockets": 404, "ServerSentEvents": 503, "LongPolling": http.StatusForbidden}})
	_, err := Dial(context.Background(), h.url("/client/?hub=chat"), nil)
	if err == nil {
		t.Fatal("Dial succeeded, want an error")
	}
	for _, s := range []string{"no transport could start", "websocket dial", "404", "server-sent events connect: 503", "long polling connect: 403"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}
