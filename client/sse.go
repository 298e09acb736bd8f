package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// sseTransport is the Server-Sent Events transport, as the JS client drives
// it through EventSource: GET {connect URL}&access_token=<token> (the token
// in the query, as EventSource cannot set headers) with Accept:
// text/event-stream, then each event's data is one text frame; sends are
// POSTs with the token in the Authorization header. The end of the stream
// ends the connection without an error (EventSource's error event, which
// the JS client takes as a close); stopping closes the stream. It has no
// goroutine of its own.
//
// The event stream is parsed as EventSource does: "data" lines joined by
// line feeds, comments and other fields skipped, events of a type other
// than "message" dropped, a leading byte order mark ignored. Lines end with
// LF or CRLF; a lone CR does not end a line (no server of ours writes one).
type sseTransport struct {
	send   httpSender
	cancel context.CancelFunc // ends the event stream
	limit  int64

	readMu sync.Mutex // held by read; guards the fields below
	body   io.ReadCloser
	br     *bufio.Reader
	long   []byte // a line longer than br's buffer, put together
	begun  bool   // the first line was read (the byte order mark is only there)
}

var _ transport = (*sseTransport)(nil)

// dialSSE opens the event stream; it has started when the server answered
// 200 with Content-Type text/event-stream (EventSource's "open").
func dialSSE(ctx context.Context, n *negotiated, o *options) (transport, error) {
	u := connectURL(n.url, n.connectionToken)
	streamURL := u
	if n.bearer != "" {
		streamURL = appendQuery(u, "access_token="+uriComponentEncode(n.bearer))
	}
	base, cancel := context.WithCancel(context.Background())
	stopDial := context.AfterFunc(ctx, cancel) // ctx bounds the start only
	defer stopDial()
	req, err := http.NewRequestWithContext(base, http.MethodGet, streamURL, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("client: server-sent events connect: %w", err)
	}
	for k, vs := range o.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	// The stream lives as long as the connection: HTTPClient.Timeout, which
	// covers reading the body, must not end it (coder/websocket does the
	// same for the upgrade).
	hc := *o.HTTPClient
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("client: server-sent events connect: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		err := statusError("server-sent events connect", resp)
		resp.Body.Close()
		cancel()
		return nil, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("client: server-sent events connect: Content-Type %q, want text/event-stream", resp.Header.Get("Content-Type"))
	}
	return &sseTransport{
		send:   httpSender{client: o.HTTPClient, url: u, header: httpHeader(o, n.bearer)},
		cancel: cancel,
		limit:  o.ReadLimit,
		body:   resp.Body,
		br:     bufio.NewReader(resp.Body),
	}, nil
}

func (t *sseTransport) kind() transportKind { return kindServerSentEvents }

func (t *sseTransport) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	return t.send.write(ctx, typ, b)
}

// read returns the data of the next message event.
func (t *sseTransport) read(ctx context.Context, buf []byte) (websocket.MessageType, []byte, error) {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	if ctx.Done() != nil { // Dial's handshake read: cut short, it ends the stream
		stop := context.AfterFunc(ctx, t.cancel)
		defer stop()
	}
	data := buf[:0]
	if cap(data) > maxKeptBuffer {
		data = nil
	}
	hasData, message := false, true
	for {
		line, err := t.line()
		if err != nil {
			t.body.Close() // the connection ends with any failed read
			if ctx.Err() != nil {
				return 0, data, ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return 0, data, errEnded // an event not ended by a blank line is dropped
			}
			if errors.Is(err, context.Canceled) {
				err = net.ErrClosed
			}
			return 0, data, fmt.Errorf("client: server-sent events: %w", err)
		}
		if len(line) == 0 { // dispatch
			if hasData && message {
				return websocket.MessageText, data[:len(data)-1], nil
			}
			data, hasData, message = data[:0], false, true
			continue
		}
		if line[0] == ':' {
			continue // a comment
		}
		name, value, _ := bytes.Cut(line, []byte{':'})
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(name) {
		case "data":
			data = append(append(data, value...), '\n')
			hasData = true
			if int64(len(data)) > t.limit+1 {
				return 0, data, fmt.Errorf("client: server-sent events: event data over %d bytes: %w", t.limit, websocket.ErrMessageTooBig)
			}
		case "event":
			message = len(value) == 0 || string(value) == "message"
		}
	}
}

// line returns the next line without its end; it is valid until the next
// call. A stream that ends inside a line gives io.EOF.
func (t *sseTransport) line() ([]byte, error) {
	b, err := t.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		if cap(t.long) > maxKeptBuffer {
			t.long = nil
		}
		t.long = append(t.long[:0], b...)
		for err == bufio.ErrBufferFull {
			if int64(len(t.long)) > t.limit+maxErrorBody {
				return nil, fmt.Errorf("line over %d bytes: %w", t.limit, websocket.ErrMessageTooBig)
			}
			b, err = t.br.ReadSlice('\n')
			t.long = append(t.long, b...)
		}
		b = t.long
	}
	if err != nil {
		return nil, err
	}
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	if !t.begun {
		t.begun = true
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	}
	return b, nil
}

// stop closes the event stream, then POSTs the client's Close, which
// therefore reaches the server after the stream ended, as the JS client's
// does.
func (t *sseTransport) stop(_ websocket.StatusCode, typ websocket.MessageType, closeFrame []byte) error {
	t.send.close()
	t.cancel()
	t.readMu.Lock() // the reader has left the stream
	t.body.Close()
	t.readMu.Unlock()
	t.send.sendLast(typ, closeFrame)
	return nil
}

// abort ends the stream; the body is closed here unless the reader is in
// read, which closes it as its read fails.
func (t *sseTransport) abort() {
	t.send.close()
	t.cancel()
	if t.readMu.TryLock() {
		t.body.Close()
		t.readMu.Unlock()
	}
}
