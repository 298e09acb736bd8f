package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/protocol"
	"github.com/switchboard-gw/switchboard/upstream"
)

// TestCORS: browsers call negotiate cross-origin with credentials, so the
// gateway must echo an allowed Origin (never "*") and answer the preflight.
func TestCORS(t *testing.T) {
	g := startNode(t)
	g.admin(http.MethodPost, "/admin/hubs", map[string]any{"name": "open", "allowAnonymous": true}, http.StatusCreated)
	g.admin(http.MethodPost, "/admin/hubs", map[string]any{"name": "strict", "allowAnonymous": true,
		"allowedOrigins": []string{"https://app.example.com"}}, http.StatusCreated)

	request := func(method, hub, origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, g.url+"/client/negotiate?hub="+hub+"&negotiateVersion=1", nil)
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization,x-requested-with,x-signalr-user-agent")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	tests := []struct {
		name, method, hub, origin string
		status                    int
		allowed                   bool
	}{
		{"preflight, any origin", http.MethodOptions, "open", "http://localhost:3000", 204, true},
		{"negotiate, any origin", http.MethodPost, "open", "http://localhost:3000", 200, true},
		{"preflight, listed origin", http.MethodOptions, "strict", "https://app.example.com", 204, true},
		{"negotiate, listed origin", http.MethodPost, "strict", "https://app.example.com", 200, true},
		{"negotiate, other origin", http.MethodPost, "strict", "https://evil.example.com", 403, false},
		{"preflight, other origin", http.MethodOptions, "strict", "https://evil.example.com", 403, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := request(tt.method, tt.hub, tt.origin)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			acao := resp.Header.Get("Access-Control-Allow-Origin")
			if tt.allowed && (acao != tt.origin || resp.Header.Get("Access-Control-Allow-Credentials") != "true") {
				t.Errorf("allow-origin %q, credentials %q; want the echoed origin with credentials", acao, resp.Header.Get("Access-Control-Allow-Credentials"))
			}
			if !tt.allowed && acao != "" {
				t.Errorf("allow-origin %q for a refused origin", acao)
			}
			if tt.method == http.MethodOptions && tt.allowed && !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "x-signalr-user-agent") {
				t.Errorf("allow-headers %q", resp.Header.Get("Access-Control-Allow-Headers"))
			}
		})
	}
}

// TestSeveralMessagesPerFrame: the stock client batches queued messages into
// one frame; each must be handled, in order.
func TestSeveralMessagesPerFrame(t *testing.T) {
	g, rec := setup(t)
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event == upstream.EventMessage {
			return http.StatusOK, map[string]any{"result": ev.Target}
		}
		return http.StatusNoContent, nil
	})
	ws, _ := rawSocket(t, g, "alice")
	var frame []byte
	frame = protocol.AppendHandshakeRequest(frame, "json", 1)
	frame = protocol.AppendInvocation(frame, "1", "first", nil)
	frame = protocol.AppendPing(frame)
	frame = protocol.AppendInvocation(frame, "2", "second", nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := ws.Write(ctx, 1, frame); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v (got %v)", err, got)
		}
		protocol.SplitMessages(data, func(m []byte) error {
			msg, err := protocol.ParseMessage(m)
			if err == nil && msg.Type == protocol.TypeCompletion {
				got = append(got, msg.InvocationID+"="+string(msg.Result))
			}
			return nil
		})
	}
	if got[0] != `1="first"` || got[1] != `2="second"` {
		t.Errorf("completions %v, want 1=first then 2=second", got)
	}
}

// TestGenerateToken: a server with an access key asks for a client token;
// the token opens the hub.
func TestGenerateToken(t *testing.T) {
	g, _ := setup(t)
	path := "/api/hubs/chat/:generateToken"
	restToken, err := negotiate.IssueToken(g.cs.Key(), negotiate.TokenOptions{Audience: g.url + path})
	if err != nil {
		t.Fatal(err)
	}
	status, body := do(t, http.MethodPost, g.url+path+"?userId=zoe&minutesToExpire=5&api-version=2022-11-01", restToken, nil)
	if status != http.StatusOK {
		t.Fatalf("generateToken: %d %s", status, body)
	}
	var out struct{ Token string }
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
		t.Fatalf("body %s", body)
	}
	status, body = do(t, http.MethodPost, g.url+"/client/negotiate?hub=chat", out.Token, nil)
	if status != http.StatusOK {
		t.Fatalf("negotiate with the generated token: %d %s", status, body)
	}
	// Without a REST token, or with a client token, the call is refused.
	for name, tok := range map[string]string{"none": "", "client token": out.Token} {
		status, body = do(t, http.MethodPost, g.url+path, tok, nil)
		if status != http.StatusUnauthorized || !strings.Contains(string(body), `"code":"Error.Unauthorized"`) {
			t.Errorf("%s: %d %s, want 401 ErrorDetail", name, status, body)
		}
	}
}
