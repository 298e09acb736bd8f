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
// private HTTP client, the JS client's timings.
type Options struct {
	// AccessToken returns the bearer token, like the JS accessTokenFactory:
	// it is called for every negotiate request and for the WebSocket until a
	// negotiate redirect supplies its own accessToken. Nil or "" means no token.
	AccessToken func(ctx context.Context) (string, error)
	// HTTPClient makes the negotiate requests and the WebSocket upgrade.
	// Nil means a client with a 100 s timeout, no keep-alive (so no idle
	// connections outlive Dial) and Dialer as its dial function.
	HTTPClient *http.Client
	// Header holds extra headers sent on negotiate and on the upgrade.
	Header http.Header
	// TokenInQuery sends the token as access_token on the WebSocket URL
	// instead of an Authorization header (the browser behaviour). Negotiate
	// always uses the header.
	TokenInQuery bool
	// KeepAlive is the client ping interval. Zero means 15 s.
	KeepAlive time.Duration
	// ServerTimeout ends the connection when nothing was received for this
	// long. Zero means 30 s.
	ServerTimeout time.Duration
	// Dialer, when set, dials the TCP connections of the default HTTP client
	// (the load tool spreads over 127.0.0.x source addresses). It is ignored
	// when HTTPClient is set.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// ReadLimit is the largest WebSocket message accepted; a bigger one ends
	// the connection with status 1009. Zero means 1 MiB.
	ReadLimit int64
	// Protocol is the hub protocol: "json" or "messagepack". Empty means
	// "json". MessagePack values reach handlers, and results reach Invoke's
	// caller, as JSON (protocol/msgpack_value.go: binary data is
	// {"$binary": base64}); arguments given as Go values are encoded as
	// JSON first.
	Protocol string
	// Handlers are installed before the handshake, so they also see
	// invocations bundled with the handshake answer. Keys are hub method
	// names, matched case-insensitively. See Conn.On.
	Handlers map[string]func(args []json.RawMessage)
}

const (
	defaultHTTPTimeout   = 100 * time.Second
	defaultKeepAlive     = 15 * time.Second
	defaultServerTimeout = 30 * time.Second
	defaultReadLimit     = 1 << 20
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
	if c.KeepAlive <= 0 {
		c.KeepAlive = defaultKeepAlive
	}
	if c.ServerTimeout <= 0 {
		c.ServerTimeout = defaultServerTimeout
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = defaultReadLimit
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

// options is Options with defaults filled in and the protocol resolved (nil
// for a name no codec has).
type options struct {
	Options
	codec protocol.Codec
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
