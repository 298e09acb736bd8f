package httpapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestSourceKeys: per-address limits count an IPv4 address alone and an
// IPv6 address by its /64, its /56 (4 times the limit) and its /48 (16
// times), and skip the exempt networks (loopback unless configured).
func TestSourceKeys(t *testing.T) {
	t.Parallel()
	def := newClientLimits(ClientLimits{})
	none := newClientLimits(ClientLimits{Exempt: []netip.Prefix{}})
	tests := []struct {
		name   string
		l      *clientLimits
		remote string
		want   string // "" = not counted
	}{
		{"IPv4", def, "203.0.113.7:5000", "203.0.113.7/32×1"},
		{"IPv4-mapped IPv6", def, "[::ffff:203.0.113.7]:5000", "203.0.113.7/32×1"},
		{"IPv6 by /64, /56 and /48", def, "[2001:db8:1:2:aaaa::1]:5000", "2001:db8:1:2::/64×1 2001:db8:1::/56×4 2001:db8:1::/48×16"},
		{"loopback exempt by default", def, "127.0.0.1:5000", ""},
		{"IPv6 loopback exempt by default", def, "[::1]:5000", ""},
		{"loopback counted when nothing is exempt", none, "127.0.0.1:5000", "127.0.0.1/32×1"},
		{"unreadable", def, "pipe", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, ok := tt.l.source(&http.Request{RemoteAddr: tt.remote})
			var got []string
			if ok {
				keys := sourceKeysOf(a)
				for _, k := range keys.list() {
					got = append(got, fmt.Sprintf("%s×%d", k.prefix, k.times))
				}
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("source keys of %s = %q, want %q", tt.remote, g, tt.want)
			}
		})
	}
}

// TestIPv6NetworksShareLimits: the /64s of one /56 or /48 each get the
// per-address limits, but together no more than 4 or 16 times them, so a
// client holding a whole site or allocation does not get 256 or 65,536
// budgets.
func TestIPv6NetworksShareLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		differs int // the byte of the address that differs between hosts
		times   int
	}{
		{"/64s of one /56", 7, 4},
		{"/64s of one /48, each in its own /56", 6, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newClientLimits(ClientLimits{ConnectionsPerAddress: 2})
			host := func(i int) *http.Request {
				b := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 7, 15: 1} // in 2001:db8:7::/48
				b[tc.differs] = byte(i)
				return &http.Request{RemoteAddr: netip.AddrPortFrom(netip.AddrFrom16(b), 4000).String()}
			}
			opened := 0
			for i := range 100 {
				for range 2 {
					if _, err := l.openConnection(host(i), "chat", ""); err == nil {
						opened++
					}
				}
			}
			if want := tc.times * 2; opened != want {
				t.Errorf("%d connections from 100 hosts, want %d times the per-address cap of 2", opened, tc.times)
			}
			rates := newSourceRates(0.0001, 1)
			now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			allowed := 0
			for i := range 100 {
				a, _ := l.source(host(i))
				keys := sourceKeysOf(a)
				if rates.take(keys.list(), now) == 0 {
					allowed++
				}
			}
			if allowed != tc.times {
				t.Errorf("%d negotiates from 100 hosts in a burst, want %d times the burst of 1", allowed, tc.times)
			}
		})
	}
}

// TestSourceRatesStayBounded: buckets that filled up again are dropped,
// so a stream of one-off addresses does not grow the map without end.
func TestSourceRatesStayBounded(t *testing.T) {
	t.Parallel()
	r := newSourceRates(100, 1)
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	addr := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
	}
	for i := range 3 * sweepSize {
		if wait := r.take([]sourceKey{{addr(i), 1}}, t0); wait != 0 {
			t.Fatalf("first request of address %d waits %s", i, wait)
		}
	}
	if wait := r.take([]sourceKey{{addr(0), 1}}, t0); wait <= 0 {
		t.Fatalf("second request within the burst's refill was allowed")
	}
	if n := r.size(); n != 3*sweepSize {
		t.Fatalf("%d buckets, want %d (none full yet)", n, 3*sweepSize)
	}
	// A second later every bucket is full again: the next new address
	// sweeps them away.
	if wait := r.take([]sourceKey{{addr(3 * sweepSize), 1}}, t0.Add(time.Second)); wait != 0 {
		t.Fatalf("new address waits %s", wait)
	}
	if n := r.size(); n != 1 {
		t.Errorf("%d buckets after the sweep, want 1", n)
	}
}
