package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/coder/websocket"
)

// transport carries a connection's frames. Conn holds one and never asks
// which kind it is: the differences between WebSockets, Server-Sent Events
// and Long Polling (framing, the send side, how each end is told, keep-alive)
// live behind these methods.
//
// A frame is whole hub messages, one or many. Frames are typed like
// WebSocket messages (text for JSON and the handshake, binary for
// MessagePack); the HTTP transports map the type to a Content-Type on the
// way out and give frames the hub protocol's type on the way in.
type transport interface {
	// kind tells which transport this is.
	kind() transportKind
	// write sends one frame. It may be called from several goroutines;
	// frames go out whole and one after the other. ctx bounds the write.
	write(ctx context.Context, typ websocket.MessageType, b []byte) error
	// read returns the next frame, appended to buf[:0] (which it may grow);
	// only the reader goroutine (or Dial, before it starts) calls it. A
	// server that ended the connection the way the JS client takes as a
	// clean close (a poll answered 204, the end of the event stream) gives
	// errEnded. ctx bounds this read.
	read(ctx context.Context, buf []byte) (websocket.MessageType, []byte, error)
	// stop ends the transport on the client's behalf, as the JS client's
	// transport.stop() does, and returns when it is done. closeFrame, when
	// not nil, is the client's last hub message (its Close), a frame of type
	// typ; status is the WebSocket close status. Only the WebSocket reports
	// an error (a failed close handshake); the HTTP transports' requests
	// are best effort.
	stop(status websocket.StatusCode, typ websocket.MessageType, closeFrame []byte) error
	// abort drops the transport without a close message and unblocks
	// read at once (Long Polling still sends its DELETE, as it does for
	// every end the client decides, unless the server ended it). Safe to
	// call from any goroutine, several times, and after stop.
	abort()
}

// errEnded is what read returns when the server ended the connection in a
// way the JS client does not report as an error.
var errEnded = errors.New("client: server ended the connection")

// The transports, in the bit order of the JS client's HttpTransportType.
type transportKind uint8

const (
	kindWebSockets transportKind = 1 << iota
	kindServerSentEvents
	kindLongPolling

	kindAny = kindWebSockets | kindServerSentEvents | kindLongPolling
)

// String is the transport's name in negotiate answers.
func (k transportKind) String() string {
	for name, v := range transportKinds {
		if v == k {
			return name
		}
	}
	return "none"
}

// inherentKeepAlive reports a transport that keeps the connection alive by
// itself (Long Polling: a poll is always out), for which the JS client sends
// no pings and has no server timeout.
func (k transportKind) inherentKeepAlive() bool { return k == kindLongPolling }

// queuesFrames reports a transport whose write copies the frame into a
// queue and then waits (the HTTP transports, for their POST).
func (k transportKind) queuesFrames() bool { return k != kindWebSockets }

// transportKinds maps the names of negotiate answers to kinds.
var transportKinds = map[string]transportKind{
	"WebSockets":       kindWebSockets,
	"ServerSentEvents": kindServerSentEvents,
	"LongPolling":      kindLongPolling,
}

// parseTransport reads Options.Transport: "" means any, other names match
// the negotiate names case-insensitively.
func parseTransport(s string) (transportKind, bool) {
	if s == "" {
		return kindAny, true
	}
	for name, k := range transportKinds {
		if strings.EqualFold(s, name) {
			return k, true
		}
	}
	return 0, false
}

// offer is one entry of a negotiate answer's availableTransports.
type offer struct {
	Transport       string   `json:"transport"`
	TransferFormats []string `json:"transferFormats"`
}

func (a offer) String() string {
	return a.Transport + " (" + strings.Join(a.TransferFormats, ", ") + ")"
}

// startTransport starts the first transport of the negotiate answer that
// the client allows and that carries the hub protocol's transfer format,
// walking the server's list in its order as the JS client does. When one
// fails to start, the client negotiates again at the same URL (a connection
// token is good for one attempt) and tries the next; n then holds the
// answer the started transport used.
func startTransport(ctx context.Context, n *negotiated, o *options) (transport, error) {
	format := "Text"
	if o.codec.Binary() {
		format = "Binary"
	}
	offers := n.transports // the first answer's list is walked, whatever later ones say
	var failed []error
	for _, a := range offers {
		kind := transportKinds[a.Transport]
		if kind&o.transports == 0 || !hasString(a.TransferFormats, format) {
			continue
		}
		if len(failed) > 0 {
			if err := n.renegotiate(ctx, &o.Options); err != nil {
				return nil, err
			}
		}
		var tr transport
		var err error
		switch kind {
		case kindWebSockets:
			tr, err = dialWebSocket(ctx, n, o)
		case kindServerSentEvents:
			tr, err = dialSSE(ctx, n, o)
		case kindLongPolling:
			tr, err = dialLongPolling(ctx, n, o)
		}
		if err == nil {
			return tr, nil
		}
		failed = append(failed, err)
		if ctx.Err() != nil {
			break
		}
	}
	switch len(failed) {
	case 0:
		return nil, noTransportError(offers, o, format)
	case 1:
		return nil, failed[0]
	}
	return nil, fmt.Errorf("client: no transport could start: %w", errors.Join(failed...))
}

// noTransportError says what the server offers when nothing fits.
func noTransportError(offers []offer, o *options, format string) error {
	if len(offers) == 0 {
		return fmt.Errorf("%w: none of the transports supported by the client are supported by the server (it offers none)", ErrNegotiate)
	}
	list := make([]string, len(offers))
	for i, a := range offers {
		list[i] = a.String()
	}
	want := "any transport"
	if o.Transport != "" {
		want = o.Transport
	}
	return fmt.Errorf("%w: none of the transports supported by the client are supported by the server: asked for %s with the %s transfer format (%s protocol); the server offers %s",
		ErrNegotiate, want, format, o.codec.Name(), strings.Join(list, ", "))
}

func hasString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// appendBody reads r to its end, appending to buf[:0]; more than limit bytes
// is an error wrapping websocket.ErrMessageTooBig (what a WebSocket reports
// for a message over ReadLimit, so callers check one error for all
// transports). Buffers that grew past maxKeptBuffer are not reused.
func appendBody(buf []byte, r io.Reader, limit int64) ([]byte, error) {
	b := buf[:0]
	if cap(b) > maxKeptBuffer {
		b = nil
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return b, fmt.Errorf("read limited at %d bytes: %w", limit, websocket.ErrMessageTooBig)
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
