package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/switchboard-gw/switchboard/client"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/node"
	"github.com/switchboard-gw/switchboard/rest"
	"github.com/switchboard-gw/switchboard/upstream"
)

// keyIDs lists the access key ids, newest first (GET /admin/keys).
func (g *gw) keyIDs() []string {
	g.t.Helper()
	var out struct {
		Keys []struct {
			ID string `json:"id"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(g.admin(http.MethodGet, "/admin/keys", nil, http.StatusOK), &out); err != nil {
		g.t.Fatal(err)
	}
	ids := make([]string, len(out.Keys))
	for i, k := range out.Keys {
		ids[i] = k.ID
	}
	return ids
}

// rotation is the answer of POST /admin/keys/:rotate.
type rotation struct {
	ID               string   `json:"id"`
	ConnectionString string   `json:"connectionString"`
	Dropped          []string `json:"dropped"`
}

// rotate rotates the keys and returns the new key's connection string,
// pointed at the address the test reaches the node at.
func (g *gw) rotate() (rotation, negotiate.ConnectionString) {
	g.t.Helper()
	var out rotation
	if err := json.Unmarshal(g.admin(http.MethodPost, "/admin/keys/:rotate", nil, http.StatusOK), &out); err != nil {
		g.t.Fatal(err)
	}
	cs, err := negotiate.ParseConnectionString(out.ConnectionString)
	if err != nil {
		g.t.Fatalf("rotation answered a bad connection string: %v", err)
	}
	if cs.KeyID != out.ID || cs.Endpoint != g.node.URL() {
		g.t.Fatalf("connection string names key %q at %q, want %q at %q", cs.KeyID, cs.Endpoint, out.ID, g.node.URL())
	}
	cs.Endpoint = g.url
	return out, cs
}

// negotiateWith negotiates for hub with a token signed by cs and returns
// the status.
func negotiateWith(t *testing.T, g *gw, cs negotiate.ConnectionString, hub string) int {
	t.Helper()
	resp, err := negotiate.NewResponse(cs, hub, "bob")
	if err != nil {
		t.Fatal(err)
	}
	status, body := do(t, http.MethodPost, g.url+"/client/negotiate?hub="+hub+"&negotiateVersion=1", resp.AccessToken, nil)
	if status != http.StatusOK && status != http.StatusUnauthorized {
		t.Fatalf("negotiate: unexpected status %d: %s", status, body)
	}
	return status
}

// restStatus makes one REST call signed by cs (:generateToken, which
// answers 200) and returns the status: 200, or the *rest.Error's.
func restStatus(t *testing.T, cs negotiate.ConnectionString, hub string) int {
	t.Helper()
	c, err := rest.New(cs.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err = c.Hub(hub).GenerateToken(ctx, "bob", 0)
	var e *rest.Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &e):
		return e.Status
	default:
		t.Fatalf("REST call: %v", err)
		return 0
	}
}

// alive proves c still works end to end: an invocation reaches the
// upstream and its result comes back.
func alive(t *testing.T, c *client.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := c.Invoke(ctx, "ping")
	if err != nil || string(res) != `"pong"` {
		t.Fatalf("connection %s: invoke = %s, %v; want \"pong\"", c.ConnectionID(), res, err)
	}
}

// TestKeyRotation follows a rotation from start to revocation: tokens of
// the old key work until it is revoked and get 401 after, new-key tokens
// work throughout, and a connection opened with an old-key token is never
// dropped.
func TestKeyRotation(t *testing.T) {
	g, rec := setup(t)
	rec.setReply(func(ev *upstream.Event) (int, any) {
		if ev.Event == upstream.EventMessage {
			return http.StatusOK, map[string]any{"result": "pong"}
		}
		return http.StatusNoContent, nil
	})
	oldCS := g.cs
	if ids := g.keyIDs(); len(ids) != 1 || ids[0] != oldCS.KeyID {
		t.Fatalf("keys before rotation = %v, want [%s]", ids, oldCS.KeyID)
	}
	conn := g.dial("chat", "alice", nil) // signed with the old key
	alive(t, conn)

	rot, newCS := g.rotate()
	if rot.ID == oldCS.KeyID || len(rot.Dropped) != 0 {
		t.Fatalf("rotation = %+v: want a new id and nothing dropped", rot)
	}
	if ids := g.keyIDs(); len(ids) != 2 || ids[0] != rot.ID || ids[1] != oldCS.KeyID {
		t.Fatalf("keys after rotation = %v, want [%s %s]", ids, rot.ID, oldCS.KeyID)
	}

	steps := []struct {
		name           string
		cs             negotiate.ConnectionString
		wantNegotiate  int
		wantREST       int
		afterRevokeOld bool
	}{
		{"old key before revoke", oldCS, 200, 200, false},
		{"new key before revoke", newCS, 200, 200, false},
		{"old key after revoke", oldCS, 401, 401, true},
		{"new key after revoke", newCS, 200, 200, true},
	}
	revoked := false
	for _, st := range steps {
		if st.afterRevokeOld && !revoked {
			g.admin(http.MethodDelete, "/admin/keys/"+oldCS.KeyID, nil, http.StatusNoContent)
			revoked = true
			if ids := g.keyIDs(); len(ids) != 1 || ids[0] != rot.ID {
				t.Fatalf("keys after revoke = %v, want [%s]", ids, rot.ID)
			}
		}
		if got := negotiateWith(t, g, st.cs, "chat"); got != st.wantNegotiate {
			t.Errorf("%s: negotiate status %d, want %d", st.name, got, st.wantNegotiate)
		}
		if got := restStatus(t, st.cs, "chat"); got != st.wantREST {
			t.Errorf("%s: REST status %d, want %d", st.name, got, st.wantREST)
		}
		alive(t, conn)
	}

	// A client dialling with the new key works end to end; the old key's
	// connection is still there.
	g.cs = newCS
	alive(t, g.dial("chat", "carol", nil))
	alive(t, conn)
	select {
	case <-conn.Done():
		t.Fatalf("the old-key connection was closed: %v", conn.Err())
	default:
	}
}

// TestKeyRotationDropsOlderKeys: only the newest previous key survives a
// rotation, and revocation refuses what would lock everyone out.
func TestKeyRotationDropsOlderKeys(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	first := g.cs
	r1, cs1 := g.rotate()
	r2, cs2 := g.rotate()
	if len(r2.Dropped) != 1 || r2.Dropped[0] != first.KeyID {
		t.Fatalf("second rotation dropped %v, want [%s]", r2.Dropped, first.KeyID)
	}
	if ids := g.keyIDs(); len(ids) != 2 || ids[0] != r2.ID || ids[1] != r1.ID {
		t.Fatalf("keys = %v, want [%s %s]", ids, r2.ID, r1.ID)
	}
	for _, tt := range []struct {
		name string
		cs   negotiate.ConnectionString
		want int
	}{
		{"dropped key", first, 401},
		{"secondary key", cs1, 200},
		{"primary key", cs2, 200},
	} {
		if got := negotiateWith(t, g, tt.cs, "chat"); got != tt.want {
			t.Errorf("%s: negotiate status %d, want %d", tt.name, got, tt.want)
		}
		if got := restStatus(t, tt.cs, "chat"); got != tt.want {
			t.Errorf("%s: REST status %d, want %d", tt.name, got, tt.want)
		}
	}

	// Revoking the primary leaves the secondary, which :generateToken then
	// signs with.
	g.admin(http.MethodDelete, "/admin/keys/"+r2.ID, nil, http.StatusNoContent)
	g.admin(http.MethodDelete, "/admin/keys/"+r2.ID, nil, http.StatusNotFound)
	body := g.admin(http.MethodDelete, "/admin/keys/"+r1.ID, nil, http.StatusConflict)
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Errorf("409 answer %s has no {\"error\"}", body)
	}
	if got := restStatus(t, cs1, "chat"); got != 200 {
		t.Errorf("remaining key: REST status %d, want 200", got)
	}
	if got := restStatus(t, cs2, "chat"); got != 401 {
		t.Errorf("revoked primary: REST status %d, want 401", got)
	}

	// The admin key, not an access key, guards these endpoints.
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/admin/keys"},
		{http.MethodPost, "/admin/keys/:rotate"},
		{http.MethodDelete, "/admin/keys/" + r1.ID},
	} {
		if status, _ := do(t, req.method, g.url+req.path, cs1.AccessKey, nil); status != http.StatusUnauthorized {
			t.Errorf("%s %s with an access key: status %d, want 401", req.method, req.path, status)
		}
	}
}

// TestKeyRotationSurvivesRestart: the rotated keys are what a restarted
// node trusts.
func TestKeyRotationSurvivesRestart(t *testing.T) {
	g := startNode(t)
	g.createHub("chat", false)
	old := g.cs
	_, newCS := g.rotate()
	g.admin(http.MethodDelete, "/admin/keys/"+old.KeyID, nil, http.StatusNoContent)
	db := g.db
	g.close()

	g2 := startNodeWith(t, node.Config{Listen: "127.0.0.1:0", DBPath: db, Logger: quietLogger(t)})
	newCS.Endpoint = g2.url
	old.Endpoint = g2.url
	if got := negotiateWith(t, g2, newCS, "chat"); got != 200 {
		t.Errorf("new key after restart: negotiate status %d, want 200", got)
	}
	if got := negotiateWith(t, g2, old, "chat"); got != 401 {
		t.Errorf("revoked key after restart: negotiate status %d, want 401", got)
	}
	if g2.cs.KeyID != newCS.KeyID {
		t.Errorf("restarted node's connection string names key %q, want %q", g2.cs.KeyID, newCS.KeyID)
	}
}
