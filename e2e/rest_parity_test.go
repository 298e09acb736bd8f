package e2e

import (
	"net/http"
	"testing"
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
