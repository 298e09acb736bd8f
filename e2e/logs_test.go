package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// lockedBuffer is a bytes.Buffer a process writes to while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestJSONLogs runs the real binary with --log-format json and
// --metrics-listen, drives a connection through it (invocations that an
// upstream answers, and some a failing upstream fails) and an admin call
// with an X-Request-Id, and checks that every line on stderr is a JSON
// object; that the connection gets exactly one info line, when it closes,
// with its hub, id, transport and protocol; that each failed call gets one
// warning naming hub, upstream and connection; that the admin call's line
// carries its request id, which the answer echoes (and a malformed one is
// replaced); and that /metrics answers on the metrics address without a
// key.
func TestJSONLogs(t *testing.T) {
	t.Parallel()
	bin := switchboardBinary(t)
	addr, metricsAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	cmd := exec.Command(bin, "serve", "--listen", addr, "--db", filepath.Join(t.TempDir(), "sb.db"),
		"--log-format", "json", "--metrics-listen", metricsAddr)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
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
	var adminKey string
	select {
	case adminKey = <-keys:
	case <-time.After(waitFor):
		t.Fatal("serve printed no admin key")
	}
	base := "http://" + addr
	testutil.Eventually(t, waitFor, "node ready", func() bool {
		status, _, err := tryDo(http.MethodGet, base+"/healthz", "", nil)
		return err == nil && status == http.StatusOK
	})
	g := &gw{t: t, url: base, adminKey: adminKey}
	g.createHub("logs", true)
	ok := newRawServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	down := newRawServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"down"}`, http.StatusBadGateway)
	}))
	g.addUpstream("logs", "fine", ok+"/{event}", "message:fine")
	g.addUpstream("logs", "down", down+"/{event}", "message:boom")

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := client.Dial(ctx, base+"/client/?hub=logs", nil)
	if err != nil {
		t.Fatal(err)
	}
	id := c.ConnectionID()
	for range 20 {
		if _, err := c.Invoke(ctx, "fine"); err != nil {
			t.Fatalf("fine: %v", err)
		}
	}
	for range 2 { // fewer than the breaker's 5 failures: each is a call
		if _, err := c.Invoke(ctx, "boom"); err == nil {
			t.Fatal("boom succeeded")
		}
	}
	c.Close()

	rotate := func(reqID string) string {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/admin/keys/:rotate", nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		req.Header.Set("X-Request-Id", reqID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("rotate: %d", resp.StatusCode)
		}
		return resp.Header.Get("X-Request-Id")
	}
	if got := rotate("req-rotate-1"); got != "req-rotate-1" {
		t.Errorf("X-Request-Id answered %q, want the caller's req-rotate-1", got)
	}
	if got := rotate(strings.Repeat("x", 65)); !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(got) {
		t.Errorf("X-Request-Id answered %q for an over-long one, want a fresh id", got)
	}

	status, body := do(t, http.MethodGet, "http://"+metricsAddr+"/metrics", "", nil)
	if status != http.StatusOK || !strings.Contains(string(body), "switchboard_connections_opened_total") {
		t.Errorf("--metrics-listen /metrics without a key: %d", status)
	}

	type line map[string]any
	var lines []line
	testutil.Eventually(t, waitFor, "the connection's close to be logged", func() bool {
		lines = lines[:0]
		found := false
		for _, text := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			var l line
			if err := json.Unmarshal([]byte(text), &l); err != nil {
				t.Fatalf("stderr line is not JSON: %q", text)
			}
			lines = append(lines, l)
			found = found || (l["msg"] == "connection closed" && l["conn"] == id)
		}
		return found
	})
	var infoAboutConn, failed, rotated int
	for _, l := range lines {
		if l["conn"] == id && l["level"] == "INFO" {
			infoAboutConn++
			for k, want := range map[string]any{"msg": "connection closed", "hub": "logs", "transport": "websockets",
				"protocol": "json", "kind": "client_closed", "received": float64(22)} {
				if l[k] != want {
					t.Errorf("connection line: %s = %v, want %v: %v", k, l[k], want, l)
				}
			}
		}
		if l["msg"] == "webhook call failed" {
			failed++
			for k, want := range map[string]any{"level": "WARN", "hub": "logs", "upstream": "down", "conn": id, "event": "message", "target": "boom"} {
				if l[k] != want {
					t.Errorf("failed call line: %s = %v, want %v: %v", k, l[k], want, l)
				}
			}
		}
		if l["msg"] == "access keys rotated" && l["request_id"] == "req-rotate-1" {
			rotated++
		}
	}
	if infoAboutConn != 1 {
		t.Errorf("%d info lines about the connection, want 1 (its close) whatever its traffic", infoAboutConn)
	}
	if failed != 2 {
		t.Errorf("%d lines for failed webhook calls, want 2", failed)
	}
	if rotated != 1 {
		t.Errorf("no info line with request_id req-rotate-1 for the key rotation:\n%s", stderr.String())
	}
}
