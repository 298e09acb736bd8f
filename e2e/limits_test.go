package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
)

// limits sets the node's client limits. Loopback, the tests' only
// address, is exempt from the per-address limits by default; these tests
// exempt nothing.
func limits(l httpapi.ClientLimits) nodeOption {
	return func(c *node.Config) {
		if l.Exempt == nil {
			l.Exempt = []netip.Prefix{}
		}
		c.ClientLimits = l
	}
}

// clientLimitsStatus reads the clientLimits part of /admin/status.
type clientLimitsStatus struct {
	UsersConnected     int              `json:"usersConnected"`
	AddressesConnected int              `json:"addressesConnected"`
	Refused            map[string]int64 `json:"refused"`
}

func (g *gw) clientLimits() clientLimitsStatus {
	g.t.Helper()
	var out struct {
		ClientLimits clientLimitsStatus `json:"clientLimits"`
	}
	if err := json.Unmarshal(g.admin(http.MethodGet, "/admin/status", nil, http.StatusOK), &out); err != nil {
		g.t.Fatal(err)
	}
	return out.ClientLimits
}

// negotiateAs negotiates for hub with a token for user ("" anonymous).
func (g *gw) negotiateAs(hub, user string) (int, http.Header, string, string) {
	g.t.Helper()
	tok := ""
	if user != "" {
		tok = g.token(hub, user)
	}
	req, err := http.NewRequest(http.MethodPost, g.url+"/client/negotiate?hub="+hub+"&negotiateVersion=1", nil)
	if err != nil {
		g.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		ConnectionToken string `json:"connectionToken"`
		Error           string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header, body.ConnectionToken, body.Error
}

// upgrade opens the WebSocket of a negotiated connection token (user's
// token on it, if any) and returns the socket or the upgrade's status.
func (g *gw) upgrade(hub, user, connToken string) (*websocket.Conn, *http.Response) {
	g.t.Helper()
	h := http.Header{}
	if user != "" {
		h.Set("Authorization", "Bearer "+g.token(hub, user))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/client/?hub="+hub+"&id="+connToken,
		&websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		g.t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, resp
}

// TestConnectionsPerUser: a user may hold ConnectionsPerUser sockets in a
// hub; the next is refused with 429 and a reason at negotiate, and at the
// upgrade for connections negotiated before the cap filled. Other users
// and other hubs are not affected, and a closed socket frees its place.
func TestConnectionsPerUser(t *testing.T) {
	t.Parallel()
	// No rates: the test polls negotiate, and is about the caps.
	g := startNode(t, limits(httpapi.ClientLimits{ConnectionsPerUser: 2, NegotiateRate: -1, ConnectRate: -1}))
	g.createHub("chat", false)
	g.createHub("other", false)
	first := g.dial("chat", "alice", nil)
	g.dial("chat", "alice", nil)

	status, _, _, msg := g.negotiateAs("chat", "alice")
	if status != http.StatusTooManyRequests || !strings.Contains(msg, `user "alice" already has 2 connections to hub "chat"`) {
		t.Errorf("third negotiate of alice: %d %q, want 429 naming the cap", status, msg)
	}
	g.dial("chat", "bob", nil)    // another user
	g.dial("other", "alice", nil) // another hub

	first.Close()
	testutil.Eventually(t, waitFor, "alice's closed socket frees its place", func() bool {
		status, _, _, _ := g.negotiateAs("chat", "alice")
		return status == http.StatusOK
	})

	// Two negotiated while one place was free: the upgrade decides.
	_, _, tok1, _ := g.negotiateAs("chat", "alice")
	_, _, tok2, _ := g.negotiateAs("chat", "alice")
	if ws, resp := g.upgrade("chat", "alice", tok1); ws == nil {
		t.Fatalf("upgrade into the free place: %v", resp)
	}
	if ws, resp := g.upgrade("chat", "alice", tok2); ws != nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("upgrade past the cap: accepted %v, response %v; want 429", ws != nil, resp)
	}
	st := g.clientLimits()
	if st.Refused["connectionsPerUser"] < 2 || st.UsersConnected != 3 {
		t.Errorf("/admin/status clientLimits = %+v; want at least 2 refused per user and 3 users (hub, user) connected", st)
	}
}

// TestConnectionsPerAddress: one source address may hold
// ConnectionsPerAddress sockets, anonymous or not; loopback is exempt
// unless the operator says otherwise.
func TestConnectionsPerAddress(t *testing.T) {
	t.Parallel()
	g := startNode(t, limits(httpapi.ClientLimits{ConnectionsPerAddress: 2, NegotiateRate: -1, ConnectRate: -1}))
	g.createHub("chat", true)
	g.dial("chat", "", nil)
	g.dial("chat", "carol", nil)
	status, _, _, msg := g.negotiateAs("chat", "")
	if status != http.StatusTooManyRequests || !strings.Contains(msg, "your address already has 2 connections") {
		t.Errorf("third connection from one address: %d %q, want 429 naming the cap", status, msg)
	}
	if st := g.clientLimits(); st.Refused["connectionsPerAddress"] != 1 || st.AddressesConnected != 1 {
		t.Errorf("/admin/status clientLimits = %+v; want 1 refused per address, 1 address connected", st)
	}

	exempt := startNode(t, func(c *node.Config) { c.ClientLimits = httpapi.ClientLimits{ConnectionsPerAddress: 1} })
	exempt.createHub("chat", true)
	for range 3 {
		exempt.dial("chat", "", nil) // loopback: a reverse proxy on the host
	}
}

// TestRatesPerAddress: negotiate and connect requests beyond an address's
// burst are refused with 429 and a Retry-After, and counted.
func TestRatesPerAddress(t *testing.T) {
	t.Parallel()
	perHour := 1.0 / 3600 // nothing refills while the test runs
	g := startNode(t, limits(httpapi.ClientLimits{NegotiateRate: perHour, NegotiateBurst: 3, ConnectRate: perHour, ConnectBurst: 1}))
	g.createHub("chat", true)
	var tokens []string
	for i := range 3 {
		status, _, tok, msg := g.negotiateAs("chat", "")
		if status != http.StatusOK {
			t.Fatalf("negotiate %d within the burst: %d %q", i+1, status, msg)
		}
		tokens = append(tokens, tok)
	}
	status, h, _, msg := g.negotiateAs("chat", "")
	retry, err := strconv.Atoi(h.Get("Retry-After"))
	if status != http.StatusTooManyRequests || !strings.Contains(msg, "too many negotiate requests from your address") || err != nil || retry < 1 {
		t.Errorf("negotiate past the burst: %d %q, Retry-After %q; want 429 with a reason and Retry-After in seconds", status, msg, h.Get("Retry-After"))
	}

	if ws, resp := g.upgrade("chat", "", tokens[0]); ws == nil {
		t.Fatalf("first upgrade: %v", resp)
	}
	ws, resp := g.upgrade("chat", "", tokens[1])
	if ws != nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("upgrade past the burst: accepted %v, response %v; want 429 with Retry-After", ws != nil, resp)
	}
	st := g.clientLimits()
	if st.Refused["negotiateRate"] != 1 || st.Refused["connectRate"] != 1 {
		t.Errorf("/admin/status clientLimits refused = %v; want one negotiate and one connect refused", st.Refused)
	}
}
