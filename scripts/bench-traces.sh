#!/usr/bin/env bash
# The observability benchmark: fills a fresh database with synthetic traces (a month of mixed
# traffic, agent sessions, some 200 KB transcripts) and times every query behind the Traces,
# Overview and Activity tabs on it, server-side, median of 7 runs.
#
#   scripts/bench-traces.sh                       # 1,000,000 traces on SQLite (in target/bench/)
#   BENCH_TRACES=200000 scripts/bench-traces.sh
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres scripts/bench-traces.sh
#                                                 # on Postgres: a fresh database antix_bench_<pid>
#                                                 # is created there and dropped afterwards
# Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${BENCH_TRACES:-1000000}"
# BENCH_NO_BUILD=1 uses the binary already in target/release (e.g. from `cargo leptos build`).
# With the flags of cargo-leptos' release build (Cargo.toml, always-erase-components).
[ -n "${BENCH_NO_BUILD:-}" ] || RUSTFLAGS="--cfg erase_components" cargo build --release -p server --bin antix --locked
bin="$PWD/target/release/antix"
data="$PWD/target/bench/traces-$$"
mkdir -p "$data"
export ANTIX_DATA_DIR="$data" ANTIX_CONFIG="" ANTIX_LOG=warn
drop=""
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  db="antix_bench_$$"
  psql "$BENCH_DATABASE_URL" -qc "CREATE DATABASE $db"
  export DATABASE_URL="${BENCH_DATABASE_URL%/*}/$db"
  drop="$db"
else
  export DATABASE_URL="sqlite://$data/antix.db"
fi
cleanup() {
  [ -n "$drop" ] && psql "$BENCH_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $drop WITH (FORCE)"
  rm -rf "$data"
}
trap cleanup EXIT

echo bench-password-1234 | "$bin" admin create --email bench@example.com --org Bench >/dev/null
endpoint=$("$bin" endpoint create --as bench@example.com --name bench --shared --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "backend: ${DATABASE_URL%%:*}, $count traces"
start=$SECONDS
"$bin" traces generate --endpoint "$endpoint" --count "$count"
echo "generated in $((SECONDS - start)) s"
if [ -n "$drop" ]; then
  psql "$DATABASE_URL" -Atc "SELECT 'database size: ' || pg_size_pretty(pg_database_size(current_database()))"
else
  echo "database size: $(du -sh "$data" | cut -f1)"
fi
"$bin" traces bench --endpoint "$endpoint"
