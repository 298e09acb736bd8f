package gateway_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/gateway"
)

// queryRig connects nine connections of users u0..u2 (three each) and puts
// the first six in group "g".
func queryRig(t *testing.T) (*rig, []*websocket.Conn, []string) {
	r := newRig(t)
	var wss []*websocket.Conn
	var ids []string
	for i := range 9 {
		ws, id := r.connect(fmt.Sprintf("u%d", i%3))
		wss, ids = append(wss, ws), append(ids, id)
		if i < 6 {
			if err := r.g.ApplyLocal("hub", &actions.Action{Action: actions.AddToGroup, Group: "g", ConnectionID: id}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return r, wss, ids
}

func TestConnectionsPaging(t *testing.T) {
	r, _, ids := queryRig(t)
	tests := []struct {
		name  string
		scope gateway.Scope
		want  []string
	}{
		{"group", gateway.Scope{Group: "g"}, ids[:6]},
		{"user", gateway.Scope{User: "u1"}, []string{ids[1], ids[4], ids[7]}},
		{"hub", gateway.Scope{}, ids},
		{"empty group", gateway.Scope{Group: "none"}, nil},
	}
	for _, tt := range tests {
		for _, limit := range []int{1, 2, 4, 100} {
			t.Run(fmt.Sprintf("%s/limit %d", tt.name, limit), func(t *testing.T) {
				var got []string
				after := ""
				for pages := 0; ; pages++ {
					if pages > 20 {
						t.Fatal("the walk does not end")
					}
					page, more, err := r.g.Connections(context.Background(), "hub", tt.scope, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) > limit {
						t.Fatalf("page of %d, limit %d", len(page), limit)
					}
					for _, ci := range page {
						got = append(got, ci.ConnectionID)
						if tt.scope.User != "" && ci.UserID != tt.scope.User {
							t.Errorf("connection %s of user %q in the listing of %q", ci.ConnectionID, ci.UserID, tt.scope.User)
						}
					}
					if !more {
						break
					}
					after = page[len(page)-1].ConnectionID
				}
				want := slices.Sorted(slices.Values(tt.want))
				if !slices.Equal(got, want) {
					t.Fatalf("got %v, want %v (sorted by id)", got, want)
				}
			})
		}
	}

	if _, _, err := r.g.Connections(context.Background(), "hub", gateway.Scope{Group: "g", User: "u1"}, "", 10); err == nil {
		t.Error("a scope with both group and user was accepted")
	}
	if _, _, err := r.g.Connections(context.Background(), "hub", gateway.Scope{}, "", 0); err == nil {
		t.Error("limit 0 was accepted")
	}
	if page, more, err := r.g.Connections(context.Background(), "nohub", gateway.Scope{}, "", 10); err != nil || more || len(page) != 0 {
		t.Errorf("unknown hub: %v %v %v, want nothing", page, more, err)
	}
}

// TestConnectionsPagingChurn: connections that leave or join between pages
// neither duplicate nor hide those that stay.
func TestConnectionsPagingChurn(t *testing.T) {
	r, wss, ids := queryRig(t)
	page, _, err := r.g.Connections(context.Background(), "hub", gateway.Scope{}, "", 3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ci := range page {
		seen[ci.ConnectionID] = true
	}
	// Close one listed and one not yet listed connection, open a new one.
	sorted := slices.Sorted(slices.Values(ids))
	gone := []string{sorted[0], sorted[5]}
	for _, id := range gone {
		wss[slices.Index(ids, id)].Close(websocket.StatusNormalClosure, "")
	}
	deadline := time.Now().Add(10 * time.Second)
	for must(t)(r.g.ConnectionExists(context.Background(), "hub", gone[0])) || must(t)(r.g.ConnectionExists(context.Background(), "hub", gone[1])) {
		if time.Now().After(deadline) {
			t.Fatal("closed connections still listed after 10s")
		}
		time.Sleep(time.Millisecond)
	}
	r.connect("u9")
	after := page[len(page)-1].ConnectionID
	for more := true; more; {
		page, more, err = r.g.Connections(context.Background(), "hub", gateway.Scope{}, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, ci := range page {
			if seen[ci.ConnectionID] {
				t.Fatalf("connection %s listed twice", ci.ConnectionID)
			}
			seen[ci.ConnectionID] = true
		}
		if more {
			after = page[len(page)-1].ConnectionID
		}
	}
	for _, id := range ids {
		if !seen[id] && !slices.Contains(gone, id) {
			t.Errorf("connection %s stayed but was not listed", id)
		}
	}
	if seen[gone[1]] {
		t.Errorf("connection %s closed before its page was listed", gone[1])
	}
}

func TestExistence(t *testing.T) {
	r, _, ids := queryRig(t)
	if err := r.g.Apply(context.Background(), "hub", &actions.Action{Action: actions.AddUserToGroup, User: "away", Group: "saved"}); err != nil {
		t.Fatal(err)
	}
	userInGroup := func(user, group string) bool {
		ok, err := r.g.UserInGroup(context.Background(), "hub", user, group)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"open connection", must(t)(r.g.ConnectionExists(context.Background(), "hub", ids[0])), true},
		{"unknown connection", must(t)(r.g.ConnectionExists(context.Background(), "hub", "n1.nope")), false},
		{"connection in another hub", must(t)(r.g.ConnectionExists(context.Background(), "other", ids[0])), false},
		{"user with connections", must(t)(r.g.UserExists(context.Background(), "hub", "u2")), true},
		{"user without", must(t)(r.g.UserExists(context.Background(), "hub", "away")), false},
		{"group with members", must(t)(r.g.GroupExists(context.Background(), "hub", "g")), true},
		{"group without", must(t)(r.g.GroupExists(context.Background(), "hub", "saved")), false},
		{"user in group by a connection", userInGroup("u0", "g"), true},
		{"user in group by a saved membership", userInGroup("away", "saved"), true},
		{"user not in group", userInGroup("u0", "saved"), false},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestCloseConnections(t *testing.T) {
	r, wss, ids := queryRig(t)
	// Group g except ids[1]: ids 0, 2..5 close.
	if err := r.g.CloseConnections(context.Background(), "hub", gateway.Scope{Group: "g"}, []string{ids[1]}, "bye"); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2, 3, 4, 5} {
		if got := read(t, wss[i]); got != `{"type":7,"error":"bye"}`+"\x1e" {
			t.Fatalf("connection %d got %q, want the Close message", i, got)
		}
	}
	// The rest still get messages.
	if err := r.g.ApplyLocal("hub", &actions.Action{Action: actions.Broadcast, Target: "t"}); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 6, 7, 8} {
		if got := read(t, wss[i]); got != `{"type":1,"target":"t","arguments":[]}`+"\x1e" {
			t.Fatalf("connection %d got %q, want the broadcast", i, got)
		}
	}
	if err := r.g.CloseConnections(context.Background(), "hub", gateway.Scope{User: "u1"}, nil, ""); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 7} {
		if got := read(t, wss[i]); got != `{"type":7}`+"\x1e" {
			t.Fatalf("connection %d of u1 got %q, want a Close message without reason", i, got)
		}
	}
	if err := r.g.ApplyLocal("hub", &actions.Action{Action: actions.SendToConnection, ConnectionID: ids[8], Target: "t"}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, wss[8]); got != `{"type":1,"target":"t","arguments":[]}`+"\x1e" {
		t.Fatalf("connection 8 got %q, want the message", got)
	}
	if err := r.g.CloseConnections(context.Background(), "hub", gateway.Scope{Group: "g", User: "u"}, nil, ""); err == nil {
		t.Error("a scope with both group and user was accepted")
	}
}

func TestRemoveFromAllGroups(t *testing.T) {
	r, _, ids := queryRig(t)
	for _, grp := range []string{"a", "b"} {
		if err := r.g.ApplyLocal("hub", &actions.Action{Action: actions.AddUserToGroup, User: "u0", Group: grp}); err != nil {
			t.Fatal(err)
		}
	}
	// ids[1] (u1) leaves g; the user u0 leaves every group, saved or live.
	if err := r.g.RemoveFromAllGroups(context.Background(), "hub", ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := r.g.RemoveFromAllGroups(context.Background(), "hub", "n1.nope"); err == nil {
		t.Error("removing an unknown connection from all groups: no error")
	}
	if err := r.g.RemoveUserFromAllGroups(context.Background(), "hub", "u0"); err != nil {
		t.Fatal(err)
	}
	_, newID := r.connect("u0")
	for _, grp := range []string{"a", "b", "g"} {
		if in, _ := r.g.UserInGroup(context.Background(), "hub", "u0", grp); in {
			t.Errorf("u0 still in group %s", grp)
		}
	}
	page, _, _ := r.g.Connections(context.Background(), "hub", gateway.Scope{Group: "g"}, "", 100)
	var got []string
	for _, ci := range page {
		got = append(got, ci.ConnectionID)
	}
	want := slices.Sorted(slices.Values([]string{ids[2], ids[4], ids[5]}))
	if !slices.Equal(got, want) || slices.Contains(got, newID) {
		t.Errorf("group g holds %v, want %v", got, want)
	}
}

// must returns a check that fails the test on an error and passes the value.
func must(t *testing.T) func(bool, error) bool {
	return func(ok bool, err error) bool {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
}
