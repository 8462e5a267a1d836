#!/usr/bin/env bash
# `apt --snapshot` against the mirror alone: two publishes of a local upstream (probe 1.0,
# then 2.0) with --base-url, served by nginx inside a loopback-only network namespace. A
# trixie client (apt 3) runs `apt-get update --snapshot <first ID>` and installs probe 1.0
# from the mirror's own snapshot; a bookworm client (apt 2.6, no --snapshot) keeps working
# unchanged and installs 2.0. Uses the cached client roots of the live suite.
#   tests/e2e/snapshot.sh
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

BIN=${MINI_MIRROR_BIN:-$REPO_ROOT/target/release/mini-mirror}
[ -x "$BIN" ] || (cd "$REPO_ROOT" && cargo build --release --locked >&2)
W=$(mktemp -d /var/tmp/mm-snapshot.XXXXXX)
chmod 0755 "$W"   # nginx (nobody) serves the upstream and the output from here
cleanup() {
    stop_pid "${NGINX_PID_upstream:-}"
    stop_pid "${NGINX_PID_mirror:-}"
    netns_delete
    rm -rf --one-file-system "$W"
}
trap cleanup EXIT

upstream_key "$W" up@example.invalid

UP_PORT=$(free_port)
MIRROR_PORT=$(free_port)
local_upstream "$W" up@example.invalid 1.0
start_nginx upstream "$W/repo" "127.0.0.1:$UP_PORT" "$W/nginx-up"
mkdir -p "$W/sources/p/s"
echo "http://127.0.0.1:$UP_PORT $W/upstream.gpg stable main" >"$W/sources/p/s/source.txt"
echo probe >"$W/sources/p/s/packages.txt"
build() {
    "$BIN" build --sources "$W/sources" --output "$W/out" --cache "$W/cache" --state-dir "$W/state" \
        --base-url "http://127.0.0.1:$MIRROR_PORT" -q >"$W/build.log" 2>&1
}
build && ok "build 1 (probe 1.0)" || no "build 1: $(tail -n 3 "$W/build.log")"
FIRST=$(ls "$W/out/p/snapshots" | head -n 1)
sleep 1.1
local_upstream "$W" up@example.invalid 2.0   # the upstream now serves 2.0 only
build && ok "build 2 (probe 2.0)" || no "build 2: $(tail -n 3 "$W/build.log")"
[ "$(ls "$W/out/p/snapshots" | wc -l)" = 2 ] && ok "two snapshots" || no "snapshots: $(ls "$W/out/p/snapshots")"
grep -q "^Snapshots: http://127.0.0.1:$MIRROR_PORT/p/snapshots/@SNAPSHOTID@/$" "$W/out/p/dists/stable/Release" \
    && ok "Snapshots: field" || no "Snapshots: field: $(grep Snapshots "$W/out/p/dists/stable/Release")"
stop_pid "$NGINX_PID_upstream"; NGINX_PID_upstream=

netns_create
start_nginx mirror "$W/out" "127.0.0.1:$MIRROR_PORT" "$W/nginx-mirror" netns
for rel in trixie bookworm; do
    root=$W/client-$rel
    unpack_client "$rel" "$root" || { no "client $rel: no cached root"; continue; }
    mkdir -p "$root/srv"
    cp "$W/out/p/mini-mirror-archive-keyring.gpg" "$root/srv/mirror.gpg"
    rm -f "$root"/etc/apt/sources.list.d/*
    echo "deb [signed-by=/srv/mirror.gpg] http://127.0.0.1:$MIRROR_PORT/p stable main" >"$root/etc/apt/sources.list"
    if ! in_client "$root" apt-get update --error-on=any >"$W/$rel-update.log" 2>&1; then
        no "$rel: apt-get update: $(grep -E '^(W|E):' "$W/$rel-update.log" | head -n 2 | tr '\n' ' ')"; continue
    fi
    if [ "$rel" = trixie ]; then
        want=1.0
        in_client "$root" apt-get update --error-on=any --snapshot "$FIRST" >"$W/$rel-snap.log" 2>&1 \
            && ok "trixie: apt-get update --snapshot $FIRST" \
            || no "trixie: apt-get update --snapshot: $(grep -E '^(W|E):' "$W/$rel-snap.log" | head -n 2 | tr '\n' ' ')"
        install=(apt-get install -y --snapshot "$FIRST" probe)
    else
        want=2.0
        install=(apt-get install -y probe)
    fi
    in_client "$root" "${install[@]}" >"$W/$rel-install.log" 2>&1 \
        || { no "$rel: ${install[*]}: $(grep -E '^E:' "$W/$rel-install.log" | head -n 2 | tr '\n' ' ')"; continue; }
    got=$(in_client "$root" dpkg-query -W -f='${Version}' probe 2>/dev/null)
    [ "$got" = "$want" ] && ok "$rel installs probe $got from the mirror alone" || no "$rel installed probe '$got', expected $want"
done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
