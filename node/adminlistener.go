package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/switchboard-gw/switchboard/internal/certfile"
)

// AdminListener moves the admin API (and /healthz, /readyz) off the main
// listener onto an address of its own, e.g. 127.0.0.1:9090 or a private
// network's, so it never faces the internet. The zero value keeps the
// admin API on the main listener.
type AdminListener struct {
	// Listen is the TCP address. Empty means no separate listener.
	Listen string
	// CertFile and KeyFile serve it over TLS, reloaded when they change.
	// Empty means the main listener's certificate when TLS is on there,
	// else plain HTTP.
	CertFile, KeyFile string
	// ClientCAFile requires every client of the listener to present a
	// certificate signed by one of these CAs (mutual TLS), on top of the
	// admin key. It needs a certificate for the listener. Empty means no
	// client certificate is asked for.
	ClientCAFile string
}

// adminServer is the running admin listener.
type adminServer struct {
	ln  net.Listener
	srv *http.Server
}

// listenAdmin binds the admin listener and loads its TLS files, before the
// store is opened, like the main listener. It returns nil without a
// listener configured.
func (n *Node) listenAdmin(mainTLS *tls.Config) (*adminServer, error) {
	a := n.cfg.Admin
	if a.Listen == "" {
		if a.CertFile != "" || a.KeyFile != "" || a.ClientCAFile != "" {
			return nil, errors.New("node: an admin certificate or client CA needs an admin listener address")
		}
		return nil, nil
	}
	var tc *tls.Config
	switch {
	case a.CertFile != "" || a.KeyFile != "":
		r, err := certfile.New(a.CertFile, a.KeyFile, n.log)
		if err != nil {
			return nil, fmt.Errorf("node: admin listener certificate: %w", err)
		}
		tc = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
	case mainTLS != nil:
		tc = mainTLS.Clone()
	}
	if a.ClientCAFile != "" {
		if tc == nil {
			return nil, errors.New("node: mutual TLS on the admin listener needs a certificate for it (admin or main listener's)")
		}
		pool, err := certfile.Pool(a.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("node: admin listener client CA: %w", err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	ln, err := net.Listen("tcp", a.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: admin listener on %s: %w", a.Listen, err)
	}
	return &adminServer{ln: ln, srv: &http.Server{TLSConfig: tc}}, nil
}

// start serves h on the admin listener with the main server's timeouts.
func (a *adminServer) start(n *Node, h http.Handler) {
	srv := n.cfg.HTTP.server(h)
	srv.TLSConfig, srv.ErrorLog = a.srv.TLSConfig, httpErrorLog(n.log)
	a.srv = srv
	go func() {
		if err := serve(srv, a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("admin listener stopped", "err", err)
		}
	}()
}

// close stops the listener, waiting for requests within ctx; it releases
// the port when Start failed before start.
func (a *adminServer) close(ctx context.Context) error {
	if a == nil {
		return nil
	}
	if err := a.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("node: admin listener shutdown: %w", err)
	}
	a.ln.Close() // Shutdown closed it if it was serving
	return nil
}

// AdminAddr is the admin listener's address, nil without one.
func (n *Node) AdminAddr() net.Addr {
	if n.admin == nil {
		return nil
	}
	return n.admin.ln.Addr()
}
