package rest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/negotiate"
)

// request is what the test server saw, after it verified the token itself.
type request struct {
	Method, Path, Query, Body string
	Kid                       string
}

// server is a real HTTP server that checks each request's token with the
// negotiate package's Verifier (aud = the URL without the query) and answers
// with the status and body the test sets.
type server struct {
	t   *testing.T
	srv *httptest.Server
	key negotiate.AccessKey

	mu     sync.Mutex
	got    []request
	answer func(r *http.Request) (int, http.Header, string)
}

func newServer(t *testing.T) *server {
	s := &server{t: t, key: negotiate.NewAccessKey()}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// client returns a Client on the server's own transport: httptest.Server.Close
// closes http.DefaultTransport's idle connections, which would break a
// parallel test that shares the default client.
func (s *server) client() (*Client, error) {
	return New(s.connString(), WithHTTPClient(s.srv.Client()))
}

func (s *server) connString() string {
	return negotiate.ConnectionString{Endpoint: s.srv.URL, AccessKey: s.key.Secret, KeyID: s.key.ID}.String()
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	v := negotiate.NewVerifier([]negotiate.AccessKey{s.key})
	if _, err := v.Verify(tok, s.srv.URL+r.URL.EscapedPath()); err != nil {
		w.Header().Set("x-ms-error-code", "Error.Unauthorized")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"code":"Error.Unauthorized","message":"`+err.Error()+`"}`)
		return
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	parts := strings.Split(tok, ".")
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil {
		json.Unmarshal(b, &hdr)
	}
	s.mu.Lock()
	s.got = append(s.got, request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: string(body), Kid: hdr.Kid})
	answer := s.answer
	s.mu.Unlock()
	status, h, out := http.StatusAccepted, http.Header(nil), ""
	if answer != nil {
		status, h, out = answer(r)
	}
	for k, vs := range h {
		w.Header()[k] = vs
	}
	w.WriteHeader(status)
	io.WriteString(w, out)
}

func (s *server) last() request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) == 0 {
		s.t.Fatal("the server got no request")
	}
	return s.got[len(s.got)-1]
}

func (s *server) setAnswer(f func(r *http.Request) (int, http.Header, string)) {
	s.mu.Lock()
	s.answer = f
	s.mu.Unlock()
}

func TestRequests(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	c, err := s.client()
	if err != nil {
		t.Fatal(err)
	}
	hub := c.Hub("chat")
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want request
	}{
		{"broadcast", func() error { return hub.Broadcast(ctx, "news", "hi", 2) },
			request{Method: "POST", Path: "/api/hubs/chat/:send", Body: `{"target":"news","arguments":["hi",2]}`}},
		{"broadcast no args", func() error { return hub.Broadcast(ctx, "ping") },
			request{Method: "POST", Path: "/api/hubs/chat/:send", Body: `{"target":"ping","arguments":[]}`}},
		{"broadcast except", func() error { return hub.Except("a", "b").Broadcast(ctx, "news") },
			request{Method: "POST", Path: "/api/hubs/chat/:send", Query: "excluded=a&excluded=b", Body: `{"target":"news","arguments":[]}`}},
		{"close all", func() error { return hub.Except("a").CloseAll(ctx, "bye now") },
			request{Method: "POST", Path: "/api/hubs/chat/:closeConnections", Query: "excluded=a&reason=bye+now"}},
		{"group send escaped", func() error { return hub.Group("room/1 ?").Except("x").Send(ctx, "t", nil) },
			request{Method: "POST", Path: "/api/hubs/chat/groups/room%2F1%20%3F/:send", Query: "excluded=x", Body: `{"target":"t","arguments":[null]}`}},
		{"group add", func() error { return hub.Group("g").Add(ctx, "c1") },
			request{Method: "PUT", Path: "/api/hubs/chat/groups/g/connections/c1"}},
		{"group remove", func() error { return hub.Group("g").Remove(ctx, "c1") },
			request{Method: "DELETE", Path: "/api/hubs/chat/groups/g/connections/c1"}},
		{"group close", func() error { return hub.Group("g").Close(ctx, "") },
			request{Method: "POST", Path: "/api/hubs/chat/groups/g/:closeConnections"}},
		{"user send", func() error { return hub.User("al ice").Send(ctx, "t", map[string]int{"n": 1}) },
			request{Method: "POST", Path: "/api/hubs/chat/users/al%20ice/:send", Body: `{"target":"t","arguments":[{"n":1}]}`}},
		{"user close", func() error { return hub.User("u").Except("c9").Close(ctx, "r") },
			request{Method: "POST", Path: "/api/hubs/chat/users/u/:closeConnections", Query: "excluded=c9&reason=r"}},
		{"user add ttl", func() error { return hub.User("u").AddToGroup(ctx, "g", 1500*time.Millisecond) },
			request{Method: "PUT", Path: "/api/hubs/chat/users/u/groups/g", Query: "ttl=2"}},
		{"user add no ttl", func() error { return hub.AddUserToGroup(ctx, "u", "g", 0) },
			request{Method: "PUT", Path: "/api/hubs/chat/users/u/groups/g"}},
		{"user remove", func() error { return hub.User("u").RemoveFromGroup(ctx, "g") },
			request{Method: "DELETE", Path: "/api/hubs/chat/users/u/groups/g"}},
		{"user remove all", func() error { return hub.User("u").RemoveFromAllGroups(ctx) },
			request{Method: "DELETE", Path: "/api/hubs/chat/users/u/groups"}},
		{"connection send", func() error { return hub.Connection("c1").Send(ctx, "t", "x") },
			request{Method: "POST", Path: "/api/hubs/chat/connections/c1/:send", Body: `{"target":"t","arguments":["x"]}`}},
		{"connection close", func() error { return hub.Connection("c1").Close(ctx, "kicked") },
			request{Method: "DELETE", Path: "/api/hubs/chat/connections/c1", Query: "reason=kicked"}},
		{"connection leave all", func() error { return hub.Connection("c1").RemoveFromAllGroups(ctx) },
			request{Method: "DELETE", Path: "/api/hubs/chat/connections/c1/groups"}},
		{"health", func() error { return c.Health(ctx) },
			request{Method: "HEAD", Path: "/api/health"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Subtests share the server, so they run one after another.
			if err := tt.call(); err != nil {
				t.Fatalf("call: %v", err)
			}
			got := s.last()
			tt.want.Kid = s.key.ID
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestExists(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		code    string
		want    bool
		wantErr int // status of the *Error, 0 for none
	}{
		{"exists", http.StatusOK, "", true, 0},
		{"absent", http.StatusNotFound, "", false, 0},
		{"absent with warning", http.StatusNotFound, "Warning.Connection.NotExisted", false, 0},
		{"unknown hub", http.StatusNotFound, "Error.HubNotFound", false, http.StatusNotFound},
		{"bad hub name", http.StatusBadRequest, "Error.InvalidHub", false, http.StatusBadRequest},
		{"unauthorized", http.StatusUnauthorized, "Error.Unauthorized", false, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.setAnswer(func(*http.Request) (int, http.Header, string) {
				h := http.Header{}
				if tt.code != "" {
					h.Set("x-ms-error-code", tt.code)
				}
				return tt.status, h, ""
			})
			c, err := s.client()
			if err != nil {
				t.Fatal(err)
			}
			hub := c.Hub("chat")
			checks := map[string]func() (bool, error){
				"connection": func() (bool, error) { return hub.Connection("c").Exists(context.Background()) },
				"user":       func() (bool, error) { return hub.User("u").Exists(context.Background()) },
				"group":      func() (bool, error) { return hub.Group("g").Exists(context.Background()) },
				"in group":   func() (bool, error) { return hub.User("u").InGroup(context.Background(), "g") },
			}
			for what, check := range checks {
				got, err := check()
				var e *Error
				switch {
				case tt.wantErr == 0 && err != nil:
					t.Errorf("%s: unexpected error %v", what, err)
				case tt.wantErr != 0 && (!errors.As(err, &e) || e.Status != tt.wantErr || e.Code != tt.code):
					t.Errorf("%s: got error %v, want *Error %d %s", what, err, tt.wantErr, tt.code)
				case got != tt.want:
					t.Errorf("%s: got %v, want %v", what, got, tt.want)
				}
				if r := s.last(); r.Method != http.MethodHead {
					t.Errorf("%s: method %s, want HEAD", what, r.Method)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		header string
		body   string
		want   Error
	}{
		{"error detail", 400, "Error.InvalidTarget", `{"code":"Error.InvalidTarget","message":"target is required"}`,
			Error{Status: 400, Code: "Error.InvalidTarget", Message: "target is required"}},
		{"code only in header", 413, "Error.TooLarge", `{"message":"body over 1 MB"}`,
			Error{Status: 413, Code: "Error.TooLarge", Message: "body over 1 MB"}},
		{"switchboard error shape", 409, "", `{"error":"only key"}`,
			Error{Status: 409, Message: "only key"}},
		{"plain text", 502, "", "bad gateway\nfrom proxy", Error{Status: 502, Message: "bad gateway"}},
		{"empty", 500, "", "", Error{Status: 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.setAnswer(func(*http.Request) (int, http.Header, string) {
				h := http.Header{}
				if tt.header != "" {
					h.Set("x-ms-error-code", tt.header)
				}
				return tt.status, h, tt.body
			})
			c, err := s.client()
			if err != nil {
				t.Fatal(err)
			}
			err = c.Hub("chat").Broadcast(context.Background(), "t")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v (%T), want *Error", err, err)
			}
			if *e != tt.want {
				t.Errorf("got %+v, want %+v", *e, tt.want)
			}
			if !strings.Contains(e.Error(), "rest: ") {
				t.Errorf("message %q lacks the package prefix", e.Error())
			}
		})
	}
}

func TestWrongKeyIsUnauthorized(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	other := negotiate.NewAccessKey()
	c, err := New(negotiate.ConnectionString{Endpoint: s.srv.URL, AccessKey: other.Secret, KeyID: s.key.ID}.String())
	if err != nil {
		t.Fatal(err)
	}
	err = c.Hub("chat").Broadcast(context.Background(), "t")
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Code != "Error.Unauthorized" {
		t.Fatalf("got %v, want a 401 *Error", err)
	}
}

func TestNewRejectsBadConnectionString(t *testing.T) {
	t.Parallel()
	for _, cs := range []string{"", "Endpoint=ftp://x;AccessKey=k;", "AccessKey=k;", "Endpoint=http://x;"} {
		if _, err := New(cs); err == nil {
			t.Errorf("New(%q) succeeded, want an error", cs)
		}
	}
}

func TestActionsAndToken(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.setAnswer(func(r *http.Request) (int, http.Header, string) {
		if strings.HasSuffix(r.URL.Path, ":generateToken") {
			return 200, nil, `{"token":"tok"}`
		}
		return 200, nil, `{"results":[{"index":0,"status":"ok"},{"index":1,"status":"error","error":"no such connection"}]}`
	})
	c, err := s.client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := c.Hub("chat").Actions(ctx, []actions.Action{
		{Action: actions.Broadcast, Target: "t", Arguments: actions.Args(1)},
		{Action: actions.CloseConnection, ConnectionID: "c1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []ActionResult{{Index: 0, Status: "ok"}, {Index: 1, Status: "error", Error: "no such connection"}}
	if len(res) != 2 || res[0] != want[0] || res[1] != want[1] {
		t.Errorf("got %+v, want %+v", res, want)
	}
	r := s.last()
	if r.Path != "/api/hubs/chat/:actions" || r.Body != `[{"action":"broadcast","target":"t","arguments":[1]},{"action":"closeConnection","connectionId":"c1"}]` {
		t.Errorf("got request %+v", r)
	}

	tok, err := c.Hub("chat").GenerateToken(ctx, "alice", 90*time.Second)
	if err != nil || tok != "tok" {
		t.Fatalf("GenerateToken = %q, %v", tok, err)
	}
	if r := s.last(); r.Path != "/api/hubs/chat/:generateToken" || r.Query != "minutesToExpire=2&userId=alice" {
		t.Errorf("got request %+v", r)
	}
}

func TestPages(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.setAnswer(func(r *http.Request) (int, http.Header, string) {
		switch r.URL.Query().Get("continuationToken") {
		case "":
			return 200, nil, `{"value":[{"connectionId":"a","userId":"u"},{"connectionId":"b"}],"nextLink":"/api/hubs/chat/groups/g%2F1/connections?maxpagesize=2&continuationToken=YQ"}`
		case "YQ":
			// An absolute link to another host is followed on the client's
			// own endpoint only.
			return 200, nil, `{"value":[{"connectionId":"c"}],"nextLink":"http://elsewhere.example/api/hubs/chat/groups/g%2F1/connections?continuationToken=Yw"}`
		default:
			return 200, nil, `{"value":[]}`
		}
	})
	c, err := s.client()
	if err != nil {
		t.Fatal(err)
	}
	p := c.Hub("chat").Group("g/1").Connections(2)
	all, err := p.All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []ConnectionInfo{{"a", "u"}, {"b", ""}, {"c", ""}}
	if len(all) != len(want) {
		t.Fatalf("got %+v, want %+v", all, want)
	}
	for i := range want {
		if all[i] != want[i] {
			t.Errorf("entry %d: got %+v, want %+v", i, all[i], want[i])
		}
	}
	if !p.Done() {
		t.Error("Done is false after the last page")
	}
	s.mu.Lock()
	got := append([]request(nil), s.got...)
	s.mu.Unlock()
	if len(got) != 3 || got[0].Query != "maxpagesize=2" || got[2].Path != "/api/hubs/chat/groups/g%2F1/connections" {
		t.Errorf("requests: %+v", got)
	}
	if page, err := p.Next(context.Background()); page != nil || err != nil {
		t.Errorf("Next after the end = %v, %v; want nil, nil", page, err)
	}
}

func TestPagesRefusesLinkOutsideAPI(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.setAnswer(func(*http.Request) (int, http.Header, string) {
		return 200, nil, `{"value":[{"connectionId":"a"}],"nextLink":"/admin/keys"}`
	})
	c, err := s.client()
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.Hub("chat").Connections(0).All(context.Background())
	if err == nil || len(all) != 1 {
		t.Fatalf("got %v, %v; want the first page and an error", all, err)
	}
}
