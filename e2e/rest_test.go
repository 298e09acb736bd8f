package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/node"
)

// restResp is a REST answer.
type restResp struct {
	status int
	header http.Header
	body   []byte
}

// errorCode is the Azure ErrorDetail code of an error answer, checked to
// agree with the x-ms-error-code header.
func (r restResp) errorCode(t *testing.T) string {
	t.Helper()
	var d struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(r.body, &d); err != nil || d.Code == "" || d.Message == "" {
		t.Fatalf("error body %q is not an ErrorDetail with code and message (%v)", r.body, err)
	}
	if h := r.header.Get("x-ms-error-code"); h != d.Code {
		t.Fatalf("x-ms-error-code %q, body code %q", h, d.Code)
	}
	return d.Code
}

// restToken signs a REST token for aud with the node's access key.
func (g *gw) restToken(aud string) string {
	g.t.Helper()
	tok, err := negotiate.IssueToken(g.cs.Key(), negotiate.TokenOptions{Audience: aud, Lifetime: time.Hour})
	if err != nil {
		g.t.Fatal(err)
	}
	return tok
}

// restAs calls the REST API at path with token (none if "").
func (g *gw) restAs(token, method, path string, body any) restResp {
	g.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			g.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, g.url+path, r)
	if err != nil {
		g.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return restResp{status: resp.StatusCode, header: resp.Header, body: data}
}

// rest calls the REST API with a token whose aud is the request URL without
// its query, as Azure's REST documentation says.
func (g *gw) rest(method, path string, body any) restResp {
	g.t.Helper()
	aud, _, _ := strings.Cut(g.url+path, "?")
	return g.restAs(g.restToken(aud), method, path, body)
}

// restWant calls the REST API and fails the test on an unexpected status.
func (g *gw) restWant(method, path string, body any, want int) restResp {
	g.t.Helper()
	r := g.rest(method, path, body)
	if r.status != want {
		g.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

func msg(text string) map[string]any {
	return map[string]any{"target": "msg", "arguments": []string{text}}
}

// peer is a connected Go client with an inbox for target "msg".
type peer struct {
	conn *client.Conn
	box  *inbox
}

func (p *peer) id() string { return p.conn.ConnectionID() }

// expect checks that the next messages on p are exactly want, in order.
func (p *peer) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := str(t, p.box.next(t)[0]); got != w {
			t.Fatalf("%s got message %q, want %q", p.id(), got, w)
		}
	}
}

// closedWith waits until the server closed p and checks the Close reason.
func (p *peer) closedWith(t *testing.T, reason string) {
	t.Helper()
	select {
	case <-p.conn.Done():
	case <-time.After(waitFor):
		t.Fatalf("%s still open after %s, want closed with %q", p.id(), waitFor, reason)
	}
	var ce *client.CloseError
	if err := p.conn.Err(); !errors.As(err, &ce) || ce.Message != reason {
		t.Fatalf("%s ended with %v, want a Close message with reason %q", p.id(), err, reason)
	}
}

// restRig is a node with hub "chat" (tokens required) and no upstream.
func restRig(t *testing.T) (*gw, func(user string) *peer) {
	g := startNode(t)
	g.createHub("chat", false)
	return g, func(user string) *peer {
		box := newInbox()
		return &peer{conn: g.dial("chat", user, map[string]func([]json.RawMessage){"msg": box.handler()}), box: box}
	}
}

// restBarrier broadcasts a marker every listed peer must get next: messages
// to one connection keep their order, so a peer that was wrongly sent an
// earlier message sees that message instead, without any sleeping.
func restBarrier(t *testing.T, g *gw, name string, peers ...*peer) {
	t.Helper()
	g.restWant(http.MethodPost, "/api/hubs/chat/:send", msg(name), http.StatusAccepted)
	for _, p := range peers {
		p.expect(t, name)
	}
}

func TestRESTSends(t *testing.T) {
	g, connect := restRig(t)
	a, b, c, a2 := connect("ua"), connect("ub"), connect("uc"), connect("ua")
	everyone := []*peer{a, b, c, a2}
	for _, p := range []*peer{a, b} {
		g.restWant(http.MethodPut, "/api/hubs/chat/groups/room/connections/"+p.id(), nil, http.StatusOK)
	}

	steps := []struct {
		name string
		path string
		got  []*peer // receive the message, in this order of checking
	}{
		{"broadcast", "/api/hubs/chat/:send", everyone},
		{"broadcast excluding", "/api/hubs/chat/:send?excluded=" + c.id() + "&excluded=" + a2.id(), []*peer{a, b}},
		{"group", "/api/hubs/chat/groups/room/:send?api-version=2022-06-01", []*peer{a, b}},
		{"group excluding", "/api/hubs/chat/groups/room/:send?excluded=" + b.id(), []*peer{a}},
		{"user", "/api/hubs/chat/users/ua/:send", []*peer{a, a2}},
		{"connection", "/api/hubs/chat/connections/" + c.id() + "/:send", []*peer{c}},
		{"user without connections", "/api/hubs/chat/users/nobody/:send", nil},
		{"group without members", "/api/hubs/chat/groups/empty/:send", nil},
		{"connection gone", "/api/hubs/chat/connections/n1.nope/:send", nil},
		{"v1 broadcast", "/api/v1/hubs/chat", everyone},
		{"v1 group", "/api/v1/hubs/chat/groups/room", []*peer{a, b}},
		{"v1 user", "/api/v1/hubs/chat/users/ub", []*peer{b}},
		{"v1 connection", "/api/v1/hubs/chat/connections/" + a2.id(), []*peer{a2}},
	}
	for _, st := range steps {
		g.restWant(http.MethodPost, st.path, msg(st.name), http.StatusAccepted)
		for _, p := range st.got {
			p.expect(t, st.name)
		}
		// Whoever should not have got it sees the barrier next.
		restBarrier(t, g, "after "+st.name, everyone...)
	}
}

func TestRESTMembershipAndExistence(t *testing.T) {
	g, connect := restRig(t)
	a, b := connect("ua"), connect("ub")
	h := "/api/hubs/chat"

	head := func(path string, want int, code string) {
		t.Helper()
		r := g.rest(http.MethodHead, path, nil)
		if r.status != want || r.header.Get("x-ms-error-code") != code {
			t.Fatalf("HEAD %s: %d %q, want %d %q", path, r.status, r.header.Get("x-ms-error-code"), want, code)
		}
	}
	head(h+"/connections/"+a.id(), http.StatusOK, "")
	head(h+"/connections/n1.nobody", http.StatusNotFound, "Warning.Connection.NotExisted")
	head(h+"/users/ua", http.StatusOK, "")
	head(h+"/users/nobody", http.StatusNotFound, "Warning.User.NotExisted")
	head(h+"/groups/room", http.StatusNotFound, "Warning.Group.NotExisted")
	head(h+"/users/ua/groups/room", http.StatusNotFound, "Info.User.NotInGroup")

	// connection ↔ group
	r := g.restWant(http.MethodPut, h+"/groups/room/connections/n1.nobody", nil, http.StatusNotFound)
	if code := r.errorCode(t); code != "Error.Connection.NotExisted" {
		t.Fatalf("adding a missing connection: code %q", code)
	}
	g.restWant(http.MethodPut, h+"/groups/room/connections/"+a.id(), nil, http.StatusOK)
	head(h+"/groups/room", http.StatusOK, "")
	head(h+"/users/ua/groups/room", http.StatusOK, "")
	head(h+"/users/ub/groups/room", http.StatusNotFound, "Info.User.NotInGroup")
	g.restWant(http.MethodDelete, h+"/groups/room/connections/"+a.id(), nil, http.StatusOK)
	head(h+"/groups/room", http.StatusNotFound, "Warning.Group.NotExisted")
	g.restWant(http.MethodDelete, h+"/groups/room/connections/n1.nobody", nil, http.StatusNotFound)

	// remove a connection from all groups
	g.restWant(http.MethodPut, h+"/groups/g1/connections/"+b.id(), nil, http.StatusOK)
	g.restWant(http.MethodPut, "/api/v1/hubs/chat/groups/g2/connections/"+b.id(), nil, http.StatusOK)
	g.restWant(http.MethodPost, h+"/groups/g2/:send", msg("g2"), http.StatusAccepted)
	b.expect(t, "g2")
	g.restWant(http.MethodDelete, h+"/connections/"+b.id()+"/groups", nil, http.StatusOK)
	head(h+"/groups/g1", http.StatusNotFound, "Warning.Group.NotExisted")
	head(h+"/groups/g2", http.StatusNotFound, "Warning.Group.NotExisted")
	g.restWant(http.MethodPost, h+"/groups/g1/:send", msg("g1"), http.StatusAccepted)
	restBarrier(t, g, "b1", a, b)

	// user ↔ group without ttl: current and future connections, saved.
	g.restWant(http.MethodPut, h+"/users/ua/groups/vip", nil, http.StatusOK)
	head(h+"/users/ua/groups/vip", http.StatusOK, "")
	a2 := connect("ua")
	g.restWant(http.MethodPost, h+"/groups/vip/:send", msg("vip 1"), http.StatusAccepted)
	a.expect(t, "vip 1")
	a2.expect(t, "vip 1")
	g.restWant(http.MethodDelete, h+"/users/ua/groups/vip", nil, http.StatusNoContent)
	head(h+"/users/ua/groups/vip", http.StatusNotFound, "Info.User.NotInGroup")
	g.restWant(http.MethodPost, h+"/groups/vip/:send", msg("vip 2"), http.StatusAccepted)
	restBarrier(t, g, "b2", a, a2, b)

	// ttl=0: only the user's current connections join; nothing is saved.
	g.restWant(http.MethodPut, h+"/users/ub/groups/now?ttl=0", nil, http.StatusOK)
	b2 := connect("ub")
	g.restWant(http.MethodPost, h+"/groups/now/:send", msg("now"), http.StatusAccepted)
	b.expect(t, "now")
	restBarrier(t, g, "b3", a, a2, b, b2)

	// ttl>0 reaches a later connection; removing the user from all groups
	// ends every membership, saved or live.
	g.restWant(http.MethodPut, h+"/users/ub/groups/later?ttl=3600", nil, http.StatusOK)
	b3 := connect("ub")
	g.restWant(http.MethodPost, h+"/groups/later/:send", msg("later"), http.StatusAccepted)
	b.expect(t, "later")
	b2.expect(t, "later")
	b3.expect(t, "later")
	g.restWant(http.MethodDelete, h+"/users/ub/groups", nil, http.StatusNoContent)
	head(h+"/users/ub/groups/later", http.StatusNotFound, "Info.User.NotInGroup")
	head(h+"/users/ub/groups/now", http.StatusNotFound, "Info.User.NotInGroup")
	b4 := connect("ub")
	for _, grp := range []string{"later", "now"} {
		g.restWant(http.MethodPost, h+"/groups/"+grp+"/:send", msg(grp), http.StatusAccepted)
	}
	restBarrier(t, g, "b4", a, a2, b, b2, b3, b4)

	// v1 user-group paths answer 202 as Azure's v1 does.
	g.restWant(http.MethodPut, "/api/v1/hubs/chat/groups/v1g/users/ua", nil, http.StatusAccepted)
	head("/api/v1/hubs/chat/groups/v1g/users/ua", http.StatusOK, "")
	g.restWant(http.MethodDelete, "/api/v1/hubs/chat/groups/v1g/users/ua", nil, http.StatusAccepted)
	head("/api/v1/hubs/chat/groups/v1g/users/ua", http.StatusNotFound, "Info.User.NotInGroup")
}

func TestRESTClose(t *testing.T) {
	g, connect := restRig(t)
	h := "/api/hubs/chat"
	a := connect("ua")
	inGroup, keptInGroup := connect("ub"), connect("uc")
	u1, u2 := connect("ud"), connect("ud")
	rest1, rest2, kept := connect("ue"), connect("uf"), connect("ug")
	for _, p := range []*peer{inGroup, keptInGroup} {
		g.restWant(http.MethodPut, h+"/groups/room/connections/"+p.id(), nil, http.StatusOK)
	}

	// One connection, with a reason.
	g.restWant(http.MethodDelete, h+"/connections/"+a.id()+"?reason=bye%20now", nil, http.StatusOK)
	a.closedWith(t, "bye now")
	// Closing a connection that is gone is not an error.
	g.restWant(http.MethodDelete, h+"/connections/"+a.id(), nil, http.StatusOK)
	restBarrier(t, g, "b1", inGroup, keptInGroup, u1, u2, rest1, rest2, kept)

	// A group, except one member.
	g.restWant(http.MethodPost, h+"/groups/room/:closeConnections?reason=room%20closed&excluded="+keptInGroup.id(), nil, http.StatusNoContent)
	inGroup.closedWith(t, "room closed")
	restBarrier(t, g, "b2", keptInGroup, u1, u2, rest1, rest2, kept)

	// A user: every connection of it.
	g.restWant(http.MethodPost, h+"/users/ud/:closeConnections?reason=logged%20out", nil, http.StatusNoContent)
	u1.closedWith(t, "logged out")
	u2.closedWith(t, "logged out")
	restBarrier(t, g, "b3", keptInGroup, rest1, rest2, kept)

	// The whole hub, except one.
	g.restWant(http.MethodPost, h+"/:closeConnections?reason=maintenance&excluded="+kept.id(), nil, http.StatusNoContent)
	for _, p := range []*peer{keptInGroup, rest1, rest2} {
		p.closedWith(t, "maintenance")
	}
	restBarrier(t, g, "b4", kept)
	if r := g.rest(http.MethodHead, h+"/connections/"+kept.id(), nil); r.status != http.StatusOK {
		t.Fatalf("the excluded connection: HEAD %d, want 200", r.status)
	}
}

// TestRESTUserGroupsSurviveRestart: saved user-group memberships (with and
// without ttl) apply to connections opened after a restart; a ttl=0 one,
// never saved, does not.
func TestRESTUserGroupsSurviveRestart(t *testing.T) {
	g, connect := restRig(t)
	h := "/api/hubs/chat"
	carol := connect("carol")
	g.restWant(http.MethodPut, h+"/users/alice/groups/vip", nil, http.StatusOK)
	g.restWant(http.MethodPut, h+"/users/bob/groups/vip?ttl=3600", nil, http.StatusOK)
	g.restWant(http.MethodPut, h+"/users/carol/groups/vip?ttl=0", nil, http.StatusOK)
	g.restWant(http.MethodPost, h+"/groups/vip/:send", msg("before"), http.StatusAccepted)
	carol.expect(t, "before")

	db := g.db
	g.close()
	g2 := startNodeWith(t, node.Config{Listen: "127.0.0.1:0", DBPath: db, Logger: quietLogger(t)})
	connect2 := func(user string) *peer {
		box := newInbox()
		return &peer{conn: g2.dial("chat", user, map[string]func([]json.RawMessage){"msg": box.handler()}), box: box}
	}
	alice, bob, carol2 := connect2("alice"), connect2("bob"), connect2("carol")
	g2.restWant(http.MethodHead, h+"/users/alice/groups/vip", nil, http.StatusOK)
	g2.restWant(http.MethodHead, h+"/users/bob/groups/vip", nil, http.StatusOK)
	g2.restWant(http.MethodPost, h+"/groups/vip/:send", msg("after"), http.StatusAccepted)
	alice.expect(t, "after")
	bob.expect(t, "after")
	restBarrier(t, g2, "barrier", alice, bob, carol2)
}
