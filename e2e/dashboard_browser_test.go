package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// browserWait bounds each wait on the page; the dashboard polls every 2 s.
const browserWait = 20 * time.Second

// startBrowser starts headless Chromium with a fresh profile and returns a
// tab's context; everything ends with the test.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)), // matrix_test.go's lookup
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first call starts the browser, which lives as long as that
	// call's context: it cannot carry a timeout, so the wait is bounded
	// here instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("chromium did not start within a minute")
	}
	return ctx
}

// page drives the dashboard in one browser tab.
type page struct {
	t   *testing.T
	ctx context.Context
	dir string // where screenshots go
}

// run runs actions, each run bounded by browserWait.
func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail("%s: %v", what, err)
	}
}

// waitJS waits until the JavaScript expression is true.
func (p *page) waitJS(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	// An element not there yet is "not yet", not an error.
	guarded := "(() => { try { return !!(" + expr + ") } catch (e) { return false } })()"
	ok, err := chromedp.Run(ctx, chromedp.Poll[bool](guarded, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(browserWait)))
	if err != nil || !ok {
		p.fail("waiting for %s (%s): %v", what, expr, err)
	}
}

// text returns the text of the first element matching the CSS selector,
// "" when there is none.
func (p *page) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel)))
	if err != nil {
		p.fail("read %s: %v", sel, err)
	}
	return s
}

// fail saves what the page showed and fails the test.
func (p *page) fail(format string, args ...any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	p.screenshot("failure")
	p.t.Fatalf(format+"\npage text:\n%s", append(args, body)...)
}

// screenshot saves the whole page as NAME.png in the test's artifact
// directory.
func (p *page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(p.dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.t.Errorf("save screenshot: %v", err)
		return
	}
	p.t.Logf("screenshot: %s", file)
}

// artifactDir is $TEST_ARTIFACTS/TEST when set (kept for review), else the
// test's artifact directory (kept with go test -artifacts).
func artifactDir(t *testing.T) string {
	if root := os.Getenv("TEST_ARTIFACTS"); root != "" {
		dir := filepath.Join(root, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

// stoppableUpstream is a real upstream function (the SDK's handler) on a
// loopback port, which stop takes down for good: connections are refused.
type stoppableUpstream struct {
	url string
	srv *http.Server
}

func startUpstream(t *testing.T, secret string) *stoppableUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	if secret != "" {
		secrets = []string{secret}
	}
	h := upstream.Handler(secrets, func(ctx context.Context, ev *upstream.Event) (*upstream.Reply, error) {
		return upstream.NewReply().WithResult("ok"), nil
	})
	u := &stoppableUpstream{url: "http://" + ln.Addr().String() + "/api/webhook", srv: &http.Server{Handler: h}}
	go u.srv.Serve(ln)
	t.Cleanup(u.stop)
	return u
}

func (u *stoppableUpstream) stop() { u.srv.Close() }

// stockListener runs the official @microsoft/signalr client in Node
// (test/interop/dashboard/listen.mjs) on hub as user and returns the
// newMessage arguments it receives, once it is connected.
func stockListener(t *testing.T, g *gw, hub, user string) <-chan []json.RawMessage {
	t.Helper()
	root := repoRoot(t)
	requireNodeModules(t, filepath.Join(root, "test", "interop"), "npm ci --prefix test/interop")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, "node", "dashboard/listen.mjs")
	cmd.Dir = filepath.Join(root, "test", "interop")
	cmd.Env = append(os.Environ(), "SB_URL="+g.url+"/client/?hub="+hub, "SB_TOKEN="+g.token(hub, user), "SB_MAX_MS=120000")
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errs := logWriter(t, "stock client")
	cmd.Stderr = errs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	connected := make(chan struct{})
	msgs := make(chan []json.RawMessage, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var line struct {
				Connected string            `json:"connected"`
				Args      []json.RawMessage `json:"args"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Errorf("stock client printed %q: %v", sc.Text(), err)
				continue
			}
			if line.Connected != "" {
				close(connected)
				continue
			}
			msgs <- line.Args
		}
	}()
	t.Cleanup(func() {
		stdin.Close() // the client stops when its stdin ends
		<-done
		_ = cmd.Wait()
		errs.Close()
		cancel()
	})
	select {
	case <-connected:
	case <-done:
		t.Fatal("the stock client ended before it connected (its output is above)")
	case <-time.After(time.Minute):
		t.Fatal("the stock client did not connect within a minute")
	}
	return msgs
}

// TestDashboardInBrowser drives the admin dashboard of n1, one node of a
// two-node cluster, in headless Chromium as an admin would: a wrong admin
// key is refused; with the right one the page shows a connection appear
// (on n2, where a stock client connects) with the count per node and both
// nodes on a connected bus, an upstream turn red with the reason when it
// goes down, registers an upstream through its registration check (and
// shows a failed check), rotates an upstream's secret and the access
// keys, adds a hub, and sends a test message the stock client on n2
// receives. The page must also fit a phone's width. Screenshots are saved
// for review (see artifactDir).
func TestDashboardInBrowser(t *testing.T) {
	nats := startNATS(t)
	start := func(id string) *gw {
		return startNodeWith(t, node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), id+".db"),
			NodeID: id, NATS: nats.url(), Logger: quietLogger(t),
			// Two failures open a breaker, which stays open for the test.
			Delivery: delivery.DispatcherConfig{Breaker: delivery.BreakerConfig{ConsecutiveFailures: 2, CoolDown: time.Hour}}})
	}
	g := start("n1")
	n2 := start("n2")
	n2.adminKey = g.adminKey
	g.createHub("chat", false)
	secret := upstream.NewSecret()
	fn := startUpstream(t, secret)
	g.admin(http.MethodPost, "/admin/hubs/chat/upstreams", map[string]any{"name": "fn", "urlTemplate": fn.url,
		"events": []string{"message:*"}, "secrets": []string{secret}}, http.StatusCreated)

	p := &page{t: t, ctx: startBrowser(t), dir: artifactDir(t)}
	p.run("open the dashboard", chromedp.Navigate(g.url+"/dashboard"), chromedp.WaitVisible(chromedp.CSS("#key")))

	// A wrong key is refused and shows nothing.
	p.run("sign in with a wrong key", chromedp.SendKeys(chromedp.CSS("#key"), "sbadm_not-the-key"), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	p.waitJS("the refusal", `document.querySelector("#login-error").textContent.includes("wrong admin key")`)
	p.waitJS("the data to stay hidden", `document.querySelector("#app").hidden && !document.querySelector("#login").hidden`)
	p.screenshot("refused")

	p.run("sign in", chromedp.SendKeys(chromedp.CSS("#key"), g.adminKey), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	hubConns := `(document.querySelector('#hubs tr[data-hub="chat"] .conns')||{}).textContent`
	p.waitJS("hub chat with no connection", hubConns+` === "0"`)
	p.waitJS("upstream fn healthy", `!!document.querySelector('[data-upstream="chat/fn"].good')`)

	p.waitJS("both nodes on a connected bus", `document.querySelectorAll("#nodes tbody tr").length === 2 && `+
		`document.querySelector("#bus").textContent.startsWith("connected · 2 nodes")`)

	// A stock client connects to n2: n1's dashboard counts it there.
	received := stockListener(t, n2, "chat", "alice")
	p.waitJS("the connection to appear", hubConns+` === "1" && `+
		`document.querySelector('#hubs tr[data-hub="chat"] .per-node').textContent === "n1: 0, n2: 1"`)

	// A Go client invokes through the upstream (latency shows), then the
	// upstream goes down: the card turns red and says why.
	bob := g.dial("chat", "bob", nil)
	if _, err := bob.Invoke(t.Context(), "hello"); err != nil {
		t.Fatalf("invoke through the upstream: %v", err)
	}
	p.waitJS("a latency figure", `(document.querySelector('[data-upstream="chat/fn"] .latency')||{}).textContent.includes("p50")`)
	fn.stop()
	for range 2 {
		if _, err := bob.Invoke(t.Context(), "hello"); err == nil {
			t.Fatal("invoke succeeded with the upstream down")
		}
	}
	card := `document.querySelector('[data-upstream="chat/fn"]')`
	p.waitJS("the upstream to turn red", card+`.classList.contains("bad") && `+card+`.querySelector(".state").textContent === "open"`)
	p.waitJS("the failure reason", card+`.querySelector(".last-failure").textContent.includes("connection refused") && `+
		card+`.querySelector(".failure .why").textContent.includes("connection refused")`)
	p.screenshot("upstream-down")

	// Register an upstream: first one whose receiver refuses the check,
	// then a real function that passes it.
	refuser := newRawServer(t, http.NotFoundHandler())
	registered := startUpstream(t, "") // answers the check before it has its secret
	register := func(name, url string) {
		p.run("register "+name,
			chromedp.SetValue(chromedp.CSS(`#upstream-form [name=name]`), name),
			chromedp.SetValue(chromedp.CSS(`#upstream-form [name=urlTemplate]`), url),
			chromedp.SetValue(chromedp.CSS(`#upstream-form [name=hub]`), "chat"),
			chromedp.Click(chromedp.CSS("#upstream-form button[type=submit]")))
	}
	p.run("open the registration form", chromedp.Click(chromedp.Search(`//summary[text()="Register an upstream"]`)))
	register("bad", refuser)
	p.waitJS("the failed check", `document.querySelector("#upstream-result").textContent.startsWith("Not registered:") && `+
		`document.querySelector("#upstream-result").textContent.includes("WebHook-Allowed-Origin")`)
	register("fn2", registered.url)
	p.waitJS("the passed check", `document.querySelector("#upstream-result").textContent.includes("Registration check passed")`)
	shown := p.text("#upstream-result code.secret")
	var secrets secretsAnswer
	decode(t, g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/fn2/secrets", nil, http.StatusOK), &secrets)
	if len(secrets.Secrets) != 1 || shown != secrets.Secrets[0] {
		t.Errorf("the page showed secret %q, the gateway keeps %q", shown, secrets.Secrets)
	}
	p.waitJS("the new upstream's card", `!!document.querySelector('[data-upstream="chat/fn2"]')`)
	if status, _ := do(t, http.MethodGet, g.url+"/admin/hubs/chat/upstreams/bad", g.adminKey, nil); status != http.StatusNotFound {
		t.Errorf("the refused upstream exists: GET answered %d", status)
	}

	// Rotate fn2's signing secret: two clicks, then the new secret, which
	// signs beside the one shown at registration.
	rotateBtn := `[data-upstream="chat/fn2"] .rotate-secret`
	p.run("rotate fn2's secret", chromedp.Click(chromedp.CSS(rotateBtn)))
	p.waitJS("the secret rotation to ask again", `document.querySelector('`+rotateBtn+`').textContent === "Click again to rotate"`)
	p.run("rotate fn2's secret again", chromedp.Click(chromedp.CSS(rotateBtn)))
	p.waitJS("the new signing secret", `document.querySelector("#secret-result code.secret").textContent.startsWith("whsec_")`)
	decode(t, g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/fn2/secrets", nil, http.StatusOK), &secrets)
	if newSecret := p.text("#secret-result code.secret"); len(secrets.Secrets) != 2 || secrets.Secrets[0] != newSecret || secrets.Secrets[1] != shown {
		t.Errorf("after rotating, the gateway keeps %q; want the page's new %q, then the registration's %q", secrets.Secrets, newSecret, shown)
	}

	// Add a hub.
	p.run("add hub ops",
		chromedp.Click(chromedp.Search(`//summary[text()="Add a hub"]`)),
		chromedp.SetValue(chromedp.CSS(`#hub-form [name=name]`), "ops"),
		chromedp.Click(chromedp.CSS("#hub-form button[type=submit]")))
	p.waitJS("hub ops", `!!document.querySelector('#hubs tr[data-hub="ops"]')`)
	g.admin(http.MethodGet, "/admin/hubs/ops", nil, http.StatusOK)

	// Rotate the access keys: two clicks, then the new connection string.
	var before struct {
		Keys []struct{ ID string } `json:"keys"`
	}
	decode(t, g.admin(http.MethodGet, "/admin/keys", nil, http.StatusOK), &before)
	p.run("rotate", chromedp.Click(chromedp.CSS("#rotate")))
	p.waitJS("the rotation to ask again", `document.querySelector("#rotate").textContent === "Click again to rotate"`)
	p.run("rotate again", chromedp.Click(chromedp.CSS("#rotate")))
	p.waitJS("the new connection string", `document.querySelector("#rotate-result code.secret").textContent.includes("AccessKey=")`)
	p.waitJS("two keys listed", `document.querySelectorAll("#keys li").length === 2`)
	var after struct {
		Keys []struct{ ID string } `json:"keys"`
	}
	decode(t, g.admin(http.MethodGet, "/admin/keys", nil, http.StatusOK), &after)
	if len(after.Keys) != 2 || after.Keys[1].ID != before.Keys[0].ID || !strings.Contains(p.text("#rotate-result"), after.Keys[0].ID) {
		t.Errorf("keys %+v after rotating %+v; want the page's new key first, the old primary second", after.Keys, before.Keys)
	}

	// Send a test message: the stock client receives it.
	p.run("send a test message",
		chromedp.SetValue(chromedp.CSS(`#send-form [name=hub]`), "chat"),
		chromedp.SetValue(chromedp.CSS(`#send-form [name=target]`), "newMessage"),
		chromedp.SetValue(chromedp.CSS(`#send-form [name=arguments]`), `["admin", "hello from the dashboard test"]`),
		chromedp.Click(chromedp.CSS("#send-form button[type=submit]")))
	select {
	case args := <-received:
		if len(args) != 2 || str(t, args[1]) != "hello from the dashboard test" {
			t.Errorf("the stock client got %s, want the test message", args)
		}
	case <-time.After(browserWait):
		p.fail("the stock client got no test message within %s", browserWait)
	}
	p.waitJS("the send result", `document.querySelector("#send-result").textContent.startsWith("Sent newMessage to hub chat (1 connection on this node")`)
	// Nothing else was delivered to clients in this test, so a rate above
	// zero is the test message counted (for bob, the recipient on n1).
	p.waitJS("messages out per second to rise", `parseFloat(document.querySelector('#hubs tr[data-hub="chat"] .out').textContent) > 0`)
	p.screenshot("desktop")

	// A phone's width: nothing wider than the screen.
	p.run("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	p.waitJS("the layout to fit 390 px", `document.documentElement.scrollWidth <= window.innerWidth`)
	p.screenshot("phone")

	// Signing out forgets the key.
	p.run("sign out", chromedp.Click(chromedp.CSS("#logout")))
	p.waitJS("the sign-in form and no key", `!document.querySelector("#login").hidden && sessionStorage.length === 0`)
}
