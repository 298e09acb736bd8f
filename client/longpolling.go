package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// lpTransport is the Long Polling transport, driven like the JS client's
// LongPollingTransport: GET {connect URL}&_=<ms> answered at once to
// start, then polls that the reader goroutine sends one after the other
// (a 200 with data delivers it, an empty 200 or a timeout polls again, a 204
// ends the connection cleanly, anything else ends it with an error), sends
// as POSTs, and a DELETE whenever the client ends the connection. All
// requests carry the token in the Authorization header. It has no goroutine
// of its own.
type lpTransport struct {
	client  *http.Client
	url     string      // the connect URL
	header  http.Header // for polls and the DELETE; read-only, cloned per request
	typ     websocket.MessageType
	limit   int64
	timeout time.Duration // a poll that reaches it is sent again
	send    httpSender

	base   context.Context // cancelled when the client ends the transport
	cancel context.CancelFunc

	pollMu sync.Mutex // held by read for as long as a poll is out

	deleteOnce sync.Once // the DELETE; a second caller waits for the first

	mu          sync.Mutex // guards serverEnded
	serverEnded bool       // the server ended the connection: no DELETE
}

var _ transport = (*lpTransport)(nil)

// dialLongPolling starts Long Polling: the first GET, which the server
// answers at once with 200.
func dialLongPolling(ctx context.Context, n *negotiated, o *options) (transport, error) {
	u := connectURL(n.url, n.connectionToken)
	h := httpHeader(o, n.bearer)
	t := &lpTransport{
		client:  o.HTTPClient,
		url:     u,
		header:  h,
		typ:     websocket.MessageText,
		limit:   o.ReadLimit,
		timeout: o.pollTimeout,
		send:    httpSender{client: o.HTTPClient, url: u, header: h},
	}
	if o.codec.Binary() {
		t.typ = websocket.MessageBinary
	}
	t.base, t.cancel = context.WithCancel(context.Background())
	resp, err := t.get(ctx, 0) // bounded by ctx, which bounds Dial
	if err != nil {
		t.cancel()
		return nil, fmt.Errorf("client: long polling connect: %w", err)
	}
	defer discard(resp) // the JS client ignores what the first poll carries
	if resp.StatusCode != http.StatusOK {
		t.cancel()
		return nil, statusError("long polling connect", resp)
	}
	return t, nil
}

func (t *lpTransport) kind() transportKind { return kindLongPolling }

func (t *lpTransport) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	return t.send.write(ctx, typ, b)
}

// get sends one poll: the connect URL plus the JS client's cache-buster.
// Its context ends with ctx, with the transport, or after timeout (unless
// zero).
func (t *lpTransport) get(ctx context.Context, timeout time.Duration) (*http.Response, error) {
	var pctx context.Context
	var cancel context.CancelFunc
	if timeout > 0 {
		pctx, cancel = context.WithTimeout(t.base, timeout)
	} else {
		pctx, cancel = context.WithCancel(t.base)
	}
	stop := context.AfterFunc(ctx, cancel)
	u := appendQuery(t.url, "_="+strconv.FormatInt(time.Now().UnixMilli(), 10))
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, u, nil)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	req.Header = t.header.Clone() // a cookie jar would add to it
	resp, err := t.client.Do(req)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: func() { stop(); cancel() }}
	return resp, nil
}

// read polls until a poll brings data or the connection ends.
func (t *lpTransport) read(ctx context.Context, buf []byte) (websocket.MessageType, []byte, error) {
	t.pollMu.Lock()
	defer t.pollMu.Unlock()
	for {
		if t.base.Err() != nil {
			return 0, buf, fmt.Errorf("client: long polling: %w", net.ErrClosed)
		}
		resp, err := t.get(ctx, t.timeout)
		if err != nil {
			if t.again(ctx, err) {
				continue
			}
			return 0, buf, t.failed(ctx, err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			b, err := appendBody(buf, resp.Body, t.limit)
			resp.Body.Close()
			switch {
			case errors.Is(err, websocket.ErrMessageTooBig):
				return 0, b, fmt.Errorf("client: long polling: poll: %w", err)
			case err != nil && t.again(ctx, err):
				continue
			case err != nil:
				return 0, b, t.failed(ctx, err)
			case len(b) == 0:
				continue // the server's idle timeout: poll again
			}
			return t.typ, b, nil
		case http.StatusNoContent:
			discard(resp)
			t.ended()
			return 0, buf, errEnded
		default:
			err := statusError("long polling: poll", resp)
			resp.Body.Close()
			t.ended()
			return 0, buf, err
		}
	}
}

// again reports whether a failed poll only timed out, which the JS client
// answers with a new poll.
func (t *lpTransport) again(ctx context.Context, err error) bool {
	if t.base.Err() != nil || ctx.Err() != nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// failed describes a poll that failed: ended by the client, by ctx, or by
// the network (which ends the connection as the server's doing: no DELETE).
func (t *lpTransport) failed(ctx context.Context, err error) error {
	switch {
	case t.base.Err() != nil:
		return fmt.Errorf("client: long polling: %w", net.ErrClosed)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	t.ended()
	return fmt.Errorf("client: long polling: poll: %w", err)
}

// ended records that the server ended the connection.
func (t *lpTransport) ended() {
	t.mu.Lock()
	t.serverEnded = true
	t.mu.Unlock()
}

// stop ends polling and waits for the poll in flight, sends the DELETE,
// then the client's Close, in the order the JS client's requests arrive.
func (t *lpTransport) stop(_ websocket.StatusCode, typ websocket.MessageType, closeFrame []byte) error {
	t.send.close()
	t.cancel()
	t.pollMu.Lock() // the reader's poll, if any, has returned; no other starts
	defer t.pollMu.Unlock()
	t.delete()
	t.send.sendLast(typ, closeFrame)
	return nil
}

// abort ends polling; as every end the client decides, it sends the
// DELETE (once, and not when the server ended the connection).
func (t *lpTransport) abort() {
	t.send.close()
	t.cancel()
	t.delete()
}

// delete tells the server the client has gone, once, and returns when it
// did (so stop's Close POST follows it even when the reader's abort sent
// it). Its answer (202, or 404 for a connection already gone) does not
// matter.
func (t *lpTransport) delete() { t.deleteOnce.Do(t.sendDelete) }

func (t *lpTransport) sendDelete() {
	t.mu.Lock()
	skip := t.serverEnded
	t.mu.Unlock()
	if skip {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, t.url, nil)
	if err != nil {
		return
	}
	req.Header = t.header.Clone()
	if resp, err := t.client.Do(req); err == nil {
		discard(resp)
	}
}

// cancelBody releases a poll's context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
