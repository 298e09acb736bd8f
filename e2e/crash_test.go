package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// serveProcess is `switchboard serve` running as a subprocess.
type serveProcess struct {
	cmd      *exec.Cmd
	url      string
	adminKey string // only printed on the first start
}

func startServe(t *testing.T, bin, db, addr string, firstStart bool, flags ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", addr, "--db", db, "--log-level", "error",
		"--retry-min", "10ms", "--retry-max", "50ms", "--breaker-cooldown", "50ms"}, flags...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &serveProcess{cmd: cmd, url: "http://" + addr}
	keys := make(chan string, 1)
	go func() { // reads stdout to its end so the process never blocks on it
		re := regexp.MustCompile(`Admin key:\s+(\S+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				keys <- m[1]
			}
		}
	}()
	testutil.Eventually(t, waitFor, "node ready", func() bool {
		resp, err := http.Get(p.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if firstStart {
		select {
		case p.adminKey = <-keys:
		case <-time.After(waitFor):
			t.Fatal("no admin key printed on first start")
		}
	}
	return p
}

// TestCrashKeepsNotifications: events queued while the upstream is down
// survive a SIGKILL of the gateway and are delivered after it restarts.
func TestCrashKeepsNotifications(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchboard")
	build := exec.Command("go", "build", "-o", bin, "../cmd/switchboard")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := testutil.FreeAddr(t)
	db := filepath.Join(dir, "switchboard.db")
	p := startServe(t, bin, db, addr, true)
	key := p.adminKey
	g := &gw{t: t, url: p.url}
	if status, out := do(t, http.MethodPost, p.url+"/admin/hubs", key, map[string]any{"name": "chat", "allowAnonymous": true}); status != http.StatusCreated {
		t.Fatalf("create hub: %d %s", status, out)
	}
	up := newFlakyUpstream(t)
	up.stop() // down while events are queued
	var secret struct {
		Secrets []string `json:"secrets"`
	}
	status, out := do(t, http.MethodPost, p.url+"/admin/hubs/chat/upstreams", key, map[string]any{"name": "notes",
		"urlTemplate": up.url(), "events": []string{"connected", "disconnected"}, "skipValidation": true})
	if status != http.StatusCreated || json.Unmarshal(out, &secret) != nil {
		t.Fatalf("add upstream: %d %s", status, out)
	}
	up.secret = secret.Secrets[0]

	var ids []string
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		c, err := client.Dial(ctx, g.url+"/client/?hub=chat", nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ConnectionID())
		c.Close()
	}
	// Three connected and three disconnected events are on disk once the
	// status shows them (Notify returns after the commit).
	testutil.Eventually(t, waitFor, "six queued events", func() bool {
		status, out := do(t, http.MethodGet, p.url+"/admin/status", key, nil)
		return status == http.StatusOK && strings.Contains(string(out), `"depth":6`)
	})

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	up.start()
	startServe(t, bin, db, addr, false)
	testutil.Eventually(t, waitFor, "every queued event delivered", func() bool { return len(perConn(up.all())) == len(ids) && complete(up.all(), ids) })
	got := perConn(up.all())
	for _, id := range ids {
		if want := []string{"connected", "disconnected"}; !slices.Equal(got[id], want) {
			t.Errorf("connection %s: got %v, want %v", id, got[id], want)
		}
	}
}

func complete(notes []note, ids []string) bool {
	got := perConn(notes)
	for _, id := range ids {
		if len(got[id]) < 2 {
			return false
		}
	}
	return true
}
