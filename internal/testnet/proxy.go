package testnet

import (
	"testing"

	"github.com/imtgt/imtgt-node/internal/tcpproxy"
)

// Proxy forwards TCP connections and cuts them like a partition
// (tcpproxy.Proxy).
type Proxy = tcpproxy.Proxy

// StartProxy is tcpproxy.Start.
func StartProxy(tb testing.TB, target string) *Proxy { return tcpproxy.Start(tb, target) }
