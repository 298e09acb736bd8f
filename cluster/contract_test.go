package cluster_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/actions"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// testBus is the contract every gateway.Bus keeps, checked through real
// gateways and real client sockets. newCluster returns n started nodes
// that know each other; each subtest uses its own hub.
func testBus(t *testing.T, n int, newCluster func(t *testing.T, n int) []*nodeUnderTest) {
	nodes := newCluster(t, n)
	first, last := nodes[0], nodes[len(nodes)-1]
	hubRoute := actions.Action{Action: actions.Broadcast}
	ctx := context.Background()

	t.Run("broadcast reaches every node except the excluded", func(t *testing.T) {
		var all []*client
		for _, node := range nodes {
			all = append(all, node.connect(t, "bc", ""), node.connect(t, "bc", ""))
		}
		syncRoute(t, nodes, "bc", hubRoute, all...)
		excluded := all[len(all)-1]
		mustPublish(t, last, &gateway.Op{Hub: "bc", Action: &actions.Action{
			Action: actions.Broadcast, Target: "hello", Excluded: []string{excluded.id}}})
		fence(t, last, "bc", "fence")
		for _, c := range all {
			want := []string{"hello"}
			if c == excluded {
				want = nil
			}
			if got := c.until(t, "fence"); !slices.Equal(got, want) {
				t.Errorf("client %s got %q, want %q", c.id, got, want)
			}
		}
	})

	t.Run("group send reaches only members", func(t *testing.T) {
		var members, others []*client
		for _, node := range nodes {
			m, o := node.connect(t, "grp", ""), node.connect(t, "grp", "")
			members, others = append(members, m), append(others, o)
			// Added from the first node: crosses nodes for all but one.
			mustPublish(t, first, &gateway.Op{Hub: "grp", Action: &actions.Action{
				Action: actions.AddToGroup, Group: "room", ConnectionID: m.id}})
		}
		all := append(slices.Clone(members), others...)
		syncRoute(t, nodes, "grp", hubRoute, all...)
		syncRoute(t, nodes, "grp", actions.Action{Action: actions.SendToGroup, Group: "room"}, members...)
		excluded := members[0]
		mustPublish(t, last, &gateway.Op{Hub: "grp", Action: &actions.Action{
			Action: actions.SendToGroup, Group: "room", Target: "in-room", Excluded: []string{excluded.id}}})
		fence(t, last, "grp", "fence")
		for _, c := range all {
			var want []string
			if slices.Contains(members, c) && c != excluded {
				want = []string{"in-room"}
			}
			if got := c.until(t, "fence"); !slices.Equal(got, want) {
				t.Errorf("client %s got %q, want %q", c.id, got, want)
			}
		}
	})

	t.Run("user send reaches the user's connections on every node", func(t *testing.T) {
		u1, u2, v := first.connect(t, "usr", "ann"), last.connect(t, "usr", "ann"), last.connect(t, "usr", "bob")
		syncRoute(t, nodes, "usr", hubRoute, u1, u2, v)
		syncRoute(t, nodes, "usr", actions.Action{Action: actions.SendToUser, User: "ann"}, u1, u2)
		mustPublish(t, first, &gateway.Op{Hub: "usr", Action: &actions.Action{Action: actions.SendToUser, User: "ann", Target: "for-ann"}})
		fence(t, first, "usr", "fence")
		for c, want := range map[*client][]string{u1: {"for-ann"}, u2: {"for-ann"}, v: nil} {
			if got := c.until(t, "fence"); !slices.Equal(got, want) {
				t.Errorf("client %s got %q, want %q", c.id, got, want)
			}
		}
	})

	t.Run("unknown connections are ErrNoConnection", func(t *testing.T) {
		last.connect(t, "nc", "") // the hub exists on the last node
		for _, id := range []string{last.g.NodeID() + ".nosuch", "gone.nosuch", "nonode"} {
			for _, act := range []string{actions.AddToGroup, actions.RemoveFromGroup, actions.CloseConnection} {
				err := first.bus.Publish(ctx, &gateway.Op{Hub: "nc", Action: &actions.Action{Action: act, Group: "g", ConnectionID: id}})
				if !isNoConnection(err) {
					t.Errorf("%s %s: got %v, want ErrNoConnection", act, id, err)
				}
			}
			err := first.bus.Publish(ctx, &gateway.Op{Hub: "nc", LeaveAll: &gateway.LeaveAllOp{ConnectionID: id}})
			if !isNoConnection(err) {
				t.Errorf("leaveAll %s: got %v, want ErrNoConnection", id, err)
			}
		}
	})

	t.Run("sendToConnection and closeConnection across nodes", func(t *testing.T) {
		target, bystander := last.connect(t, "cc", ""), last.connect(t, "cc", "")
		mustPublish(t, first, &gateway.Op{Hub: "cc", Action: &actions.Action{Action: actions.SendToConnection, ConnectionID: target.id, Target: "direct"}})
		if e := target.next(t); e.Target != "direct" {
			t.Errorf("got %+v, want the direct send", e)
		}
		mustPublish(t, first, &gateway.Op{Hub: "cc", Action: &actions.Action{Action: actions.CloseConnection, ConnectionID: target.id, Reason: "go away"}})
		if got := target.closeReason(t); got != "go away" {
			t.Errorf("close reason %q, want %q", got, "go away")
		}
		syncRoute(t, nodes, "cc", hubRoute, bystander)
		fence(t, first, "cc", "fence")
		if got := bystander.until(t, "fence"); len(got) != 0 {
			t.Errorf("bystander got %q", got)
		}
	})

	t.Run("close by group, user and hub with excluded", func(t *testing.T) {
		cases := []struct {
			name  string
			scope gateway.Scope
		}{
			{"group", gateway.Scope{Group: "doomed"}},
			{"user", gateway.Scope{User: "doomed"}},
			{"hub", gateway.Scope{}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				hub := "close-" + tc.name
				var in, spared, out []*client
				for _, node := range nodes {
					a, b := node.connect(t, hub, "doomed"), node.connect(t, hub, "doomed")
					in, spared = append(in, a), append(spared, b)
					out = append(out, node.connect(t, hub, "safe"))
					for _, c := range []*client{a, b} {
						mustPublish(t, first, &gateway.Op{Hub: hub, Action: &actions.Action{Action: actions.AddToGroup, Group: "doomed", ConnectionID: c.id}})
					}
				}
				if tc.scope == (gateway.Scope{}) {
					in, out = append(in, out...), nil
				}
				all := slices.Concat(in, spared, out)
				syncRoute(t, nodes, hub, hubRoute, all...)
				probe := actions.Action{Action: actions.SendToGroup, Group: "doomed"}
				if tc.scope.User != "" {
					probe = actions.Action{Action: actions.SendToUser, User: "doomed"}
				}
				syncRoute(t, nodes, hub, probe, slices.Concat(in, spared)...)
				var excluded []string
				for _, c := range spared {
					excluded = append(excluded, c.id)
				}
				mustPublish(t, last, &gateway.Op{Hub: hub, Close: &gateway.CloseOp{Scope: tc.scope, Excluded: excluded, Reason: "closing " + tc.name}})
				for _, c := range in {
					if got := c.closeReason(t); got != "closing "+tc.name {
						t.Errorf("client %s: close reason %q", c.id, got)
					}
				}
				fence(t, last, hub, "fence")
				for _, c := range slices.Concat(spared, out) {
					if got := c.until(t, "fence"); len(got) != 0 {
						t.Errorf("client %s got %q, want only the fence", c.id, got)
					}
				}
			})
		}
	})

	t.Run("leave all groups, by connection and by user", func(t *testing.T) {
		c, u1, u2 := last.connect(t, "la", ""), first.connect(t, "la", "zed"), last.connect(t, "la", "zed")
		for _, x := range []*client{c, u1, u2} {
			for _, g := range []string{"g1", "g2"} {
				mustPublish(t, first, &gateway.Op{Hub: "la", Action: &actions.Action{Action: actions.AddToGroup, Group: g, ConnectionID: x.id}})
			}
		}
		syncRoute(t, nodes, "la", actions.Action{Action: actions.SendToUser, User: "zed"}, u1, u2)
		mustPublish(t, first, &gateway.Op{Hub: "la", LeaveAll: &gateway.LeaveAllOp{ConnectionID: c.id}})
		mustPublish(t, first, &gateway.Op{Hub: "la", LeaveAll: &gateway.LeaveAllOp{User: "zed"}})
		for _, g := range []string{"g1", "g2"} {
			// The user route is a publication: poll until every node applied it.
			testutil.Eventually(t, 10*time.Second, "group "+g+" to empty", func() bool {
				ok, err := first.g.GroupExists(ctx, "la", g)
				return err == nil && !ok
			})
		}
	})

	t.Run("queries merge every node's answers", func(t *testing.T) {
		a, b, c := first.connect(t, "q", "amy"), last.connect(t, "q", "bea"), last.connect(t, "q", "")
		mustPublish(t, first, &gateway.Op{Hub: "q", Action: &actions.Action{Action: actions.AddToGroup, Group: "club", ConnectionID: b.id}})
		check := func(name string, got bool, err error, want bool) {
			t.Helper()
			if err != nil || got != want {
				t.Errorf("%s = %v, %v; want %v", name, got, err, want)
			}
		}
		g := first.g
		ok, err := g.ConnectionExists(ctx, "q", c.id)
		check("ConnectionExists(remote)", ok, err, true)
		ok, err = g.ConnectionExists(ctx, "q", last.g.NodeID()+".nosuch")
		check("ConnectionExists(unknown)", ok, err, false)
		ok, err = g.ConnectionExists(ctx, "q", "gone.nosuch")
		check("ConnectionExists(unknown node)", ok, err, false)
		ok, err = g.UserExists(ctx, "q", "bea")
		check("UserExists(bea)", ok, err, true)
		ok, err = g.UserExists(ctx, "q", "nobody")
		check("UserExists(nobody)", ok, err, false)
		ok, err = g.GroupExists(ctx, "q", "club")
		check("GroupExists(club)", ok, err, true)
		ok, err = g.GroupExists(ctx, "q", "empty")
		check("GroupExists(empty)", ok, err, false)
		ok, err = g.UserInGroup(ctx, "q", "bea", "club")
		check("UserInGroup(bea, club)", ok, err, true)
		ok, err = g.UserInGroup(ctx, "q", "amy", "club")
		check("UserInGroup(amy, club)", ok, err, false)

		page, more, err := g.Connections(ctx, "q", gateway.Scope{}, "", 100)
		var ids []string
		for _, ci := range page {
			ids = append(ids, ci.ConnectionID)
		}
		want := []string{a.id, b.id, c.id}
		slices.Sort(want)
		if err != nil || more || !slices.Equal(ids, want) {
			t.Errorf("Connections = %q, %v, %v; want %q", ids, more, err, want)
		}
		answers, err := first.bus.Gather(ctx, &gateway.Query{Hub: "q", Kind: gateway.QueryUser, User: "bea"})
		if err != nil || len(answers) != len(nodes) {
			t.Errorf("Gather(all) = %d answers, %v; want one per node (%d)", len(answers), err, len(nodes))
		}
	})
}

func TestSingleNodeBus(t *testing.T) {
	testBus(t, 1, localCluster)
}
