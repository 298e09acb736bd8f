package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/node"
)

// TestGroupsLimitThroughRESTAndStatus: on a real node, a REST join past
// --max-groups-per-connection answers 400 with a text that says what to do,
// the connection is not in the group, and /admin/status counts the refusal
// under limits.
func TestGroupsLimitThroughRESTAndStatus(t *testing.T) {
	g := startNode(t, func(c *node.Config) { c.Limits = gateway.Limits{MaxGroupsPerConnection: 2} })
	g.createHub("chat", false)
	box := newInbox()
	p := &peer{conn: g.dial("chat", "alice", map[string]func([]json.RawMessage){"msg": box.handler()}), box: box}
	base := "/api/hubs/chat/groups/"
	for _, grp := range []string{"g1", "g2", "g1"} { // g1 again: already a member
		g.restWant(http.MethodPut, base+grp+"/connections/"+p.id(), nil, http.StatusOK)
	}
	r := g.restWant(http.MethodPut, base+"g3/connections/"+p.id(), nil, http.StatusBadRequest)
	if code := r.errorCode(t); code != "Error.InvalidParameter" {
		t.Errorf("error code %q, want Error.InvalidParameter", code)
	}
	if want := "is already in 2 groups, the most one connection may join; remove it from one first"; !strings.Contains(string(r.body), want) {
		t.Errorf("answer %s does not say %q", r.body, want)
	}
	g.restWant(http.MethodPost, base+"g3/:send", msg("to g3"), http.StatusAccepted)
	g.restWant(http.MethodPost, base+"g2/:send", msg("to g2"), http.StatusAccepted)
	p.expect(t, "to g2")

	var status struct {
		Limits gateway.LimitStats `json:"connectionLimits"`
	}
	if err := json.Unmarshal(g.admin(http.MethodGet, "/admin/status", nil, http.StatusOK), &status); err != nil {
		t.Fatal(err)
	}
	if got, want := status.Limits, (gateway.LimitStats{GroupJoinsRefused: 1}); got != want {
		t.Errorf("/admin/status limits %+v, want %+v", got, want)
	}
}
