package e2e

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/node"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address src (Linux routes all of 127.0.0.0/8 to lo).
func clientFrom(t *testing.T, src string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitFor}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	return &http.Client{Transport: tr, Timeout: requestWait}
}

// TestTrustedProxyHeaders checks that X-Forwarded-* count only from a
// configured trusted proxy (127.0.0.2 here): the scheme they claim decides
// whether a page's https Origin is the gateway's own, and the client
// address they name is what the per-address negotiate limit counts. The
// same headers sent by a client directly (from 127.0.0.1) change neither,
// and neither does a Forwarded header the proxy passed through.
func TestTrustedProxyHeaders(t *testing.T) {
	g := startNode(t, func(c *node.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
		// One negotiate per address, refilled far slower than the test
		// runs; no network exempt, loopback included.
		c.ClientLimits = httpapi.ClientLimits{NegotiateRate: 0.0001, NegotiateBurst: 1, Exempt: []netip.Prefix{}}
	})
	g.admin(http.MethodPost, "/admin/hubs", map[string]any{"name": "proxied", "allowAnonymous": true,
		"allowedOrigins": []string{"https://elsewhere.example"}}, http.StatusCreated)
	direct, proxy := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2")

	negotiate := func(c *http.Client, header map[string]string) int {
		t.Helper()
		return negotiateVia(t, g, c, header)
	}
	page := map[string]string{"Origin": "https://gw.example", "X-Forwarded-Proto": "https"}
	with := func(h map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for k, v := range h {
			out[k] = v
		}
		return out
	}

	steps := []struct {
		name   string
		client *http.Client
		header map[string]string
		want   int
	}{
		{"a client claiming https itself is still on http, so the https page is another origin",
			direct, with(page, "X-Forwarded-For", "198.51.100.1"), http.StatusForbidden},
		{"the trusted proxy's https makes the page same-origin; the client is 198.51.100.1",
			proxy, with(page, "X-Forwarded-For", "198.51.100.1"), http.StatusOK},
		{"198.51.100.1 used its one negotiate", proxy, with(page, "X-Forwarded-For", "198.51.100.1"), http.StatusTooManyRequests},
		{"198.51.100.2 behind the same proxy has its own", proxy, with(page, "X-Forwarded-For", "198.51.100.2"), http.StatusOK},
		// The proxy writes X-Forwarded-For (the default family) and passes a
		// client's Forwarded through: naming a fresh address there is no way
		// around the limit.
		{"a client's Forwarded passed through by the proxy does not count", proxy,
			with(with(page, "X-Forwarded-For", "198.51.100.1"), "Forwarded", `for=198.51.100.3;proto=https;host=gw.example`), http.StatusTooManyRequests},
		{"a direct client uses 127.0.0.1's negotiate", direct, map[string]string{"X-Forwarded-For": "198.51.100.4"}, http.StatusOK},
		{"a forged X-Forwarded-For does not make a direct client someone else",
			direct, map[string]string{"X-Forwarded-For": "198.51.100.5"}, http.StatusTooManyRequests},
	}
	for _, s := range steps {
		if got := negotiate(s.client, s.header); got != s.want {
			t.Errorf("%s: status %d, want %d", s.name, got, s.want)
		}
	}
}

// negotiateVia negotiates for hub proxied through client c (a client bound
// to one loopback address, standing for a proxy or a direct client) with
// header, and returns the status.
func negotiateVia(t *testing.T, g *gw, c *http.Client, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+"/client/negotiate?hub=proxied&negotiateVersion=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "gw.example" // the name the proxy serves the gateway under
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("%v → %d %s", header, resp.StatusCode, body)
	return resp.StatusCode
}

// TestTrustedProxyForwardedHeader: with proxies that write RFC 7239's
// Forwarded (--trusted-proxy-headers forwarded), its for= is the client,
// and X-Forwarded-For, which such a proxy passes through, is the client's
// own claim and ignored.
func TestTrustedProxyForwardedHeader(t *testing.T) {
	g := startNode(t, func(c *node.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
		c.TrustedProxyHeaders = httpapi.ProxyForwarded
		c.ClientLimits = httpapi.ClientLimits{NegotiateRate: 0.0001, NegotiateBurst: 1, Exempt: []netip.Prefix{}}
	})
	g.admin(http.MethodPost, "/admin/hubs", map[string]any{"name": "proxied", "allowAnonymous": true}, http.StatusCreated)
	proxy := clientFrom(t, "127.0.0.2")
	steps := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"198.51.100.3 named by the proxy's Forwarded", map[string]string{"Forwarded": "for=198.51.100.3"}, http.StatusOK},
		{"198.51.100.3 used its one negotiate", map[string]string{"Forwarded": "for=198.51.100.3"}, http.StatusTooManyRequests},
		{"an X-Forwarded-For passed through names nobody new", map[string]string{"Forwarded": "for=198.51.100.3", "X-Forwarded-For": "198.51.100.4"}, http.StatusTooManyRequests},
		{"198.51.100.4 named by the proxy has its own", map[string]string{"Forwarded": "for=198.51.100.4"}, http.StatusOK},
	}
	for _, s := range steps {
		if got := negotiateVia(t, g, proxy, s.header); got != s.want {
			t.Errorf("%s: status %d, want %d", s.name, got, s.want)
		}
	}
}
