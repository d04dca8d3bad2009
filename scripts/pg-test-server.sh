#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (see internal/pgtest).
#
#   eval "$(scripts/pg-test-server.sh start DIR)"   # creates and starts it, sets IMTGT_TEST_POSTGRES
#   scripts/pg-test-server.sh stop DIR              # stops it and removes DIR
#   scripts/pg-test-server.sh bindir                # prints where initdb and pg_ctl are taken from
#
# start creates a cluster in DIR (which must not exist or be empty): superuser
# imtgt, trust authentication, listening on 127.0.0.1 only, on a free port,
# fsync on. It prints one line for the shell to eval; everything else goes to
# stderr. When run as root, the server runs as the postgres user (PostgreSQL
# refuses to run as root). The programs are found through IMTGT_PG_BINDIR, else
# pg_config --bindir, else the newest /usr/lib/postgresql/*/bin.
set -euo pipefail

die() { echo "pg-test-server: $*" >&2; exit 1; }
usage() { die "usage: $0 start DIR | stop DIR | bindir"; }

cmd=${1:-}
case $cmd in
  start|stop) [ $# -eq 2 ] || usage; dir=$2 ;;
  bindir) [ $# -eq 1 ] || usage ;;
  *) usage ;;
esac
marker=.imtgt-pg-test-server

bindir() {
  local d
  if [ -n "${IMTGT_PG_BINDIR:-}" ]; then
    [ -x "$IMTGT_PG_BINDIR/initdb" ] || die "IMTGT_PG_BINDIR=$IMTGT_PG_BINDIR has no initdb"
    echo "$IMTGT_PG_BINDIR"; return
  fi
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir)
    if [ -x "$d/initdb" ]; then echo "$d"; return; fi
  fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  die "no PostgreSQL server programs (initdb, pg_ctl) found: install PostgreSQL (apt-get install postgresql) or set IMTGT_PG_BINDIR"
}

# as runs a command as the user the server runs as.
as() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# free_port prints a loopback port nothing listens on, below the kernel's
# ephemeral range and apart from the ranges the Go test helpers use.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((10000 + RANDOM % 5000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free port found"
}

start() {
  local bin port log
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  touch "$dir/$marker"
  bin=$(bindir)
  log=$dir/server.log
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user to run the server as"
    chown postgres: "$dir"
  fi
  # --no-sync: initdb's own files need not survive a machine crash; the
  # server below runs with fsync on.
  (cd "$dir" && as "$bin/initdb" --pgdata "$dir/data" --username imtgt --auth trust \
      --encoding UTF8 --locale C --no-sync --no-instructions) >&2 ||
    die "initdb failed"
  as tee "$dir/data/pg_hba.conf" >/dev/null <<HBA
# pg-test-server: trust, on loopback only
local all all trust
host all all 127.0.0.1/32 trust
local replication all trust
host replication all 127.0.0.1/32 trust
HBA
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    as tee "$dir/data/postgresql.auto.conf" >/dev/null <<CONF
# pg-test-server
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
max_connections = 200
CONF
    if (cd "$dir" && as "$bin/pg_ctl" start --pgdata "$dir/data" --log "$log" --wait --timeout 60) >&2; then
      echo "$port" >"$dir/port"
      echo "export IMTGT_TEST_POSTGRES=postgres://imtgt@127.0.0.1:$port/postgres?sslmode=disable"
      return
    fi
    grep -q "could not bind" "$log" 2>/dev/null || break
    echo "pg-test-server: port $port taken, trying another" >&2
  done
  echo "pg-test-server: PostgreSQL did not start; server log ($log):" >&2
  cat "$log" >&2 2>/dev/null || true
  exit 1
}

stop() {
  local bin
  [ -d "$dir" ] || return 0
  # Refuse to remove a directory this script did not create.
  [ -e "$dir/$marker" ] || die "$dir was not created by $0 start: not removing it"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/data/postmaster.pid" ]; then
    bin=$(bindir)
    (cd "$dir" && as "$bin/pg_ctl" stop --pgdata "$dir/data" --mode fast --wait --timeout 60) >&2 ||
      die "pg_ctl stop failed; the server is left in $dir"
  fi
  rm -rf "$dir"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  bindir) bindir ;;
esac
