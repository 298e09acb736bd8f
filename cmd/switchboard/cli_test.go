package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// binPath is the switchboard binary built from this tree by TestMain: the
// CLI tests run it as a user would.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "switchboard")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sb runs the binary with args and env as the only SWITCHBOARD_* settings.
func sb(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return testutil.RunBinary(t, 30*time.Second, binPath, env, args...)
}

// closedURL is an http URL on loopback where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	return "http://" + testutil.FreeAddr(t)
}

// cliOn returns run, which runs the CLI against node n with its admin key
// and fails the test on an error, and fails, which expects it to fail
// saying want.
func cliOn(t *testing.T, n *node.Node) (run func(args ...string) (string, string), fails func(want string, args ...string)) {
	env := []string{"SWITCHBOARD_SERVER=http://" + n.Addr().String(), "SWITCHBOARD_ADMIN_KEY=" + n.AdminKey()}
	run = func(args ...string) (string, string) {
		t.Helper()
		out, errOut, err := sb(t, env, args...)
		if err != nil {
			t.Fatalf("switchboard %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out, errOut
	}
	fails = func(want string, args ...string) {
		t.Helper()
		out, errOut, err := sb(t, env, args...)
		if err == nil || !strings.Contains(errOut, want) {
			t.Errorf("switchboard %s = %v %q %q; want it to fail saying %q", strings.Join(args, " "), err, out, errOut, want)
		}
	}
	return run, fails
}

func startTestNode(t *testing.T) *node.Node {
	t.Helper()
	n, err := node.Start(node.Config{
		Listen: "127.0.0.1:0",
		DBPath: filepath.Join(t.TempDir(), "sb.db"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestHelpShowsNoSecrets: every command's --help, with secrets in the
// environment, shows none of them as a default.
func TestHelpShowsNoSecrets(t *testing.T) {
	t.Parallel()
	const (
		adminKey  = "sbadm_SECRETADMINKEYVALUE"
		accessKey = "SECRETACCESSKEYVALUE0123456789"
		natsPass  = "SECRETNATSPASSWORD"
		natsToken = "SECRETNATSTOKEN"
		sealKey   = "U0VDUkVUU0VBTElOR0tFWVNFQ1JFVFNFQUxJTkdLRVk="
		readKey   = "UkVBRE9OTFlTRUFMSU5HS0VZUkVBRE9OTFlTRUFMSU5H"
	)
	secrets := []string{adminKey, accessKey, natsPass, natsToken, sealKey, readKey}
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub, append(append([]string{}, path...), sub.Name()))
			}
		}
	}
	walk(newRoot(), nil)
	if len(paths) < 20 {
		t.Fatalf("found only %d commands: %v", len(paths), paths)
	}
	for _, nats := range []string{"nats://user:" + natsPass + "@127.0.0.1:4222", "nats://" + natsToken + "@127.0.0.1:4222"} {
		env := []string{
			"SWITCHBOARD_ADMIN_KEY=" + adminKey,
			"SWITCHBOARD_CONNECTION_STRING=Endpoint=http://127.0.0.1:9;AccessKey=" + accessKey + ";Version=1.0;",
			"SWITCHBOARD_NATS=" + nats,
			"SWITCHBOARD_SECRETS_KEY=" + sealKey,
			"SWITCHBOARD_SECRETS_READ_KEY=" + readKey,
		}
		for _, p := range paths {
			out, errOut, err := sb(t, env, append(p, "--help")...)
			if err != nil || !strings.Contains(out, "Usage:") {
				t.Errorf("switchboard %s --help: %v\n%s%s", strings.Join(p, " "), err, out, errOut)
				continue
			}
			for _, s := range secrets {
				if strings.Contains(out+errOut, s) {
					t.Errorf("switchboard %s --help shows a secret from the environment:\n%s", strings.Join(p, " "), out)
				}
			}
		}
	}
}

// TestCLISaysHowToReachGateway: with no gateway at the address the CLI
// uses, the error names the address, where it came from and every way to
// point the CLI elsewhere; the connection string's Endpoint is used when
// nothing else is set.
func TestCLISaysHowToReachGateway(t *testing.T) {
	t.Parallel()
	closed := closedURL(t)
	for _, tt := range []struct {
		name   string
		env    []string
		args   []string
		source string
	}{
		{"flag", nil, []string{"--server", closed}, "--server"},
		{"environment", []string{"SWITCHBOARD_SERVER=" + closed}, nil, "SWITCHBOARD_SERVER"},
		{"connection string", []string{"SWITCHBOARD_CONNECTION_STRING=Endpoint=" + closed + ";AccessKey=abc;Version=1.0;"}, nil,
			"the Endpoint of SWITCHBOARD_CONNECTION_STRING"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, errOut, err := sb(t, append(tt.env, "SWITCHBOARD_ADMIN_KEY=k"), append([]string{"hub", "list"}, tt.args...)...)
			if err == nil {
				t.Fatal("hub list succeeded with no gateway")
			}
			for _, want := range []string{"no gateway answered at " + closed, "(from " + tt.source + ")", "switchboard serve",
				"--server URL", "SWITCHBOARD_SERVER=URL", "SWITCHBOARD_CONNECTION_STRING"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("error %q does not say %q", errOut, want)
				}
			}
		})
	}

	n := startTestNode(t)
	cs, err := n.ConnectionString()
	if err != nil {
		t.Fatal(err)
	}
	cs.Endpoint = "http://" + n.Addr().String()
	out, errOut, err := sb(t, []string{"SWITCHBOARD_CONNECTION_STRING=" + cs.String(), "SWITCHBOARD_ADMIN_KEY=" + n.AdminKey()}, "hub", "list")
	if err != nil || !strings.HasPrefix(out, "NAME") {
		t.Errorf("hub list with only the connection string = %v %q %q; want the gateway found through its Endpoint", err, out, errOut)
	}
	// --server wins over the connection string.
	_, errOut, err = sb(t, []string{"SWITCHBOARD_CONNECTION_STRING=" + cs.String(), "SWITCHBOARD_ADMIN_KEY=" + n.AdminKey()},
		"hub", "list", "--server", closed)
	if err == nil || !strings.Contains(errOut, closed) {
		t.Errorf("--server did not override the connection string: %v %q", err, errOut)
	}
}

// TestCLITour drives hubs, upstreams and their secrets through the binary
// against a real node, in the tour's order: the function runs before it is
// registered and has no secret yet.
func TestCLITour(t *testing.T) {
	t.Parallel()
	n := startTestNode(t)
	run, fails := cliOn(t, n)

	run("hub", "add", "chat")
	if out, _ := run("hub", "list"); !regexp.MustCompile(`(?m)^chat\s+false\s+32768\s+any$`).MatchString(out) {
		t.Errorf("hub list = %q, want chat with the default limit shown as 32768", out)
	}
	if out, _ := run("hub", "update", "chat", "--max-message-size", "65536", "--allowed-origin", "https://app.example.com"); !strings.Contains(out, "hub chat updated") {
		t.Errorf("hub update printed %q", out)
	}
	if out, _ := run("hub", "list"); !regexp.MustCompile(`(?m)^chat\s+false\s+65536\s+https://app.example.com$`).MatchString(out) {
		t.Errorf("hub list after update = %q", out)
	}
	run("hub", "update", "chat", "--anonymous", "--any-origin")
	if out, _ := run("hub", "list"); !regexp.MustCompile(`(?m)^chat\s+true\s+65536\s+any$`).MatchString(out) {
		t.Errorf("hub list after the second update = %q; the size must be kept", out)
	}
	fails("nothing to change", "hub", "update", "chat")
	fails("not found", "hub", "update", "nope", "--anonymous")

	// The function starts first, without a secret: it passes the check.
	fn := httptest.NewServer(upstream.Handler(nil, func(context.Context, *upstream.Event) (*upstream.Reply, error) { return nil, nil }))
	t.Cleanup(fn.Close)
	secret, _ := run("upstream", "secret", "generate")
	secret = strings.TrimSpace(secret)
	if err := upstream.CheckSecret(secret); err != nil {
		t.Fatalf("secret generate printed %q: %v", secret, err)
	}
	out, _ := run("upstream", "add", "fn", "--hub", "chat", "--url", fn.URL+"/api/webhook", "--events", "connect,message:*", "--secret", secret)
	if !strings.Contains(out, "upstream fn registered on hub chat") || strings.Contains(out, secret) {
		t.Errorf("upstream add printed %q", out)
	}
	if out, _ := run("upstream", "secret", "show", "fn", "--hub", "chat"); out != secret+"\n" {
		t.Errorf("secret show = %q, want the secret given to add", out)
	}
	fails(`secrets[0]: signing secret is malformed: it must start with "whsec_"`,
		"upstream", "add", "bad", "--hub", "chat", "--url", fn.URL, "--secret", "not-a-secret", "--skip-validation")
	fails("encodes 3 bytes", "upstream", "add", "bad", "--hub", "chat", "--url", fn.URL, "--secret", "whsec_AAAA", "--skip-validation")
	fails("start the function first", "upstream", "add", "down", "--hub", "chat", "--url", closedURL(t)+"/api")
	fails("--skip-validation", "upstream", "add", "down", "--hub", "chat", "--url", closedURL(t)+"/api")
	fails("--hub is required", "upstream", "list")

	// A second upstream for the same blocking events is warned about.
	out, errOut := run("upstream", "add", "second", "--hub", "chat", "--url", fn.URL+"/second", "--events", "connect,connected")
	if m := regexp.MustCompile(`signing secret: (\S+)`).FindStringSubmatch(out); m == nil || upstream.CheckSecret(m[1]) != nil {
		t.Errorf("upstream add without --secret printed %q, want the generated secret", out)
	}
	if !strings.Contains(errOut, `warning: upstream "fn" comes first and also takes connect`) {
		t.Errorf("stderr %q, want the shadowing warning", errOut)
	}
	out, errOut = run("upstream", "list", "--hub", "chat")
	if !regexp.MustCompile(`(?m)^1\s+fn\s.*connect,message:\*\s+default\s+`+regexp.QuoteMeta(secret[:10])+`…$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^2\s+second\s`).MatchString(out) || strings.Contains(out, secret) {
		t.Errorf("upstream list = %q, want fn then second, secrets masked", out)
	}
	if !strings.Contains(errOut, `"second" will not get those`) {
		t.Errorf("upstream list stderr %q, want the shadowing warning", errOut)
	}

	out, _ = run("upstream", "secret", "rotate", "fn", "--hub", "chat")
	m := regexp.MustCompile(`new signing secret: (\S+)`).FindStringSubmatch(out)
	if m == nil || upstream.CheckSecret(m[1]) != nil || !strings.Contains(out, "previous secret stays active") {
		t.Fatalf("rotate printed %q", out)
	}
	if out, _ := run("upstream", "secret", "show", "fn", "--hub", "chat"); out != m[1]+"\n"+secret+"\n" {
		t.Errorf("after rotation secret show = %q, want the new then the old", out)
	}
	fails("must start with", "upstream", "secret", "rotate", "fn", "--hub", "chat", "--secret", "nope")

	cs, err := n.ConnectionString()
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = sb(t, []string{"SWITCHBOARD_CONNECTION_STRING=" + cs.String()}, "token", "--hub", "chat", "--user", "alice")
	if err != nil || !strings.Contains(out, "url:   "+cs.Endpoint+"/client/?hub=chat") || !regexp.MustCompile(`token: \S+\.\S+\.\S+`).MatchString(out) {
		t.Errorf("token = %v %q", err, out)
	}
	if _, errOut, err := sb(t, nil, "token", "--hub", "chat"); err == nil || !strings.Contains(errOut, "SWITCHBOARD_CONNECTION_STRING") {
		t.Errorf("token without a connection string = %v %q", err, errOut)
	}
}

// startServe runs the binary's serve with args, with env as its only
// SWITCHBOARD_*, OTEL_* and GOGC settings, and returns what it printed up
// to and including its "Switchboard listening" line, and stop, which ends
// it (the test's cleanup does too). What it prints later is discarded.
func startServe(t *testing.T, env []string, args ...string) (lines []string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, binPath, append([]string{"serve"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHBOARD_") && !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "GOGC=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			cancel()
		})
	}
	t.Cleanup(stop)
	r := bufio.NewReader(stdout)
	for len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "Switchboard listening") {
		line, err := r.ReadString('\n')
		if err != nil {
			stop()
			t.Fatalf("serve ended before it listened, having printed %q: %v", lines, err)
		}
		lines = append(lines, line)
	}
	go func() { _, _ = io.Copy(io.Discard, r) }()
	return lines, stop
}
