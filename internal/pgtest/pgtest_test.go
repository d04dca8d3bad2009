package pgtest

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestDBName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9_]+$`)
	for _, tc := range []struct{ test, prefix string }{
		{"TestX", "t_testx_"},
		{"TestStore/pg/Sellers#01", "t_teststore_pg_sellers_01_"},
		{"Test  ÄÖ--weird__", "t_test_"},
		{strings.Repeat("TestVeryLong", 20), "t_testverylong"},
	} {
		t.Run(tc.test, func(t *testing.T) {
			a, b := dbName(tc.test), dbName(tc.test)
			require.NotEqual(t, a, b, "two databases of one test must differ")
			require.LessOrEqual(t, len(a), maxIdent, "PostgreSQL would truncate %q", a)
			require.Regexp(t, valid, a)
			require.True(t, strings.HasPrefix(a, tc.prefix), "%q does not start with %q", a, tc.prefix)
		})
	}
}

func TestWithDB(t *testing.T) {
	got := withDB(t, "postgres://imtgt:pw@127.0.0.1:5432/postgres?sslmode=disable", "t_x_1")
	require.Equal(t, "postgres://imtgt:pw@127.0.0.1:5432/t_x_1?sslmode=disable", got)
}

// query runs one query returning one value.
func query[T any](t *testing.T, dbURL, sql string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v T
	require.NoError(t, conn.QueryRow(ctx, sql).Scan(&v))
	return v
}

func dbExists(t *testing.T, admin, name string) bool {
	t.Helper()
	return query[bool](t, admin, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = '"+name+"')")
}

func TestURL(t *testing.T) {
	admin := serverURL(t)
	var names []string
	t.Run("fresh", func(t *testing.T) {
		for range 2 {
			u := URL(t)
			parsed, err := url.Parse(u)
			require.NoError(t, err)
			name := strings.TrimPrefix(parsed.Path, "/")
			require.Equal(t, name, query[string](t, u, "SELECT current_database()"))
			require.Zero(t, query[int](t, u, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
				"a fresh database has no tables")
			names = append(names, name)
		}
		require.NotEqual(t, names[0], names[1])
		// A session left open must not keep the database from being dropped.
		conn, err := pgx.Connect(context.Background(), URL(t))
		require.NoError(t, err)
		names = append(names, conn.Config().Database)
	})
	require.Len(t, names, 3)
	for _, n := range names {
		require.False(t, dbExists(t, admin, n), "database %s outlived its test", n)
	}
}

func TestCluster(t *testing.T) {
	var c *Cluster
	var u string
	t.Run("run", func(t *testing.T) {
		c = StartCluster(t)
		u = c.CreateDB(t)
		require.Equal(t, "on", query[string](t, u, "SHOW fsync"), "benchmarks need fsync on")
		require.Equal(t, "127.0.0.1", query[string](t, u, "SHOW listen_addresses"))
		require.Equal(t, User, query[string](t, u, "SELECT current_user"))
		conn, err := pgx.Connect(context.Background(), u)
		require.NoError(t, err)
		_, err = conn.Exec(context.Background(), "CREATE TABLE kept AS SELECT 1 AS v")
		require.NoError(t, err)
		require.NoError(t, conn.Close(context.Background()))

		c.Stop(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = pgx.Connect(ctx, u)
		require.Error(t, err, "the server answers after Stop")

		c.Start(t)
		require.Equal(t, 1, query[int](t, u, "SELECT v FROM kept"), "committed data survives a stop")
		require.NotEqual(t, u, c.CreateDB(t))
	})
	// The cleanup of the subtest stopped the server.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := pgx.Connect(ctx, u)
	require.Error(t, err, "the cluster outlived its test")
}
