package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
)

// TestAdminListenerMutualTLS moves the admin API to a listener of its own
// that requires a client certificate: the public listener no longer
// serves it; the admin listener refuses a client without a certificate of
// the operators' CA, and serves one with it (the admin key still required).
func TestAdminListenerMutualTLS(t *testing.T) {
	ca := testutil.NewCA(t, "site CA")
	operators := testutil.NewCA(t, "operators CA")
	site := ca.Issue(t.TempDir(), "gateway", "127.0.0.1", "localhost")
	g := startTLSNode(t, ca, node.Config{TLS: node.TLS{CertFile: site.CertFile, KeyFile: site.KeyFile},
		Admin: node.AdminListener{Listen: "127.0.0.1:0", ClientCAFile: operators.CertFile}})
	adminURL := "https://" + g.node.AdminAddr().String()

	if status, body := g.call(http.MethodGet, "/admin/hubs", g.adminKey, nil); status != http.StatusNotFound {
		t.Errorf("admin API on the public listener answered %d %s, want 404", status, body)
	}
	if status, _ := g.call(http.MethodGet, "/dashboard/", "", nil); status != http.StatusNotFound {
		t.Errorf("dashboard on the public listener answered %d, want 404: it calls the admin API on its own origin", status)
	}
	if status, _ := g.call(http.MethodGet, "/healthz", "", nil); status != http.StatusOK {
		t.Errorf("/healthz on the public listener: %d, want 200", status)
	}

	get := func(c *http.Client, path, key string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, adminURL+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	client := func(certs ...tls.Certificate) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, Certificates: certs}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: requestWait}
	}

	if _, _, err := get(client(), "/admin/hubs", g.adminKey); err == nil {
		t.Error("the admin listener served a client without a certificate")
	}
	stranger := ca.Issue(t.TempDir(), "stranger").Cert // signed, but not by the operators' CA
	if _, _, err := get(client(stranger), "/admin/hubs", g.adminKey); err == nil {
		t.Error("the admin listener served a client whose certificate the operators' CA did not sign")
	}
	operator := client(operators.Issue(t.TempDir(), "operator").Cert)
	if status, body, err := get(operator, "/admin/hubs", g.adminKey); err != nil || status != http.StatusOK {
		t.Errorf("operator with a certificate: %d %s %v, want 200", status, body, err)
	}
	if status, body, err := get(operator, "/admin/hubs", ""); err != nil || status != http.StatusUnauthorized {
		t.Errorf("operator without the admin key: %d %s %v, want 401", status, body, err)
	}
	if status, body, err := get(operator, "/dashboard/", ""); err != nil || status != http.StatusOK {
		t.Errorf("dashboard on the admin listener: %d %.80s %v, want 200", status, body, err)
	}
	if status, body, err := get(operator, "/metrics", g.adminKey); err != nil || status != http.StatusOK {
		t.Errorf("/metrics on the admin listener: %d %.80s %v, want 200", status, body, err)
	}
	if status, _ := g.call(http.MethodGet, "/metrics", g.adminKey, nil); status != http.StatusNotFound {
		t.Errorf("/metrics on the public listener answered %d, want 404", status)
	}
	if status, body, err := get(operator, "/readyz", ""); err != nil || status != http.StatusOK || !strings.Contains(body, "ready") {
		t.Errorf("/readyz on the admin listener: %d %s %v", status, body, err)
	}
}
