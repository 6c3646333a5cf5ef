//go:build !race

package userpass

const raceEnabled = false
