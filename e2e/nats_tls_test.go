package e2e

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/switchboard-gw/switchboard/internal/certfile"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
)

// startTLSNATS runs a real NATS server (JetStream on) in the process that
// accepts only TLS clients presenting a certificate ca signed, and returns
// its tls:// URL.
func startTLSNATS(t *testing.T, ca *testutil.CA) string {
	t.Helper()
	cert := ca.Issue(t.TempDir(), "nats", "127.0.0.1")
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.Cert}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: ca.Pool, MinVersion: tls.VersionTLS12},
		TLSVerify: true, TLSTimeout: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(waitFor) {
		t.Fatal("NATS server not ready")
	}
	return "tls://" + ns.Addr().String()
}

// TestNATSOverTLS joins two nodes through a NATS server that requires TLS
// and a client certificate: a REST broadcast on one reaches a client of
// the other, so both the shared configuration (JetStream KV) and the bus
// run over the verified TLS connection. A node without a client
// certificate is refused at start.
func TestNATSOverTLS(t *testing.T) {
	ca := testutil.NewCA(t, "NATS CA")
	url := startTLSNATS(t, ca)
	clientCert := ca.Issue(t.TempDir(), "switchboard-node")
	natsTLS := certfile.Client{CAFile: ca.CertFile, CertFile: clientCert.CertFile, KeyFile: clientCert.KeyFile}
	start := func(id string) *gw {
		return startNodeWith(t, node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), "switchboard.db"),
			Logger: quietLogger(t), NodeID: id, NATS: url, TLS: node.TLS{NATS: natsTLS}})
	}
	a := start("a")
	b := start("b")
	b.adminKey = a.adminKey // the cluster shares one admin key, printed by the node that made it
	a.createHub("tlsbus", true)

	inbox := newInbox()
	b.dial("tlsbus", "", map[string]func([]json.RawMessage){"news": inbox.handler()})
	// Node b subscribes to the hub's subject when its client joins, without
	// waiting for NATS to confirm it, so a broadcast sent at once may
	// arrive before the subscription does: send again until one arrives.
	var got []json.RawMessage
	deadline := time.Now().Add(waitFor)
	for got == nil && time.Now().Before(deadline) {
		a.restWant(http.MethodPost, "/api/hubs/tlsbus/:send", map[string]any{"target": "news", "arguments": []string{"over TLS"}}, http.StatusAccepted)
		select {
		case got = <-inbox.ch:
		case <-time.After(200 * time.Millisecond):
		}
	}
	if got == nil || str(t, got[0]) != "over TLS" {
		t.Fatalf("client on node b got %v, want the broadcast sent on node a", got)
	}

	_, err := node.Start(node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), "switchboard.db"),
		Logger: quietLogger(t), NodeID: "c", NATS: url, JoinTimeout: 5 * time.Second,
		TLS: node.TLS{NATS: certfile.Client{CAFile: ca.CertFile}}})
	if err == nil {
		t.Fatal("a node without a client certificate joined a NATS that requires one")
	}
	if !strings.Contains(err.Error(), "cannot reach NATS") {
		t.Errorf("start without a client certificate: %v; want it to say NATS is unreachable", err)
	}
	t.Logf("start without a client certificate: %v", err)
}
