package gateway

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

const shardCount = 32

var shardSeed = maphash.MakeSeed()

func shardOf(key string) int {
	return int(maphash.String(shardSeed, key) % shardCount)
}

// hub holds one hub's connections, groups and users, each map sharded by key
// so fan-out and membership changes on different keys do not contend.
type hub struct {
	name string
	// size counts the connections, so hub-wide interest is cheap to read.
	size atomic.Int64
	// codecs counts the connections per hub protocol, so a fan-out encodes
	// only for the protocols in use.
	codecs codecCounts
	// traffic counts its messages for the admin dashboard.
	traffic traffic
	// interest is told when this node may have gained or lost its first or
	// last connection of the hub, a group or a user (see InterestWatcher).
	interest func(Route)
	conns    [shardCount]connShard
	// groups and users map a name to its member set.
	groups [shardCount]setShard
	users  [shardCount]setShard
}

type connShard struct {
	mu sync.RWMutex // guards m
	m  map[string]*Conn
}

type setShard struct {
	mu sync.RWMutex // guards m
	m  map[string]connSet
}

// connSet is the members of a group or a user's connections. A user most
// often has one connection (and a group may have one member), and a map
// per set cost a few hundred bytes for that one, so a set holds its first
// member without a map and makes one only when a second joins. The zero
// connSet is empty; a set is stored by value, so a change is written back.
type connSet struct {
	one  *Conn              // the member, while many is nil
	many map[*Conn]struct{} // every member, once a second joined
}

func (set connSet) len() int {
	if set.many != nil {
		return len(set.many)
	}
	if set.one != nil {
		return 1
	}
	return 0
}

func (set connSet) each(fn func(*Conn)) {
	if set.many == nil {
		if set.one != nil {
			fn(set.one)
		}
		return
	}
	for c := range set.many {
		fn(c)
	}
}

func newHub(name string, interest func(Route)) *hub {
	h := &hub{name: name, interest: interest}
	for i := range h.conns {
		h.conns[i].m = make(map[string]*Conn)
		h.groups[i].m = make(map[string]connSet)
		h.users[i].m = make(map[string]connSet)
	}
	return h
}

func (h *hub) addConn(c *Conn) {
	s := &h.conns[shardOf(c.id)]
	s.mu.Lock()
	s.m[c.id] = c
	s.mu.Unlock()
	h.codecs[codecIndex(c.codec)].Add(1)
	if h.size.Add(1) == 1 {
		h.interest(Route{RouteHub, ""})
	}
	if c.userID != "" && h.users[shardOf(c.userID)].add(c.userID, c) {
		h.interest(Route{RouteUser, c.userID})
	}
}

// removeConn takes c out of the hub, its user and every group it joined.
func (h *hub) removeConn(c *Conn) {
	s := &h.conns[shardOf(c.id)]
	s.mu.Lock()
	_, had := s.m[c.id]
	delete(s.m, c.id)
	s.mu.Unlock()
	if had {
		h.codecs[codecIndex(c.codec)].Add(-1)
	}
	if had && h.size.Add(-1) == 0 {
		h.interest(Route{RouteHub, ""})
	}
	if c.userID != "" && h.users[shardOf(c.userID)].remove(c.userID, c) {
		h.interest(Route{RouteUser, c.userID})
	}
	for _, g := range c.takeGroups() {
		if h.groups[shardOf(g)].remove(g, c) {
			h.interest(Route{RouteGroup, g})
		}
	}
}

func (h *hub) conn(id string) *Conn {
	s := &h.conns[shardOf(id)]
	s.mu.RLock()
	c := s.m[id]
	s.mu.RUnlock()
	return c
}

func (h *hub) count() int {
	n := 0
	for i := range h.conns {
		s := &h.conns[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// joinGroup adds c to group as itself. Joining a group c is in, or
// joining as a closing connection, does nothing; a join past
// Limits.MaxGroupsPerConnection fails (groupLimitError) and is counted.
func (h *hub) joinGroup(c *Conn, group string) error {
	return h.join(c, group, false, time.Time{})
}

// joinUserGroup adds c to group through its user's membership, which ends
// at until (zero: when removed), as joinGroup does.
func (h *hub) joinUserGroup(c *Conn, group string, until time.Time) error {
	return h.join(c, group, true, until)
}

func (h *hub) join(c *Conn, group string, user bool, until time.Time) error {
	added, err := c.addGroup(group, user, until)
	if err != nil {
		c.g.limited.groupsRefused.Add(1)
		return err
	}
	if added && h.groups[shardOf(group)].add(group, c) {
		h.interest(Route{RouteGroup, group})
	}
	return nil
}

// endUserGroups takes c out of the groups it was in only through its
// user's membership, if that ended by now. The check and the removal
// happen under the group's shard lock, so a join or a renewal racing with
// it either comes first (and keeps c in the group) or after (and adds it
// back).
func (h *hub) endUserGroups(c *Conn, now time.Time) {
	for _, g := range c.endedGroups(now) {
		s := &h.groups[shardOf(g)]
		s.mu.Lock()
		emptied := c.endUserGroup(g, now) && s.removeLocked(g, c)
		s.mu.Unlock()
		if emptied {
			h.interest(Route{RouteGroup, g})
		}
	}
}

func (h *hub) leaveGroup(c *Conn, group string) bool {
	if !c.removeGroup(group) {
		return false
	}
	if h.groups[shardOf(group)].remove(group, c) {
		h.interest(Route{RouteGroup, group})
	}
	return true
}

// eachConn calls fn for every connection, holding one shard's read lock at a
// time; fn must not block.
func (h *hub) eachConn(fn func(*Conn)) {
	for i := range h.conns {
		s := &h.conns[i]
		s.mu.RLock()
		for _, c := range s.m {
			fn(c)
		}
		s.mu.RUnlock()
	}
}

// eachMember calls fn for every connection in set name of shards; fn must not
// block.
func eachMember(shards *[shardCount]setShard, name string, fn func(*Conn)) {
	s := &shards[shardOf(name)]
	s.mu.RLock()
	s.m[name].each(fn)
	s.mu.RUnlock()
}

// members copies the member list of a set, for work that may block.
func members(shards *[shardCount]setShard, name string) []*Conn {
	s := &shards[shardOf(name)]
	s.mu.RLock()
	set := s.m[name]
	out := make([]*Conn, 0, set.len())
	set.each(func(c *Conn) { out = append(out, c) })
	s.mu.RUnlock()
	return out
}

// add puts c in set name and reports whether the set was created by it.
func (s *setShard) add(name string, c *Conn) (created bool) {
	s.mu.Lock()
	set, ok := s.m[name]
	switch {
	case set.many != nil:
		set.many[c] = struct{}{}
	case set.one == nil || set.one == c:
		set.one = c
	default:
		set = connSet{many: map[*Conn]struct{}{set.one: {}, c: {}}}
	}
	s.m[name] = set
	s.mu.Unlock()
	return !ok
}

// remove takes c out of set name and reports whether that emptied (and so
// deleted) the set.
func (s *setShard) remove(name string, c *Conn) (emptied bool) {
	s.mu.Lock()
	emptied = s.removeLocked(name, c)
	s.mu.Unlock()
	return emptied
}

func (s *setShard) removeLocked(name string, c *Conn) (emptied bool) {
	set, ok := s.m[name]
	switch {
	case !ok:
		return false
	case set.many != nil:
		delete(set.many, c)
	case set.one == c:
		set.one = nil
	}
	if set.len() == 0 {
		delete(s.m, name)
		return true
	}
	return false
}

// hasMembers reports whether set name is non-empty.
func hasMembers(shards *[shardCount]setShard, name string) bool {
	s := &shards[shardOf(name)]
	s.mu.RLock()
	n := s.m[name].len()
	s.mu.RUnlock()
	return n > 0
}
