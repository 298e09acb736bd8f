//go:build !race

package negotiate

const raceEnabled = false
