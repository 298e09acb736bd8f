package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// TestRegistrationRefusesMetadataAddresses: the admin API refuses upstream
// URLs at link-local and metadata addresses with a 400 naming the rule,
// skipValidation or not, and a node opens what an operator allows.
func TestRegistrationRefusesMetadataAddresses(t *testing.T) {
	t.Parallel()
	g := startNode(t)
	g.createHub("chat", true)
	for _, url := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://169.254.170.2/v2/credentials",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://[fe80::1]:8080/hook",
		"http://0.0.0.0:8080/hook",
	} {
		for _, skip := range []bool{true, false} {
			status, body := do(t, http.MethodPost, g.url+"/admin/hubs/chat/upstreams", g.node.AdminKey(),
				map[string]any{"name": "meta", "urlTemplate": url, "skipValidation": skip})
			if status != http.StatusBadRequest || !strings.Contains(string(body), "refused by the upstream address policy (rule: deny ") {
				t.Errorf("register %s (skipValidation %v): %d %s; want 400 naming the rule", url, skip, status, body)
			}
		}
	}
	// Loopback stays allowed by default (local functions, and these tests).
	g.addUpstream("chat", "local", "http://127.0.0.1:9/hook")

	// An operator opens one link-local range, and only that.
	allow, err := delivery.ParsePrefix("169.254.10.0/24")
	if err != nil {
		t.Fatal(err)
	}
	g2 := startNode(t, func(c *node.Config) { c.Delivery.Addresses.Allow = []netip.Prefix{allow} })
	g2.createHub("chat", true)
	g2.addUpstream("chat", "opened", "http://169.254.10.7/hook")
	status, body := do(t, http.MethodPost, g2.url+"/admin/hubs/chat/upstreams", g2.node.AdminKey(),
		map[string]any{"name": "meta", "urlTemplate": "http://169.254.169.254/", "skipValidation": true})
	if status != http.StatusBadRequest {
		t.Errorf("metadata address next to an opened range: %d %s, want 400", status, body)
	}
}

// switchableDNS stands in for DNS, which cannot be changed for real here:
// the one hook this test injects. Names it does not know do not resolve.
type switchableDNS struct {
	mu    sync.Mutex
	hosts map[string]netip.Addr
}

func (d *switchableDNS) set(host, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hosts[host] = netip.MustParseAddr(addr)
}

func (d *switchableDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, ok := d.hosts[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestDialTimeAddressCheck: an upstream registered under a name that
// resolved to an allowed address, whose name later resolves to a denied
// one, gets no request: the dial is refused, the client gets a completion
// error, and the upstream's delivery log says the address policy refused
// it (not a timeout or a refused connection).
func TestDialTimeAddressCheck(t *testing.T) {
	t.Parallel()
	dns := &switchableDNS{hosts: map[string]netip.Addr{}}
	deny, err := delivery.ParsePrefix("127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	g := startNode(t, func(c *node.Config) {
		c.Delivery.Addresses = delivery.AddressPolicy{Deny: []netip.Prefix{deny}, Resolver: dns}
	})
	g.createHub("chat", true)
	rec := newRecorder(t)
	rec.srv.Config.SetKeepAlivesEnabled(false) // every request dials, and so resolves, anew
	rec.setReply(func(ev *upstream.Event) (int, any) { return http.StatusOK, map[string]any{"result": "pong"} })
	port := rec.srv.Listener.Addr().(*net.TCPAddr).Port
	dns.set("fn.test", "127.0.0.1")
	secret := g.addUpstream("chat", "fn", "http://fn.test:"+strconv.Itoa(port)+"/{event}", "message:*")
	rec.mu.Lock()
	rec.secret = secret
	rec.mu.Unlock()

	c := g.dial("chat", "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if res, err := c.Invoke(ctx, "ping"); err != nil || string(res) != `"pong"` {
		t.Fatalf("invoke before the DNS change = %s, %v", res, err)
	}

	dns.set("fn.test", "127.0.0.2")
	before := len(rec.all())
	_, err = c.Invoke(ctx, "ping")
	if err == nil || !strings.Contains(err.Error(), `upstream "fn" is unreachable`) {
		t.Errorf("invoke after the DNS change: %v, want a completion error saying the upstream is unreachable", err)
	}
	if n := len(rec.all()); n != before {
		t.Errorf("the upstream got %d requests after its name moved to a denied address", n-before)
	}
	var log []delivery.Delivery
	if err := json.Unmarshal(g.admin(http.MethodGet, "/admin/hubs/chat/upstreams/fn/log", nil, http.StatusOK), &log); err != nil {
		t.Fatal(err)
	}
	if len(log) == 0 || !strings.Contains(log[0].Error, "address 127.0.0.2 is refused by the upstream address policy (rule: deny 127.0.0.2/32") {
		t.Errorf("delivery log %+v, want its newest entry to name the refused address and the rule", log)
	}
}
