package delivery

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// UpstreamTLS says how the dispatcher's own client (DispatcherConfig.Client
// nil) verifies HTTPS upstreams and which certificate it presents to those
// that ask for one (mTLS).
type UpstreamTLS struct {
	// Default applies to every upstream host not in Hosts. Nil means the
	// system's roots and no client certificate.
	Default *tls.Config
	// Hosts maps an upstream's host name (as in its URL, without port) to
	// the configuration for it, e.g. the CA of an internal service. Nil
	// means none.
	Hosts map[string]*tls.Config
}

// transport is tr with u applied: one transport per configured host (each
// keeps its own connection pool), tr for the rest.
func (u UpstreamTLS) transport(tr *http.Transport) http.RoundTripper {
	if u.Default != nil {
		tr.TLSClientConfig = u.Default.Clone()
	}
	if len(u.Hosts) == 0 {
		return tr
	}
	ht := hostTransports{def: tr, hosts: make(map[string]*http.Transport, len(u.Hosts))}
	for h, c := range u.Hosts {
		t := tr.Clone()
		t.TLSClientConfig = c.Clone()
		ht.hosts[strings.ToLower(h)] = t
	}
	return ht
}

// hostTransports picks a request's transport by its URL's host name.
type hostTransports struct {
	def   *http.Transport
	hosts map[string]*http.Transport
}

func (h hostTransports) RoundTrip(r *http.Request) (*http.Response, error) {
	if t, ok := h.hosts[strings.ToLower(r.URL.Hostname())]; ok {
		return t.RoundTrip(r)
	}
	return h.def.RoundTrip(r)
}

// tlsReason says in words an operator can act on why a TLS handshake with
// an upstream failed, or "" when err is no TLS failure.
func tlsReason(err error) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	var op *net.OpError
	var remote tls.RecordHeaderError
	switch {
	case errors.As(err, &unknown):
		return fmt.Sprintf("its TLS certificate (%s) is signed by an unknown authority: give the gateway the CA that signs it (--upstream-ca, or --upstream-host-ca for this host)",
			certName(unknown.Cert))
	case errors.As(err, &host):
		return fmt.Sprintf("its TLS certificate is not valid for the host in the URL: %v", host)
	case errors.As(err, &invalid):
		return fmt.Sprintf("its TLS certificate is invalid: %v", invalid)
	case errors.As(err, &verify):
		return fmt.Sprintf("its TLS certificate failed verification: %v", verify.Err)
	case errors.As(err, &op) && op.Op == "remote error":
		// The upstream sent a TLS alert: most often an mTLS upstream that
		// got no client certificate, or one it does not trust.
		return fmt.Sprintf("it refused the TLS handshake (%v): if it requires a client certificate, give the gateway one it trusts (--upstream-cert and --upstream-key)", op.Err)
	case errors.As(err, &remote):
		return "it does not speak TLS on that port: use http:// in the URL, or the upstream's HTTPS port"
	}
	return ""
}

func certName(c *x509.Certificate) string {
	if c == nil {
		return "?"
	}
	return fmt.Sprintf("subject %q, issuer %q", c.Subject.CommonName, c.Issuer.CommonName)
}
