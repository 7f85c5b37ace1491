#!/usr/bin/env bash
# Runs every test: formatting, lints (native and WASM feature sets), unit and integration tests
# on SQLite and, when TEST_POSTGRES_URL is set, on Postgres too, the release WASM build, the
# drop-in tests with the official Python SDKs, and the browser tests in Chromium. Installs what
# is missing first.
#
#   scripts/test.sh
#   TEST_POSTGRES_URL=postgres://user@host:5432/db scripts/test.sh   # also run the Postgres suite
#
# Each Postgres test runs in a fresh schema of that database and drops it when it passes.
set -euo pipefail
cd "$(dirname "$0")/.."
setup_started=$SECONDS
scripts/setup.sh test
echo "(set-up: $((SECONDS - setup_started)) s)"
export PATH="$PWD/style/node_modules/.bin:$PATH"

# Each step says how long the one before it took, so a slow run shows where its time went.
started=$SECONDS
mark=$SECONDS
step() {
  if [ -n "${current:-}" ]; then printf '(%s: %d s)\n' "$current" $((SECONDS - mark)); fi
  current=$*
  mark=$SECONDS
  printf '\n\033[1m==> %s\033[0m\n' "$*"
}

step "cargo fmt --check"
cargo fmt --all --check

step "clippy: server side (antix, app[ssr], server)"
cargo clippy --workspace --exclude frontend --all-targets --locked -- -D warnings

step "clippy: browser side (app[hydrate], frontend on wasm32)"
cargo clippy -p frontend --target wasm32-unknown-unknown --locked -- -D warnings

step "unit and integration tests"
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  echo "TEST_POSTGRES_URL is not set: the Postgres half of the store suite will be SKIPPED."
fi
if ! command -v promtool >/dev/null; then
  echo "promtool not found (Debian package prometheus): the /metrics format checks will be SKIPPED."
fi
log=$(mktemp)
cargo test --workspace --exclude frontend --locked 2>&1 | tee "$log"
# Store tests are `<test>::sqlite` and `<test>::postgres` (see the `store_test!` macro).
sqlite_n=$(grep -cE '^test .*::sqlite \.\.\. ok$' "$log" || true)
pg_n=$(grep -cE '^test .*::postgres \.\.\. ok$' "$log" || true)
rm -f "$log"

step "release build (server + WASM, wasm-opt)"
cargo leptos build --release --precompress

step "drop-in tests with the official SDKs (openai, anthropic, google-genai); the REST API under schemathesis"
(cd end2end && .venv/bin/python -m pytest sdk -q -p no:cacheprovider -W ignore::DeprecationWarning)

step "reliability harness, smoke scale (faults, SIGTERM/SIGKILL, hostile input; scripts/reliability.sh)"
cases=A1,A2,A3,A4,A5,A6,B1,B3,C1,C2,C4,D1,D1s,E1,E3,J1,J2,K3,K4,K5
if [ -n "${TEST_POSTGRES_URL:-}" ]; then
  RELIABILITY_POSTGRES_URL="$TEST_POSTGRES_URL" scripts/reliability.sh --smoke --only "$cases"
else
  scripts/reliability.sh --smoke --only "$cases"   # its Postgres cases SKIP, and say so
fi

step "browser tests (Playwright, Chromium)"
(cd end2end && npx playwright test)

step "summary"
if [ -n "${TEST_POSTGRES_URL:-}" ]; then
  echo "store suite: ${sqlite_n} tests on SQLite, ${pg_n} on Postgres"
else
  echo "store suite: ${sqlite_n} tests on SQLite; Postgres SKIPPED (set TEST_POSTGRES_URL to run it)"
fi
command -v promtool >/dev/null || echo "promtool checks of /metrics: SKIPPED (apt install prometheus)"
echo "all tests passed in $((SECONDS - started)) s"
