package gateway

import "time"

// Sweep runs one sweep at now, for tests that control time.
func (g *Gateway) Sweep(now time.Time) { g.sweep(now) }

// MemoryUserGroups is the UserGroupStore of a gateway configured without
// one, for tests that wrap it.
func MemoryUserGroups(now func() time.Time) UserGroupStore { return &memoryUserGroups{now: now} }
