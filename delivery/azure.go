package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/input"
	"github.com/switchboard-gw/switchboard/protocol"
	"github.com/switchboard-gw/switchboard/upstream"
)

// Upstream profiles: the webhook format an upstream receives.
const (
	// ProfileSwitchboard is the gateway's own contract (docs/webhooks.md):
	// CloudEvents headers, Standard Webhooks signatures, JSON bodies.
	ProfileSwitchboard = "switchboard"
	// ProfileAzure is what Azure SignalR Service sends its upstreams in
	// serverless mode, so that handlers written for it (the Azure Functions
	// SignalR trigger among them) run unchanged: X-ASRS-* headers, the
	// X-ASRS-Signature over the connection id made with the access keys,
	// Azure's bodies, and Azure's way of reading the answers.
	ProfileAzure = "azure-signalr"
)

// CheckProfile checks an upstream's profile name; "" is ProfileSwitchboard.
func CheckProfile(p string) error {
	switch p {
	case "", ProfileSwitchboard, ProfileAzure:
		return nil
	}
	return fmt.Errorf("unknown profile %s; use %q (the default) or %q", input.Quote(p), ProfileSwitchboard, ProfileAzure)
}

// AzureUpstream is what a Target of the Azure profile needs beyond the
// common fields. Its Filter is not used: Rules select its events.
type AzureUpstream struct {
	Rules AzureRules
	// AccessKeys are the gateway's access keys (their secrets, the
	// AccessKey of the connection string), newest first. Each makes one
	// entry of X-ASRS-Signature, so a handler that knows either key
	// accepts the request while keys rotate.
	AccessKeys []string
}

// AzureRules are an Azure upstream template's hub, category and event
// patterns: an event is sent when all three match.
type AzureRules struct {
	hub, category, event pattern
}

// pattern is one rule of Azure's upstream settings: any name ("*" or
// empty), or a comma-separated list of names, compared case-insensitively
// (as the Azure Functions trigger compares them).
type pattern struct {
	any   bool
	names map[string]bool // lower-cased
}

// maxPattern bounds a pattern's length; Azure's hub names alone are at
// most 128 characters, and a list of a few dozen names fits.
const maxPattern = 4096

func parsePattern(what, s string) (pattern, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "*" {
		return pattern{any: true}, nil
	}
	if len(s) > maxPattern || !input.Text(s) {
		return pattern{}, fmt.Errorf("%s %s: use *, one name or a comma-separated list of names (text, at most %d bytes)", what, input.Quote(s), maxPattern)
	}
	p := pattern{names: map[string]bool{}}
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" || strings.Contains(name, "*") {
			return pattern{}, fmt.Errorf("%s %s: a list holds names only, no empty entries and no *; use * alone for any", what, input.Quote(s))
		}
		p.names[strings.ToLower(name)] = true
	}
	return p, nil
}

func (p pattern) match(name string) bool {
	return p.any || p.names[strings.ToLower(name)]
}

// ParseAzureRules parses the three patterns of an Azure upstream template
// (HubPattern, CategoryPattern, EventPattern). Each is "*" (or empty) for
// any, one name, or a comma-separated list of names.
func ParseAzureRules(hub, category, event string) (AzureRules, error) {
	var r AzureRules
	var err error
	if r.hub, err = parsePattern("hub pattern", hub); err != nil {
		return AzureRules{}, fmt.Errorf("%w: %v", ErrBadFilter, err)
	}
	if r.category, err = parsePattern("category pattern", category); err != nil {
		return AzureRules{}, fmt.Errorf("%w: %v", ErrBadFilter, err)
	}
	for name := range r.category.names {
		if name != upstream.CategoryConnections && name != upstream.CategoryMessages {
			return AzureRules{}, fmt.Errorf("%w: category pattern: unknown category %s; use connections, messages or *", ErrBadFilter, input.Quote(name))
		}
	}
	if r.event, err = parsePattern("event pattern", event); err != nil {
		return AzureRules{}, fmt.Errorf("%w: %v", ErrBadFilter, err)
	}
	return r, nil
}

// Match reports whether an event of hub (with target, for message events)
// goes to the template. Azure SignalR has no connect event: a template
// receives connect only when its event pattern names it, so handlers
// written for Azure, whose patterns say "*", never see an event they do
// not know.
func (r AzureRules) Match(hub, event, target string) bool {
	category, name := upstream.CategoryConnections, event
	if event == upstream.EventMessage {
		category, name = upstream.CategoryMessages, target
	}
	if event == upstream.EventConnect && !r.event.names[upstream.EventConnect] {
		return false
	}
	return r.hub.match(hub) && r.category.match(category) && r.event.match(name)
}

// match reports whether t receives event (and target, for message events).
func (t *Target) match(event, target string) bool {
	if t.Azure != nil {
		return t.Azure.Rules.Match(t.Hub, event, target)
	}
	return t.Filter.Match(event, target)
}

// Content types of Azure's requests: connection events are JSON; an
// invocation goes in the client's own hub protocol.
const (
	azureJSON    = "application/json"
	azureMsgpack = "application/x-msgpack"
)

// azureRequest is the part of a request of the Azure profile that prepare
// computes: the header values the event's values decide, and the body.
type azureRequest struct {
	hub, connID, category, event string
	userID                       string // "" when anonymous
	claims, query                string // "" for none
	contentType                  string
	body                         []byte
}

// prepareAzure is prepare for a Target of the Azure profile.
func prepareAzure(t Target, ev *upstream.Event) (request, error) {
	category, name := ev.Category(), ev.Event
	if ev.Event == upstream.EventMessage {
		name = ev.Target
	}
	u, err := ExpandURL(t.URLTemplate, ev.Hub, category, name)
	if err != nil {
		return request{}, err
	}
	az := &azureRequest{hub: ev.Hub, connID: ev.ConnectionID, category: category, event: name,
		userID: ev.User(), claims: azureClaimsHeader(ev.Client.Claims), query: ev.Client.Query, contentType: azureJSON}
	if az.body, err = azureBody(ev, &az.contentType); err != nil {
		return request{}, err
	}
	// Every value was checked where it entered (package input: text, no
	// control characters). An event replayed from the outbox may predate
	// a rule, and net/http would refuse to send a bad header value, an
	// error that would count against the upstream: refuse it here instead.
	for _, v := range [...]string{az.hub, az.connID, az.event, az.userID, az.claims, az.query} {
		if !input.Text(v) {
			return request{}, fmt.Errorf("%w: a header value would hold %s", ErrRefused, input.Quote(v))
		}
	}
	// What is left is their total size. Generously for the fixed parts:
	// names, two signatures, the user agent.
	size := len(u) + len(az.hub) + len(az.connID) + len(az.category) + len(az.event) + len(az.userID) + len(az.claims) + len(az.query) + 1024
	if size > maxHeaderBytes {
		return request{}, fmt.Errorf("%w: the request would carry %d bytes of URL and headers (X-ASRS-User-Claims and X-ASRS-Client-Query included); the limit is %d",
			ErrRefused, size, maxHeaderBytes)
	}
	return request{url: u, azure: az}, nil
}

// azureBody is the body Azure SignalR sends for ev, and its content type.
func azureBody(ev *upstream.Event, contentType *string) ([]byte, error) {
	switch ev.Event {
	case upstream.EventConnected:
		return []byte(`{"type":10}`), nil
	case upstream.EventDisconnected:
		// Azure leaves error out when the client closed the connection.
		if ev.Reason == "" || ev.Reason == reasonClientClosed {
			return []byte(`{"type":11}`), nil
		}
		return json.Marshal(struct {
			Type  int    `json:"type"`
			Error string `json:"error"`
		}{11, ev.Reason})
	case upstream.EventConnect:
		// Azure SignalR has none; this is Azure Web PubSub's connect event
		// body, the one blocking connect Azure defines.
		return json.Marshal(struct {
			Claims       map[string][]string `json:"claims"`
			Query        map[string][]string `json:"query"`
			Headers      map[string][]string `json:"headers"`
			Subprotocols []string            `json:"subprotocols"`
		}{azureClaims(ev.Client.Claims), orEmpty(ev.Query), orEmpty(ev.Headers), orNone(ev.Subprotocols)})
	case upstream.EventMessage:
		return azureInvocation(ev, contentType)
	}
	return nil, fmt.Errorf("%w: event %s has no Azure form", ErrRefused, input.Quote(ev.Event))
}

// reasonClientClosed is gateway.ReasonClientClosed, the disconnect reason
// of a client that closed its connection (a test keeps the two equal).
const reasonClientClosed = "client closed the connection"

// azureInvocation is the client's invocation as a hub protocol message in
// the client's protocol, without its frame terminator (JSON without the
// record separator, MessagePack without the length prefix), as Azure
// forwards it.
func azureInvocation(ev *upstream.Event, contentType *string) ([]byte, error) {
	id := ""
	if ev.InvocationID != nil {
		id = *ev.InvocationID
	}
	if ev.Client.Protocol == "messagepack" {
		*contentType = azureMsgpack
		framed, err := protocol.AppendBinaryInvocation(nil, id, ev.Target, ev.Arguments)
		if err != nil {
			return nil, fmt.Errorf("%w: the invocation has no MessagePack form: %v", ErrRefused, err)
		}
		var msg []byte
		_ = protocol.SplitBinaryMessages(framed, func(m []byte) error { msg = m; return nil })
		return msg, nil
	}
	framed := protocol.AppendInvocation(nil, id, ev.Target, ev.Arguments)
	return framed[:len(framed)-1], nil
}

func orEmpty(m map[string][]string) map[string][]string {
	if m == nil {
		return map[string][]string{}
	}
	return m
}

func orNone(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// azureClaims lists each claim's values as strings, the form of Azure's
// claims (a claim type with one or more values): a JSON array claim gives
// one value per element, a string itself, anything else its JSON text.
// raw is the claims object as the connection keeps it; what is not a JSON
// object (none, or an outbox record of another shape) gives no claims.
func azureClaims(raw json.RawMessage) map[string][]string {
	var claims map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &claims) != nil {
		claims = nil
	}
	out := make(map[string][]string, len(claims))
	for name, v := range claims {
		if arr, ok := v.([]any); ok {
			vals := make([]string, 0, len(arr))
			for _, e := range arr {
				vals = append(vals, claimText(e))
			}
			out[name] = vals
			continue
		}
		out[name] = []string{claimText(v)}
	}
	return out
}

func claimText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// azureClaimsHeader is X-ASRS-User-Claims: "type: value" pairs joined by
// ", ", one pair per value, sorted by claim type for a stable header. The
// format has no escaping, and the Functions extension splits it on ","
// and then on ": ", keeping a type's first value: a pair whose type holds
// a comma or a colon, or whose value a comma, would read as other claims
// (a value "a, role: admin" as role=admin), so such pairs are left out.
func azureClaimsHeader(claims json.RawMessage) string {
	m := azureClaims(claims)
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		if strings.ContainsAny(name, ",:") {
			continue
		}
		for _, v := range m[name] {
			if strings.Contains(v, ",") {
				continue
			}
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(name)
			b.WriteString(": ")
			b.WriteString(v)
		}
	}
	return b.String()
}

// AzureSignature is X-ASRS-Signature for connID: "sha256=" and the hex
// HMAC-SHA256 of the connection id, keyed with the UTF-8 bytes of each
// access key, comma-separated, in the order of keys.
func AzureSignature(keys []string, connID string) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		m := hmac.New(sha256.New, []byte(k))
		m.Write([]byte(connID))
		b.WriteString("sha256=")
		b.WriteString(hex.EncodeToString(m.Sum(nil)))
	}
	return b.String()
}

// postAzure is post for a request of the Azure profile.
func (d *Dispatcher) postAzure(ctx context.Context, t Target, ev *upstream.Event, rq *request) (result, int) {
	az := rq.azure
	if len(t.Azure.AccessKeys) == 0 {
		return result{err: failureDetail(misconfigured(t), "upstream %q: no access key to sign X-ASRS-Signature with", t.Name),
			outcome: outcomeIgnored, retry: true, refused: true}, 0
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout) // as in post
	// Azure's upstream auth (ManagedIdentity) is this profile's natural
	// companion: an OAuth2 token goes with its requests too.
	auth, failed := d.authorize(ctx, deadline, t)
	if failed != nil {
		return *failed, 0
	}
	var fields [maxHeaderFields]headerField // as in post
	h := headerList(fields[:0])
	if auth != "" {
		h = append(h, headerField{"Authorization", auth})
	}
	h = append(h,
		headerField{"Content-Type", az.contentType},
		headerField{"User-Agent", "Switchboard"},
		headerField{"X-Asrs-Connection-Id", az.connID},
		headerField{"X-Asrs-Hub", az.hub},
		headerField{"X-Asrs-Category", az.category},
		headerField{"X-Asrs-Event", az.event})
	if ev.UserID != nil {
		h = append(h, headerField{"X-Asrs-User-Id", az.userID})
	}
	if az.claims != "" {
		h = append(h, headerField{"X-Asrs-User-Claims", az.claims})
	}
	if az.query != "" {
		h = append(h, headerField{"X-Asrs-Client-Query", az.query})
	}
	h = append(h, headerField{"X-Asrs-Signature", AzureSignature(t.Azure.AccessKeys, az.connID)})
	h = injectTrace(ctx, h) // Azure Functions read traceparent too
	return d.exchange(t, ev, webhookRequest{ctx: ctx, deadline: deadline, url: rq.url, header: h, body: az.body}, timeout, d.cfg.Now(), true)
}

// interpretAzure reads an answer the way Azure SignalR reads it: a message
// event's 2xx body is the handler's completion in the client's protocol
// (nothing for a send), a connection event's is ignored. Connect, which
// Azure SignalR lacks, is read as Azure Web PubSub reads it: a 2xx body of
// {"userId", "groups", "subprotocol", "roles"}, and a 4xx rejects the
// client. Every other status is read as for the gateway's own profile
// (retries, breaker, 410).
func (d *Dispatcher) interpretAzure(t Target, ev *upstream.Event, rep webhookReply, now time.Time) result {
	status, data := rep.status, rep.body
	if status < 200 || status >= 300 {
		if ev.Event == upstream.EventConnect && status >= 400 && status < 500 && !upstreamSide4xx(status) {
			reason := fmt.Sprintf("connection rejected by upstream %q (%d)", t.Name, status)
			var r struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(data, &r) == nil && r.Error != "" && input.Reason(r.Error) == nil {
				reason = r.Error
			}
			return result{reply: &upstream.Reply{Error: reason}}
		}
		return d.interpret(t, ev, rep, now)
	}
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0:
		return result{}
	case ev.Event == upstream.EventConnect:
		reply, err := azureConnectReply(ev, data)
		if err != nil {
			return result{err: failure("upstream %q sent an invalid connect answer: %v", t.Name, err)}
		}
		return result{reply: reply}
	case ev.Event == upstream.EventMessage && ev.InvocationID != nil:
		reply, err := azureCompletion(ev.Client.Protocol, data)
		if err != nil {
			return result{err: failure("upstream %q sent an invalid completion: %v", t.Name, err)}
		}
		return result{reply: reply}
	}
	return result{} // a send, connected, disconnected: Azure ignores the body
}

// upstreamSide4xx are the 4xx statuses that speak of the upstream or of
// the request's size rather than of the client: they are not a rejection.
func upstreamSide4xx(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusGone, http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong,
		http.StatusTooManyRequests, http.StatusRequestHeaderFieldsTooLarge:
		return true
	}
	return false
}

// azureConnectReply reads a connect answer in Azure Web PubSub's form.
// roles has no meaning here and is ignored; a subprotocol must be one the
// client offered.
func azureConnectReply(ev *upstream.Event, data []byte) (*upstream.Reply, error) {
	var r struct {
		UserID      *string  `json:"userId"`
		Groups      []string `json:"groups"`
		Subprotocol string   `json:"subprotocol"`
		Roles       []string `json:"roles"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("not a JSON object with userId, groups and subprotocol: %v", err)
	}
	if r.Subprotocol != "" && !slices.Contains(ev.Subprotocols, r.Subprotocol) {
		return nil, fmt.Errorf("subprotocol %s is not one the client offered", input.Quote(r.Subprotocol))
	}
	reply := &upstream.Reply{UserID: r.UserID, Groups: r.Groups}
	if r.UserID != nil && *r.UserID == "" {
		reply.UserID = nil
	}
	if err := reply.ValidateConnect(); err != nil {
		return nil, err
	}
	return reply, nil
}

// errNotCompletion is azureCompletion's error for a body holding another
// kind of hub message.
var errNotCompletion = errors.New("the body must be a hub protocol completion message")

// azureCompletion reads a handler's completion message in the client's
// protocol: JSON with or without its record separator, MessagePack with or
// without its length prefix. The gateway answers the client with its own
// completion carrying the result or error, for the invocation id it holds.
func azureCompletion(proto string, data []byte) (*upstream.Reply, error) {
	var m protocol.Message
	var err error
	if proto == "messagepack" {
		// Framed (length prefix) as the Functions trigger writes it, or a
		// bare message.
		var first []byte
		if protocol.SplitBinaryMessages(data, func(msg []byte) error { first = msg; return errStopSplit }) != errStopSplit {
			first = data
		}
		if m, err = protocol.ParseBinaryMessage(first); err != nil && len(first) != len(data) {
			m, err = protocol.ParseBinaryMessage(data)
		}
	} else {
		if data[len(data)-1] != protocol.RecordSeparator {
			data = append(data[:len(data):len(data)], protocol.RecordSeparator)
		}
		err = protocol.SplitMessages(data, func(msg []byte) error {
			m, err = protocol.ParseMessage(msg)
			if err != nil {
				return err
			}
			return errStopSplit
		})
		if err == errStopSplit {
			err = nil
		}
	}
	switch {
	case err != nil:
		return nil, err
	case m.Type != protocol.TypeCompletion:
		return nil, fmt.Errorf("%w, not of type %d", errNotCompletion, m.Type)
	case m.Error != "":
		if err := input.Reason(m.Error); err != nil {
			return nil, fmt.Errorf("error: %w", err)
		}
		return &upstream.Reply{Error: m.Error}, nil
	}
	return &upstream.Reply{Result: m.Result}, nil
}

var errStopSplit = errors.New("stop")
