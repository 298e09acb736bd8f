package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/internal/certfile"
)

// TLS is where a node speaks TLS and with which files. The zero value is
// plain HTTP on the listener (behind a TLS-terminating proxy, see
// Config.TrustedProxies) and TLS toward upstreams and NATS only where
// their URLs ask for it, verified against the system's roots.
type TLS struct {
	// CertFile and KeyFile make the main listener serve HTTPS and WSS with
	// this certificate (PEM; the certificate file may carry the chain),
	// TLS 1.2 or newer, HTTP/2 offered to HTTP clients. The files are
	// loaded again on the first handshake after they change: renewing the
	// certificate needs no restart and leaves open sockets alone. Empty
	// means plain HTTP.
	CertFile, KeyFile string
	// Upstreams verifies HTTPS upstreams (CAFile; empty means the system's
	// roots) and presents CertFile/KeyFile to those that require a client
	// certificate.
	Upstreams certfile.Client
	// UpstreamHosts overrides Upstreams for the upstream hosts it names
	// (host name as in the URL, without port): a service signed by its
	// own CA. Nil means none.
	UpstreamHosts map[string]certfile.Client
	// NATS verifies the NATS servers (CAFile; empty means the system's
	// roots) and presents CertFile/KeyFile to servers that require a
	// client certificate. Zero means TLS only if the URL is tls:// or the
	// server requires it, verified against the system's roots.
	NATS certfile.Client
	// ACME gets the main listener's certificates from an ACME CA instead
	// of files (CertFile and KeyFile must then be empty). The zero value
	// means none.
	ACME ACME
}

// on reports whether the main listener serves TLS.
func (t TLS) on() bool { return t.CertFile != "" || t.KeyFile != "" || t.ACME.on() }

// serverTLS loads the main listener's certificate, or returns nil for
// plain HTTP. It runs before the store is opened: a node that cannot serve
// fails before it generates keys nobody would see.
func (n *Node) serverTLS() (*tls.Config, error) {
	if !n.cfg.TLS.on() {
		return nil, nil
	}
	if n.cfg.TLS.ACME.on() {
		if n.cfg.TLS.CertFile != "" || n.cfg.TLS.KeyFile != "" {
			return nil, errors.New("node: a certificate comes from files or from ACME, not both")
		}
		return n.acmeTLS()
	}
	r, err := certfile.New(n.cfg.TLS.CertFile, n.cfg.TLS.KeyFile, n.log)
	if err != nil {
		return nil, fmt.Errorf("node: TLS certificate: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}, nil
}

// serve serves srv on ln: HTTPS when srv.TLSConfig is set, else HTTP.
// ServeTLS adds "h2" and "http/1.1" to the offered protocols, so HTTP
// clients that speak HTTP/2 get it, while WebSocket clients, which ask for
// HTTP/1.1 in ALPN, still upgrade as before.
func serve(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

// defaultPublicURL is the public URL when none is configured: the first
// ACME host name, else localhost; https when TLS is on.
func (t TLS) defaultPublicURL(port int) string {
	switch {
	case len(t.ACME.Hosts) > 0 && port == 443:
		return "https://" + t.ACME.Hosts[0]
	case len(t.ACME.Hosts) > 0:
		return fmt.Sprintf("https://%s:%d", t.ACME.Hosts[0], port)
	case t.on():
		return fmt.Sprintf("https://localhost:%d", port)
	}
	return fmt.Sprintf("http://localhost:%d", port)
}

// upstreamTLS builds the dispatcher's TLS settings from the files.
func (t TLS) upstreamTLS(n *Node) (delivery.UpstreamTLS, error) {
	var u delivery.UpstreamTLS
	var err error
	if !t.Upstreams.IsZero() {
		if u.Default, err = certfile.ClientConfig(t.Upstreams, n.log); err != nil {
			return u, fmt.Errorf("node: upstream TLS: %w", err)
		}
	}
	for host, c := range t.UpstreamHosts {
		if u.Hosts == nil {
			u.Hosts = map[string]*tls.Config{}
		}
		if u.Hosts[host], err = certfile.ClientConfig(c, n.log); err != nil {
			return u, fmt.Errorf("node: upstream TLS for %s: %w", host, err)
		}
	}
	return u, nil
}

// natsTLS is the NATS connection's TLS option, or nil for the defaults.
func (t TLS) natsTLS(cfg Config) (nats.Option, error) {
	if t.NATS.IsZero() {
		return nil, nil
	}
	c, err := certfile.ClientConfig(t.NATS, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("node: NATS TLS: %w", err)
	}
	return nats.Secure(c), nil
}

// httpErrorLog is the HTTP server's error log: into the node's logger,
// with failed TLS handshakes (scanners, clients that do not trust the
// certificate, probes with old TLS versions: routine on a public port) at
// debug level and the rest at warn.
func httpErrorLog(l *slog.Logger) *log.Logger {
	return log.New(errorLogWriter{l}, "", 0)
}

type errorLogWriter struct{ l *slog.Logger }

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.Contains(msg, "TLS handshake error") {
		level = slog.LevelDebug
	}
	w.l.Log(context.Background(), level, msg)
	return len(p), nil
}
