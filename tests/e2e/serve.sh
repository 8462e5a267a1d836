#!/usr/bin/env bash
# `mini-mirror serve` as the only server of a loopback-only network namespace: a trixie client
# (apt 3) and a bookworm client (apt 2.6) run `apt-get update --error-on=any` and install from
# it; SIGTERM stops it within a second. (Header rules, ranges and refusals: tests/serve.rs.)
#   tests/e2e/serve.sh
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

BIN=${MINI_MIRROR_BIN:-$REPO_ROOT/target/release/mini-mirror}
[ -x "$BIN" ] || (cd "$REPO_ROOT" && cargo build --release --locked >&2)
W=$(mktemp -d /var/tmp/mm-serve.XXXXXX)
chmod 0755 "$W"   # nginx (nobody) serves the upstream from here
SERVE_PID=
cleanup() {
    stop_pid "${NGINX_PID_upstream:-}"
    stop_pid "$SERVE_PID"
    netns_delete
    rm -rf --one-file-system "$W"
}
trap cleanup EXIT

upstream_key "$W" up@example.invalid
local_upstream "$W" up@example.invalid 1.0
UP_PORT=$(free_port)
PORT=$(free_port)
start_nginx upstream "$W/repo" "127.0.0.1:$UP_PORT" "$W/nginx-up"
mkdir -p "$W/sources/p/s"
echo "http://127.0.0.1:$UP_PORT $W/upstream.gpg stable main" >"$W/sources/p/s/source.txt"
echo probe >"$W/sources/p/s/packages.txt"
"$BIN" build --sources "$W/sources" --output "$W/out" --cache "$W/cache" --state-dir "$W/state" -q >"$W/build.log" 2>&1 \
    && ok "build" || no "build: $(tail -n 3 "$W/build.log")"
stop_pid "$NGINX_PID_upstream"; NGINX_PID_upstream=

netns_create
ip netns exec "$E2E_NETNS" "$BIN" serve --output "$W/out" --listen "127.0.0.1:$PORT" >"$W/access.log" 2>"$W/serve.err" &
SERVE_PID=$!
for _ in $(seq 100); do in_netns curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break; sleep 0.1; done
in_netns curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$PORT/healthz" && ok "serve answers /healthz in the namespace" \
    || no "serve did not start: $(cat "$W/serve.err")"
for rel in trixie bookworm; do
    root=$W/client-$rel
    unpack_client "$rel" "$root" || { no "client $rel: no cached root"; continue; }
    mkdir -p "$root/srv"
    cp "$W/out/p/mini-mirror-archive-keyring.gpg" "$root/srv/mirror.gpg"
    rm -f "$root"/etc/apt/sources.list.d/*
    echo "deb [signed-by=/srv/mirror.gpg] http://127.0.0.1:$PORT/p stable main" >"$root/etc/apt/sources.list"
    if in_client "$root" apt-get update --error-on=any >"$W/$rel-update.log" 2>&1 \
       && in_client "$root" apt-get install -y probe >"$W/$rel-install.log" 2>&1 \
       && [ "$(in_client "$root" dpkg-query -W -f='${Version}' probe 2>/dev/null)" = 1.0 ]; then
        ok "$rel: apt-get update --error-on=any and install from mini-mirror serve alone"
    else
        no "$rel: $(grep -hE '^(W|E):' "$W/$rel-update.log" "$W/$rel-install.log" 2>/dev/null | head -n 2 | tr '\n' ' ')"
    fi
done
grep -q '"GET /p/dists/stable/InRelease" 200' "$W/access.log" && ok "access log: a line per request" \
    || no "access log: $(head -n 2 "$W/access.log")"
t0=$(now_ns)
kill -TERM "$SERVE_PID"
for _ in $(seq 20); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$SERVE_PID" 2>/dev/null; then no "serve still runs 1 s after SIGTERM"
else
    wait "$SERVE_PID"; rc=$?
    [ "$rc" = 0 ] && ok "SIGTERM: serve stopped cleanly in $(( ($(now_ns) - t0) / 1000000 )) ms" || no "serve exited $rc on SIGTERM"
fi
SERVE_PID=
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
