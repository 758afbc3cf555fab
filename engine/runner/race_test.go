//go:build race

package runner_test

// raceEnabled: the race detector makes sync.Pool drop what it is given at
// random, so allocation counts mean nothing.
const raceEnabled = true
