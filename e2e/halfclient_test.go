package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/protocol"
)

// halfClient drives a Server-Sent Events or Long Polling connection over
// net/http the way the stock @microsoft/signalr client does
// (../shared/reference/signalr-client.md §8): negotiate, then an event
// stream (GET, Accept: text/event-stream, the token in access_token) or a
// first GET answered at once followed by polls, POSTs carrying the
// client's messages and, for Long Polling, DELETE to end.
type halfClient struct {
	t         *testing.T
	base, hub string
	transport string // "ServerSentEvents" or "LongPolling"
	codec     protocol.Codec
	bearer    string

	connID, token string

	frames chan []byte        // what the server sent: events or poll answers
	msgs   []protocol.Message // decoded, not yet taken by next
	ended  chan int           // the status that ended the receive loop (SSE: 0)
	ctx    context.Context    // the receive loop's; cancel ends it
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// negotiated reports what negotiate answered a halfClient.
type negotiated struct {
	ConnectionID        string `json:"connectionId"`
	ConnectionToken     string `json:"connectionToken"`
	AvailableTransports []struct {
		Transport       string   `json:"transport"`
		TransferFormats []string `json:"transferFormats"`
	} `json:"availableTransports"`
	UseStatefulReconnect *bool `json:"useStatefulReconnect"`
}

// negotiateAt negotiates a connection to hub at base with bearer ("" for
// none); query is added to the negotiate URL.
func negotiateAt(t *testing.T, base, hub, bearer, query string) negotiated {
	t.Helper()
	status, body := do(t, http.MethodPost, base+"/client/negotiate?hub="+hub+"&negotiateVersion=1"+query, bearer, nil)
	if status != http.StatusOK {
		t.Fatalf("negotiate %s: %d %s", hub, status, body)
	}
	var n negotiated
	if err := json.Unmarshal(body, &n); err != nil {
		t.Fatalf("negotiate answer %s: %v", body, err)
	}
	return n
}

// newHalfClient negotiates at base and opens transport speaking protocol
// ("json" or "messagepack") there, without the handshake. Long Polling
// starts polling only if poll is set; a test that drives the polls itself
// leaves it off.
func newHalfClient(t *testing.T, base, hub, bearer, transport, proto string, poll bool) *halfClient {
	t.Helper()
	h := negotiateHalf(t, base, hub, bearer, transport, proto)
	h.open(base, poll)
	return h
}

// negotiateHalf negotiates a connection at base, to be opened with open.
func negotiateHalf(t *testing.T, base, hub, bearer, transport, proto string) *halfClient {
	t.Helper()
	codec, ok := protocol.CodecFor(proto)
	if !ok {
		t.Fatalf("no codec %q", proto)
	}
	n := negotiateAt(t, base, hub, bearer, "")
	h := &halfClient{t: t, base: base, hub: hub, transport: transport, codec: codec, bearer: bearer,
		connID: n.ConnectionID, token: n.ConnectionToken, frames: make(chan []byte, 64), ended: make(chan int, 1)}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	t.Cleanup(h.stop)
	return h
}

// open opens the transport at base, where every later request goes too.
func (h *halfClient) open(base string, poll bool) {
	h.t.Helper()
	h.base = base
	switch h.transport {
	case "ServerSentEvents":
		h.openStream(h.ctx)
	case "LongPolling":
		status, body := h.get(h.ctx, h.base)
		if status != http.StatusOK || len(body) != 0 {
			h.t.Fatalf("first Long Polling GET = %d %q, want 200 and nothing", status, body)
		}
		if poll {
			h.wg.Go(func() { h.pollLoop(h.ctx) })
		}
	default:
		h.t.Fatalf("no transport %q", h.transport)
	}
}

// url is the connection URL at base, as the stock client builds it.
func (h *halfClient) url(base string) string {
	return base + "/client/?hub=" + h.hub + "&id=" + h.token
}

// stop ends the receive loop and waits for it.
func (h *halfClient) stop() {
	h.cancel()
	h.wg.Wait()
}

func (h *halfClient) openStream(ctx context.Context) {
	h.t.Helper()
	u := h.url(h.base)
	if h.bearer != "" {
		u += "&access_token=" + h.bearer
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("open the event stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h.t.Fatalf("event stream answered %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	h.wg.Go(func() {
		defer resp.Body.Close()
		readEvents(resp.Body, h.frames)
		h.ended <- 0
	})
}

// readEvents reads Server-Sent Events as EventSource does: data lines
// joined by LF, an event ended by a blank line, comments skipped.
func readEvents(r io.Reader, out chan<- []byte) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data []byte
	has := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if has {
				out <- data
			}
			data, has = nil, false
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "data:"):
			if has {
				data = append(data, '\n')
			}
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
			has = true
		}
	}
}

// pollLoop polls until the server ends the connection (204), answers
// something else, or ctx ends.
func (h *halfClient) pollLoop(ctx context.Context) {
	for {
		status, body := h.get(ctx, h.base)
		switch {
		case ctx.Err() != nil:
			return
		case status == http.StatusOK:
			if len(body) > 0 {
				h.frames <- body
			}
		default:
			h.ended <- status
			return
		}
	}
}

// get sends a poll (or the first GET) to the connection URL at base.
func (h *halfClient) get(ctx context.Context, base string) (int, []byte) {
	status, body, _ := h.request(ctx, http.MethodGet, base, nil)
	return status, body
}

// request sends method to the connection URL at base with the client's
// headers; for Long Polling GETs it adds the stock client's cache buster.
// It returns the status, the body and the URL that answered (after
// redirects). A request that fails (not a status) gives status -1.
func (h *halfClient) request(ctx context.Context, method, base string, body []byte) (int, []byte, string) {
	u := h.url(base)
	if method == http.MethodGet {
		u += fmt.Sprintf("&_=%d", time.Now().UnixMilli())
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		h.t.Errorf("%s %s: %v", method, u, err)
		return -1, nil, ""
	}
	if h.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+h.bearer)
	}
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	if body != nil {
		req.Header.Set("Content-Type", h.contentType())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, nil, ""
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data, resp.Request.URL.String()
}

// contentType is what the stock client sends hub messages as: text for
// JSON, binary for MessagePack (the handshake is always text).
func (h *halfClient) contentType() string {
	if h.codec.Binary() {
		return "application/octet-stream"
	}
	return "text/plain;charset=UTF-8"
}

// post sends a body of hub messages as the stock client does.
func (h *halfClient) post(body []byte) (int, string) {
	return h.postAs(body, h.contentType())
}

// postAs is post with a Content-Type of the test's choosing.
func (h *halfClient) postAs(body []byte, contentType string) (int, string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url(h.base), bytes.NewReader(body))
	if h.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+h.bearer)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// handshake sends the handshake and waits for the server's answer.
func (h *halfClient) handshake() {
	h.t.Helper()
	if status, body := h.postAs(protocol.AppendHandshakeRequest(nil, h.codec.Name(), 1), "text/plain;charset=UTF-8"); status != http.StatusOK {
		h.t.Fatalf("handshake POST = %d %s", status, body)
	}
	frame := h.frame()
	rest, err := protocol.ParseHandshakeResponse(frame)
	if err != nil {
		h.t.Fatalf("handshake answer %q: %v", frame, err)
	}
	h.decode(rest)
}

// frame waits for the next frame from the server.
func (h *halfClient) frame() []byte {
	h.t.Helper()
	select {
	case f := <-h.frames:
		return f
	case <-time.After(waitFor):
		h.t.Fatalf("nothing from the server within %s", waitFor)
		return nil
	}
}

func (h *halfClient) decode(frame []byte) {
	h.t.Helper()
	if len(frame) == 0 {
		return
	}
	err := h.codec.Split(frame, func(raw []byte) error {
		m, err := h.codec.Parse(raw)
		if err != nil {
			return err
		}
		h.msgs = append(h.msgs, m)
		return nil
	})
	if err != nil {
		h.t.Fatalf("server frame %q: %v", frame, err)
	}
}

// next returns the next message from the server that is not a ping.
func (h *halfClient) next() protocol.Message {
	h.t.Helper()
	for {
		for len(h.msgs) > 0 {
			m := h.msgs[0]
			h.msgs = h.msgs[1:]
			if m.Type != protocol.TypePing {
				return m
			}
		}
		h.decode(h.frame())
	}
}

// invoke sends an invocation with args (a JSON array) and waits for its
// completion, collecting the invocations that arrive meanwhile.
func (h *halfClient) invoke(id, target, args string) (protocol.Message, []protocol.Message) {
	h.t.Helper()
	msg, err := h.codec.AppendInvocation(nil, id, target, json.RawMessage(args))
	if err != nil {
		h.t.Fatal(err)
	}
	if status, body := h.post(msg); status != http.StatusOK {
		h.t.Fatalf("invoke %s: POST = %d %s", target, status, body)
	}
	var others []protocol.Message
	for {
		m := h.next()
		if m.Type == protocol.TypeCompletion && m.InvocationID == id {
			return m, others
		}
		others = append(others, m)
	}
}

// endedWith waits for the receive loop to end and returns the status that
// ended it.
func (h *halfClient) endedWith() int {
	h.t.Helper()
	select {
	case s := <-h.ended:
		return s
	case <-time.After(waitFor):
		h.t.Fatalf("the server did not end the %s connection within %s", h.transport, waitFor)
		return 0
	}
}

// errorOf decodes an {"error": …} body.
func errorOf(body string) string {
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return "(not a JSON error: " + body + ")"
	}
	return e.Error
}
