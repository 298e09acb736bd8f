package e2e

import (
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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/examples/functions/chat"
	"github.com/switchboard-gw/switchboard/internal/natsembed"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/rest"
	"github.com/switchboard-gw/switchboard/upstream"
)

// The cluster tests run real `switchboard serve` processes joined through a
// NATS server embedded in the test process, so a test can stop and restart
// NATS and kill a node with a real signal.

var (
	binOnce sync.Once
	binDir  string // removed by TestMain
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// switchboardBinary builds cmd/switchboard once per test binary run into a
// temporary directory that TestMain removes.
func switchboardBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchboard-e2e-")
		if err != nil {
			binErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "switchboard")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/switchboard")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/switchboard: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// natsServer is the cluster's NATS, embedded in the test so it can be
// stopped and started again on the same port and store.
type natsServer struct {
	t    *testing.T
	port int
	dir  string

	mu  sync.Mutex // guards srv across restarts
	srv *natsembed.Server
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	port, err := strconv.Atoi(freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	n := &natsServer{t: t, port: port, dir: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsServer) start() {
	n.t.Helper()
	srv, err := natsembed.Start(natsembed.Options{Name: "test-nats", Port: n.port, StoreDir: n.dir})
	if err != nil {
		n.t.Fatalf("start NATS on port %d: %v", n.port, err)
	}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
}

func (n *natsServer) stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
	}
}

// proc is one `switchboard serve` process.
type proc struct {
	t   *testing.T
	id  string // --node-id, the prefix of its connection ids
	url string // http://127.0.0.1:port

	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, set before exited closes
}

// syncBuffer keeps a process's output for the test to search.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProc runs the binary with args; its output goes to the test log and
// to a buffer. Cleanup kills it if it still runs.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, id: name, out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(switchboardBinary(t), args...)
	log := logWriter(t, name)
	w := io.MultiWriter(p.out, log)
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.exited
		log.Close()
	})
	return p
}

func (p *proc) signal(sig os.Signal) {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits (bounded) for the process to exit and returns Wait's error.
func (p *proc) wait(d time.Duration) error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		p.t.Fatalf("%s did not exit within %s", p.id, d)
		return nil
	}
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// readyz returns the node's /readyz status ("ready", "degraded"), "503"
// and the like for another HTTP status, or "" if it does not answer.
func (p *proc) readyz() string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return strconv.Itoa(resp.StatusCode)
	}
	var out struct {
		Status string `json:"status"`
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil {
		return ""
	}
	return out.Status
}

// waitStatus polls /readyz until it says want.
func (p *proc) waitStatus(want string, d time.Duration) {
	p.t.Helper()
	testutil.Eventually(p.t, d, fmt.Sprintf("%s /readyz says %q", p.id, want), func() bool {
		if !p.running() {
			p.t.Fatalf("%s exited: %v", p.id, p.err)
		}
		return p.readyz() == want
	})
}

// testCluster is three (or more) nodes on one NATS.
type testCluster struct {
	t        *testing.T
	nats     *natsServer
	nodes    []*proc
	adminKey string
	cs       negotiate.ConnectionString
}

var (
	adminKeyLine = regexp.MustCompile(`Admin key:\s+(\S+)`)
	connStrLine  = regexp.MustCompile(`Connection string:\s+(\S+)`)
)

// startCluster starts n nodes n1…nN joined through a fresh NATS and waits
// until all are ready. n1 starts first: it creates the shared keys, which
// it prints once.
func startCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, nats: startNATS(t)}
	for i := 1; i <= n; i++ {
		c.nodes = append(c.nodes, c.startNode(fmt.Sprintf("n%d", i)))
		if i == 1 {
			first := c.nodes[0]
			first.waitStatus("ready", 30*time.Second)
			testutil.Eventually(t, waitFor, "n1 prints its keys", func() bool { return adminKeyLine.MatchString(first.out.String()) })
			out := first.out.String()
			c.adminKey = adminKeyLine.FindStringSubmatch(out)[1]
			cs, err := negotiate.ParseConnectionString(connStrLine.FindStringSubmatch(out)[1])
			if err != nil {
				t.Fatalf("n1's connection string: %v", err)
			}
			c.cs = cs
		}
	}
	for _, p := range c.nodes[1:] {
		p.waitStatus("ready", 30*time.Second)
	}
	return c
}

// startNode starts one node of the cluster with its own store.
func (c *testCluster) startNode(id string) *proc {
	c.t.Helper()
	port := freePort(c.t)
	url := "http://127.0.0.1:" + port
	p := startProc(c.t, id, "serve", "--listen", "127.0.0.1:"+port, "--public-url", url,
		"--db", filepath.Join(c.t.TempDir(), id+".db"), "--node-id", id, "--nats", c.nats.url(), "--log-level", "warn")
	p.url = url
	return p
}

func (c *testCluster) node(id string) *proc {
	for _, p := range c.nodes {
		if p.id == id {
			return p
		}
	}
	c.t.Fatalf("no node %q", id)
	return nil
}

// connString is the cluster's connection string pointing at node p.
func (c *testCluster) connString(p *proc) negotiate.ConnectionString {
	cs := c.cs
	cs.Endpoint = p.url
	return cs
}

// admin calls p's admin API and fails the test on another status.
func (c *testCluster) admin(p *proc, method, path string, body any, want int) []byte {
	c.t.Helper()
	status, data := do(c.t, method, p.url+path, c.adminKey, body)
	if status != want {
		c.t.Fatalf("%s %s on %s: status %d, want %d: %s", method, path, p.id, status, want, data)
	}
	return data
}

// addUpstream registers url for hub through p's admin API and returns its
// signing secret.
func (c *testCluster) addUpstream(p *proc, hub, name, url string, events ...string) string {
	c.t.Helper()
	var out struct {
		Secrets []string `json:"secrets"`
	}
	data := c.admin(p, http.MethodPost, "/admin/hubs/"+hub+"/upstreams",
		map[string]any{"name": name, "urlTemplate": url, "events": events, "timeout": "5s", "skipValidation": true}, http.StatusCreated)
	if err := json.Unmarshal(data, &out); err != nil || len(out.Secrets) != 1 {
		c.t.Fatalf("upstream reply %s: %v", data, err)
	}
	return out.Secrets[0]
}

// record registers a recording upstream for events of hub through p.
func (c *testCluster) record(p *proc, hub string, events ...string) *recorder {
	c.t.Helper()
	rec := newRecorder(c.t)
	secret := c.addUpstream(p, hub, "rec", rec.URL()+"/{hub}/{event}", events...)
	rec.mu.Lock()
	rec.secret = secret
	rec.mu.Unlock()
	return rec
}

// rest calls p's server REST API with a token signed for that node and
// returns the status and body.
func (c *testCluster) rest(p *proc, method, path string, body any) (int, []byte) {
	c.t.Helper()
	key := c.cs.Key()
	aud := p.url + path
	if i := strings.IndexByte(aud, '?'); i >= 0 {
		aud = aud[:i]
	}
	tok, err := negotiate.IssueToken(key, negotiate.TokenOptions{Audience: aud, Lifetime: time.Hour})
	if err != nil {
		c.t.Fatal(err)
	}
	return do(c.t, method, p.url+path, tok, body)
}

// dial connects a Go client to hub on node p as user.
func (c *testCluster) dial(p *proc, hub, user string, handlers map[string]func([]json.RawMessage)) (*client.Conn, error) {
	resp, err := negotiate.NewResponse(c.connString(p), hub, user)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	conn, err := client.Dial(ctx, resp.URL, &client.Options{Handlers: handlers,
		AccessToken: func(context.Context) (string, error) { return resp.AccessToken, nil }})
	if err != nil {
		return nil, err
	}
	c.t.Cleanup(func() { conn.Close() })
	return conn, nil
}

func (c *testCluster) mustDial(p *proc, hub, user string, handlers map[string]func([]json.RawMessage)) *client.Conn {
	c.t.Helper()
	conn, err := c.dial(p, hub, user, handlers)
	if err != nil {
		c.t.Fatalf("dial %s on %s as %s: %v", hub, p.id, user, err)
	}
	if !strings.HasPrefix(conn.ConnectionID(), p.id+".") {
		c.t.Fatalf("connection %s dialled on %s does not carry its node", conn.ConnectionID(), p.id)
	}
	return conn
}

// chatApp starts the example chat app as hub chat's upstream for connect
// and messages, negotiating through node 1's REST API so clients are
// spread over the live nodes.
func (c *testCluster) chatApp() string {
	c.t.Helper()
	c.admin(c.nodes[0], http.MethodPost, "/admin/hubs", map[string]any{"name": chat.Hub}, http.StatusCreated)
	rc, err := rest.New(c.connString(c.nodes[0]).String())
	if err != nil {
		c.t.Fatal(err)
	}
	secret := upstream.NewSecret()
	app := httptest.NewServer(chat.New(chat.Config{Gateway: c.connString(c.nodes[0]), Cluster: rc, WebhookSecrets: []string{secret},
		WebDir: filepath.Join(repoRoot(c.t), "examples", "functions", "chat", "web")}))
	c.t.Cleanup(app.Close)
	c.admin(c.nodes[0], http.MethodPost, "/admin/hubs/"+chat.Hub+"/upstreams", map[string]any{
		"name": "chat-fn", "urlTemplate": app.URL + "/api/webhook", "timeout": "5s",
		"events": []string{"connect", "message:*"}, "secrets": []string{secret},
	}, http.StatusCreated)
	return app.URL
}

// clusterControl is what the Node scenarios call to act on the Go side:
// negotiate straight to one node, call a node's REST API, kill or stop a
// node.
type clusterControl struct {
	c *testCluster

	mu   sync.Mutex // guards lost
	lost []string   // connection ids the scenario had on the node it stopped
}

func (ctl *clusterControl) routes() http.Handler {
	c := ctl.c
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		c.t.Errorf("control: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
	// The stock client's redirect negotiate: /direct/n2?user=bob sends bob
	// to node n2.
	mux.HandleFunc("POST /direct/{node}/negotiate", func(w http.ResponseWriter, r *http.Request) {
		p := ctl.node(r.PathValue("node"))
		if p == nil {
			http.Error(w, "no such node", http.StatusNotFound)
			return
		}
		resp, err := negotiate.NewResponse(c.connString(p), chat.Hub, r.URL.Query().Get("user"))
		if err != nil {
			fail(w, err)
			return
		}
		writeJSONResp(w, resp)
	})
	mux.HandleFunc("POST /rest/{node}", func(w http.ResponseWriter, r *http.Request) {
		p := ctl.node(r.PathValue("node"))
		var in struct {
			Method string          `json:"method"`
			Path   string          `json:"path"`
			Body   json.RawMessage `json:"body"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || p == nil {
			http.Error(w, "want {method, path, body} and a node", http.StatusBadRequest)
			return
		}
		var body any
		if len(in.Body) > 0 {
			body = []byte(in.Body)
		}
		status, data := c.rest(p, in.Method, in.Path, body)
		writeJSONResp(w, map[string]any{"status": status, "body": string(data)})
	})
	// /kill/n2 sends SIGKILL, /stop/n3 SIGTERM; both wait for the exit and
	// record the connection ids the scenario lists as lost.
	for _, action := range []string{"kill", "stop"} {
		mux.HandleFunc("POST /"+action+"/{node}", func(w http.ResponseWriter, r *http.Request) {
			p := ctl.node(r.PathValue("node"))
			var in struct {
				Lost []string `json:"lost"`
			}
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || p == nil {
				http.Error(w, "want {lost} and a node", http.StatusBadRequest)
				return
			}
			ctl.mu.Lock()
			ctl.lost = append(ctl.lost, in.Lost...)
			ctl.mu.Unlock()
			sig := syscall.SIGKILL
			if action == "stop" {
				sig = syscall.SIGTERM
			}
			p.signal(sig)
			select {
			case <-p.exited:
			case <-time.After(20 * time.Second):
				fail(w, fmt.Errorf("%s did not exit within 20s of %s", p.id, sig))
				return
			}
			var code int
			var ee *exec.ExitError
			if errors.As(p.err, &ee) {
				code = ee.ExitCode()
			}
			writeJSONResp(w, map[string]any{"exitCode": code, "error": fmt.Sprint(p.err)})
		})
	}
	return mux
}

func (ctl *clusterControl) node(id string) *proc {
	for _, p := range ctl.c.nodes {
		if p.id == id {
			return p
		}
	}
	return nil
}

func (ctl *clusterControl) lostIDs() []string {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	return append([]string(nil), ctl.lost...)
}

func writeJSONResp(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// runScenario runs one test/interop/cluster script with node's test runner.
func (c *testCluster) runScenario(script string, env ...string) *clusterControl {
	c.t.Helper()
	root := repoRoot(c.t)
	requireNodeModules(c.t, filepath.Join(root, "test", "interop"), "npm ci --prefix test/interop")
	ctl := &clusterControl{c: c}
	srv := httptest.NewServer(ctl.routes())
	c.t.Cleanup(srv.Close)
	urls := make([]string, len(c.nodes))
	for i, p := range c.nodes {
		urls[i] = p.id + "=" + p.url
	}
	env = append(env, "CONTROL_URL="+srv.URL, "NODES="+strings.Join(urls, ","))
	runNode(c.t, root, env, "--test", "--test-reporter=spec", filepath.Join("test", "interop", "cluster", script))
	return ctl
}
