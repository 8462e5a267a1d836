#!/usr/bin/env bash
# Negative end-to-end test: proves the offline runner can fail, and fails for the right reason.
# After a (passing) hermetic build, copies of the published tree are tampered with and served:
#   packages   one byte flipped in every published Packages file (plain, .gz, .xz, by-hash; sizes
#              kept)        -> apt-get update must fail with "Hash Sum mismatch"
#   deb        one byte flipped in libgreet's .deb -> update clean, installing hello-app (which
#              needs libgreet) must fail with "Hash Sum mismatch"
#   release    one byte changed in the signed text of InRelease and in Release
#              -> the signature no longer verifies: gpgv and apt-get update must both reject it
#
#   tests/e2e/tamper.sh [--keep]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=hermetic/fixture.sh
. "$HERE/hermetic/fixture.sh"

KEEP=0
[ "${1:-}" = --keep ] && KEEP=1

ensure_tools
fixture_workdir tamper

PASSED=0 FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok $*"; }
nok() { FAILED=$((FAILED + 1)); echo "failed $*"; }

# flip_byte FILE [OFFSET]: xor one byte with 0x01 in place (size unchanged); default: the middle.
flip_byte() {
    local f=$1 size off
    size=$(stat -c %s "$f")
    off=${2:-$((size / 2))}
    local b; b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
    printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$f" bs=1 seek="$off" count=1 conv=notrunc status=none
}
# copy_mirror NAME: an independent copy of the built tree (no hard links back into it).
copy_mirror() {
    rm -rf "${FX:?}/${1:?}"
    cp -r --preserve=mode,timestamps "$FX/out" "$FX/$1"
    chmod -R a+rX "$FX/$1"
}
# run_offline MIRROR -> output in $FX/<name>.out, exit code in RUN_RC
run_offline() {
    RUN_RC=0
    "$HERE/offline.sh" "$FX/sources" --mirror "$FX/$1" >"$FX/$1.out" 2>"$FX/$1.err" || RUN_RC=$?
    sed 's/^/    | /' "$FX/$1.out"
}

phase "tamper: make upstream fixture" fixture_make "$FX"
phase "tamper: serve upstream" fixture_serve "$FX"
fixture_sources "$FX"

# 0. the untampered build passes (otherwise the failures below would prove nothing).
base_rc=0
phase "tamper: baseline build + offline run" "$HERE/offline.sh" "$FX/sources" --output "$FX/out" \
    >"$FX/baseline.out" 2>"$FX/baseline.err" || base_rc=$?
sed 's/^/    | /' "$FX/baseline.out"
if [ "$base_rc" -eq 0 ]; then ok "baseline: the untampered mirror passes"
else
    tail -n 20 "$FX/baseline.err" >&2
    nok "baseline: the untampered mirror does not pass (exit $base_rc)"
    [ -d "$FX/out" ] || { echo "$PASSED passed, $FAILED failed"; exit 1; }
fi

# 1. Packages
case_packages() {
    copy_mirror t-packages
    local n=0 f
    # Every distinct file (by inode) that is a Packages index, including by-hash copies.
    while IFS= read -r f; do
        case "$(head -c 6 "$f" | od -An -tx1 | tr -d ' ')" in
            fd377a585a00|1f8b*|28b52ffd*|425a68*) ;;             # xz, gzip, zstd, bzip2
            *) head -n 1 "$f" | grep -q '^Package: ' || continue ;;   # plain Packages only
        esac
        flip_byte "$f"; n=$((n + 1))
    done < <(find "$FX/t-packages" -path '*/binary-*/*' -type f \( -name 'Packages*' -o -path '*/by-hash/*' \) \
             -printf '%i %p\n' | sort -u -k1,1 | cut -d' ' -f2-)
    [ "$n" -gt 0 ] || { nok "packages: found no Packages file to tamper with"; return; }
    log "flipped one byte in $n Packages files"
    run_offline t-packages
    if [ "$RUN_RC" -ne 0 ] && grep -q '^failed apt-get update .*Hash Sum mismatch' "$FX/t-packages.out"; then
        ok "packages: apt-get update fails with Hash Sum mismatch"
    else
        nok "packages: expected apt-get update to fail with Hash Sum mismatch (runner exit $RUN_RC)"
    fi
}
# 2. .deb
case_deb() {
    copy_mirror t-deb
    local deb; deb=$(find "$FX/t-deb" -path '*/pool/*' -name 'libgreet_1.2-1_amd64.deb' -type f | head -n 1)
    [ -n "$deb" ] || { nok "deb: libgreet_1.2-1_amd64.deb is not in the mirror"; return; }
    flip_byte "$deb"
    run_offline t-deb
    if [ "$RUN_RC" -ne 0 ] && grep -q '^ok apt-get update' "$FX/t-deb.out" \
       && grep -q '^failed hello-app: .*Hash Sum mismatch' "$FX/t-deb.out" \
       && ! grep -q '^installed hello-app' "$FX/t-deb.out"; then
        ok "deb: update clean, installing hello-app fails with Hash Sum mismatch"
    else
        nok "deb: expected a clean update and hello-app failing with Hash Sum mismatch (runner exit $RUN_RC)"
    fi
}
# 3. Release / InRelease text (signature)
case_release() {
    copy_mirror t-release
    local d=$FX/t-release/fixture/dists/$FIXTURE_SUITE f
    for f in InRelease Release; do
        [ -f "$d/$f" ] || { nok "release: no $f"; return; }
        # Change the first digit of the Date: line (same size; signed text altered).
        sed -i -E '0,/^Date: /s/^(Date: [A-Za-z]+, )([0-9])/\1X/' "$d/$f"
    done
    run_offline t-release
    if [ "$RUN_RC" -ne 0 ] && grep -q '^failed signatures .*gpgv rejects' "$FX/t-release.out" \
       && grep -Eq '^failed apt-get update .*(BADSIG|signatures were invalid|not signed|NO_PUBKEY|[Ss]ignature)' "$FX/t-release.out"; then
        ok "release: gpgv and apt-get update reject the altered Release"
    else
        nok "release: expected gpgv and apt-get update to reject the altered Release (runner exit $RUN_RC)"
    fi
}
phase "tamper: Packages" case_packages
phase "tamper: .deb" case_deb
phase "tamper: Release" case_release
print_phases
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
