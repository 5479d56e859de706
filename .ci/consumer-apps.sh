#!/usr/bin/env bash
# Consumer-app check: installs the packed package the way a user does, into throwaway apps outside the
# repository (each with its own package.json), which a green suite inside the repo cannot show:
#   - every entry point (., ./terminus, ./prometheus, ./testing) loads with require() and import();
#   - an ES module app ("type": "module", module nodenext) and a CommonJS app ("type": "commonjs",
#     module commonjs with the classic node10 resolution, and type-checked under nodenext too), both
#     compiled from .ci/consumer/app.ts with their own tsc; each boots WorkerModule.forRoot() (the
#     embedded SQLite default), dispatches an event and sees a worker run it;
#   - a copy of the app with better-sqlite3 uninstalled fails startup with the install command, and
#     (when WORKERS_TEST_POSTGRES_URL is set, as .ci/run does) runs an event on PostgreSQL with pg.
# The packages are README's install line (so the documented set-up is what is tested), with the
# tarball in place of the package name. One npm install (better-sqlite3 compiles there); the second
# app gets a copy of its node_modules. Needs `npm run build` first; CONSUMER_TARBALL=file.tgz checks
# that tarball instead of packing this checkout; KEEP_CONSUMER_APPS=1 leaves the apps for a look.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIXTURES="$ROOT/.ci/consumer"
WORK=$(mktemp -d)
if [ "${KEEP_CONSUMER_APPS:-}" = 1 ]; then
  trap 'echo "consumer apps kept in $WORK"' EXIT
else
  trap 'rm -rf "$WORK"' EXIT
fi
started=$SECONDS

step() { printf -- '--> %s (%d s)\n' "$*" "$((SECONDS - started))"; }

TARBALL=${CONSUMER_TARBALL:-}
if [ -z "$TARBALL" ]; then
  step "npm pack"
  (cd "$ROOT" && npm pack --loglevel=warn --pack-destination "$WORK" >/dev/null)
  TARBALL=$(ls "$WORK"/nestjs-workers-*.tgz)
fi
echo "tarball: $TARBALL ($(du -k "$TARBALL" | cut -f1) kB)"

install_line=$(grep -m1 '^npm install nestjs-workers ' "$ROOT/README.md") || {
  echo "README.md has no 'npm install nestjs-workers …' line" >&2
  exit 1
}
read -r -a packages <<<"${install_line#npm install nestjs-workers }"
# The optional entries' peers, and the consumer's own compiler (this repo's versions).
dev_version() { node -p "require('$ROOT/package.json').devDependencies['$1']"; }
extras=(@nestjs/terminus prom-client)
tools=("typescript@$(dev_version typescript)" "@types/node@$(dev_version @types/node)")

esm="$WORK/esm-app" cjs="$WORK/cjs-app" nodriver="$WORK/esm-app-without-sqlite"
cp -r "$FIXTURES/esm" "$esm"
cp -r "$FIXTURES/cjs" "$cjs"
cp "$FIXTURES/app.ts" "$esm/" && cp "$FIXTURES/app.ts" "$cjs/"

step "npm install (the tarball, ${packages[*]} ${extras[*]}) in $esm"
(cd "$esm" && npm install --no-audit --no-fund --loglevel=error "$TARBALL" "${packages[@]}" "${extras[@]}" &&
  npm install --no-audit --no-fund --loglevel=error --save-dev "${tools[@]}")
# The same dependencies for the CommonJS app, without a second download or native build.
node -e "
  const fs = require('fs');
  const app = JSON.parse(fs.readFileSync('$cjs/package.json', 'utf8'));
  const { dependencies, devDependencies } = JSON.parse(fs.readFileSync('$esm/package.json', 'utf8'));
  fs.writeFileSync('$cjs/package.json', JSON.stringify({ ...app, dependencies, devDependencies }, null, 2));
"
cp -a "$esm/node_modules" "$cjs/"

step "every entry point with require() and import()"
cp "$FIXTURES/entries.cjs" "$cjs/"
(cd "$cjs" && timeout 60 node entries.cjs)

step "each app's own tsc: esm (nodenext), commonjs (commonjs + node10, and nodenext)"
# Side by side: the three compilations are independent, and cores to spare shorten the check.
pids=()
(cd "$esm" && npx --no-install tsc -p tsconfig.json) & pids+=($!)
(cd "$cjs" && npx --no-install tsc -p tsconfig.json) & pids+=($!)
(cd "$cjs" && npx --no-install tsc -p tsconfig.nodenext.json) & pids+=($!)
for pid in "${pids[@]}"; do wait "$pid"; done

step "each app boots WorkerModule.forRoot() and runs an event"
(cd "$esm" && EXPECTED_MODULE_SYSTEM=esm timeout 60 node dist/app.js)
(cd "$cjs" && EXPECTED_MODULE_SYSTEM=commonjs timeout 60 node dist/app.js)

step "without better-sqlite3 (an app on a server database installs no native module)"
cp -a "$esm" "$nodriver"
(cd "$nodriver" && npm uninstall --no-audit --no-fund --loglevel=error better-sqlite3)
if [ -e "$nodriver/node_modules/better-sqlite3" ]; then
  echo "better-sqlite3 is still installed: something depends on it" >&2
  exit 1
fi
cp "$FIXTURES/missing-driver.mjs" "$nodriver/"
(cd "$nodriver" && timeout 30 node missing-driver.mjs)
if [ -n "${WORKERS_TEST_POSTGRES_URL:-}" ]; then
  step "the same app on PostgreSQL, with pg and still without better-sqlite3"
  (cd "$nodriver" && npm install --no-audit --no-fund --loglevel=error pg)
  cp "$FIXTURES/postgres-app.mjs" "$nodriver/"
  (cd "$nodriver" && timeout 60 node postgres-app.mjs)
else
  echo "WORKERS_TEST_POSTGRES_URL is not set: the PostgreSQL-only app is not tried"
fi

step "consumer apps passed"
