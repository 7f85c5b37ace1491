#!/usr/bin/env bash
# Builds Antix in release mode and runs it: http://127.0.0.1:3000, SQLite under ./data/.
# Installs the build toolchain first when it is missing. Any ANTIX_* / DATABASE_URL variable
# set in the environment is passed through (see the README's configuration table).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
export PATH="$PWD/style/node_modules/.bin:$PATH"
cargo leptos build --release --precompress
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-$PWD/target/site}"
# First run: print the setup link (the setup page asks for this token; it proves you run this
# server). Silent once an administrator exists.
target/release/antix admin setup-token 2>/dev/null || true
exec target/release/antix serve "$@"
