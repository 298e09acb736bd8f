package gateway

import "time"

// Sweep runs one sweep at now, for tests that control time.
func (g *Gateway) Sweep(now time.Time) { g.sweep(now) }
