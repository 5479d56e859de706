# shellcheck shell=bash
# Sourced by .ci/run (not executed): makes sure a PostgreSQL and a MariaDB server are reachable
# and exports their URLs for the test suites:
#   WORKERS_TEST_POSTGRES_URL  postgres://postgres@127.0.0.1:PORT/postgres
#   WORKERS_TEST_MYSQL_URL     mysql://root@127.0.0.1:PORT/test
#
# - A URL the caller already exported is kept as is.
# - Otherwise the machine's servers on 127.0.0.1:5432 / 127.0.0.1:3306 are used if a real query
#   works (trust auth for postgres; root without password for MariaDB).
# - Otherwise throwaway servers are started with .ci/start-postgres.sh / .ci/start-mariadb.sh
#   in a temporary directory; an EXIT trap (stop_throwaway_databases) stops and removes them.
# - NESTJS_WORKERS_THROWAWAY_DATABASES=1 skips the standard ports (to exercise the start path).
# - A server that cannot be made reachable is fatal with CI=true, a warning otherwise.
#
# The caller runs with set -euo pipefail, so everything here avoids unset variables and tests
# each command that may fail instead of letting set -e end the caller.

_ci_db_scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_ci_db_tmp=${_ci_db_tmp:-}

_ci_db_log() { printf 'databases: %s\n' "$*" >&2; }

# Something accepts TCP connections on 127.0.0.1:PORT (bash /dev/tcp, bounded by timeout).
_ci_db_port_open() {
  timeout 2 bash -c ": >/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# First port from $1 on that nobody listens on (the server start still fails loudly on a race).
_ci_db_free_port() {
  local port=$1
  while _ci_db_port_open "$port"; do
    port=$((port + 1))
  done
  echo "$port"
}

_ci_db_psql() {
  if command -v psql >/dev/null 2>&1; then
    echo psql
  elif [ -x /usr/lib/postgresql/15/bin/psql ]; then
    echo /usr/lib/postgresql/15/bin/psql
  else
    return 1
  fi
}

_ci_db_mysql_client() {
  command -v mariadb 2>/dev/null || command -v mysql 2>/dev/null
}

# A real query through the URL the tests will use. Without psql the open port has to do.
_ci_db_postgres_works() {
  local url=$1 psql
  if ! psql=$(_ci_db_psql); then
    _ci_db_log "psql not found; trusting the open port for $url"
    return 0
  fi
  # -X: no ~/.psqlrc; -w: never prompt for a password.
  [ "$(PGCONNECT_TIMEOUT=5 "$psql" -X -w -tA -d "$url" -c 'SELECT 1' </dev/null 2>/dev/null)" = 1 ]
}

# A real query as root without password over TCP; also creates database test if missing.
_ci_db_mysql_works() {
  local port=$2 client
  if ! client=$(_ci_db_mysql_client); then
    _ci_db_log "mariadb client not found; trusting the open port 127.0.0.1:$port (database test must exist)"
    return 0
  fi
  # --no-defaults: ignore ~/.my.cnf and /etc/mysql, connect exactly like the tests do.
  local args=(--no-defaults --protocol=TCP -h 127.0.0.1 -P "$port" -uroot --connect-timeout=5)
  "$client" "${args[@]}" -e 'CREATE DATABASE IF NOT EXISTS test' </dev/null >/dev/null 2>&1 || true
  "$client" "${args[@]}" -D test -e 'SELECT 1' </dev/null >/dev/null 2>&1
}

stop_throwaway_databases() {
  local rc=$?
  if [ -n "${_ci_db_tmp:-}" ] && [ -d "$_ci_db_tmp" ]; then
    _ci_db_log "stopping throwaway servers in $_ci_db_tmp"
    "$_ci_db_scripts/start-postgres.sh" stop "$_ci_db_tmp/postgres" || true
    "$_ci_db_scripts/start-mariadb.sh" stop "$_ci_db_tmp/mariadb" || true
    rm -rf "$_ci_db_tmp" || true
  fi
  _ci_db_tmp=
  return "$rc"
}

# Run stop_throwaway_databases on exit, before whatever EXIT trap the caller already had.
_ci_db_register_trap() {
  local existing
  existing=$(trap -p EXIT)
  case "$existing" in *stop_throwaway_databases*) return 0 ;; esac
  if [ -n "$existing" ]; then
    # existing is: trap -- 'COMMAND' EXIT
    eval "set -- $existing"
    # shellcheck disable=SC2064 # expand the old command now, on purpose
    trap "stop_throwaway_databases; $3" EXIT
  else
    trap stop_throwaway_databases EXIT
  fi
}

# One temporary directory for both throwaway servers, world-traversable because PostgreSQL
# runs as user postgres below it. /tmp rather than $TMPDIR: a CI's TMPDIR may sit below a
# private home directory, and unix socket paths must stay short (about 100 characters).
_ci_db_ensure_tmp() {
  [ -n "$_ci_db_tmp" ] && return 0
  _ci_db_tmp=$(mktemp -d /tmp/nestjs-workers-db.XXXXXX) || return 1
  chmod 755 "$_ci_db_tmp" || return 1
  _ci_db_register_trap
}

# Start SCRIPT in $_ci_db_tmp/SUBDIR on the first free port from FIRST_PORT and print its URL
# (the last stdout line of the script). A few attempts on later ports, because a parallel run
# may grab the same free port between the check and the server's bind.
_ci_db_start_throwaway() {
  local script=$1 subdir=$2 port=$3 name=$4 attempt out
  for attempt in 1 2 3; do
    port=$(_ci_db_free_port "$port")
    _ci_db_log "$name: starting a throwaway server on 127.0.0.1:$port"
    if out=$("$_ci_db_scripts/$script" "$_ci_db_tmp/$subdir" "$port") && [ -n "$out" ]; then
      echo "${out##*$'\n'}"
      return 0
    fi
    _ci_db_log "$name: attempt $attempt on port $port failed"
    port=$((port + 1))
  done
  return 1
}

# Fatal in CI, a warning elsewhere (then the variable stays unset).
_ci_db_unreachable() {
  local name=$1 var=$2
  if [ "${CI:-}" = true ]; then
    _ci_db_log "error: no reachable $name server for the tests ($var); see the messages above"
    exit 1
  fi
  _ci_db_log "warning: no reachable $name server; $var stays unset"
  unset "$var"
}

_ci_db_forced() { [ "${NESTJS_WORKERS_THROWAWAY_DATABASES:-}" = 1 ]; }

# One server kind: the caller's URL, else the server on the standard port if a real query works
# there, else a throwaway server started by SCRIPT on a free port from FIRST_FREE_PORT.
# CHECK is called with the standard port's URL and port.
_ci_db_setup() {
  local name=$1 var=$2 port=$3 url=$4 check=$5 script=$6 first_free_port=$7 subdir
  if [ -n "${!var:-}" ]; then
    _ci_db_log "$name: keeping $var from the caller"
    export "${var?}"
    return 0
  fi
  if _ci_db_forced; then
    _ci_db_log "$name: NESTJS_WORKERS_THROWAWAY_DATABASES=1, not looking at 127.0.0.1:$port"
  elif ! _ci_db_port_open "$port"; then
    _ci_db_log "$name: nothing on 127.0.0.1:$port"
  elif "$check" "$url" "$port"; then
    _ci_db_log "$name: using the server on 127.0.0.1:$port"
    export "$var=$url"
    return 0
  else
    _ci_db_log "$name: 127.0.0.1:$port answers, but 'SELECT 1' as the test user fails"
  fi
  _ci_db_ensure_tmp || { _ci_db_unreachable "$name" "$var"; return 0; }
  subdir=${script#start-}
  subdir=${subdir%.sh}
  if url=$(_ci_db_start_throwaway "$script" "$subdir" "$first_free_port" "$name"); then
    _ci_db_log "$name: using the throwaway server $url (directory $_ci_db_tmp/$subdir)"
    export "$var=$url"
  else
    _ci_db_unreachable "$name" "$var"
  fi
}

_ci_db_setup PostgreSQL WORKERS_TEST_POSTGRES_URL 5432 postgres://postgres@127.0.0.1:5432/postgres \
  _ci_db_postgres_works start-postgres.sh 55432
_ci_db_setup MariaDB WORKERS_TEST_MYSQL_URL 3306 mysql://root@127.0.0.1:3306/test \
  _ci_db_mysql_works start-mariadb.sh 53306
