package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/gateway"
)

// Server-Sent Events and Long Polling are "half transports": the server
// sends over an event stream or in the answers to polls, the client sends
// by POSTing to the connection URL. halfTransport is the half both share:
// the client's POSTs, one at a time, for the gateway's reader, and the end
// of the connection. sseTransport and pollTransport add the sending half.
//
// Concurrency: the gateway reads (ReadFrame) from one goroutine and writes
// (WriteFrame) from at most one other; POST, poll and DELETE handlers run
// on their own request goroutines and meet those two only through
// channels. The response an SSE stream or a poll is written on belongs to
// one writer at a time: the stream's to WriteFrame under wmu, a poll's to
// its handler, which writes what WriteFrame handed it while WriteFrame
// waits.

// errTransportClosed ends ReadFrame and WriteFrame once the connection was
// closed on our side.
var errTransportClosed = errors.New("httpapi: transport closed")

// errConnectionEnded is what a POST gets when the connection ended before
// its reader took the body.
var errConnectionEnded = errors.New("httpapi: the connection has ended")

// clientFault is what a POST gets when the gateway closed the connection
// over the frame the POST carried (a protocol error, binary data on a text
// protocol): the client sent something it must not.
type clientFault struct{ reason string }

func (e *clientFault) Error() string { return e.reason }

// inbound is one POSTed body on its way to the gateway's reader.
type inbound struct {
	data   []byte
	binary bool
	// handled receives nil once the reader asked for the next frame (it
	// processed this one), or the connection's end if that came first.
	// Buffered: whoever resolves it never waits.
	handled chan error
	// answered, if not nil, is closed once the POST that carried the frame
	// has its answer on the wire; the reader processes the frame only
	// then (see postEarly).
	answered chan struct{}
}

type halfTransport struct {
	in   chan *inbound // unbuffered: a POST hands its body to ReadFrame
	done chan struct{} // closed once the connection ended, by either side

	mu          sync.Mutex // guards the fields below
	cur         *inbound   // the frame the reader holds, until it asks for the next
	gone        error      // why the client left; nil while it has not
	closed      bool       // done is closed
	closeCode   int        // the gateway's close code, once it closed
	closeReason string
	frames      int // bodies the reader took
}

func newHalfTransport() halfTransport {
	return halfTransport{in: make(chan *inbound), done: make(chan struct{})}
}

// ReadFrame returns the next POSTed body. Asking for it tells the POST of
// the previous one that its messages were processed.
func (t *halfTransport) ReadFrame(ctx context.Context) ([]byte, bool, error) {
	t.mu.Lock()
	if t.cur != nil {
		t.cur.handled <- nil
		t.cur = nil
	}
	t.mu.Unlock()
	select {
	case <-t.done:
		return nil, false, t.endErr()
	default:
	}
	select {
	case in := <-t.in:
		t.mu.Lock()
		if t.closed { // Close ran meanwhile and could not resolve it
			t.mu.Unlock()
			in.handled <- errConnectionEnded
			return nil, false, t.endErr()
		}
		t.cur = in
		t.frames++
		t.mu.Unlock()
		if in.answered != nil {
			select {
			case <-in.answered:
			case <-t.done:
				return nil, false, t.endErr()
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
		}
		return in.data, in.binary, nil
	case <-t.done:
		return nil, false, t.endErr()
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// endErr is ReadFrame's error once the connection ended: the client's
// leaving, or errTransportClosed.
func (t *halfTransport) endErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gone != nil {
		return t.gone
	}
	return errTransportClosed
}

// post hands a POSTed body to the reader and waits until the reader has
// processed it, so the client's messages are read in the order it sent
// them and a POST whose body ended the connection (garbage, binary data on
// a text protocol) is answered with the reason. It fails with
// errConnectionEnded if the connection ended before the reader took the
// body, a *clientFault if the body made the gateway close the connection,
// or ctx's error.
func (t *halfTransport) post(ctx context.Context, data []byte, binary bool) error {
	in := &inbound{data: data, binary: binary, handled: make(chan error, 1)}
	select {
	case t.in <- in:
	case <-t.done:
		return errConnectionEnded
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-in.handled:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// postEarly hands a POSTed body to the reader like post, but returns as
// soon as the reader took it; the reader then waits to process it until
// answered is called, which the caller does once the POST's answer is
// flushed (and always, even when writing it failed).
//
// The handshake goes this way, because the stock client sends it and then
// awaits the POST before it awaits the handshake's answer: a handshake
// error that arrived on the event stream or a poll before the POST was
// answered rejects a promise nothing handles yet, which kills a Node
// process (an unhandled rejection) and logs an error in a browser.
// ASP.NET Core answers every POST once the body is in the connection's
// pipe, before the hub reads it, so the stock client never meets this
// there.
func (t *halfTransport) postEarly(ctx context.Context, data []byte, binary bool) (answered func(), err error) {
	in := &inbound{data: data, binary: binary, handled: make(chan error, 1), answered: make(chan struct{})}
	select {
	case t.in <- in:
		return sync.OnceFunc(func() { close(in.answered) }), nil
	case <-t.done:
		return nil, errConnectionEnded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// takenFrames is how many POSTed bodies the reader took.
func (t *halfTransport) takenFrames() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.frames
}

// clientLeft ends the connection on the client's behalf: ReadFrame returns
// err, which wraps gateway.ErrClientClosed for an orderly leave (DELETE,
// the event stream closed).
func (t *halfTransport) clientLeft(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.gone = err
	t.endLocked()
}

// Close ends the connection on the gateway's side. code and reason have no
// wire form on these transports (the SignalR Close message the gateway sent
// before tells the client why); they answer the POST whose frame the reader
// held.
func (t *halfTransport) Close(code int, reason string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closeCode, t.closeReason = code, reason
	t.endLocked()
	return nil
}

// endLocked closes done and answers the POST whose frame the reader held:
// a close over a fault of the client's frame is that POST's error; any
// other end means its messages were taken. The caller holds t.mu.
func (t *halfTransport) endLocked() {
	t.closed = true
	close(t.done)
	if t.cur == nil {
		return
	}
	var err error
	switch t.closeCode {
	case gateway.CloseProtocolError, gateway.CloseUnsupportedData, gateway.CloseMessageTooBig:
		err = &clientFault{reason: t.closeReason}
	}
	t.cur.handled <- err
	t.cur = nil
}

func (t *halfTransport) ended() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// ---- Server-Sent Events

// sseTransport sends over one text/event-stream response, which the GET
// handler holds open until the connection ends. Text only: the stock client
// refuses binary over SSE, and so does the POST of a handshake asking for a
// binary protocol.
type sseTransport struct {
	halfTransport

	wmu sync.Mutex // guards the fields below: one writer of the response at a time
	w   http.ResponseWriter
	rc  *http.ResponseController
	out bool   // the handler is returning: w is not to be touched
	buf []byte // the event being written, kept for the next
}

var _ gateway.Transport = (*sseTransport)(nil)

func newSSETransport(w http.ResponseWriter) *sseTransport {
	return &sseTransport{halfTransport: newHalfTransport(), w: w, rc: http.NewResponseController(w)}
}

// start answers the GET with the stream's headers and a comment line, so
// that the client's EventSource opens at once (Firefox waits for data).
// The stream lives as long as the connection, past the HTTP server's
// request deadlines, which it clears.
func (t *sseTransport) start() error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	_ = t.rc.SetReadDeadline(time.Time{})
	_ = t.rc.SetWriteDeadline(time.Time{})
	h := t.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: pass the stream on as it comes
	t.w.WriteHeader(http.StatusOK)
	if _, err := t.w.Write([]byte(":\r\n")); err != nil {
		return err
	}
	return t.rc.Flush()
}

// WriteFrame sends data as one event.
func (t *sseTransport) WriteFrame(ctx context.Context, data []byte, binary bool) error {
	if binary {
		return errors.New("httpapi: Server-Sent Events carry text only")
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.out || t.ended() {
		return errTransportClosed
	}
	if d, ok := ctx.Deadline(); ok {
		_ = t.rc.SetWriteDeadline(d)
	}
	t.buf = appendEvent(t.buf[:0], data)
	if _, err := t.w.Write(t.buf); err != nil {
		return err
	}
	if cap(t.buf) > 64<<10 {
		t.buf = nil // keep no buffer a burst grew
	}
	return t.rc.Flush()
}

// finish marks the response as no longer writable, before the handler
// returns.
func (t *sseTransport) finish() {
	t.wmu.Lock()
	t.out = true
	t.wmu.Unlock()
}

// appendEvent appends data as one Server-Sent Event: every line of it
// prefixed with "data: " and ended by CRLF, and a blank line. A line ends
// at CR, LF or CRLF, as EventSource reads them; its data gets the lines
// back joined by LF. JSON hub messages carry no raw line breaks except as
// whitespace between tokens, where LF stands in for CR as well.
func appendEvent(dst, data []byte) []byte {
	start := 0
	for i := 0; i < len(data); i++ {
		if c := data[i]; c == '\n' || c == '\r' {
			dst = append(append(append(dst, "data: "...), data[start:i]...), '\r', '\n')
			if c == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	dst = append(append(append(dst, "data: "...), data[start:]...), '\r', '\n')
	return append(dst, '\r', '\n')
}

// ---- Long Polling

// pollTransport sends in the answers to the client's polls: a poll waits
// until the gateway writes a frame, which goes out as its answer, or until
// the poll wait passes (answered empty: the client polls again). Long
// Polling has no pings: the polls are the client's sign of life, and a
// connection with no poll waiting for the idle timeout has lost its client.
type pollTransport struct {
	halfTransport
	wait, idle time.Duration

	frames  chan *outbound  // WriteFrame offers a frame; a waiting poll takes it
	noPolls <-chan struct{} // closed once no poll can come (Server.StopPolling)

	pmu     sync.Mutex    // guards the fields below
	current chan struct{} // closed when a newer poll takes over; nil while no poll waits
	idler   *time.Timer   // ends the connection idle after the last poll
}

// outbound is a frame on its way into a poll's answer.
type outbound struct {
	data     []byte
	binary   bool
	deadline time.Time
	written  chan error // buffered; the poll's write result
}

var (
	_ gateway.Transport          = (*pollTransport)(nil)
	_ gateway.KeepAliveTransport = (*pollTransport)(nil)
)

func newPollTransport(lp LongPolling, noPolls <-chan struct{}) *pollTransport {
	t := &pollTransport{halfTransport: newHalfTransport(), wait: lp.PollWait, idle: lp.IdleTimeout,
		frames: make(chan *outbound), noPolls: noPolls}
	t.idler = time.AfterFunc(t.idle, func() {
		t.clientLeft(fmt.Errorf("no poll from the client for %s", t.idle))
	})
	return t
}

// InherentKeepAlive tells the gateway neither to ping this connection nor
// to time it out by its reads: the transport notices a client that left.
func (t *pollTransport) InherentKeepAlive() bool { return true }

// WriteFrame hands data to a waiting poll, or to the next one, and returns
// once that poll wrote it, so data is the gateway's again. A client that
// does not poll before ctx ends fails the write, and so does every client
// without a waiting poll once the server is shutting down.
func (t *pollTransport) WriteFrame(ctx context.Context, data []byte, binary bool) error {
	out := &outbound{data: data, binary: binary, written: make(chan error, 1)}
	out.deadline, _ = ctx.Deadline()
	select {
	case t.frames <- out: // a poll waits: it gets the frame whatever else holds
		return <-out.written
	default:
	}
	select {
	case t.frames <- out:
		return <-out.written // the poll's write is bounded by out.deadline
	case <-t.done:
		return errTransportClosed
	case <-t.noPolls:
		return errors.New("httpapi: the server is shutting down and no poll is waiting")
	case <-ctx.Done():
		return fmt.Errorf("no poll from the client to answer: %w", ctx.Err())
	}
}

// pollWriteTimeout bounds a poll's write when the frame came without a
// deadline.
const pollWriteTimeout = 10 * time.Second

// poll serves one poll: 200 with what the gateway wrote, 200 empty after
// the poll wait, or 204 once the connection ended or a newer poll took over
// (the stock client then stops, as it does against ASP.NET Core). A poll
// the client gave up on is left unanswered.
func (t *pollTransport) poll(w http.ResponseWriter, r *http.Request) {
	superseded := make(chan struct{})
	t.pmu.Lock()
	if t.current != nil {
		close(t.current)
	}
	t.current = superseded
	t.idler.Stop()
	t.pmu.Unlock()
	defer func() {
		t.pmu.Lock()
		if t.current == superseded {
			t.current = nil
			t.idler.Reset(t.idle)
		}
		t.pmu.Unlock()
	}()

	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(t.wait + pollWriteTimeout))
	wait := time.NewTimer(t.wait)
	defer wait.Stop()
	select {
	case out := <-t.frames:
		deadline := out.deadline
		if deadline.IsZero() {
			deadline = time.Now().Add(pollWriteTimeout)
		}
		_ = rc.SetWriteDeadline(deadline)
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		if out.binary {
			h.Set("Content-Type", "application/octet-stream")
		}
		h.Set("Content-Length", strconv.Itoa(len(out.data)))
		w.WriteHeader(http.StatusOK)
		_, err := w.Write(out.data)
		if err == nil {
			err = rc.Flush()
		}
		out.written <- err
	case <-wait.C:
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	case <-superseded:
		w.WriteHeader(http.StatusNoContent)
	case <-t.done:
		w.WriteHeader(http.StatusNoContent)
	case <-r.Context().Done():
	}
}

// stop ends the idle timer once the connection is over.
func (t *pollTransport) stop() {
	t.pmu.Lock()
	t.idler.Stop()
	t.pmu.Unlock()
}
