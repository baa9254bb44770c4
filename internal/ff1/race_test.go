//go:build race

package ff1

// raceEnabled reports whether the tests run with the race detector, which
// makes Encrypt about ten times slower in TestSixDigitPermutation.
const raceEnabled = true
