#!/usr/bin/env bash
# The proxy benchmark: direct-to-mock vs a bare nginx reverse proxy vs the Antix gateway (trace
# recording on), plain and streaming, at concurrency 1 and 32, interleaved in one run. The
# gateway is pinned to CPU 0, the load generator and the nginx mock to CPU 1.
#
#   scripts/bench.sh                 # ~4 minutes; prints the table, saves target/bench/results.md
#   BENCH_SECONDS=10 BENCH_ROUNDS=5 scripts/bench.sh
#
# Needs nginx and wrk (installed from Debian's packages when missing). Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get install -y --no-install-recommends nginx wrk \
    || { $sudo_cmd apt-get update && $sudo_cmd apt-get install -y --no-install-recommends nginx wrk; }
fi
# The flags of cargo-leptos' release build (Cargo.toml, always-erase-components): the two builds
# share their dependencies in target/release, and the binary's pages hydrate with the built WASM.
RUSTFLAGS="--cfg erase_components" cargo build --release -p server --bin antix --locked
exec python3 scripts/bench/bench.py "$@"
