package gateway

import (
	"context"
	"slices"
	"testing"
	"time"
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

// recordingSocket is an idleSocket that passes on what the gateway writes.
type recordingSocket struct {
	*idleSocket
	writes chan []byte
}

func (s *recordingSocket) WriteFrame(_ context.Context, b []byte, _ bool) error {
	s.writes <- append([]byte(nil), b...)
	return nil
}

// TestHandshakeTurnReleasesBuffers: once the handshake's answer is written
// and nothing else is queued, the connection holds no send buffer, without
// waiting for the sweep (off here); a later message takes one again and is
// delivered.
func TestHandshakeTurnReleasesBuffers(t *testing.T) {
	g := New(Config{SweepInterval: -1, Logger: quiet})
	defer g.Shutdown(context.Background())
	id, tok, err := g.Negotiate("bench", Identity{})
	if err != nil {
		t.Fatal(err)
	}
	s := &recordingSocket{
		idleSocket: &idleSocket{handshake: []byte(`{"protocol":"json","version":1}` + "\x1e"), closed: make(chan struct{})},
		writes:     make(chan []byte, 4),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		g.Serve(context.Background(), tok, s, ConnectInfo{})
	}()
	defer func() { s.Close(0, ""); <-served }()
	if got := <-s.writes; string(got) != "{}\x1e" {
		t.Fatalf("first write %q, want the handshake's answer", got)
	}
	c := waitConn(t, g, id)
	held := func() (writing, holds bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.writing, c.buf != nil || c.spare != nil
	}
	for start := time.Now(); ; {
		writing, holds := held()
		if !writing {
			if holds {
				t.Fatal("the handshake's turn ended with a send buffer held")
			}
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatal("the handshake's write turn did not end")
		}
		time.Sleep(time.Millisecond)
	}
	if !c.enqueue([]byte("x\x1e")) {
		t.Fatal("enqueue refused")
	}
	if got := <-s.writes; string(got) != "x\x1e" {
		t.Fatalf("second write %q, want the queued message", got)
	}
}

// waitConn polls (bounded) until connection id is in hub bench.
func waitConn(t *testing.T, g *Gateway, id string) *Conn {
	t.Helper()
	for start := time.Now(); time.Since(start) < time.Minute; time.Sleep(time.Millisecond) {
		if c := g.hub("bench").conn(id); c != nil {
			return c
		}
	}
	t.Fatalf("connection %s never joined its hub", id)
	return nil
}
