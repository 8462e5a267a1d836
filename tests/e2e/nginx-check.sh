#!/usr/bin/env bash
# Checks nginx/mini-mirror.conf by itself: run as a NON-ROOT user (nobody), in a network
# namespace with loopback only, serving a small tree shaped like a mini-mirror output; every
# class of path is fetched with curl and its status and headers are checked.
#   tests/e2e/nginx-check.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ensure_tools

T=$(mktemp -d /var/tmp/mm-nginx.XXXXXX)
chmod 0755 "$T"
NGINX_PID=
cleanup() {
    local rc=$?
    set +e
    stop_pid "$NGINX_PID"
    netns_delete
    [ -n "${KEEP_T:-}" ] || rm -rf --one-file-system "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A tree shaped like an output.
R=$T/srv
D=$R/debian/dists/bookworm
mkdir -p "$D/main/binary-amd64/by-hash/SHA256" "$R/debian/pool/main/h/hello" "$R/debian/.staging"
echo "Origin: test" >"$D/Release"; cp "$D/Release" "$D/InRelease"; echo sig >"$D/Release.gpg"
echo "Package: hello" >"$D/main/binary-amd64/Packages"
gzip -k "$D/main/binary-amd64/Packages"; xz -k "$D/main/binary-amd64/Packages"
cp "$D/main/binary-amd64/Packages.xz" "$D/main/binary-amd64/by-hash/SHA256/0123abcd"
echo deb >"$R/debian/pool/main/h/hello/hello_1.0-1_amd64.deb"
echo key >"$R/debian/mini-mirror-archive-keyring.gpg"
echo secret >"$R/debian/.staging/x"
chmod -R a+rX "$R"

netns_create
W=$T/nginx
mkdir -p "$W"; chown nobody "$W"
conf=$(render_nginx_conf "$R" 127.0.0.1:8080 "$W")
chmod 0644 "$conf"
# Non-root: the whole server runs as nobody (pid file and temp dirs under the work dir).
# nginx reopens /dev/stdout by path, so the file behind it must be writable by nobody.
touch "$T/access.log" "$T/error.log"; chown nobody "$T/access.log" "$T/error.log"
ip netns exec "$E2E_NETNS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
    nginx -c "$conf" -e stderr -g 'daemon off;' >>"$T/access.log" 2>>"$T/error.log" &
NGINX_PID=$!
for _ in $(seq 50); do in_netns curl -fsS -m 1 -o /dev/null http://127.0.0.1:8080/healthz 2>/dev/null && break; sleep 0.1; done

PASSED=0 FAILED=0
# expect PATH STATUS [HEADER-REGEX]...
expect() {
    local path=$1 status=$2; shift 2
    local h; h=$(in_netns curl -sS -m 5 -o /dev/null -D - "http://127.0.0.1:8080$path" | tr -d '\r')
    local why=() re
    grep -q "^HTTP/1.1 $status" <<<"$h" || why+=("status $(head -n 1 <<<"$h")")
    for re in "$@"; do grep -qiE "^$re" <<<"$h" || why+=("no header /$re/"); done
    if [ ${#why[@]} -eq 0 ]; then PASSED=$((PASSED + 1)); echo "ok GET $path"
    else FAILED=$((FAILED + 1)); echo "failed GET $path: ${why[*]}"; fi
}
NC='cache-control: no-cache'
LONG='cache-control: public, max-age=31536000, immutable'
expect /healthz 200 'content-type: text/plain' 'cache-control: no-store'
expect /debian/dists/bookworm/InRelease 200 "$NC"
expect /debian/dists/bookworm/Release 200 "$NC"
expect /debian/dists/bookworm/Release.gpg 200 "$NC"
expect /debian/dists/bookworm/main/binary-amd64/Packages 200 "$NC" 'content-type: text/plain'
expect /debian/dists/bookworm/main/binary-amd64/Packages.gz 200 "$NC" 'content-type: application/gzip'
expect /debian/dists/bookworm/main/binary-amd64/Packages.xz 200 "$NC" 'content-type: application/x-xz'
expect /debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/0123abcd 200 "$LONG"
expect /debian/pool/main/h/hello/hello_1.0-1_amd64.deb 200 "$LONG" 'content-type: application/vnd.debian.binary-package'
expect /debian/mini-mirror-archive-keyring.gpg 200 "$NC"
expect /debian/ 200 'content-type: text/html'
expect /debian/.staging/x 404
expect /nonexistent 404
if in_netns curl -fsS -m 5 http://127.0.0.1:8080/debian/ | grep -q 'dists/'; then
    PASSED=$((PASSED + 1)); echo "ok autoindex lists dists/"
else FAILED=$((FAILED + 1)); echo "failed autoindex"; fi
# Really non-root, and logging to stdout.
if [ "$(ps -o user= -p "$NGINX_PID" | tr -d ' ')" = nobody ] && grep -q 'GET /debian/ ' "$T/access.log"; then
    PASSED=$((PASSED + 1)); echo "ok runs as nobody, access log on stdout"
else FAILED=$((FAILED + 1)); echo "failed non-root run / access log: $(ps -o user= -p "$NGINX_PID")"; fi
if [ -s "$T/error.log" ]; then echo "nginx stderr:"; sed 's/^/  /' "$T/error.log"; fi
echo "nginx: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
