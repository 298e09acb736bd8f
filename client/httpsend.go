package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The HTTP transports (Long Polling, Server-Sent Events) send by POSTing
// frames to the connect URL. This file holds that send side and the request
// details both share.

// httpTimeout bounds the HTTP transports' DELETE and final Close POST.
const httpTimeout = 5 * time.Second

// maxErrorBody bounds how much of a refusal's body goes into an error.
const maxErrorBody = 512

// httpHeader is what the JS client's fetch sends on polls, POSTs and the
// DELETE: X-Requested-With, the bearer token, and Options.Header.
func httpHeader(o *options, bearer string) http.Header {
	h := http.Header{}
	for k, vs := range o.Header {
		h[k] = append([]string(nil), vs...)
	}
	h.Set("X-Requested-With", "XMLHttpRequest")
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	return h
}

// statusError describes a refused request with its status and the start of
// its body.
func statusError(what string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	text := string(bytes.TrimSpace(body))
	if text == "" {
		return fmt.Errorf("client: %s: %s", what, resp.Status)
	}
	return fmt.Errorf("client: %s: %s: %s", what, resp.Status, text)
}

// discard reads what is left of a body (a little) and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
}

// httpSender is the send side of the HTTP transports. Like the JS client's
// TransportSendQueue it has at most one POST in flight, and frames written
// meanwhile are concatenated into the next POST (frames of one type only:
// text goes as text/plain;charset=UTF-8, binary as application/octet-stream).
// It needs no goroutine: the writer that finds no POST in flight sends the
// waiting frames, its own included; the others wait for the POST that
// carried theirs and get its outcome.
type httpSender struct {
	client *http.Client
	url    string
	header http.Header // read-only once built

	mu       sync.Mutex // guards the fields below
	closed   bool       // the transport ended: writes fail
	next     *postBatch // frames waiting for the next POST; nil when none
	inflight *postBatch // the POST being sent; nil when none
}

// postBatch is the body of one POST and its outcome.
type postBatch struct {
	typ  websocket.MessageType
	body []byte
	sent bool          // a writer took it to send; guarded by httpSender.mu
	done chan struct{} // closed when the POST has finished
	err  error         // the POST's outcome, set before done is closed
}

// write queues b and returns when the POST carrying it has been answered.
// ctx bounds the POST when this writer is the one sending it.
func (s *httpSender) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	s.mu.Lock()
	for s.next != nil && s.next.typ != typ && !s.closed {
		// Frames of the other type wait: they go first, in their own POST.
		wait := s.next.done
		s.mu.Unlock()
		<-wait
		s.mu.Lock()
	}
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("client: send: %w", net.ErrClosed)
	}
	if s.next == nil {
		s.next = &postBatch{typ: typ, done: make(chan struct{})}
	}
	mine := s.next
	mine.body = append(mine.body, b...)
	for !mine.sent && s.inflight != nil {
		wait := s.inflight.done
		s.mu.Unlock()
		<-wait
		s.mu.Lock()
	}
	if mine.sent { // another writer sent it
		s.mu.Unlock()
		<-mine.done
		return mine.err
	}
	mine.sent = true
	s.next, s.inflight = nil, mine
	s.mu.Unlock()

	// The body is not reused: net/http may still read it after Do returns.
	mine.err = s.post(ctx, mine.typ, mine.body)
	s.mu.Lock()
	s.inflight = nil
	s.mu.Unlock()
	close(mine.done)
	return mine.err
}

// close makes later writes fail; POSTs already queued still go.
func (s *httpSender) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// post sends one POST; any 2xx is success.
func (s *httpSender) post(ctx context.Context, typ websocket.MessageType, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	req.Header = s.header.Clone()
	if typ == websocket.MessageBinary {
		req.Header.Set("Content-Type", "application/octet-stream")
	} else {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	defer discard(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return statusError("send", resp)
	}
	return nil
}

// sendLast POSTs the client's Close after the transport stopped, as the JS
// client's does (it arrives after the DELETE, or after the event stream
// closed); the outcome is ignored, the server may have forgotten the
// connection already.
func (s *httpSender) sendLast(typ websocket.MessageType, frame []byte) {
	if frame == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	_ = s.post(ctx, typ, frame)
}
