package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/examples/functions/chat"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// nodeTestTimeout bounds one `node --test` run.
const nodeTestTimeout = 3 * time.Minute

// TestInteropSignalRClient runs test/interop/*.test.mjs: the official
// @microsoft/signalr client in Node against a real node and the example chat
// app, plus the npm standardwebhooks package against a captured webhook.
func TestInteropSignalRClient(t *testing.T) {
	root := repoRoot(t)
	requireNodeModules(t, filepath.Join(root, "test", "interop"), "npm ci --prefix test/interop")

	g := startNode(t)
	g.createHub(chat.Hub, false)
	secret := upstream.NewSecret()
	app := httptest.NewServer(chat.New(chat.Config{Gateway: g.cs, WebhookSecrets: []string{secret},
		WebDir: filepath.Join(root, "examples", "functions", "chat", "web")}))
	t.Cleanup(app.Close)
	g.admin(http.MethodPost, "/admin/hubs/"+chat.Hub+"/upstreams", map[string]any{
		"name": "chat-fn", "urlTemplate": app.URL + "/api/webhook", "timeout": "5s",
		"events": []string{"connect", "connected", "disconnected", "message:*"}, "secrets": []string{secret},
	}, http.StatusCreated)

	captured := captureWebhook(t, g)
	ctl := &control{t: t, g: g, captured: captured}
	ctlSrv := httptest.NewServer(ctl.routes())
	t.Cleanup(ctlSrv.Close) // runs before the node's cleanup, so no restart races it

	runNode(t, root, []string{"APP_URL=" + app.URL, "GATEWAY_URL=" + g.url, "CONTROL_URL=" + ctlSrv.URL},
		"--test", "--test-reporter=spec", "--test-concurrency=1", "test/interop/")
	if ctl.restarts() == 0 {
		t.Error("the Node tests never restarted the gateway: the reconnect test did not run")
	}
}

// capturedWebhook is one raw webhook request, for verification in Node.
type capturedWebhook struct {
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// captureWebhook registers hub "capture" whose upstream stores the raw
// `connected` request, connects a Go client to trigger it and returns it.
func captureWebhook(t *testing.T, g *gw) capturedWebhook {
	t.Helper()
	got := make(chan capturedWebhook, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h := make(map[string]string, len(r.Header))
		for name := range r.Header {
			h[strings.ToLower(name)] = r.Header.Get(name)
		}
		select {
		case got <- capturedWebhook{Headers: h, Body: string(body)}:
		default: // keep the first
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	g.createHub("capture", false)
	secret := g.addUpstream("capture", "capture", srv.URL+"/{hub}/{event}", "connected")
	c := g.dial("capture", "dora", nil)
	defer c.Close()
	select {
	case cw := <-got:
		cw.Secret = secret
		if !validSignature(secret, httpHeader(cw.Headers), []byte(cw.Body)) {
			t.Fatalf("captured webhook fails our own signature check: %+v", cw)
		}
		return cw
	case <-time.After(waitFor):
		t.Fatalf("no connected webhook within %s", waitFor)
		return capturedWebhook{}
	}
}

func httpHeader(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

// control is the HTTP server the Node tests use to act on the Go side.
type control struct {
	t        *testing.T
	captured capturedWebhook

	mu sync.Mutex // guards g.node during a restart and the count below
	g  *gw
	n  int
}

func (c *control) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		if err := c.restart(); err != nil {
			c.t.Errorf("restart: %v", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"restarted":true}`)
	})
	mux.HandleFunc("GET /captured", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c.captured)
	})
	return mux
}

// restart closes the node (clients get a Close with allowReconnect) and
// starts a new one on the same address and store. The gw keeps pointing at
// the live node, so its cleanup closes the new one.
func (c *control) restart() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	addr := c.g.node.Addr().String()
	if err := c.g.node.Close(); err != nil {
		c.t.Logf("closing node for restart: %v", err)
	}
	c.g.node = nil
	n, err := node.Start(node.Config{Listen: addr, DBPath: c.g.db, Logger: quietLogger(c.t)})
	if err != nil {
		return fmt.Errorf("start node again on %s: %w", addr, err)
	}
	c.g.node = n
	c.n++
	return nil
}

func (c *control) restarts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestInteropNodeChatExample runs examples/functions/node-chat/server.mjs as
// the hub's upstream and proves its hand-built token, its standardwebhooks
// verification and its replies work with the gateway, using Go clients.
func TestInteropNodeChatExample(t *testing.T) {
	root := repoRoot(t)
	dir := filepath.Join(root, "examples", "functions", "node-chat")
	requireNodeModules(t, dir, "npm ci --prefix examples/functions/node-chat")

	g := startNode(t)
	g.createHub("chat", false)
	secret := upstream.NewSecret()
	appURL := startNodeChat(t, dir, []string{
		"SWITCHBOARD_CONNECTION_STRING=" + g.cs.String(), "WEBHOOK_SECRET=" + secret,
	})
	g.admin(http.MethodPost, "/admin/hubs/chat/upstreams", map[string]any{
		"name": "node-chat", "urlTemplate": appURL + "/api/webhook", "timeout": "5s",
		"events": []string{"connect", "connected", "disconnected", "message:*"}, "secrets": []string{secret},
	}, http.StatusCreated)

	// The app verifies signatures itself: a forged webhook is refused.
	forged := map[string]any{"hub": "chat", "connectionId": "x", "userId": "alice", "event": "message",
		"invocationId": "1", "target": "sendMessage", "arguments": []string{"forged"}}
	if status, body := doSigned(t, appURL+"/api/webhook", forged); status != http.StatusUnauthorized || !bytes.Contains(body, []byte("No matching signature")) {
		t.Errorf("forged webhook: status %d (%s), want 401 for its signature", status, body)
	}

	aliceIn, bobIn := newInbox(), newInbox()
	alice := dialApp(t, appURL, "alice", map[string]func([]json.RawMessage){"newMessage": aliceIn.handler()})
	bob := dialApp(t, appURL, "bob", map[string]func([]json.RawMessage){"newMessage": bobIn.handler()})

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := alice.Invoke(ctx, "sendMessage", "hello from alice")
	if err != nil {
		t.Fatalf("sendMessage: %v", err)
	}
	if got := str(t, res); got != "sent" {
		t.Errorf("sendMessage result = %q, want %q", got, "sent")
	}
	for name, in := range map[string]*inbox{"alice": aliceIn, "bob": bobIn} {
		args := in.next(t)
		if len(args) != 2 || str(t, args[0]) != "alice" || str(t, args[1]) != "hello from alice" {
			t.Errorf("%s got newMessage %s, want [alice, hello from alice]", name, args)
		}
	}

	tests := []struct {
		name    string
		target  string
		args    []any
		want    string // JSON of the result
		wantErr string // substring of the completion error
	}{
		{name: "whoami", target: "whoami", want: fmt.Sprintf(`{"connectionId":%q,"userId":"bob"}`, bob.ConnectionID())},
		{name: "echo", target: "echo", args: []any{"x", 1.5, map[string]any{"k": []any{true}}}, want: `["x",1.5,{"k":[true]}]`},
		{name: "join room", target: "joinRoom", args: []any{"r1"}, want: `"r1"`},
		{name: "missing argument", target: "sendToRoom", args: []any{"r1"}, wantErr: "sendToRoom: argument 2 must be a non-empty string"},
		{name: "unknown method", target: "explode", wantErr: `unknown method "explode"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			res, err := bob.Invoke(ctx, tc.target, tc.args...)
			if tc.wantErr != "" {
				var ie *client.InvocationError
				if !errors.As(err, &ie) || !strings.Contains(ie.Message, tc.wantErr) {
					t.Fatalf("got result %s, error %v; want an invocation error containing %q", res, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("invoke %s: %v", tc.target, err)
			}
			if !jsonEqual(t, res, tc.want) {
				t.Errorf("result = %s, want %s", res, tc.want)
			}
		})
	}

	// The app rejects user "blocked" at connect; Dial reports its reason.
	ctx2, cancel2 := context.WithTimeout(context.Background(), waitFor)
	defer cancel2()
	if c, err := client.Dial(ctx2, appURL+"/api?user=blocked", nil); err == nil {
		c.Close()
		t.Error("user blocked connected; want the connect rejected")
	} else if !strings.Contains(err.Error(), `user "blocked" may not chat`) {
		t.Errorf("dial as blocked: %v; want the app's reason", err)
	}
}

// doSigned posts body as a webhook signed with a secret the app does not hold.
func doSigned(t *testing.T, url string, body any) (int, []byte) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	id, now := "evt_forged", time.Now()
	sig, err := upstream.Sign([]string{upstream.NewSecret()}, id, now, data)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
	req.Header.Set("webhook-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// dialApp connects a Go client through the app's redirect negotiate.
func dialApp(t *testing.T, appURL, user string, handlers map[string]func([]json.RawMessage)) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := client.Dial(ctx, appURL+"/api?user="+user, &client.Options{Handlers: handlers})
	if err != nil {
		t.Fatalf("dial through %s as %s: %v", appURL, user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("result %s is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("want %s is not JSON: %v", want, err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// startNodeChat runs server.mjs on a free port and waits (bounded) until it
// answers the registration check.
func startNodeChat(t *testing.T, dir string, env []string) string {
	t.Helper()
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", "server.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append(env, "PORT="+port, "HOST=127.0.0.1")...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	out := logWriter(t, "node-chat")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node-chat: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		out.Close()
	})

	url := "http://127.0.0.1:" + port
	deadline := time.Now().Add(waitFor)
	for {
		req, _ := http.NewRequest(http.MethodOptions, url+"/api/webhook", nil)
		req.Header.Set("WebHook-Request-Origin", "switchboard.test")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("WebHook-Allowed-Origin") != "switchboard.test" {
				t.Fatalf("registration check: status %d, WebHook-Allowed-Origin %q; want 200 and the origin",
					resp.StatusCode, resp.Header.Get("WebHook-Allowed-Origin"))
			}
			return url
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("node-chat exited before listening: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("node-chat did not listen on %s within %s: %v", url, waitFor, err)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(testutil.FreePort(t))
}

// runNode runs node with args in root and streams its output into the test
// log; the test fails if node exits non-zero.
func runNode(t *testing.T, root string, env []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeTestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	out := logWriter(t, "node")
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	out.Close()
	if ctx.Err() != nil {
		t.Fatalf("node %s did not finish within %s", strings.Join(args, " "), nodeTestTimeout)
	}
	if err != nil {
		t.Fatalf("node %s: %v (its output is above)", strings.Join(args, " "), err)
	}
}

// lineLogger sends each line written to it to t.Log; Close flushes and
// waits, so nothing logs after the test ends.
type lineLogger struct {
	pw   *io.PipeWriter
	done chan struct{}
}

func logWriter(t *testing.T, prefix string) *lineLogger {
	pr, pw := io.Pipe()
	l := &lineLogger{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			t.Logf("%s: %s", prefix, sc.Text())
		}
		io.Copy(io.Discard, pr) // a line over the limit must not block the writer
	}()
	return l
}

func (l *lineLogger) Write(p []byte) (int, error) { return l.pw.Write(p) }

func (l *lineLogger) Close() error {
	err := l.pw.Close()
	<-l.done
	return err
}

// repoRoot is the module root, found from this file's path.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the source file to locate the repository root")
	}
	root := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}

func requireNodeModules(t *testing.T, dir, install string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not on PATH: install Node 20 or newer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		t.Fatalf("%s has no node_modules: run `%s` first (make test does)", dir, install)
	}
}

// TestInteropSlowUpstream runs test/interop/slow/slow-upstream.mjs: the
// official client invokes a function that takes longer than both the
// gateway's client timeout and the client's own server timeout. The node
// and the client are set to timeouts of seconds so the run stays short.
// The client keeps pinging and stays connected, gets its completion, and a
// second invocation queued behind the first reaches the function only
// after it, then completes too.
func TestInteropSlowUpstream(t *testing.T) {
	root := repoRoot(t)
	requireNodeModules(t, filepath.Join(root, "test", "interop"), "npm ci --prefix test/interop")
	const clientTimeout = 3 * time.Second
	g := startNode(t, func(c *node.Config) { c.PingInterval, c.ClientTimeout = 500*time.Millisecond, clientTimeout })
	g.createHub("slow", true)

	fn := &slowFunction{release: make(chan struct{})}
	secret := upstream.NewSecret()
	app := httptest.NewServer(upstream.Handler([]string{secret}, fn.handle))
	t.Cleanup(app.Close)
	t.Cleanup(fn.open) // before the app's Close, which waits for held calls
	// The upstream's timeout is far longer than the client timeout.
	g.admin(http.MethodPost, "/admin/hubs/slow/upstreams", map[string]any{
		"name": "slow-fn", "urlTemplate": app.URL + "/api/{event}", "timeout": "60s",
		"events": []string{"message:*"}, "secrets": []string{secret},
	}, http.StatusCreated)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /arrived", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(fn.arrivals())
	})
	mux.HandleFunc("POST /release", func(w http.ResponseWriter, r *http.Request) {
		fn.open()
		w.WriteHeader(http.StatusNoContent)
	})
	ctl := httptest.NewServer(mux)
	t.Cleanup(ctl.Close)

	// The function holds the call for twice the client timeout: time that
	// must pass for the old behaviour (no reading while an invocation
	// waits) to show; the client pings every 500 ms meanwhile.
	runNode(t, root, []string{"APP_URL=" + g.url, "GATEWAY_URL=" + g.url, "CONTROL_URL=" + ctl.URL,
		fmt.Sprint("HOLD_MS=", (2 * clientTimeout).Milliseconds()), fmt.Sprint("TIMEOUT_MS=", clientTimeout.Milliseconds())},
		"--test", "--test-reporter=spec", filepath.Join("test", "interop", "slow", "slow-upstream.mjs"))
}

// slowFunction answers target "slow" with "done " and its argument, once
// released (or when the call is cancelled), and records the order in which
// calls arrived.
type slowFunction struct {
	once    sync.Once
	release chan struct{}

	mu      sync.Mutex // guards arrived
	arrived []string
}

func (f *slowFunction) open() { f.once.Do(func() { close(f.release) }) }

func (f *slowFunction) arrivals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.arrived...)
}

func (f *slowFunction) handle(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
	var args []string
	if err := json.Unmarshal(ev.Arguments, &args); err != nil || len(args) != 1 {
		return nil, upstream.Reject("slow takes one string")
	}
	f.mu.Lock()
	f.arrived = append(f.arrived, args[0])
	f.mu.Unlock()
	select {
	case <-f.release:
		return upstream.NewReply().WithResult("done " + args[0]), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
