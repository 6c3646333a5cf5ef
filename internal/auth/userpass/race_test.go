//go:build race

package userpass

// raceEnabled: the race detector slows argon2id tenfold and adds its own
// noise, so the timing test does not run under it.
const raceEnabled = true
