package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/internal/certfile"
	"github.com/switchboard-gw/switchboard/node"
)

// tlsFlags are the settings of every TLS hop: the listener's certificate,
// the proxies trusted to say what the client used, and how upstreams and
// NATS are verified.
type tlsFlags struct {
	certFile, keyFile string
	trustedProxies    []string
	proxyHeaders      string
	upstreams         certfile.Client
	upstreamHostCAs   []string
	nats              certfile.Client
	admin             node.AdminListener
	acme              node.ACME
}

func (f *tlsFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.certFile, "tls-cert", "", "serve HTTPS and WSS with this certificate (PEM, chain after the leaf); reloaded when the file changes (needs --tls-key)")
	fl.StringVar(&f.keyFile, "tls-key", "", "private key of --tls-cert (PEM); reloaded with it")
	fl.StringSliceVar(&f.acme.Hosts, "acme-host", nil,
		"get the certificate from ACME (Let's Encrypt by default) for this host name (repeatable); TLS-ALPN-01 on --listen, which the CA must reach on port 443")
	fl.StringVar(&f.acme.DirectoryURL, "acme-directory", "", "ACME directory URL (default Let's Encrypt's production directory)")
	fl.StringVar(&f.acme.CAFile, "acme-ca", "", "verify the ACME server's HTTPS against the CAs in this PEM file, for a private ACME server")
	fl.StringVar(&f.acme.Email, "acme-email", "", "contact address given to the ACME CA for expiry notices")
	fl.StringVar(&f.acme.CacheDir, "acme-cache", "", "directory keeping the ACME account key and certificates (default next to --db, <db>.acme)")
	fl.StringSliceVar(&f.trustedProxies, "trusted-proxy", nil,
		"network (CIDR) or address of a proxy in front of the gateway whose forwarding headers (see --trusted-proxy-headers) are believed (repeatable; default none)")
	fl.StringVar(&f.proxyHeaders, "trusted-proxy-headers", string(httpapi.ProxyXForwarded),
		"which headers the trusted proxies write: x-forwarded (X-Forwarded-For/-Proto/-Host: nginx, HAProxy, Caddy, Traefik, cloud load balancers) or forwarded (RFC 7239); the other family is the client's and ignored")
	fl.StringVar(&f.upstreams.CAFile, "upstream-ca", "", "verify HTTPS upstreams against the CAs in this PEM file instead of the system's roots")
	fl.StringVar(&f.upstreams.CertFile, "upstream-cert", "", "client certificate (PEM) presented to upstreams that require one (mTLS; needs --upstream-key)")
	fl.StringVar(&f.upstreams.KeyFile, "upstream-key", "", "private key of --upstream-cert (PEM)")
	fl.StringSliceVar(&f.upstreamHostCAs, "upstream-host-ca", nil,
		"HOST=FILE: verify upstreams at this host name against the CAs in FILE (repeatable); --upstream-cert still applies")
	fl.StringVar(&f.nats.CAFile, "nats-ca", "", "verify the NATS servers against the CAs in this PEM file (implies TLS to NATS)")
	fl.StringVar(&f.nats.CertFile, "nats-cert", "", "client certificate (PEM) presented to NATS servers that require one (needs --nats-key)")
	fl.StringVar(&f.nats.KeyFile, "nats-key", "", "private key of --nats-cert (PEM)")
	fl.StringVar(&f.admin.Listen, "admin-listen", "", "serve the admin API (and /healthz, /readyz) on this address instead of --listen, e.g. 127.0.0.1:9090 (default: on --listen)")
	fl.StringVar(&f.admin.CertFile, "admin-tls-cert", "", "certificate (PEM) of --admin-listen, reloaded when it changes (default --tls-cert; plain HTTP without either)")
	fl.StringVar(&f.admin.KeyFile, "admin-tls-key", "", "private key of --admin-tls-cert (PEM)")
	fl.StringVar(&f.admin.ClientCAFile, "admin-client-ca", "", "require clients of --admin-listen to present a certificate signed by these CAs (PEM; mutual TLS, on top of the admin key)")
}

// apply checks the flags and puts them into cfg; the files themselves are
// read by node.Start, which says which one does not load.
func (f *tlsFlags) apply(cfg *node.Config, natsEmbedded bool) error {
	if (f.certFile == "") != (f.keyFile == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
	}
	if (f.upstreams.CertFile == "") != (f.upstreams.KeyFile == "") {
		return fmt.Errorf("--upstream-cert and --upstream-key go together")
	}
	if (f.nats.CertFile == "") != (f.nats.KeyFile == "") {
		return fmt.Errorf("--nats-cert and --nats-key go together")
	}
	if !f.nats.IsZero() && natsEmbedded {
		return fmt.Errorf("--nats-ca, --nats-cert and --nats-key apply to an external NATS (--nats); the embedded server speaks plain NATS on loopback")
	}
	if (f.admin.CertFile == "") != (f.admin.KeyFile == "") {
		return fmt.Errorf("--admin-tls-cert and --admin-tls-key go together")
	}
	if f.admin.Listen == "" && (f.admin.CertFile != "" || f.admin.ClientCAFile != "") {
		return fmt.Errorf("--admin-tls-cert and --admin-client-ca configure the admin listener: add --admin-listen")
	}
	if f.admin.ClientCAFile != "" && f.admin.CertFile == "" && f.certFile == "" && len(f.acme.Hosts) == 0 {
		return fmt.Errorf("--admin-client-ca needs TLS on the admin listener: add --admin-tls-cert/--admin-tls-key, or --tls-cert/--tls-key")
	}
	if f.acme.DirectoryURL != "" || f.acme.CAFile != "" || f.acme.Email != "" || f.acme.CacheDir != "" {
		if len(f.acme.Hosts) == 0 {
			return fmt.Errorf("--acme-directory, --acme-ca, --acme-email and --acme-cache configure ACME: add --acme-host")
		}
	}
	if len(f.acme.Hosts) > 0 && f.certFile != "" {
		return fmt.Errorf("--acme-host and --tls-cert exclude each other: the certificate comes from ACME or from files")
	}
	cfg.Admin = f.admin
	cfg.TLS = node.TLS{CertFile: f.certFile, KeyFile: f.keyFile, Upstreams: f.upstreams, NATS: f.nats, ACME: f.acme}
	for _, hc := range f.upstreamHostCAs {
		if strings.TrimSpace(hc) == "" {
			continue
		}
		host, file, ok := strings.Cut(hc, "=")
		host = strings.ToLower(strings.TrimSpace(host))
		if !ok || file == "" || host == "" || strings.ContainsAny(host, "/:@ ") {
			return fmt.Errorf("--upstream-host-ca %q: give HOST=FILE, e.g. billing.internal=/etc/switchboard/billing-ca.pem", hc)
		}
		if cfg.TLS.UpstreamHosts == nil {
			cfg.TLS.UpstreamHosts = map[string]certfile.Client{}
		}
		c := f.upstreams
		c.CAFile = file
		cfg.TLS.UpstreamHosts[host] = c
	}
	var err error
	if cfg.TrustedProxyHeaders, err = httpapi.ParseProxyHeaders(f.proxyHeaders); err != nil {
		return fmt.Errorf("--trusted-proxy-headers: %w", err)
	}
	cfg.TrustedProxies, err = prefixList("--trusted-proxy", f.trustedProxies)
	return err
}
