package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// TestHalfTransportsAcrossNodes: two nodes on one NATS. A Long Polling and
// an SSE connection negotiated on n1 are used through n2 alone, as a load
// balancer without affinity would send them: n2 answers every request for
// n1's connection with a redirect to n1, which the client follows, and the
// connection works end to end. A token of a node that is not in the
// cluster is unknown.
func TestHalfTransportsAcrossNodes(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	start := func(id string) *gw {
		return startNodeWith(t, node.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), id+".db"),
			NodeID: id, NATS: nats.url(), Logger: quietLogger(t)})
	}
	n1 := start("n1")
	n2 := start("n2")
	n2.adminKey = n1.adminKey
	n1.createHub("half", false)
	rec := newRecorder(t)
	rec.secret = n1.addUpstream("half", "fn", rec.URL()+"/{event}", "connect", "connected", "disconnected", "message:*")
	rec.setReply(halfReply)

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// redirected sends DELETE for token to n2 without following and
	// returns the status and Location.
	redirected := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodDelete, n2.url+"/client/?hub=half&id="+token, nil)
		resp, err := noFollow.Do(req)
		if err != nil {
			return -1, ""
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}

	for _, tr := range []string{"LongPolling", "ServerSentEvents"} {
		t.Run(tr, func(t *testing.T) {
			alice := n1.token("half", "alice")
			h := negotiateHalf(t, n1.url, "half", alice, tr, "json")
			if !strings.HasPrefix(h.token, "n1.") {
				t.Fatalf("n1's connection token %q does not carry its node id", h.token)
			}
			// n2 learns of the hub and of n1 (their heartbeats) first.
			testutil.Eventually(t, waitFor, "n2 to redirect n1's connection", func() bool {
				status, _ := redirected(h.token)
				return status == http.StatusTemporaryRedirect
			})
			_, loc := redirected(h.token)
			if !strings.HasPrefix(loc, n1.node.URL()+"/client/?hub=half&id="+h.token) {
				t.Errorf("Location %q, want n1's connection URL", loc)
			}

			h.open(n2.url, true)
			h.handshake()
			if res, _ := h.invoke("1", "echo", `["across"]`); string(res.Result) != `"across"` {
				t.Errorf("echo through n2 = %s %q", res.Result, res.Error)
			}
			_, got := h.invoke("2", "fanout", `[]`)
			for len(got) < 3 {
				got = append(got, h.next())
			}

			// The POST went to n1, with the bearer the redirect moved into
			// the query: Go drops Authorization on the way to another host
			// (n1's public URL names localhost, n2's address 127.0.0.1).
			ping := []byte(`{"type":6}` + "\x1e")
			status, body, final := h.request(context.Background(), http.MethodPost, n2.url, ping)
			if status != http.StatusOK || !strings.HasPrefix(final, n1.node.URL()) || !strings.Contains(final, "access_token=") {
				t.Errorf("POST through n2 = %d %s answered at %s, want 200 from n1 with the token in the query", status, body, final)
			}
			if tr == "LongPolling" {
				if status, body, _ := h.request(context.Background(), http.MethodDelete, n2.url, nil); status != http.StatusAccepted {
					t.Errorf("DELETE through n2 = %d %s, want 202", status, body)
				}
			} else {
				h.stop()
			}
			rec.waitEvent(isEvent(upstream.EventDisconnected, h.connID))
		})
	}

	h := &halfClient{t: t, hub: "half", token: "n9.AAAAAAAAAAAAAAAA"}
	status, body, _ := h.request(context.Background(), http.MethodGet, n2.url, nil)
	if status != http.StatusNotFound || !strings.Contains(errorOf(string(body)), "node (n9) is not in the cluster") {
		t.Errorf("a token of a node not in the cluster = %d %s, want 404 naming the node", status, body)
	}
}
