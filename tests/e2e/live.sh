#!/usr/bin/env bash
# LIVE end-to-end case: mirrors real upstreams from the internet (Debian's archive, as configured
# in this machine's apt sources, and Ubuntu's archive), then proves the mirror offline with
# tests/e2e/offline.sh --essential-bootstrap:
#   * the repo's example sources (sources/ at the top of the repo) if it has any; otherwise a
#     generated Debian bookworm source (curl, nginx-light, jq; essential seeding on);
#   * plus, when no source has `essential = true`, a small Debian source that has (so that
#     debootstrap --variant=minbase from the mirror is always proven);
#   * plus one Ubuntu source with two components (jammy main + universe), whose packages are
#     installed in a jammy client (debootstrap'ed from archive.ubuntu.com once, cached);
#   * plus one Debian trixie source (curl, jq) installed in a trixie client (apt 3 with sqv).
# The Ubuntu archive key comes from ubuntu-keyring_2021.03.26_all.deb (pinned SHA256,
# cross-checked against jammy's signed index).
#
#   tests/e2e/live.sh [--keep] [offline.sh options...]
# Time-bounded: MINI_MIRROR_E2E_LIVE_TIMEOUT seconds for the offline run (default 1500; the
# build inside it: MINI_MIRROR_E2E_BUILD_TIMEOUT, default 900 here).
# MINI_MIRROR_E2E_SKIP_LIVE=1 skips it (prints "live: skipped").
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

if [ "${MINI_MIRROR_E2E_SKIP_LIVE:-0}" = 1 ]; then echo "live: skipped (MINI_MIRROR_E2E_SKIP_LIVE=1)"; exit 0; fi
KEEP=0
[ "${1:-}" = --keep ] && { KEEP=1; shift; }

echo "=== LIVE e2e (network: Debian and Ubuntu archives) ==="
ensure_tools
LIVE=$(mktemp -d /var/tmp/mm-live.XXXXXX)
chmod 0755 "$LIVE"
cleanup() {
    local rc=$?
    set +e
    if [ "$KEEP" = 1 ]; then log "kept $LIVE"; else rm -rf --one-file-system "$LIVE"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DEBIAN_URL=$(debian_archive_url)
reachable() {
    local u
    for u in "$DEBIAN_URL/dists/bookworm/InRelease" "$E2E_UBUNTU_URL/dists/jammy/InRelease"; do
        curl -fsS -m 20 -o /dev/null -I "$u" || { echo "live: cannot reach $u" >&2; return 1; }
    done
}
phase "live: upstreams reachable" reachable || { echo "0 passed, 1 failed"; exit 1; }

make_sources() {
    local s=$LIVE/sources
    mkdir -p "$s"
    if find "$REPO_ROOT/sources" -mindepth 3 -name source.txt 2>/dev/null | grep -q .; then
        log "using the repo's example sources ($REPO_ROOT/sources)"
        cp -r "$REPO_ROOT/sources/." "$s/"
    else
        log "the repo has no sources/ yet: generating a Debian bookworm source"
        mkdir -p "$s/debian/bookworm"
        echo "$DEBIAN_URL /usr/share/keyrings/debian-archive-keyring.gpg bookworm main" >"$s/debian/bookworm/source.txt"
        printf '%s\n' '# live e2e: real Debian packages' curl nginx-light 'jq (>= 1.6)' >"$s/debian/bookworm/packages.txt"
        printf '%s\n' 'architectures = ["amd64"]' 'essential = true' 'recommends = false' >"$s/debian/bookworm/settings.toml"
    fi
    # Essential seeding, proven by debootstrap from the mirror: if no source asks for it,
    # add a small Debian source (own prefix) that does.
    if ! grep -rqsE '^\s*essential\s*=\s*true' "$s" --include=settings.toml; then
        mkdir -p "$s/e2e-essential/bookworm"
        echo "$DEBIAN_URL /usr/share/keyrings/debian-archive-keyring.gpg bookworm main" >"$s/e2e-essential/bookworm/source.txt"
        printf '%s\n' '# live e2e: essential seeding (debootstrap --variant=minbase from the mirror)' jq >"$s/e2e-essential/bookworm/packages.txt"
        printf '%s\n' 'architectures = ["amd64"]' 'essential = true' 'recommends = false' >"$s/e2e-essential/bookworm/settings.toml"
    fi
    # Debian 13 trixie, the current stable: its client is apt 3 verifying with sqv under the
    # dated crypto policy, the client our signatures must satisfy for years.
    local t=$s/trixie-e2e/trixie
    mkdir -p "$t"
    echo "$DEBIAN_URL /usr/share/keyrings/debian-archive-keyring.gpg trixie main" >"$t/source.txt"
    printf '%s\n' '# live e2e: a trixie client (apt 3, sqv) installs from the mirror' curl jq >"$t/packages.txt"
    printf '%s\n' 'architectures = ["amd64"]' 'essential = false' 'recommends = false' >"$t/settings.toml"
    # One Ubuntu source with two components.
    local u=$s/ubuntu-e2e/jammy
    mkdir -p "$u"
    cp "$(ubuntu_keyring)" "$u/ubuntu-archive-keyring.gpg"
    echo "$E2E_UBUNTU_URL ubuntu-archive-keyring.gpg jammy main universe" >"$u/source.txt"
    # curl, jq: main; tree, cowsay: universe (cowsay needs perl from main).
    printf '%s\n' '# live e2e: real Ubuntu packages, two components' curl jq tree cowsay >"$u/packages.txt"
    printf '%s\n' 'architectures = ["amd64"]' 'essential = false' 'recommends = false' >"$u/settings.toml"
}
make_sources
find "$LIVE/sources" -name source.txt | while read -r f; do log "live source ${f#"$LIVE"/sources/}: $(grep -v -E '^\s*(#|$)' "$f")"; done

# Client caches (debootstrap from the real archives) before the clock of the offline run.
ensure_client() { client_tarball "$1" >/dev/null; }
phase "live: client cache bookworm" ensure_client bookworm
phase "live: client cache jammy" ensure_client jammy

extra=()
grep -rqsE '^\s*essential\s*=\s*true' "$LIVE/sources" --include=settings.toml && extra+=(--essential-bootstrap)
export MINI_MIRROR_E2E_BUILD_TIMEOUT=${MINI_MIRROR_E2E_BUILD_TIMEOUT:-900}
rc=0
phase "live: offline.sh" timeout --kill-after=60 "${MINI_MIRROR_E2E_LIVE_TIMEOUT:-1500}" \
    "$HERE/offline.sh" "$LIVE/sources" "${extra[@]}" --output "$LIVE/out" "$@" || rc=$?
[ "$rc" -ne 124 ] || echo "live: TIMED OUT after ${MINI_MIRROR_E2E_LIVE_TIMEOUT:-1500}s"
print_phases
exit "$rc"
