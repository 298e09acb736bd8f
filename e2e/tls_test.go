package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/examples/functions/chat"
	"github.com/switchboard-gw/switchboard/internal/certfile"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// tlsGW is a node serving HTTPS with a certificate of a test CA, and an
// HTTP client that trusts that CA.
type tlsGW struct {
	t        *testing.T
	node     *node.Node
	url      string // https://127.0.0.1:port
	hc       *http.Client
	cs       negotiate.ConnectionString
	adminKey string
}

// startTLSNode starts a node with cfg (Listen, DBPath and Logger filled in
// when empty); ca signs the certificate it serves.
func startTLSNode(t *testing.T, ca *testutil.CA, cfg node.Config) *tlsGW {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.DBPath == "" {
		cfg.DBPath = filepath.Join(t.TempDir(), "switchboard.db")
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger(t)
	}
	n, err := node.Start(cfg)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Logf("closing node: %v", err)
		}
	})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool}
	g := &tlsGW{t: t, node: n, url: "https://" + n.Addr().String(), hc: &http.Client{Transport: tr, Timeout: requestWait}, adminKey: n.AdminKey()}
	t.Cleanup(tr.CloseIdleConnections)
	if g.cs, err = n.ConnectionString(); err != nil {
		t.Fatal(err)
	}
	g.cs.Endpoint = g.url
	return g
}

// call sends a request with g's client and returns the status and body.
func (g *tlsGW) call(method, path, bearer string, body any) (int, []byte) {
	g.t.Helper()
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			g.t.Fatal(err)
		}
		r = strings.NewReader(string(data))
	}
	req, err := http.NewRequest(method, g.url+path, r)
	if err != nil {
		g.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.hc.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func (g *tlsGW) admin(method, path string, body any, want int) []byte {
	g.t.Helper()
	status, data := g.call(method, path, g.adminKey, body)
	if status != want {
		g.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, data)
	}
	return data
}

// replaceCert issues a new certificate for the gateway and renames its
// files over the served ones, as certbot and Kubernetes do, returning it.
func replaceCert(t *testing.T, ca *testutil.CA, served testutil.Issued) testutil.Issued {
	t.Helper()
	next := ca.Issue(t.TempDir(), "gateway", "127.0.0.1", "localhost")
	for _, p := range [][2]string{{next.KeyFile, served.KeyFile}, {next.CertFile, served.CertFile}} {
		if err := os.Rename(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	return next
}

// servedSerial is the serial of the certificate a new TLS connection to g
// gets, verified against the CA.
func servedSerial(t *testing.T, g *tlsGW, ca *testutil.CA) string {
	t.Helper()
	conn, err := tls.Dial("tcp", g.node.Addr().String(), &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS handshake with the gateway: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// TestTLSInteropSignalRClient runs test/interop/tls/tls.mjs: the stock
// client, trusting the test CA through NODE_EXTRA_CA_CERTS, chats over wss
// and Long Polling on https through the example app's redirect negotiate;
// the gateway's certificate files are replaced while it is connected.
func TestTLSInteropSignalRClient(t *testing.T) {
	root := repoRoot(t)
	requireNodeModules(t, filepath.Join(root, "test", "interop"), "npm ci --prefix test/interop")
	ca := testutil.NewCA(t, "switchboard test CA")
	site := ca.Issue(t.TempDir(), "gateway", "127.0.0.1", "localhost")
	g := startTLSNode(t, ca, node.Config{TLS: node.TLS{CertFile: site.CertFile, KeyFile: site.KeyFile,
		Upstreams: certfile.Client{CAFile: ca.CertFile}}})
	if !strings.HasPrefix(g.node.URL(), "https://localhost:") {
		t.Errorf("public URL %s, want https://localhost:PORT by default with TLS on", g.node.URL())
	}
	g.admin(http.MethodPost, "/admin/hubs", map[string]any{"name": chat.Hub}, http.StatusCreated)

	// The app is the hub's upstream on HTTPS with a certificate of the same
	// CA, registered with the abuse-protection check: the gateway verifies
	// it against --upstream-ca at registration and on every webhook.
	secret := upstream.NewSecret()
	app := httptest.NewUnstartedServer(chat.New(chat.Config{Gateway: g.cs, WebhookSecrets: []string{secret}}))
	app.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t.TempDir(), "app", "127.0.0.1").Cert}}
	app.StartTLS()
	t.Cleanup(app.Close)
	g.admin(http.MethodPost, "/admin/hubs/"+chat.Hub+"/upstreams", map[string]any{
		"name": "chat-fn", "urlTemplate": app.URL + "/api/webhook", "timeout": "5s",
		"events": []string{"connect", "connected", "disconnected", "message:*"}, "secrets": []string{secret},
	}, http.StatusCreated)

	var replaced atomic.Int32
	current := site
	ctl := http.NewServeMux()
	ctl.HandleFunc("GET /serial", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, current.Cert.Leaf.SerialNumber.Text(16))
	})
	ctl.HandleFunc("POST /replace", func(w http.ResponseWriter, r *http.Request) {
		current = replaceCert(t, ca, site)
		replaced.Add(1)
		fmt.Fprint(w, current.Cert.Leaf.SerialNumber.Text(16))
	})
	ctlSrv := httptest.NewServer(ctl)
	t.Cleanup(ctlSrv.Close)

	runNode(t, root, []string{"NODE_EXTRA_CA_CERTS=" + ca.CertFile, "APP_URL=" + app.URL, "GATEWAY_URL=" + g.url, "CONTROL_URL=" + ctlSrv.URL},
		"--test", "--test-reporter=spec", "--test-concurrency=1", "test/interop/tls/tls.mjs")
	if replaced.Load() != 1 {
		t.Errorf("the certificate was replaced %d times, want once: the replacement test did not run", replaced.Load())
	}
}

// TestTLSListener checks the main listener from Go: HTTP/2 for HTTP routes
// (Server-Sent Events and Long Polling included) and HTTP/1.1 WebSockets on
// the same port, TLS 1.2 minimum, https URLs
// from :generateToken and in the connection string, and a certificate
// replaced under an open WebSocket.
func TestTLSListener(t *testing.T) {
	ca := testutil.NewCA(t, "switchboard test CA")
	site := ca.Issue(t.TempDir(), "gateway", "127.0.0.1", "localhost")
	g := startTLSNode(t, ca, node.Config{TLS: node.TLS{CertFile: site.CertFile, KeyFile: site.KeyFile}})
	g.admin(http.MethodPost, "/admin/hubs", map[string]any{"name": "room", "allowAnonymous": true}, http.StatusCreated)

	resp, err := g.hc.Get(g.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("/healthz over %s, want HTTP/2", resp.Proto)
	}
	if _, err := tls.Dial("tcp", g.node.Addr().String(), &tls.Config{RootCAs: ca.Pool, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 handshake succeeded; want TLS 1.2 at least")
	}
	if cs, _ := g.node.ConnectionString(); !strings.HasPrefix(cs.Endpoint, "https://") {
		t.Errorf("connection string endpoint %s, want https", cs.Endpoint)
	}

	status, body := g.call(http.MethodPost, "/api/hubs/room/:generateToken?userId=u1", mustServerToken(t, g, "/api/hubs/room/:generateToken"), nil)
	if status != http.StatusOK || !strings.Contains(string(body), `"url":"https://`) {
		t.Errorf(":generateToken answered %d %s, want an https url", status, body)
	}

	// A Go client over wss with an HTTP client that would use HTTP/2: the
	// WebSocket upgrade still happens on HTTP/1.1.
	ws := newInbox()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	conn, err := client.Dial(ctx, g.url+"/client/?hub=room", &client.Options{HTTPClient: g.hc,
		Handlers: map[string]func([]json.RawMessage){"hi": ws.handler()}})
	if err != nil {
		t.Fatalf("dial over wss: %v", err)
	}
	t.Cleanup(func() { conn.Close() })

	// Server-Sent Events and Long Polling ride HTTP/2 with the same client:
	// the per-request deadlines they set work on HTTP/2 streams too.
	half := map[string]*inbox{}
	for _, transport := range []string{"serversentevents", "longpolling"} {
		half[transport] = newInbox()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		c, err := client.Dial(ctx, g.url+"/client/?hub=room", &client.Options{HTTPClient: g.hc, Transport: transport,
			Handlers: map[string]func([]json.RawMessage){"hi": half[transport].handler()}})
		cancel()
		if err != nil {
			t.Fatalf("dial over %s on HTTP/2: %v", transport, err)
		}
		t.Cleanup(func() { c.Close() })
	}

	before := servedSerial(t, g, ca)
	next := replaceCert(t, ca, site)
	if got, want := servedSerial(t, g, ca), next.Cert.Leaf.SerialNumber.Text(16); got != want || got == before {
		t.Fatalf("after replacing the files a new handshake got serial %s, want the new %s (old %s)", got, want, before)
	}
	// The socket opened under the old certificate still gets messages.
	status, body = g.call(http.MethodPost, "/api/hubs/room/:send", mustServerToken(t, g, "/api/hubs/room/:send"),
		map[string]any{"target": "hi", "arguments": []any{"after renewal"}})
	if status != http.StatusAccepted {
		t.Fatalf("broadcast: %d %s", status, body)
	}
	if got := str(t, ws.next(t)[0]); got != "after renewal" {
		t.Errorf("old socket got %q, want the broadcast", got)
	}
	for transport, in := range half {
		if got := str(t, in.next(t)[0]); got != "after renewal" {
			t.Errorf("%s client got %q, want the broadcast", transport, got)
		}
	}
}

func mustServerToken(t *testing.T, g *tlsGW, path string) string {
	t.Helper()
	tok, err := negotiate.IssueToken(g.cs.Key(), negotiate.TokenOptions{Audience: g.url + path, Lifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
