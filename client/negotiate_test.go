package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func TestNegotiateURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"trailing slash", "https://x/client/?hub=chat", "https://x/client/negotiate?hub=chat&negotiateVersion=1"},
		{"no slash", "https://app/chat", "https://app/chat/negotiate?negotiateVersion=1"},
		{"root", "http://h:8080", "http://h:8080/negotiate?negotiateVersion=1"},
		{"version kept", "http://h/c/?negotiateVersion=7&hub=a", "http://h/c/negotiate?negotiateVersion=7&hub=a"},
		{"azure redirect", "http://h/client/?hub=chat&asrs.op=%2Fchat&negotiateVersion=1&asrs_request_id=req1%3D",
			"http://h/client/negotiate?hub=chat&asrs.op=%2Fchat&negotiateVersion=1&asrs_request_id=req1%3D"},
		{"form re-encoding", "http://h/c?q=a%20b~c!(d)*&e=f+g", "http://h/c/negotiate?q=a+b%7Ec%21%28d%29*&e=f+g&negotiateVersion=1"},
		{"empty parts and bare names", "http://h/c?a&&b=", "http://h/c/negotiate?a=&b=&negotiateVersion=1"},
		{"bad escape kept", "http://h/c?a=%zz", "http://h/c/negotiate?a=%25zz&negotiateVersion=1"},
		{"fragment dropped", "http://h/c?hub=x#frag", "http://h/c/negotiate?hub=x&negotiateVersion=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := negotiateURL(tt.in)
			if err != nil {
				t.Fatalf("negotiateURL(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("negotiateURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNegotiateURLRejectsRelative(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"/client/?hub=chat", "ws://h/c", "chat"} {
		if got, err := negotiateURL(in); err == nil {
			t.Errorf("negotiateURL(%q) = %q, want an error", in, got)
		}
	}
}

func TestConnectURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, token, want string
	}{
		{"http://h/client/?hub=chat", "ctok", "ws://h/client/?hub=chat&id=ctok"},
		{"https://h/chat", "ctok", "wss://h/chat?id=ctok"},
		{"http://h/chat", "tok/+=&x", "ws://h/chat?id=tok/+=&x"}, // not encoded, like the JS client
		{"http://h/chat", "", "ws://h/chat"},
	}
	for _, tt := range tests {
		if got := webSocketURL(connectURL(tt.base, tt.token)); got != tt.want {
			t.Errorf("webSocketURL(connectURL(%q, %q)) = %q, want %q", tt.base, tt.token, got, tt.want)
		}
	}
}

// TestDialDirect negotiates at the gateway's client URL.
func TestDialDirect(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{})
	var calls atomic.Int32
	c := dial(t, h.url("/client/?hub=chat"), &Options{
		AccessToken: func(context.Context) (string, error) {
			calls.Add(1)
			return "user-token", nil
		},
	})
	if got := c.ConnectionID(); got != "cid-1" {
		t.Errorf("ConnectionID() = %q, want cid-1", got)
	}
	want := []record{
		{method: "POST", path: "/client/negotiate", query: "hub=chat&negotiateVersion=1", auth: "Bearer user-token"},
		{method: "GET", path: "/client/", query: "hub=chat&id=ctok-1", auth: "Bearer user-token", upgrade: "websocket"},
	}
	if got := h.requests(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests:\n got %v\nwant %v", got, want)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("token factory called %d times, want 2 (negotiate and WebSocket)", got)
	}
}

// TestDialRedirect follows Azure's two-hop negotiate.
func TestDialRedirect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		accessToken string // in the redirect; "" = none
		wantAuth    string // on the service negotiate and the upgrade
	}{
		{"redirect token replaces the user's", "svc-jwt-1", "Bearer svc-jwt-1"},
		{"no redirect token keeps the user's", "", "Bearer user-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var h *hub
			redirect := func(w http.ResponseWriter, r *http.Request) {
				tok := ""
				if tt.accessToken != "" {
					tok = fmt.Sprintf(`,"accessToken":%q`, tt.accessToken)
				}
				answer(200, fmt.Sprintf(`{"negotiateVersion":0,"url":%q,"availableTransports":[]%s}`,
					h.url("/client/?hub=chat&asrs.op=%2Fchat&negotiateVersion=1&asrs_request_id=req1%3D"), tok))(w, r)
			}
			h = newHub(t, hubConfig{negotiate: map[string]http.HandlerFunc{"/api/negotiate": redirect}})
			dial(t, h.url("/api"), &Options{
				AccessToken: func(context.Context) (string, error) { return "user-token", nil },
			})
			q := "hub=chat&asrs.op=%2Fchat&negotiateVersion=1&asrs_request_id=req1%3D"
			want := []record{
				{method: "POST", path: "/api/negotiate", query: "negotiateVersion=1", auth: "Bearer user-token"},
				{method: "POST", path: "/client/negotiate", query: q, auth: tt.wantAuth},
				{method: "GET", path: "/client/", query: q + "&id=ctok-1", auth: tt.wantAuth, upgrade: "websocket"},
			}
			if got := h.requests(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("requests:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestNegotiateVersionZeroUsesConnectionID(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{negotiate: map[string]http.HandlerFunc{
		"/client/negotiate": answer(200, `{"connectionId":"cid-0","availableTransports":[{"transport":"WebSockets","transferFormats":["Text"]}]}`),
	}})
	dial(t, h.url("/client/?hub=chat"), nil)
	reqs := h.requests()
	if got := reqs[len(reqs)-1].query; got != "hub=chat&id=cid-0" {
		t.Errorf("upgrade query = %q, want hub=chat&id=cid-0", got)
	}
}

func TestNegotiateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    []string // substrings of the error
	}{
		{"error body", answer(200, `{"error":"Hub chat is disabled, ask the admin"}`), []string{"Hub chat is disabled, ask the admin"}},
		{"401 body", answer(401, `{"error":"invalid token: expired"}`), []string{"401", "invalid token: expired"}},
		{"500 empty body", answer(500, ``), []string{"500", "Internal Server Error"}},
		{"201 refused", answer(201, `{}`), []string{"201"}},
		{"not JSON", answer(200, `<html>`), []string{"not a JSON object"}},
		{"no transport the client knows", answer(200, `{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[{"transport":"Carrier","transferFormats":["Text"]}]}`), []string{"none of the transports", "the server offers Carrier (Text)"}},
		{"no transports", answer(200, `{"negotiateVersion":1,"connectionId":"a","connectionToken":"b"}`), []string{"none of the transports", "offers none"}},
		{"unasked stateful reconnect", answer(200, `{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","useStatefulReconnect":true,"availableTransports":[{"transport":"WebSockets","transferFormats":["Text"]}]}`), []string{"Stateful Reconnect"}},
		{"ASP.NET SignalR", answer(200, `{"ProtocolVersion":"1.5"}`), []string{"ASP.NET SignalR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, hubConfig{negotiate: map[string]http.HandlerFunc{"/client/negotiate": tt.handler}})
			c, err := Dial(context.Background(), h.url("/client/?hub=chat"), nil)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded, want an error")
			}
			if !errors.Is(err, ErrNegotiate) {
				t.Errorf("error %q does not wrap ErrNegotiate", err)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			for _, r := range h.requests() {
				if r.upgrade != "" {
					t.Errorf("client tried a WebSocket after a failed negotiate: %v", r)
				}
			}
		})
	}
}

func TestNegotiateRedirectLimit(t *testing.T) {
	t.Parallel()
	var h *hub
	h = newHub(t, hubConfig{negotiate: map[string]http.HandlerFunc{
		"/loop/negotiate": func(w http.ResponseWriter, r *http.Request) {
			answer(200, fmt.Sprintf(`{"url":%q}`, h.url("/loop")))(w, r)
		},
	}})
	_, err := Dial(context.Background(), h.url("/loop"), nil)
	if err == nil || !strings.Contains(err.Error(), "redirection limit") {
		t.Fatalf("Dial error = %v, want the redirection limit", err)
	}
	if got := len(h.requests()); got != maxRedirects {
		t.Errorf("negotiate requests = %d, want %d", got, maxRedirects)
	}
}

func TestAccessTokenError(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{})
	boom := errors.New("no session")
	_, err := Dial(context.Background(), h.url("/client/?hub=chat"), &Options{
		AccessToken: func(context.Context) (string, error) { return "", boom },
	})
	if !errors.Is(err, boom) {
		t.Errorf("Dial error = %v, want it to wrap %v", err, boom)
	}
}

func TestHeaderAndDialer(t *testing.T) {
	t.Parallel()
	h := newHub(t, hubConfig{})
	var dials atomic.Int32
	dial(t, h.url("/client/?hub=chat"), &Options{
		Header: http.Header{"X-Custom": {"v1"}},
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	})
	for _, r := range h.requests() {
		if r.custom != "v1" {
			t.Errorf("%s %s: X-Custom = %q, want v1", r.method, r.path, r.custom)
		}
	}
	if got := dials.Load(); got != 2 {
		t.Errorf("Dialer called %d times, want 2 (negotiate, upgrade)", got)
	}
}
