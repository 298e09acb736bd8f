package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// azureREST is what code written for Azure SignalR's REST API does, with
// nothing from this repository: parse the connection string, sign a JWT with
// the access key whose aud is the full request URL (query included, as
// Azure's Management SDK sends it; nameid as the SDK sets it, no kid), and
// call the 2022-06-01 paths.
type azureREST struct {
	t        *testing.T
	endpoint string
	key      string
}

func newAzureREST(t *testing.T, connectionString string) *azureREST {
	a := &azureREST{t: t}
	for _, part := range strings.Split(connectionString, ";") {
		k, v, _ := strings.Cut(part, "=")
		switch strings.ToLower(k) {
		case "endpoint":
			a.endpoint = strings.TrimRight(v, "/")
		case "accesskey":
			a.key = v
		}
	}
	if a.endpoint == "" || a.key == "" {
		t.Fatalf("connection string %q lacks Endpoint or AccessKey", connectionString)
	}
	return a
}

func (a *azureREST) call(method, pathAndQuery string, body string) int {
	a.t.Helper()
	contentType := ""
	if body != "" {
		contentType = "application/json; charset=utf-8"
	}
	r := a.send(method, pathAndQuery, contentType, []byte(body))
	return r.status
}

// send makes one call with a body of contentType ("" for none) and returns
// the whole answer.
func (a *azureREST) send(method, pathAndQuery, contentType string, body []byte) restResp {
	a.t.Helper()
	url := a.endpoint + pathAndQuery
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"nameid": "buildagent_6f1c2a",
		"aud":    url,
		"iat":    now.Unix(),
		"nbf":    now.Unix(),
		"exp":    now.Add(time.Hour).Unix(),
	}).SignedString([]byte(a.key))
	if err != nil {
		a.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return restResp{status: resp.StatusCode, header: resp.Header, body: data}
}

// TestAzureRESTCallSequence: an Azure SignalR REST call sequence (send to
// group, add user to group, check existence, close) works unchanged against
// Switchboard given its connection string.
func TestAzureRESTCallSequence(t *testing.T) {
	g, _ := restRig(t)
	box := newInbox()
	alice := g.dial("chat", "alice", map[string]func([]json.RawMessage){"newMessage": box.handler()})
	id := alice.ConnectionID()
	az := newAzureREST(t, g.cs.String())

	const v = "?api-version=2022-06-01"
	steps := []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/api/hubs/chat/groups/room/connections/" + id + v, "", 200},
		{"POST", "/api/hubs/chat/groups/room/:send" + v, `{"target":"newMessage","arguments":["hello room"]}`, 202},
		{"PUT", "/api/hubs/chat/users/alice/groups/admins" + v, "", 200},
		{"POST", "/api/hubs/chat/groups/admins/:send" + v, `{"target":"newMessage","arguments":["hello admins"]}`, 202},
		{"POST", "/api/hubs/chat/users/alice/:send" + v, `{"target":"newMessage","arguments":["hello alice"]}`, 202},
		{"HEAD", "/api/hubs/chat/users/alice/groups/admins" + v, "", 200},
		{"HEAD", "/api/hubs/chat/users/alice" + v, "", 200},
		{"HEAD", "/api/hubs/chat/groups/room" + v, "", 200},
		{"HEAD", "/api/hubs/chat/connections/" + id + v, "", 200},
		{"HEAD", "/api/hubs/chat/connections/doesnotexist" + v, "", 404},
		{"DELETE", "/api/hubs/chat/users/alice/groups/admins" + v, "", 204},
		{"DELETE", "/api/hubs/chat/connections/" + id + v + "&reason=session%20ended", "", 200},
	}
	for _, st := range steps {
		if got := az.call(st.method, st.path, st.body); got != st.want {
			t.Fatalf("%s %s: status %d, want %d", st.method, st.path, got, st.want)
		}
	}
	for _, want := range []string{"hello room", "hello admins", "hello alice"} {
		if got := str(t, box.next(t)[0]); got != want {
			t.Fatalf("client got %q, want %q", got, want)
		}
	}
	(&peer{conn: alice, box: box}).closedWith(t, "session ended")

	// Once the socket is gone, the existence check says so.
	deadline := time.Now().Add(waitFor)
	for az.call("HEAD", "/api/hubs/chat/connections/"+id+v, "") != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatalf("connection %s still exists %s after it was closed", id, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
