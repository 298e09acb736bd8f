package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/switchboard-gw/switchboard/node"
)

// TestRestartKeepsConfig: hubs, upstreams (with their secrets) and keys live
// in the bbolt file, so a restarted node serves the same hubs, accepts
// tokens signed before the restart and signs webhooks with the same secret.
func TestRestartKeepsConfig(t *testing.T) {
	g, rec := setup(t)
	tokenBefore := g.token("chat", "alice")
	adminKey := g.node.AdminKey()
	hubsBefore := g.admin(http.MethodGet, "/admin/hubs", nil, http.StatusOK)
	upsBefore := g.admin(http.MethodGet, "/admin/hubs/chat/upstreams", nil, http.StatusOK)
	db := g.db
	g.close()

	g2 := startNodeWith(t, node.Config{Listen: "127.0.0.1:0", DBPath: db, Logger: quietLogger(t)})
	if g2.node.KeysCreated {
		t.Error("restart generated new keys")
	}
	if g2.node.AdminKey() != "" {
		t.Error("a restarted node knows the admin key; the store should keep only its hash")
	}
	g2.adminKey = adminKey // the key printed at the first start still opens the admin API
	if got := g2.admin(http.MethodGet, "/admin/hubs", nil, http.StatusOK); !sameJSON(got, hubsBefore) {
		t.Errorf("hubs after restart %s, before %s", got, hubsBefore)
	}
	if got := g2.admin(http.MethodGet, "/admin/hubs/chat/upstreams", nil, http.StatusOK); !sameJSON(got, upsBefore) {
		t.Errorf("upstreams after restart %s, before %s", got, upsBefore)
	}
	// The old token (aud names the old port; ports are ignored) still works,
	// and the upstream, checking signatures with the old secret, gets the
	// events.
	status, body := do(t, http.MethodPost, g2.url+"/client/negotiate?hub=chat", tokenBefore, nil)
	if status != http.StatusOK {
		t.Fatalf("negotiate with a token from before the restart: %d %s", status, body)
	}
	c := g2.dial("chat", "bob", nil)
	rec.waitEvent(isEvent("connected", c.ConnectionID()))
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
