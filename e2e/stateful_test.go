package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestStatefulConnectionKeepsItsTransport: a stateful WebSocket
// connection's token opens no Server-Sent Events or Long Polling transport
// (a new WebSocket resumes it; nothing else may take it over), as ASP.NET
// Core refuses to change transports mid-connection.
func TestStatefulConnectionKeepsItsTransport(t *testing.T) {
	t.Parallel()
	g := startNode(t)
	g.createHub("keep", true)
	status, _, token, msg := g.negotiateAs("keep", "")
	if status != http.StatusOK {
		t.Fatalf("negotiate: %d %s", status, msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/client/?hub=keep&id="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"protocol":"json","version":2}`+"\x1e")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || string(b) != "{}\x1e" {
		t.Fatalf("handshake answer %q, %v", b, err)
	}
	for _, accept := range []string{"text/event-stream", ""} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/client/?hub=keep&id="+token, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 512)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body[:n]), "mid-connection") {
			t.Errorf("GET (Accept %q) with a stateful WebSocket connection's token = %d %s, want 400 refusing to change transports", accept, resp.StatusCode, body[:n])
		}
	}
	// The WebSocket is unharmed.
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":6}`+"\x1e")); err != nil {
		t.Errorf("the WebSocket after the refused takeover: %v", err)
	}
}
