package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// waitFor bounds every wait on another goroutine or process.
const waitFor = 10 * time.Second

// requestWait bounds one HTTP request of a test: longer than the node's own
// 10 s bound on admin and REST requests, so the node's answer arrives.
const requestWait = 15 * time.Second

// gw is a running node under test.
type gw struct {
	t    *testing.T
	node *node.Node
	url  string
	db   string
	cs   negotiate.ConnectionString
	// adminKey is what the node printed at its first start; a node that
	// did not create the keys (a restart, a second node of a cluster) is
	// given it by the test, since the store keeps only its hash.
	adminKey string
}

type nodeOption func(*node.Config)

// startNode starts a real node on a free loopback port with its store in a
// temporary directory, closed when the test ends.
func startNode(t *testing.T, opts ...nodeOption) *gw {
	t.Helper()
	cfg := node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), "switchboard.db"), Logger: quietLogger(t)}
	for _, o := range opts {
		o(&cfg)
	}
	return startNodeWith(t, cfg)
}

func startNodeWith(t *testing.T, cfg node.Config) *gw {
	t.Helper()
	n, err := node.Start(cfg)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	g := &gw{t: t, node: n, url: "http://" + n.Addr().String(), db: cfg.DBPath, adminKey: n.AdminKey()}
	cs, err := n.ConnectionString()
	if err != nil {
		t.Fatal(err)
	}
	cs.Endpoint = g.url
	g.cs = cs
	t.Cleanup(func() { g.close() })
	return g
}

func (g *gw) close() {
	if g.node != nil {
		if err := g.node.Close(); err != nil {
			g.t.Logf("closing node: %v", err)
		}
		g.node = nil
	}
}

func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// do sends an HTTP request and returns the status and body.
func do(t *testing.T, method, url, bearer string, body any) (int, []byte) {
	t.Helper()
	status, data, err := tryDo(method, url, bearer, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return status, data
}

// tryDo is do for a caller that retries: a request that gets no answer
// within requestWait is an error, not a failed test.
func tryDo(method, url, bearer string, body any) (int, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, nil, err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestWait)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// admin calls the admin API and fails the test on an unexpected status.
func (g *gw) admin(method, path string, body any, want int) []byte {
	g.t.Helper()
	status, data := do(g.t, method, g.url+path, g.adminKey, body)
	if status != want {
		g.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, data)
	}
	return data
}

func (g *gw) createHub(name string, anonymous bool) {
	g.t.Helper()
	g.admin(http.MethodPost, "/admin/hubs", map[string]any{"name": name, "allowAnonymous": anonymous}, http.StatusCreated)
}

// addUpstream registers url for hub and returns its signing secret.
func (g *gw) addUpstream(hub, name, url string, events ...string) string {
	g.t.Helper()
	var out struct {
		Secrets []string `json:"secrets"`
	}
	data := g.admin(http.MethodPost, "/admin/hubs/"+hub+"/upstreams",
		map[string]any{"name": name, "urlTemplate": url, "events": events, "timeout": "2s", "skipValidation": true}, http.StatusCreated)
	if err := json.Unmarshal(data, &out); err != nil || len(out.Secrets) != 1 {
		g.t.Fatalf("upstream reply %s: %v", data, err)
	}
	return out.Secrets[0]
}

// token issues a client token for hub and user, as an app's negotiate would.
func (g *gw) token(hub, user string) string {
	g.t.Helper()
	resp, err := negotiate.NewResponse(g.cs, hub, user)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp.AccessToken
}

// dial connects a Go client to hub as user ("" for no token).
func (g *gw) dial(hub, user string, handlers map[string]func([]json.RawMessage)) *client.Conn {
	g.t.Helper()
	c, err := g.tryDial(hub, user, handlers)
	if err != nil {
		g.t.Fatalf("dial %s as %q: %v", hub, user, err)
	}
	g.t.Cleanup(func() { c.Close() })
	return c
}

func (g *gw) tryDial(hub, user string, handlers map[string]func([]json.RawMessage)) (*client.Conn, error) {
	opts := &client.Options{Handlers: handlers}
	if user != "" {
		tok := g.token(hub, user)
		opts.AccessToken = func(context.Context) (string, error) { return tok, nil }
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	return client.Dial(ctx, g.url+"/client/?hub="+hub, opts)
}

// received is an event the recording upstream got, after it checked the
// signature by its own computation.
type received struct {
	Header http.Header
	Body   []byte
	Event  upstream.Event
}

// recorder is a real upstream HTTP server that checks every signature
// independently of the upstream package, records events and answers with
// reply.
type recorder struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu     sync.Mutex
	events []received
	reply  func(ev *upstream.Event) (status int, body any)
	notify chan struct{}
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{t: t, notify: make(chan struct{}, 1024)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) URL() string { return r.srv.URL }

func (r *recorder) setReply(fn func(ev *upstream.Event) (int, any)) {
	r.mu.Lock()
	r.reply = fn
	r.mu.Unlock()
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	secret, reply := r.secret, r.reply
	r.mu.Unlock()
	if !validSignature(secret, req.Header, body) {
		r.t.Errorf("upstream got a request with a bad signature: %v", req.Header)
		http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
		return
	}
	var ev upstream.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		r.t.Errorf("upstream got a body that is not an event: %s", body)
	}
	r.mu.Lock()
	r.events = append(r.events, received{Header: req.Header.Clone(), Body: body, Event: ev})
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	status, out := http.StatusNoContent, any(nil)
	if reply != nil {
		status, out = reply(&ev)
	}
	switch o := out.(type) {
	case nil:
		w.WriteHeader(status)
	case string:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, o)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(o)
	}
}

// validSignature recomputes the Standard Webhooks signature from the raw
// secret, so a bug shared by the signer and upstream.Verify cannot hide.
func validSignature(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", h.Get("webhook-id"), h.Get("webhook-timestamp"), body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(h.Get("webhook-signature")) {
		if s == want {
			return true
		}
	}
	return false
}

// waitEvent waits for the first recorded event matching pred.
func (r *recorder) waitEvent(pred func(*received) bool) *received {
	r.t.Helper()
	deadline := time.After(waitFor)
	for {
		r.mu.Lock()
		for i := range r.events {
			if pred(&r.events[i]) {
				e := r.events[i]
				r.mu.Unlock()
				return &e
			}
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("no matching upstream event within %s; got %d events", waitFor, len(r.all()))
			return nil
		}
	}
}

func (r *recorder) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.events...)
}

func isEvent(name, connID string) func(*received) bool {
	return func(e *received) bool {
		return e.Event.Event == name && (connID == "" || e.Event.ConnectionID == connID)
	}
}

// setup starts a node with hub "chat" (tokens required) and a recording
// upstream receiving every event.
func setup(t *testing.T, opts ...nodeOption) (*gw, *recorder) {
	t.Helper()
	g := startNode(t, opts...)
	g.createHub("chat", false)
	rec := newRecorder(t)
	secret := g.addUpstream("chat", "rec", rec.URL()+"/{hub}/{category}/{event}")
	rec.mu.Lock()
	rec.secret = secret
	rec.mu.Unlock()
	return g, rec
}

// inbox collects server invocations of one target on a client.
type inbox struct {
	ch chan []json.RawMessage
}

func newInbox() *inbox { return &inbox{ch: make(chan []json.RawMessage, 256)} }

func (b *inbox) handler() func([]json.RawMessage) {
	return func(args []json.RawMessage) { b.ch <- args }
}

// next waits for the next invocation.
func (b *inbox) next(t *testing.T) []json.RawMessage {
	t.Helper()
	select {
	case a := <-b.ch:
		return a
	case <-time.After(waitFor):
		t.Fatalf("no message within %s", waitFor)
		return nil
	}
}

func str(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s is not a string: %v", raw, err)
	}
	return s
}

// newRawServer serves h on loopback for upstreams that need no signature
// check.
func newRawServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
