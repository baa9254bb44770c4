//go:build race

package tokenvault

// raceEnabled reports whether the tests run with the race detector, which
// also turns on the compiler's checkptr instrumentation.
const raceEnabled = true
