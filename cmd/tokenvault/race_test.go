//go:build race

package main

// raceEnabled makes TestMain build the command with the race detector when
// the tests run with it.
const raceEnabled = true
