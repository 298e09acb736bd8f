package gateway

import (
	"slices"
	"testing"
)

// TestSetShard walks a set through one member (held without a map), two,
// back to one and none, checking at each step its members, whether the
// step created or emptied it, and what hasMembers and members see.
func TestSetShard(t *testing.T) {
	var shards [shardCount]setShard
	for i := range shards {
		shards[i].m = make(map[string]connSet)
	}
	a, b := &Conn{id: "a"}, &Conn{id: "b"}
	s := &shards[shardOf("u")]
	steps := []struct {
		name    string
		do      func() bool // add or remove; reports created or emptied
		want    bool
		members []string
	}{
		{"add a creates", func() bool { return s.add("u", a) }, true, []string{"a"}},
		{"add a again", func() bool { return s.add("u", a) }, false, []string{"a"}},
		{"remove b, not a member", func() bool { return s.remove("u", b) }, false, []string{"a"}},
		{"add b", func() bool { return s.add("u", b) }, false, []string{"a", "b"}},
		{"remove a", func() bool { return s.remove("u", a) }, false, []string{"b"}},
		{"remove b empties", func() bool { return s.remove("u", b) }, true, nil},
		{"remove from none", func() bool { return s.remove("u", b) }, false, nil},
		{"add b creates", func() bool { return s.add("u", b) }, true, []string{"b"}},
		{"remove a, not a member", func() bool { return s.remove("u", a) }, false, []string{"b"}},
		{"remove b empties again", func() bool { return s.remove("u", b) }, true, nil},
	}
	for _, st := range steps {
		if got := st.do(); got != st.want {
			t.Errorf("%s: reported %v, want %v", st.name, got, st.want)
		}
		var ids []string
		for _, c := range members(&shards, "u") {
			ids = append(ids, c.id)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, st.members) {
			t.Errorf("%s: members %v, want %v", st.name, ids, st.members)
		}
		var each int
		eachMember(&shards, "u", func(*Conn) { each++ })
		if each != len(st.members) || hasMembers(&shards, "u") != (len(st.members) > 0) {
			t.Errorf("%s: eachMember saw %d, hasMembers %v; want %d members", st.name, each, hasMembers(&shards, "u"), len(st.members))
		}
		if _, ok := s.m["u"]; ok != (len(st.members) > 0) {
			t.Errorf("%s: set kept in the shard: %v, want only while it has members", st.name, ok)
		}
	}
}
