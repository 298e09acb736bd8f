package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/protocol"
)

// TestSSEWire checks the requests against the JS client's: the event
// stream with the token in access_token (encoded as encodeURIComponent
// does) and no Authorization header; POSTs with it, as text; a ping after
// the handshake; a message split over several data lines; and Close: the
// stream closed, then the Close POSTed.
func TestSSEWire(t *testing.T) {
	t.Parallel()
	got := make(chan protocol.Message, 4)
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if !p.handshake(handshakeOK) {
			return
		}
		for {
			m, err := p.next()
			if err != nil {
				return
			}
			got <- m
			if m.Type == protocol.TypeInvocation {
				// Line feeds in the JSON become separate data lines.
				p.send(fmt.Sprintf("{\"type\":3,\n\"invocationId\":%q,\"result\":\n\"ok\"}\x1e", m.InvocationID))
			}
		}
	}})
	const token = "a.b/c+d e"
	c := dial(t, h.url("/client/?hub=chat"), &Options{
		Transport:   "serversentevents",
		AccessToken: func(context.Context) (string, error) { return token, nil },
		Header:      http.Header{"X-Custom": {"v1"}},
	})
	if m := recv(t, got); m.Type != protocol.TypePing {
		t.Errorf("first message after the handshake %+v, want a ping", m)
	}
	res, err := c.Invoke(context.Background(), "echo")
	if err != nil || string(res) != `"ok"` {
		t.Errorf("Invoke = %s, %v; want \"ok\"", res, err)
	}
	if err := c.Close(); err != nil || c.Err() != nil {
		t.Errorf("Close = %v, Err = %v; want nil, nil", err, c.Err())
	}

	reqs := h.requests()
	if len(reqs) < 4 {
		t.Fatalf("requests = %v", reqs)
	}
	stream := reqs[1]
	if want := "hub=chat&id=ctok-1&access_token=a.b%2Fc%2Bd%20e"; stream.method != http.MethodGet || stream.query != want {
		t.Errorf("second request %s %s, want GET %s", stream.method, stream.query, want)
	}
	if stream.auth != "" || stream.header.Get("Accept") != "text/event-stream" ||
		stream.header.Get("Cache-Control") != "no-cache" || stream.custom != "v1" {
		t.Errorf("stream headers %v, want Accept: text/event-stream, Cache-Control: no-cache, X-Custom and no Authorization", stream.header)
	}
	for _, r := range reqs[2:] {
		if r.method != http.MethodPost || r.query != connQuery || r.auth != "Bearer "+token ||
			r.header.Get("Content-Type") != "text/plain;charset=UTF-8" || r.header.Get("X-Requested-With") != "XMLHttpRequest" || r.custom != "v1" {
			t.Errorf("request %s %s with %v, want a text POST to %s with the token in Authorization", r.method, r.query, r.header, connQuery)
		}
	}
	if last := reqs[len(reqs)-1]; last.body != "{\"type\":7}\x1e" {
		t.Errorf("last request %q, want the client's Close", last.body)
	}
}

// TestSSEServerEndsStream: the end of the event stream ends the connection
// without an error, as the JS client takes it; a pending invocation fails.
func TestSSEServerEndsStream(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if p.handshake(handshakeOK) {
			p.nextNonPing() // the invocation, left pending; then the stream ends
		}
	}})
	c := dial(t, h.url("/client/?hub=chat"), &Options{Transport: "serversentevents"})
	if _, err := c.Invoke(context.Background(), "slow"); !errors.Is(err, ErrClosed) {
		t.Errorf("Invoke = %v, want ErrClosed", err)
	}
	waitDone(t, c)
	if err := c.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
}

// TestSSEServerTimeout: unlike Long Polling, SSE keeps the server timeout.
func TestSSEServerTimeout(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{}) // answers the handshake, then stays silent
	c := dial(t, h.url("/client/?hub=chat"), &Options{Transport: "serversentevents", ServerTimeout: 50 * time.Millisecond})
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, ErrServerTimeout) {
		t.Errorf("Err() = %v, want ErrServerTimeout", err)
	}
}

// TestSSEStreamContentType: an answer that is not an event stream does not
// open it, as with EventSource.
func TestSSEStreamContentType(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{streamType: "text/plain", peer: func(*peer) {}})
	_, err := Dial(context.Background(), h.url("/client/?hub=chat"), &Options{Transport: "serversentevents"})
	if err == nil || !strings.Contains(err.Error(), `Content-Type "text/plain"`) {
		t.Errorf("Dial = %v, want a refusal naming the Content-Type", err)
	}
}

// sseOf is an SSE transport reading stream, for the parser's tests.
func sseOf(stream io.Reader, limit int64) *sseTransport {
	return &sseTransport{cancel: func() {}, limit: limit, body: io.NopCloser(stream), br: bufio.NewReader(stream)}
}

// readAll reads frames until an error.
func (t *sseTransport) readAll() ([]string, error) {
	var frames []string
	var buf []byte
	for {
		typ, b, err := t.read(context.Background(), buf)
		if err != nil {
			return frames, err
		}
		if typ != websocket.MessageText {
			return frames, fmt.Errorf("frame of type %v", typ)
		}
		frames = append(frames, string(b))
		buf = b
	}
}

// TestSSEParse checks the event stream parser against EventSource's rules.
func TestSSEParse(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 10000) // several times bufio's buffer
	tests := []struct {
		name    string
		stream  string
		want    []string
		wantErr error // after the frames; errEnded = a clean end
	}{
		{"comment and CRLF", ":\r\ndata: a\r\n\r\n", []string{"a"}, errEnded},
		{"LF and no space", "data:a\n\ndata:  b\n\n", []string{"a", " b"}, errEnded},
		{"lines joined", "data: a\ndata:\ndata: c\n\n", []string{"a\n\nc"}, errEnded},
		{"empty data", "data\n\n", []string{""}, errEnded},
		{"no data, no event", "\n\nid: 1\nretry: 5\n\n", nil, errEnded},
		{"other event types dropped", "event: ping\ndata: x\n\nevent: message\ndata: y\n\nevent:\ndata: z\n\n", []string{"y", "z"}, errEnded},
		{"unknown fields ignored", "foo: bar\ndata: a\nid\n\n", []string{"a"}, errEnded},
		{"byte order mark", "\xef\xbb\xbfdata: a\n\n", []string{"a"}, errEnded},
		{"long line", "data: " + long + "\r\n\r\n", []string{long}, errEnded},
		{"unfinished event dropped", "data: a\n\ndata: b\n", []string{"a"}, errEnded},
		{"unfinished line", "data: a\n\ndata: b", []string{"a"}, errEnded},
		{"over the limit", "data: " + long + long + "\n\n", nil, websocket.ErrMessageTooBig},
		{"over the limit in lines", strings.Repeat("data: "+long+"\n", 3) + "\n", nil, websocket.ErrMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := sseOf(strings.NewReader(tt.stream), 15000).readAll()
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("frames %q, want %q", got, tt.want)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
	// A stream cut short is an error, not a clean end.
	cut := io.MultiReader(strings.NewReader("data: a\n\n"), failingReader{io.ErrUnexpectedEOF})
	got, err := sseOf(cut, 100).readAll()
	if len(got) != 1 || errors.Is(err, errEnded) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut stream: frames %q, error %v; want one frame, then io.ErrUnexpectedEOF", got, err)
	}
}

// failingReader is a reader that fails.
type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

// FuzzSSEParse feeds arbitrary event streams to the parser: no panic, no
// frame over the limit, and the stream ends with a clean end or an error.
func FuzzSSEParse(f *testing.F) {
	for _, s := range []string{":\r\ndata: a\r\n\r\n", "data: a\ndata: b\n\n", "event: x\ndata: y\n\n", "\xef\xbb\xbfdata:\n\n", "data: " + strings.Repeat("z", 5000) + "\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		frames, err := sseOf(strings.NewReader(string(stream)), 4096).readAll()
		if err == nil {
			t.Fatal("readAll ended without an error")
		}
		for _, fr := range frames {
			if len(fr) > 4096 {
				t.Fatalf("frame of %d bytes over the limit", len(fr))
			}
		}
	})
}

// TestSSEHandlersSeeJSON: SSE carries the JSON protocol end to end (the
// handlers' arguments, a bundled push), and only events of type message
// are hub frames.
func TestSSEHandlersSeeJSON(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{peer: func(p *peer) {
		if !p.handshake(handshakeOK+"{\"type\":1,\"target\":\"news\",\"arguments\":[\"é\",{\"a\":[1]}]}\x1e") ||
			!p.rawEvents("event: other\r\ndata: {\"type\":1,\"target\":\"news\",\"arguments\":[\"no\"]}\x1e\r\n\r\n: comment\r\n") ||
			!p.send("{\"type\":1,\"target\":\"news\",\"arguments\":[\"yes\"]}\x1e") {
			return
		}
		p.drain()
	}})
	got := make(chan []json.RawMessage, 2)
	dial(t, h.url("/client/?hub=chat"), &Options{Transport: "serversentevents",
		Handlers: map[string]func([]json.RawMessage){"news": func(a []json.RawMessage) { got <- a }}})
	if a := recv(t, got); len(a) != 2 || string(a[0]) != `"é"` || string(a[1]) != `{"a":[1]}` {
		t.Errorf("handler got %s", a)
	}
	if a := recv(t, got); len(a) != 1 || string(a[0]) != `"yes"` {
		t.Errorf("handler got %s, want [\"yes\"] (the other event dropped)", a)
	}
}
