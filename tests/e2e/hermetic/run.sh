#!/usr/bin/env bash
# Hermetic end-to-end case: a fixture upstream repository (real .deb files with real
# relationships, signed by a throwaway key) served on the host's loopback, mirrored by
# mini-mirror, then proven offline by tests/e2e/offline.sh in a bookworm client.
# No network is needed once the client cache (debootstrap of bookworm) exists.
#
#   tests/e2e/hermetic/run.sh [--keep] [offline.sh options...]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
# shellcheck source=fixture.sh
. "$HERE/fixture.sh"

KEEP=0
[ "${1:-}" = --keep ] && { KEEP=1; shift; }

ensure_tools
fixture_workdir hermetic

phase "hermetic: make upstream fixture" fixture_make "$FX"
phase "hermetic: serve upstream on host loopback" fixture_serve "$FX"
fixture_sources "$FX"
log "upstream fixture at $FIXTURE_URL, sources in $FX/sources"

rc=0
"$E2E_DIR/offline.sh" "$FX/sources" --output "$FX/out" "$@" || rc=$?

# Closure checks on the built tree: what is needed is there, what is not needed is not.
if [ -d "$FX/out/fixture" ]; then
    extra_pass=0 extra_fail=0
    check() {  # check DESCRIPTION COMMAND...
        if "${@:2}"; then extra_pass=$((extra_pass + 1)); echo "ok $1"
        else extra_fail=$((extra_fail + 1)); echo "failed $1"; fi
    }
    has_pkg() { find "$FX/out/fixture/pool" -name "$1" -type f | grep -q .; }
    check "closure: hello-app 2.0-1 in the pool" has_pkg 'hello-app_2.0-1_amd64.deb'
    check "closure: libgreet 1.2-1 in the pool" has_pkg 'libgreet_1.2-1_amd64.deb'
    check "closure: greet-base (Pre-Depends) in the pool" has_pkg 'greet-base_1.0-1_all.deb'
    check "closure: a greeting-voice provider in the pool" has_pkg 'greet-voice-*_1.0-1_all.deb'
    check "closure: greet-tools (contrib) in the pool" has_pkg 'greet-tools_3.1-1_all.deb'
    check "closure: unrelated-big not in the mirror" eval '! has_pkg "unrelated-big_*"'
    check "closure: old libgreet 0.5-1 not needed" eval '! has_pkg "libgreet_0.5-1_*"'
    check "closure: recommends off -> no greet-docs" eval '! has_pkg "greet-docs_*"'
    check "closure: greet-extra (updates pocket) in the pool" has_pkg 'greet-extra_1.0-1_amd64.deb'
    check "closure: greet-engine 1.0-2 (updates) in the pool" has_pkg 'greet-engine_1.0-2_amd64.deb'
    check "closure: greet-meta 1.0-2 (updates; pinned to greet-engine 1.0-2) in the pool" has_pkg 'greet-meta_1.0-2_all.deb'
    echo "hermetic closure: $extra_pass passed, $extra_fail failed"
    [ "$extra_fail" -eq 0 ] || rc=1
fi
exit "$rc"
