package delivery

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func prefixes(t *testing.T, list ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(list))
	for i, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

func TestAddressPolicyCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		allow, deny []string
		addr        string
		wantRule    string // "" = allowed
	}{
		{name: "loopback allowed by default", addr: "127.0.0.1"},
		{name: "IPv6 loopback allowed by default", addr: "::1"},
		{name: "private allowed by default", addr: "10.1.2.3"},
		{name: "metadata refused", addr: "169.254.169.254", wantRule: "deny 169.254.0.0/16 (built-in"},
		{name: "metadata as IPv4-mapped IPv6 refused", addr: "::ffff:169.254.169.254", wantRule: "deny 169.254.0.0/16"},
		{name: "AWS IPv6 metadata refused", addr: "fd00:ec2::254", wantRule: "deny fd00:ec2::254/128"},
		{name: "IPv6 link-local refused", addr: "fe80::1", wantRule: "deny fe80::/10"},
		{name: "zoned link-local refused", addr: "fe80::1%eth0", wantRule: "deny fe80::/10"},
		{name: "unspecified refused", addr: "0.0.0.0", wantRule: "deny 0.0.0.0/8"},
		{name: "IPv6 unspecified refused", addr: "::", wantRule: "deny ::/128"},
		{name: "a narrower allow opens part of a built-in refusal", allow: []string{"169.254.10.0/24"}, addr: "169.254.10.7"},
		{name: "the rest of the built-in refusal stays", allow: []string{"169.254.10.0/24"}, addr: "169.254.169.254", wantRule: "deny 169.254.0.0/16"},
		{name: "an equal allow loses to the built-in deny", allow: []string{"169.254.0.0/16"}, addr: "169.254.169.254", wantRule: "built-in"},
		{name: "deny", deny: []string{"10.0.0.0/8"}, addr: "10.9.9.9", wantRule: "deny 10.0.0.0/8 (--upstream-deny)"},
		{name: "a narrower allow inside a deny", deny: []string{"10.0.0.0/8"}, allow: []string{"10.1.0.0/16"}, addr: "10.1.0.5"},
		{name: "a narrower deny inside an allow", allow: []string{"10.0.0.0/8"}, deny: []string{"10.1.2.3"}, addr: "10.1.2.3", wantRule: "deny 10.1.2.3/32"},
		{name: "tie: deny wins", allow: []string{"10.0.0.0/8"}, deny: []string{"10.0.0.0/8"}, addr: "10.0.0.1", wantRule: "deny 10.0.0.0/8"},
		{name: "allow list: in it", deny: []string{"0.0.0.0/0", "::/0"}, allow: []string{"10.1.0.0/16"}, addr: "10.1.2.3"},
		{name: "allow list: outside it", deny: []string{"0.0.0.0/0", "::/0"}, allow: []string{"10.1.0.0/16"}, addr: "127.0.0.1", wantRule: "deny 0.0.0.0/0"},
		{name: "allow list: IPv6 outside it", deny: []string{"0.0.0.0/0", "::/0"}, allow: []string{"10.1.0.0/16"}, addr: "::1", wantRule: "deny ::/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := AddressPolicy{Allow: prefixes(t, tt.allow...), Deny: prefixes(t, tt.deny...)}
			err := p.Check(netip.MustParseAddr(tt.addr))
			switch {
			case tt.wantRule == "" && err != nil:
				t.Errorf("Check(%s) = %v, want allowed", tt.addr, err)
			case tt.wantRule != "" && (!errors.Is(err, ErrAddressRefused) || !strings.Contains(err.Error(), tt.wantRule)):
				t.Errorf("Check(%s) = %v, want refused by %q", tt.addr, err, tt.wantRule)
			}
		})
	}
}

func TestParsePrefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"10.0.0.0/8": "10.0.0.0/8", "10.1.2.3/8": "10.0.0.0/8", "10.1.2.3": "10.1.2.3/32",
		"fd00::/8": "fd00::/8", "::1": "::1/128", " 192.168.0.0/16 ": "192.168.0.0/16",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "example.com", "10.0.0.0/33", "fe80::1%eth0", "10.0.0"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", bad)
		}
	}
}

// hostsResolver is the test's DNS: a table it can change, as a real DNS
// record changes between registration and delivery.
type hostsResolver struct {
	mu    sync.Mutex
	hosts map[string][]netip.Addr
}

func (r *hostsResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hosts == nil {
		r.hosts = map[string][]netip.Addr{}
	}
	r.hosts[host] = nil
	for _, a := range addrs {
		r.hosts[host] = append(r.hosts[host], netip.MustParseAddr(a))
	}
}

func (r *hostsResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestDialChecksEveryConnection: the dispatcher's client resolves the host
// on each dial and refuses an address the policy denies, so a name that
// passed registration and later resolves elsewhere reaches nothing there.
// Addresses the policy allows among several are still used.
func TestDialChecksEveryConnection(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WebHook-Allowed-Origin", "*")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	res := &hostsResolver{}
	res.set("fn.test", "127.0.0.1")
	d := startDispatcher(t, DispatcherConfig{Addresses: AddressPolicy{Deny: prefixes(t, "127.0.0.2"), Resolver: res}})
	url := "http://fn.test:" + itoa(port) + "/hook"
	if err := d.CheckAddress(t.Context(), "chat", url); err != nil {
		t.Fatalf("CheckAddress: %v", err)
	}
	if err := d.CheckRegistration(t.Context(), "chat", url); err != nil {
		t.Fatalf("CheckRegistration: %v", err)
	}

	res.set("fn.test", "127.0.0.2")
	d.cfg.Client.CloseIdleConnections() // a new dial, as after the upstream closed its connection
	err := d.CheckRegistration(t.Context(), "chat", url)
	if !errors.Is(err, ErrAddressRefused) || !strings.Contains(err.Error(), "deny 127.0.0.2/32") {
		t.Errorf("after the name moved to a denied address: %v, want refused by deny 127.0.0.2/32", err)
	}
	if err := d.CheckAddress(t.Context(), "chat", url); !errors.Is(err, ErrAddressRefused) {
		t.Errorf("CheckAddress after the move: %v, want refused", err)
	}

	// One denied address among allowed ones: the allowed one is dialled.
	res.set("fn.test", "127.0.0.2", "127.0.0.1")
	d.cfg.Client.CloseIdleConnections()
	if err := d.CheckRegistration(t.Context(), "chat", url); err != nil {
		t.Errorf("with an allowed address left: %v", err)
	}
	// ...but registration refuses a name that resolves to any denied one.
	if err := d.CheckAddress(t.Context(), "chat", url); !errors.Is(err, ErrAddressRefused) {
		t.Errorf("CheckAddress with one denied address: %v, want refused", err)
	}
}

func TestCheckAddressMetadata(t *testing.T) {
	t.Parallel()
	d := startDispatcher(t, DispatcherConfig{})
	for _, url := range []string{"http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://[fe80::1%25eth0]:8080/"} {
		if err := d.CheckAddress(t.Context(), "chat", url); !errors.Is(err, ErrAddressRefused) {
			t.Errorf("CheckAddress(%s) = %v, want refused", url, err)
		}
	}
	for _, url := range []string{"http://127.0.0.1:9/", "http://localhost:9/x", "http://not-resolvable.invalid/"} {
		if err := d.CheckAddress(t.Context(), "chat", url); err != nil {
			t.Errorf("CheckAddress(%s) = %v, want allowed", url, err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestRefusedDialLeavesTheBreaker: a dial the address policy refuses is the
// gateway's configuration, not the upstream's health: however many calls
// meet it, the breaker stays closed.
func TestRefusedDialLeavesTheBreaker(t *testing.T) {
	t.Parallel()
	res := &hostsResolver{}
	res.set("fn.test", "127.0.0.2")
	d := startDispatcher(t, DispatcherConfig{Addresses: AddressPolicy{Deny: prefixes(t, "127.0.0.2"), Resolver: res},
		Breaker: BreakerConfig{ConsecutiveFailures: 1}})
	f, _ := ParseFilter([]string{"message:*"})
	d.SetTargets([]Target{{Hub: "chat", Name: "fn", URLTemplate: "http://fn.test:9/hook", Filter: f, Secrets: []string{testSecret}}})
	for i := range 5 {
		_, err := d.Call(t.Context(), message("c1", "x"))
		if err == nil || errors.Is(err, ErrCircuitOpen) || !strings.Contains(err.Error(), "address policy") {
			t.Fatalf("call %d: %v, want a refused dial and the breaker closed", i, err)
		}
	}
	if st := d.Status().Upstreams[0].Breaker.State; st != BreakerClosed {
		t.Errorf("breaker %s after refused dials, want closed", st)
	}
}
