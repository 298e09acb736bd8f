package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// DefaultMaxBodySize is the largest webhook body Handler and EventFromRequest
// read when no limit is given.
const DefaultMaxBodySize = 1 << 20

// Errors of EventFromRequest besides the signature errors of Verify. Handler
// maps each to an HTTP status.
var (
	ErrBodyTooLarge   = errors.New("upstream: webhook body is too large")
	ErrNotJSON        = errors.New("upstream: webhook Content-Type is not application/json")
	ErrMalformedEvent = errors.New("upstream: webhook body is not a valid event")
)

// Func handles one event. A nil *Reply with a nil error accepts the event as
// is. What an error means depends on the event: it rejects a connect (403) and
// fails a message invocation (the caller's Completion carries err.Error(), so
// keep internal details out of it); for connected and disconnected it becomes
// a 500, which the gateway retries.
type Func func(ctx context.Context, ev *Event) (*Reply, error)

// HandlerOption changes how Handler serves.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	maxBody int64
	now     func() time.Time
	origins []string // nil allows any origin in the OPTIONS check
}

// WithMaxBodySize limits the size of a webhook body; larger ones get 413.
// Zero or less means DefaultMaxBodySize.
func WithMaxBodySize(n int64) HandlerOption {
	return func(c *handlerConfig) { c.maxBody = n }
}

// WithClock sets the clock used to check webhook timestamps. It exists for
// tests; the default is time.Now.
func WithClock(now func() time.Time) HandlerOption {
	return func(c *handlerConfig) { c.now = now }
}

// WithAllowedOrigins restricts the OPTIONS abuse-protection check to these
// origins (compared case-insensitively; "*" allows any). With no arguments no
// origin is granted. By default any origin is granted, since the signature,
// not the origin, is what protects the handler.
func WithAllowedOrigins(origins ...string) HandlerOption {
	return func(c *handlerConfig) { c.origins = append([]string{}, origins...) }
}

// rejection is the error Reject returns. Its text is exactly the reason so the
// client sees nothing else.
type rejection struct{ reason string }

func (r *rejection) Error() string { return r.reason }

// Reject returns an error whose text is reason and nothing else: returned from
// a Func it makes a connect fail with that reason (403) or a message
// invocation fail with it.
func Reject(reason string) error { return &rejection{reason: reason} }

// Handler returns an http.Handler for one upstream endpoint. It verifies each
// POST against secrets (any one may match, so keys rotate without downtime),
// decodes the Event, calls fn with the request's context and writes fn's
// Reply. It answers the CloudEvents abuse-protection OPTIONS check the gateway
// sends when the upstream is registered.
//
// Statuses: 204 for a nil reply, 200 with the JSON reply otherwise; 401 bad or
// stale signature, 405 wrong method, 413 body too large, 415 wrong
// Content-Type, 400 bad event; on an fn error 403 (connect), 200 {"error"}
// (message) or 500 (others). A connect reply with Error set rejects (403). A
// panic in fn (for example a builder given a value JSON cannot encode) is
// answered 500. Every error response is {"error": "…"}.
//
// Empty strings in secrets are ignored, so a secret read from an unset
// environment variable counts as none. A handler without secrets is valid:
// it answers the registration check, so the function can run before the
// upstream is registered (registration prints the secret), and it answers
// every POST 503 with an error saying it has no signing secret yet, which
// the gateway reports as a failure (notifications are retried). Restart it
// with the secret to start accepting webhooks.
//
// Handler panics if a secret is malformed (not base64) or fn is nil: such a
// handler could never accept a webhook, and a panic at start-up says so
// before the first event does.
func Handler(secrets []string, fn Func, opts ...HandlerOption) http.Handler {
	if fn == nil {
		panic("upstream: Handler needs a non-nil Func")
	}
	var given []string
	for _, s := range secrets {
		if strings.TrimSpace(s) != "" {
			given = append(given, s)
		}
	}
	keys, err := ParseSecrets(given...)
	if err != nil {
		panic(fmt.Sprintf("upstream: Handler: %v (want \"whsec_\" and base64, as registration printed it)", err))
	}
	cfg := handlerConfig{maxBody: DefaultMaxBodySize, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxBody <= 0 {
		cfg.maxBody = DefaultMaxBodySize
	}
	return &handler{secrets: keys, fn: fn, cfg: cfg}
}

// ErrNoSecret is the error a Handler without signing secrets answers to
// every POST (status 503).
var ErrNoSecret = errors.New("upstream: this handler has no signing secret yet, so it cannot verify webhooks: " +
	"start it with the upstream's secret (printed by `switchboard upstream add`, shown again by `switchboard upstream secret show`)")

type handler struct {
	secrets *Secrets
	fn      Func
	cfg     handlerConfig
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodOptions:
		h.serveOptions(w, r)
		return
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed; webhooks are POST", r.Method))
		return
	}
	if h.secrets.Len() == 0 {
		writeError(w, http.StatusServiceUnavailable, ErrNoSecret.Error())
		return
	}
	ev, err := eventFromRequest(r, h.secrets, h.cfg.now(), h.cfg.maxBody)
	if err != nil {
		writeError(w, requestErrorStatus(err), err.Error())
		return
	}
	reply, panicked, err := h.call(r.Context(), ev)
	if err != nil {
		switch {
		case panicked:
			writeError(w, http.StatusInternalServerError, err.Error())
		case ev.Event == EventMessage:
			writeJSON(w, http.StatusOK, &Reply{Error: err.Error()})
		case ev.Event == EventConnect:
			writeError(w, http.StatusForbidden, err.Error())
		default:
			writeError(w, http.StatusInternalServerError, err.Error())
		}
		return
	}
	switch {
	case reply == nil:
		w.WriteHeader(http.StatusNoContent)
	case ev.Event == EventConnect && reply.Error != "":
		writeError(w, http.StatusForbidden, reply.Error)
	default:
		writeJSON(w, http.StatusOK, reply)
	}
}

// call runs fn, turning a panic into an error so the gateway gets a 500
// instead of a dropped connection; panicked tells it apart from an error fn
// returned, which for a message event would go to the caller.
func (h *handler) call(ctx context.Context, ev *Event) (reply *Reply, panicked bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			reply, panicked, err = nil, true, fmt.Errorf("upstream: handler panicked: %v", p)
		}
	}()
	reply, err = h.fn(ctx, ev)
	return reply, false, err
}

// serveOptions answers the CloudEvents webhook abuse-protection check. Header
// lookups go through http.Header, which canonicalises names, so any case the
// sender used matches.
func (h *handler) serveOptions(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "POST, OPTIONS")
	origin := r.Header.Get("WebHook-Request-Origin")
	if origin == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !h.originAllowed(origin) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("origin %q is not allowed to send webhooks here", origin))
		return
	}
	w.Header().Set("WebHook-Allowed-Origin", origin)
	w.WriteHeader(http.StatusOK)
}

func (h *handler) originAllowed(origin string) bool {
	if h.cfg.origins == nil {
		return true
	}
	for _, o := range h.cfg.origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

func requestErrorStatus(err error) int {
	switch {
	case errors.Is(err, ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMalformedSecret):
		return http.StatusInternalServerError
	case errors.Is(err, ErrNoSignature), errors.Is(err, ErrBadSignature), errors.Is(err, ErrStaleTimestamp):
		return http.StatusUnauthorized
	case errors.Is(err, ErrNotJSON):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrMalformedEvent):
		return http.StatusBadRequest
	default: // reading the body failed: the sender went away mid-request
		return http.StatusBadRequest
	}
}

// EventFromRequest reads, verifies and decodes one webhook request; Handler
// is built on it, and authors who route requests themselves can call it
// directly. now is the receiver's clock; maxBody of zero or less means
// DefaultMaxBodySize. It does not check the method.
//
// The ce-* CloudEvents headers are ignored here on purpose: the signature
// covers the body only, so anyone could alter those headers in transit; the
// body repeats every identity field and is what is trusted.
func EventFromRequest(r *http.Request, secrets []string, now time.Time, maxBody int64) (*Event, error) {
	keys, err := ParseSecrets(secrets...)
	if err != nil {
		return nil, err
	}
	return eventFromRequest(r, keys, now, maxBody)
}

func eventFromRequest(r *http.Request, secrets *Secrets, now time.Time, maxBody int64) (*Event, error) {
	if maxBody <= 0 {
		maxBody = DefaultMaxBodySize
	}
	if r.ContentLength > maxBody {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBodyTooLarge, r.ContentLength, maxBody)
	}
	// Whatever can be refused without the body is, before it is read.
	id, signature := r.Header.Get(HeaderID), r.Header.Get(HeaderSignature)
	ts, err := checkSignatureHeaders(id, r.Header.Get(HeaderTimestamp), signature, now)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("upstream: reading webhook body: %w", err)
	}
	if int64(len(body)) > maxBody {
		return nil, fmt.Errorf("%w: the limit is %d bytes", ErrBodyTooLarge, maxBody)
	}
	if err := secrets.verifyMAC(id, ts, signature, body); err != nil {
		return nil, err
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return nil, fmt.Errorf("%w: got %q", ErrNotJSON, ct)
	}
	return decodeEvent(body)
}

// decodeEvent parses a verified body and checks the fields every receiver
// relies on, so Funcs never see an event without identity.
func decodeEvent(body []byte) (*Event, error) {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("%w: the body must be a JSON object", ErrMalformedEvent)
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	switch {
	case ev.Hub == "":
		return nil, fmt.Errorf("%w: \"hub\" is missing", ErrMalformedEvent)
	case ev.ConnectionID == "":
		return nil, fmt.Errorf("%w: \"connectionId\" is missing", ErrMalformedEvent)
	case ev.Event == "":
		return nil, fmt.Errorf("%w: \"event\" is missing", ErrMalformedEvent)
	}
	switch ev.Event {
	case EventConnect, EventConnected, EventDisconnected:
	case EventMessage:
		if ev.Target == "" {
			return nil, fmt.Errorf("%w: \"target\" is missing from a message event", ErrMalformedEvent)
		}
		if a := ev.Arguments; len(a) > 0 && a[0] != '[' && string(a) != "null" {
			return nil, fmt.Errorf("%w: \"arguments\" must be a JSON array", ErrMalformedEvent)
		}
	default:
		return nil, fmt.Errorf("%w: unknown event %q", ErrMalformedEvent, ev.Event)
	}
	return &ev, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a Reply whose Result or Arguments were set to invalid raw JSON
		// by hand gets here.
		status = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("upstream: encoding reply: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
