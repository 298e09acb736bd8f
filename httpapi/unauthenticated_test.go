package httpapi_test

// Tests of what a caller who has not authenticated can make the server
// keep or write: counters and log lines.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/store"
)

// TestRESTCountsInventedMethodsAsOther: REST calls are counted before
// their credentials are checked, by method and route. A method is the
// client's own string, so methods HTTP does not define are counted under
// one label, "OTHER", rather than each adding a counter (and a Prometheus
// series) for as long as the node runs.
func TestRESTCountsInventedMethodsAsOther(t *testing.T) {
	srv, _, _ := negotiateServer(t)
	const invented = 50
	for i := range invented {
		req := httptest.NewRequest("M"+fmt.Sprint(i)+strings.Repeat("X", 1000), "/api/hubs/chat/:send", nil)
		srv.ServeHTTP(httptest.NewRecorder(), req)
	}
	req := httptest.NewRequest(http.MethodPost, "/api/hubs/chat/:send", nil) // no token: 401
	srv.ServeHTTP(httptest.NewRecorder(), req)

	var other int64
	for _, st := range srv.RESTStats() {
		op, _, _ := strings.Cut(st.Operation, " ")
		switch op {
		case "OTHER":
			other += st.Count
		case http.MethodPost:
		default:
			t.Errorf("REST calls counted under the client's method: %+v", st)
		}
	}
	if other != invented {
		t.Errorf("%d calls counted under OTHER, want %d", other, invented)
	}
	if n := len(srv.RESTStats()); n > 2 {
		t.Errorf("%d counters after %d invented methods and one POST, want at most 2: %+v", n, invented, srv.RESTStats())
	}
}

// TestFailedHubLookupsAreLoggedSparingly: while the store cannot be read,
// every hub name the node's copy lacks fails its lookup, and the names
// are clients', sent before any credential is checked. Each request is
// still told why (503), but the log gets one line per lookupLogEvery, not
// one per request.
func TestFailedHubLookupsAreLoggedSparingly(t *testing.T) {
	db, keys := openStore(t)
	if _, err := db.CreateHub(t.Context(), store.Hub{Name: "chat", AllowAnonymous: true}); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	var mu sync.Mutex
	gw := gateway.New(gateway.Config{SweepInterval: -1})
	t.Cleanup(func() { gw.Shutdown(context.Background()) })
	cache := &hubCache{DB: db, hubs: map[string]store.Hub{}}
	srv := httpapi.New(httpapi.Config{
		Gateway: gw, Store: cache, Verifier: negotiate.NewVerifier(store.AccessKeys(keys)),
		Limits: httpapi.ClientLimits{NegotiateRate: -1, ConnectRate: -1},
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil)),
	})
	if _, err := cache.Hub(t.Context(), "chat"); err != nil { // in the node's copy
		t.Fatal(err)
	}
	if err := db.Close(); err != nil { // every read of the store fails from now on
		t.Fatal(err)
	}
	for i := range 50 {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, fmt.Sprintf("/client/negotiate?hub=probe%d", i), nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("negotiate for an unknown hub with the store down: %d %s, want 503", rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/client/negotiate?hub=chat", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("negotiate for a hub in the copy with the store down: %d %s, want 200", rec.Code, rec.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logged.String(), "looking up a hub"); n != 1 {
		t.Errorf("50 failed lookups logged %d lines, want 1:\n%s", n, logged.String())
	}
}

// lockedWriter serialises a log handler's writes into a buffer the test
// reads.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestPaddedNegotiatesAreNotKept: a negotiation keeps its hub name and the
// client's bearer for 30 s (a stateful connection keeps the bearer for its
// life). Parsed from the request, both are slices of the request line or
// of a header value, which a client may pad far past them: kept as such,
// each negotiation held the whole padded request. Over a real HTTP server,
// 100 negotiates padded by 48 KiB, half with the token in the query, half
// in a padded header, must leave only a few KiB each behind.
func TestPaddedNegotiatesAreNotKept(t *testing.T) {
	srv, _, tok := negotiateServer(t)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	pad := strings.Repeat("p", 48<<10)
	negotiate := func(i int) {
		t.Helper()
		url := ts.URL + "/client/negotiate?hub=chat&pad=" + pad
		header := "Bearer " + tok + strings.Repeat(" ", 48<<10)
		if i%2 == 0 {
			url += "&access_token=" + tok
			header = ""
		}
		req, _ := http.NewRequest(http.MethodPost, url, nil)
		req.Host = "gw.test" // the token's audience
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("padded negotiate %d: %d %s", i, resp.StatusCode, body)
		}
	}
	negotiate(0) // warm up the connection and the pools
	negotiate(1)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 100
	for i := range n {
		negotiate(i)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if kept := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n; kept > 8<<10 {
		t.Errorf("each padded negotiate left %d KiB on the heap, want a few KiB, not its 48 KiB of padding", kept>>10)
	}
}

// TestPreflightEchoesOnlyHeaderNames: a CORS preflight echoes the headers
// a browser asks for, which is a short list of header names. Anything
// else, of any length, is the sender's own bytes and is not echoed.
func TestPreflightEchoesOnlyHeaderNames(t *testing.T) {
	srv, _, _ := negotiateServer(t)
	const stock = "authorization, content-type, x-requested-with, x-signalr-user-agent"
	for _, tc := range []struct{ asked, want string }{
		{"authorization, x-signalr-user-agent", "authorization, x-signalr-user-agent"},
		{"", stock},
		{"x-a,\xff\xfe", stock},
		{"x-a, x b", stock},
		{"x-a,,x-b", stock},
		{strings.Repeat("x-a,", 300) + "x-a", stock},
	} {
		req := httptest.NewRequest(http.MethodOptions, "/client/negotiate?hub=chat", nil)
		if tc.asked != "" {
			req.Header.Set("Access-Control-Request-Headers", tc.asked)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if got := rec.Header().Get("Access-Control-Allow-Headers"); got != tc.want {
			t.Errorf("asked %.40q: Access-Control-Allow-Headers %.60q, want %q", tc.asked, got, tc.want)
		}
	}
}
