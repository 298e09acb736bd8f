package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testNow is the receiver's clock in these tests; requests are signed at it
// unless a case says otherwise.
var testNow = time.Unix(1767225600, 0)

var (
	testSecret  = NewSecret()
	otherSecret = NewSecret()
)

// webhook describes one request to send; zero fields get sensible defaults.
type webhook struct {
	method      string
	body        string
	secrets     []string // signing secrets; default {testSecret}
	signedAt    time.Time
	contentType string
	drop        string            // a header to leave out
	header      map[string]string // set verbatim, overriding the defaults
}

func (w webhook) send(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	if w.method == "" {
		w.method = http.MethodPost
	}
	if w.secrets == nil {
		w.secrets = []string{testSecret}
	}
	if w.signedAt.IsZero() {
		w.signedAt = testNow
	}
	if w.contentType == "" {
		w.contentType = "application/json"
	}
	sig, err := Sign(w.secrets, "evt_1", w.signedAt, []byte(w.body))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	req, err := http.NewRequest(w.method, url, strings.NewReader(w.body))
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{
		"Content-Type":   w.contentType,
		HeaderID:         "evt_1",
		HeaderTimestamp:  strconv.FormatInt(w.signedAt.Unix(), 10),
		HeaderSignature:  sig,
		"ce-specversion": "1.0",
	}
	for k, v := range w.header {
		h[k] = v
	}
	for k, v := range h {
		if k != w.drop {
			req.Header.Set(k, v)
		}
	}
	resp, err := ownClient(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", w.method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// ownClient is a client with a transport of its own: httptest.Server.Close
// closes the idle connections of http.DefaultTransport, which broke the
// request of another test running in parallel on a connection it had just
// reused ("CloseIdleConnections called").
func ownClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func serve(t *testing.T, fn Func, opts ...HandlerOption) string {
	t.Helper()
	opts = append([]HandlerOption{WithClock(func() time.Time { return testNow })}, opts...)
	srv := httptest.NewServer(Handler([]string{testSecret}, fn, opts...))
	t.Cleanup(srv.Close)
	return srv.URL
}

// errorBody decodes an {"error": "…"} response and fails if it is not one.
func errorBody(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error == nil || *e.Error == "" {
		t.Fatalf("body %q is not a JSON error", b)
	}
	return *e.Error
}

func TestHandlerDecodesEachEvent(t *testing.T) {
	t.Parallel()
	alice := "alice"
	one := "1"
	tests := []struct {
		name string
		body string
		want Event
	}{
		{
			name: "connect",
			body: `{"hub":"chat","connectionId":"c1","userId":null,"event":"connect","claims":{"role":"admin"},"query":{"room":["1"]},"headers":{"X-A":["b"]},"subprotocols":["json"]}`,
			want: Event{Hub: "chat", ConnectionID: "c1", Event: EventConnect, Claims: map[string]any{"role": "admin"},
				Query: map[string][]string{"room": {"1"}}, Headers: map[string][]string{"X-A": {"b"}}, Subprotocols: []string{"json"}},
		},
		{
			name: "connected",
			body: `{"hub":"chat","connectionId":"c1","userId":"alice","event":"connected","claims":{"sub":"alice"}}`,
			want: Event{Hub: "chat", ConnectionID: "c1", UserID: &alice, Event: EventConnected, Claims: map[string]any{"sub": "alice"}},
		},
		{
			name: "message",
			body: `{"hub":"chat","connectionId":"c1","userId":"alice","event":"message","invocationId":"1","target":"SendMessage","arguments":["hi",2]}`,
			want: Event{Hub: "chat", ConnectionID: "c1", UserID: &alice, Event: EventMessage, InvocationID: &one, Target: "SendMessage", Arguments: json.RawMessage(`["hi",2]`)},
		},
		{
			name: "disconnected",
			body: `{"hub":"chat","connectionId":"c1","userId":null,"event":"disconnected","reason":"client closed"}`,
			want: Event{Hub: "chat", ConnectionID: "c1", Event: EventDisconnected, Reason: "client closed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got atomic.Pointer[Event]
			url := serve(t, func(_ context.Context, ev *Event) (*Reply, error) {
				got.Store(ev)
				return nil, nil
			})
			// ce-* headers that contradict the body must not matter.
			status, _, body := webhook{body: tt.body, header: map[string]string{"ce-hub": "evil", "ce-connectionid": "x"}}.send(t, url)
			if status != http.StatusNoContent {
				t.Fatalf("status = %d (%s), want 204", status, body)
			}
			if ev := got.Load(); ev == nil || !reflect.DeepEqual(*ev, tt.want) {
				t.Errorf("fn got %+v, want %+v", ev, tt.want)
			}
		})
	}
}

func TestHandlerRefusesBadRequests(t *testing.T) {
	t.Parallel()
	good := `{"hub":"chat","connectionId":"c1","userId":null,"event":"connected"}`
	tests := []struct {
		name      string
		req       webhook
		opts      []HandlerOption
		status    int
		errSubstr string
	}{
		{name: "forged signature", req: webhook{body: good, secrets: []string{otherSecret}}, status: 401, errSubstr: "does not match"},
		{name: "stale timestamp", req: webhook{body: good, signedAt: testNow.Add(-MaxClockSkew - time.Second)}, status: 401, errSubstr: "timestamp"},
		{name: "future timestamp", req: webhook{body: good, signedAt: testNow.Add(MaxClockSkew + time.Second)}, status: 401, errSubstr: "timestamp"},
		{name: "no webhook-id", req: webhook{body: good, drop: HeaderID}, status: 401, errSubstr: "signature headers"},
		{name: "no webhook-timestamp", req: webhook{body: good, drop: HeaderTimestamp}, status: 401, errSubstr: "signature headers"},
		{name: "no webhook-signature", req: webhook{body: good, drop: HeaderSignature}, status: 401, errSubstr: "signature headers"},
		{name: "timestamp not a number", req: webhook{body: good, header: map[string]string{HeaderTimestamp: "yesterday"}}, status: 401, errSubstr: "unix seconds"},
		{name: "wrong content type", req: webhook{body: good, contentType: "text/plain"}, status: 415, errSubstr: "application/json"},
		{name: "cloudevents structured mode", req: webhook{body: good, contentType: "application/cloudevents+json"}, status: 415, errSubstr: "application/json"},
		{name: "too large", req: webhook{body: good}, opts: []HandlerOption{WithMaxBodySize(int64(len(good) - 1))}, status: 413, errSubstr: "too large"},
		{name: "bad JSON", req: webhook{body: `{"hub":`}, status: 400, errSubstr: "not a valid event"},
		{name: "not an object", req: webhook{body: `["hub"]`}, status: 400, errSubstr: "JSON object"},
		{name: "missing hub", req: webhook{body: `{"connectionId":"c1","event":"connected"}`}, status: 400, errSubstr: `"hub"`},
		{name: "missing connectionId", req: webhook{body: `{"hub":"chat","event":"connected"}`}, status: 400, errSubstr: `"connectionId"`},
		{name: "missing event", req: webhook{body: `{"hub":"chat","connectionId":"c1"}`}, status: 400, errSubstr: `"event"`},
		{name: "unknown event", req: webhook{body: `{"hub":"chat","connectionId":"c1","event":"explode"}`}, status: 400, errSubstr: `unknown event "explode"`},
		{name: "message without target", req: webhook{body: `{"hub":"chat","connectionId":"c1","event":"message"}`}, status: 400, errSubstr: `"target"`},
		{name: "message arguments not array", req: webhook{body: `{"hub":"chat","connectionId":"c1","event":"message","target":"T","arguments":{}}`}, status: 400, errSubstr: "array"},
		{name: "GET", req: webhook{method: http.MethodGet, body: good}, status: 405, errSubstr: "GET"},
		{name: "PUT", req: webhook{method: http.MethodPut, body: good}, status: 405, errSubstr: "PUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			url := serve(t, func(context.Context, *Event) (*Reply, error) {
				calls.Add(1)
				return nil, nil
			}, tt.opts...)
			status, hdr, body := tt.req.send(t, url)
			if status != tt.status {
				t.Fatalf("status = %d (%s), want %d", status, body, tt.status)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if msg := errorBody(t, body); !strings.Contains(msg, tt.errSubstr) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.errSubstr)
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("fn called %d times, want 0", n)
			}
		})
	}
}

func TestHandlerAcceptsRotatedSecretsAndCharset(t *testing.T) {
	t.Parallel()
	body := `{"hub":"chat","connectionId":"c1","event":"connected"}`
	srv := httptest.NewServer(Handler([]string{otherSecret, testSecret},
		func(context.Context, *Event) (*Reply, error) { return nil, nil },
		WithClock(func() time.Time { return testNow })))
	t.Cleanup(srv.Close)
	tests := []struct {
		name string
		req  webhook
	}{
		{name: "signed with the second key only", req: webhook{body: body}},
		{name: "signed with both keys", req: webhook{body: body, secrets: []string{NewSecret(), otherSecret}}},
		{name: "charset parameter", req: webhook{body: body, contentType: "application/json; charset=utf-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, _, b := tt.req.send(t, srv.URL); status != http.StatusNoContent {
				t.Errorf("status = %d (%s), want 204", status, b)
			}
		})
	}
}

func TestHandlerOptionsCheck(t *testing.T) {
	t.Parallel()
	noop := func(context.Context, *Event) (*Reply, error) { return nil, nil }
	tests := []struct {
		name       string
		opts       []HandlerOption
		header     map[string]string // sent verbatim, not canonicalised
		status     int
		wantOrigin string
	}{
		{name: "lower case", header: map[string]string{"webhook-request-origin": "gw.example.com"}, status: 200, wantOrigin: "gw.example.com"},
		{name: "mixed case", header: map[string]string{"wEbHoOk-ReQuEsT-OrIgIn": "gw.example.com"}, status: 200, wantOrigin: "gw.example.com"},
		{name: "allowed origin", opts: []HandlerOption{WithAllowedOrigins("GW.example.com")}, header: map[string]string{"WebHook-Request-Origin": "gw.example.com"}, status: 200, wantOrigin: "gw.example.com"},
		{name: "origin not allowed", opts: []HandlerOption{WithAllowedOrigins("other.example.com")}, header: map[string]string{"WebHook-Request-Origin": "gw.example.com"}, status: 403},
		{name: "plain OPTIONS", status: 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := serve(t, noop, tt.opts...)
			req, err := http.NewRequest(http.MethodOptions, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = []string{v}
			}
			resp, err := ownClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("webhook-allowed-origin"); got != tt.wantOrigin {
				t.Errorf("WebHook-Allowed-Origin = %q, want %q", got, tt.wantOrigin)
			}
			if got := resp.Header.Get("Allow"); got != "POST, OPTIONS" {
				t.Errorf("Allow = %q, want %q", got, "POST, OPTIONS")
			}
		})
	}
}

func TestHandlerMapsFuncOutcomes(t *testing.T) {
	t.Parallel()
	bodies := map[string]string{
		EventConnect:      `{"hub":"chat","connectionId":"c1","event":"connect"}`,
		EventConnected:    `{"hub":"chat","connectionId":"c1","event":"connected"}`,
		EventMessage:      `{"hub":"chat","connectionId":"c1","event":"message","invocationId":"1","target":"T","arguments":[]}`,
		EventDisconnected: `{"hub":"chat","connectionId":"c1","event":"disconnected","reason":"x"}`,
	}
	tests := []struct {
		name     string
		event    string
		reply    *Reply
		err      error
		panics   bool
		status   int
		wantBody string // exact JSON, or "" for none
	}{
		{name: "connect error rejects", event: EventConnect, err: errors.New("banned"), status: 403, wantBody: `{"error":"banned"}`},
		{name: "connect Reject", event: EventConnect, err: Reject("room full"), status: 403, wantBody: `{"error":"room full"}`},
		{name: "connect reply error rejects", event: EventConnect, reply: NewReply().WithError("not today"), status: 403, wantBody: `{"error":"not today"}`},
		{name: "connect accept shaped", event: EventConnect, reply: NewReply().SetUser("bob").JoinGroups("a", "b"), status: 200, wantBody: `{"userId":"bob","groups":["a","b"]}`},
		{name: "connect accept as is", event: EventConnect, status: 204},
		{name: "message error is a completion error", event: EventMessage, err: errors.New("no such room"), status: 200, wantBody: `{"error":"no such room"}`},
		{name: "message Reject", event: EventMessage, err: Reject("slow down"), status: 200, wantBody: `{"error":"slow down"}`},
		{name: "message result and actions", event: EventMessage, reply: NewReply().WithResult(42).Broadcast("t", "hi"), status: 200,
			wantBody: `{"result":42,"actions":[{"action":"broadcast","target":"t","arguments":["hi"]}]}`},
		{name: "message no reply", event: EventMessage, status: 204},
		{name: "message panic", event: EventMessage, panics: true, status: 500},
		{name: "connected error", event: EventConnected, err: errors.New("db down"), status: 500, wantBody: `{"error":"db down"}`},
		{name: "connected actions", event: EventConnected, reply: NewReply().AddToGroup("lobby"), status: 200, wantBody: `{"actions":[{"action":"addToGroup","group":"lobby"}]}`},
		{name: "disconnected error", event: EventDisconnected, err: errors.New("db down"), status: 500, wantBody: `{"error":"db down"}`},
		{name: "invalid raw result", event: EventMessage, reply: &Reply{Result: json.RawMessage("{")}, status: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := serve(t, func(context.Context, *Event) (*Reply, error) {
				if tt.panics {
					NewReply().WithResult(make(chan int))
				}
				return tt.reply, tt.err
			})
			status, _, body := webhook{body: bodies[tt.event]}.send(t, url)
			if status != tt.status {
				t.Fatalf("status = %d (%s), want %d", status, body, tt.status)
			}
			switch {
			case tt.status == 204:
				if len(body) != 0 {
					t.Errorf("204 with body %q", body)
				}
			case tt.status == 500 && tt.wantBody == "":
				errorBody(t, body)
			default:
				if !bytes.Equal(body, []byte(tt.wantBody)) {
					t.Errorf("body = %s, want %s", body, tt.wantBody)
				}
			}
		})
	}
}

func TestHandlerPanicsOnUnusableConfig(t *testing.T) {
	t.Parallel()
	noop := func(context.Context, *Event) (*Reply, error) { return nil, nil }
	tests := []struct {
		name    string
		secrets []string
		fn      Func
	}{
		{name: "malformed secret", secrets: []string{"whsec_!!!"}, fn: noop},
		{name: "nil func", secrets: []string{testSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Handler did not panic")
				}
			}()
			Handler(tt.secrets, tt.fn)
		})
	}
}

// TestHandlerWithoutSecret: a function started before its upstream was
// registered (no secret yet, or an unset environment variable) answers the
// registration check and refuses webhooks with 503 saying why, never a panic.
func TestHandlerWithoutSecret(t *testing.T) {
	t.Parallel()
	called := atomic.Bool{}
	fn := func(context.Context, *Event) (*Reply, error) { called.Store(true); return nil, nil }
	for _, tt := range []struct {
		name    string
		secrets []string
	}{
		{"nil", nil},
		{"unset environment variable", []string{""}},
		{"blank", []string{" ", ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(Handler(tt.secrets, fn, WithClock(func() time.Time { return testNow })))
			t.Cleanup(srv.Close)

			req, err := http.NewRequest(http.MethodOptions, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("WebHook-Request-Origin", "gw.example.com")
			resp, err := ownClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("WebHook-Allowed-Origin") != "gw.example.com" {
				t.Fatalf("OPTIONS = %d with WebHook-Allowed-Origin %q; want 200 granting the origin",
					resp.StatusCode, resp.Header.Get("WebHook-Allowed-Origin"))
			}

			status, _, body := webhook{body: `{"hub":"chat","connectionId":"c1","event":"connect"}`}.send(t, srv.URL)
			if status != http.StatusServiceUnavailable {
				t.Fatalf("POST = %d %s; want 503", status, body)
			}
			if msg := errorBody(t, body); !strings.Contains(msg, "no signing secret yet") || !strings.Contains(msg, "switchboard upstream") {
				t.Errorf("error %q does not say the secret is missing and where to get it", msg)
			}
			if called.Load() {
				t.Error("the Func ran for an unverified webhook")
			}
		})
	}
}

// readCounter is a request body that counts the bytes read from it.
type readCounter struct {
	r    io.Reader
	read atomic.Int64
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestUnverifiableWebhookBodyIsNotRead: whatever can be refused without
// the body (signature headers missing, a stale timestamp, a signature
// header no sender would write) is refused before a byte of the body is
// read, since the sender is not yet known.
func TestUnverifiableWebhookBodyIsNotRead(t *testing.T) {
	secrets, err := ParseSecrets(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"connected"}`)
	sign := func(h http.Header, at time.Time) {
		h.Set(HeaderID, "msg_1")
		h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
		h.Set(HeaderSignature, secrets.Sign("msg_1", at, body))
	}
	tests := []struct {
		name  string
		setup func(h http.Header)
		want  error
	}{
		{"no signature headers", func(http.Header) {}, ErrNoSignature},
		{"stale timestamp", func(h http.Header) { sign(h, testNow.Add(-2*MaxClockSkew)) }, ErrStaleTimestamp},
		{"timestamp not a number", func(h http.Header) { sign(h, testNow); h.Set(HeaderTimestamp, strings.Repeat("x", 5000)) }, ErrNoSignature},
		{"huge signature header", func(h http.Header) {
			sign(h, testNow)
			h.Set(HeaderSignature, strings.Repeat("v1,"+strings.Repeat("A", 44)+" ", 1000))
		}, ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := &readCounter{r: bytes.NewReader(body)}
			req := httptest.NewRequest(http.MethodPost, "/", rc)
			req.Header.Set("Content-Type", "application/json")
			tc.setup(req.Header)
			_, err := eventFromRequest(req, secrets, testNow, 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if n := rc.read.Load(); n != 0 {
				t.Errorf("%d bytes of the body were read before the request was refused", n)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error of %d bytes carries the sender's header: %.80s…", len(err.Error()), err)
			}
		})
	}
}
