#!/usr/bin/env bash
# Throwaway MariaDB for the test suites (CI or a developer machine without a server).
#
#   .ci/start-mariadb.sh DIR PORT   initialise DIR/data if needed, start on 127.0.0.1:PORT
#   .ci/start-mariadb.sh stop DIR   clean shutdown; nothing to do if it is not running
#
# start prints mysql://root@127.0.0.1:PORT/test as the last stdout line; all progress goes to
# stderr so callers can do url=$(.ci/start-mariadb.sh DIR PORT).
# Layout: DIR/data, DIR/mysql.sock, DIR/mariadb.pid, DIR/mariadb.log.
set -euo pipefail

WAIT_SECONDS=30

log() { printf 'start-mariadb: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() { die "usage: $0 DIR PORT | $0 stop DIR"; }

# /usr/sbin is not on every PATH (non-root shells), so look there too.
find_bin() {
  local name
  for name in "$@"; do
    command -v "$name" 2>/dev/null && return 0
    [ -x "/usr/sbin/$name" ] && { echo "/usr/sbin/$name"; return 0; }
  done
  return 1
}

# Server, initialiser (server-core) and the mariadb client plus my_print_defaults, which
# mariadb-install-db needs (client-core).
find_binaries() {
  MARIADBD=$(find_bin mariadbd mysqld) &&
    INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db) &&
    CLIENT=$(find_bin mariadb mysql) &&
    find_bin my_print_defaults >/dev/null
}

ensure_binaries() {
  find_binaries && return 0
  [ "$(id -u)" = 0 ] || die "mariadbd/mariadb-install-db/mariadb not found; install mariadb-server-core and mariadb-client-core"
  log "installing mariadb-server-core and mariadb-client-core with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  local pkgs=(mariadb-server-core mariadb-client-core)
  # A fresh image may have no package lists yet: update only if the plain install fails.
  apt-get install -y -q "${pkgs[@]}" >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q "${pkgs[@]}" >&2; } ||
    die "apt-get install ${pkgs[*]} failed"
  find_binaries || die "MariaDB packages installed but binaries are still missing"
}

# Root over the private socket: works as soon as the server is up, before any grants.
sock_sql() { "$CLIENT" --no-defaults --socket="$DIR/mysql.sock" -uroot -N -B -e "$1"; }

# The pid in DIR/mariadb.pid if that process is still a MariaDB server (guards against a
# stale pid file whose number now belongs to something else).
server_pid() {
  local pid comm
  pid=$(cat "$DIR/mariadb.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  case "$comm" in mariadbd | mysqld) echo "$pid" ;; *) return 1 ;; esac
}

set_dir() {
  [ -n "$1" ] || usage
  mkdir -p "$1"
  DIR=$(cd "$1" && pwd -P)
}

cmd_start() {
  local port=$1 pid i
  [[ $port =~ ^[0-9]+$ ]] || usage
  ensure_binaries
  # mariadbd refuses to run as root unless told to; as non-root this is a no-op.
  local user
  user=$(id -un)

  if [ ! -d "$DIR/data/mysql" ]; then
    log "mariadb-install-db in $DIR/data"
    # --no-defaults: ignore the machine's /etc/mysql config. normal root auth: root@localhost
    # and root@127.0.0.1 without password instead of unix_socket auth.
    "$INSTALL_DB" --no-defaults --datadir="$DIR/data" --user="$user" \
      --auth-root-authentication-method=normal --skip-test-db >"$DIR/install.log" 2>&1 ||
      { cat "$DIR/install.log" >&2; die "mariadb-install-db failed"; }
  fi

  if pid=$(server_pid); then
    log "already running in $DIR (pid $pid)"
    local actual
    actual=$(sock_sql 'SELECT @@port') || die "running server in $DIR does not answer on its socket"
    [ "$actual" = "$port" ] || log "already running on port $actual (not $port); using it"
    port=$actual
  else
    log "starting on 127.0.0.1:$port (data $DIR/data)"
    # Redirect all output: the server must not inherit our stdout, or url=$(...) would hang.
    # Speed over durability (throwaway data); no native AIO because io_uring/libaio are often
    # unavailable in containers.
    nohup "$MARIADBD" --no-defaults --user="$user" --datadir="$DIR/data" \
      --socket="$DIR/mysql.sock" --port="$port" --bind-address=127.0.0.1 \
      --pid-file="$DIR/mariadb.pid" --log-error="$DIR/mariadb.log" --skip-name-resolve \
      --innodb-use-native-aio=0 --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
      </dev/null >>"$DIR/mariadb.log" 2>&1 &
    pid=$!
    for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
      sock_sql 'SELECT 1' >/dev/null 2>&1 && break
      kill -0 "$pid" 2>/dev/null || { tail -n 20 "$DIR/mariadb.log" >&2 || true; die "mariadbd exited (log: $DIR/mariadb.log)"; }
      sleep 0.1
    done
    sock_sql 'SELECT 1' >/dev/null 2>&1 ||
      { tail -n 20 "$DIR/mariadb.log" >&2 || true; die "mariadbd not ready after ${WAIT_SECONDS}s (log: $DIR/mariadb.log)"; }
  fi

  # The tests connect as root over TCP without password; make sure that account exists even if
  # the initialiser's defaults change, and that the test database is there.
  sock_sql "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
    CREATE DATABASE IF NOT EXISTS test;" || die "could not set up root@127.0.0.1 / database test"
  "$CLIENT" --no-defaults --protocol=TCP -h 127.0.0.1 -P "$port" -uroot -D test -e 'SELECT 1' >/dev/null ||
    die "MariaDB does not answer over TCP on 127.0.0.1:$port"
  echo "mysql://root@127.0.0.1:$port/test"
}

cmd_stop() {
  local pid i
  if ! pid=$(server_pid); then
    log "not running in $DIR"
    return 0
  fi
  log "stopping (pid $pid)"
  # SIGTERM is mariadbd's clean shutdown; no client (mariadb-admin) needed.
  kill -TERM "$pid"
  for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "still running after ${WAIT_SECONDS}s; killing pid $pid"
  kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-}" in
  stop)
    [ $# -eq 2 ] || usage
    # Stopping a missing DIR is a no-op (and must not create it).
    [ -d "$2" ] || { log "no such directory: $2; nothing to stop"; exit 0; }
    set_dir "$2"
    cmd_stop
    ;;
  "" | -h | --help) usage ;;
  *)
    [ $# -eq 2 ] || usage
    set_dir "$1"
    cmd_start "$2"
    ;;
esac
