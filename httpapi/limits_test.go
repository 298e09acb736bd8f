package httpapi

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// TestSourceKeys: per-address limits count an IPv4 address alone and an
// IPv6 address by its /64, and skip the exempt networks (loopback unless
// configured).
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
		{"IPv4", def, "203.0.113.7:5000", "203.0.113.7/32"},
		{"IPv4-mapped IPv6", def, "[::ffff:203.0.113.7]:5000", "203.0.113.7/32"},
		{"IPv6 by /64", def, "[2001:db8:1:2:aaaa::1]:5000", "2001:db8:1:2::/64"},
		{"loopback exempt by default", def, "127.0.0.1:5000", ""},
		{"IPv6 loopback exempt by default", def, "[::1]:5000", ""},
		{"loopback counted when nothing is exempt", none, "127.0.0.1:5000", "127.0.0.1/32"},
		{"unreadable", def, "pipe", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, ok := tt.l.source(&http.Request{RemoteAddr: tt.remote})
			got := ""
			if ok {
				got = p.String()
			}
			if got != tt.want {
				t.Errorf("source(%s) = %q, want %q", tt.remote, got, tt.want)
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
		if wait := r.take(addr(i), t0); wait != 0 {
			t.Fatalf("first request of address %d waits %s", i, wait)
		}
	}
	if wait := r.take(addr(0), t0); wait <= 0 {
		t.Fatalf("second request within the burst's refill was allowed")
	}
	if n := r.size(); n != 3*sweepSize {
		t.Fatalf("%d buckets, want %d (none full yet)", n, 3*sweepSize)
	}
	// A second later every bucket is full again: the next new address
	// sweeps them away.
	if wait := r.take(addr(3*sweepSize), t0.Add(time.Second)); wait != 0 {
		t.Fatalf("new address waits %s", wait)
	}
	if n := r.size(); n != 1 {
		t.Errorf("%d buckets after the sweep, want 1", n)
	}
}
