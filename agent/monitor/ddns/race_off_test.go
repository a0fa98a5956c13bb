//go:build !race

package ddns_test

// raceEnabled shortens the long simulations under the race detector, which
// slows them down about tenfold.
const raceEnabled = false
