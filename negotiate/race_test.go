//go:build race

package negotiate

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts are not fixed under it.
const raceEnabled = true
