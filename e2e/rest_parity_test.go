package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// The REST calls below are made as Azure's SDKs make them (azureREST: aud
// with the query, api-version 2022-06-01) against a real node, and what they
// do is observed on live clients.

const apiVersion = "api-version=2022-06-01"

// TestRESTExistenceChecksAnswerGET: every existence check answers GET as
// well as HEAD, with the status and error code Azure's SDKs look for; a
// GET's 404 carries the ErrorDetail body too.
func TestRESTExistenceChecksAnswerGET(t *testing.T) {
	g, connect := restRig(t)
	az := newAzureREST(t, g.cs.String())
	alice := connect("alice")
	if r := az.send(http.MethodPut, "/api/hubs/chat/users/alice/groups/admins?"+apiVersion, "", nil); r.status != http.StatusOK {
		t.Fatalf("add alice to admins: %d %s", r.status, r.body)
	}
	checks := []struct {
		path string
		code string // "" for 200
	}{
		{"/api/hubs/chat/connections/" + alice.id(), ""},
		{"/api/hubs/chat/connections/n1.nobody", "Warning.Connection.NotExisted"},
		{"/api/hubs/chat/users/alice", ""},
		{"/api/hubs/chat/users/nobody", "Warning.User.NotExisted"},
		{"/api/hubs/chat/groups/admins", ""},
		{"/api/hubs/chat/groups/empty", "Warning.Group.NotExisted"},
		// What the Management SDK's IsUserInGroup sends (with GET).
		{"/api/hubs/chat/users/alice/groups/admins", ""},
		{"/api/hubs/chat/users/alice/groups/others", "Info.User.NotInGroup"},
		{"/api/v1/hubs/chat/connections/" + alice.id(), ""},
		{"/api/v1/hubs/chat/users/alice", ""},
		{"/api/v1/hubs/chat/users/nobody", "Warning.User.NotExisted"},
		{"/api/v1/hubs/chat/groups/admins", ""},
		{"/api/v1/hubs/chat/groups/empty", "Warning.Group.NotExisted"},
		{"/api/v1/hubs/chat/groups/admins/users/alice", ""},
		{"/api/v1/hubs/chat/groups/others/users/alice", "Info.User.NotInGroup"},
	}
	for _, c := range checks {
		for _, m := range []string{http.MethodHead, http.MethodGet} {
			r := az.send(m, c.path+"?"+apiVersion, "", nil)
			switch {
			case c.code == "" && (r.status != http.StatusOK || len(r.body) != 0):
				t.Errorf("%s %s: %d %q, want 200 without a body", m, c.path, r.status, r.body)
			case c.code != "" && (r.status != http.StatusNotFound || r.header.Get("x-ms-error-code") != c.code):
				t.Errorf("%s %s: %d %q, want 404 %s", m, c.path, r.status, r.header.Get("x-ms-error-code"), c.code)
			case c.code != "" && m == http.MethodGet && r.errorCode(t) != c.code:
				t.Errorf("GET %s: body %s, want the ErrorDetail of %s", c.path, r.body, c.code)
			}
		}
	}
}

// errorMessage is the message of an ErrorDetail answer.
func (r restResp) errorMessage(t *testing.T) string {
	t.Helper()
	var d struct{ Message string }
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return d.Message
}

// TestRESTApplication: the application query parameter addresses hub
// "{application}_{hub}", as Azure's SDKs expect, on every kind of route and
// in :generateToken; a bad one is refused, never ignored.
func TestRESTApplication(t *testing.T) {
	g := startNode(t)
	g.createHub("myapp_chat", false)
	g.createHub("chat", false)
	az := newAzureREST(t, g.cs.String())
	appBox, plainBox := newInbox(), newInbox()
	inApp := g.dial("myapp_chat", "alice", map[string]func([]json.RawMessage){"msg": appBox.handler()})
	plain := g.dial("chat", "alice", map[string]func([]json.RawMessage){"msg": plainBox.handler()})
	app := &peer{conn: inApp, box: appBox}
	other := &peer{conn: plain, box: plainBox}
	const q = "?application=myapp&" + apiVersion
	body := func(text string) []byte { return []byte(`{"target":"msg","arguments":["` + text + `"]}`) }
	call := func(method, path string, b []byte, want int) restResp {
		t.Helper()
		ct := ""
		if b != nil {
			ct = "application/json"
		}
		r := az.send(method, path, ct, b)
		if r.status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
		}
		return r
	}
	// Sends of every kind reach the application's hub and only it.
	call(http.MethodPost, "/api/hubs/chat/:send"+q, body("broadcast"), http.StatusAccepted)
	call(http.MethodPost, "/api/hubs/chat/users/alice/:send"+q, body("user"), http.StatusAccepted)
	call(http.MethodPut, "/api/hubs/chat/users/alice/groups/g"+q, nil, http.StatusOK)
	call(http.MethodGet, "/api/hubs/chat/users/alice/groups/g"+q, nil, http.StatusOK)
	call(http.MethodGet, "/api/hubs/chat/users/alice/groups/g?"+apiVersion, nil, http.StatusNotFound)
	call(http.MethodPost, "/api/hubs/chat/groups/g/:send"+q, body("group"), http.StatusAccepted)
	call(http.MethodPost, "/api/v1/hubs/chat/connections/"+app.id()+q, body("v1 connection"), http.StatusAccepted)
	app.expect(t, "broadcast", "user", "group", "v1 connection")
	call(http.MethodPost, "/api/hubs/chat/:send?"+apiVersion, body("plain"), http.StatusAccepted)
	other.expect(t, "plain") // the first message the plain hub's client got
	call(http.MethodHead, "/api/hubs/chat/connections/"+app.id()+q, nil, http.StatusOK)
	call(http.MethodHead, "/api/hubs/chat/connections/"+app.id()+"?"+apiVersion, nil, http.StatusNotFound)

	// A token generated with the application is for its hub.
	r := call(http.MethodPost, "/api/hubs/chat/:generateToken"+q+"&userId=bob", nil, http.StatusOK)
	var tok struct{ Token, URL string }
	if err := json.Unmarshal(r.body, &tok); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok.Token, claims); err != nil {
		t.Fatal(err)
	}
	if aud, _ := claims.GetAudience(); len(aud) != 1 || !strings.HasSuffix(aud[0], "/client/?hub=myapp_chat") || !strings.HasSuffix(tok.URL, "hub=myapp_chat") {
		t.Fatalf("generated token aud %v, url %q: want hub myapp_chat", aud, tok.URL)
	}
	if status, b := do(t, http.MethodPost, g.url+"/client/negotiate?hub=myapp_chat", tok.Token, nil); status != http.StatusOK {
		t.Fatalf("negotiate with the generated token: %d %s", status, b)
	}

	refused := []struct {
		query, code, says string
		status            int
	}{
		{"?application=1app", "Error.InvalidApplication", `invalid application "1app"`, 400},
		{"?application=my-app", "Error.InvalidApplication", `invalid application "my-app"`, 400},
		{"?application=a&application=b", "Error.InvalidApplication", "give it at most once", 400},
		{"?application=" + strings.Repeat("a", 125), "Error.InvalidApplication", "the limit is 128", 400},
		{"?application=other", "Error.HubNotFound", `hub "other_chat" not found`, 404},
	}
	for _, c := range refused {
		for _, path := range []string{"/api/hubs/chat/:send", "/api/hubs/chat/:generateToken", "/api/v1/hubs/chat/groups/g/users/alice"} {
			method, b := http.MethodPost, body("refused")
			if strings.HasPrefix(path, "/api/v1") {
				method, b = http.MethodGet, nil
			}
			r := az.send(method, path+c.query, "application/json", b)
			if r.status != c.status || r.errorCode(t) != c.code || !strings.Contains(r.errorMessage(t), c.says) {
				t.Errorf("%s %s%s: %d %s, want %d %s saying %s", method, path, c.query, r.status, r.body, c.status, c.code, c.says)
			}
		}
	}
	call(http.MethodPost, "/api/hubs/chat/:send"+q, body("after"), http.StatusAccepted)
	app.expect(t, "after")
}
