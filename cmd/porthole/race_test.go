//go:build linux && race

package main

// raceEnabled builds the porthole binary under test with -race too.
const raceEnabled = true
