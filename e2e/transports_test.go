package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/protocol"
)

// offered lists negotiate's transports as "Name:Format,Format".
func offered(n negotiated) []string {
	var out []string
	for _, t := range n.AvailableTransports {
		out = append(out, t.Transport+":"+strings.Join(t.TransferFormats, ","))
	}
	return out
}

// TestHubTransports: negotiate offers every transport with its transfer
// formats by default, and only those a hub allows when it says; a
// WebSocket for a hub without WebSockets is refused while SSE and Long
// Polling serve it; the admin API and the CLI take the setting and check it.
func TestHubTransports(t *testing.T) {
	t.Parallel()
	g, _ := halfSetup(t)
	all := []string{"WebSockets:Text,Binary", "ServerSentEvents:Text", "LongPolling:Text,Binary"}
	if got := offered(negotiateAt(t, g.url, "half", g.token("half", "a"), "")); !slices.Equal(got, all) {
		t.Errorf("default hub offers %q, want %q", got, all)
	}

	// Names in any case, kept as negotiate spells them, in its order.
	var view struct {
		Transports []string `json:"transports"`
	}
	data := g.admin(http.MethodPost, "/admin/hubs", map[string]any{"name": "nows", "allowAnonymous": true,
		"transports": []string{"longpolling", "ServerSentEvents"}}, http.StatusCreated)
	if err := json.Unmarshal(data, &view); err != nil || !slices.Equal(view.Transports, []string{"ServerSentEvents", "LongPolling"}) {
		t.Errorf("created hub shows transports %s, want ServerSentEvents and LongPolling", data)
	}
	n := negotiateAt(t, g.url, "nows", "", "")
	if got, want := offered(n), []string{"ServerSentEvents:Text", "LongPolling:Text,Binary"}; !slices.Equal(got, want) {
		t.Errorf("hub without WebSockets offers %q, want %q", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestWait)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/client/?hub=nows&id="+n.ConnectionToken, nil)
	if err == nil {
		ws.CloseNow()
		t.Fatal("a WebSocket for a hub without WebSockets was accepted")
	}
	var refusal struct {
		Error string `json:"error"`
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("WebSocket for a hub without WebSockets: %v %v, want 403", resp, err)
	} else if _ = json.NewDecoder(resp.Body).Decode(&refusal); !strings.Contains(refusal.Error, "does not allow the WebSockets transport") {
		t.Errorf("the refusal says %q, want it to name the transport", refusal.Error)
	}
	for _, tr := range []string{"ServerSentEvents", "LongPolling"} {
		h := newHalfClient(t, g.url, "nows", "", tr, "json", true)
		h.handshake()
		h.stop()
	}

	// Only Long Polling: an event stream is refused as the WebSocket was.
	g.admin(http.MethodPut, "/admin/hubs/nows", map[string]any{"allowAnonymous": true, "transports": []string{"LongPolling"}}, http.StatusOK)
	n = negotiateAt(t, g.url, "nows", "", "")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/client/?hub=nows&id="+n.ConnectionToken, nil)
	req.Header.Set("Accept", "text/event-stream")
	sse, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sse.Body.Close()
	if sse.StatusCode != http.StatusForbidden {
		t.Errorf("event stream for a Long Polling only hub = %d, want 403", sse.StatusCode)
	}

	for _, tc := range []struct {
		name       string
		transports []string
		want       string
	}{
		{"unknown", []string{"WebSockets", "Carrier pigeon"}, `"Carrier pigeon" is not a transport`},
		{"twice", []string{"LongPolling", "longPolling"}, "LongPolling is listed twice"},
	} {
		status, body := do(t, http.MethodPut, g.url+"/admin/hubs/nows", g.adminKey, map[string]any{"transports": tc.transports})
		if status != http.StatusBadRequest || !strings.Contains(errorOf(string(body)), tc.want) {
			t.Errorf("%s transports: %d %s, want 400 saying %q", tc.name, status, body, tc.want)
		}
	}

	// The CLI: hub add and update take --transport; --all-transports
	// clears the list.
	bin := switchboardBinary(t)
	env := []string{"SWITCHBOARD_SERVER=" + g.url, "SWITCHBOARD_ADMIN_KEY=" + g.adminKey}
	cli := func(args ...string) string {
		t.Helper()
		out, errOut, err := testutil.RunBinary(t, requestWait, bin, env, args...)
		if err != nil {
			t.Fatalf("switchboard %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	if out := cli("hub", "add", "cli", "--transport", "LongPolling", "--transport", "websockets"); !strings.Contains(out, "transports: WebSockets,LongPolling") {
		t.Errorf("hub add printed %q, want the transports", out)
	}
	if out := cli("hub", "update", "cli", "--max-message-size", "2048"); !strings.Contains(out, "transports: WebSockets,LongPolling") {
		t.Errorf("hub update of another setting printed %q; the transports must be kept", out)
	}
	if out := cli("hub", "update", "cli", "--all-transports"); !strings.Contains(out, "transports: WebSockets,ServerSentEvents,LongPolling") {
		t.Errorf("hub update --all-transports printed %q", out)
	}
	_, errOut, err := testutil.RunBinary(t, requestWait, bin, env, "hub", "update", "cli", "--transport", "smoke")
	if err == nil || !strings.Contains(errOut, `"smoke" is not a transport`) {
		t.Errorf("hub update --transport smoke = %v %s, want the API's refusal", err, errOut)
	}
}

// TestNegotiateStatefulReconnect: negotiate answers useStatefulReconnect
// only to a client that asked for it; the stock client refuses an answer
// it did not ask for.
func TestNegotiateStatefulReconnect(t *testing.T) {
	t.Parallel()
	g, _ := halfSetup(t)
	tok := g.token("half", "a")
	if n := negotiateAt(t, g.url, "half", tok, ""); n.UseStatefulReconnect != nil {
		t.Errorf("unasked negotiate answered useStatefulReconnect %v", *n.UseStatefulReconnect)
	}
	if n := negotiateAt(t, g.url, "half", tok, "&useStatefulReconnect=false"); n.UseStatefulReconnect != nil {
		t.Errorf("useStatefulReconnect=false answered useStatefulReconnect %v", *n.UseStatefulReconnect)
	}
	if n := negotiateAt(t, g.url, "half", tok, "&useStatefulReconnect=true"); n.UseStatefulReconnect == nil || !*n.UseStatefulReconnect {
		t.Errorf("useStatefulReconnect=true answered %v, want true", n.UseStatefulReconnect)
	}
}

// TestHalfTransportsOutliveRequestTimeouts: an event stream and a poll
// last longer than the HTTP server's read and write timeouts, which bound
// ordinary requests.
func TestHalfTransportsOutliveRequestTimeouts(t *testing.T) {
	t.Parallel()
	g, _ := halfSetup(t, func(c *node.Config) {
		c.HTTP = node.HTTPTimeouts{Read: 300 * time.Millisecond, Write: 300 * time.Millisecond}
		c.LongPolling = httpapi.LongPolling{PollWait: 1500 * time.Millisecond}
	})
	sse := newHalfClient(t, g.url, "half", g.token("half", "a"), "ServerSentEvents", "json", false)
	sse.handshake()
	lp := newHalfClient(t, g.url, "half", g.token("half", "a"), "LongPolling", "json", false)
	ctx, cancel := context.WithTimeout(context.Background(), requestWait)
	defer cancel()
	// The gateway's Shutdown does not cut a connection short in its
	// handshake: shake hands, so the node closes at once.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = lp.get(ctx, g.url)
	}()
	if status, body := lp.postAs(protocol.AppendHandshakeRequest(nil, "json", 1), "text/plain"); status != http.StatusOK {
		t.Fatalf("handshake POST = %d %s", status, body)
	}
	<-done
	// The poll waits out its 1.5 s, five times the server's timeouts (a
	// poll cut short by them would end early).
	start := time.Now()
	if status, body := lp.get(ctx, g.url); status != http.StatusOK || len(body) != 0 {
		t.Errorf("a poll longer than the request timeouts = %d %q, want 200 empty", status, body)
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("the poll ended after %s, before its wait of 1.5 s", d)
	}
	if res, _ := sse.invoke("1", "echo", `["late"]`); string(res.Result) != `"late"` {
		t.Errorf("echo over an event stream older than the request timeouts = %s %q", res.Result, res.Error)
	}
}

// TestHalfTransportCORS: a browser page on an allowed origin may use every
// endpoint the stock client calls on the connection URL (the preflight for
// polls, POST and DELETE, and the answers themselves, with credentials); a
// page on another origin is refused everywhere, with a reason.
func TestHalfTransportCORS(t *testing.T) {
	t.Parallel()
	g, _ := halfSetup(t)
	g.admin(http.MethodPut, "/admin/hubs/half", map[string]any{"allowedOrigins": []string{"https://app.example.com"}}, http.StatusOK)
	const page, evil = "https://app.example.com", "https://evil.example.com"
	alice := g.token("half", "alice")
	ctx, cancel := context.WithTimeout(context.Background(), requestWait)
	defer cancel()

	h := negotiateHalf(t, g.url, "half", alice, "LongPolling", "json")
	send := func(method, origin string, headers map[string]string, body string) *http.Response {
		t.Helper()
		u := h.url(g.url)
		if method == http.MethodGet {
			u += "&_=1"
		}
		req, _ := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
		req.Header.Set("Origin", origin)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	auth := map[string]string{"Authorization": "Bearer " + alice, "X-Requested-With": "XMLHttpRequest"}

	pre := send(http.MethodOptions, page, map[string]string{"Access-Control-Request-Method": "DELETE",
		"Access-Control-Request-Headers": "authorization, x-requested-with, x-signalr-user-agent, content-type"}, "")
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != page ||
		pre.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "DELETE") ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "authorization") {
		t.Errorf("preflight = %d %v, want 204 allowing the page with credentials, DELETE and authorization", pre.StatusCode, pre.Header)
	}
	if pre := send(http.MethodOptions, evil, nil, ""); pre.StatusCode != http.StatusForbidden {
		t.Errorf("preflight from another origin = %d, want 403", pre.StatusCode)
	}
	for _, tc := range []struct {
		method, body string
		want         int
	}{
		{http.MethodGet, "", http.StatusOK}, // opens the connection
		{http.MethodPost, string(protocol.AppendHandshakeRequest(nil, "json", 1)), http.StatusOK},
		{http.MethodDelete, "", http.StatusAccepted},
	} {
		if resp := send(tc.method, evil, auth, tc.body); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s from another origin = %d %v, want 403 without CORS headers", tc.method, resp.StatusCode, resp.Header)
		}
		resp := send(tc.method, page, auth, tc.body)
		if resp.StatusCode != tc.want || resp.Header.Get("Access-Control-Allow-Origin") != page || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("%s from the page = %d %v, want %d with CORS headers", tc.method, resp.StatusCode, resp.Header, tc.want)
		}
	}
	// An event stream (EventSource: no preflight, token in the query).
	sse := negotiateHalf(t, g.url, "half", alice, "ServerSentEvents", "json")
	for _, origin := range []string{evil, page} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sse.url(g.url)+"&access_token="+alice, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // ends the stream, and with it the connection
		want := http.StatusForbidden
		if origin == page {
			want = http.StatusOK
		}
		if resp.StatusCode != want || (origin == page) != (resp.Header.Get("Access-Control-Allow-Origin") == page) {
			t.Errorf("event stream from %s = %d %v, want %d", origin, resp.StatusCode, resp.Header, want)
		}
	}
}
