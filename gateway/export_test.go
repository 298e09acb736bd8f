package gateway

import "time"

// Sweep runs one sweep at now, for tests that control time.
func (g *Gateway) Sweep(now time.Time) { g.sweep(now) }

// MemoryUserGroups is the UserGroupStore of a gateway configured without
// one, for tests that wrap it.
func MemoryUserGroups(now func() time.Time) UserGroupStore { return &memoryUserGroups{now: now} }

// ParkedWorkers is how many pooled goroutines wait for an invocation turn.
func (g *Gateway) ParkedWorkers() int {
	g.workers.mu.Lock()
	defer g.workers.mu.Unlock()
	return len(g.workers.idle)
}

// TrimWorkers ends the pooled goroutines that would have been idle for
// longer than the pool keeps them after a further wait of after.
func (g *Gateway) TrimWorkers(after time.Duration) { g.workers.trim(monoNow() + int64(after)) }
