//go:build race

package load

// raceEnabled: the memory check takes the Go runtime's own figure, as the
// race detector's shadow memory in VmRSS grows with the peak and is never
// given back.
const raceEnabled = true
