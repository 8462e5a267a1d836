# Shared helpers of the end-to-end ("offline proof") scripts. Source it; do not run it.
# Needs bash and root (network namespaces, chroot, debootstrap).
# shellcheck shell=bash

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
E2E_CACHE=${MINI_MIRROR_E2E_CACHE:-/var/cache/mini-mirror-e2e}
E2E_NGINX_CONF=${MINI_MIRROR_NGINX_CONF:-$REPO_ROOT/nginx/mini-mirror.conf}
E2E_UBUNTU_URL=${MINI_MIRROR_E2E_UBUNTU_URL:-http://archive.ubuntu.com/ubuntu}
E2E_ARCH=$(dpkg --print-architecture)

# The Ubuntu archive keyring: shipped in ubuntu-keyring_2021.03.26_all.deb (jammy's, still the
# current archive key set). The hash is pinned, and cross-checked against jammy's signed index.
E2E_UBUNTU_KEYRING_DEB=pool/main/u/ubuntu-keyring/ubuntu-keyring_2021.03.26_all.deb
E2E_UBUNTU_KEYRING_SHA256=0d0e7ed6b112f5d03eabf3c7eb01ebdacf9c57714b279e90495cfc58c8c4520f

E2E_DEBIAN_CODENAMES=" buster bullseye bookworm trixie forky duke sid "
E2E_UBUNTU_CODENAMES=" bionic focal jammy kinetic lunar mantic noble oracular plucky questing "

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# remove_workdir DIR KEEP: remove a work dir, unless KEEP=1 or something is still mounted under it.
remove_workdir() {
    local dir=$1 keep=$2
    if [ "$keep" = 1 ]; then
        log "kept $dir"
    elif findmnt -rn -o TARGET | grep -q "^$dir"; then
        log "something is still mounted under $dir; not removing it"
    else
        rm -rf --one-file-system "$dir"
    fi
}

# ---- phase timing ---------------------------------------------------------------------------
E2E_PHASES=()
now_ns() { date +%s%N; }
# phase NAME CMD...: runs CMD in the current shell, prints and records how long it took.
phase() {
    local name=$1; shift
    local t0 t1 rc=0
    t0=$(now_ns)
    log "phase '$name' ..."
    "$@" || rc=$?
    t1=$(now_ns)
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    E2E_PHASES+=("$name: ${secs}s$([ "$rc" -eq 0 ] || echo " (exit $rc)")")
    printf 'phase %-40s %7ss%s\n' "$name" "$secs" "$([ "$rc" -eq 0 ] || echo "  (exit $rc)")"
    return "$rc"
}
print_phases() {
    local p
    echo "---- phase timings ----"
    for p in "${E2E_PHASES[@]}"; do echo "  $p"; done
}

# ---- tools ------------------------------------------------------------------------------------
E2E_APT_UPDATED=
host_apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "$E2E_APT_UPDATED" ]; then
        apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || die "apt-get update on the host failed"
        E2E_APT_UPDATED=1
    fi
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >&2 \
        || die "apt-get install $* failed"
}
# ensure_tools: install whatever the e2e scripts need and is missing (CI is a fresh Debian 12).
ensure_tools() {
    [ "$(id -u)" = 0 ] || die "the e2e scripts need root (network namespaces, chroot)"
    local missing=() pair cmd pkg
    for pair in nginx:nginx-light debootstrap:debootstrap apt-ftparchive:apt-utils zstd:zstd \
                ip:iproute2 unshare:util-linux flock:util-linux gpg:gnupg gpgv:gpgv curl:curl \
                dpkg-deb:dpkg xz:xz-utils gzip:gzip ss:iproute2 timeout:coreutils ps:procps \
                setpriv:util-linux findmnt:util-linux; do
        cmd=${pair%%:*}; pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing missing tools: ${missing[*]}"
        local uniq; mapfile -t uniq < <(printf '%s\n' "${missing[@]}" | sort -u)
        host_apt_install "${uniq[@]}"
    fi
}

# ---- upstream URLs ----------------------------------------------------------------------------
# The Debian archive URL this machine itself uses (deb822 sources first, then sources.list).
debian_archive_url() {
    if [ -n "${MINI_MIRROR_E2E_DEBIAN_URL:-}" ]; then echo "$MINI_MIRROR_E2E_DEBIAN_URL"; return; fi
    local f url
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        # Stanzas are separated by blank lines: the first URIs of a stanza whose Suites has
        # a plain codename (not -security) and whose URI does not look like the security archive.
        url=$(awk 'BEGIN{RS=""} /Suites:[^\n]*(bookworm|trixie|stable)([ \n]|$)/ && !/debian-security/ {
                     if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH);
                     sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f")
        if [ -n "$url" ]; then echo "${url%/}"; return; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        url=$(awk '$1 == "deb" { u = ($2 ~ /^\[/) ? $3 : $2; for (i = 1; i <= NF; i++) if ($i ~ /^\[/ && $i !~ /\]$/) {}; if (u !~ /security/) { print u; exit } }' "$f")
        if [ -n "$url" ]; then echo "${url%/}"; return; fi
    done
    echo http://deb.debian.org/debian
}

# ---- Ubuntu archive keyring -------------------------------------------------------------------
# Prints the path of a verified ubuntu-archive-keyring.gpg (cached).
ubuntu_keyring() {
    local out=$E2E_CACHE/ubuntu-archive-keyring.gpg
    if [ -s "$out" ]; then echo "$out"; return; fi
    mkdir -p "$E2E_CACHE"
    local tmp; tmp=$(mktemp -d)
    (
        set -e
        cd "$tmp"
        curl -fsS --retry 3 -m 120 -o keyring.deb "$E2E_UBUNTU_URL/$E2E_UBUNTU_KEYRING_DEB"
        echo "$E2E_UBUNTU_KEYRING_SHA256  keyring.deb" | sha256sum -c --quiet -
        dpkg-deb -x keyring.deb x
        cp x/usr/share/keyrings/ubuntu-archive-keyring.gpg key.gpg
        # Cross-check: jammy's InRelease verifies with the extracted key, and the deb's hash is
        # the one in jammy's (hash-checked) main Packages index.
        curl -fsS --retry 3 -m 120 -o InRelease "$E2E_UBUNTU_URL/dists/jammy/InRelease"
        gpgv --keyring "$PWD/key.gpg" --output Release InRelease 2>gpgv.log \
            || { cat gpgv.log >&2; exit 1; }
        curl -fsS --retry 3 -m 300 -o Packages.gz "$E2E_UBUNTU_URL/dists/jammy/main/binary-amd64/Packages.gz"
        want=$(awk '/^SHA256:/ {s=1; next} /^[^ ]/ {s=0} s && $3 == "main/binary-amd64/Packages.gz" {print $1}' Release)
        echo "$want  Packages.gz" | sha256sum -c --quiet -
        got=$(zcat Packages.gz | awk -v f="$E2E_UBUNTU_KEYRING_DEB" '
              /^Filename:/ {fn=$2} /^SHA256:/ {sh=$2} /^$/ { if (fn == f) print sh; fn=""; sh="" }')
        [ "$got" = "$E2E_UBUNTU_KEYRING_SHA256" ] || { echo "ubuntu-keyring hash not in jammy's index" >&2; exit 1; }
    ) >&2 || { rm -rf "$tmp"; die "could not obtain a verified Ubuntu archive keyring"; }
    install -m 0644 "$tmp/key.gpg" "$out.tmp" && mv "$out.tmp" "$out"
    rm -rf "$tmp"
    echo "$out"
}

# ---- client chroots ---------------------------------------------------------------------------
# distro_of CODENAME -> debian | ubuntu | "" (unknown)
distro_of() {
    case "$E2E_DEBIAN_CODENAMES" in *" $1 "*) echo debian; return ;; esac
    case "$E2E_UBUNTU_CODENAMES" in *" $1 "*) echo ubuntu; return ;; esac
    echo ""
}
# client_for_dist DIST -> the client release that should consume it (bookworm-updates -> bookworm;
# an unknown suite name -> $MINI_MIRROR_E2E_CLIENT, default bookworm).
client_for_dist() {
    local code=${1%%[-/]*}
    if [ -n "$(distro_of "$code")" ]; then echo "$code"; else echo "${MINI_MIRROR_E2E_CLIENT:-bookworm}"; fi
}
debootstrap_script_for() {  # CODENAME -> debootstrap script (works for suites newer than the host's debootstrap)
    if [ -e "/usr/share/debootstrap/scripts/$1" ]; then echo "/usr/share/debootstrap/scripts/$1"
    elif [ "$(distro_of "$1")" = ubuntu ]; then echo /usr/share/debootstrap/scripts/gutsy
    else echo /usr/share/debootstrap/scripts/sid; fi
}

# client_tarball RELEASE: prints the path of a cached minbase rootfs (tar.zst) of RELEASE,
# made once with debootstrap from the real archive.
client_tarball() {
    local rel=$1 distro url keyopt=()
    distro=$(distro_of "$rel")
    local out=$E2E_CACHE/client-$rel-$E2E_ARCH-minbase.tar.zst
    mkdir -p "$E2E_CACHE"
    (
        flock 9
        [ -s "$out" ] && exit 0
        case "$distro" in
            debian) url=$(debian_archive_url) ;;
            ubuntu) url=$E2E_UBUNTU_URL; keyopt=(--keyring="$(ubuntu_keyring)") ;;
            *) die "don't know how to make a client of release '$rel'" ;;
        esac
        local root; root=$(mktemp -d /var/tmp/mm-e2e-bootstrap.XXXXXX)
        chmod 0755 "$root"
        log "debootstrap --variant=minbase $rel from $url (once; cached in $out)"
        if ! timeout 1200 debootstrap --variant=minbase "${keyopt[@]}" "$rel" "$root" "$url" \
                "$(debootstrap_script_for "$rel")" >"$root.log" 2>&1; then
            tail -n 30 "$root.log" >&2; rm -rf "$root" "$root.log"; die "debootstrap $rel failed"
        fi
        chroot "$root" apt-get clean
        rm -f "$root.log"
        tar -C "$root" --numeric-owner --xattrs -cf - . | zstd -q -T0 -3 -o "$out.tmp"
        mv "$out.tmp" "$out"
        rm -rf "$root"
    ) 9>"$out.lock" >&2 || die "could not make the $rel client"
    echo "$out"
}
# unpack_client RELEASE DIR: a fresh client root in DIR.
unpack_client() {
    local tarball; tarball=$(client_tarball "$1") || return 1
    mkdir -p "$2"
    zstd -q -dc "$tarball" | tar -C "$2" --numeric-owner --xattrs -xpf - || return 1
    chmod 0755 "$2"   # apt's _apt sandbox user must be able to traverse /
}

# ---- network namespace + nginx ------------------------------------------------------------------
E2E_NETNS=
netns_create() {
    E2E_NETNS=mm-e2e-$$-$RANDOM
    ip netns add "$E2E_NETNS"
    ip -n "$E2E_NETNS" link set lo up
}
netns_delete() {
    if [ -n "$E2E_NETNS" ]; then ip netns delete "$E2E_NETNS" 2>/dev/null || true; E2E_NETNS=; fi
}
in_netns() { ip netns exec "$E2E_NETNS" "$@"; }

# free_port: a TCP port nothing listens on (in the root namespace).
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 30000))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
    die "no free port"
}

# render_nginx_conf ROOT LISTEN WORKDIR -> prints the path of a config serving ROOT on LISTEN
# (e.g. 127.0.0.1:8080) with pid/temp files under WORKDIR.
render_nginx_conf() {
    local root=$1 listen=$2 work=$3
    mkdir -p "$work"
    sed -e "s#^\(\s*\)root /srv;#\1root $root;#" \
        -e "s#listen 8080;#listen $listen;#" \
        -e "s#/tmp/nginx#$work/nginx#g" "$E2E_NGINX_CONF" >"$work/nginx.conf"
    grep -q "root $root;" "$work/nginx.conf" && grep -q "listen $listen;" "$work/nginx.conf" \
        || die "could not template $E2E_NGINX_CONF"
    echo "$work/nginx.conf"
}

# start_nginx NAME ROOT LISTEN WORKDIR [netns]: starts nginx (in the namespace when "netns" is
# given), waits for /healthz; sets NGINX_PID_<NAME>.
start_nginx() {
    local name=$1 root=$2 listen=$3 work=$4 where=${5:-host} conf pid
    conf=$(render_nginx_conf "$root" "$listen" "$work")
    local run=()
    [ "$where" = netns ] && run=(ip netns exec "$E2E_NETNS")
    "${run[@]}" nginx -t -q -c "$conf" -e stderr 2>"$work/nginx-t.log" \
        || { cat "$work/nginx-t.log" >&2; die "nginx -t failed for $conf"; }
    "${run[@]}" nginx -c "$conf" -e stderr -g 'daemon off;' >"$work/access.log" 2>"$work/error.log" &
    pid=$!
    printf -v "NGINX_PID_$name" '%s' "$pid"
    for _ in $(seq 100); do
        if "${run[@]}" curl -fsS -m 2 -o /dev/null "http://$listen/healthz" 2>/dev/null; then
            # $! must be the nginx master itself (ip netns exec execs), or stopping it would orphan nginx.
            [ "$(cat "$work/nginx.pid" 2>/dev/null)" = "$pid" ] || die "nginx master is not pid $pid"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$work/error.log" >&2; die "nginx ($name) exited"; }
        sleep 0.1
    done
    cat "$work/error.log" >&2
    die "nginx ($name) did not answer on $listen"
}
stop_pid() {  # stop_pid PID: TERM, then KILL after 5 s
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---- running things in a client root, inside the namespace --------------------------------------
# in_client ROOT CMD...: CMD inside chroot ROOT, in the namespace, in private mount and pid
# namespaces (proc and /dev are mounted there and vanish with it).
in_client() {
    local root=$1; shift
    ip netns exec "$E2E_NETNS" unshare --mount --pid --fork --kill-child sh -c '
        root=$1; shift
        mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" || exit 125
        exec chroot "$root" "$@"' sh "$root" \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@"
}

# local_upstream W KEY_EMAIL VERSION: W/repo becomes a one-package archive (probe VERSION,
# dist stable, Origin e2e) clearsigned by the GnuPG key KEY_EMAIL (in $GNUPGHOME).
local_upstream() {
    local w=$1 key=$2 v=$3
    rm -rf "$w/repo" "$w/pkg"
    mkdir -p "$w/repo/pool" "$w/repo/dists/stable/main/binary-amd64" "$w/pkg/DEBIAN"
    printf 'Package: probe\nVersion: %s\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: probe\n' "$v" >"$w/pkg/DEBIAN/control"
    dpkg-deb --build "$w/pkg" "$w/repo/pool/probe_${v}_all.deb" >/dev/null
    (cd "$w/repo" && apt-ftparchive packages pool >dists/stable/main/binary-amd64/Packages)
    (cd "$w/repo/dists/stable" && apt-ftparchive -o APT::FTPArchive::Release::Origin=e2e \
        -o APT::FTPArchive::Release::Suite=stable -o APT::FTPArchive::Release::Codename=stable \
        -o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main \
        release . >Release)
    gpg --batch --yes --local-user "$key" --digest-algo SHA256 --clearsign \
        -o "$w/repo/dists/stable/InRelease" "$w/repo/dists/stable/Release"
}

# ---- results: `ok WHAT` / `no WHAT` count and print one line each ------------------------------
PASSED=0 FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok $*"; }
no() { FAILED=$((FAILED + 1)); echo "failed $*"; }

# upstream_key W EMAIL: GNUPGHOME=W/gnupg with an Ed25519 signing key EMAIL (for
# local_upstream); its public key in W/upstream.gpg.
upstream_key() {
    export GNUPGHOME=$1/gnupg
    mkdir -m 700 "$GNUPGHOME"
    gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key "e2e upstream <$2>" ed25519 sign 1y 2>/dev/null
    gpg --batch --export "$2" >"$1/upstream.gpg"
}
