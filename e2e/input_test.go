package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/upstream"
)

// TestConnectReplyBounded: a connect reply's user id and groups follow the
// input rules. A 100 KB user id used to be accepted; every later webhook of
// the connection then failed at the upstream (431 from a server with Node's
// 16 KiB header limit) and waited in the outbox for a day. Now the connect
// is refused with the reason, and nothing is queued.
func TestConnectReplyBounded(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", true)
	rec := &recorder{t: t, notify: make(chan struct{}, 1024)}
	rec.srv = newPickyServer(t, http.HandlerFunc(rec.serve))
	rec.secret = g.addUpstream("chat", "fn", rec.URL()+"/{event}")
	replies := map[string]any{
		"huge":    map[string]any{"userId": strings.Repeat("u", 100<<10)},
		"crlf":    map[string]any{"userId": "bob\r\nX-Admin: 1"},
		"nul":     map[string]any{"groups": []string{"ok", "a\x00"}},
		"blank":   map[string]any{"groups": []string{"  "}},
		"toolong": map[string]any{"groups": []string{strings.Repeat("g", 1025)}},
	}
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event == upstream.EventConnect {
			return http.StatusOK, replies[strings.Join(ev.Query["case"], "")]
		}
		return http.StatusNoContent, nil
	})
	for name, want := range map[string]string{
		"huge":    "userId: user id is 102400 bytes long; the limit is 1024",
		"crlf":    `userId: user id "bob\r\nX-Admin: 1" contains a control character`,
		"nul":     `groups[1]: group name "a\x00" contains a control character`,
		"blank":   "groups[0]: group name is only whitespace",
		"toolong": "groups[0]: group name is 1025 bytes long; the limit is 1024",
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			c, err := client.Dial(ctx, g.url+"/client/?hub=chat&case="+name, nil)
			if err == nil {
				c.Close()
				t.Fatal("connected with a reply that breaks the input rules")
			}
			if !errors.Is(err, client.ErrHandshake) || !strings.Contains(err.Error(), `upstream "fn" sent an invalid reply: `+want) {
				t.Fatalf("dial: %v, want a handshake error saying %q", err, want)
			}
		})
	}
	var st struct {
		Outbox struct {
			Depth int `json:"depth"`
		} `json:"outbox"`
	}
	decode(t, g.admin(http.MethodGet, "/admin/status", nil, http.StatusOK), &st)
	if st.Outbox.Depth != 0 {
		t.Errorf("outbox depth %d: refused connections left notifications behind", st.Outbox.Depth)
	}
	for _, e := range rec.all() {
		if e.Event.Event != upstream.EventConnect {
			t.Errorf("the upstream got a %s event of a refused connection", e.Event.Event)
		}
	}
}

// newPickyServer serves h with Node's 16 KiB limit on request headers.
func newPickyServer(t *testing.T, h http.Handler) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.Config.MaxHeaderBytes = 16 << 10
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// TestReplyActionsLimit: a reply may carry as many actions as a REST batch
// (100 by default); one more fails the caller's invocation with an error
// naming the limit, and node.Config.MaxActions raises both.
func TestReplyActionsLimit(t *testing.T) {
	for _, tt := range []struct {
		name  string
		opts  []nodeOption
		limit int
	}{
		{"default", nil, 100},
		{"raised", []nodeOption{func(c *node.Config) { c.MaxActions = 150 }}, 150},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := startNode(t, tt.opts...)
			g.createHub("chat", false)
			rec := newRecorder(t)
			rec.secret = g.addUpstream("chat", "fn", rec.URL()+"/{event}", "message:*")
			rec.setReply(func(ev *upstream.Event) (int, any) {
				var n int
				_ = json.Unmarshal(ev.Arguments, &[]any{&n})
				acts := make([]map[string]any, n)
				for i := range acts {
					acts[i] = map[string]any{"action": "sendToUser", "user": "nobody", "target": "t"}
				}
				return http.StatusOK, map[string]any{"result": n, "actions": acts}
			})
			c := g.dial("chat", "u", nil)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			if _, err := c.Invoke(ctx, "go", tt.limit); err != nil {
				t.Fatalf("%d actions: %v", tt.limit, err)
			}
			_, err := c.Invoke(ctx, "go", tt.limit+1)
			var ie *client.InvocationError
			want := "the reply carries " + itoa(tt.limit+1) + " actions; the limit is " + itoa(tt.limit) + " per reply"
			if !errors.As(err, &ie) || !strings.Contains(ie.Message, want) {
				t.Fatalf("%d actions: %v, want a completion error saying %q", tt.limit+1, err, want)
			}
			batch := make([]map[string]any, tt.limit+1)
			for i := range batch {
				batch[i] = map[string]any{"action": "sendToUser", "user": "nobody", "target": "t"}
			}
			if r := g.rest(http.MethodPost, "/api/hubs/chat/:actions", batch); r.status != http.StatusBadRequest ||
				!strings.Contains(string(r.body), "the limit is "+itoa(tt.limit)) {
				t.Errorf("REST batch of %d: %d %s", tt.limit+1, r.status, r.body)
			}
			g.restWant(http.MethodPost, "/api/hubs/chat/:actions", batch[:tt.limit], http.StatusOK)
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestConnectQueryAndHeadersChecked: the connect request's query and
// headers go into the connect webhook, so they are checked before the
// upgrade: a control character in the query is a 400, more than 16 KiB of
// headers a 431, each with a JSON error, and the upstream hears nothing.
func TestConnectQueryAndHeadersChecked(t *testing.T) {
	g, rec := setup(t)
	tests := []struct {
		name   string
		query  string
		header http.Header
		status int
		want   string
	}{
		{"NUL in a query value", "&room=" + url.QueryEscape("4\x002"), nil, 400, `query parameter "room": "4\x002" contains a control character`},
		{"CR in a query name", "&" + url.QueryEscape("a\rb") + "=1", nil, 400, "query parameter name"},
		{"query too large", "&blob=" + strings.Repeat("x", 9<<10), nil, 400, "the limit is 8192"},
		{"headers too large", "", http.Header{"X-Blob": {strings.Repeat("x", 17<<10)}}, 431, "the limit is 16384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := g.token("chat", "u")
			status, body := do(t, http.MethodPost, g.url+"/client/negotiate?hub=chat", token, nil)
			if status != http.StatusOK {
				t.Fatalf("negotiate: %d %s", status, body)
			}
			var neg struct {
				ConnectionToken string `json:"connectionToken"`
			}
			decode(t, body, &neg)
			h := http.Header{"Authorization": {"Bearer " + token}}
			for k, v := range tt.header {
				h[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/client/?hub=chat&id="+neg.ConnectionToken+tt.query,
				&websocket.DialOptions{HTTPHeader: h})
			if err == nil {
				ws.CloseNow()
				t.Fatal("the socket opened")
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("upgrade: %v, want %d", err, tt.status)
			}
			data, _ := io.ReadAll(resp.Body)
			if msg := errorBody(t, data); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to say %q", msg, tt.want)
			}
		})
	}
	for _, e := range rec.all() {
		t.Errorf("the upstream got a %s event", e.Event.Event)
	}
}

// TestRESTInputRules: every REST string that reaches clients, the bus or
// webhooks follows the input rules, with an Azure-shaped 400; before, a
// target or excluded id with control characters was sent as is.
func TestRESTInputRules(t *testing.T) {
	g, connect := restRig(t)
	watcher := connect("ua")
	h := "/api/hubs/chat"
	esc := url.PathEscape
	tests := []struct {
		name, method, path string
		body               any
		code, says         string
	}{
		{"NUL in a target", "POST", h + "/:send", map[string]any{"target": "a\x00", "arguments": []int{1}}, "Error.InvalidBody", "control character"},
		{"dot target", "POST", h + "/:send", map[string]any{"target": "..", "arguments": []int{1}}, "Error.InvalidBody", "not a method name"},
		{"slash in a target", "POST", h + "/groups/g/:send", map[string]any{"target": "a/b"}, "Error.InvalidBody", "one URL path segment"},
		{"target over 256 bytes", "POST", h + "/:send", map[string]any{"target": strings.Repeat("t", 257)}, "Error.InvalidBody", "the limit is 256"},
		{"newline in a user", "POST", h + "/users/" + esc("a\nb") + "/:send", msg("x"), "Error.InvalidUser", "control character"},
		{"user over 1024 bytes", "PUT", h + "/users/" + strings.Repeat("u", 1025) + "/groups/g", nil, "Error.InvalidUser", "the limit is 1024"},
		{"NUL in a group", "PUT", h + "/groups/" + esc("g\x00") + "/connections/" + watcher.id(), nil, "Error.InvalidGroup", "control character"},
		{"bad connection id", "DELETE", h + "/connections/" + esc("c\x7f"), nil, "Error.InvalidConnectionId", "control character"},
		{"bad excluded", "POST", h + "/:send?excluded=" + url.QueryEscape("x\x01"), msg("x"), "Error.InvalidParameter", "excluded"},
		{"bad reason", "DELETE", h + "/connections/" + watcher.id() + "?reason=" + url.QueryEscape("bye\r\n"), nil, "Error.InvalidParameter", "reason"},
		{"bad reason, many", "POST", h + "/:closeConnections?reason=" + url.QueryEscape("\x00"), nil, "Error.InvalidParameter", "reason"},
		{"bad batch target", "POST", h + "/:actions", []map[string]any{{"action": "broadcast", "target": "x\ny"}}, "Error.InvalidAction", "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.rest(tt.method, tt.path, tt.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			if code := r.errorCode(t); code != tt.code || !strings.Contains(string(r.body), tt.says) {
				t.Fatalf("answer %s, want %s saying %q", r.body, tt.code, tt.says)
			}
		})
	}
	restBarrier(t, g, "still fine", watcher)
}
