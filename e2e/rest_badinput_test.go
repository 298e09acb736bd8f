package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/negotiate"
)

// TestRESTBadInput: each bad request gets a clear Azure-shaped error and
// disturbs nobody: a connected client receives nothing from any of them,
// then a normal broadcast.
func TestRESTBadInput(t *testing.T) {
	g, connect := restRig(t)
	watcher := connect("ua")
	h := "/api/hubs/chat"
	sendURL := g.url + h + "/:send"

	sign := func(key negotiate.AccessKey, aud string, now time.Time) string {
		tok, err := negotiate.IssueToken(key, negotiate.TokenOptions{Audience: aud, Lifetime: time.Hour,
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	exp := time.Now().Add(time.Hour).Unix()
	algNone := seg(`{"alg":"none","typ":"JWT"}`) + "." +
		seg(`{"aud":"`+sendURL+`","exp":`+strconv.FormatInt(exp, 10)+`}`) + "."

	auth := []struct {
		name  string
		token string
	}{
		{"no token", ""},
		{"wrong aud", sign(g.cs.Key(), g.url+h+"/users/ua/:send", time.Now())},
		{"aud of another hub", sign(g.cs.Key(), g.url+"/api/hubs/other/:send", time.Now())},
		{"expired", sign(g.cs.Key(), sendURL, time.Now().Add(-2*time.Hour))},
		{"unknown key id", sign(negotiate.AccessKey{ID: "nokey", Secret: "not-the-key-0123456789abcdef"}, sendURL, time.Now())},
		{"other key without kid", sign(negotiate.AccessKey{Secret: "not-the-key-0123456789abcdef"}, sendURL, time.Now())},
		{"alg none", algNone},
		{"malformed", "not.a.jwt"},
		{"two segments", "abc.def"},
	}
	for _, tt := range auth {
		t.Run("401 "+tt.name, func(t *testing.T) {
			r := g.restAs(tt.token, http.MethodPost, h+"/:send", msg("must not arrive"))
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", r.status, r.body)
			}
			if code := r.errorCode(t); code != "Error.Unauthorized" {
				t.Fatalf("code %q", code)
			}
		})
	}

	long := strings.Repeat("g", 1025)
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		code   string
		says   string // part of the message
	}{
		{"hub name starting with a digit", "POST", "/api/hubs/1chat/:send", msg("x"), 400, "Error.InvalidHub", "must start with a letter"},
		{"hub name with a hyphen", "POST", "/api/hubs/my-hub/:send", msg("x"), 400, "Error.InvalidHub", "invalid hub name"},
		{"unknown hub", "POST", "/api/hubs/nohub/:send", msg("x"), 404, "Error.HubNotFound", "not found"},
		{"empty group", "POST", h + "/groups//:send", msg("x"), 400, "Error.InvalidGroup", "empty"},
		{"blank group", "POST", h + "/groups/%20%20/:send", msg("x"), 400, "Error.InvalidGroup", "empty"},
		{"group over 1024 chars", "POST", h + "/groups/" + long + "/:send", msg("x"), 400, "Error.InvalidGroup", "1024"},
		{"group over 1024 chars, membership", "PUT", h + "/groups/" + long + "/connections/" + watcher.id(), nil, 400, "Error.InvalidGroup", "1024"},
		{"missing target", "POST", h + "/:send", map[string]any{"arguments": []int{1}}, 400, "Error.InvalidBody", "target"},
		{"empty target", "POST", h + "/:send", map[string]any{"target": "", "arguments": []int{1}}, 400, "Error.InvalidBody", "target"},
		{"arguments not an array", "POST", h + "/:send", map[string]any{"target": "msg", "arguments": "x"}, 400, "Error.InvalidBody", "array"},
		{"arguments an object", "POST", h + "/groups/g/:send", map[string]any{"target": "msg", "arguments": map[string]int{"a": 1}}, 400, "Error.InvalidBody", "array"},
		{"body not JSON", "POST", h + "/:send", "target=msg", 400, "Error.InvalidBody", "JSON"},
		{"body over 1 MB", "POST", h + "/:send", `{"target":"msg","arguments":["` + strings.Repeat("x", 1<<20) + `"]}`, 413, "Error.BodyTooLarge", "larger than"},
		{"negative ttl", "PUT", h + "/users/ua/groups/g?ttl=-1", nil, 400, "Error.InvalidParameter", "ttl"},
		{"ttl beyond Azure's int32", "PUT", h + "/users/ua/groups/g?ttl=2147483648", nil, 400, "Error.InvalidParameter", "ttl"},
		{"batch not an array", "POST", h + "/:actions", map[string]any{"action": "broadcast"}, 400, "Error.InvalidBody", "array"},
		{"batch over 100", "POST", h + "/:actions", make([]map[string]any, 101), 400, "Error.InvalidBody", "limit is 100"},
		{"batch action without connectionId", "POST", h + "/:actions",
			[]map[string]any{{"action": "addToGroup", "group": "g"}}, 400, "Error.InvalidAction", "connectionId is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.rest(tt.method, tt.path, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if code := r.errorCode(t); code != tt.code {
				t.Fatalf("code %q, want %q", code, tt.code)
			}
			if !strings.Contains(string(r.body), tt.says) {
				t.Fatalf("message %s does not say %q", r.body, tt.says)
			}
		})
	}

	// A group of exactly 1024 characters is fine.
	g.restWant(http.MethodPost, h+"/groups/"+long[:1024]+"/:send", msg("x"), http.StatusAccepted)
	// A send to a user with no connections is accepted and reaches nobody.
	g.restWant(http.MethodPost, h+"/users/nobody/:send", msg("to nobody"), http.StatusAccepted)
	restBarrier(t, g, "still fine", watcher)
}

// TestRESTBatch: actions run in order with a result each; one unknown
// action refuses the whole batch, naming it, and runs none of it.
func TestRESTBatch(t *testing.T) {
	g, connect := restRig(t)
	a, b := connect("ua"), connect("ub")
	h := "/api/hubs/chat"

	r := g.restWant(http.MethodPost, h+"/:actions", []map[string]any{
		{"action": "sendToConnection", "connectionId": a.id(), "target": "msg", "arguments": []string{"first"}},
		{"action": "frobnicate", "group": "g"},
	}, http.StatusBadRequest)
	if code := r.errorCode(t); code != "Error.InvalidAction" {
		t.Fatalf("code %q", code)
	}
	for _, want := range []string{"action 1", "unknown action", "frobnicate"} {
		if !strings.Contains(string(r.body), want) {
			t.Fatalf("message %s does not name %s", r.body, want)
		}
	}
	// a must not have got "first": the barrier is its next message.
	restBarrier(t, g, "b1", a, b)

	r = g.restWant(http.MethodPost, h+"/:actions", []map[string]any{
		{"action": "addToGroup", "group": "room", "connectionId": b.id()},
		{"action": "sendToGroup", "group": "room", "target": "msg", "arguments": []string{"room"}},
		{"action": "addToGroup", "group": "room", "connectionId": "n1.gone"},
		{"action": "addUserToGroup", "user": "ua", "group": "fans", "ttl": 60},
		{"action": "sendToGroup", "group": "fans", "target": "msg", "arguments": []string{"fans"}},
		{"action": "closeConnection", "connectionId": b.id(), "reason": "batch done"},
	}, http.StatusOK)
	var out struct {
		Results []struct {
			Index  int    `json:"index"`
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	want := []string{"ok", "ok", "error", "ok", "ok", "ok"}
	if len(out.Results) != len(want) {
		t.Fatalf("results %s, want %d", r.body, len(want))
	}
	for i, res := range out.Results {
		if res.Index != i || res.Status != want[i] {
			t.Errorf("result %d: %+v, want index %d status %s", i, res, i, want[i])
		}
	}
	if !strings.Contains(out.Results[2].Error, "n1.gone") {
		t.Errorf("error of the failed action %q does not name the connection", out.Results[2].Error)
	}
	b.expect(t, "room")
	a.expect(t, "fans")
	b.closedWith(t, "batch done")
}
