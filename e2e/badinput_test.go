package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/negotiate"
)

// errorBody decodes {"error": "..."}; every client-facing error has one.
func errorBody(t *testing.T, data []byte) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(data, &e); err != nil || e.Error == "" {
		t.Fatalf("error body %q is not {\"error\": ...}", data)
	}
	return e.Error
}

func TestNegotiateRejects(t *testing.T) {
	g, _ := setup(t)
	g.createHub("other", false)
	bystander := g.dial("chat", "bystander", nil)
	otherKey := negotiate.AccessKey{ID: g.cs.KeyID, Secret: "not-the-real-secret-but-long-enough-000000"}
	aud := g.url + "/client/?hub=chat"
	expired, _ := negotiate.IssueToken(g.cs.Key(), negotiate.TokenOptions{Audience: aud, UserID: "u",
		Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	forged, _ := negotiate.IssueToken(otherKey, negotiate.TokenOptions{Audience: aud, UserID: "u"})
	wrongAud, _ := negotiate.IssueToken(g.cs.Key(), negotiate.TokenOptions{Audience: "http://elsewhere.example/client/", UserID: "u"})
	b64 := base64.RawURLEncoding.EncodeToString
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		b64([]byte(`{"aud":"`+aud+`","exp":`+jsonNum(time.Now().Add(time.Hour).Unix())+`,"nameid":"admin"}`)) + "."

	tests := []struct {
		name, query, token string
		status             int
		want               string
	}{
		{"no token", "hub=chat", "", 401, "requires an access token"},
		{"expired", "hub=chat", expired, 401, "expired"},
		{"forged", "hub=chat", forged, 401, "signature"},
		{"alg none", "hub=chat", algNone, 401, "HS256"},
		{"garbage token", "hub=chat", "a.b", 401, "malformed"},
		{"wrong audience", "hub=chat", wrongAud, 401, "audience"},
		{"token for another hub", "hub=other", g.token("chat", "u"), 401, `token is for hub "chat", not "other"`},
		{"unknown hub", "hub=nosuch", g.token("chat", "u"), 404, `hub "nosuch" not found`},
		{"invalid hub name", "hub=no-dash", "", 400, "invalid hub name"},
		{"no hub", "", "", 400, "missing hub"},
		{"two hubs", "hub=chat&hub=chat", "", 400, "more than one hub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, http.MethodPost, g.url+"/client/negotiate?"+tt.query, tt.token, nil)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if msg := errorBody(t, body); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to mention %q", msg, tt.want)
			}
		})
	}
	assertAlive(t, bystander)
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

// assertAlive checks a connection still works after others misbehaved.
func assertAlive(t *testing.T, c *client.Conn) {
	t.Helper()
	select {
	case <-c.Done():
		t.Fatalf("bystander connection ended: %v", c.Err())
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := c.Invoke(ctx, "still-there"); err != nil {
		var ie *client.InvocationError
		if !errors.As(err, &ie) { // a completion, even an error one, proves the round trip
			t.Fatalf("bystander invoke: %v", err)
		}
	}
}

// rawSocket negotiates for user and opens the WebSocket without a handshake,
// so a test can send anything.
func rawSocket(t *testing.T, g *gw, user string) (*websocket.Conn, string) {
	t.Helper()
	tok := g.token("chat", user)
	status, body := do(t, http.MethodPost, g.url+"/client/negotiate?hub=chat&negotiateVersion=1", tok, nil)
	if status != 200 {
		t.Fatalf("negotiate: %d %s", status, body)
	}
	var n struct{ ConnectionToken string }
	json.Unmarshal(body, &n)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/client/?hub=chat&id="+n.ConnectionToken,
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws, n.ConnectionToken
}

// readAll reads frames until the socket closes and returns them with the
// close status.
func readAll(t *testing.T, ws *websocket.Conn) (string, websocket.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var sb strings.Builder
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return sb.String(), websocket.CloseStatus(err)
		}
		sb.Write(data)
	}
}

func TestProtocolViolations(t *testing.T) {
	g, _ := setup(t)
	bystander := g.dial("chat", "bystander", nil)
	handshake := `{"protocol":"json","version":1}` + "\x1e"
	tests := []struct {
		name      string
		send      func(ctx context.Context, ws *websocket.Conn) error
		wantText  string
		wantClose websocket.StatusCode
	}{
		{"malformed handshake", func(ctx context.Context, ws *websocket.Conn) error {
			return ws.Write(ctx, websocket.MessageText, []byte("hello\x1e"))
		}, `{"error":"protocol: bad handshake`, websocket.StatusProtocolError},
		{"handshake without separator", func(ctx context.Context, ws *websocket.Conn) error {
			return ws.Write(ctx, websocket.MessageText, []byte(`{"protocol":"json","version":1}`))
		}, "handshake is incomplete", websocket.StatusProtocolError},
		{"wrong protocol", func(ctx context.Context, ws *websocket.Conn) error {
			return ws.Write(ctx, websocket.MessageText, []byte(`{"protocol":"xml","version":1}`+"\x1e"))
		}, `unsupported protocol \"xml\"`, websocket.StatusProtocolError},
		{"invalid JSON message", func(ctx context.Context, ws *websocket.Conn) error {
			return ws.Write(ctx, websocket.MessageText, []byte(handshake+`{"type":1,"target":`+"\x1e"))
		}, `{"type":7,"error":"invalid message: protocol: malformed message`, websocket.StatusProtocolError},
		{"wrong types", func(ctx context.Context, ws *websocket.Conn) error {
			return ws.Write(ctx, websocket.MessageText, []byte(handshake+`{"type":1,"target":5,"arguments":[]}`+"\x1e"))
		}, `\"target\" must be a non-empty string`, websocket.StatusProtocolError},
		{"binary frame", func(ctx context.Context, ws *websocket.Conn) error {
			if err := ws.Write(ctx, websocket.MessageText, []byte(handshake)); err != nil {
				return err
			}
			return ws.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
		}, "binary frames are not supported by the json protocol", websocket.StatusUnsupportedData},
		{"message over the size limit", func(ctx context.Context, ws *websocket.Conn) error {
			if err := ws.Write(ctx, websocket.MessageText, []byte(handshake)); err != nil {
				return err
			}
			big := `{"type":1,"target":"x","arguments":["` + strings.Repeat("a", 40<<10) + `"]}` + "\x1e"
			return ws.Write(ctx, websocket.MessageText, []byte(big))
		}, "", websocket.StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, _ := rawSocket(t, g, "mallory")
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			if err := tt.send(ctx, ws); err != nil {
				t.Fatal(err)
			}
			text, code := readAll(t, ws)
			if !strings.Contains(text, tt.wantText) {
				t.Errorf("received %q, want it to contain %q", text, tt.wantText)
			}
			if code != tt.wantClose {
				t.Errorf("close status %v, want %v", code, tt.wantClose)
			}
		})
	}
	assertAlive(t, bystander)
}

func TestConnectionTokenRules(t *testing.T) {
	g, _ := setup(t)
	wsURL := "ws" + strings.TrimPrefix(g.url, "http") + "/client/?hub=chat&id="
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	tok := g.token("chat", "u")
	hdr := &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}}

	if _, resp, err := websocket.Dial(ctx, wsURL+"unknown-token", hdr); err == nil || resp == nil || resp.StatusCode != 404 {
		t.Fatalf("unknown token: err %v, resp %v; want 404", err, resp)
	}
	// A token whose socket is open gets 409; once closed, 404.
	ws, connTok := rawSocket(t, g, "u")
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"protocol":"json","version":1}`+"\x1e")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if _, resp, err := websocket.Dial(ctx, wsURL+connTok, hdr); err == nil || resp == nil || resp.StatusCode != 409 {
		t.Fatalf("second socket for an open token: err %v; want 409", err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(waitFor)
	for {
		_, resp, err := websocket.Dial(ctx, wsURL+connTok, hdr)
		if err != nil && resp != nil && resp.StatusCode == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closed token still accepted: err %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A plain GET without upgrade is a clear 400.
	status, body := do(t, http.MethodGet, g.url+"/client/?hub=chat", "", nil)
	if status != 400 || !strings.Contains(errorBody(t, body), "missing id") {
		t.Errorf("GET without id: %d %s", status, body)
	}
}

func TestAdminRejects(t *testing.T) {
	g, _ := setup(t)
	key := g.node.AdminKey()
	tests := []struct {
		name, method, path, key string
		body                    any
		status                  int
		want                    string
	}{
		{"no key", "GET", "/admin/hubs", "", nil, 401, "Authorization: Bearer ADMIN_KEY"},
		{"wrong key", "GET", "/admin/hubs", "sbadm_wrong", nil, 401, "wrong admin key"},
		{"access key is not the admin key", "GET", "/admin/hubs", g.cs.AccessKey, nil, 401, "wrong admin key"},
		{"unknown placeholder", "POST", "/admin/hubs/chat/upstreams", key,
			map[string]any{"name": "x", "urlTemplate": "http://h/{hubb}"}, 400, "unknown placeholder {hubb}"},
		{"not http", "POST", "/admin/hubs/chat/upstreams", key,
			map[string]any{"name": "x", "urlTemplate": "ftp://h/x"}, 400, "must start with http:// or https://"},
		{"unclosed brace", "POST", "/admin/hubs/chat/upstreams", key,
			map[string]any{"name": "x", "urlTemplate": "http://h/{hub"}, 400, "unclosed"},
		{"bad event filter", "POST", "/admin/hubs/chat/upstreams", key,
			map[string]any{"name": "x", "urlTemplate": "http://h/", "events": []string{"connekt"}}, 400, `"connekt"`},
		{"unknown field", "POST", "/admin/hubs/chat/upstreams", key,
			map[string]any{"name": "x", "url": "http://h/"}, 400, `unknown field "url"`},
		{"malformed JSON", "POST", "/admin/hubs", key, "{", 400, "invalid JSON body"},
		{"wrong type", "POST", "/admin/hubs", key, `{"name":"x","allowAnonymous":"yes"}`, 400, "invalid JSON body"},
		{"bad hub name", "POST", "/admin/hubs", key, map[string]any{"name": "1bad"}, 400, "invalid hub name"},
		{"duplicate hub", "POST", "/admin/hubs", key, map[string]any{"name": "chat"}, 409, "already exists"},
		{"unknown hub", "GET", "/admin/hubs/nosuch", key, nil, 404, `hub "nosuch" not found`},
		{"upstream on unknown hub", "POST", "/admin/hubs/nosuch/upstreams", key,
			map[string]any{"name": "x", "urlTemplate": "http://h/"}, 404, "create it first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, tt.method, g.url+tt.path, tt.key, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if msg := errorBody(t, body); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to mention %q", msg, tt.want)
			}
		})
	}
}

// TestUpstreamReplyLimits: oversized, wrongly typed and redirecting replies
// are completion errors naming the upstream.
func TestUpstreamReplyLimits(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"result":"` + strings.Repeat("x", 2<<20) + `"}`))
	})
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(`{"result":1}`))
	})
	mux.HandleFunc("/untyped", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // no Content-Type at all, not even a sniffed one
		w.Write([]byte(`{"result":1}`))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	srv := newRawServer(t, mux)
	for path, want := range map[string]string{
		"/big":      "replied with more than 1048576 bytes",
		"/text":     `replied with Content-Type "text/plain"; want application/json`,
		"/untyped":  `replied with Content-Type ""; want application/json`,
		"/redirect": "answered with a redirect (307",
	} {
		t.Run(path, func(t *testing.T) {
			g.admin(http.MethodPut, "/admin/hubs/chat/upstreams/fn", map[string]any{"urlTemplate": srv + path, "events": []string{"message:*"}, "skipValidation": true}, http.StatusOK)
			c := g.dial("chat", "u", nil)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			_, err := c.Invoke(ctx, "x")
			var ie *client.InvocationError
			if !errors.As(err, &ie) || !strings.Contains(ie.Message, `upstream "fn" `+want) {
				t.Fatalf("err = %v, want completion error %q", err, want)
			}
		})
	}
}
