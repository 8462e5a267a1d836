#!/usr/bin/env bash
# All end-to-end suites, in order: nginx config, hermetic (no network), tamper (negative),
# live (network), key policy (the signing-key lint against real trixie and bookworm clients).
# This is what .ci/run calls. Needs root; installs its own tools on a fresh Debian 12.
#   tests/e2e/run-all.sh
# MINI_MIRROR_E2E_SKIP_LIVE=1 leaves out the live suite.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

passed=0 failed=0 summary=()
suite() {
    local name=$1; shift
    local t0 rc=0
    t0=$(date +%s)
    echo
    echo "######## e2e suite: $name ########"
    "$@" || rc=$?
    local secs=$(( $(date +%s) - t0 ))
    if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); summary+=("ok     $name (${secs}s)")
    else failed=$((failed + 1)); summary+=("FAILED $name (exit $rc, ${secs}s)"); fi
}
suite nginx "$HERE/nginx-check.sh"
suite hermetic "$HERE/hermetic/run.sh"
suite tamper "$HERE/tamper.sh"
if [ "${MINI_MIRROR_E2E_SKIP_LIVE:-0}" = 1 ]; then
    summary+=("skipped live (MINI_MIRROR_E2E_SKIP_LIVE=1)")
else
    suite live "$HERE/live.sh"
    # After live: it reuses the trixie and bookworm client roots live has cached.
    suite "key policy (lint vs trixie sqv)" "$HERE/key-policy.sh"
    suite "apt --snapshot (trixie) against the mirror alone" "$HERE/snapshot.sh"
    suite "mini-mirror serve, trixie and bookworm clients" "$HERE/serve.sh"
fi
echo
echo "######## e2e summary ########"
printf '  %s\n' "${summary[@]}"
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
