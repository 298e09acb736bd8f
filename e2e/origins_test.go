package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/node"
)

// TestOrigins runs one table through both browser entry points, negotiate
// (CORS) and the WebSocket upgrade, which must agree: a page either may use
// a hub or may not, whichever request its browser makes.
func TestOrigins(t *testing.T) {
	t.Parallel()
	const app = "https://app.example.com"
	g := startNode(t)
	g.createHub("open", true) // no list: any origin
	g.admin(http.MethodPost, "/admin/hubs", map[string]any{"name": "listed", "allowAnonymous": true,
		"allowedOrigins": []string{app, "http://localhost:3000"}}, http.StatusCreated)
	g2 := startNode(t, func(c *node.Config) { c.AllowedOrigins = []string{app} }) // server-wide list
	g2.createHub("open", true)

	tests := []struct {
		name   string
		g      *gw
		hub    string
		origin string
		want   bool
	}{
		{"no Origin (not a browser)", g, "listed", "", true},
		{"any origin on a hub without a list", g, "open", "https://elsewhere.example", true},
		{"null on a hub without a list", g, "open", "null", false},
		{"not an origin", g, "open", "https://app.example.com/page", false},
		{"listed", g, "listed", app, true},
		{"listed, other case and default port", g, "listed", "https://APP.example.com:443", true},
		{"listed host, other scheme", g, "listed", "http://app.example.com", false},
		{"listed host, other port", g, "listed", "https://app.example.com:8443", false},
		{"listed with a port", g, "listed", "http://localhost:3000", true},
		{"not listed", g, "listed", "https://evil.example.com", false},
		{"null on a listed hub", g, "listed", "null", false},
		{"the gateway's own origin", g, "listed", g.url, true},
		{"server-wide list: listed", g2, "open", app, true},
		{"server-wide list: other scheme", g2, "open", "http://app.example.com", false},
		{"server-wide list: not listed", g2, "open", "https://evil.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// negotiate, as the stock client's fetch sends it
			req, err := http.NewRequest(http.MethodPost, tt.g.url+"/client/negotiate?hub="+tt.hub+"&negotiateVersion=1", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				ConnectionToken string `json:"connectionToken"`
				Error           string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			acao, acac := resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Credentials")
			switch {
			case tt.want && resp.StatusCode != http.StatusOK:
				t.Errorf("negotiate: %d %q, want 200", resp.StatusCode, body.Error)
			case tt.want && tt.origin != "" && (acao != tt.origin || acac != "true"):
				t.Errorf("negotiate: Access-Control-Allow-Origin %q, -Credentials %q; want the origin echoed with credentials", acao, acac)
			case !tt.want && (resp.StatusCode != http.StatusForbidden || !strings.Contains(body.Error, "not allowed")):
				t.Errorf("negotiate: %d %q, want 403 saying the origin is not allowed", resp.StatusCode, body.Error)
			case !tt.want && acao != "":
				t.Errorf("negotiate refused but answered Access-Control-Allow-Origin %q", acao)
			}

			// the WebSocket, with a connection token negotiated without Origin
			status, data := do(t, http.MethodPost, tt.g.url+"/client/negotiate?hub="+tt.hub+"&negotiateVersion=1", "", nil)
			if status != http.StatusOK || json.Unmarshal(data, &body) != nil {
				t.Fatalf("negotiate without Origin: %d %s", status, data)
			}
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			ws, wsResp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(tt.g.url, "http")+"/client/?hub="+tt.hub+"&id="+body.ConnectionToken,
				&websocket.DialOptions{HTTPHeader: h})
			switch {
			case tt.want && err != nil:
				t.Errorf("WebSocket refused: %v", err)
			case !tt.want && err == nil:
				t.Errorf("WebSocket accepted, want 403")
			case !tt.want && (wsResp == nil || wsResp.StatusCode != http.StatusForbidden):
				t.Errorf("WebSocket: %v, want 403", err)
			}
			if ws != nil {
				ws.CloseNow()
			}
		})
	}
}
