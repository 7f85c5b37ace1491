#!/usr/bin/env bash
# The reliability fault harness (RELIABILITY.md §5 and §K): the release gateway, the mock
# provider, a fault-injecting TCP proxy and a hostile upstream, cases A–K, one Markdown table.
#
#   scripts/reliability.sh --smoke            # every case at small counts, about a minute
#   scripts/reliability.sh                    # the stated scale where feasible (minutes)
#   scripts/reliability.sh --only A1,C1,K4    # some cases (--help lists them)
#   scripts/reliability.sh --bin /path/to/antix --postgres postgres://postgres@127.0.0.1:5432/test
#
# Needs target/release/antix (scripts/run.sh builds it; or RUSTFLAGS="--cfg erase_components"
# cargo build --release -p server, the flags of its release build), python3 (stdlib only) and zstd;
# the Postgres cases need psql/pg_dump and a server with trust auth, and SKIP without one.
# Exit status: non-zero when a case FAILs. Every process, temporary directory and database it
# makes is removed afterwards, on Ctrl-C too (and even if the Python harness is killed).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_url="${RELIABILITY_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
own_tmp=1
prev=""
for a in "$@"; do
  case "$prev" in --postgres) pg_url="$a" ;; esac
  case "$a" in --postgres=*) pg_url="${a#--postgres=}" ;; --tmp|--tmp=*|--keep) own_tmp=0 ;; esac
  prev="$a"
done
extra=()
if [ "$own_tmp" = 1 ]; then
  work=$(mktemp -d -t antix-reliability-XXXXXX)
  extra=(--tmp "$work")
fi

harness_pid=""
cleanup() {
  if [ -n "$harness_pid" ] && kill -0 "$harness_pid" 2>/dev/null; then
    kill -TERM "$harness_pid" 2>/dev/null || true
    wait "$harness_pid" 2>/dev/null || true
  fi
  # What a harness killed outright could not remove itself.
  if [ "$own_tmp" = 1 ] && [ -n "${work:-}" ]; then rm -rf "$work"; fi
  if [ -n "$harness_pid" ] && command -v psql >/dev/null; then
    psql -X -At "$pg_url" -c "SELECT datname FROM pg_database WHERE datname LIKE 'antix\_rel\_${harness_pid}\_%'" \
      2>/dev/null | while read -r db; do
        [ -n "$db" ] && psql -X -q "$pg_url" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
      done
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

PYTHONDONTWRITEBYTECODE=1 python3 scripts/reliability/run.py "${extra[@]}" "$@" &
harness_pid=$!
set +e
wait "$harness_pid"
status=$?
set -e
exit "$status"
