#!/usr/bin/env bash
# npm run bench: our queue, graphile-worker and pg-boss on the same PostgreSQL in one run, plus our
# queue on SQLite and MariaDB, and a worker process's memory over 500,000 events.
#
# Servers as for the tests (.ci/databases.sh): WORKERS_TEST_POSTGRES_URL / WORKERS_TEST_MYSQL_URL when
# set, else the machine's servers on 127.0.0.1:5432 / :3306, else throwaway ones started here and
# stopped on exit. BENCH_SCALE=0.1 runs every count at a tenth (a quick look, not for figures).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../.ci/databases.sh
source .ci/databases.sh
npx tsc -p tsconfig.bench.json
node --expose-gc --enable-source-maps dist/bench/bench.js
