package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/imtgt/imtgt-node/internal/freeport"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvServer names the test server; EnvBinDir the directory of initdb and
// pg_ctl, when they are not where pg_config or the Debian layout says.
const (
	EnvServer = "IMTGT_TEST_POSTGRES"
	EnvBinDir = "IMTGT_PG_BINDIR"
)

// User is the superuser of the clusters StartCluster creates (the same
// name scripts/pg-test-server.sh uses).
const User = "imtgt"

// opTimeout bounds each connection and statement the harness runs: a
// test server that does not answer fails the test instead of hanging it.
const opTimeout = 30 * time.Second

// URL returns the URL of a fresh, empty database on the shared test server
// named by IMTGT_TEST_POSTGRES (dropped at the end of the test), or skips
// the test when the variable is unset.
func URL(t testing.TB) string {
	t.Helper()
	admin := serverURL(t)
	name := dbName(t.Name())
	u := withDB(t, admin, name)
	createDB(t, admin, name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// FORCE ends the sessions a test left open (a pool not closed, a
		// replica killed): the database must go even then.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return u
}

// serverURL returns IMTGT_TEST_POSTGRES or skips the test.
func serverURL(t testing.TB) string {
	t.Helper()
	s := os.Getenv(EnvServer)
	if s == "" {
		t.Skip("PostgreSQL tests skipped: " + EnvServer + " is unset " +
			"(eval \"$(scripts/pg-test-server.sh start DIR)\" starts a throwaway server and sets it)")
	}
	return s
}

// withDB returns server URL s naming database db instead of its own.
func withDB(t testing.TB, s, db string) string {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		t.Fatalf("pgtest: %s=%q is not a postgres://user@host:port/db URL", EnvServer, s)
	}
	u.Path, u.RawPath = "/"+db, ""
	return u.String()
}

// createDB creates database name on the server at admin.
func createDB(t testing.TB, admin, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect to the test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
}

// maxIdent is PostgreSQL's identifier length (NAMEDATALEN-1 bytes): a
// longer name is truncated silently, and two tests could then share one.
const maxIdent = 63

// dbName turns a test name into a database name of its own: lower-case
// letters, digits and underscores (no quoting surprises in psql or logs),
// at most 63 bytes, with a random suffix so that a re-run or a parallel
// test binary never meets a database left from another.
func dbName(test string) string {
	var b strings.Builder
	b.WriteString("t_")
	under := true
	for _, r := range strings.ToLower(test) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			under = false
		} else if !under {
			b.WriteByte('_')
			under = true
		}
	}
	suffix := fmt.Sprintf("%012x", rand.Uint64()>>16)
	base := strings.TrimSuffix(b.String(), "_")
	base = base[:min(len(base), maxIdent-len(suffix)-1)]
	return base + "_" + suffix
}

// Cluster is a PostgreSQL server of the test's own, for tests that stop and
// start the server. It is stopped and its files removed when the test ends.
type Cluster struct {
	bin  string // directory of initdb, pg_ctl, postgres
	dir  string // the test's temporary directory: data/, server.log, the socket
	port int
	cred *syscall.Credential // the postgres user's, when the test runs as root
	mu   sync.Mutex
	isUp bool
}

// StartCluster creates and starts a server of the test's own: initdb into
// t.TempDir() (superuser imtgt, trust authentication, reachable on
// 127.0.0.1 only), on a free loopback port, fsync on (a benchmark against
// it measures real commits). It skips when IMTGT_TEST_POSTGRES is unset:
// that variable is the switch for every PostgreSQL test.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	serverURL(t)
	c := &Cluster{bin: binDir(t), dir: t.TempDir()}
	if os.Geteuid() == 0 {
		c.cred = postgresUser(t)
		// PostgreSQL refuses to run as root: its files belong to the
		// postgres user, who must also get through the 0700 parent that
		// t.TempDir made.
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		if err := os.Chmod(filepath.Dir(c.dir), 0o711); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	// initdb --no-sync only skips flushing initdb's own files (lost in a
	// machine crash, which a test's directory does not outlive); the
	// server itself runs with fsync on.
	c.run(t, "initdb", "--pgdata", c.dataDir(), "--username", User, "--auth", "trust",
		"--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
	hba := "# pgtest: trust, on loopback only\n" +
		"local all all trust\n" +
		"host all all 127.0.0.1/32 trust\n" +
		"local replication all trust\n" +
		"host replication all 127.0.0.1/32 trust\n"
	c.writeFile(t, filepath.Join(c.dataDir(), "pg_hba.conf"), hba)
	sock := c.socketDir(t)
	// Immediate: the files go with the test, nothing needs a checkpoint.
	t.Cleanup(func() { c.stop(t, "immediate") })

	// A port can be taken between the check and the bind: try another.
	for attempt := 1; ; attempt++ {
		c.port = freePort(t)
		conf := fmt.Sprintf("# pgtest\nlisten_addresses = '127.0.0.1'\nport = %d\n"+
			"unix_socket_directories = '%s'\nfsync = on\nsynchronous_commit = on\n",
			c.port, sock)
		c.writeFile(t, filepath.Join(c.dataDir(), "postgresql.auto.conf"), conf)
		err := c.start()
		if err == nil {
			break
		}
		if attempt < 5 && strings.Contains(c.log(), "could not bind") {
			continue
		}
		t.Fatalf("pgtest: start PostgreSQL: %v\nserver log:\n%s", err, c.log())
	}
	return c
}

// URL returns the URL of database db on the cluster.
func (c *Cluster) URL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(User),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDB creates a fresh database on the cluster and returns its URL. It
// goes with the cluster at the end of the test.
func (c *Cluster) CreateDB(t testing.TB) string {
	t.Helper()
	name := dbName(t.Name())
	createDB(t, c.URL("postgres"), name)
	return c.URL(name)
}

// Stop stops the server (pg_ctl stop -m fast: clients are disconnected,
// committed work is kept). Connections fail until Start.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if err := c.stop(t, "fast"); err != nil {
		t.Fatalf("pgtest: stop PostgreSQL: %v", err)
	}
}

// Start starts the server again on the same port and waits until it
// accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if err := c.start(); err != nil {
		t.Fatalf("pgtest: start PostgreSQL: %v\nserver log:\n%s", err, c.log())
	}
}

func (c *Cluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isUp {
		return nil
	}
	out, err := c.command("pg_ctl", "start", "--pgdata", c.dataDir(), "--log", c.logFile(),
		"--wait", "--timeout", "60").CombinedOutput()
	if err != nil {
		// A failed start can still leave a postmaster behind (it came up
		// after pg_ctl's deadline): stop it, or it outlives the test.
		_ = c.command("pg_ctl", "stop", "--pgdata", c.dataDir(), "--mode", "immediate", "--wait").Run()
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	c.isUp = true
	return nil
}

func (c *Cluster) stop(t testing.TB, mode string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.isUp {
		return nil
	}
	out, err := c.command("pg_ctl", "stop", "--pgdata", c.dataDir(), "--mode", mode,
		"--wait", "--timeout", "60").CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
		t.Log("pgtest:", err)
		return err
	}
	c.isUp = false
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.dir, "server.log") }

// socketDir is the directory of the server's unix socket: the test's own
// directory, unless its path is too long for a socket address (108 bytes
// with the file name .s.PGSQL.NNNNN); then a short one under /tmp.
func (c *Cluster) socketDir(t testing.TB) string {
	if len(c.dir)+len("/.s.PGSQL.65535") < 100 {
		return c.dir
	}
	d, err := os.MkdirTemp("/tmp", "pgtest")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if c.cred != nil {
		if err := os.Chown(d, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	return d
}

// log returns the server's log, for failure messages.
func (c *Cluster) log() string {
	b, err := os.ReadFile(c.logFile())
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	return string(b)
}

// writeFile writes a file of the cluster, owned by the user the server
// runs as.
func (c *Cluster) writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if c.cred != nil {
		if err := os.Chown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
}

// run runs one of the PostgreSQL programs and fails the test with its
// output if it fails.
func (c *Cluster) run(t testing.TB, prog string, args ...string) {
	t.Helper()
	if out, err := c.command(prog, args...).CombinedOutput(); err != nil {
		t.Fatalf("pgtest: %s: %v\n%s", prog, err, out)
	}
}

// command returns the command running prog of the cluster's PostgreSQL, as
// the postgres user when the test runs as root.
func (c *Cluster) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.dir // a working directory the postgres user can enter
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "HOME=")
	}), "HOME="+c.dir, "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	// pg_ctl start leaves the postmaster running with its output in the
	// log file; should it ever hold our pipe open, stop waiting for it.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// postgresUser returns the credentials of the postgres user (created by
// the Debian and RPM packages), to run the server as when the test runs
// as root.
func postgresUser(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("pgtest: running as root and PostgreSQL refuses to run as root: %v "+
			"(create a postgres user, or run the tests as another user)", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("pgtest: postgres user: %v", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// binDir finds the directory of initdb and pg_ctl: IMTGT_PG_BINDIR, else
// what pg_config says, else the newest /usr/lib/postgresql/N/bin (Debian
// puts none of them on PATH).
func binDir(t testing.TB) string {
	t.Helper()
	has := func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "initdb"))
		return err == nil
	}
	if d := os.Getenv(EnvBinDir); d != "" {
		if !has(d) {
			t.Fatalf("pgtest: %s=%s has no initdb", EnvBinDir, d)
		}
		return d
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		return n
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if has(d) {
			return d
		}
	}
	t.Fatalf("pgtest: no PostgreSQL server programs found (initdb, pg_ctl): set %s, "+
		"put pg_config on PATH, or install PostgreSQL (apt-get install postgresql)", EnvBinDir)
	return ""
}

// freePort returns a loopback TCP port free right now, chosen at random in
// 15000-19999: below the kernel's ephemeral range and apart from the
// 20000-31999 testnet hands out (testnet cannot be imported here: it
// imports the store, whose tests use pgtest); both keep one record of the
// ports given out (internal/freeport).
func freePort(t testing.TB) int {
	t.Helper()
	return freeport.Pick(t, 15000, 5000)
}
