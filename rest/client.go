package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-gw/switchboard/negotiate"
)

// DefaultTokenLifetime is the lifetime of the token signed for each request
// unless WithTokenLifetime says otherwise. It only has to outlive the
// request, so it is short: a leaked token is soon worthless.
const DefaultTokenLifetime = 5 * time.Minute

// maxResponse caps how much of an answer is read; the largest legitimate
// one is a presence page of 200 entries.
const maxResponse = 4 << 20

// Client calls the REST API of the gateway named in a connection string.
type Client struct {
	endpoint string // without trailing slash
	key      negotiate.AccessKey
	tokens   TokenSource // set by NewKeyless: used instead of key
	hc       *http.Client
	lifetime time.Duration
}

// Option configures New.
type Option func(*Client)

// WithHTTPClient sets the HTTP client used for requests. The default is
// http.DefaultClient; bound each call with its context.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTokenLifetime sets the lifetime of the token signed for each request.
// Zero or less means DefaultTokenLifetime.
func WithTokenLifetime(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.lifetime = d
		}
	}
}

// New returns a Client for the gateway and key of connectionString.
func New(connectionString string, opts ...Option) (*Client, error) {
	cs, err := negotiate.ParseConnectionString(connectionString)
	if err != nil {
		return nil, fmt.Errorf("rest: %w", err)
	}
	c := &Client{endpoint: cs.Endpoint, key: cs.Key(), hc: http.DefaultClient, lifetime: DefaultTokenLifetime}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Endpoint is the gateway's base URL, from the connection string.
func (c *Client) Endpoint() string { return c.endpoint }

// Hub names a hub. Nothing is checked until a request is made: an invalid
// or unknown hub name is reported by the call as an *Error (400 or 404).
func (c *Client) Hub(name string) Hub { return Hub{c: c, name: name} }

// Health reports whether the gateway answers its REST health check.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodHead, "/api/health", nil, nil, nil)
	return err
}

// Error is an error answer of the gateway: its HTTP status and the code and
// message of Azure's ErrorDetail body (or of the x-ms-error-code header).
type Error struct {
	Status  int
	Code    string // e.g. "Error.Unauthorized"; may be empty
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("rest: %d %s: %s", e.Status, e.Code, msg)
	}
	return fmt.Sprintf("rest: %d: %s", e.Status, msg)
}

// segments joins path segments, escaping each, onto "/api/hubs/HUB".
func escapePath(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteByte('/')
		// Literal parts such as ":send" start with ':' and are kept as
		// they are; names are escaped so '/', '?' and '#' cannot change the
		// route.
		if strings.HasPrefix(p, ":") {
			b.WriteString(p)
		} else {
			b.WriteString(url.PathEscape(p))
		}
	}
	return b.String()
}

// do sends one request to path (already escaped) with query and a JSON body
// (when in is not nil), and decodes a JSON answer into out (when not nil).
// It returns the status of a successful answer; any status of 300 or more
// is an *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) (int, error) {
	target := c.endpoint + path
	token, err := c.bearer(ctx, target)
	if err != nil {
		return 0, err
	}
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("rest: encode request body: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return 0, fmt.Errorf("rest: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("rest: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, fmt.Errorf("rest: %s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, decodeError(resp.StatusCode, resp.Header.Get("x-ms-error-code"), data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("rest: %s %s: decoding answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// sign signs a token for a request to target with the connection
// string's key.
func (c *Client) sign(target string) (string, error) {
	token, err := negotiate.IssueToken(c.key, negotiate.TokenOptions{Audience: target, Lifetime: c.lifetime})
	if err != nil {
		return "", fmt.Errorf("rest: sign request: %w", err)
	}
	return token, nil
}

// decodeError builds the *Error of an error answer: Azure's ErrorDetail
// {"code","message"} for the REST API, else the {"error"} of other
// Switchboard endpoints, else the body's first line as it is.
func decodeError(status int, headerCode string, body []byte) *Error {
	e := &Error{Status: status, Code: headerCode}
	var detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &detail) == nil {
		if detail.Code != "" {
			e.Code = detail.Code
		}
		e.Message = detail.Message
		if e.Message == "" {
			e.Message = detail.Error
		}
		if e.Message != "" {
			return e
		}
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if len(line) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut-- // never split a character
		}
		line = line[:cut] + "…"
	}
	e.Message = line
	return e
}
