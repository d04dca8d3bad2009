// Package tcpproxy is a TCP proxy for tests that cut the network between
// two real endpoints (nodes' p2p ports, a PostgreSQL server) the way a
// partition does: bytes stop, nothing is closed.
package tcpproxy
