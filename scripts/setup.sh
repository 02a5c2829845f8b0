# Sourced by scripts/run and scripts/test: installs what Keycard needs and is missing, and puts
# it on PATH. Safe to run again: each step checks first.
#
#   KEYCARD_TOOLS   where cargo-leptos, wasm-bindgen-cli and wasm-opt go (default: .tools/ in the
#                   repository; CI points it at a cache shared between clones)
#
# Usage: setup_build_tools   (Rust target, cargo-leptos, wasm-bindgen-cli, wasm-opt)
#        setup_test_tools    (the end2end npm packages, a Chromium for Playwright, and the Python
#                             tools, Schemathesis and the RFC 9449 client's, in a virtual
#                             environment)

set -euo pipefail

KEYCARD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KEYCARD_TOOLS="${KEYCARD_TOOLS:-$KEYCARD_ROOT/.tools}"
CARGO_LEPTOS_VERSION="0.3.10"
BINARYEN_VERSION="123.0.0"
# wasm-bindgen-cli must equal the wasm-bindgen crate pinned in Cargo.toml.
WASM_BINDGEN_VERSION="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' "$KEYCARD_ROOT/Cargo.toml")"

mkdir -p "$KEYCARD_TOOLS/bin"
export PATH="$KEYCARD_TOOLS/bin:$KEYCARD_TOOLS/npm/node_modules/.bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
# A TCP port on 127.0.0.1 that nothing listens on now (the servers scripts start take one each).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required: $2" >&2; exit 1; }
}

# How the build tools are compiled. Their own release profiles ask for fat LTO and one codegen
# unit: the first run compiled cargo-leptos alone for 15 to 21 minutes on 2 cores. A build tool
# runs a few times a day for seconds, so here its ~550 dependencies are built unoptimised, the
# tool itself lightly, and only the few dependencies that do its work at run time (reading and
# writing wasm, hashing, compressing, CSS) optimised: cargo-leptos compiles in about half the
# time, and a build it drives takes about 0.4 s longer (README, "Tests", has the figures).
tool_profile() {
  local hot
  printf '%s\n' --config 'profile.release.lto=false' --config 'profile.release.codegen-units=256' \
    --config 'profile.release.opt-level=1' --config 'profile.release.package."*".opt-level=0'
  for hot in "$@"; do printf '%s\n' --config "profile.release.package.$hot.opt-level=2"; done
}

# cargo install of $1 at version $2 into the tools folder, unless that version is there already.
# The remaining arguments go to cargo install.
install_crate() {
  local crate=$1 version=$2 bin=$3; shift 3
  if "$KEYCARD_TOOLS/bin/$bin" --version 2>/dev/null | grep -q " $version"; then return; fi
  say "installing $crate $version into $KEYCARD_TOOLS (once per machine; takes minutes)"
  cargo install "$crate" --version "$version" --root "$KEYCARD_TOOLS" --force "$@"
}

setup_build_tools() {
  need cargo "install Rust with rustup (https://rustup.rs)"
  need rustup "install Rust with rustup (https://rustup.rs)"
  need npm "install Node.js 20 or newer with npm"
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  local profile
  mapfile -t profile < <(tool_profile walrus gimli wasmparser wasm_split_cli_support seahash \
    md-5 brotli flate2 miniz_oxide lightningcss)
  install_crate cargo-leptos "$CARGO_LEPTOS_VERSION" cargo-leptos --locked "${profile[@]}"
  mapfile -t profile < <(tool_profile walrus gimli wasmparser)
  # No --locked: the CLI's own lock file names a crate version missing from the registry index.
  install_crate wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen "${profile[@]}"
  if ! wasm-opt --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
    say "installing wasm-opt (binaryen $BINARYEN_VERSION from npm)"
    npm install --silent --no-audit --no-fund --prefix "$KEYCARD_TOOLS/npm" "binaryen@$BINARYEN_VERSION"
  fi
}

# Debian packages, installed with apt when it is there and we are root; else a clear error.
# Without questions, and without letting the packages start their system services (a PostgreSQL
# on 5432, an nginx on 80): Keycard starts its own servers, on free ports, and stops them.
apt_install() {
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Debian's $*"
    local no_services=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      no_services=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' >"$no_services" && chmod +x "$no_services"
    fi
    local status=0
    export DEBIAN_FRONTEND=noninteractive
    (apt-get install -y -q "$@" >/dev/null 2>&1) \
      || (apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null) || status=$?
    [ -z "$no_services" ] || rm -f "$no_services"
    [ "$status" = 0 ] || { echo "error: could not install $*" >&2; exit 1; }
  else
    echo "error: install $* (Debian/Ubuntu package names) and run again" >&2
    exit 1
  fi
}

# The Python tools of the test command (Schemathesis, and PyJWT with cryptography for the RFC
# 9449 client), pinned in scripts/python-requirements.txt, in a virtual environment of the tools
# folder. Sets KEYCARD_SCHEMATHESIS and KEYCARD_PYTHON.
setup_python_tools() {
  local venv="$KEYCARD_TOOLS/venv" requirements="$KEYCARD_ROOT/scripts/python-requirements.txt"
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  if [ ! -f "$venv/requirements.txt" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
    say "installing the test command's Python tools (Schemathesis, PyJWT, from PyPI) into $venv"
    if ! python3 -m venv --clear "$venv" >/dev/null 2>&1; then
      apt_install python3-venv
      python3 -m venv --clear "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
  fi
  export KEYCARD_SCHEMATHESIS="$venv/bin/schemathesis"
  export KEYCARD_PYTHON="$venv/bin/python"
}

setup_test_tools() {
  setup_python_tools
  local e2e="$KEYCARD_ROOT/end2end"
  if [ ! -d "$e2e/node_modules" ] || [ "$e2e/package-lock.json" -nt "$e2e/node_modules/.package-lock.json" ]; then
    say "installing the end-to-end test packages (npm ci)"
    (cd "$e2e" && npm ci --no-audit --no-fund)
  fi
  if [ -z "${KEYCARD_CHROMIUM:-}" ]; then
    for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
      if [ -x "$candidate" ]; then export KEYCARD_CHROMIUM="$candidate"; break; fi
    done
  fi
  if [ -z "${KEYCARD_CHROMIUM:-}" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      apt_install chromium
      export KEYCARD_CHROMIUM=/usr/bin/chromium
    else
      say "installing Playwright's own Chromium"
      (cd "$e2e" && npx playwright install chromium)
    fi
  fi
}
