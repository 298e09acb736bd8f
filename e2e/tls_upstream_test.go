package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-gw/switchboard/internal/certfile"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// tlsUpstream is a real upstream on HTTPS with a certificate of ca for
// host; with clientCAs set it requires a client certificate they sign
// (mTLS) and records the subjects it was given.
type tlsUpstream struct {
	srv    *httptest.Server
	secret string

	mu      sync.Mutex // guards clients
	clients []string
}

func startTLSUpstream(t *testing.T, ca *testutil.CA, host string, clientCAs *testutil.CA) *tlsUpstream {
	t.Helper()
	u := &tlsUpstream{secret: upstream.NewSecret()}
	h := upstream.Handler([]string{u.secret}, func(context.Context, *upstream.Event) (*upstream.Reply, error) {
		return nil, nil // accept every connect as is
	})
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			u.mu.Lock()
			u.clients = append(u.clients, r.TLS.PeerCertificates[0].Subject.CommonName)
			u.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	u.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t.TempDir(), "upstream", host).Cert}}
	if clientCAs != nil {
		u.srv.TLS.ClientAuth, u.srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, clientCAs.Pool
		// In TLS 1.3 a server checks the client's certificate after the
		// client finished its handshake, so a refusal may reach the gateway
		// as a reset while it writes the request rather than as the alert,
		// depending on timing; TLS 1.2 refuses within the handshake, which
		// keeps the delivery log's reason the same on every run.
		u.srv.TLS.MaxVersion = tls.VersionTLS12
	}
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return u
}

// url is the upstream's webhook URL with host in place of 127.0.0.1.
func (u *tlsUpstream) url(host string) string {
	return strings.Replace(u.srv.URL, "127.0.0.1", host, 1) + "/webhook"
}

func (u *tlsUpstream) clientSubjects() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.clients...)
}

// TestTLSUpstreams registers HTTPS upstreams and connects a client, whose
// blocking connect event each must accept: one signed by the CA given with
// --upstream-ca that requires the gateway's client certificate (mTLS); one
// on a host given its own CA (--upstream-host-ca); one signed by a CA the
// gateway does not know, refused at registration and, registered without
// the check, refused on delivery with a reason in the delivery log; and an
// mTLS upstream on the per-host entry, which has no client certificate.
func TestTLSUpstreams(t *testing.T) {
	trusted := testutil.NewCA(t, "upstream CA")
	internal := testutil.NewCA(t, "internal CA")
	gwCert := trusted.Issue(t.TempDir(), "switchboard-gateway")
	g := startNode(t, func(c *node.Config) {
		c.TLS.Upstreams = certfile.Client{CAFile: trusted.CertFile, CertFile: gwCert.CertFile, KeyFile: gwCert.KeyFile}
		c.TLS.UpstreamHosts = map[string]certfile.Client{"localhost": {CAFile: internal.CertFile}}
	})

	register := func(hub, url string, skipValidation bool) (int, []byte) {
		t.Helper()
		g.createHub(hub, true)
		return do(t, http.MethodPost, g.url+"/admin/hubs/"+hub+"/upstreams", g.adminKey, map[string]any{
			"name": "fn", "urlTemplate": url, "events": []string{"connect"}, "timeout": "5s", "skipValidation": skipValidation})
	}
	// connectVia dials hub; the upstream's answer to connect decides.
	connectVia := func(hub string) error {
		t.Helper()
		c, err := g.tryDial(hub, "", nil)
		if err == nil {
			c.Close()
		}
		return err
	}
	lastError := func(hub string) string {
		t.Helper()
		var log []struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(g.admin(http.MethodGet, "/admin/hubs/"+hub+"/upstreams/fn/log", nil, http.StatusOK), &log); err != nil || len(log) == 0 {
			t.Fatalf("delivery log of %s: %v %d entries", hub, err, len(log))
		}
		return log[0].Error
	}

	t.Run("mTLS upstream signed by --upstream-ca", func(t *testing.T) {
		u := startTLSUpstream(t, trusted, "127.0.0.1", trusted)
		g.createHub("mtls", true)
		g.admin(http.MethodPost, "/admin/hubs/mtls/upstreams", map[string]any{"name": "fn", "urlTemplate": u.url("127.0.0.1"),
			"events": []string{"connect"}, "timeout": "5s", "secrets": []string{u.secret}}, http.StatusCreated)
		if err := connectVia("mtls"); err != nil {
			t.Fatalf("connect through the mTLS upstream: %v (delivery log: %s)", err, lastError("mtls"))
		}
		subjects := u.clientSubjects()
		if len(subjects) < 2 { // the registration check and the connect event
			t.Fatalf("upstream saw client certificates %v, want one on the check and one on the event", subjects)
		}
		for _, s := range subjects {
			if s != "switchboard-gateway" {
				t.Errorf("upstream saw client certificate %q, want the gateway's", s)
			}
		}
	})

	t.Run("upstream on a host with its own CA", func(t *testing.T) {
		u := startTLSUpstream(t, internal, "localhost", nil)
		g.createHub("internal", true)
		g.admin(http.MethodPost, "/admin/hubs/internal/upstreams", map[string]any{"name": "fn", "urlTemplate": u.url("localhost"),
			"events": []string{"connect"}, "timeout": "5s", "secrets": []string{u.secret}}, http.StatusCreated)
		if err := connectVia("internal"); err != nil {
			t.Fatalf("connect through the upstream with the per-host CA: %v (delivery log: %s)", err, lastError("internal"))
		}
	})

	t.Run("upstream signed by an unknown CA", func(t *testing.T) {
		// The internal CA is trusted for localhost only; at 127.0.0.1 its
		// certificate is unknown.
		u := startTLSUpstream(t, internal, "127.0.0.1", nil)
		status, body := register("unknown", u.url("127.0.0.1"), false)
		if status != http.StatusBadRequest && status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "unknown authority") {
			t.Fatalf("registration answered %d %s; want it refused naming the unknown authority", status, body)
		}
		do(t, http.MethodPost, g.url+"/admin/hubs/unknown/upstreams", g.adminKey, map[string]any{
			"name": "fn", "urlTemplate": u.url("127.0.0.1"), "events": []string{"connect"}, "timeout": "5s", "skipValidation": true})
		if err := connectVia("unknown"); err == nil {
			t.Fatal("a client connected through an upstream whose certificate the gateway cannot verify")
		}
		if got := lastError("unknown"); !strings.Contains(got, "signed by an unknown authority") || !strings.Contains(got, "--upstream-ca") {
			t.Errorf("delivery log says %q; want the unknown authority and what to configure", got)
		}
		t.Logf("delivery log: %s", lastError("unknown"))
	})

	t.Run("mTLS upstream given no client certificate", func(t *testing.T) {
		u := startTLSUpstream(t, internal, "localhost", trusted)
		register("nocert", u.url("localhost"), true)
		if err := connectVia("nocert"); err == nil {
			t.Fatal("a client connected through an mTLS upstream the gateway gave no certificate")
		}
		if got := lastError("nocert"); !strings.Contains(got, "refused the TLS handshake") {
			t.Errorf("delivery log says %q; want that the upstream refused the handshake", got)
		}
		t.Logf("delivery log: %s", lastError("nocert"))
	})
}
