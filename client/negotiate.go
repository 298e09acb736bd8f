package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxRedirects is the JS client's negotiate redirection limit.
const maxRedirects = 100

// maxNegotiateBody bounds how much of a negotiate answer is read.
const maxNegotiateBody = 1 << 20

// negotiated is the outcome of the negotiate loop.
type negotiated struct {
	url             string // the last URL of the redirect chain, verbatim
	connectionID    string
	connectionToken string
	transports      []offer // availableTransports, in the server's order
	// token yields the bearer for the WebSocket: the user's factory, or the
	// accessToken of the last redirect that carried one.
	token func(context.Context) (string, error)
	// bearer is the token the last negotiate request carried, which the JS
	// client keeps for the HTTP transports' requests.
	bearer string
}

// negotiate runs the JS client's redirect loop starting at rawURL.
func negotiate(ctx context.Context, rawURL string, o *Options) (*negotiated, error) {
	n := &negotiated{url: rawURL, token: o.AccessToken}
	for redirects := 1; ; redirects++ {
		resp, bearer, err := negotiateOnce(ctx, n.url, n.token, o)
		if err != nil {
			return nil, err
		}
		n.bearer = bearer
		redirect, err := n.apply(resp)
		if err != nil || !redirect {
			return n, err
		}
		if redirects == maxRedirects {
			return nil, fmt.Errorf("%w: negotiate redirection limit exceeded", ErrNegotiate)
		}
	}
}

// renegotiate asks the last URL of the redirect chain for a new connection,
// as the JS client does before trying the next transport: one request, whose
// answer must be final.
func (n *negotiated) renegotiate(ctx context.Context, o *Options) error {
	resp, bearer, err := negotiateOnce(ctx, n.url, n.token, o)
	if err != nil {
		return err
	}
	n.bearer = bearer
	redirect, err := n.apply(resp)
	if err == nil && redirect {
		err = fmt.Errorf("%w: the server redirected a second negotiate at the same URL", ErrNegotiate)
	}
	return err
}

// apply takes in one negotiate answer, checked in the JS client's order, and
// reports whether it was a redirect.
func (n *negotiated) apply(resp map[string]json.RawMessage) (redirect bool, err error) {
	if _, ok := truthy(resp["useStatefulReconnect"]); ok {
		return false, fmt.Errorf("%w: client didn't negotiate Stateful Reconnect but the server did", ErrNegotiate)
	}
	if msg, ok := truthy(resp["error"]); ok {
		return false, fmt.Errorf("%w: %s", ErrNegotiate, msg)
	}
	if _, ok := truthy(resp["ProtocolVersion"]); ok {
		return false, fmt.Errorf("%w: detected a connection attempt to an ASP.NET SignalR server; this client only supports ASP.NET Core SignalR", ErrNegotiate)
	}
	next, redirect := truthy(resp["url"])
	if redirect {
		n.url = next
	}
	if tok, ok := truthy(resp["accessToken"]); ok {
		n.token = func(context.Context) (string, error) { return tok, nil }
	}
	if redirect {
		return true, nil
	}
	return false, n.final(resp)
}

// final takes in a non-redirect negotiate answer: its ids and transports
// (startTransport chooses among them).
func (n *negotiated) final(resp map[string]json.RawMessage) error {
	var version int
	_ = json.Unmarshal(resp["negotiateVersion"], &version)
	_ = json.Unmarshal(resp["connectionId"], &n.connectionID)
	_ = json.Unmarshal(resp["connectionToken"], &n.connectionToken)
	if version < 1 {
		// Negotiate version 0: the id on the URL is the connection id.
		n.connectionToken = n.connectionID
	}
	n.transports = nil
	_ = json.Unmarshal(resp["availableTransports"], &n.transports)
	return nil
}

// negotiateOnce POSTs one negotiate request and decodes the JSON object.
// It also returns the bearer token the request carried.
func negotiateOnce(ctx context.Context, rawURL string, tokenFn func(context.Context) (string, error), o *Options) (obj map[string]json.RawMessage, token string, err error) {
	target, err := negotiateURL(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("client: negotiate: %w", err)
	}
	token, err = callToken(ctx, tokenFn)
	if err != nil {
		return nil, "", fmt.Errorf("client: access token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, http.NoBody)
	if err != nil {
		return nil, "", fmt.Errorf("client: negotiate: %w", err)
	}
	for k, vs := range o.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := o.HTTPClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("client: negotiate: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxNegotiateBody))
	if err != nil {
		return nil, "", fmt.Errorf("client: negotiate: read body: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		text := string(bytes.TrimSpace(body))
		if text == "" {
			text = http.StatusText(resp.StatusCode)
		}
		return nil, "", fmt.Errorf("%w: status %d: %s", ErrNegotiate, resp.StatusCode, text)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("%w: unexpected status code %d", ErrNegotiate, resp.StatusCode)
	}
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, "", fmt.Errorf("%w: answer is not a JSON object: %.200q", ErrNegotiate, body)
	}
	return obj, token, nil
}

// truthy reports whether a raw JSON value is truthy in JavaScript terms
// (the JS client tests negotiate properties with `if (x)`), and its text:
// the string itself, or the raw JSON for other values.
func truthy(raw json.RawMessage) (string, bool) {
	switch string(raw) {
	case "", "null", "false", "0", `""`:
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	return string(raw), true
}

// negotiateURL builds the negotiate request URL from a withUrl() URL the way
// the JS client does: "/negotiate" (or "negotiate" after a trailing slash)
// is appended to the path, the query is kept, negotiateVersion=1 is added
// only when absent, and the query is re-serialised like URLSearchParams.
func negotiateURL(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("url %q is not an absolute http(s) URL", rawURL)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if strings.HasSuffix(path, "/") {
		path += "negotiate"
	} else {
		path += "/negotiate"
	}
	pairs := parseSearchParams(u.RawQuery)
	hasVersion := false
	for _, p := range pairs {
		if p[0] == "negotiateVersion" {
			hasVersion = true
			break
		}
	}
	if !hasVersion {
		pairs = append(pairs, [2]string{"negotiateVersion", "1"})
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://" + u.Host + path + "?")
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(formEncode(p[0]))
		b.WriteByte('=')
		b.WriteString(formEncode(p[1]))
	}
	return b.String(), nil
}

// parseSearchParams splits a query into ordered name/value pairs with
// application/x-www-form-urlencoded rules, as URLSearchParams does: empty
// parts are skipped, '+' is a space, bad percent escapes stay literal.
func parseSearchParams(q string) [][2]string {
	var pairs [][2]string
	for part := range strings.SplitSeq(q, "&") {
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		pairs = append(pairs, [2]string{formDecode(name), formDecode(value)})
	}
	return pairs
}

// formDecode percent-decodes s leniently and replaces invalid UTF-8.
func formDecode(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	if !utf8.Valid(b) {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(b)
}

// formEncode is the URL standard's urlencoded byte serializer.
func formEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			b.WriteByte('+')
		case c == '*' || c == '-' || c == '.' || c == '_' ||
			'0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// uriComponentEncode is JavaScript's encodeURIComponent for valid UTF-8.
func uriComponentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' ||
			strings.IndexByte("-_.!~*'()", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// connectURL is the JS client's connect URL: the last negotiate URL
// verbatim plus the unencoded connection token. The WebSocket replaces
// http with ws; the HTTP transports use it as it is.
func connectURL(base, connectionToken string) string {
	if connectionToken == "" {
		return base
	}
	return appendQuery(base, "id="+connectionToken)
}

// webSocketURL is a connect URL with http→ws.
func webSocketURL(u string) string {
	if strings.HasPrefix(u, "http") {
		u = "ws" + u[len("http"):]
	}
	return u
}

// appendQuery appends one already-encoded query parameter to u.
func appendQuery(u, param string) string {
	if strings.Contains(u, "?") {
		return u + "&" + param
	}
	return u + "?" + param
}
