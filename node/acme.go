package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/switchboard-gw/switchboard/internal/certfile"
)

// ACME has the main listener get its certificates from an ACME CA (Let's
// Encrypt by default) with golang.org/x/crypto/acme/autocert: ordered on
// the first handshake for a host, cached on disk, renewed before they
// expire, all without a restart. The challenge is TLS-ALPN-01, answered
// on the main listener, so the CA must reach the gateway on port 443 of
// each host name.
type ACME struct {
	// Hosts are the host names certificates are ordered for; a handshake
	// for any other name (or none: clients must connect by name) fails.
	// Required.
	Hosts []string
	// DirectoryURL is the ACME directory. Empty means Let's Encrypt's
	// production directory.
	DirectoryURL string
	// CAFile is a PEM bundle the ACME server's own HTTPS certificate is
	// verified against, for a private ACME server. Empty means the
	// system's roots.
	CAFile string
	// Email is given to the CA as the account's contact, for expiry
	// notices. Empty means none.
	Email string
	// CacheDir keeps the account key and the certificates, so a restart
	// reuses them instead of ordering again. Empty means DBPath + ".acme".
	// In a cluster they are also kept in a JetStream KV bucket the nodes
	// share, so one node's order serves every node.
	CacheDir string
}

// acmeTLS builds the listener's TLS configuration from n.cfg.TLS.ACME.
func (n *Node) acmeTLS() (*tls.Config, error) {
	a := n.cfg.TLS.ACME
	if len(a.Hosts) == 0 {
		return nil, errors.New("node: ACME needs at least one host name to order certificates for")
	}
	for _, h := range a.Hosts {
		if h == "" || strings.ContainsAny(h, "/:@ *") {
			return nil, fmt.Errorf("node: ACME host %q: give a DNS name such as gw.example.com", h)
		}
	}
	dir := a.CacheDir
	if dir == "" {
		dir = n.cfg.DBPath + ".acme"
	}
	client := &acme.Client{DirectoryURL: a.DirectoryURL}
	if client.DirectoryURL == "" {
		client.DirectoryURL = acme.LetsEncryptURL
	}
	if a.CAFile != "" {
		pool, err := certfile.Pool(a.CAFile)
		if err != nil {
			return nil, fmt.Errorf("node: ACME server CA: %w", err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		client.HTTPClient = &http.Client{Transport: tr}
	}
	n.acme = &acmeCache{disk: autocert.DirCache(dir)}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(a.Hosts...),
		Cache:      n.acme,
		Email:      a.Email,
		Client:     client,
	}
	tc := m.TLSConfig() // GetCertificate, and "acme-tls/1" for the challenge
	tc.MinVersion = tls.VersionTLS12
	return tc, nil
}

// on reports whether ACME is configured.
func (a ACME) on() bool { return len(a.Hosts) > 0 || a.DirectoryURL != "" || a.CAFile != "" }
