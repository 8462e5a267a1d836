#!/usr/bin/env bash
# The offline proof: build a mirror from a sources/ tree, serve it from a network namespace that
# has nothing but loopback, and let apt in clean client chroots (debootstrap minbase, made once
# from the real archive and cached) install every requested package from it -- and nothing else.
#
#   tests/e2e/offline.sh SOURCES_DIR [--essential-bootstrap] [options]
#
# Options:
#   --essential-bootstrap  also `debootstrap --variant=minbase` a new system from the mirror, for
#                          every source whose settings.toml has `essential = true`, and install
#                          the requested packages inside that new system too
#   --mirror DIR           do not build: serve (and test) this already-built output tree
#   --output DIR           build into DIR (must not exist or be empty) and keep it
#   --bin PATH             the mini-mirror binary (default: $MINI_MIRROR_BIN, else
#                          target/release/mini-mirror of this repo, built with cargo if missing)
#   --sign-key FILE        passed to `mini-mirror build`
#   --jobs N               passed to `mini-mirror build`
#   --cache DIR            download cache of the build (default: a fresh temp dir)
#   --port N               port of the mirror inside the namespace (default 8080)
#   --netns NAME           do not serve: test the server already listening on 127.0.0.1:PORT in
#                          the existing network namespace NAME (e.g. a container started with
#                          --network ns:/run/netns/NAME); needs --mirror DIR, a copy of the tree it
#                          serves (for the keyrings and the static checks); NAME is left as it is
#   --keep                 keep the work dir (output, logs, chroots) for inspection
#
# Output: one line per check: `ok ...`, `installed NAME`, `failed NAME: <apt's reasons>`, then
# `N passed, M failed` alone on a line. Exit status 0 only when nothing failed.
# Environment: MINI_MIRROR_E2E_CACHE (client rootfs cache, default /var/cache/mini-mirror-e2e),
# MINI_MIRROR_E2E_CLIENT (client release for suites with an unknown name, default bookworm),
# MINI_MIRROR_E2E_BUILD_TIMEOUT (seconds, default 3600), MINI_MIRROR_E2E_DEBIAN_URL.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }

SOURCES='' ESSENTIAL=0 MIRROR='' OUTPUT='' BIN=${MINI_MIRROR_BIN:-} SIGN_KEY='' JOBS='' BUILD_CACHE='' PORT=${MINI_MIRROR_E2E_PORT:-8080} KEEP=0 GIVEN_NETNS='' TLS_PORT=${MINI_MIRROR_E2E_TLS_PORT:-8443}
while [ $# -gt 0 ]; do
    case "$1" in
        --essential-bootstrap) ESSENTIAL=1 ;;
        --mirror) MIRROR=$(realpath "$2"); shift ;;
        --output) OUTPUT=$(realpath -m "$2"); shift ;;
        --bin) BIN=$2; shift ;;
        --sign-key) SIGN_KEY=$(realpath "$2"); shift ;;
        --jobs) JOBS=$2; shift ;;
        --cache) BUILD_CACHE=$2; shift ;;
        --port) PORT=$2; shift ;;
        --netns) GIVEN_NETNS=$2; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) usage ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) [ -z "$SOURCES" ] || usage; SOURCES=$1 ;;
    esac
    shift
done
[ -n "$SOURCES" ] || usage
[ -d "$SOURCES" ] || die "no such directory: $SOURCES"
[ -z "$GIVEN_NETNS" ] || [ -n "$MIRROR" ] || die "--netns needs --mirror DIR (a copy of the served tree)"
SOURCES=$(realpath "$SOURCES")

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "$*"; }
fail() { FAILED=$((FAILED + 1)); echo "failed $*"; }

# ---- work dir and cleanup ------------------------------------------------------------------------
WORK=$(mktemp -d /var/tmp/mm-e2e.XXXXXX)
chmod 0755 "$WORK"          # nginx workers (nobody) must be able to traverse it
NGINX_PID_mirror= NGINX_PID_tls=
cleanup() {
    local rc=$?
    set +e
    stop_pid "$NGINX_PID_mirror"
    stop_pid "$NGINX_PID_tls"
    [ -n "$GIVEN_NETNS" ] || netns_delete
    remove_workdir "$WORK" "$KEEP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/logs"

# ---- the sources tree ------------------------------------------------------------------------------
# Arrays indexed by source number.
S_DIR=() S_PREFIX=() S_DIST=() S_COMPS=() S_ESSENTIAL=() S_PKGS=() S_CLIENT=() S_ARCH_OK=()
read_sources() {
    local f dir rel line dist comps
    while IFS= read -r f; do
        dir=$(dirname "$f"); rel=${dir#"$SOURCES"/}
        line=$(grep -v -E '^\s*(#|$)' "$f" | head -n 1)
        read -r _ _ dist comps <<<"$line"   # url, key: the builder's business
        [ -n "$comps" ] || die "$f: expected '<url> <key> <dist> <component>...'"
        S_DIR+=("$dir")
        S_PREFIX+=("$(dirname "$rel")")
        S_DIST+=("$dist")
        S_COMPS+=("$comps")
        if [ -f "$dir/settings.toml" ] && grep -Eq '^\s*essential\s*=\s*true' "$dir/settings.toml"; then
            S_ESSENTIAL+=(1); else S_ESSENTIAL+=(0); fi
        if [ -f "$dir/settings.toml" ] && grep -Eq '^\s*architectures\s*=' "$dir/settings.toml" \
           && ! grep -E '^\s*architectures\s*=' "$dir/settings.toml" | grep -Eq "\"($E2E_ARCH|all)\""; then
            S_ARCH_OK+=(0); else S_ARCH_OK+=(1); fi
        S_PKGS+=("$( [ -f "$dir/packages.txt" ] && sed -e 's/#.*//' "$dir/packages.txt" | grep -v '^\s*$' || true)")
        S_CLIENT+=("$(client_for_dist "$dist")")
    done < <(find "$SOURCES" -mindepth 3 -name source.txt -type f | sort)
    [ ${#S_DIR[@]} -gt 0 ] || die "no <prefix>/<name>/source.txt under $SOURCES"
    local i
    for i in "${!S_DIR[@]}"; do
        log "source ${S_DIR[$i]#"$SOURCES"/}: /${S_PREFIX[$i]} ${S_DIST[$i]} ${S_COMPS[$i]} -> client ${S_CLIENT[$i]}$( [ "${S_ESSENTIAL[$i]}" = 1 ] && echo ", essential")"
    done
}

# ---- build -------------------------------------------------------------------------------------------
find_binary() {
    if [ -z "$BIN" ]; then
        BIN=$REPO_ROOT/target/release/mini-mirror
        if [ ! -x "$BIN" ]; then
            command -v cargo >/dev/null || die "no $BIN and no cargo to build it"
            log "building mini-mirror (cargo build --release)"
            (cd "$REPO_ROOT" && cargo build --release --locked >&2)
        fi
    fi
    [ -x "$BIN" ] || die "not executable: $BIN"
}
build_mirror() {
    local cache=${BUILD_CACHE:-$WORK/cache}
    local out=${OUTPUT:-$WORK/out}
    local args=(build --sources "$SOURCES" --output "$out" --cache "$cache" --state-dir "$WORK/state")
    [ -z "$SIGN_KEY" ] || args+=(--sign-key "$SIGN_KEY")
    [ -z "$JOBS" ] || args+=(--jobs "$JOBS")
    log "$BIN ${args[*]}"
    if timeout "${MINI_MIRROR_E2E_BUILD_TIMEOUT:-3600}" "$BIN" "${args[@]}" >"$WORK/logs/build.log" 2>&1; then
        pass "ok build"
        MIRROR=$out
    else
        local rc=$?
        tail -n 40 "$WORK/logs/build.log" >&2
        fail "build: mini-mirror build exited $rc (log above)"
        return 1
    fi
}

# ---- static checks of the output, independent of our own code (GnuPG) ----------------------------
check_output() {
    local i p d key rel
    for i in "${!S_DIR[@]}"; do
        p=${S_PREFIX[$i]} d=${S_DIST[$i]}
        key=$MIRROR/$p/mini-mirror-archive-keyring.gpg
        rel=$MIRROR/$p/dists/$d
        local why=()
        [ -s "$key" ] || why+=("no $p/mini-mirror-archive-keyring.gpg")
        local f
        for f in InRelease Release Release.gpg; do [ -s "$rel/$f" ] || why+=("no $p/dists/$d/$f"); done
        if [ ${#why[@]} -eq 0 ]; then
            gpgv --keyring "$key" "$rel/InRelease" >"$WORK/logs/gpgv-$i.log" 2>&1 \
                || why+=("gpgv rejects InRelease: $(grep -E 'BAD|Can.t|no public' "$WORK/logs/gpgv-$i.log" | head -n 2 | tr '\n' ' ')")
            gpgv --keyring "$key" "$rel/Release.gpg" "$rel/Release" >>"$WORK/logs/gpgv-$i.log" 2>&1 \
                || why+=("gpgv rejects Release.gpg")
        fi
        if [ ${#why[@]} -eq 0 ]; then pass "ok signatures $p/dists/$d (gpgv)"
        else fail "signatures $p/dists/$d: $(IFS='; '; echo "${why[*]}")"; fi
    done
}

# ---- serving -------------------------------------------------------------------------------------------
serve_mirror() {
    if [ -n "$GIVEN_NETNS" ]; then
        # Someone else serves the mirror in that namespace: wait for it.
        [ -e "/run/netns/$GIVEN_NETNS" ] || die "no network namespace $GIVEN_NETNS"
        E2E_NETNS=$GIVEN_NETNS
        local up=0
        for _ in $(seq 100); do
            in_netns curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && { up=1; break; }
            sleep 0.1
        done
        [ "$up" = 1 ] || die "nothing answers on http://127.0.0.1:$PORT/healthz in netns $GIVEN_NETNS"
    else
        netns_create
        start_nginx mirror "$MIRROR" "127.0.0.1:$PORT" "$WORK/nginx" netns
    fi
    # The namespace really has nothing but loopback.
    local links; links=$(in_netns ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
    [ "$links" = "lo " ] || die "namespace has more than loopback: $links"
    # The HTTP contract of nginx/mini-mirror.conf, checked on this very mirror.
    local base=http://127.0.0.1:$PORT why=() h i p deb
    in_netns curl -fsS -m 5 "$base/healthz" | grep -qx ok || why+=("/healthz")
    i=0; p=${S_PREFIX[$i]}
    h=$(in_netns curl -fsS -m 5 -o /dev/null -D - "$base/$p/dists/${S_DIST[$i]}/InRelease" | tr -d '\r') || why+=("GET InRelease")
    grep -qi '^cache-control: no-cache' <<<"$h" || why+=("InRelease without Cache-Control: no-cache")
    deb=$(cd "$MIRROR/$p" && find pool -name '*.deb' -type f | head -n 1)
    if [ -n "$deb" ]; then
        h=$(in_netns curl -fsS -m 5 -o /dev/null -D - "$base/$p/$deb" | tr -d '\r') || why+=("GET $deb")
        grep -qi '^content-type: application/vnd.debian.binary-package' <<<"$h" || why+=(".deb content type")
        grep -qi '^cache-control: .*max-age=31536000' <<<"$h" || why+=(".deb cache lifetime")
    fi
    if [ ${#why[@]} -eq 0 ]; then pass "ok serve http://127.0.0.1:$PORT in netns $E2E_NETNS (healthz, headers)"
    else fail "serve: $(IFS='; '; echo "${why[*]}")"; fi
}

# ---- apt in a client -------------------------------------------------------------------------------
# setup_apt ROOT INDEX...: the client's only apt sources are the given mirror sources.
setup_apt() {
    local root=$1; shift
    local i p kname
    rm -f "$root"/etc/apt/sources.list.d/* "$root/etc/apt/sources.list"
    : >"$root/etc/apt/sources.list"
    mkdir -p "$root/etc/apt/keyrings"
    for i in "$@"; do
        p=${S_PREFIX[$i]}; kname=mini-mirror-${p//\//_}.gpg
        install -m 0644 "$MIRROR/$p/mini-mirror-archive-keyring.gpg" "$root/etc/apt/keyrings/$kname"
        echo "deb [signed-by=/etc/apt/keyrings/$kname] http://127.0.0.1:$PORT/$p ${S_DIST[$i]} ${S_COMPS[$i]}"
    done | awk '!seen[$0]++' >"$root/etc/apt/sources.list.d/mini-mirror.list"
    # As in any chroot/container: maintainer scripts must not start services.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    cat >"$root/etc/apt/apt.conf.d/99mini-mirror-e2e" <<'EOF'
Acquire::Retries "0";
Dpkg::Use-Pty "0";
DPkg::Lock::Timeout "60";
EOF
}
# apt_update ROOT LABEL: must be clean (exit 0, no W:/E:/Err: line).
apt_update() {
    local root=$1 label=$2 log=$WORK/logs/update-$2.log
    local rc=0
    in_client "$root" apt-get update --error-on=any >"$log" 2>&1 || rc=$?
    local bad; bad=$(grep -E '^(W|E|Err):' "$log" || true)
    if [ "$rc" -eq 0 ] && [ -z "$bad" ]; then
        pass "ok apt-get update [$label]"
    else
        fail "apt-get update [$label]: exit $rc: $(printf '%s' "${bad:-$(tail -n 3 "$log")}" | tr '\n' '|' | sed -e 's/|$//' -e 's/|/ | /g')"
        return 1
    fi
}
# install_one ROOT LABEL QUERY: apt-get install the package named by QUERY, then check that it is
# installed, at a version satisfying QUERY's constraint, and that this version is in the mirror.
install_one() {
    local root=$1 label=$2 query=$3
    local name op ver
    name=$(sed -E 's/^\s*([^ ({]+).*/\1/' <<<"$query")
    op=$(sed -nE 's/.*\(\s*(<<|<=|=|>=|>>)\s*([^ )]+)\s*\).*/\1/p' <<<"$query")
    ver=$(sed -nE 's/.*\(\s*(<<|<=|=|>=|>>)\s*([^ )]+)\s*\).*/\2/p' <<<"$query")
    local log=$WORK/logs/install-$label-${name//[^A-Za-z0-9.+-]/_}.log
    local rc=0
    in_client "$root" apt-get install -y --no-install-recommends "$name" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        local why
        why=$(grep -E '^(E|W|Err):|Depends:|Breaks:|Conflicts:|is not installable|not going to be installed|Hash Sum|Hashes of|has no installation candidate|Unable to locate' "$log" \
              | sed -E 's/^\s+//' | awk '!seen[$0]++' | head -n 12 | tr '\n' '|' | sed -e 's/|$//' -e 's/|/ | /g')
        fail "$name: ${why:-apt-get exited $rc}"
        return 0
    fi
    if grep -qE '^(W|E|Err):' "$log"; then
        fail "$name: $(grep -E '^(W|E|Err):' "$log" | head -n 5 | tr '\n' '|' | sed -e 's/|$//' -e 's/|/ | /g')"
        return 0
    fi
    # Installed? (a virtual name resolves to a provider: apt says "Note, selecting ...")
    local status iv
    status=$(in_client "$root" dpkg-query -W -f='${db:Status-Status} ${Version}' "$name" 2>/dev/null || true)
    if [ "${status%% *}" != installed ]; then
        if grep -q "^Note, selecting '.*' instead of '$name'" "$log"; then
            pass "installed $name (virtual: $(grep -o "^Note, selecting '[^']*'" "$log" | head -n1 | cut -d"'" -f2))"
        else
            fail "$name: apt-get succeeded but the package is not installed (${status:-unknown})"
        fi
        return 0
    fi
    iv=${status#* }
    if [ -n "$op" ]; then
        local dop
        case "$op" in '>=') dop=ge ;; '<=') dop=le ;; '=') dop=eq ;; '>>') dop=gt ;; '<<') dop=lt ;; esac
        if ! dpkg --compare-versions "$iv" "$dop" "$ver"; then
            fail "$name: installed version $iv does not satisfy ($op $ver)"; return 0
        fi
    fi
    # The installed version must come from the mirror (not merely be left from the minbase system).
    if ! in_client "$root" apt-cache madison "$name" 2>/dev/null \
         | awk -F'|' -v v="$iv" '{gsub(/ /, "", $2)} $2 == v' | grep -q "http://127.0.0.1:$PORT/"; then
        fail "$name: installed version $iv is not in the mirror (apt-cache madison)"; return 0
    fi
    pass "installed $name"
}
# test_client RELEASE ROOT_LABEL INDEX...: fresh client of RELEASE, apt from the mirror only.
test_client() {
    local rel=$1; shift
    local root=$WORK/client-$rel
    phase "unpack client $rel" unpack_client "$rel" "$root" || { fail "client $rel: could not unpack"; return 0; }
    setup_apt "$root" "$@"
    phase "apt-get update [$rel]" apt_update "$root" "$rel" || true
    phase "install packages [$rel]" install_all "$root" "$rel" "$@"
}
# install_together ROOT LABEL INDEX...: one `apt-get install` of every requested package of each
# prefix at once (co-installability: one-by-one installs would hide a Conflicts between requests);
# nothing may be removed.
install_together() {
    local root=$1 label=$2; shift 2
    local prefixes p i q name qa
    prefixes=$(for i in "$@"; do echo "${S_PREFIX[$i]}"; done | awk '!seen[$0]++')
    for p in $prefixes; do
        local names=()
        for i in "$@"; do
            [ "${S_PREFIX[$i]}" = "$p" ] && [ "${S_ARCH_OK[$i]}" = 1 ] || continue
            while IFS= read -r q; do
                [ -n "$q" ] || continue
                qa=$(sed -nE 's/.*\{\s*([^ }]+)\s*\}.*/\1/p' <<<"$q")
                [ -z "$qa" ] || [ "$qa" = "$E2E_ARCH" ] || [ "$qa" = all ] || continue
                name=$(sed -E 's/^\s*([^ ({]+).*/\1/' <<<"$q")
                names+=("$name")
            done <<<"${S_PKGS[$i]}"
        done
        [ ${#names[@]} -gt 0 ] || continue
        local log=$WORK/logs/install-together-$label-${p//\//_}.log rc=0
        in_client "$root" apt-get install -y --no-install-recommends --no-remove "${names[@]}" >"$log" 2>&1 || rc=$?
        if [ "$rc" -eq 0 ] && ! grep -qE '^(W|E|Err):' "$log"; then
            pass "installed all ${#names[@]} requests of /$p together"
        else
            fail "/$p: the ${#names[@]} requests do not install together: $(grep -E '^(E|W|Err):|Depends:|Breaks:|Conflicts:' "$log" | sed -E 's/^\s+//' | head -n 8 | tr '\n' '|' | sed -e 's/|$//' -e 's/|/ | /g')"
        fi
    done
}
install_all() {
    local root=$1 label=$2; shift 2
    local i q seen=" " name
    install_together "$root" "$label" "$@"
    for i in "$@"; do
        [ "${S_ARCH_OK[$i]}" = 1 ] || { log "skipping packages of ${S_DIR[$i]#"$SOURCES"/}: not built for $E2E_ARCH"; continue; }
        while IFS= read -r q; do
            [ -n "$q" ] || continue
            name=$(sed -E 's/^\s*([^ ({]+).*/\1/' <<<"$q")
            local qa; qa=$(sed -nE 's/.*\{\s*([^ }]+)\s*\}.*/\1/p' <<<"$q")
            if [ -n "$qa" ] && [ "$qa" != "$E2E_ARCH" ] && [ "$qa" != all ]; then
                log "not installing '$q' in a $E2E_ARCH client"; continue
            fi
            case "$seen" in *" $name "*) continue ;; esac
            seen="$seen$name "
            install_one "$root" "$label" "$q"
        done <<<"${S_PKGS[$i]}"
    done
}

# ---- essential seeding: debootstrap from the mirror ------------------------------------------------
# serve_tls: the same tree over HTTPS on 127.0.0.1:$TLS_PORT in the namespace (the README puts the
# mirror behind an HTTPS Ingress; debootstrap then also needs ca-certificates from it), with a
# throwaway CA that only this run's wget trusts (WGETRC).
serve_tls() {
    local tls=$WORK/tls
    mkdir -p "$tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=mini-mirror e2e CA"         -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1"         -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$tls/ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
        -days 2 -extfile "$tls/ext" -out "$tls/server.pem" 2>/dev/null
    local conf
    conf=$(render_nginx_conf "$MIRROR" "127.0.0.1:$TLS_PORT" "$WORK/nginx-tls")
    sed -i "s#listen 127.0.0.1:$TLS_PORT;#listen 127.0.0.1:$TLS_PORT ssl; ssl_certificate $tls/server.pem; ssl_certificate_key $tls/server.key;#" "$conf"
    in_netns nginx -c "$conf" -e stderr -g 'daemon off;' >"$WORK/nginx-tls/access.log" 2>"$WORK/nginx-tls/error.log" &
    NGINX_PID_tls=$!
    printf 'ca_certificate = %s\n' "$tls/ca.pem" >"$tls/wgetrc"
    for _ in $(seq 100); do
        in_netns curl -fsS -m 2 --cacert "$tls/ca.pem" -o /dev/null "https://127.0.0.1:$TLS_PORT/healthz" 2>/dev/null && {
            pass "ok serve https://127.0.0.1:$TLS_PORT in netns $E2E_NETNS (test CA)"; return 0; }
        sleep 0.1
    done
    fail "serve over https: nginx did not answer ($(tail -n 3 "$WORK/nginx-tls/error.log" | tr '\n' ' '))"
    return 1
}
bootstrap_one() {
    local i=$1
    local p=${S_PREFIX[$i]} d=${S_DIST[$i]} rel=${S_CLIENT[$i]}
    local target=$WORK/bootstrap-$i label=bootstrap-${p//\//_}-$d
    local comps; comps=$(tr ' ' ',' <<<"${S_COMPS[$i]}")
    local rc=0
    # Over https: debootstrap then adds ca-certificates, which the mirror must hold.
    local url="https://127.0.0.1:$TLS_PORT/$p"
    WGETRC=$WORK/tls/wgetrc in_netns unshare --mount --fork timeout 1800 debootstrap --variant=minbase \
        --keyring="$MIRROR/$p/mini-mirror-archive-keyring.gpg" --components="$comps" \
        "$d" "$target" "$url" "$(debootstrap_script_for "$rel")" \
        >"$WORK/logs/$label.log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "debootstrap --variant=minbase $d from $url: exit $rc: $(grep -E '^(E|W):|Couldn.t|Failed|Invalid|unmet|not found' "$WORK/logs/$label.log" | head -n 5 | tr '\n' '|' | sed -e 's/|$//' -e 's/|/ | /g')"
        return 0
    fi
    if [ -e "$target/usr/sbin/update-ca-certificates" ]; then
        pass "ok debootstrap --variant=minbase $d from $url (ca-certificates installed)"
    else
        fail "debootstrap from $url: ca-certificates is not in the new system"
    fi
    setup_apt "$target" "$i"
    apt_update "$target" "$label" || true
    install_all "$target" "$label" "$i"
}

ensure_client() { client_tarball "$1" >/dev/null; }

# ---- main -------------------------------------------------------------------------------------------
main() {
    phase "tools" ensure_tools
    read_sources
    if [ -z "$MIRROR" ]; then
        find_binary
        phase "build mirror" build_mirror || { echo "$PASSED passed, $FAILED failed"; print_phases; exit 1; }
    else
        [ -d "$MIRROR" ] || die "no such directory: $MIRROR"
        log "testing the existing mirror $MIRROR"
    fi
    log "mirror: $(du -sh "$MIRROR" | cut -f1), $(find "$MIRROR" -name '*.deb' | wc -l) .deb files"
    phase "check signatures" check_output
    # Make sure the client caches exist before the clock of the offline part starts.
    local rel
    for rel in $(printf '%s\n' "${S_CLIENT[@]}" | awk '!seen[$0]++'); do
        phase "client cache $rel" ensure_client "$rel"
    done
    phase "serve in netns" serve_mirror
    for rel in $(printf '%s\n' "${S_CLIENT[@]}" | awk '!seen[$0]++'); do
        local idx=() i
        for i in "${!S_DIR[@]}"; do [ "${S_CLIENT[$i]}" = "$rel" ] && idx+=("$i"); done
        test_client "$rel" "${idx[@]}"
    done
    if [ "$ESSENTIAL" = 1 ]; then
        phase "serve over https" serve_tls || true
        local any=0 i
        for i in "${!S_DIR[@]}"; do
            [ "${S_ESSENTIAL[$i]}" = 1 ] || continue
            any=1
            phase "essential bootstrap ${S_PREFIX[$i]} ${S_DIST[$i]}" bootstrap_one "$i"
        done
        [ "$any" = 1 ] || fail "essential bootstrap: no source has 'essential = true' in settings.toml"
    fi
    print_phases
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
main
