package client

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/protocol"
)

// Options configures Dial. The zero value (or nil) works: no token, a
// private HTTP client, the JS client's timings, JSON over whichever
// transport the server offers first.
type Options struct {
	// AccessToken returns the bearer token, like the JS accessTokenFactory:
	// it is called for every negotiate request and for the WebSocket until a
	// negotiate redirect supplies its own accessToken. Long Polling and
	// Server-Sent Events use the token of the last negotiate request, as
	// the JS client does. Nil or "" means no token.
	AccessToken func(ctx context.Context) (string, error)
	// HTTPClient makes every request: negotiate, the WebSocket upgrade,
	// polls, POSTs, the DELETE and the event stream (which ignores
	// HTTPClient.Timeout, as the upgrade does). Nil means a client with a
	// 100 s timeout, no keep-alive (so no idle connections outlive Dial or
	// Close) and Dialer as its dial function.
	HTTPClient *http.Client
	// Header holds extra headers sent on every request.
	Header http.Header
	// TokenInQuery sends the token as access_token on the WebSocket URL
	// instead of an Authorization header (the browser behaviour). Negotiate,
	// polls and POSTs always use the header; the Server-Sent Events stream
	// always uses access_token.
	TokenInQuery bool
	// KeepAlive is the client ping interval. Zero means 15 s. Long Polling
	// sends no pings (it keeps itself alive), like the JS client.
	KeepAlive time.Duration
	// ServerTimeout ends the connection when nothing was received for this
	// long. Zero means 30 s. Long Polling has no server timeout, like the
	// JS client: a poll is always out.
	ServerTimeout time.Duration
	// Dialer, when set, dials the TCP connections of the default HTTP client
	// (the load tool spreads over 127.0.0.x source addresses). It is ignored
	// when HTTPClient is set.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// ReadLimit is the largest message accepted: a WebSocket message, a
	// poll answer, an event's data. A bigger one ends the connection with
	// an error wrapping websocket.ErrMessageTooBig (and WebSocket status
	// 1009). Zero means 1 MiB.
	ReadLimit int64
	// Protocol is the hub protocol: "json" or "messagepack". Empty means
	// "json". MessagePack values reach handlers, and results reach Invoke's
	// caller, as JSON (protocol/msgpack_value.go: binary data is
	// {"$binary": base64}); arguments given as Go values are encoded as
	// JSON first.
	Protocol string
	// Transport is the transport: "websockets", "serversentevents" or
	// "longpolling" (the negotiate names, in any case). Server-Sent Events
	// carry only JSON. Empty means any, chosen as the JS client does: the
	// first of the negotiate answer's availableTransports (in the server's
	// order, which ASP.NET Core makes WebSockets, Server-Sent Events, Long
	// Polling) that carries the protocol; when it fails to start, Dial negotiates again
	// and tries the next. A transport the server does not offer is an error
	// naming what it offers.
	Transport string
	// Handlers are installed before the handshake, so they also see
	// invocations bundled with the handshake answer. Keys are hub method
	// names, matched case-insensitively. See Conn.On.
	Handlers map[string]func(args []json.RawMessage)

	pollTimeout time.Duration // tests shorten it; zero means the JS client's 100 s
}

const (
	defaultHTTPTimeout   = 100 * time.Second
	defaultKeepAlive     = 15 * time.Second
	defaultServerTimeout = 30 * time.Second
	defaultReadLimit     = 1 << 20
	defaultPollTimeout   = 100 * time.Second // the JS client's, hard-coded
)

// withDefaults returns a copy of o with every zero field filled in.
func (o *Options) withDefaults() options {
	var c options
	if o != nil {
		c.Options = *o
	}
	c.codec = protocol.JSON
	if c.Protocol != "" {
		c.codec, _ = protocol.CodecFor(c.Protocol) // nil for an unknown name: Dial refuses it
	}
	c.transports, _ = parseTransport(c.Transport) // 0 for an unknown name: Dial refuses it
	if c.KeepAlive <= 0 {
		c.KeepAlive = defaultKeepAlive
	}
	if c.ServerTimeout <= 0 {
		c.ServerTimeout = defaultServerTimeout
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = defaultReadLimit
	}
	if c.pollTimeout <= 0 {
		c.pollTimeout = defaultPollTimeout
	}
	if c.HTTPClient == nil {
		dial := c.Dialer
		if dial == nil {
			dial = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
		}
		c.HTTPClient = &http.Client{
			Timeout: defaultHTTPTimeout,
			Transport: &http.Transport{
				DialContext:         dial,
				DisableKeepAlives:   true,
				TLSHandshakeTimeout: 10 * time.Second,
			},
		}
	}
	return c
}

// options is Options with defaults filled in and the protocol and
// transport resolved (nil and 0 for names Dial does not know).
type options struct {
	Options
	codec      protocol.Codec
	transports transportKind // the transports Dial may use
}

// callToken returns the bearer token from f, "" when f is nil.
func callToken(ctx context.Context, f func(context.Context) (string, error)) (string, error) {
	if f == nil {
		return "", nil
	}
	return f(ctx)
}

// lowerHandlers copies a handler map with lower-cased keys.
func lowerHandlers(in map[string]func([]json.RawMessage)) map[string][]func([]json.RawMessage) {
	out := make(map[string][]func([]json.RawMessage), len(in))
	for name, fn := range in {
		if fn != nil {
			k := strings.ToLower(name)
			out[k] = append(out[k], fn)
		}
	}
	return out
}
