// Package pgtest gives tests a PostgreSQL database to run against.
//
// Tests that need PostgreSQL run only when IMTGT_TEST_POSTGRES names a
// server (a URL whose database is an admin database, such as
// postgres://imtgt@127.0.0.1:5432/postgres?sslmode=disable; the script
// scripts/pg-test-server.sh starts a throwaway one and prints the line to
// export); without it they skip, so `go test ./...` needs only Go.
//
//   - URL gives a test a fresh, empty database on that shared server,
//     dropped when the test ends: the usual choice.
//   - StartCluster gives a test a server of its own (initdb in the test's
//     temporary directory, a free loopback port), for tests that stop and
//     start the server mid-run; it is slower (an initdb per test).
//
// It is for tests only: it imports testing and fails the test on any error.
package pgtest
