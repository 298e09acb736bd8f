package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-gw/switchboard/protocol"
)

func TestDialUpgradeRefused(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{offer: `[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]`, refuse: map[string]int{"WebSockets": 404}})
	_, err := Dial(context.Background(), h.url("/client/?hub=chat"), nil)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Dial error = %v, want one naming status 404", err)
	}
}

func TestHandshakeRejected(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{peer: func(p *peer) {
		p.handshake("{\"error\":\"Protocol 'json' is disabled for hub chat.\"}\x1e")
	}})
	_, err := Dial(context.Background(), h.url("/client/?hub=chat"), nil)
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("Dial error = %v, want ErrHandshake", err)
	}
	if !strings.Contains(err.Error(), "Protocol 'json' is disabled for hub chat.") {
		t.Errorf("Dial error %q lacks the server's text", err)
	}
}

// TestHandshakeThenPing checks the JS client's opening: the handshake, then
// a Ping before anything else.
func TestHandshakeThenPing(t *testing.T) {
	t.Parallel()
	first := make(chan string, 1)
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if !p.handshake(handshakeOK) {
			return
		}
		b, err := p.frame()
		if err != nil {
			t.Errorf("server: %v", err)
		}
		first <- string(b)
		p.drain()
	}})
	dial(t, h.url("/client/?hub=chat"), nil)
	if got, want := recv(t, first), "{\"type\":6}\x1e"; got != want {
		t.Errorf("first frame after handshake = %q, want %q", got, want)
	}
}

// echoPeer answers each Invocation with a Completion built by reply and
// reports every non-ping message on got.
func echoPeer(got chan<- protocol.Message, reply func(m protocol.Message) string) func(p *peer) {
	return func(p *peer) {
		if !p.handshake(handshakeOK) {
			return
		}
		for {
			m, err := p.nextNonPing()
			if err != nil {
				return
			}
			got <- m
			if m.Type == protocol.TypeInvocation && m.HasInvocationID && reply != nil {
				if !p.send(reply(m)) {
					return
				}
			}
		}
	}
}

func TestInvoke(t *testing.T) {
	t.Parallel()
	got := make(chan protocol.Message, 16)
	h := newHub(t, hubConfig{peer: echoPeer(got, func(m protocol.Message) string {
		switch m.Target {
		case "fail":
			return fmt.Sprintf("{\"type\":3,\"invocationId\":%q,\"error\":\"upstream chat-fn timed out after 10s\"}\x1e", m.InvocationID)
		case "void":
			return fmt.Sprintf("{\"type\":3,\"invocationId\":%q}\x1e", m.InvocationID)
		default: // echo the arguments back
			return fmt.Sprintf("{\"type\":3,\"invocationId\":%q,\"result\":%s}\x1e", m.InvocationID, m.Arguments)
		}
	})})
	c := dial(t, h.url("/client/?hub=chat"), nil)
	tests := []struct {
		target     string
		args       []any
		wantID     string
		wantArgs   string
		wantResult string // "" = nil
		wantErr    string // InvocationError message
	}{
		{"echo", []any{"hello", 1}, "0", `["hello",1]`, `["hello",1]`, ""},
		{"echo", nil, "1", `[]`, `[]`, ""},
		{"echo", []any{json.RawMessage(`{"a":null}`)}, "2", `[{"a":null}]`, `[{"a":null}]`, ""},
		{"fail", []any{true}, "3", `[true]`, "", "upstream chat-fn timed out after 10s"},
		{"void", nil, "4", `[]`, "", ""},
	}
	for _, tt := range tests { // sequential: ids are a counter
		res, err := c.Invoke(context.Background(), tt.target, tt.args...)
		m := recv(t, got)
		if m.InvocationID != tt.wantID || m.Target != tt.target || string(m.Arguments) != tt.wantArgs {
			t.Errorf("server got id %q target %q args %s, want %q %q %s",
				m.InvocationID, m.Target, m.Arguments, tt.wantID, tt.target, tt.wantArgs)
		}
		var ie *InvocationError
		switch {
		case tt.wantErr != "":
			if !errors.As(err, &ie) || ie.Message != tt.wantErr {
				t.Errorf("Invoke(%s) error = %v, want InvocationError %q", tt.target, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("Invoke(%s): %v", tt.target, err)
		case string(res) != tt.wantResult:
			t.Errorf("Invoke(%s) = %q, want %q", tt.target, res, tt.wantResult)
		}
	}
}

func TestInvokeConcurrent(t *testing.T) {
	t.Parallel()
	got := make(chan protocol.Message, 64)
	h := newHub(t, hubConfig{peer: echoPeer(got, func(m protocol.Message) string {
		return fmt.Sprintf("{\"type\":3,\"invocationId\":%q,\"result\":%s}\x1e", m.InvocationID, m.Arguments)
	})})
	c := dial(t, h.url("/client/?hub=chat"), nil)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			res, err := c.Invoke(context.Background(), "echo", i)
			if want := fmt.Sprintf("[%d]", i); err != nil || string(res) != want {
				t.Errorf("Invoke(echo, %d) = %s, %v; want %s", i, res, err, want)
			}
		})
	}
	wg.Wait()
}

func TestSend(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 1)
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if !p.handshake(handshakeOK) {
			return
		}
		for {
			b, err := p.frame()
			if err != nil {
				return
			}
			if string(b) != "{\"type\":6}\x1e" {
				got <- b
			}
		}
	}})
	c := dial(t, h.url("/client/?hub=chat"), nil)
	if err := c.Send(context.Background(), "broadcast", "hi", 2); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := "{\"type\":1,\"target\":\"broadcast\",\"arguments\":[\"hi\",2]}\x1e"
	if b := recv(t, got); string(b) != want {
		t.Errorf("server got %q, want %q (no invocationId)", b, want)
	}
	raw := "{\"type\":6}\x1e{\"type\":1,\"target\":\"x\",\"arguments\":[]}\x1egarbage"
	if err := c.SendRaw(context.Background(), []byte(raw)); err != nil {
		t.Fatalf("SendRaw: %v", err)
	}
	if b := recv(t, got); string(b) != raw {
		t.Errorf("server got %q, want %q", b, raw)
	}
}

// TestOnCaseInsensitiveSeveralPerFrame pushes two invocations in one frame
// with differently cased targets.
func TestOnCaseInsensitiveSeveralPerFrame(t *testing.T) {
	t.Parallel()
	start := make(chan struct{})
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if !p.handshake(handshakeOK) {
			return
		}
		<-start
		p.send("{\"type\":1,\"target\":\"NewMessage\",\"arguments\":[\"a\",1]}\x1e{\"type\":6}\x1e" +
			"{\"type\":99,\"x\":1}\x1e{\"type\":3,\"invocationId\":\"77\",\"result\":1}\x1e" +
			"{\"type\":1,\"target\":\"newmessage\",\"arguments\":[\"b\"]}\x1e")
		p.drain()
	}})
	c := dial(t, h.url("/client/?hub=chat"), nil)
	got := make(chan string, 4)
	c.On("newMessage", func(args []json.RawMessage) {
		b, _ := json.Marshal(args)
		got <- string(b)
	})
	c.On("other", func([]json.RawMessage) { got <- "other" })
	close(start)
	for _, want := range []string{`["a",1]`, `["b"]`} {
		if g := recv(t, got); g != want {
			t.Errorf("handler got %s, want %s", g, want)
		}
	}
	if c.Err() != nil {
		t.Errorf("Err() = %v after ping, unknown type and stray completion, want nil", c.Err())
	}
}

// TestHandshakeBundledInvocation: messages in the handshake answer's frame
// reach Options.Handlers before Dial returns, and one expecting a result
// gets the JS client's refusal.
func TestHandshakeBundledInvocation(t *testing.T) {
	t.Parallel()
	reply := make(chan protocol.Message, 1)
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if !p.handshake(handshakeOK + "{\"type\":1,\"target\":\"Welcome\",\"arguments\":[\"hi\"]}\x1e" +
			"{\"type\":1,\"invocationId\":\"srv-1\",\"target\":\"askClient\",\"arguments\":[]}\x1e") {
			return
		}
		m, err := p.nextNonPing()
		if err != nil {
			t.Errorf("server: %v", err)
		}
		reply <- m
		p.drain()
	}})
	var mu sync.Mutex
	var seen []string
	dial(t, h.url("/client/?hub=chat"), &Options{Handlers: map[string]func([]json.RawMessage){
		"welcome":   func(args []json.RawMessage) { mu.Lock(); seen = append(seen, "welcome"+string(args[0])); mu.Unlock() },
		"askclient": func([]json.RawMessage) { mu.Lock(); seen = append(seen, "askClient"); mu.Unlock() },
	}})
	mu.Lock()
	if got := strings.Join(seen, ","); got != `welcome"hi",askClient` {
		t.Errorf("handlers ran %q before Dial returned, want welcome\"hi\",askClient", got)
	}
	mu.Unlock()
	m := recv(t, reply)
	if m.Type != protocol.TypeCompletion || m.InvocationID != "srv-1" || m.Error != "Client didn't provide a result." {
		t.Errorf("server got %+v, want a Completion for srv-1 with the no-result error", m)
	}
}
