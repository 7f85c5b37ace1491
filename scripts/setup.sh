#!/usr/bin/env bash
# Installs what building and testing Antix needs, skipping whatever is already there, so it is
# fast when run again. Needs Rust (rustup), Node.js with npm, and Debian's apt (for Chromium).
#
#   scripts/setup.sh build   # toolchain for building and running the product
#   scripts/setup.sh test    # plus what the tests need (Chromium, Playwright, Python SDKs)
#
# Versions are pinned: cargo-leptos 0.3.10 (0.3.11 needs a newer rustc), wasm-bindgen-cli equal
# to the wasm-bindgen crate in Cargo.lock, Tailwind and wasm-opt (npm binaryen; Debian's
# binaryen silently breaks hydration) from style/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-build}"

CARGO_LEPTOS_VERSION=0.3.10
step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm not found: install Node.js (20 or newer)" >&2; exit 1; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q " ${CARGO_LEPTOS_VERSION}\$"; then
  step "installing cargo-leptos ${CARGO_LEPTOS_VERSION} (once; about 20 minutes on 2 cores)"
  # LTO off and more codegen units: same tool, about a fifth faster to build.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install "cargo-leptos@${CARGO_LEPTOS_VERSION}" --locked --features no_downloads
fi

wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " ${wb_version}\$"; then
  step "installing wasm-bindgen-cli ${wb_version} (must equal the crate in Cargo.lock)"
  # Not --locked: its lock file names a yanked webpki-roots release.
  cargo install wasm-bindgen-cli --version "${wb_version}" --force
fi

npm_ci() { # npm ci only when node_modules is missing or older than the lock file
  local dir=$1
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    step "installing npm packages in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci style

if [ "$what" = test ]; then
  # Debian's chromium (the browser tests) and prometheus (its promtool checks /metrics).
  missing=""
  [ -x /usr/bin/chromium ] || missing="$missing chromium"
  command -v promtool >/dev/null || missing="$missing prometheus"
  if [ -n "$missing" ]; then
    step "installing Debian packages:$missing"
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends $missing \
      || { $sudo_cmd apt-get update \
           && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends $missing; }
  fi
  npm_ci end2end
  # The official Python SDKs for the drop-in tests, in a virtualenv of their own.
  venv=end2end/.venv
  if [ ! -x "$venv/bin/python" ] || [ end2end/sdk/requirements.txt -nt "$venv/.installed" ]; then
    step "installing the Python SDKs (openai, anthropic, google-genai) and schemathesis into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r end2end/sdk/requirements.txt
    touch "$venv/.installed"
  fi
fi
