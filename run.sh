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
  if ! command -v cargo >/dev/null; then
    echo "run.sh: cargo not found; install Rust (https://rustup.rs) and run again" >&2
    exit 1
  fi
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
    cargo test --release --locked -- --test-threads="${TEST_THREADS:-4}"
    if [ -x tests/e2e/run-all.sh ]; then
      tests/e2e/run-all.sh
    fi
    ;;
  *)
    sed -n '2,5p' "$0" | sed 's/^# //'
    exit 2
    ;;
esac
