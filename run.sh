#!/usr/bin/env bash
# The two commands of the README:
#   ./run.sh build [mini-mirror build flags...]   set up, compile, build the mirror from sources/ into public/
#   ./run.sh test                                 set up, compile, run every test (what CI runs)
# Both install what they need on a fresh Debian 12 machine (as root, or with sudo).
set -euo pipefail
cd "$(dirname "$0")"

SYSTEM_PACKAGES=(
  # build: sequoia-openpgp's nettle backend (bindgen needs libclang)
  build-essential pkg-config nettle-dev libclang-dev
  # tests: fixture packages, independent signature checks, the real apt client
  dpkg-dev gnupg gpgv xz-utils ca-certificates curl
  debootstrap nginx-light iproute2 zstd apt-utils
)

setup() {
  local missing=()
  for p in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "run.sh: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  ensure_rust
}

# Rust: Cargo.toml's rust-version or newer. When cargo is missing or older, rustup installs the
# stable toolchain (minimal profile) into ~/.cargo, the way Rust users expect; when that is
# impossible, say exactly what to install.
RUSTUP_INIT_URL=${RUSTUP_INIT_URL:-https://sh.rustup.rs}
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; }  # $1 >= $2
cargo_ok() {
  local v
  v=$(cargo --version 2>/dev/null | awk '{print $2}') || return 1
  [ -n "$v" ] && version_ge "${v%%-*}" "$1"
}
ensure_rust() {
  local need have tmp
  need=$(sed -n 's/^rust-version = "\([0-9.]*\)".*/\1/p' Cargo.toml | head -n 1)
  # A rustup toolchain already in ~/.cargo comes first.
  if [ -x "$HOME/.cargo/bin/cargo" ]; then PATH=$HOME/.cargo/bin:$PATH; fi
  cargo_ok "$need" && return 0
  have=$(cargo --version 2>/dev/null || echo "no cargo")
  echo "run.sh: Rust $need or newer is needed (found: $have); installing the stable toolchain with rustup (minimal profile) into ~/.cargo" >&2
  if command -v rustup >/dev/null; then
    rustup toolchain install stable --profile minimal >&2 && rustup default stable >&2 || true
  else
    tmp=$(mktemp)
    if curl --proto '=https' --tlsv1.2 -sSf -m 120 "$RUSTUP_INIT_URL" -o "$tmp"; then
      sh "$tmp" -y --profile minimal --default-toolchain stable --no-modify-path >&2 || true
    fi
    rm -f "$tmp"
  fi
  PATH=$HOME/.cargo/bin:$PATH
  if ! cargo_ok "$need"; then
    echo "run.sh: could not install Rust (rustup from $RUSTUP_INIT_URL failed). Install Rust $need or newer and run again, e.g.: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal (Debian 12's packaged rustc is too old)" >&2
    exit 1
  fi
  echo "run.sh: using $(cargo --version)" >&2
}

cmd="${1:-}"
shift || true
case "$cmd" in
  build)
    setup
    cargo build --release --locked
    exec ./target/release/mini-mirror build "$@"
    ;;
  test)
    setup
    cargo build --release --locked
    # Each suite prints its own `N passed, M failed`; the last line counts the suites.
    suites_passed=0 suites_failed=0 failed_names=()
    suite() {
      local name=$1; shift
      echo "==== suite: $name ====" >&2
      if "$@"; then suites_passed=$((suites_passed + 1))
      else suites_failed=$((suites_failed + 1)); failed_names+=("$name"); fi
    }
    suite "cargo test" cargo test --release --locked -- --test-threads="${TEST_THREADS:-4}"
    suite "e2e (real apt, offline)" tests/e2e/run-all.sh
    suite "helm chart" tests/chart/run.sh
    [ -x tests/image/run.sh ] && suite "container image" tests/image/run.sh
    [ ${#failed_names[@]} -eq 0 ] || echo "failed suites: ${failed_names[*]}" >&2
    echo "suites: $suites_passed passed, $suites_failed failed"
    [ "$suites_failed" -eq 0 ]
    ;;
  *)
    sed -n '2,5p' "$0" | sed 's/^# //'
    exit 2
    ;;
esac
