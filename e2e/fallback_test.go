package e2e

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// TestInteropFallback: where a proxy refuses WebSocket upgrades (and event
// streams), the stock client in Node, free to choose, falls back to
// Server-Sent Events or Long Polling and works there. TestInteropBrowser
// runs the same suite in Chromium.
func TestInteropFallback(t *testing.T) {
	t.Parallel()
	startMatrix(t).runNode(t, "node.mjs", "SUITE=fallback")
}

// TestInteropHubTransports: a hub whose transports setting leaves
// WebSocket out (or allows Long Polling only) is not offered it at
// negotiate; the stock client in Node, free to choose, takes what is
// offered, and one that asks for a transport the hub refuses fails to
// start, naming what was offered. TestInteropBrowser runs the same suite
// in Chromium.
func TestInteropHubTransports(t *testing.T) {
	t.Parallel()
	startMatrix(t).runNode(t, "node.mjs", "SUITE=hubtransports")
}

// addVia puts a proxy in front of the node that refuses the requests blocks
// picks; a client negotiating with ?via=name is sent through it.
func (a *matrixApp) addVia(name string, blocks func(*http.Request) bool) {
	cs := a.g.cs
	cs.Endpoint = blockingProxy(a.t, a.g.url, blocks)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.vias[name] = cs
}

// blockingProxy serves a reverse proxy to target that refuses (403) the
// requests blocks picks, as a corporate proxy refuses WebSocket upgrades or
// event streams. It keeps the client's Host, so the gateway checks tokens
// against the proxy's address, which is the one the client was given.
func blockingProxy(t *testing.T, target string, blocks func(*http.Request) bool) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
		},
		FlushInterval: -1, // event streams and long polls pass at once
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if blocks(r) {
			http.Error(w, "blocked by the test's proxy", http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func isWebSocketRequest(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func isEventStreamRequest(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}
