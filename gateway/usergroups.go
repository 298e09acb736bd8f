package gateway

import (
	"context"
	"sync"
	"time"
)

// memoryUserGroups is the UserGroupStore of a gateway configured without
// one: memberships live in memory and end with the process.
type memoryUserGroups struct {
	now func() time.Time

	mu sync.Mutex                         // guards m
	m  map[[2]string]map[string]time.Time // {hub, user} → group → expiry (zero: none)
}

var _ UserGroupStore = (*memoryUserGroups)(nil)

func (s *memoryUserGroups) AddUserToGroup(_ context.Context, hub, user, group string, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[[2]string]map[string]time.Time)
	}
	k := [2]string{hub, user}
	if s.m[k] == nil {
		s.m[k] = make(map[string]time.Time)
	}
	s.m[k][group] = expires
	return nil
}

func (s *memoryUserGroups) RemoveUserFromGroup(_ context.Context, hub, user, group string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{hub, user}
	delete(s.m[k], group)
	if len(s.m[k]) == 0 {
		delete(s.m, k)
	}
	return nil
}

func (s *memoryUserGroups) RemoveUserFromAllGroups(_ context.Context, hub, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, [2]string{hub, user})
	return nil
}

// UserGroups returns the unexpired memberships and forgets the expired
// ones.
func (s *memoryUserGroups) UserGroups(_ context.Context, hub, user string) ([]UserGroup, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{hub, user}
	var out []UserGroup
	for g, exp := range s.m[k] {
		if exp.IsZero() || now.Before(exp) {
			out = append(out, UserGroup{Group: g, Expires: exp})
		} else {
			delete(s.m[k], g)
		}
	}
	return out, nil
}
