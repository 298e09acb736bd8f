package certfile

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader serves a certificate from a certificate and a key file, loading
// them again when they change.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger

	// loaded is the certificate in use and the file stamps it came from.
	loaded atomic.Pointer[loaded]
	// mu serialises reloads, so a burst of handshakes after a replacement
	// reads the files once; failed remembers the stamps of the last pair
	// that did not load, so it is logged once.
	mu     sync.Mutex // guards failed
	failed stamps
}

type loaded struct {
	cert   *tls.Certificate
	stamps stamps
}

// stamps identify one version of the two files: what changes when a file
// is rewritten or replaced. Stat follows symbolic links, so a link switched
// to a new file (certbot, Kubernetes secrets) counts as a replacement; the
// file's identity (device and inode) catches a replacement by rename even
// within the file system's timestamp granularity.
type stamps struct{ cert, key os.FileInfo }

func (s stamps) same(o stamps) bool { return sameFile(s.cert, o.cert) && sameFile(s.key, o.key) }

func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// New loads certFile and keyFile (PEM; the certificate file may hold the
// chain after the leaf). log receives reloads and failed reloads; nil
// means slog.Default().
func New(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("certfile: a certificate needs both a certificate file and a key file")
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log}
	st, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.loaded.Store(&loaded{cert: cert, stamps: st})
	return r, nil
}

// Certificate returns the current certificate, loading the files again
// first if they changed since.
func (r *Reloader) Certificate() *tls.Certificate {
	cur := r.loaded.Load()
	st, err := r.stat()
	if err != nil || st.same(cur.stamps) {
		// A file that vanished for a moment (being replaced) keeps the
		// certificate in use; the next handshake looks again.
		return cur.cert
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur = r.loaded.Load(); st.same(cur.stamps) || st.same(r.failed) {
		return cur.cert
	}
	cert, err := r.load()
	if err != nil {
		r.failed = st
		r.log.Error("TLS certificate files changed but do not load; the previous certificate stays in use until they do",
			"cert", r.certFile, "key", r.keyFile, "err", err)
		return cur.cert
	}
	r.loaded.Store(&loaded{cert: cert, stamps: st})
	r.log.Info("TLS certificate reloaded", "cert", r.certFile, "subject", cert.Leaf.Subject.String(),
		"notAfter", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return cert
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate: the
// certificate a client presents to a server that asks for one (mTLS).
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

func (r *Reloader) stat() (stamps, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return stamps{}, fmt.Errorf("certfile: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return stamps{}, fmt.Errorf("certfile: %w", err)
	}
	return stamps{cert: c, key: k}, nil
}

func (r *Reloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("certfile: load %s and %s: %w", r.certFile, r.keyFile, err)
	}
	return &cert, nil // LoadX509KeyPair fills Leaf since Go 1.23
}

// Pool reads the PEM certificates of caFile into a pool.
func Pool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("certfile: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("certfile: CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// Client names the files of a TLS client: the CAs it trusts, and the
// certificate it presents to servers that ask for one. The zero value
// trusts the system's roots and presents no certificate.
type Client struct {
	// CAFile is a PEM bundle of the CAs that sign the servers'
	// certificates. Empty means the system's roots.
	CAFile string
	// CertFile and KeyFile are the client certificate (mTLS), reloaded
	// when they change. Empty means none.
	CertFile, KeyFile string
}

// IsZero reports whether c names no file.
func (c Client) IsZero() bool { return c == Client{} }

// ClientConfig builds the tls.Config of a client from c: TLS 1.2 or newer,
// servers verified against c.CAFile or the system's roots. log receives
// the client certificate's reloads.
func ClientConfig(c Client, log *slog.Logger) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pool, err := Pool(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		r, err := New(c.CertFile, c.KeyFile, log)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = r.GetClientCertificate
	}
	return cfg, nil
}
