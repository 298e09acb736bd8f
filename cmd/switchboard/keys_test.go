package main

import (
	"bytes"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/node"
)

// run executes the keys command in-process against a running node.
func run(t *testing.T, n *node.Node, args ...string) (string, error) {
	t.Helper()
	cmd := keysCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(append([]string{"--server", "http://" + n.Addr().String(), "--admin-key", n.AdminKey()}, args...))
	err := cmd.Execute()
	return out.String(), err
}

// TestKeysCommand drives list, rotate and revoke against a real node and
// checks each against the store.
func TestKeysCommand(t *testing.T) {
	n, err := node.Start(node.Config{
		Listen: "127.0.0.1:0",
		DBPath: filepath.Join(t.TempDir(), "sb.db"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	first, err := n.ConnectionString()
	if err != nil {
		t.Fatal(err)
	}

	out, err := run(t, n, "list")
	if err != nil || !regexp.MustCompile(`(?m)^`+first.KeyID+`\s+\S+\s+primary$`).MatchString(out) {
		t.Fatalf("list = %q, %v; want %s as primary", out, err, first.KeyID)
	}

	out, err = run(t, n, "rotate")
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	m := regexp.MustCompile(`new primary key: (\S+)\nconnection string: (\S+)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("rotate printed %q", out)
	}
	now, err := n.ConnectionString()
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != now.KeyID || m[2] != now.String() {
		t.Errorf("rotate printed key %s and %s; the node's newest is %s and %s", m[1], m[2], now.KeyID, now.String())
	}

	out, err = run(t, n, "list")
	if err != nil || !strings.Contains(out, first.KeyID) || !regexp.MustCompile(first.KeyID+`\s+\S+\s+secondary`).MatchString(out) {
		t.Fatalf("list after rotate = %q, %v; want %s as secondary", out, err, first.KeyID)
	}

	if out, err = run(t, n, "revoke", first.KeyID); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke = %q, %v", out, err)
	}
	keys, err := n.Store().AccessKeys(t.Context())
	if err != nil || len(keys) != 1 || keys[0].ID != now.KeyID {
		t.Fatalf("stored keys after revoke = %+v, %v; want only %s", keys, err, now.KeyID)
	}

	// Errors carry the gateway's message and status.
	_, err = run(t, n, "revoke", now.KeyID)
	if err == nil || !strings.Contains(err.Error(), "(409)") || !strings.Contains(err.Error(), "rotate first") {
		t.Errorf("revoking the last key: %v; want the gateway's 409 message", err)
	}
	_, err = run(t, n, "revoke", "nope")
	if err == nil || !strings.Contains(err.Error(), "(404)") {
		t.Errorf("revoking an unknown key: %v; want 404", err)
	}
}
