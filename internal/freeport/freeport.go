// Package freeport hands out loopback TCP ports that are free right now,
// each once per test binary: two ports asked for before either is listened
// on (a node's HTTP and p2p ports) would otherwise collide now and then.
// It is a leaf, so that packages that cannot import each other (testnet,
// pgtest) share one record of the ports given out.
package freeport

import (
	"net"
	"strconv"
	"sync"
	"testing"

	"math/rand/v2"
)

// handedOut holds the ports given out: ports belong to the whole process
// (and machine), so this one piece of state is package-wide.
var handedOut sync.Map

// Pick returns a free loopback port in [lo, lo+n), never one it gave out
// before in this process.
func Pick(tb testing.TB, lo, n int) int {
	tb.Helper()
	for range 100 {
		port := lo + rand.IntN(n)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	tb.Fatal("no free port found")
	return 0
}
