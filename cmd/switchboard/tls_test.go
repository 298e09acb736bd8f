package main

import (
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
)

// TestServeTLSFlags: the TLS flags reach the node's configuration, and
// combinations that cannot work are refused with what to change.
func TestServeTLSFlags(t *testing.T) {
	t.Parallel()
	parse := func(t *testing.T, args ...string) (*serveFlags, error) {
		t.Helper()
		var f serveFlags
		cmd := &cobra.Command{Use: "serve"}
		f.register(cmd, ":0", "x.db")
		if err := cmd.Flags().Parse(args); err != nil {
			return nil, err
		}
		return &f, nil
	}
	t.Run("accepted", func(t *testing.T) {
		t.Parallel()
		f, err := parse(t, "--tls-cert", "c.pem", "--tls-key", "k.pem", "--trusted-proxy", "10.0.0.0/8,192.0.2.1",
			"--upstream-ca", "ca.pem", "--upstream-host-ca", "Billing.Internal=b.pem", "--upstream-cert", "u.pem", "--upstream-key", "uk.pem",
			"--nats", "tls://n:4222", "--nats-ca", "n.pem", "--admin-listen", "127.0.0.1:9090", "--admin-client-ca", "ops.pem")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := f.config()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TLS.CertFile != "c.pem" || cfg.TLS.KeyFile != "k.pem" || cfg.TLS.NATS.CAFile != "n.pem" || cfg.Admin.ClientCAFile != "ops.pem" {
			t.Errorf("TLS config %+v, admin %+v", cfg.TLS, cfg.Admin)
		}
		if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}; len(cfg.TrustedProxies) != 2 ||
			cfg.TrustedProxies[0] != want[0] || cfg.TrustedProxies[1] != want[1] {
			t.Errorf("trusted proxies %v, want %v", cfg.TrustedProxies, want)
		}
		if cfg.TrustedProxyHeaders != httpapi.ProxyXForwarded {
			t.Errorf("trusted proxy headers %q by default, want %q", cfg.TrustedProxyHeaders, httpapi.ProxyXForwarded)
		}
		if h := cfg.TLS.UpstreamHosts["billing.internal"]; h.CAFile != "b.pem" || h.CertFile != "u.pem" {
			t.Errorf("per-host upstream TLS %+v, want b.pem with the global client certificate", h)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"certificate without key", []string{"--tls-cert", "c.pem"}, "--tls-key"},
		{"bad trusted proxy", []string{"--trusted-proxy", "not-a-network"}, "--trusted-proxy"},
		{"unknown proxy headers", []string{"--trusted-proxy-headers", "x-real-ip"}, "--trusted-proxy-headers"},
		{"bad per-host CA", []string{"--upstream-host-ca", "no-equals-sign"}, "HOST=FILE"},
		{"NATS TLS on the embedded server", []string{"--nats-embedded", "--nats-ca", "n.pem"}, "--nats"},
		{"admin mTLS without TLS", []string{"--admin-listen", ":9090", "--admin-client-ca", "ops.pem"}, "needs TLS"},
		{"admin certificate without listener", []string{"--admin-tls-cert", "a.pem", "--admin-tls-key", "ak.pem"}, "--admin-listen"},
		{"ACME and files", []string{"--acme-host", "gw.example.com", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "exclude each other"},
		{"ACME directory without host", []string{"--acme-directory", "https://acme.example/dir"}, "--acme-host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := parse(t, tc.args...)
			if err == nil {
				_, err = f.config()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestCLIAdminOverMutualTLS: the admin commands reach an admin listener
// that requires a client certificate, given --server-ca and
// --client-cert/--client-key (or their SWITCHBOARD_ variables), and fail
// with the TLS error without them.
func TestCLIAdminOverMutualTLS(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "site CA")
	site := ca.Issue(t.TempDir(), "gateway", "127.0.0.1")
	operator := ca.Issue(t.TempDir(), "operator")
	n, err := node.Start(node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), "sb.db"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		TLS:    node.TLS{CertFile: site.CertFile, KeyFile: site.KeyFile},
		Admin:  node.AdminListener{Listen: "127.0.0.1:0", ClientCAFile: ca.CertFile}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	server := "https://" + n.AdminAddr().String()
	env := []string{"SWITCHBOARD_ADMIN_KEY=" + n.AdminKey(), "SWITCHBOARD_SERVER=" + server}

	// The server's alert or a reset, depending on timing; either way the
	// error names the client certificate.
	if _, stderr, err := sb(t, env, "hub", "add", "nocert", "--server-ca", ca.CertFile); err == nil || !strings.Contains(stderr, "--client-cert") {
		t.Errorf("hub add without a client certificate: %v %s; want an error naming --client-cert", err, stderr)
	}
	if stdout, stderr, err := sb(t, env, "hub", "add", "viaflags", "--server-ca", ca.CertFile,
		"--client-cert", operator.CertFile, "--client-key", operator.KeyFile); err != nil {
		t.Fatalf("hub add with flags: %v\n%s%s", err, stdout, stderr)
	}
	withEnv := append(env, "SWITCHBOARD_SERVER_CA="+ca.CertFile, "SWITCHBOARD_CLIENT_CERT="+operator.CertFile, "SWITCHBOARD_CLIENT_KEY="+operator.KeyFile)
	stdout, stderr, err := sb(t, withEnv, "hub", "list")
	if err != nil || !strings.Contains(stdout, "viaflags") {
		t.Errorf("hub list with the environment: %v\n%s%s", err, stdout, stderr)
	}
}
