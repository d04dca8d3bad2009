package main

// Failover time of a replicated node (issue 12's benchmarks), measured on
// the built binary: TH as two replicas on PostgreSQL, MY on bbolt (the
// harness of replica_process_test.go). It is a test, not a Benchmark,
// because the process harness is written for *testing.T; it runs only
// when asked (scripts/bench.sh sets IMTGT_BENCH_FAILOVER):
//
//	IMTGT_BENCH_FAILOVER=5 go test -run TestFailoverTime -v ./cmd/imtgt-node

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

// TestFailoverTime SIGKILLs the TH leader IMTGT_BENCH_FAILOVER times (the
// killed replica is started again as a follower before the next kill) and
// times each failover: from the kill until the other replica's /readyz
// says leader, and until it serves federation: its own host connected to
// MY and MY seeing TH connected (the new leader's host is new, so its
// connection is necessarily the new one). Every failover must take under
// the 10 s; it logs p50 and max of both.
func TestFailoverTime(t *testing.T) {
	kills, _ := strconv.Atoi(os.Getenv("IMTGT_BENCH_FAILOVER"))
	if kills <= 0 {
		t.Skip("a benchmark: set IMTGT_BENCH_FAILOVER to the number of kills")
	}
	f := newReplicaFed(t)
	var toLeader, toServing []time.Duration
	for i := range kills {
		leader, other := f.leader(t, 20*time.Second)
		// Both sides connected before the kill: the last failover is over.
		f.waitMYConnected(t, 20*time.Second)
		killed := time.Now()
		leader.kill(t)
		var led time.Duration
		testnet.Eventually(t, 10*time.Second, func() bool {
			if led == 0 && other.role() == "leader" {
				led = time.Since(killed)
			}
			return led != 0 && slices.Contains(other.connectedPeers(t), "MY") && slices.Contains(f.my.connectedPeers(t), "TH")
		}, "the other replica leads and is connected to MY")
		serving := time.Since(killed)
		toLeader, toServing = append(toLeader, led), append(toServing, serving)
		t.Logf("kill %d: replica %s leads after %s, serves federation (MY connected) after %s",
			i+1, other.name, led.Round(time.Millisecond), serving.Round(time.Millisecond))
		leader.start(t)
	}
	p50 := func(ds []time.Duration) time.Duration { s := slices.Clone(ds); slices.Sort(s); return s[len(s)/2] }
	t.Logf("failover over %d kills: leader p50 %s max %s; serving federation p50 %s max %s",
		kills, p50(toLeader).Round(time.Millisecond), slices.Max(toLeader).Round(time.Millisecond),
		p50(toServing).Round(time.Millisecond), slices.Max(toServing).Round(time.Millisecond))
}
