package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestFromProxy(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	xff := &Server{cfg: Config{TrustedProxies: proxies}} // the default family
	rfc := &Server{cfg: Config{TrustedProxies: proxies, ProxyHeaders: ProxyForwarded}}
	for _, tc := range []struct {
		name      string
		rfc7239   bool // the proxies write Forwarded
		peer      string
		header    http.Header
		wantAddr  string
		wantHTTPS bool
		wantHost  string
		wantBase  string
	}{
		{name: "untrusted peer: headers ignored", peer: "192.0.2.7:5555",
			header:   http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Host": {"evil.example"}},
			wantAddr: "192.0.2.7:5555", wantHost: "gw.example", wantBase: "http://gw.example"},
		{name: "untrusted peer: Forwarded ignored", peer: "192.0.2.7:5555",
			header:   http.Header{"Forwarded": {"for=198.51.100.1;proto=https"}},
			wantAddr: "192.0.2.7:5555", wantHost: "gw.example", wantBase: "http://gw.example"},
		{name: "trusted proxy: X-Forwarded-*", peer: "10.1.2.3:4000",
			header:   http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Host": {"chat.example"}},
			wantAddr: "198.51.100.1:0", wantHTTPS: true, wantHost: "chat.example", wantBase: "https://chat.example"},
		{name: "trusted proxy: Forwarded with IPv6 and port", rfc7239: true, peer: "10.1.2.3:4000",
			header:   http.Header{"Forwarded": {`for="[2001:db8::7]:4711";proto=https;host=chat.example`}},
			wantAddr: "[2001:db8::7]:0", wantHTTPS: true, wantHost: "chat.example", wantBase: "https://chat.example"},
		{name: "client's own claim left of the proxy's entry is skipped", peer: "10.1.2.3:4000",
			header:   http.Header{"X-Forwarded-For": {"203.0.113.9, 198.51.100.1"}, "X-Forwarded-Proto": {"https, http"}},
			wantAddr: "198.51.100.1:0", wantHost: "gw.example", wantBase: "http://gw.example"},
		{name: "chain of trusted proxies", peer: "10.1.2.3:4000",
			header:   http.Header{"X-Forwarded-For": {"198.51.100.1, 10.9.9.9"}, "X-Forwarded-Proto": {"https"}},
			wantAddr: "198.51.100.1:0", wantHTTPS: true, wantHost: "gw.example", wantBase: "https://gw.example"},
		{name: "garbage from a trusted proxy keeps the peer", peer: "10.1.2.3:4000",
			header:   http.Header{"X-Forwarded-For": {"not-an-address"}, "X-Forwarded-Host": {"evil.example/path?"}},
			wantAddr: "10.1.2.3:0", wantHost: "gw.example", wantBase: "http://gw.example"},
		{name: "obfuscated Forwarded node keeps the peer", rfc7239: true, peer: "10.1.2.3:4000",
			header:   http.Header{"Forwarded": {"for=_hidden;proto=https"}},
			wantAddr: "10.1.2.3:0", wantHTTPS: true, wantHost: "gw.example", wantBase: "https://gw.example"},
		// A proxy appends to its own family of headers and passes the other
		// through as the client sent it: that one is the client's claim.
		{name: "X-Forwarded-For proxy: the client's Forwarded is ignored", peer: "10.1.2.3:4000",
			header:   http.Header{"Forwarded": {"for=127.0.0.1;proto=https;host=evil.example"}, "X-Forwarded-For": {"198.51.100.1"}},
			wantAddr: "198.51.100.1:0", wantHost: "gw.example", wantBase: "http://gw.example"},
		{name: "X-Forwarded-For proxy: a Forwarded alone is ignored", peer: "10.1.2.3:4000",
			header:   http.Header{"Forwarded": {"for=198.51.100.77;proto=https"}},
			wantAddr: "10.1.2.3:4000", wantHost: "gw.example", wantBase: "http://gw.example"},
		{name: "Forwarded proxy: the client's X-Forwarded-* are ignored", rfc7239: true, peer: "10.1.2.3:4000",
			header:   http.Header{"Forwarded": {"for=198.51.100.1"}, "X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"https"}},
			wantAddr: "198.51.100.1:0", wantHost: "gw.example", wantBase: "http://gw.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "http://gw.example/client/negotiate", nil)
			r.RemoteAddr, r.Header = tc.peer, tc.header
			s := xff
			if tc.rfc7239 {
				s = rfc
			}
			got := s.fromProxy(r)
			if got.RemoteAddr != tc.wantAddr {
				t.Errorf("RemoteAddr %q, want %q", got.RemoteAddr, tc.wantAddr)
			}
			if forwardedHTTPS(got) != tc.wantHTTPS {
				t.Errorf("https %v, want %v", forwardedHTTPS(got), tc.wantHTTPS)
			}
			if got.Host != tc.wantHost {
				t.Errorf("Host %q, want %q", got.Host, tc.wantHost)
			}
			if b := baseURL(got); b != tc.wantBase {
				t.Errorf("baseURL %q, want %q", b, tc.wantBase)
			}
			if r.RemoteAddr != tc.peer || r.Host != "gw.example" {
				t.Errorf("the caller's request changed: %q %q", r.RemoteAddr, r.Host)
			}
		})
	}
}

// Without trusted proxies nobody's forwarding headers count, not even
// loopback's: X-Forwarded-Proto used to be believed from anyone.
func TestFromProxyTrustsNobodyByDefault(t *testing.T) {
	t.Parallel()
	s := &Server{}
	r := httptest.NewRequest(http.MethodGet, "http://gw.example/client/negotiate", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	got := s.fromProxy(r)
	if b := baseURL(got); b != "http://gw.example" || got.RemoteAddr != "127.0.0.1:5000" {
		t.Errorf("baseURL %q, RemoteAddr %q; want http://gw.example and the peer", b, got.RemoteAddr)
	}
}

func FuzzFromProxy(f *testing.F) {
	f.Add("for=198.51.100.1;proto=https;host=a.example", "203.0.113.9, 10.0.0.1", "https", "a.example", false)
	f.Add(`for="[2001:db8::1]:80", for=unknown`, "", "", "", true)
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, fw, xff, proto, host string, rfc7239 bool) {
		s := &Server{cfg: Config{TrustedProxies: proxies}}
		if rfc7239 {
			s.cfg.ProxyHeaders = ProxyForwarded
		}
		r := httptest.NewRequest(http.MethodGet, "http://gw.example/", nil)
		r.RemoteAddr = "10.0.0.1:1"
		r.Header = http.Header{"Forwarded": {fw}, "X-Forwarded-For": {xff}, "X-Forwarded-Proto": {proto}, "X-Forwarded-Host": {host}}
		got := s.fromProxy(r)
		if _, err := netip.ParseAddrPort(got.RemoteAddr); err != nil {
			t.Fatalf("RemoteAddr %q does not parse: %v", got.RemoteAddr, err)
		}
		if got.Host != "gw.example" && !validHost(got.Host) {
			t.Fatalf("Host %q taken from a header without validation", got.Host)
		}
	})
}

func TestParseProxyHeaders(t *testing.T) {
	for in, want := range map[string]ProxyHeaders{"": ProxyXForwarded, "x-forwarded": ProxyXForwarded, "Forwarded": ProxyForwarded} {
		if got, err := ParseProxyHeaders(in); err != nil || got != want {
			t.Errorf("ParseProxyHeaders(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseProxyHeaders("x-real-ip"); err == nil {
		t.Error(`ParseProxyHeaders("x-real-ip") accepted`)
	}
}
