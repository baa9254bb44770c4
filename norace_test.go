//go:build !race

package tokenvault

const raceEnabled = false
