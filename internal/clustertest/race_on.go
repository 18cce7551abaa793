//go:build race

package clustertest

// raceEnabled: this test binary was built with -race, so flint is too (it then reuses the
// compile cache of `go test -race`, and the nodes run under the race detector as well).
const raceEnabled = true
