package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchboard-gw/switchboard/upstream"
)

// result is the outcome of one HTTP attempt.
type result struct {
	reply *upstream.Reply
	err   error
	// sent is false when the request certainly did not reach the handler
	// (the connection could not be made).
	sent bool
	// outcome is what the attempt says about the upstream's health.
	outcome outcome
	// retry is true when a notification should be tried again later;
	// retryAfter, when positive, is the delay the upstream asked for.
	retry      bool
	retryAfter time.Duration
	// gone is true after a 410: the upstream asked not to be called again.
	gone bool
	// refused is true when no request could be made (the caller's values,
	// ErrRefused, or the upstream's configuration): nothing was sent, and
	// trying again at once cannot help.
	refused bool
}

// maxHeaderBytes bounds the headers of one webhook request, counted as on
// the wire. Node's HTTP server, a common upstream, refuses more than 16 KiB,
// many proxies 8 KiB per line; the rules of package input keep every
// request far below it, so only an event from before those rules (replayed
// from the outbox) can reach it.
const maxHeaderBytes = 8 << 10

// request is an event's URL and the values of its ce-* headers that vary
// with the caller's input, checked: buildable and within maxHeaderBytes.
type request struct {
	url       string
	eventName string // ce-eventname: the event, or a message's target
	source    string // ce-source
	hub       string
	connID    string
	userID    string // ce-userid; "" when anonymous
	// azure, for an upstream of the Azure profile, replaces the values
	// above but url (see prepareAzure).
	azure *azureRequest
}

// prepare turns ev into a request for t, or says why it cannot be sent.
// Every error is the caller's (ErrRefused) or the template's
// (ErrBadTemplate); neither is the upstream's fault.
func prepare(t Target, ev *upstream.Event) (request, error) {
	if t.Azure != nil {
		return prepareAzure(t, ev)
	}
	eventName := ev.Event
	if ev.Event == upstream.EventMessage {
		eventName = ev.Target
	}
	u, err := ExpandURL(t.URLTemplate, ev.Hub, ev.Category(), eventName)
	if err != nil {
		return request{}, err
	}
	rq := request{
		url:       u,
		eventName: ceValue(eventName),
		source:    ceValue("/hubs/" + ev.Hub + "/connections/" + ev.ConnectionID),
		hub:       ceValue(ev.Hub),
		connID:    ceValue(ev.ConnectionID),
	}
	if ev.UserID != nil {
		rq.userID = ceValue(*ev.UserID)
	}
	// The varying values, plus generously for the fixed ones (names, ids,
	// times, two signatures, the origin).
	size := len(rq.url) + len(rq.eventName) + len(rq.source) + len(rq.hub) + len(rq.connID) + len(rq.userID) + 1024
	if size > maxHeaderBytes {
		return request{}, fmt.Errorf("%w: the request would carry %d bytes of URL and headers; the limit is %d", ErrRefused, size, maxHeaderBytes)
	}
	return rq, nil
}

// ceValue percent-encodes a CloudEvents attribute for an HTTP header, as
// the HTTP binding (3.1.3.2) requires: space, '"', '%' and everything
// outside printable ASCII, byte by byte of the UTF-8. The result is always
// a valid header value, whatever s holds.
func ceValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// refusal is the result of an event that could not become a request: the
// caller's error (or, for a broken template, the admin's), told to the
// client as is, never counted against the upstream and never retried, as
// the same event would be refused again. A broken template is retried:
// the admin may fix it while the notification waits.
func refusal(t Target, err error) result {
	if errors.Is(err, ErrBadTemplate) {
		return result{err: failureDetail(misconfigured(t), "upstream %q: %v", t.Name, err), outcome: outcomeIgnored, retry: true, refused: true}
	}
	msg := strings.TrimPrefix(err.Error(), ErrRefused.Error()+": ")
	return result{err: &deliveryError{msg: fmt.Sprintf("upstream %q not called: %s", t.Name, msg),
		client: fmt.Sprintf("upstream %q not called: %s", t.Name, msg), is: ErrRefused}, outcome: outcomeIgnored, refused: true}
}

func encodeEvent(ev *upstream.Event) ([]byte, error) {
	if body, ok := appendEvent(make([]byte, 0, eventSize(ev)), ev); ok {
		return body, nil
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, failureDetail("the gateway could not encode the event", "encode %s event: %v", ev.Event, err)
	}
	return body, nil
}

// send makes one signed POST of body (ev encoded) to r and interprets the
// answer. Every attempt goes to the upstream's delivery log.
func (d *Dispatcher) send(ctx context.Context, r route, ev *upstream.Event, body []byte, id string, attempt int) result {
	return d.sendPrepared(ctx, r, ev, nil, body, id, attempt)
}

// sendPrepared is send for an event whose request prepare already made
// (rq; nil to make it here).
func (d *Dispatcher) sendPrepared(ctx context.Context, r route, ev *upstream.Event, rq *request, body []byte, id string, attempt int) result {
	ctx, span := d.startSpan(ctx, r.t, ev, id, attempt)
	start := time.Now()
	res, status := d.post(ctx, r.t, ev, rq, body, id)
	latency := time.Since(start)
	d.observe(r, ev.Event, res, latency)
	endSpan(span, status, res.err)
	entry := Delivery{Time: d.cfg.Now(), ID: id, Event: ev.Event, Target: ev.Target, ConnectionID: ev.ConnectionID,
		Status: status, LatencyMS: float64(latency.Microseconds()) / 1000, Attempt: attempt}
	if res.err != nil {
		entry.Error = res.err.Error()
	}
	r.l.log.add(entry)
	return res
}

// ceType is the ce-type of an event: a constant for the gateway's own
// events, so that no request builds it.
func ceType(event string) string {
	switch event {
	case upstream.EventMessage:
		return "switchboard." + upstream.EventMessage
	case upstream.EventConnect:
		return "switchboard." + upstream.EventConnect
	case upstream.EventConnected:
		return "switchboard." + upstream.EventConnected
	case upstream.EventDisconnected:
		return "switchboard." + upstream.EventDisconnected
	}
	return "switchboard." + event
}

// headerField is one header of a webhook request, its key in canonical
// form.
type headerField struct{ key, value string }

// headerList is a webhook request's headers, each key once.
type headerList []headerField

// maxHeaderFields is room for every header post or postAzure sets (16 at
// most, with a trace context and an Authorization), so the list of a
// request never leaves the stack.
const maxHeaderFields = 18

// httpHeader is h as net/http's client takes it.
func (h headerList) httpHeader() http.Header {
	hh := make(http.Header, len(h))
	for _, f := range h {
		hh[f.key] = []string{f.value}
	}
	return hh
}

func (d *Dispatcher) post(ctx context.Context, t Target, ev *upstream.Event, rq *request, body []byte, id string) (result, int) {
	if rq == nil {
		p, err := prepare(t, ev)
		if err != nil {
			return refusal(t, err), 0
		}
		rq = &p
	}
	if rq.azure != nil {
		return d.postAzure(ctx, t, ev, rq)
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// The call is bounded by a deadline, not a context of its own: the
	// fasthttp client takes the deadline as is, and a context with a timeout
	// (a timer, its registration with ctx and its removal) was about 4% of
	// the gateway's CPU per invocation. Only net/http's client and the OAuth
	// token fetch, which take contexts, make one (webhookRequest.sendWith,
	// authorize).
	deadline := time.Now().Add(timeout)
	now := d.cfg.Now()
	if t.keysErr != nil {
		return result{err: failureDetail(misconfigured(t), "upstream %q: %v", t.Name, t.keysErr), outcome: outcomeIgnored, retry: true, refused: true}, 0
	}
	auth, failed := d.authorize(ctx, deadline, t)
	if failed != nil {
		return *failed, 0
	}
	sig := t.keys.Sign(id, now, body)
	// The headers go into a list on the stack, which each client copies
	// into its own request: an http.Header map built here for fasthttp to
	// copy again was 4 allocations and about 5% of the gateway's CPU per
	// invocation. Every value is a valid header value: prepare
	// percent-encoded the ce-* attributes, the rest are ours.
	var fields [maxHeaderFields]headerField
	h := headerList(fields[:0])
	h = append(h,
		headerField{"Content-Type", "application/json"},
		headerField{"User-Agent", "Switchboard"})
	if d.cfg.Origin != "" {
		h = append(h, headerField{"Webhook-Request-Origin", d.cfg.Origin})
	}
	h = append(h,
		headerField{"Ce-Specversion", "1.0"},
		headerField{"Ce-Id", id},
		headerField{"Ce-Source", rq.source},
		headerField{"Ce-Type", ceType(ev.Event)},
		headerField{"Ce-Time", now.UTC().Format(time.RFC3339Nano)},
		headerField{"Ce-Hub", rq.hub},
		headerField{"Ce-Connectionid", rq.connID})
	if ev.UserID != nil {
		h = append(h, headerField{"Ce-Userid", rq.userID})
	}
	h = append(h,
		headerField{"Ce-Eventname", rq.eventName},
		headerField{"Webhook-Id", id},
		headerField{"Webhook-Timestamp", strconv.FormatInt(now.Unix(), 10)},
		headerField{"Webhook-Signature", sig})
	h = injectTrace(ctx, h)
	if auth != "" {
		h = append(h, headerField{"Authorization", auth})
	}
	return d.exchange(t, ev, webhookRequest{ctx: ctx, deadline: deadline, url: rq.url, header: h, body: body}, timeout, now, false)
}

// webhookRequest is a webhook POST as post and postAzure build it, before
// either client turns it into its own request type.
type webhookRequest struct {
	ctx      context.Context // the caller's: the call ends when it does
	deadline time.Time       // the upstream's timeout from the call's start
	url      string          // as ExpandURL made it
	header   headerList
	body     []byte
}

// badURLError says net/http could not make a request of a webhook's URL.
type badURLError struct{ err error }

func (e *badURLError) Error() string { return e.err.Error() }

// sendWith sends w through send, net/http's client or transport, and
// reads the reply, at most maxReply bytes of it.
func (w webhookRequest) sendWith(send func(*http.Request) (*http.Response, error), maxReply int64) (webhookReply, error) {
	ctx, cancel := context.WithDeadline(w.ctx, w.deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(w.body))
	if err != nil {
		return webhookReply{}, &badURLError{err}
	}
	req.Header = w.header.httpHeader()
	resp, err := send(req)
	if err != nil {
		// net/http names a reply past MaxResponseHeaderBytes only in its
		// text ("server response headers exceeded N bytes").
		if strings.Contains(err.Error(), "server response headers exceeded") {
			return webhookReply{}, errReplyHeadersTooLarge
		}
		return webhookReply{}, err
	}
	defer resp.Body.Close()
	rep := webhookReply{
		status:      resp.StatusCode,
		contentType: resp.Header.Get("Content-Type"),
		location:    resp.Header.Get("Location"),
		retryAfter:  resp.Header.Get("Retry-After"),
	}
	if n := resp.ContentLength; n >= 0 && n <= maxReply {
		// Of announced length within the limit, the common case: one
		// slice of exactly its size.
		rep.body = make([]byte, n)
		_, err = io.ReadFull(resp.Body, rep.body)
	} else {
		rep.body, err = io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	}
	switch {
	case err != nil:
		return rep, &replyReadError{err}
	case int64(len(rep.body)) > maxReply:
		return rep, &replyTooLargeError{Status: rep.status}
	}
	return rep, nil
}

// webhookReply is what the dispatcher reads of an upstream's answer.
type webhookReply struct {
	status                            int
	contentType, location, retryAfter string
	body                              []byte // whole, within MaxReplySize; valid until release
	// held, when set, is the fasthttp response the body was read into: the
	// body is read in place, without a copy, and goes back to fasthttp's
	// pool at release.
	held *fasthttp.Response
}

// release ends the reply's body.
func (r *webhookReply) release() {
	if r.held != nil {
		fasthttp.ReleaseResponse(r.held)
		r.held, r.body = nil, nil
	}
}

// replyReadError says an upstream's reply broke off after its headers
// (status known).
type replyReadError struct{ err error }

func (e *replyReadError) Error() string { return e.err.Error() }

// roundTrip sends a webhook request through fast, else as an http.Request
// through netHTTP.
func (d *Dispatcher) roundTrip(w webhookRequest) (webhookReply, error) {
	if d.fast != nil {
		return d.fast.do(w)
	}
	return w.sendWith(d.netHTTP, d.cfg.MaxReplySize)
}

// exchange sends req, made for ev and t, and interprets the answer: as
// the Azure profile reads it when azure is set, else as the gateway's own
// contract says. req's deadline is timeout after the call's start.
func (d *Dispatcher) exchange(t Target, ev *upstream.Event, req webhookRequest, timeout time.Duration, now time.Time, azure bool) (result, int) {
	rep, err := d.roundTrip(req)
	// interpret and interpretAzure copy what they keep of the body.
	defer rep.release()
	if err != nil {
		var tooLarge *replyTooLargeError
		var badURL *badURLError
		var broken *replyReadError
		switch {
		case errors.As(err, &badURL):
			// Registration parsed the template: only a template the admin
			// broke gets here, which says nothing about the upstream's
			// health.
			return result{err: failureDetail(misconfigured(t), "upstream %q: bad URL: %v", t.Name, badURL.err), outcome: outcomeIgnored, retry: true, refused: true}, 0
		case req.ctx.Err() != nil:
			// The caller left (client gone, gateway closing): says nothing
			// about the upstream.
			return result{err: failureDetail(fmt.Sprintf("upstream %q call abandoned", t.Name), "upstream %q: call abandoned: %v", t.Name, req.ctx.Err()),
				sent: true, outcome: outcomeIgnored, retry: true}, 0
		case errors.Is(err, context.DeadlineExceeded), !time.Now().Before(req.deadline):
			return result{err: failure("upstream %q timed out after %s", t.Name, timeout), sent: true, outcome: outcomeFailure, retry: true}, rep.status
		case errors.As(err, &tooLarge):
			// The handler ran; a retry would run it again for the same event.
			return result{err: failure("upstream %q replied with more than %d bytes", t.Name, d.cfg.MaxReplySize), sent: true}, tooLarge.Status
		case errors.Is(err, errReplyHeadersTooLarge):
			// As above: the handler ran, and the upstream is alive.
			return result{err: failure("upstream %q replied with more than %d bytes of headers", t.Name, maxReplyHeaderBytes), sent: true}, 0
		case errors.As(err, &broken):
			return result{err: failureDetail(fmt.Sprintf("upstream %q broke off its reply", t.Name), "upstream %q: reading reply: %v", t.Name, broken.err),
				sent: true, outcome: outcomeFailure, retry: true}, rep.status
		case errors.Is(err, ErrAddressRefused):
			// The gateway's own policy refused the address: a configuration
			// fault, which says nothing about the upstream's health. Nothing
			// was sent; a notification waits for the policy or DNS to change.
			return result{err: failureDetail(fmt.Sprintf("upstream %q is unreachable", t.Name), "upstream %q not called: %v", t.Name, unwrapURLError(err)),
				outcome: outcomeIgnored, retry: true}, 0
		}
		if why := tlsReason(err); why != "" {
			// Nothing was sent before the handshake failed.
			return result{err: failureDetail(fmt.Sprintf("upstream %q is unreachable", t.Name), "upstream %q not called: %s", t.Name, why),
				outcome: outcomeFailure, retry: true}, 0
		}
		return result{err: failureDetail(fmt.Sprintf("upstream %q is unreachable", t.Name), "upstream %q is unreachable: %v", t.Name, unwrapURLError(err)),
			sent: !dialFailed(err), outcome: outcomeFailure, retry: true}, 0
	}
	var res result
	if azure {
		// The Azure profile's readers were written for a body of their
		// own; they get a copy rather than a review of what each keeps.
		rep.body = bytes.Clone(rep.body)
		res = d.interpretAzure(t, ev, rep, now)
	} else {
		res = d.interpret(t, ev, rep, now)
	}
	res.sent = true
	return res, rep.status
}

func (d *Dispatcher) interpret(t Target, ev *upstream.Event, rep webhookReply, now time.Time) result {
	status, data := rep.status, rep.body
	switch {
	case status == http.StatusNoContent:
		return result{}
	case status >= 300 && status < 400:
		return result{err: failureDetail(fmt.Sprintf("upstream %q answered with a redirect (%d); redirects are not followed", t.Name, status),
			"upstream %q answered with a redirect (%d to %q); redirects are not followed, register the final URL",
			t.Name, status, rep.location), retry: true}
	case ev.Event == upstream.EventConnect && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		reason := fmt.Sprintf("connection rejected by upstream %q (%d)", t.Name, status)
		var r struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &r) == nil && r.Error != "" {
			reason = r.Error
		}
		return result{reply: &upstream.Reply{Error: reason}}
	case status == http.StatusGone:
		return result{err: failure("upstream %q answered 410 Gone: it asked not to be called again", t.Name), outcome: outcomeIgnored, gone: true}
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		res := result{err: answered(t, status, data), retry: true}
		if status == http.StatusServiceUnavailable {
			res.outcome = outcomeFailure
		} else {
			res.outcome = outcomeIgnored // throttling: the upstream is alive
		}
		if wait, ok := parseRetryAfter(rep.retryAfter, now); ok {
			res.retryAfter = max(wait, time.Millisecond)
			res.err = failureDetail(answeredClient(t, status), "upstream %q answered %d %s; retry after %s%s", t.Name, status, http.StatusText(status), wait, snippet(data))
		}
		return res
	case status == http.StatusRequestEntityTooLarge || status == http.StatusRequestURITooLong || status == http.StatusRequestHeaderFieldsTooLarge:
		// The upstream is alive and refuses this request's size: sent
		// again, the same event is refused again.
		return result{err: answered(t, status, data)}
	case status < 200 || status >= 300:
		res := result{err: answered(t, status, data), retry: true}
		if status >= 500 || status == http.StatusRequestTimeout {
			res.outcome = outcomeFailure
		}
		return res
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return result{}
	}
	// From here the handler accepted the event: a bad reply is reported but
	// never retried, which would run the handler twice.
	if !isJSONType(rep.contentType) {
		return result{err: failure("upstream %q replied with Content-Type %q; want application/json",
			t.Name, rep.contentType)}
	}
	reply, err := upstream.ParseReply(data, true, upstream.WithMaxActions(d.cfg.MaxReplyActions))
	if err != nil {
		return result{err: failure("upstream %q sent an invalid reply: %s", t.Name, strings.TrimPrefix(err.Error(), "upstream: bad reply: "))}
	}
	return result{reply: reply}
}

// isJSONType reports whether a Content-Type is JSON's: application/json or
// a +json type, with any parameters. The two forms nearly every upstream
// sends are recognised without mime.ParseMediaType, which allocates a map
// per call.
func isJSONType(contentType string) bool {
	switch contentType {
	case "application/json", "application/json; charset=utf-8":
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// answered is the error for an upstream's non-2xx answer: the log gets the
// start of its body, the client only the status, since an error body may
// hold the function's internals (a stack trace, a database address).
func answered(t Target, status int, body []byte) error {
	return failureDetail(answeredClient(t, status), "upstream %q answered %d %s%s", t.Name, status, http.StatusText(status), snippet(body))
}

func answeredClient(t Target, status int) string {
	return fmt.Sprintf("upstream %q answered %d %s", t.Name, status, http.StatusText(status))
}

// misconfigured is what a client is told when the gateway cannot even build
// the request (a bad URL, a bad signing secret); the log says which.
func misconfigured(t Target) string {
	return fmt.Sprintf("upstream %q is misconfigured", t.Name)
}

// dialFailed reports whether err says the TCP connection could not be made
// (refused, no route), so the request never left. A dial timeout is not
// counted: the time budget is spent.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && !op.Timeout()
}

// snippet quotes the start of an error body so function authors see it.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	if len(b) > 200 {
		b = append(b[:200:200], "…"...)
	}
	return ": " + string(b)
}

// unwrapURLError drops the "Post URL:" wrapping of an http.Client error
// (the CLI and registration checks use one); the transport's own errors
// name the address already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}
