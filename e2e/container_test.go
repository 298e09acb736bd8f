package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/examples/functions/chat"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/upstream"
)

// The container tests build the images with `make image` (Dockerfile, FROM
// scratch) and run them with podman, as an operator would: one node with
// the stock client chatting through it, then compose.yaml's three nodes
// with a broadcast crossing them. They need Debian's podman, runc and
// podman-compose (.ci/run installs them) and are skipped only when podman
// is not installed.

const (
	// Fixed tags, overwritten by every run, so runs leave no images behind.
	containerImage   = "localhost/switchboard:e2e"
	containerFnImage = "localhost/switchboard-chat-fn:e2e"
	// containerWait bounds a container's start and its cluster forming
	// (clustered JetStream elects its leaders) on a loaded machine.
	containerWait = 90 * time.Second
)

// containerRunArgs are what every `podman run` needs here: runc (the
// runtime Debian's podman is tested with) and limits under the machine's
// hard limits, which podman's defaults exceed.
var containerRunArgs = []string{"--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"}

var buildImages = sync.OnceValues(func() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	// The images the tags name before this build: replaced, they would be
	// left behind untagged by every run that changed the code.
	before, _ := tryPodman("image", "inspect", "--format", "{{.Id}}", containerImage, containerFnImage)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "image", "IMAGE="+containerImage, "FUNCTION_IMAGE="+containerFnImage)
	cmd.Dir = filepath.Dir(filepath.Dir(file))
	out, err := cmd.CombinedOutput()
	if err == nil {
		after, _ := tryPodman("image", "inspect", "--format", "{{.Id}}", containerImage, containerFnImage)
		for _, id := range strings.Fields(before) {
			if !strings.Contains(after, id) {
				_, _ = tryPodman("rmi", id)
			}
		}
	}
	return string(out), err
})

// needImages skips the test without podman and builds the images once.
func needImages(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skipf("podman is not installed (apt-get install podman runc podman-compose; .ci/run does): %v", err)
	}
	start := time.Now()
	if out, err := buildImages(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("images ready after %s", time.Since(start).Round(time.Millisecond))
}

// podman runs podman with args and returns its standard output; the test
// fails if it exits non-zero.
func podman(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tryPodman(args...)
	if err != nil {
		t.Fatalf("podman %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func tryPodman(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, errOut.String())
	}
	return out.String(), nil
}

// containerKeys waits until one of the containers printed the keys of its
// first start and returns them.
func containerKeys(t *testing.T, containers ...string) (negotiate.ConnectionString, string) {
	t.Helper()
	var cs, admin string
	defer func() {
		if admin != "" {
			return
		}
		// Say why: a node that restarted (restart: unless-stopped) after
		// making the keys, or one still starting, shows in its log.
		for _, c := range containers {
			restarts, _ := tryPodman("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", c)
			logs, err := tryPodman("logs", "--tail", "40", c)
			t.Logf("container %s (restarts, state: %s), its log's end (%v):\n%s", c, strings.TrimSpace(restarts), err, logs)
		}
	}()
	testutil.Eventually(t, containerWait, "a container prints its keys", func() bool {
		for _, c := range containers {
			logs, _ := tryPodman("logs", c)
			if m := adminKeyLine.FindStringSubmatch(logs); m != nil {
				admin, cs = m[1], connStrLine.FindStringSubmatch(logs)[1]
				return true
			}
		}
		time.Sleep(200 * time.Millisecond)
		return false
	})
	parsed, err := negotiate.ParseConnectionString(cs)
	if err != nil {
		t.Fatal(err)
	}
	return parsed, admin
}

// waitReady waits until url/readyz answers 200.
func waitReady(t *testing.T, url string) {
	t.Helper()
	testutil.Eventually(t, containerWait, url+" ready", func() bool {
		status, _, err := tryDo(http.MethodGet, url+"/readyz", "", nil)
		if status != http.StatusOK || err != nil {
			time.Sleep(200 * time.Millisecond)
		}
		return status == http.StatusOK
	})
}

// TestContainerImage runs the gateway image as one container: it runs as a
// non-root user with the host's CA certificates, two stock clients chat
// through it by way of the example chat app on the host, and after a
// restart its database, on the volume, still holds the hub and keys.
func TestContainerImage(t *testing.T) {
	t.Parallel()
	start := time.Now()
	needImages(t)
	root := repoRoot(t)
	requireNodeModules(t, filepath.Join(root, "test", "interop"), "npm ci --prefix test/interop")

	if got := strings.TrimSpace(podman(t, "image", "inspect", "--format", "{{.Config.User}} {{range $k, $v := .Config.Volumes}}{{$k}}{{end}}", containerImage)); got != "65532:65532 /data" {
		t.Errorf("image user and volumes: got %q, want %q", got, "65532:65532 /data")
	}

	name := fmt.Sprintf("sb-e2e-%d-single", os.Getpid())
	volume := name + "-data"
	_, _ = tryPodman("rm", "-f", name) // a leftover of a killed run
	_, _ = tryPodman("volume", "rm", "-f", volume)
	t.Cleanup(func() {
		_, _ = tryPodman("rm", "-f", "-t", "2", name)
		_, _ = tryPodman("volume", "rm", "-f", volume)
	})
	// The host's network, so the container reaches the chat app on the
	// host's loopback and everything stays on 127.0.0.1.
	port := freePort(t)
	url := "http://127.0.0.1:" + port
	podman(t, append(append([]string{"run", "-d", "--name", name}, containerRunArgs...), "--network", "host", "-v", volume+":/data",
		"-e", "SWITCHBOARD_LISTEN=127.0.0.1:"+port, "-e", "SWITCHBOARD_PUBLIC_URL="+url, containerImage)...)
	waitReady(t, url)
	cs, adminKey := containerKeys(t, name)
	if cs.Endpoint != url {
		t.Errorf("connection string endpoint: got %q, want %q (from SWITCHBOARD_PUBLIC_URL)", cs.Endpoint, url)
	}

	if got := strings.Fields(podman(t, "top", name, "user")); len(got) != 2 || got[1] != "65532" {
		t.Errorf("podman top user: got %q, want the process running as 65532", got)
	}
	certs := filepath.Join(t.TempDir(), "ca.crt")
	podman(t, "cp", name+":/etc/ssl/certs/ca-certificates.crt", certs)
	want, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(certs); err != nil || !bytes.Equal(got, want) {
		t.Errorf("the image's CA certificates differ from the build host's (%d bytes, %v)", len(got), err)
	}

	g := &gw{t: t, url: url, cs: cs, adminKey: adminKey}
	g.createHub(chat.Hub, false)
	secret := upstream.NewSecret()
	app := httptest.NewServer(chat.New(chat.Config{Gateway: cs, WebhookSecrets: []string{secret},
		WebDir: filepath.Join(root, "examples", "functions", "chat", "web")}))
	t.Cleanup(app.Close)
	g.admin(http.MethodPost, "/admin/hubs/"+chat.Hub+"/upstreams", map[string]any{
		"name": "chat-fn", "urlTemplate": app.URL + "/api/webhook", "timeout": "5s",
		"events": []string{"connect", "connected", "disconnected", "message:*"}, "secrets": []string{secret},
	}, http.StatusCreated)
	runNode(t, root, []string{"APP_URL=" + app.URL, "CONTROL_URL=http://127.0.0.1:9"},
		"--test", "--test-reporter=spec", "test/interop/container/chat.mjs")

	// The database is on the volume: a restarted container keeps the keys
	// (it prints no new ones) and the hub.
	podman(t, "stop", "-t", "10", name)
	podman(t, "start", name)
	waitReady(t, url)
	if logs := podman(t, "logs", name); strings.Count(logs, "Switchboard listening") != 2 || strings.Count(logs, "First start") != 1 {
		t.Errorf("after a restart on the same volume, want two starts and one key generation; logs:\n%s", logs)
	}
	var hubs []struct{ Name string }
	if err := json.Unmarshal(g.admin(http.MethodGet, "/admin/hubs", nil, http.StatusOK), &hubs); err != nil || len(hubs) != 1 || hubs[0].Name != chat.Hub {
		t.Errorf("hubs after the restart: got %+v (%v), want chat", hubs, err)
	}
	t.Logf("TestContainerImage wall time %s", time.Since(start).Round(time.Millisecond))
}

// TestContainerCompose brings up compose.yaml with podman-compose: three
// nodes whose embedded NATS servers route to each other, and the example
// chat function as their upstream. A message sent by a client of node 1
// reaches, through the function's broadcast, clients of nodes 2 and 3.
func TestContainerCompose(t *testing.T) {
	t.Parallel()
	start := time.Now()
	needImages(t)
	if _, err := exec.LookPath("podman-compose"); err != nil {
		t.Fatalf("podman is installed but podman-compose is not: apt-get install podman-compose (.ci/run does): %v", err)
	}
	root := repoRoot(t)
	project := fmt.Sprintf("sbe2e%d", os.Getpid())
	ports := []string{freePort(t), freePort(t), freePort(t)}
	env := append(os.Environ(), "SWITCHBOARD_IMAGE="+containerImage, "CHAT_FN_IMAGE="+containerFnImage,
		"NODE1_PORT="+ports[0], "NODE2_PORT="+ports[1], "NODE3_PORT="+ports[2], "CHAT_PORT="+freePort(t))
	compose := func(extraEnv []string, args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "podman-compose", append([]string{"-f", filepath.Join(root, "compose.yaml"), "-p", project,
			"--podman-run-args=--runtime runc"}, args...)...)
		cmd.Env = append(append([]string{}, env...), extraEnv...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("podman-compose %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	// Removed with podman at once: podman-compose down stops the containers
	// one after the other, and 1.0.3 leaves the project's network behind
	// (each holds one of the few subnets podman hands out).
	t.Cleanup(func() {
		label := "label=io.podman.compose.project=" + project
		if ids, _ := tryPodman("ps", "-aq", "--filter", label); ids != "" {
			_, _ = tryPodman(append([]string{"rm", "-f", "-t", "1"}, strings.Fields(ids)...)...)
		}
		if vols, _ := tryPodman("volume", "ls", "-q", "--filter", label); vols != "" {
			_, _ = tryPodman(append([]string{"volume", "rm", "-f"}, strings.Fields(vols)...)...)
		}
		_, _ = tryPodman("network", "rm", "-f", project+"_default")
	})
	if err := compose(nil, "up", "-d", "node1", "node2", "node3"); err != nil {
		t.Fatal(err)
	}
	var urls, containers []string
	for i, p := range ports {
		urls = append(urls, "http://127.0.0.1:"+p)
		containers = append(containers, fmt.Sprintf("%s_node%d_1", project, i+1))
	}
	for _, u := range urls {
		waitReady(t, u)
	}
	cs, adminKey := containerKeys(t, containers...)
	t.Logf("three nodes ready after %s", time.Since(start).Round(time.Millisecond))

	secret := upstream.NewSecret()
	if err := compose([]string{"SWITCHBOARD_CONNECTION_STRING=" + cs.String(), "WEBHOOK_SECRET=" + secret}, "up", "-d", "chat-fn"); err != nil {
		t.Fatal(err)
	}
	// Configure through one node, register through another: the
	// configuration is shared in JetStream KV.
	(&gw{t: t, url: urls[1], cs: cs, adminKey: adminKey}).createHub(chat.Hub, false)
	testutil.Eventually(t, containerWait, "the chat function answers the registration check", func() bool {
		status, body, err := tryDo(http.MethodPost, urls[2]+"/admin/hubs/"+chat.Hub+"/upstreams", adminKey, map[string]any{
			"name": "chat-fn", "urlTemplate": "http://chat-fn:3000/api/webhook", "timeout": "5s",
			"events": []string{"connect", "connected", "disconnected", "message:*"}, "secrets": []string{secret},
		})
		if status != http.StatusCreated {
			t.Logf("register: %d %s %v", status, body, err)
			time.Sleep(500 * time.Millisecond)
		}
		return status == http.StatusCreated
	})

	// One client per node, each told to go to its node (a connection
	// string per node, as a function would hold for each).
	inboxes := make([]*inbox, 3)
	conns := make([]*client.Conn, 3)
	for i, u := range urls {
		nodeCS := cs
		nodeCS.Endpoint = u
		resp, err := negotiate.NewResponse(nodeCS, chat.Hub, fmt.Sprintf("user%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		inboxes[i] = newInbox()
		testutil.Eventually(t, containerWait, "a client joins node "+u, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			conns[i], err = client.Dial(ctx, resp.URL, &client.Options{
				AccessToken: func(context.Context) (string, error) { return resp.AccessToken, nil },
				Handlers:    map[string]func([]json.RawMessage){"newMessage": inboxes[i].handler(), "system": func([]json.RawMessage) {}},
			})
			if err != nil {
				t.Logf("dial %s: %v", u, err)
				time.Sleep(500 * time.Millisecond)
			}
			return err == nil
		})
		t.Cleanup(func() { conns[i].Close() })
		if want := fmt.Sprintf("n%d.", i+1); !strings.HasPrefix(conns[i].ConnectionID(), want) {
			t.Fatalf("client of %s has connection id %q, want one of node n%d", u, conns[i].ConnectionID(), i+1)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := conns[0].Invoke(ctx, "sendMessage", "across the cluster")
	if err != nil {
		t.Fatalf("sendMessage on node 1: %v", err)
	}
	if s := str(t, res); s != "sent" {
		t.Errorf("sendMessage result: got %q, want sent", s)
	}
	for i, in := range inboxes {
		args := in.next(t)
		if len(args) != 2 || str(t, args[0]) != "user1" || str(t, args[1]) != "across the cluster" {
			t.Errorf("client of node %d got newMessage %s, want [user1, across the cluster]", i+1, args)
		}
	}
	t.Logf("TestContainerCompose wall time %s", time.Since(start).Round(time.Millisecond))
}
