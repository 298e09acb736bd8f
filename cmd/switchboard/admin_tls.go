package main

import (
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/pflag"

	"github.com/switchboard-gw/switchboard/internal/certfile"
)

// registerTLS adds the flags with which the admin CLI trusts a gateway's
// certificate and presents its own, for an admin listener with mutual TLS
// (serve --admin-client-ca).
func (a *adminClient) registerTLS(fl *pflag.FlagSet) {
	fl.StringVar(&a.tls.CAFile, "server-ca", "", "verify the gateway's certificate against the CAs in this PEM file (default $SWITCHBOARD_SERVER_CA, else the system's roots)")
	fl.StringVar(&a.tls.CertFile, "client-cert", "", "client certificate (PEM) for a gateway whose admin listener requires one (default $SWITCHBOARD_CLIENT_CERT)")
	fl.StringVar(&a.tls.KeyFile, "client-key", "", "private key of --client-cert (PEM; default $SWITCHBOARD_CLIENT_KEY)")
}

// httpClient is the client the admin commands call the gateway with.
func (a *adminClient) httpClient() (*http.Client, error) {
	c := a.tls
	if c.CAFile == "" {
		c.CAFile = env("SERVER_CA", "")
	}
	if c.CertFile == "" {
		c.CertFile = env("CLIENT_CERT", "")
	}
	if c.KeyFile == "" {
		c.KeyFile = env("CLIENT_KEY", "")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if c.IsZero() {
		return client, nil
	}
	cfg, err := certfile.ClientConfig(c, nil)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	client.Transport = tr
	return client, nil
}

// tlsHint completes the error of a request to an https gateway that got
// no answer: an admin listener requiring a client certificate may drop the
// connection before the CLI reads its TLS alert, so the error itself does
// not always say so.
func (a *adminClient) tlsHint(u *url.URL) string {
	if u.Scheme != "https" || a.tls.CertFile != "" || env("CLIENT_CERT", "") != "" {
		return ""
	}
	return ".\nIf the gateway's admin listener requires a client certificate (serve --admin-client-ca), " +
		"pass yours with --client-cert and --client-key"
}
