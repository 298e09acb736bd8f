// Package testutil holds what the tests of several packages share. Only
// tests import it.
package testutil

import (
	"testing"
	"time"
)

// Eventually calls cond every 5 ms until it holds, and fails t if it still
// does not after within: the one way tests wait on another goroutine or
// process, bounded so that a hang is a failure rather than a stuck run.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
