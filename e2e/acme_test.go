package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/challtestsrv"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
)

// pebbleServer is Let's Encrypt's test ACME server, pebble, run in the
// process on an HTTPS httptest server, with the DNS server of pebble's own
// test setup (challtestsrv) answering 127.0.0.1 for every name. It runs the
// whole ACME flow, challenge validation included: account, order,
// authorization, a TLS-ALPN-01 handshake from pebble's validation
// authority to the gateway's listener, finalization, issuance.
type pebbleServer struct {
	url    string // the directory URL
	caFile string // PEM of the server's own HTTPS certificate
	roots  *x509.CertPool
	orders atomic.Int32 // new orders placed
}

// startPebble starts pebble, validating TLS-ALPN-01 challenges on
// 127.0.0.1:gwPort, where the test's gateway is to listen. Its validation
// authority keeps one goroutine for the rest of the test binary (pebble
// has no way to stop it).
func startPebble(t *testing.T, gwPort string) *pebbleServer {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no random badNonce answers
	logger := log.New(testWriter{t}, "pebble ", 0)

	dnsAddr := "127.0.0.1:" + freePort(t)
	dns, err := challtestsrv.New(challtestsrv.Config{DNSAddrs: []string{dnsAddr}, Log: logger})
	if err != nil {
		t.Fatal(err)
	}
	dns.SetDefaultDNSIPv4("127.0.0.1")
	dns.SetDefaultDNSIPv6("") // the gateway listens on IPv4 loopback only
	dns.Run()
	t.Cleanup(dns.Shutdown)
	testutil.Eventually(t, waitFor, "the DNS server to listen", func() bool {
		c, err := net.Dial("tcp", dnsAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	port, err := strconv.Atoi(gwPort)
	if err != nil {
		t.Fatal(err)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, 80, port, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 3, 5)
	p := &pebbleServer{roots: x509.NewCertPool()}
	p.roots.AppendCertsFromPEM(authority.GetRootCert(0).PEM())
	h := front.Handler()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			p.orders.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL + wfe.DirectoryPath
	p.caFile = filepath.Join(t.TempDir(), "pebble-https.pem")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestACMECertificate: a node configured for ACME orders a certificate for
// its host name from pebble on the first handshake and serves it (verified
// against pebble's root); a name it was not configured for gets none; a
// restart on the same database directory serves the cached certificate
// without ordering again.
func TestACMECertificate(t *testing.T) {
	port := freePort(t)
	p := startPebble(t, port)
	dbPath := filepath.Join(t.TempDir(), "switchboard.db")
	cfg := node.Config{Listen: "127.0.0.1:" + port, DBPath: dbPath, Logger: quietLogger(t),
		TLS: node.TLS{ACME: node.ACME{Hosts: []string{"gw.test"}, DirectoryURL: p.url, CAFile: p.caFile}}}

	handshake := func(n *node.Node, name string) (*x509.Certificate, error) {
		conn, err := tls.DialWithDialer(&netDialer, "tcp", n.Addr().String(), &tls.Config{ServerName: name, RootCAs: p.roots})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0], nil
	}

	n, err := node.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n.URL() != "https://gw.test:"+portOf(n.Addr().String()) {
		t.Errorf("public URL %s, want the ACME host on https", n.URL())
	}
	first, err := handshake(n, "gw.test")
	if err != nil {
		n.Close()
		t.Fatalf("handshake for gw.test: %v", err)
	}
	if first.Subject.CommonName != "gw.test" && !contains(first.DNSNames, "gw.test") {
		t.Errorf("served certificate for %v, want gw.test", first.DNSNames)
	}
	if !strings.Contains(first.Issuer.CommonName, "Pebble") {
		t.Errorf("issuer %q, want pebble's", first.Issuer.CommonName)
	}
	if _, err := handshake(n, "other.test"); err == nil {
		t.Error("a handshake for a host name not configured got a certificate")
	}
	if got := p.orders.Load(); got != 1 {
		t.Errorf("%d orders placed, want 1", got)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dbPath + ".acme"); err != nil {
		t.Errorf("no certificate cache next to the database: %v", err)
	}

	n2, err := node.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Close() })
	again, err := handshake(n2, "gw.test")
	if err != nil {
		t.Fatalf("handshake after the restart: %v", err)
	}
	if again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("after a restart the serial is %s, want the cached %s", again.SerialNumber, first.SerialNumber)
	}
	if got := p.orders.Load(); got != 1 {
		t.Errorf("%d orders placed after the restart, want still 1", got)
	}
}

var netDialer = net.Dialer{Timeout: waitFor}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestACMECacheSharedInCluster: two nodes of a cluster configured for the
// same host name share one certificate through NATS KV: the second node
// serves the first one's without ordering.
func TestACMECacheSharedInCluster(t *testing.T) {
	port := freePort(t)
	p := startPebble(t, port) // validates on node a's port
	nats := startNATS(t)
	start := func(id, listen string) *node.Node {
		n, err := node.Start(node.Config{Listen: listen, DBPath: filepath.Join(t.TempDir(), "switchboard.db"), Logger: quietLogger(t),
			NodeID: id, NATS: nats.url(), TLS: node.TLS{ACME: node.ACME{Hosts: []string{"gw.test"}, DirectoryURL: p.url, CAFile: p.caFile}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	a, b := start("a", "127.0.0.1:"+port), start("b", "127.0.0.1:0")
	serial := func(n *node.Node) string {
		conn, err := tls.DialWithDialer(&netDialer, "tcp", n.Addr().String(), &tls.Config{ServerName: "gw.test", RootCAs: p.roots})
		if err != nil {
			t.Fatalf("handshake with node %s: %v", n.Addr(), err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial(a)
	if got := serial(b); got != first {
		t.Errorf("node b serves serial %s, want node a's %s", got, first)
	}
	if got := p.orders.Load(); got != 1 {
		t.Errorf("%d orders placed by the cluster, want 1", got)
	}
}
