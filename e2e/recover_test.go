package e2e

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/store"
)

// runBin runs the switchboard binary to its end (it must not serve) and
// returns its output and exit error.
func runBin(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return testutil.RunBinary(t, waitFor*3, bin, env, args...)
}

// stopServe ends a `switchboard serve` process as an operator would
// (SIGTERM) and waits for it, so its database file is free.
func stopServe(t *testing.T, p *serveProcess) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(waitFor * 2):
		t.Fatal("switchboard serve did not stop on SIGTERM")
	}
}

// TestFailedFirstStartAndRecovery: a first `serve` whose port is taken
// fails before it makes any key (it prints none and leaves no database);
// after a successful first start whose output was lost, the local commands
// recover access from the stopped node's database file, say so clearly
// while the node still runs, and the node accepts the reset admin key.
func TestFailedFirstStartAndRecovery(t *testing.T) {
	t.Parallel()
	bin := switchboardBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "switchboard.db")

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := taken.Addr().String()
	out, errOut, err := runBin(t, bin, nil, "serve", "--listen", addr, "--db", db)
	if err == nil || !strings.Contains(errOut, "address already in use") {
		t.Fatalf("serve on a taken port: %v, stderr %q; want a failure naming the port", err, errOut)
	}
	if strings.Contains(out, "Admin key") || strings.Contains(out, "Connection string") {
		t.Errorf("a failed first start printed keys: %q", out)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("a failed first start left a database (%v): keys nobody saw may be in it", err)
	}
	taken.Close()

	// The first start that works; pretend its output is lost.
	p := startServe(t, bin, db, addr, true)
	lostKey := p.adminKey
	if status, body := do(t, http.MethodPost, p.url+"/admin/hubs", lostKey, map[string]any{"name": "chat"}); status != http.StatusCreated {
		t.Fatalf("create hub: %d %s", status, body)
	}
	// While the node runs, the file is its own.
	_, errOut, err = runBin(t, bin, nil, "recover", "reset-admin-key", "--db", db)
	if err == nil || !strings.Contains(errOut, "in use by another process") || !strings.Contains(errOut, "stop the node") {
		t.Errorf("reset-admin-key while the node runs: %v, stderr %q; want it refused, saying the node holds the file", err, errOut)
	}
	stopServe(t, p)

	out, errOut, err = runBin(t, bin, nil, "recover", "connection-string", "--db", db, "--public-url", p.url)
	if err != nil {
		t.Fatalf("recover connection-string: %v\n%s", err, errOut)
	}
	cs, err := negotiate.ParseConnectionString(strings.TrimSpace(out))
	if err != nil || cs.Endpoint != p.url {
		t.Fatalf("recover connection-string printed %q (%v); want a connection string for %s", out, err, p.url)
	}
	newKey, errOut, err := runBin(t, bin, nil, "recover", "reset-admin-key", "--db", db)
	newKey = strings.TrimSpace(newKey)
	if err != nil || !strings.HasPrefix(newKey, "sbadm_") || !strings.Contains(errOut, "previous one no longer works") {
		t.Fatalf("recover reset-admin-key: %v, %q, stderr %q", err, newKey, errOut)
	}

	p2 := startServe(t, bin, db, addr, false)
	if status, body := do(t, http.MethodGet, p2.url+"/admin/hubs", newKey, nil); status != http.StatusOK || !strings.Contains(string(body), `"chat"`) {
		t.Errorf("admin API with the reset key: %d %s, want 200 listing chat", status, body)
	}
	if status, _ := do(t, http.MethodGet, p2.url+"/admin/hubs", lostKey, nil); status != http.StatusUnauthorized {
		t.Errorf("admin API with the key before the reset: %d, want 401", status)
	}
	if got := restStatus(t, cs, "chat"); got != http.StatusOK {
		t.Errorf("REST call signed with the recovered connection string: %d, want 200", got)
	}
	stopServe(t, p2)

	// A path with no database is not made into one.
	missing := filepath.Join(dir, "typo.db")
	if _, errOut, err := runBin(t, bin, nil, "recover", "reset-admin-key", "--db", missing); err == nil || !strings.Contains(errOut, "no database at") {
		t.Errorf("reset-admin-key on a missing file: %v %q", err, errOut)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("recover created %s", missing)
	}
}

// TestSealedSecretsWithTheBinary: with a secrets key, the database file
// holds neither access key nor signing secret nor admin key in clear; a
// node or a recover command without the key says what is missing, and with
// it works.
func TestSealedSecretsWithTheBinary(t *testing.T) {
	t.Parallel()
	bin := switchboardBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "switchboard.db")
	keyFile := filepath.Join(dir, "secrets.key")
	keyText, errOut, err := runBin(t, bin, nil, "secrets", "generate-key")
	if err != nil {
		t.Fatalf("secrets generate-key: %v %s", err, errOut)
	}
	if _, err := store.ParseSecretsKey(keyText); err != nil {
		t.Fatalf("generate-key printed %q: %v", keyText, err)
	}
	if err := os.WriteFile(keyFile, []byte(keyText), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testutil.FreeAddr(t)
	p := startServe(t, bin, db, addr, true, "--secrets-key-file", keyFile)
	if status, body := do(t, http.MethodPost, p.url+"/admin/hubs", p.adminKey, map[string]any{"name": "chat"}); status != http.StatusCreated {
		t.Fatalf("create hub: %d %s", status, body)
	}
	status, body := do(t, http.MethodPost, p.url+"/admin/hubs/chat/upstreams", p.adminKey,
		map[string]any{"name": "fn", "urlTemplate": "http://127.0.0.1:9/marker-upstream", "skipValidation": true})
	if status != http.StatusCreated {
		t.Fatalf("add upstream: %d %s", status, body)
	}
	secret := between(string(body), `"secrets":["`, `"`)
	stopServe(t, p)

	csText, errOut, err := runBin(t, bin, []string{"SWITCHBOARD_SECRETS_KEY=" + keyText}, "recover", "connection-string", "--db", db)
	if err != nil {
		t.Fatalf("recover connection-string with the key in the environment: %v %s", err, errOut)
	}
	cs, err := negotiate.ParseConnectionString(strings.TrimSpace(csText))
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(file, []byte("marker-upstream")) {
		t.Fatal("the database file does not hold the upstream: the search below would prove nothing")
	}
	for what, s := range map[string]string{"access key": cs.AccessKey, "signing secret": secret, "admin key": p.adminKey} {
		if s == "" || bytes.Contains(file, []byte(s)) {
			t.Errorf("the database file holds the %s %q in clear", what, s)
		}
	}

	_, errOut, err = runBin(t, bin, nil, "recover", "connection-string", "--db", db)
	if err == nil || !strings.Contains(errOut, "--secrets-key-file") {
		t.Errorf("recover without the key: %v %q; want it to say to pass --secrets-key-file", err, errOut)
	}
	_, errOut, err = runBin(t, bin, nil, "serve", "--listen", addr, "--db", db)
	if err == nil || !strings.Contains(errOut, "--secrets-key-file") {
		t.Errorf("serve without the key: %v %q; want it to say to pass --secrets-key-file", err, errOut)
	}
}

// between is the text of s after the first start and up to the next end.
func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

// TestRecoverInCluster: a cluster keeps its keys in NATS KV, so the
// recover commands work on it with --nats, while the nodes run; a reset
// admin key applies on the running node through its watch.
func TestRecoverInCluster(t *testing.T) {
	t.Parallel()
	bin := switchboardBinary(t)
	nats := startNATS(t)
	g := startNode(t, func(c *node.Config) { c.NATS = nats.url(); c.NodeID = "rc1" })
	lost := g.adminKey

	out, errOut, err := runBin(t, bin, nil, "recover", "connection-string", "--nats", nats.url(), "--public-url", g.url)
	if err != nil {
		t.Fatalf("recover connection-string --nats: %v %s", err, errOut)
	}
	if cs, err := negotiate.ParseConnectionString(strings.TrimSpace(out)); err != nil || cs.KeyID != g.cs.KeyID || cs.AccessKey != g.cs.AccessKey {
		t.Errorf("recovered connection string %q (%v), want the node's key %s", out, err, g.cs.KeyID)
	}
	newKey, errOut, err := runBin(t, bin, nil, "recover", "reset-admin-key", "--nats", nats.url())
	newKey = strings.TrimSpace(newKey)
	if err != nil || !strings.HasPrefix(newKey, "sbadm_") {
		t.Fatalf("recover reset-admin-key --nats: %v %q %s", err, newKey, errOut)
	}
	testutil.Eventually(t, waitFor, "the running node takes the reset admin key", func() bool {
		status, _ := do(t, http.MethodGet, g.url+"/admin/hubs", newKey, nil)
		return status == http.StatusOK
	})
	if status, _ := do(t, http.MethodGet, g.url+"/admin/hubs", lost, nil); status != http.StatusUnauthorized {
		t.Errorf("the admin key before the reset: %d, want 401", status)
	}
}
