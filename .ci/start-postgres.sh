#!/usr/bin/env bash
# Throwaway PostgreSQL 15 for the test suites (CI or a developer machine without a server).
#
#   .ci/start-postgres.sh DIR PORT     initialise DIR/data if needed, start on 127.0.0.1:PORT
#   .ci/start-postgres.sh restart DIR  fast restart (tests use it to drop connections mid-run)
#   .ci/start-postgres.sh stop DIR     fast shutdown; nothing to do if it is not running
#
# start and restart print postgres://postgres@127.0.0.1:PORT/postgres as the last stdout line;
# all progress goes to stderr so callers can do url=$(.ci/start-postgres.sh DIR PORT).
# Layout: DIR/data (cluster), DIR/.s.PGSQL.PORT (socket), DIR/postgres.log (server log).
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
WAIT_SECONDS=30

log() { printf 'start-postgres: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() { die "usage: $0 DIR PORT | $0 restart DIR | $0 stop DIR"; }

# initdb and postgres refuse to run as root, so as root they run as the postgres user.
is_root() { [ "$(id -u)" = 0 ]; }
as_pg() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_binaries() {
  [ -x "$PG_BIN/initdb" ] && return 0
  is_root || die "$PG_BIN/initdb not found; install postgresql-15"
  log "installing postgresql-15 with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh image may have no package lists yet: update only if the plain install fails.
  apt-get install -y -q postgresql-15 >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q postgresql-15 >&2; } ||
    die "apt-get install postgresql-15 failed"
  [ -x "$PG_BIN/initdb" ] || die "postgresql-15 installed but $PG_BIN/initdb is missing"
}

is_running() { as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

# The port of the running server: line 4 of postmaster.pid.
running_port() { sed -n 4p "$DATA/postmaster.pid"; }

# pg_ctl -w only waits for the postmaster; also insist on an answer over TCP, which is what
# the tests use.
wait_ready() {
  local port=$1 i
  for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -t 1 && return 0
    sleep 0.1
  done
  tail -n 20 "$DIR/postgres.log" >&2 || true
  die "PostgreSQL on 127.0.0.1:$port not ready after ${WAIT_SECONDS}s (log: $DIR/postgres.log)"
}

print_url() { echo "postgres://postgres@127.0.0.1:$1/postgres"; }

# Resolve DIR to an absolute path (the socket directory in the config must be absolute).
set_dir() {
  [ -n "$1" ] || usage
  mkdir -p "$1"
  DIR=$(cd "$1" && pwd -P)
  DATA=$DIR/data
  # Commands run as postgres need a cwd they can enter (root's cwd may be /root).
  cd "$DIR"
}

cmd_start() {
  local port=$1
  [[ $port =~ ^[0-9]+$ ]] || usage
  ensure_binaries
  if is_root; then
    id postgres >/dev/null 2>&1 || die "user postgres does not exist (it comes with postgresql-common)"
    chown postgres: "$DIR"
    as_pg test -w "$DIR" || die "user postgres cannot write $DIR (is a parent directory private?)"
  fi

  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initdb in $DATA"
    # Trust auth: throwaway cluster reachable only on 127.0.0.1 and a private socket dir.
    # UTF8 with the C locale so the result does not depend on the machine's LANG.
    as_pg "$PG_BIN/initdb" -D "$DATA" -A trust -U postgres -E UTF8 --locale=C \
      --no-sync --no-instructions >"$DIR/initdb.log" 2>&1 ||
      { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    # Settings live in an included file so restart (and later starts) keep them.
    echo "include_if_exists = 'ci.conf'" >>"$DATA/postgresql.conf"
  fi

  if is_running; then
    local actual
    actual=$(running_port)
    [ "$actual" = "$port" ] || log "already running on port $actual (not $port); using it"
    port=$actual
    log "already running in $DIR"
  else
    # fsync etc. off: the data is thrown away, speed matters more than durability.
    as_pg tee "$DATA/ci.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    log "starting on 127.0.0.1:$port (data $DATA)"
    # -l: the server must not inherit our stdout, or url=\$(...) would never finish.
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -w -t "$WAIT_SECONDS" start >&2 ||
      { tail -n 20 "$DIR/postgres.log" >&2 || true; die "pg_ctl start failed"; }
  fi
  wait_ready "$port"
  print_url "$port"
}

cmd_restart() {
  [ -f "$DATA/PG_VERSION" ] || die "no cluster in $DATA"
  log "restarting (data $DATA)"
  as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -m fast -w -t "$WAIT_SECONDS" restart >&2 ||
    { tail -n 20 "$DIR/postgres.log" >&2 || true; die "pg_ctl restart failed"; }
  local port
  port=$(running_port)
  wait_ready "$port"
  print_url "$port"
}

cmd_stop() {
  if [ ! -f "$DATA/PG_VERSION" ] || ! is_running; then
    log "not running in $DIR"
    return 0
  fi
  log "stopping (data $DATA)"
  as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t "$WAIT_SECONDS" stop >&2
}

case "${1:-}" in
  stop | restart)
    [ $# -eq 2 ] || usage
    # stop/restart must not create DIR as a side effect; stopping a missing DIR is a no-op.
    if [ ! -d "$2" ]; then
      [ "$1" = stop ] && { log "no such directory: $2; nothing to stop"; exit 0; }
      die "no such directory: $2"
    fi
    set_dir "$2"
    if [ "$1" = stop ]; then cmd_stop; else cmd_restart; fi
    ;;
  "" | -h | --help) usage ;;
  *)
    [ $# -eq 2 ] || usage
    set_dir "$1"
    cmd_start "$2"
    ;;
esac
