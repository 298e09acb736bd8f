//go:build !race

package testutil

// Race reports whether the race detector is on. Under it sync.Pool drops
// items at random, so allocation counts are not the program's.
const Race = false
