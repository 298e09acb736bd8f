package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ProxyHeaders is the family of forwarding headers trusted proxies write.
type ProxyHeaders string

const (
	// ProxyXForwarded: X-Forwarded-For, -Proto and -Host, which nginx,
	// HAProxy, Caddy, Traefik and the cloud load balancers write.
	ProxyXForwarded ProxyHeaders = "x-forwarded"
	// ProxyForwarded: RFC 7239's Forwarded (for=, proto=, host=).
	ProxyForwarded ProxyHeaders = "forwarded"
)

// ParseProxyHeaders reads a ProxyHeaders name; "" is ProxyXForwarded.
func ParseProxyHeaders(name string) (ProxyHeaders, error) {
	switch p := ProxyHeaders(strings.ToLower(name)); p {
	case "", ProxyXForwarded:
		return ProxyXForwarded, nil
	case ProxyForwarded:
		return p, nil
	}
	return "", fmt.Errorf("unknown proxy headers %q: want %q or %q", name, ProxyXForwarded, ProxyForwarded)
}

// forwardedKey marks a request whose original scheme a trusted proxy said
// was https.
type forwardedKey struct{}

// fromProxy applies what a trusted proxy says about the request: the
// client's address (Forwarded for=, X-Forwarded-For), the scheme it used
// (Forwarded proto=, X-Forwarded-Proto) and the host it asked for
// (Forwarded host=, X-Forwarded-Host), from the one family of headers the
// proxies write (Config.ProxyHeaders). A proxy appends to its own family
// and passes the other through untouched, so that one is the client's. The address then counts for the
// per-address limits and the scheme for the URLs the gateway hands out
// (negotiate, tokens' audience, Origin checks). From any other peer these
// headers mean nothing: a client cannot claim https, or another address,
// by sending them itself. With no trusted proxies r is returned as is.
func (s *Server) fromProxy(r *http.Request) *http.Request {
	if len(s.cfg.TrustedProxies) == 0 {
		return r
	}
	peer, ok := remoteAddr(r)
	if !ok || !s.trusted(peer) {
		return r
	}
	hops, protos, hosts := forwardedHops(r.Header, s.cfg.ProxyHeaders)
	if len(hops) == 0 && len(protos) == 0 && len(hosts) == 0 {
		return r
	}
	// Walk from the nearest hop back: each trusted proxy appended the
	// address it got the request from; the first untrusted one is the
	// client. Entries left of it are the client's own claims.
	i := len(hops) - 1
	for ; i > 0; i-- {
		if a, ok := hops[i].addr(); !ok || !s.trusted(a) {
			break
		}
	}
	var proto, host string
	client := peer
	if i >= 0 {
		if a, ok := hops[i].addr(); ok {
			client = a
		}
	}
	// The scheme and host the client used are those its own hop recorded;
	// a proxy that overwrites rather than appends leaves just one.
	proto, host = pick(protos, i, len(hops)), pick(hosts, i, len(hops))
	ctx := r.Context()
	if strings.EqualFold(proto, "https") || strings.EqualFold(proto, "wss") {
		ctx = context.WithValue(ctx, forwardedKey{}, true)
	}
	r = r.WithContext(ctx) // a shallow copy: the caller's request stays as it was
	r.RemoteAddr = netip.AddrPortFrom(client, 0).String()
	if validHost(host) {
		r.Host = host
	}
	return r
}

// pick is the value of list that belongs to hop i of n: the same index when
// the lists line up, else the last (the nearest proxy's).
func pick(list []string, i, n int) string {
	switch {
	case len(list) == 0:
		return ""
	case len(list) == n && i >= 0:
		return list[i]
	}
	return list[len(list)-1]
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedScheme reports whether a trusted proxy said the client used
// https.
func forwardedHTTPS(r *http.Request) bool {
	v, _ := r.Context().Value(forwardedKey{}).(bool)
	return v
}

// remoteAddr is the peer's address of r, without zone and IPv4-mapped
// prefix.
func remoteAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap().WithZone(""), true
}

// hop is one node's address as a proxy recorded it.
type hop string

// addr parses a hop: an IP address, optionally in brackets or quotes with
// a port ("[2001:db8::1]:4711", "192.0.2.1:80"); obfuscated identifiers
// and "unknown" are no address.
func (h hop) addr() (netip.Addr, bool) {
	v := strings.Trim(strings.TrimSpace(string(h)), `"`)
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// maxHops bounds how many entries of a forwarding header are read.
const maxHops = 32

// forwardedHops reads the hops, schemes and hosts a chain of proxies
// recorded, oldest first: from Forwarded (RFC 7239) for ProxyForwarded,
// else from X-Forwarded-For, -Proto and -Host.
func forwardedHops(h http.Header, family ProxyHeaders) (hops []hop, protos, hosts []string) {
	if family == ProxyForwarded {
		for _, line := range h.Values("Forwarded") {
			for _, elem := range strings.Split(line, ",") {
				if len(hops) == maxHops {
					return hops, protos, hosts
				}
				var f, p, ho string
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if !ok {
						continue
					}
					v = strings.Trim(v, `"`)
					switch strings.ToLower(k) {
					case "for":
						f = v
					case "proto":
						p = v
					case "host":
						ho = v
					}
				}
				hops, protos, hosts = append(hops, hop(f)), append(protos, p), append(hosts, ho)
			}
		}
		return hops, protos, hosts
	}
	for _, v := range list(h.Values("X-Forwarded-For")) {
		hops = append(hops, hop(v))
	}
	return hops, list(h.Values("X-Forwarded-Proto")), list(h.Values("X-Forwarded-Host"))
}

// list splits comma-separated header values, at most maxHops of them.
func list(values []string) []string {
	var out []string
	for _, line := range values {
		for _, v := range strings.Split(line, ",") {
			if len(out) == maxHops {
				return out
			}
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// validHost accepts a host or host:port as a proxy may forward it: a DNS
// name or IP address of printable characters, nothing that could change a
// URL's meaning built from it.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}
