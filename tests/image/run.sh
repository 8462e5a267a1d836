#!/usr/bin/env bash
# The container image proof: ./build.sh builds the mini-mirror image (podman, then buildah) from a
# hermetic sources tree with a passphrase-protected signing key passed as build secrets and the
# upstream fetched through an authenticating HTTP proxy; then the image is run in a loopback-only
# network namespace and the real apt installs from it, the key and passphrase are looked for in
# every layer and in the history, and the image is pushed to a registry on 127.0.0.1 and read back.
#
#   tests/image/run.sh [--keep] [--compile]
#
#   --keep      keep the work dir (logs, saved image, storage) for inspection
#   --only-oci  only the engine-less part (tests/image/oci.sh): mini-mirror image/pull/export/import
#   --compile   also build once WITHOUT MINI_MIRROR_BINARY, i.e. through the Dockerfile's compile
#               stage, with a local Rust builder image made from this machine's rustup toolchain
#               (slow: a full release build of mini-mirror, and crates from crates.io)
#
# Needs root; installs what is missing on a fresh Debian 12 (podman buildah skopeo runc uidmap
# slirp4netns debootstrap nginx-light python3 ...). Changes nothing system-wide: podman/buildah
# run with a private containers.conf, storage.conf and registries.conf (CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF) and TMPDIR, all under the work dir; the
# registry is Debian's docker-registry binary (extracted from its .deb into the cache, never
# installed as a service), with its own config listening on 127.0.0.1 only.
#
# Caches (MINI_MIRROR_E2E_CACHE, default /var/cache/mini-mirror-e2e): the base image rootfs
# (debootstrap minbase + nginx-light, ca-certificates, curl, libnettle8, libhogweed6, libgmp10),
# the bookworm client rootfs of tests/e2e, the docker-registry binary.
# Environment: MINI_MIRROR_BIN (default target/release/mini-mirror, built if missing),
# MINI_MIRROR_IMAGE_TEST_TIMEOUT (seconds, default 1800; the whole run is bounded by it).
#
# Output: one line per check (`ok ...` / `failed ...`; the apt part comes from
# tests/e2e/offline.sh, prefixed "offline: "), phase timings, then `N passed, M failed`.
# Exit status 0 only when nothing failed.
set -euo pipefail

if [ -z "${MM_IMAGE_TEST_BOUNDED:-}" ]; then
    export MM_IMAGE_TEST_BOUNDED=1
    # timeout signals the whole process group; the EXIT trap below cleans up.
    exec timeout -k 60 "${MINI_MIRROR_IMAGE_TEST_TIMEOUT:-1800}" "$BASH" "$0" "$@"
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../e2e/lib.sh
. "$HERE/../e2e/lib.sh"
# shellcheck source=../e2e/hermetic/fixture.sh
. "$E2E_DIR/hermetic/fixture.sh"
# shellcheck source=oci.sh
. "$HERE/oci.sh"

KEEP=0 COMPILE=0 ONLY_OCI=0
for a in "$@"; do
    case "$a" in
        --keep) KEEP=1 ;;
        --compile) COMPILE=1 ;;
        --only-oci) ONLY_OCI=1 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) die "unknown argument $a (see --help)" ;;
    esac
done

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok $*"; }
fail() { FAILED=$((FAILED + 1)); echo "failed $*"; }

# ---- work dir, private container configuration, cleanup ---------------------------------------
WORK=$(mktemp -d /var/tmp/mm-image.XXXXXX)
chmod 0755 "$WORK"      # nginx workers (nobody) serve the fixture from below it
mkdir -p "$WORK/logs" "$WORK/tmp" "$WORK/containers"
export TMPDIR=$WORK/tmp
export CONTAINERS_CONF=$WORK/containers/containers.conf
export CONTAINERS_STORAGE_CONF=$WORK/containers/storage.conf
export CONTAINERS_REGISTRIES_CONF=$WORK/containers/registries.conf
export BUILDAH_ISOLATION=chroot
export REGISTRY_AUTH_FILE=$WORK/containers/auth.json
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
netns = "host"
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
EOF
echo '{}' >"$REGISTRY_AUTH_FILE"

CONTAINER=mm-image-e2e-$$
OCI_PIDS=() NGINX_PID_upstream='' REGISTRY_PID='' PROXY_PID='' WATCH_PID=''
cleanup() {
    local rc=$?
    set +e
    trap '' INT TERM
    [ -z "$WATCH_PID" ] || kill "$WATCH_PID" 2>/dev/null
    if command -v podman >/dev/null 2>&1 && [ -d "$WORK/storage" ]; then
        local c
        for c in "$CONTAINER" "$CONTAINER-compile" "$CONTAINER-oci"; do
            podman container exists "$c" 2>/dev/null && podman rm -f -t 2 "$c" >/dev/null 2>&1
        done
        # The private storage holds nothing but this run's containers.
        [ "$(podman info --format '{{.Store.GraphRoot}}' 2>/dev/null)" != "$WORK/storage" ] \
            || podman rm -a -f -t 2 >/dev/null 2>&1
        buildah rm --all >/dev/null 2>&1
        local left; left=$(pgrep -f -- "$WORK/storage/overlay-containers" || true)
        [ -z "$left" ] || log "WARNING: processes of this run's containers are still running: $left"
    fi
    stop_pid "$REGISTRY_PID"
    local p; for p in "${OCI_PIDS[@]}"; do stop_pid "$p"; done
    stop_pid "$PROXY_PID"
    stop_pid "$NGINX_PID_upstream"
    netns_delete
    # Storage mounts (overlay keeps its own directory bind-mounted).
    findmnt -rn -o TARGET | grep "^$WORK/" | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
    remove_workdir "$WORK" "$KEEP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'fail "terminated (time limit ${MINI_MIRROR_IMAGE_TEST_TIMEOUT:-1800}s?)"; echo "$PASSED passed, $FAILED failed"; exit 143' TERM

# ---- tools -----------------------------------------------------------------------------------------
image_tools() {
    ensure_tools
    local missing=() pair cmd pkg
    for pair in podman:podman buildah:buildah skopeo:skopeo runc:runc newuidmap:uidmap \
                slirp4netns:slirp4netns python3:python3 gpg-agent:gpg-agent; do
        cmd=${pair%%:*}; pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] || { log "installing ${missing[*]}"; host_apt_install "${missing[@]}"; }
}

# docker-registry: the binary from Debian's package, extracted into the cache (the package itself
# would install and start a service listening on all interfaces).
REGISTRY_BIN=$E2E_CACHE/docker-registry/usr/bin/docker-registry
registry_binary() {
    [ -x "$REGISTRY_BIN" ] && return 0
    mkdir -p "$E2E_CACHE"
    local d; d=$(mktemp -d "$WORK/tmp/registry-deb.XXXXXX")
    chmod 0755 "$d"
    [ -n "$E2E_APT_UPDATED" ] || { apt-get -o DPkg::Lock::Timeout=300 update -qq >&2; E2E_APT_UPDATED=1; }
    (cd "$d" && apt-get -o APT::Sandbox::User=root download docker-registry >&2) || die "apt-get download docker-registry failed"
    rm -rf "$E2E_CACHE/docker-registry.tmp"
    dpkg-deb -x "$d"/docker-registry_*.deb "$E2E_CACHE/docker-registry.tmp"
    rm -rf "$E2E_CACHE/docker-registry"
    mv "$E2E_CACHE/docker-registry.tmp" "$E2E_CACHE/docker-registry"
    [ -x "$REGISTRY_BIN" ] || die "no $REGISTRY_BIN in the docker-registry package"
}

# ---- base images from Debian packages (no registry can be pulled from) --------------------------
BASE_TARBALL=$E2E_CACHE/image-base-bookworm-$E2E_ARCH.tar.zst
BASE_PACKAGES=nginx-light,ca-certificates,curl,libnettle8,libhogweed6,libgmp10
NGINX_BASE=localhost/mm-e2e-nginx:bookworm
BUILD_BASE=localhost/mm-e2e-debian:bookworm
base_tarball() {
    mkdir -p "$E2E_CACHE"
    (
        flock 9
        [ -s "$BASE_TARBALL" ] && exit 0
        local root; root=$(mktemp -d /var/tmp/mm-image-base.XXXXXX)
        log "debootstrap --variant=minbase --include=$BASE_PACKAGES bookworm (once; cached in $BASE_TARBALL)"
        if ! timeout 1200 debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$root" \
                "$(debian_archive_url)" >"$WORK/logs/debootstrap-base.log" 2>&1; then
            tail -n 30 "$WORK/logs/debootstrap-base.log" >&2; rm -rf "$root"; die "debootstrap of the base image failed"
        fi
        chroot "$root" apt-get clean
        rm -rf "$root"/var/lib/apt/lists/*
        tar -C "$root" --numeric-owner --xattrs -cf - . | zstd -q -T0 -3 -o "$BASE_TARBALL.tmp"
        mv "$BASE_TARBALL.tmp" "$BASE_TARBALL"
        rm -rf "$root"
    ) 9>"$BASE_TARBALL.lock" >&2 || die "could not make the base image rootfs"
}
base_images() {
    base_tarball
    zstd -q -dc "$BASE_TARBALL" | podman import --quiet \
        --change 'CMD ["nginx", "-g", "daemon off;"]' - "$NGINX_BASE" >/dev/null
    podman tag "$NGINX_BASE" "$BUILD_BASE"
}

# ---- the operator's signing key (passphrase-protected), made with GnuPG --------------------------
KEYDIR=$WORK/keys
PASSPHRASE="mm-image-pass-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
PROXY_USER=mmproxy PROXY_PASS="mm-proxy-pass-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
make_key() {
    mkdir -p "$KEYDIR/gnupg" "$KEYDIR/needles"
    chmod 0700 "$KEYDIR" "$KEYDIR/gnupg"
    (umask 077 && printf '%s' "$PASSPHRASE" >"$KEYDIR/passphrase")
    local g=(gpg --homedir "$KEYDIR/gnupg" --batch --quiet --pinentry-mode loopback --passphrase-file "$KEYDIR/passphrase")
    "${g[@]}" --quick-gen-key "mini-mirror image test <image-test@example.invalid>" ed25519 sign never 2>/dev/null
    "${g[@]}" --armor --export-secret-keys >"$KEYDIR/release.key"        # what operators pass
    "${g[@]}" --export-secret-keys >"$KEYDIR/secret.bin"
    "${g[@]}" --export >"$KEYDIR/public.gpg"
    "${g[@]}" --armor --export >"$KEYDIR/public.asc"
    KEY_FPR=$("${g[@]}" --with-colons --list-keys | awk -F: '$1 == "fpr" {print $10; exit}')
    gpgconf --homedir "$KEYDIR/gnupg" --kill all 2>/dev/null || true
    [ -n "$KEY_FPR" ] || die "no fingerprint for the test key"
    # What must appear nowhere in the image: the passphrase, the proxy password, the fingerprint
    # as text, the armor of the secret key (its lines that are not in the public export), and a
    # secret-only window of the binary export (scan_secrets.py --binary-secret).
    local n=$KEYDIR/needles
    printf '%s' "$PASSPHRASE" >"$n/passphrase"
    printf '%s' "$PROXY_PASS" >"$n/proxy-password"
    printf '%s' "$KEY_FPR" >"$n/fingerprint-upper"
    printf '%s' "${KEY_FPR,,}" >"$n/fingerprint-lower"
    head -n 3 "$KEYDIR/release.key" >"$n/armor-head"     # BEGIN PGP PRIVATE KEY BLOCK + first line
    local i=0 line
    while read -r line; do
        i=$((i + 1)); printf '%s' "$line" >"$n/secret-armor-line-$i"
    done < <(grep -vxF -f "$KEYDIR/public.asc" "$KEYDIR/release.key" | grep -E '^[A-Za-z0-9+/=]{40,}$' | head -n 3)
    [ "$i" -ge 1 ] || die "no secret-only armor line"
    log "test key $KEY_FPR (passphrase-protected)"
}

# ---- upstream fixture, proxy, registry ---------------------------------------------------------------
FX=$WORK/fx
upstream() {
    mkdir -p "$FX"; chmod 0755 "$FX"
    fixture_make "$FX"
    fixture_serve "$FX"
    fixture_sources "$FX"
    log "fixture upstream at $FIXTURE_URL"
}
start_proxy() {
    python3 "$HERE/proxy.py" "$WORK/proxy.port" "$WORK/logs/proxy.log" "$PROXY_USER:$PROXY_PASS" \
        2>"$WORK/logs/proxy.err" &
    PROXY_PID=$!
    for _ in $(seq 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.1; done
    [ -s "$WORK/proxy.port" ] || die "the test proxy did not start: $(cat "$WORK/logs/proxy.err")"
    PROXY_URL="http://$PROXY_USER:$PROXY_PASS@127.0.0.1:$(cat "$WORK/proxy.port")"
}
start_registry() {
    registry_binary
    REGISTRY_PORT=$(free_port)
    mkdir -p "$WORK/registry/data"
    cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry/data
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
    cat >"$CONTAINERS_REGISTRIES_CONF" <<EOF
unqualified-search-registries = []
[[registry]]
location = "127.0.0.1:$REGISTRY_PORT"
insecure = true
EOF
    # (REGISTRY_* variables would override its configuration.)
    env -u REGISTRY_AUTH_FILE "$REGISTRY_BIN" serve "$WORK/registry/config.yml" >"$WORK/logs/registry.log" 2>&1 &
    REGISTRY_PID=$!
    for _ in $(seq 100); do
        curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/" 2>/dev/null && return 0
        kill -0 "$REGISTRY_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK/logs/registry.log" >&2
    die "the registry did not start on 127.0.0.1:$REGISTRY_PORT"
}

# ---- build.sh ----------------------------------------------------------------------------------------
BUILD_SH=$REPO_ROOT/build.sh
VERSION_TAG=e2e$$
find_binary() {
    BIN=${MINI_MIRROR_BIN:-$REPO_ROOT/target/release/mini-mirror}
    if [ ! -x "$BIN" ]; then
        command -v cargo >/dev/null || die "no $BIN and no cargo to build it"
        (cd "$REPO_ROOT" && cargo build --release --locked >&2)
    fi
    [ -x "$BIN" ] || die "not executable: $BIN"
}
# start_build LOGNAME VAR=VALUE...: build.sh in the background with the common environment plus
# the given variables, exported by the shell (builtins), so that the passphrase is only ever in
# build.sh's environment and in no argv (`env VAR=value` would show it); sets BUILD_PID.
start_build() {
    local name=$1; shift
    (
        export IMAGE=mini-mirror-e2e VERSION="$VERSION_TAG" DISTRO=bookworm \
            BASE_IMAGE_NGINX="$NGINX_BASE" BUILD_BASE_IMAGE="$BUILD_BASE" \
            MIRROR_SOURCE_DIR="$FX/sources" BUILD_NETWORK=host
        local kv
        for kv in "$@"; do export "${kv?}"; done
        exec "$BUILD_SH" >"$WORK/logs/$name.out" 2>"$WORK/logs/$name.err"
    ) &
    BUILD_PID=$!
}
# run_build LOGNAME VAR=VALUE...: start_build and wait; sets BUILD_RC, BUILD_OUT.
run_build() {
    start_build "$@"
    BUILD_RC=0
    wait "$BUILD_PID" || BUILD_RC=$?
    BUILD_OUT=$(tail -n 1 "$WORK/logs/$1.out")
}

cli_checks() {
    local out rc
    out=$("$BUILD_SH" --help 2>&1) && grep -q RELEASE_SIGN_KEY_PASSPHRASE <<<"$out" && grep -q CONTAINER_TOOL <<<"$out" \
        && pass "build.sh --help" || fail "build.sh --help"
    # expect_error DESCRIPTION PATTERN VAR=VALUE...: build.sh must fail, naming the problem.
    expect_error() {
        local d=$1 pat=$2; shift 2
        rc=0; out=$(env "$@" "$BUILD_SH" 2>&1 >/dev/null) || rc=$?
        if [ "$rc" -ne 0 ] && grep -q -- "$pat" <<<"$out"; then pass "build.sh refuses $d: $(grep -- "$pat" <<<"$out" | head -n 1)"
        else fail "build.sh $d: exit $rc, output: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"; fi
    }
    expect_error "a missing sources dir" "MIRROR_SOURCE_DIR: no such directory" \
        CONTAINER_TOOL=podman MIRROR_SOURCE_DIR="$WORK/no-such-sources"
    expect_error "a missing key" "RELEASE_SIGN_KEY_PATH: no such file" \
        CONTAINER_TOOL=podman MIRROR_SOURCE_DIR="$FX/sources" RELEASE_SIGN_KEY_PATH="$WORK/no-such.key"
    # Unreadable for the user running build.sh (root reads anything: run it as nobody).
    install -m 0600 "$KEYDIR/release.key" "$WORK/unreadable.key"
    rc=0; out=$(setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent CONTAINER_TOOL=podman \
        MIRROR_SOURCE_DIR="$FX/sources" RELEASE_SIGN_KEY_PATH="$WORK/unreadable.key" "$BUILD_SH" 2>&1 >/dev/null) || rc=$?
    if [ "$rc" -ne 0 ] && grep -q "RELEASE_SIGN_KEY_PATH: cannot read" <<<"$out"; then
        pass "build.sh refuses an unreadable key: $(grep "cannot read" <<<"$out" | head -n 1)"
    else fail "build.sh unreadable key: exit $rc, output: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"; fi
    expect_error "an unknown CONTAINER_TOOL" "CONTAINER_TOOL must be" CONTAINER_TOOL=nerdctl
    # No container tool at all: a PATH with everything of this machine but docker/podman/buildah.
    local nb=$WORK/bin-without-tools f
    mkdir -p "$nb"
    for f in /usr/sbin/* /usr/bin/*; do
        case "${f##*/}" in docker|podman|buildah|podman-remote) continue ;; esac
        [ -e "$nb/${f##*/}" ] || ln -s "$f" "$nb/${f##*/}"
    done
    # build.sh then takes the engine-less path (mini-mirror image); here it stops at the missing
    # base layout, having said which path it took (the full path is tested in oci.sh).
    rc=0; out=$(env -u CONTAINER_TOOL PATH="$nb" MINI_MIRROR_BINARY="$BIN" MIRROR_SOURCE_DIR="$FX/sources" \
        BASE_IMAGE_NGINX="oci:$WORK/no-such-layout" "$BUILD_SH" 2>&1 >/dev/null) || rc=$?
    if [ "$rc" -ne 0 ] && grep -q "no container engine found.*CONTAINER_TOOL=none" <<<"$out" \
       && grep -q "not an OCI image layout" <<<"$out"; then
        pass "build.sh without any container tool falls back to 'mini-mirror image' (CONTAINER_TOOL=none), and names a missing base: $(grep -o '[^ ]*no-such-layout: not an OCI image layout' <<<"$out" | head -n 1)"
    else fail "build.sh with no container tool: exit $rc, output: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"; fi
    docker_shim_check
}

# No Docker engine here: a stand-in `docker` (buildx version / info succeed, `buildx build` and
# `push` record their arguments) shows what build.sh asks of docker buildx, auto-detected.
docker_shim_check() {
    local sb=$WORK/docker-shim why=()
    mkdir -p "$sb/bin"
    cat >"$sb/bin/docker" <<'EOF'
#!/bin/sh
log=${DOCKER_SHIM_LOG:?}
case "$1 ${2:-}" in
    "buildx version") echo "github.com/docker/buildx v0.0.0-shim"; exit 0 ;;
    "info "*) exit 0 ;;
    "buildx build")
        shift 2
        printf '%s\n' "$@" >"$log.argv"
        for a in "$@"; do
            case "$a" in id=signkey_passphrase,src=*)
                f=${a#*src=}; stat -c '%a' "$f" >"$log.mode"; cat "$f" >"$log.pass" ;;
            esac
        done
        exit 0 ;;
    "push "*) echo "$2" >"$log.push"; exit 0 ;;
esac
exit 1
EOF
    chmod 0755 "$sb/bin/docker"
    (
        export PATH="$sb/bin:$PATH" DOCKER_SHIM_LOG="$sb/log" PUSH=1 REGISTRY_URI=registry.example.invalid/team \
            MIRROR_SOURCE_DIR="$FX/sources" RELEASE_SIGN_KEY_PATH="$KEYDIR/release.key" \
            RELEASE_SIGN_KEY_PASSPHRASE="$PASSPHRASE" HTTPS_PROXY="$PROXY_URL" no_proxy=example.invalid
        unset CONTAINER_TOOL
        exec "$BUILD_SH" >"$sb/out" 2>"$sb/err"
    ) || why+=("exit $?: $(tail -n 2 "$sb/err" | tr '\n' ' ')")
    local a=$sb/log.argv v
    if [ -s "$a" ]; then
        grep -qx -- --load "$a" || why+=("no --load")
        grep -qx -- "id=signkey,src=$KEYDIR/release.key" "$a" || why+=("no signkey secret")
        grep -q -- "^id=signkey_passphrase,src=" "$a" || why+=("no passphrase secret")
        grep -q -- "^id=extra_ca,src=" "$a" || why+=("no extra_ca secret")
        for v in HTTPS_PROXY https_proxy NO_PROXY no_proxy; do grep -qx "$v" "$a" || why+=("no --build-arg $v (by name)"); done
        ! grep -qF -f "$KEYDIR/needles/passphrase" "$a" || why+=("passphrase in docker's argv")
        ! grep -qF -f "$KEYDIR/needles/proxy-password" "$a" || why+=("proxy password in docker's argv")
        grep -qx 'BINARY_FROM=compile' "$a" || why+=("the default must compile (BINARY_FROM=compile)")
        [ "$(cat "$sb/log.mode" 2>/dev/null)" = 600 ] || why+=("passphrase file mode $(cat "$sb/log.mode" 2>/dev/null)")
        cmp -s "$sb/log.pass" "$KEYDIR/needles/passphrase" || why+=("passphrase file content differs")
    else
        why+=("docker buildx build was not called")
    fi
    local want=registry.example.invalid/team/mini-mirror:latest-bookworm
    [ "$(cat "$sb/log.push" 2>/dev/null)" = "$want" ] || why+=("pushed '$(cat "$sb/log.push" 2>/dev/null)'")
    [ "$(tail -n 1 "$sb/out" 2>/dev/null)" = "$want" ] || why+=("printed '$(tail -n 1 "$sb/out" 2>/dev/null)'")
    ! compgen -G "$WORK/tmp/mini-mirror-build.*" >/dev/null || why+=("build.sh left its temp dir behind")
    rm -f "$sb/log.pass"
    if [ ${#why[@]} -eq 0 ]; then
        pass "build.sh picks docker buildx when it works: buildx build --load, key and passphrase (0600 temp file) as --secret, proxies by name, compile stage by default, push of $want"
    else fail "build.sh with docker (stand-in): $(IFS='; '; echo "${why[*]}")"; fi
}

# Watches every process while build.sh runs: the passphrase (and the proxy password) must be in
# no argv, and the passphrase in no environment but build.sh's own (it takes it from there and
# unsets it before starting anything; its forked subshells share its initial environment block).
# The patterns are read from files: this watcher's own argv holds no secret.
argv_watch() {
    local bpid=$1 hits=$WORK/logs/argv-hits p bcmd cmd
    : >"$hits"
    bcmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$bpid/cmdline" || true)
    while kill -0 "$bpid" 2>/dev/null; do
        for p in /proc/[0-9]*; do
            [ "${p#/proc/}" = "$bpid" ] || [ "${p#/proc/}" = "$PROXY_PID" ] && continue
            cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
            if grep -qaF -f "$KEYDIR/needles/passphrase" "$p/cmdline" 2>/dev/null; then
                echo "passphrase in the argv of ${p#/proc/}: ${cmd:0:200}" >>"$hits"
            fi
            if grep -qaF -f "$KEYDIR/needles/proxy-password" "$p/cmdline" 2>/dev/null; then
                echo "proxy password in the argv of ${p#/proc/}: ${cmd:0:200}" >>"$hits"
            fi
            if [ "$cmd" != "$bcmd" ] && grep -qaF -f "$KEYDIR/needles/passphrase" "$p/environ" 2>/dev/null; then
                echo "passphrase in the environment of ${p#/proc/}: ${cmd:0:200}" >>"$hits"
            fi
        done
        sleep 0.05
    done
}

IMAGE_TAG=''
main_build() {
    local want="127.0.0.1:$REGISTRY_PORT/mini-mirror-e2e:$VERSION_TAG-bookworm-podman"
    local rc=0
    start_build build-podman EXTRA_TAG_INFO=-podman \
        REGISTRY_URI="127.0.0.1:$REGISTRY_PORT" PUSH=1 CONTAINER_TOOL=podman MINI_MIRROR_BINARY="$BIN" \
        RELEASE_SIGN_KEY_PATH="$KEYDIR/release.key" RELEASE_SIGN_KEY_PASSPHRASE="$PASSPHRASE" \
        HTTP_PROXY="$PROXY_URL" http_proxy="$PROXY_URL" NO_PROXY=example.invalid
    local bpid=$BUILD_PID
    sleep 0.05   # until the subshell has exec'd build.sh
    argv_watch "$bpid" &
    WATCH_PID=$!
    wait "$bpid" || rc=$?
    wait "$WATCH_PID" 2>/dev/null || true
    WATCH_PID=''
    if [ "$rc" -ne 0 ]; then
        tail -n 30 "$WORK/logs/build-podman.err" >&2
        fail "build.sh (podman, PUSH=1) exited $rc (log above)"
        return 1
    fi
    IMAGE_TAG=$(tail -n 1 "$WORK/logs/build-podman.out")
    [ "$IMAGE_TAG" = "$want" ] && pass "build.sh (podman, host-built binary, key + passphrase as secrets, proxy, PUSH=1) printed $IMAGE_TAG" \
        || fail "build.sh printed '$IMAGE_TAG', expected '$want'"
    if [ -s "$WORK/logs/argv-hits" ]; then
        fail "the passphrase was visible in another process: $(sort -u "$WORK/logs/argv-hits" | head -n 3 | tr '\n' '|')"
    else
        pass "during the build the passphrase and the proxy password were in no process's argv, the passphrase in no environment but build.sh's"
    fi
    # (STEP lines echo the Dockerfile, which contains the warning's text.)
    if grep -v 'STEP' "$WORK/logs/build-podman.err" | grep -q 'WARNING: no signing key\|throwaway'; then
        fail "the build used a throwaway key instead of the given one"
    fi
    ! grep -qF -- "$PASSPHRASE" "$WORK/logs/build-podman.err" "$WORK/logs/build-podman.out" \
        && pass "the passphrase is not in build.sh's output" || fail "the passphrase is in build.sh's output"
    # The upstream was fetched through the proxy given in HTTP_PROXY, with its credentials.
    local n; n=$(grep -c "^[23][0-9][0-9] GET ${FIXTURE_URL}/dists/.* auth=ok" "$WORK/logs/proxy.log" 2>/dev/null || true)
    if [ "${n:-0}" -ge 2 ]; then pass "proxy: the mirror stage fetched the upstream through HTTP_PROXY with its credentials ($n index requests)"
    else fail "proxy: the upstream was not fetched through HTTP_PROXY ($(head -n 3 "$WORK/logs/proxy.log" 2>/dev/null | tr '\n' ' '))"; fi
}

# ---- the image's metadata ------------------------------------------------------------------------------
inspect_checks() {
    podman image inspect "$IMAGE_TAG" >"$WORK/logs/inspect.json"
    podman history --no-trunc --format '{{.CreatedBy}} {{.Comment}}' "$IMAGE_TAG" >"$WORK/logs/history.txt"
    local why
    why=$(python3 - "$WORK/logs/inspect.json" "$VERSION_TAG" <<'EOF'
import json, re, sys
img = json.load(open(sys.argv[1]))[0]
cfg = img.get("Config", {})
labels = cfg.get("Labels") or img.get("Labels") or {}
why = []
def want(cond, msg):
    if not cond: why.append(msg)
want(labels.get("org.opencontainers.image.version") == sys.argv[2], "version label")
want(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels.get("org.opencontainers.image.created", "")), "created label")
want("org.opencontainers.image.source" in labels, "source label")
want(re.fullmatch(r"[0-9a-f]{40}(-dirty)?", labels.get("org.opencontainers.image.revision", "")), "revision label")
want(labels.get("io.mini-mirror.prefixes") == "fixture", "prefixes label: %r" % labels.get("io.mini-mirror.prefixes"))
src = labels.get("io.mini-mirror.sources", "")
want("fixture/greet:" in src and "greet-stable main contrib" in src and "fixture/greet-updates:" in src, "sources label: %r" % src)
want(cfg.get("User") == "101:101", "User %r" % cfg.get("User"))
want("8080/tcp" in (cfg.get("ExposedPorts") or {}), "ExposedPorts")
hc = img.get("Healthcheck") or img.get("HealthCheck") or cfg.get("Healthcheck") or {}
want("/healthz" in " ".join(hc.get("Test") or []), "HEALTHCHECK %r" % hc)
env = " ".join(cfg.get("Env") or [])
want("PROXY" not in env.upper() and "PASSPHRASE" not in env.upper() and "SIGN_KEY" not in env.upper(), "Env holds %r" % env)
print("; ".join(why))
EOF
)
    if [ -z "$why" ]; then pass "image config: OCI labels (version, created, revision, source, mirrored prefixes and sources), USER 101:101, EXPOSE 8080, HEALTHCHECK /healthz, no proxy/key in Env"
    else fail "image config: $why"; fi
}

secret_checks() {
    local scan=("$HERE/scan_secrets.py" "$KEYDIR/needles" --binary-secret "$KEYDIR/secret.bin" --binary-public "$KEYDIR/public.gpg")
    # History and inspect output.
    if "${scan[@]}" "$WORK/logs/inspect.json" "$WORK/logs/history.txt" >"$WORK/logs/scan-meta.log"; then
        pass "no key, passphrase or proxy password in podman inspect / podman history"
    else fail "secrets in inspect/history: $(grep FOUND "$WORK/logs/scan-meta.log" | head -n 3 | tr '\n' ' ')"; fi
    # Control: the scanner does find the key in a gzip'd tarball and the passphrase in its file.
    mkdir -p "$WORK/control"
    tar -C "$KEYDIR" -czf "$WORK/control/leaky-layer.tar.gz" release.key
    local ctl; ctl=$("${scan[@]}" "$WORK/control/leaky-layer.tar.gz" "$KEYDIR/passphrase" | grep -c FOUND || true)
    rm -rf "$WORK/control"
    if [ "$ctl" -ge 4 ]; then pass "control: the scanner finds the armored key in a gzip'd layer, and the passphrase ($ctl hits)"
    else fail "control: the scanner found only $ctl needles in a leaky layer"; fi
    # Every layer of the image, exported.
    podman save --format docker-dir --uncompressed -o "$WORK/saved" "$IMAGE_TAG" >/dev/null
    local nl; nl=$(find "$WORK/saved" -type f | wc -l)
    if "${scan[@]}" "$WORK/saved" >"$WORK/logs/scan-layers.log"; then
        pass "no key material, fingerprint, passphrase or proxy password in any of the $nl blobs of the saved image ($(tail -n 1 "$WORK/logs/scan-layers.log"))"
    else fail "secrets in the image: $(grep FOUND "$WORK/logs/scan-layers.log" | head -n 3 | tr '\n' ' ')"; fi
    # Every layer in the storage, intermediate stages included, and what the tools left behind.
    local dirs=() d
    for d in "$WORK"/storage/overlay/*/diff; do [ -d "$d" ] && dirs+=("$d"); done
    if "${scan[@]}" "${dirs[@]}" "$WORK/tmp" "$WORK/run" >"$WORK/logs/scan-storage.log"; then
        pass "nor in any of the ${#dirs[@]} layers in the build storage (all stages) or the tools' temp/run dirs ($(tail -n 1 "$WORK/logs/scan-storage.log"))"
    else fail "secrets in the build storage: $(grep FOUND "$WORK/logs/scan-storage.log" | head -n 3 | tr '\n' ' ')"; fi
}

# ---- running it ----------------------------------------------------------------------------------------
run_container() {
    netns_create
    podman run -d --name "$CONTAINER" --network "ns:/run/netns/$E2E_NETNS" "$IMAGE_TAG" \
        >"$WORK/logs/run.out" 2>"$WORK/logs/run.err" || { cat "$WORK/logs/run.err" >&2; die "podman run failed"; }
    for _ in $(seq 100); do
        in_netns curl -fsS -m 2 -o /dev/null http://127.0.0.1:8080/healthz 2>/dev/null && return 0
        sleep 0.1
    done
    podman logs "$CONTAINER" >&2 || true
    die "the container does not answer on 127.0.0.1:8080 in its namespace"
}
http_checks() {
    local base=http://127.0.0.1:8080 h body
    local links; links=$(in_netns ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
    [ "$links" = "lo " ] && pass "the container's network namespace has nothing but loopback" \
        || fail "the namespace has more than loopback: $links"
    body=$(in_netns curl -fsS -m 5 -D "$WORK/logs/healthz.h" "$base/healthz") || true
    if [ "$body" = ok ] && grep -qi '^cache-control: no-store' "$WORK/logs/healthz.h"; then pass "GET /healthz: 200 ok, Cache-Control: no-store"
    else fail "GET /healthz: '$body' $(tr -d '\r' <"$WORK/logs/healthz.h" | head -n 1)"; fi
    # header_check PATH STATUS CACHE-CONTROL-REGEX [CONTENT-TYPE-REGEX]
    header_check() {
        local code; h=$(in_netns curl -sS -m 5 -o /dev/null -D - "$base/$1" | tr -d '\r') || true
        code=$(head -n 1 <<<"$h" | awk '{print $2}')
        if [ "$code" = "$2" ] && { [ -z "$3" ] || grep -qiE "^cache-control: $3" <<<"$h"; } \
           && { [ -z "${4:-}" ] || grep -qiE "^content-type: $4" <<<"$h"; }; then
            pass "GET /$1: $code${3:+, Cache-Control $(grep -i '^cache-control:' <<<"$h" | cut -d' ' -f2-)}${4:+, $(grep -i '^content-type:' <<<"$h" | cut -d' ' -f2-)}"
        else fail "GET /$1: $(tr '\n' ' ' <<<"$h" | cut -c1-300)"; fi
    }
    local deb byhash
    deb=$(podman exec "$CONTAINER" sh -c 'cd /srv && find fixture/pool -name "*.deb" | head -n 1')
    byhash=$(podman exec "$CONTAINER" sh -c 'cd /srv && find fixture/dists -path "*by-hash/SHA256/*" -type f | head -n 1')
    header_check fixture/dists/greet-stable/InRelease 200 'no-cache'
    header_check fixture/dists/greet-stable/main/binary-amd64/Packages.xz 200 'no-cache'
    header_check "$deb" 200 'public, max-age=31536000, immutable' 'application/vnd.debian.binary-package'
    header_check "$byhash" 200 'public, max-age=31536000, immutable'
    header_check fixture/mini-mirror-archive-keyring.gpg 200 'no-cache'
    header_check fixture/.mini-mirror-fingerprint 404 ''
    # The published keyring is the operator's key, and the served InRelease verifies with the
    # operator's public key, exported from GnuPG (independent of the image).
    in_netns curl -fsS -m 5 -o "$WORK/served-keyring.gpg" "$base/fixture/mini-mirror-archive-keyring.gpg" || true
    in_netns curl -fsS -m 5 -o "$WORK/served-InRelease" "$base/fixture/dists/greet-stable/InRelease" || true
    local got; got=$(gpg --batch --with-colons --show-keys "$WORK/served-keyring.gpg" 2>/dev/null | awk -F: '$1 == "fpr" {print $10; exit}')
    [ "$got" = "$KEY_FPR" ] && pass "the published keyring is the operator's key ($KEY_FPR)" \
        || fail "the published keyring is ${got:-unreadable}, not the operator's key $KEY_FPR"
    gpgv --keyring "$KEYDIR/public.gpg" "$WORK/served-InRelease" >"$WORK/logs/gpgv.log" 2>&1 \
        && pass "the served InRelease verifies with the operator's public key (gpgv)" \
        || fail "gpgv rejects the served InRelease: $(tail -n 2 "$WORK/logs/gpgv.log" | tr '\n' ' ')"
}
user_checks() {
    local pid uids cuid unread
    pid=$(podman inspect -f '{{.State.Pid}}' "$CONTAINER")
    uids=$(ps -o uid= -p "$pid" --ppid "$pid" | tr -s ' \n' ' ' | sed 's/^ //;s/ $//')
    cuid=$(podman exec "$CONTAINER" id -u)
    if [ -n "$uids" ] && ! grep -qw 0 <<<"$uids" && [ "$cuid" = 101 ]; then
        pass "nginx master and workers run as uid $uids (not root); podman exec id -u: $cuid"
    else fail "processes run as uids '$uids', exec as '$cuid'"; fi
    unread=$(podman exec "$CONTAINER" sh -c 'find /srv /etc/nginx/nginx.conf ! -readable 2>&1 | head -n 3')
    [ -z "$unread" ] && pass "every file under /srv is readable by uid 101" || fail "unreadable for uid 101: $unread"
    # conmon writes the container's stdout to its log asynchronously: give it a few seconds.
    local tries=0
    until podman logs "$CONTAINER" 2>&1 | grep -q '"GET /fixture/dists/greet-stable/InRelease HTTP/1.1" 200'; do
        tries=$((tries + 1))
        [ "$tries" -lt 20 ] || break
        sleep 0.5
    done
    [ "$tries" -lt 20 ] \
        && pass "the access log reaches the container's stdout (podman logs)" \
        || fail "no access log lines in podman logs after 10 s"
    local rc=0; podman healthcheck run "$CONTAINER" >"$WORK/logs/healthcheck.log" 2>&1 || rc=$?
    local st; st=$(podman inspect -f '{{.State.Health.Status}}' "$CONTAINER" 2>/dev/null || true)
    [ "$rc" = 0 ] && [ "$st" = healthy ] && pass "podman healthcheck run: healthy" \
        || fail "podman healthcheck run: exit $rc, status '$st': $(tr '\n' ' ' <"$WORK/logs/healthcheck.log")"
}
apt_checks() {
    # The offline runner of tests/e2e, against this container: gpgv on the served tree, its HTTP
    # contract, apt-get update --error-on=any and every requested package installed in a clean
    # bookworm client that can reach nothing but the container.
    rm -rf "$WORK/srv"
    podman cp "$CONTAINER:/srv" "$WORK/srv"
    local rc=0 line
    "$E2E_DIR/offline.sh" "$FX/sources" --mirror "$WORK/srv" --netns "$E2E_NETNS" --port 8080 \
        >"$WORK/logs/offline.out" 2>"$WORK/logs/offline.err" || rc=$?
    while IFS= read -r line; do
        case "$line" in
            ok\ *|installed\ *) PASSED=$((PASSED + 1)); echo "offline: $line" ;;
            failed\ *) FAILED=$((FAILED + 1)); echo "offline: $line" ;;
        esac
    done <"$WORK/logs/offline.out"
    if [ "$rc" -ne 0 ] && ! grep -q '^failed ' "$WORK/logs/offline.out"; then
        tail -n 20 "$WORK/logs/offline.err" >&2
        fail "offline.sh exited $rc"
    fi
    grep -q '^installed hello-app$' "$WORK/logs/offline.out" || fail "offline.sh did not install hello-app"
}

registry_checks() {
    local ref=docker://$IMAGE_TAG
    if ! skopeo inspect --tls-verify=false "$ref" >"$WORK/logs/skopeo-inspect.json" 2>"$WORK/logs/skopeo.err"; then
        fail "skopeo inspect $ref: $(tr '\n' ' ' <"$WORK/logs/skopeo.err")"; return 0
    fi
    skopeo inspect --tls-verify=false --config --raw "$ref" >"$WORK/logs/skopeo-config.json" 2>>"$WORK/logs/skopeo.err" || true
    local local_id why
    local_id=$(podman image inspect -f '{{.Id}}' "$IMAGE_TAG")
    why=$(python3 - "$WORK/logs/skopeo-inspect.json" "$WORK/logs/skopeo-config.json" "$local_id" "$WORK/logs/inspect.json" <<'EOF'
import hashlib, json, sys
remote = json.load(open(sys.argv[1]))
raw = open(sys.argv[2], "rb").read()
local = json.load(open(sys.argv[4]))[0]
why = []
if hashlib.sha256(raw).hexdigest() != sys.argv[3]:
    why.append("config digest %s != local image id %s" % (hashlib.sha256(raw).hexdigest()[:12], sys.argv[3][:12]))
ll = (local.get("Config") or {}).get("Labels") or local.get("Labels") or {}
if remote.get("Labels") != ll:
    why.append("labels differ")
if len(remote.get("Layers") or []) < 2:
    why.append("layers %r" % remote.get("Layers"))
print("; ".join(why))
EOF
)
    [ -z "$why" ] && pass "pushed to the registry on 127.0.0.1:$REGISTRY_PORT; skopeo inspect reads it back (same config digest, same labels)" \
        || fail "registry read-back: $why"
}

buildah_build() {
    run_build build-buildah CONTAINER_TOOL=buildah EXTRA_TAG_INFO=-buildah MINI_MIRROR_BINARY="$BIN" \
        RELEASE_SIGN_KEY_PATH="$KEYDIR/release.key" RELEASE_SIGN_KEY_PASSPHRASE="$PASSPHRASE"
    if [ "$BUILD_RC" -eq 0 ] && [ "$BUILD_OUT" = "mini-mirror-e2e:$VERSION_TAG-bookworm-buildah" ] \
       && buildah inspect --type image "$BUILD_OUT" | grep -q '/healthz'; then
        pass "build.sh with CONTAINER_TOOL=buildah built $BUILD_OUT (with its HEALTHCHECK)"
    else
        tail -n 20 "$WORK/logs/build-buildah.err" >&2
        fail "build.sh with CONTAINER_TOOL=buildah: exit $BUILD_RC, printed '$BUILD_OUT'"
    fi
    # A wrong passphrase fails the build, and is not printed.
    run_build build-wrongpass CONTAINER_TOOL=podman EXTRA_TAG_INFO=-wrong MINI_MIRROR_BINARY="$BIN" \
        RELEASE_SIGN_KEY_PATH="$KEYDIR/release.key" RELEASE_SIGN_KEY_PASSPHRASE="not-$PASSPHRASE-either"
    if [ "$BUILD_RC" -ne 0 ] && grep -q "wrong passphrase" "$WORK/logs/build-wrongpass.err" \
       && ! grep -qF -- "not-$PASSPHRASE" "$WORK/logs/build-wrongpass.err"; then
        pass "a wrong passphrase fails the build ($(grep -o 'error.*wrong passphrase[^"]*' "$WORK/logs/build-wrongpass.err" | head -n 1)), without printing it"
    else fail "wrong passphrase: exit $BUILD_RC: $(grep -i 'error' "$WORK/logs/build-wrongpass.err" | head -n 3 | tr '\n' ' ')"; fi
}

# KEEP_SNAPSHOTS + PREVIOUS_TREE: an update image carries the previous image's snapshot beside
# its own (so `apt --snapshot` works in the cluster), and BASE_URL names where they are served.
snapshot_build() {
    local prev=$WORK/previous-tree cid
    cid=$(podman create "$IMAGE_TAG" true) && podman cp "$cid:/srv" "$prev" && podman rm "$cid" >/dev/null \
        || { fail "could not copy /srv out of $IMAGE_TAG"; return 1; }
    run_build build-keep2 CONTAINER_TOOL=podman EXTRA_TAG_INFO=-keep2 MINI_MIRROR_BINARY="$BIN" \
        RELEASE_SIGN_KEY_PATH="$KEYDIR/release.key" RELEASE_SIGN_KEY_PASSPHRASE="$PASSPHRASE" \
        KEEP_SNAPSHOTS=2 PREVIOUS_TREE="$prev" BASE_URL=http://apt-mirror.test:8080 MINI_MIRROR_BUILD_FLAGS=--force
    if [ "$BUILD_RC" -ne 0 ]; then
        tail -n 20 "$WORK/logs/build-keep2.err" >&2
        fail "build.sh with KEEP_SNAPSHOTS=2 PREVIOUS_TREE: exit $BUILD_RC"; return 1
    fi
    local listing field
    listing=$(podman run --rm --entrypoint sh "$BUILD_OUT" -c 'ls /srv/fixture/snapshots' | paste -sd' ' -)
    field=$(podman run --rm --entrypoint sh "$BUILD_OUT" -c 'grep "^Snapshots:" /srv/fixture/dists/greet-stable/Release')
    local old; old=$(ls "$prev/fixture/snapshots" | paste -sd' ' -)
    if [ "$(wc -w <<<"$listing")" = 2 ] && grep -qw "$old" <<<"$listing" \
       && [ "$field" = "Snapshots: http://apt-mirror.test:8080/fixture/snapshots/@SNAPSHOTID@/" ]; then
        pass "KEEP_SNAPSHOTS=2 with PREVIOUS_TREE: the image carries snapshots $listing (the previous image's $old kept), $field"
    else fail "KEEP_SNAPSHOTS=2: snapshots '$listing' (previous '$old'), field '$field'"; fi
}

# --compile: the Dockerfile's default path (cargo build in BUILDER_IMAGE), with a builder image
# made locally from Debian + this machine's rustup toolchain (rust:1-bookworm cannot be pulled).
RUST_BUILDER=localhost/mm-e2e-rust:bookworm
compile_build() {
    local tc
    tc=$(rustc --print sysroot 2>/dev/null || true)
    [ -n "$tc" ] && [ -x "$tc/bin/cargo" ] || { fail "--compile: no rustup toolchain (rustc --print sysroot) on this machine"; return 0; }
    local ctr; ctr=$(buildah from --pull-never "$BUILD_BASE")
    buildah run "$ctr" -- sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null && rm -rf /var/lib/apt/lists/*' \
        >"$WORK/logs/rust-builder.log" 2>&1 || { fail "--compile: could not install gcc in the builder image"; buildah rm "$ctr" >/dev/null; return 0; }
    local mnt; mnt=$(buildah mount "$ctr")
    mkdir -p "$mnt/usr/local/rustup" "$mnt/usr/local/cargo/bin"
    tar -C "$tc" --exclude=./share/doc --exclude=./lib/rustlib/src -cf - . | tar -C "$mnt/usr/local/rustup" -xf -
    ln -sf /usr/local/rustup/bin/cargo "$mnt/usr/local/cargo/bin/cargo"
    ln -sf /usr/local/rustup/bin/rustc "$mnt/usr/local/cargo/bin/rustc"
    buildah umount "$ctr" >/dev/null
    buildah config --env CARGO_HOME=/usr/local/cargo --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    buildah commit --quiet "$ctr" "$RUST_BUILDER" >/dev/null
    buildah rm "$ctr" >/dev/null
    # The CAs this machine added locally (e.g. a TLS-intercepting egress proxy's): crates.io is
    # reached through the same network as here.
    local cas=() ca_env=() f
    for f in /usr/local/share/ca-certificates/*.crt; do [ -f "$f" ] && cas+=("$f"); done
    if [ ${#cas[@]} -gt 0 ]; then
        cat "${cas[@]}" >"$WORK/extra-ca.pem"
        ca_env=(EXTRA_CA_CERTS="$WORK/extra-ca.pem")
        log "--compile: trusting ${#cas[@]} locally added CA certificate(s) during the build"
    fi
    run_build build-compile CONTAINER_TOOL=podman EXTRA_TAG_INFO=-compiled BUILDER_IMAGE="$RUST_BUILDER" \
        RELEASE_SIGN_KEY_PATH="$KEYDIR/release.key" RELEASE_SIGN_KEY_PASSPHRASE="$PASSPHRASE" "${ca_env[@]}"
    if [ "$BUILD_RC" -ne 0 ]; then
        tail -n 30 "$WORK/logs/build-compile.err" >&2
        fail "build.sh without MINI_MIRROR_BINARY (compile stage in $RUST_BUILDER): exit $BUILD_RC (log above)"
        return 0
    fi
    podman run -d --name "$CONTAINER-compile" --network none "$BUILD_OUT" >/dev/null
    local ok=0
    for _ in $(seq 50); do podman exec "$CONTAINER-compile" curl -fsS -m 2 http://127.0.0.1:8080/healthz >/dev/null 2>&1 && { ok=1; break; }; sleep 0.1; done
    [ "$ok" = 1 ] && pass "build.sh without MINI_MIRROR_BINARY compiled mini-mirror in the builder stage ($RUST_BUILDER) and the image serves" \
        || fail "the compiled image does not serve /healthz"
    podman rm -f -t 2 "$CONTAINER-compile" >/dev/null 2>&1 || true
}

cache_client() { client_tarball bookworm >/dev/null; }

# ---- main ------------------------------------------------------------------------------------------
main() {
    phase "tools" image_tools
    find_binary
    phase "base images (debootstrap, cached)" base_images
    phase "client cache bookworm" cache_client
    phase "signing key" make_key
    phase "upstream fixture" upstream
    if [ "$ONLY_OCI" = 1 ]; then
        registry_binary; netns_create; oci_main
        print_phases; echo "$PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; return
    fi
    phase "proxy" start_proxy
    phase "registry on 127.0.0.1" start_registry
    phase "build.sh argument checks" cli_checks
    if ! phase "build.sh: podman build + push" main_build; then
        print_phases; echo "$PASSED passed, $FAILED failed"; exit 1
    fi
    phase "image metadata" inspect_checks
    phase "secrets in layers and history" secret_checks
    phase "run in a loopback-only netns" run_container
    phase "http checks" http_checks
    phase "user, files, logs, healthcheck" user_checks
    phase "apt from the container (offline.sh)" apt_checks
    phase "registry read-back" registry_checks
    phase "build.sh: buildah, wrong passphrase" buildah_build
    phase "build.sh: KEEP_SNAPSHOTS, PREVIOUS_TREE, BASE_URL" snapshot_build
    oci_main
    if [ "$COMPILE" = 1 ]; then phase "build.sh: compile stage" compile_build; fi
    print_phases
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
main
