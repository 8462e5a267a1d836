#!/usr/bin/env bash
# Checks of the Helm chart charts/mini-mirror, with Helm's own code and no cluster:
#
#   * `helm lint --strict` (Helm's Go SDK via the PyPI package helm-python-sdk; values.schema.json
#     included) with the defaults and with tests/chart/values-all.yaml (every optional part on);
#   * `helm template` of both (install --dry-run=client + the test hooks), checked for what the
#     chart promises (security context, probes, spread, ...), validated with
#     `kubernetes-validate --strict` against several Kubernetes versions, and yamllint'ed;
#   * values files with a wrong type / unknown keys / a bad enum must be rejected by the schema;
#   * the chart's `helm test` itself: the test Pod's script and sources are taken out of the
#     rendered manifest and run -- with the Pod's command, environment, user and read-only root --
#     in a clean Debian bookworm chroot, inside a network namespace that has nothing but loopback,
#     against a small hermetic mirror (tests/e2e/hermetic/fixture.sh + mini-mirror) served by nginx
#     with the chart's nginx configurations. It must pass, and must FAIL when the served keyring
#     is wrong, is missing, does not match the pinned SHA256, or a component is not in the mirror.
#
#   sudo tests/chart/run.sh [--keep] [--no-apt]
#
# Self-installing on a fresh Debian 12 (root): apt-get installs yamllint, shellcheck,
# python3-venv and what tests/e2e/lib.sh needs; pip installs helm-python-sdk and
# kubernetes-validate into $MINI_MIRROR_CHART_VENV (default /var/cache/mini-mirror-e2e/chart-venv).
# The bookworm client rootfs is cached by the e2e helpers in $MINI_MIRROR_E2E_CACHE (made once
# with debootstrap from the Debian archive); the mini-mirror binary is $MINI_MIRROR_BIN or
# target/release/mini-mirror (built with cargo when missing).
# Bounded in time: $MINI_MIRROR_CHART_TIMEOUT seconds in all (default 1800).
#
# Output: one line per check (`ok NAME` or `FAILED NAME`, details on stderr), then
# `N passed, M failed`. Exit status 0 only when nothing failed.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail

if [ -z "${MM_CHART_BOUNDED:-}" ]; then
    export MM_CHART_BOUNDED=1
    exec timeout -k 20 "${MINI_MIRROR_CHART_TIMEOUT:-1800}" bash "$0" "$@"
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../e2e/lib.sh
. "$HERE/../e2e/lib.sh"
# shellcheck source=../e2e/hermetic/fixture.sh
. "$HERE/../e2e/hermetic/fixture.sh"

CHART=$REPO_ROOT/charts/mini-mirror
TOOL=$HERE/helmtool.py
VENV=${MINI_MIRROR_CHART_VENV:-$E2E_CACHE/chart-venv}
# Versions known to work; override to try newer ones.
PIP_PACKAGES=${MINI_MIRROR_CHART_PIP:-"helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 PyYAML==6.0.3"}
KUBE_VERSIONS=${MINI_MIRROR_CHART_KUBE_VERSIONS:-}   # default: 1.25.0 (the chart's minimum), 1.28.0, newest bundled

KEEP=0 APT=1
for a in "$@"; do
    case "$a" in
        --keep) KEEP=1 ;;
        --no-apt) APT=0 ;;
        -h|--help) sed -n '2,/^set -uo/{/^set -uo/d;/^# shellcheck/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "unknown option $a" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || die "run as root (apt-get, network namespace, chroot)"

WORK=$(mktemp -d /var/tmp/mm-chart.XXXXXX)
chmod 0755 "$WORK"
mkdir -p "$WORK/logs"
NGINX_PID_upstream='' NGINX_PID_mirror='' NGINX_PID_override=''
DONE=0
cleanup() {
    local rc=$?
    set +e
    if [ "$DONE" = 0 ]; then  # aborted (die, timeout, ^C): still end with the summary line
        echo "FAILED aborted (exit $rc)"
        echo "${PASSED:-0} passed, $(( ${FAILED:-0} + 1 )) failed"
        [ "$rc" -ne 0 ] || rc=1
    fi
    stop_pid "$NGINX_PID_upstream"; stop_pid "$NGINX_PID_mirror"; stop_pid "$NGINX_PID_override"
    netns_delete
    remove_workdir "$WORK" "$KEEP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASSED=0 FAILED=0
# check NAME CMD...: one line per check; the command's output goes to a log, shown on failure.
check() {
    local name=$1; shift
    local logf; logf=$WORK/logs/$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_' | cut -c1-100).log
    if "$@" >"$logf" 2>&1; then
        PASSED=$((PASSED + 1)); echo "ok $name"
    else
        FAILED=$((FAILED + 1)); echo "FAILED $name"
        tail -n 25 "$logf" | sed -e 's/^/    | /' >&2
    fi
}
# fails_with REGEX CMD...: CMD must fail, and its output must match REGEX (the right reason).
fails_with() {
    local re=$1; shift
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    printf '%s\n' "$out"
    if [ "$rc" -eq 0 ]; then echo ">> expected a failure, got exit 0"; return 1; fi
    if ! grep -Eq -- "$re" <<<"$out"; then echo ">> failed (exit $rc), but not with /$re/"; return 1; fi
    echo ">> failed as expected (exit $rc, /$re/)"
}

# ---- tools ---------------------------------------------------------------------------------------
setup_tools() {
    ensure_tools
    local want=() pair
    for pair in yamllint:yamllint shellcheck:shellcheck; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || want+=("${pair#*:}")
    done
    /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || want+=(python3-venv)
    [ ${#want[@]} -eq 0 ] || { log "installing ${want[*]}"; host_apt_install "${want[@]}"; }
    local stamp=$VENV/.mini-mirror-chart-packages
    if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$PIP_PACKAGES" ]; then
        log "creating $VENV ($PIP_PACKAGES)"
        rm -rf "$VENV"
        /usr/bin/python3 -m venv "$VENV" || die "python3 -m venv failed"
        # shellcheck disable=SC2086
        timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check $PIP_PACKAGES >&2 \
            || die "pip install $PIP_PACKAGES failed"
        echo "$PIP_PACKAGES" >"$stamp"
    fi
    PY=$VENV/bin/python
    KV=$VENV/bin/kubernetes-validate
    "$PY" -c 'import helm_python as h; print("helm SDK", h.helm_sdk_version())' >&2 || die "helm_python does not load"
    if [ -z "$KUBE_VERSIONS" ]; then
        local newest
        newest=$("$PY" - <<'EOF'
import os, re, kubernetes_validate
d = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
vs = [tuple(map(int, m.groups())) for m in (re.match(r"^v(\d+)\.(\d+)\.(\d+)-local-strict$", n) for n in os.listdir(d)) if m]
print("%d.%d.%d" % max(vs))
EOF
) || die "cannot list kubernetes-validate's schemas"
        KUBE_VERSIONS="1.25.0 1.28.0 $newest"
    fi
}
setup_tools

# ---- static checks of the chart ----------------------------------------------------------------------
check "chart: files/nginx.conf is the project's nginx/mini-mirror.conf" \
    cmp "$CHART/files/nginx.conf" "$REPO_ROOT/nginx/mini-mirror.conf"
cargo_version=$(awk -F'"' '/^version *=/ {print $2; exit}' "$REPO_ROOT/Cargo.toml")
check "chart: appVersion is the Cargo.toml version ($cargo_version)" \
    grep -qx "appVersion: \"$cargo_version\"" "$CHART/Chart.yaml"
check "shellcheck files/apt-check.sh (the helm test script)" shellcheck -s sh "$CHART/files/apt-check.sh"

check "helm lint --strict (default values)" "$PY" "$TOOL" lint "$CHART"
check "helm lint --strict (values-all.yaml)" "$PY" "$TOOL" lint "$CHART" "$HERE/values-all.yaml"

R_DEF=$WORK/render-default R_ALL=$WORK/render-all
check "helm template (default values)" "$PY" "$TOOL" render "$CHART" "" "$R_DEF"
check "helm template (values-all.yaml)" "$PY" "$TOOL" render "$CHART" "$HERE/values-all.yaml" "$R_ALL"
check "rendered defaults: 2 replicas, spread, hardened pod, probes, ClusterIP, NOTES" \
    "$PY" "$TOOL" assert default "$R_DEF"
check "rendered values-all: ingress+TLS, NodePort, PDB, HPA v2, nginx.conf override, digest, NOTES" \
    "$PY" "$TOOL" assert all "$R_ALL"

# The pods roll when the nginx configuration changes: the checksum annotation follows the content.
checksum_rolls() {
    local a b
    "$PY" "$TOOL" render "$CHART" - "$WORK/ck1" <<<'nginxConfig: {enabled: true, content: "events {}\n"}' || return 1
    "$PY" "$TOOL" render "$CHART" - "$WORK/ck2" <<<'nginxConfig: {enabled: true, content: "events {}\nhttp {}\n"}' || return 1
    a=$(grep 'checksum/nginx-config:' "$WORK/ck1/manifest.yaml") b=$(grep 'checksum/nginx-config:' "$WORK/ck2/manifest.yaml")
    echo "$a"; echo "$b"
    [ -n "$a" ] && [ "$a" != "$b" ]
}
check "nginx config change changes the pod template (checksum/nginx-config)" checksum_rolls

for v in $KUBE_VERSIONS; do
    check "kubernetes-validate --strict -k $v (default values)" "$KV" --strict -k "$v" "$R_DEF/manifest.yaml"
    check "kubernetes-validate --strict -k $v (values-all.yaml)" "$KV" --strict -k "$v" "$R_ALL/manifest.yaml"
done
# The validator really rejects what is wrong: an unknown field in the Deployment's pod spec.
bad_manifest() {
    sed -e '0,/^      containers:$/s//      hostnetwork: true\n      containers:/' "$R_DEF/manifest.yaml" >"$WORK/bad.yaml"
    grep -q 'hostnetwork: true' "$WORK/bad.yaml" || { echo "could not inject the field"; return 1; }
    fails_with 'hostnetwork' "$KV" --strict -k "${KUBE_VERSIONS##* }" "$WORK/bad.yaml"
}
check "kubernetes-validate --strict rejects an unknown field (control)" bad_manifest

check "yamllint --strict values.yaml, Chart.yaml, tests/chart/values-*.yaml" \
    yamllint -s -c "$HERE/yamllint.yaml" "$CHART/values.yaml" "$CHART/Chart.yaml" "$HERE"/values-*.yaml
check "yamllint --strict rendered manifests" \
    yamllint -s -c "$HERE/yamllint.yaml" "$R_DEF/manifest.yaml" "$R_ALL/manifest.yaml"

for f in "$HERE"/values-bad-*.yaml; do
    check "schema rejects $(basename "$f") ($(sed -n 's/^# Must be rejected by values.schema.json: //p' "$f" | tr -d '.'))" \
        "$PY" "$TOOL" reject "$CHART" "$f"
done

# ---- the chart's helm test, run against a real mirror ------------------------------------------------
find_binary() {
    BIN=${MINI_MIRROR_BIN:-$REPO_ROOT/target/release/mini-mirror}
    if [ ! -x "$BIN" ] && [ -z "${MINI_MIRROR_BIN:-}" ]; then
        command -v cargo >/dev/null || { echo "no $BIN and no cargo"; return 1; }
        # cargo waits for the build directory lock when another build is running.
        (cd "$REPO_ROOT" && timeout 1500 cargo build --release --locked) || return 1
    fi
    [ -x "$BIN" ]
}

build_fixture_mirror() {
    FX=$WORK/fixture
    mkdir -p "$FX"; chmod 0755 "$FX"
    fixture_make "$FX" || return 1
    fixture_serve "$FX" || return 1
    fixture_sources "$FX" || return 1
    timeout 300 "$BIN" build --sources "$FX/sources" --output "$FX/out" --cache "$FX/cache" \
        --state-dir "$FX/state" -q || return 1
    stop_pid "$NGINX_PID_upstream"; NGINX_PID_upstream=''
    gpgv --keyring "$FX/out/fixture/mini-mirror-archive-keyring.gpg" "$FX/out/fixture/dists/greet-stable/InRelease"
}

# Trees served by one nginx, one per case: $WWW/<case>/fixture/...
make_cases() {
    WWW=$WORK/www
    mkdir -p "$WWW"
    local c
    for c in good wrongkey nokey; do
        mkdir -p "$WWW/$c"
        cp -a "$FX/out/fixture" "$WWW/$c/fixture"
    done
    # The wrong key: the (valid, but different) key of the fixture's upstream.
    cp "$FX/upstream-key.gpg" "$WWW/wrongkey/fixture/mini-mirror-archive-keyring.gpg"
    rm -f "$WWW/nokey/fixture/mini-mirror-archive-keyring.gpg"
    chmod -R a+rX "$WWW"
    ! cmp -s "$WWW/good/fixture/mini-mirror-archive-keyring.gpg" "$WWW/wrongkey/fixture/mini-mirror-archive-keyring.gpg"
}

# The chart rendered for the fixture: the sources and the pinned keyring of the built mirror.
render_for_fixture() {
    KEY_SHA=$(sha256sum "$FX/out/fixture/mini-mirror-archive-keyring.gpg" | cut -d' ' -f1)
    cat >"$WORK/values-fixture.yaml" <<EOF
mirror:
  sources:
    - {prefix: fixture, dist: greet-stable, components: [main, contrib]}
    - {prefix: fixture, dist: greet-updates, components: [main]}
  keyringSha256: $KEY_SHA
EOF
    "$PY" "$TOOL" render "$CHART" "$WORK/values-fixture.yaml" "$WORK/render-fixture" || return 1
    "$PY" "$TOOL" extract-test "$WORK/render-fixture/manifest.yaml" "$WORK/testpod" || return 1
    # shellcheck source=/dev/null
    . "$WORK/testpod/pod.env"
    cat "$WORK/testpod/pod.env"
    cat "$WORK/testpod/files/apt-check/sources"
}

# What the Pod runs is the chart's script, on the service, with the values' sources.
test_pod_shape() {
    local why=()
    cmp -s "$WORK/testpod/files/apt-check/apt-check.sh" "$CHART/files/apt-check.sh" || why+=("script differs from files/apt-check.sh")
    printf '%s\n' "${POD_ENV[@]}" | grep -qx 'MIRROR_URL=http://ci-mini-mirror.default.svc' || why+=("MIRROR_URL is not the service")
    printf '%s\n' "${POD_ENV[@]}" | grep -qx "MIRROR_KEYRING_SHA256=$KEY_SHA" || why+=("keyring SHA256 not passed")
    [ "$(cat "$WORK/testpod/files/apt-check/sources")" = "$(printf 'fixture greet-stable main contrib\nfixture greet-updates main')" ] \
        || why+=("sources are not mirror.sources")
    [ "${POD_COMMAND[*]}" = "sh /apt-check/apt-check.sh" ] || why+=("command ${POD_COMMAND[*]}")
    [ "$POD_IMAGE" = debian:bookworm-slim ] || why+=("image $POD_IMAGE")
    [ "$POD_RUN_AS_USER" != 0 ] && [ "$POD_READ_ONLY_ROOT" = 1 ] || why+=("not non-root with a read-only root")
    grep -q '"helm.sh/hook": "test"' <<<"$POD_HOOK_ANNOTATIONS" || why+=("not a helm test hook")
    [ ${#why[@]} -eq 0 ] || { printf '%s\n' "${why[@]}"; return 1; }
}

serve_cases() {
    netns_create
    local links; links=$(in_netns ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
    [ "$links" = "lo " ] || { echo "namespace has more than loopback: $links"; return 1; }
    # The chart's default configuration (= the image's nginx.conf), and values-all's override.
    E2E_NGINX_CONF=$CHART/files/nginx.conf start_nginx mirror "$WWW" 127.0.0.1:8080 "$WORK/nginx-mirror" netns || return 1
    "$PY" - "$R_ALL/manifest.yaml" "$WORK/override.conf" <<'EOF' || return 1
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cm = [d for d in docs if d["kind"] == "ConfigMap" and "nginx.conf" in d.get("data", {})]
open(sys.argv[2], "w").write(cm[0]["data"]["nginx.conf"])
EOF
    E2E_NGINX_CONF=$WORK/override.conf start_nginx override "$WWW" 127.0.0.1:8081 "$WORK/nginx-override" netns || return 1
    in_netns curl -fsS -m 5 http://127.0.0.1:8080/healthz && in_netns curl -fsS -m 5 http://127.0.0.1:8081/healthz
}

# run_test_pod [--uid N] MIRROR_URL [VAR=VALUE...]: the test Pod's command, with its environment
# (MIRROR_URL and the given variables replaced), its ConfigMap mounts, its user, a read-only root
# and a fresh tmpfs /tmp, in the client chroot, in the loopback-only namespace.
run_test_pod() {
    local uid=$POD_RUN_AS_USER gid=$POD_RUN_AS_GROUP
    if [ "$1" = --uid ]; then uid=$2 gid=$2; shift 2; fi
    local url=$1; shift
    local env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp)
    local e o skip
    for e in "${POD_ENV[@]}"; do
        skip=0
        [ "${e%%=*}" = MIRROR_URL ] && skip=1
        for o in "$@"; do [ "${e%%=*}" = "${o%%=*}" ] && skip=1; done
        [ "$skip" = 1 ] || env+=("$e")
    done
    env+=("MIRROR_URL=$url" "$@")
    local binds=() m
    for m in "${POD_MOUNTS[@]}"; do
        mkdir -p "$CLIENT${m#*=}"
        binds+=("$WORK/testpod/files/${m%%=*}" "${m#*=}")
    done
    # shellcheck disable=SC2016 # expanded by the inner sh
    timeout 180 ip netns exec "$E2E_NETNS" unshare --mount --pid --fork --kill-child sh -c '
        set -e
        root=$1 ro=$2 uid=$3 gid=$4 nb=$5; shift 5
        mount --make-rprivate /
        mount --bind "$root" "$root"
        while [ "$nb" -gt 0 ]; do mount --bind "$1" "$root$2"; mount -o remount,bind,ro "$root$2"; shift 2; nb=$((nb - 1)); done
        [ "$ro" != 1 ] || mount -o remount,bind,ro "$root"
        mount -t tmpfs -o mode=1777,size=256m tmpfs "$root/tmp"
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        exec chroot "$root" setpriv --reuid "$uid" --regid "$gid" --clear-groups "$@"
    ' sh "$CLIENT" "$POD_READ_ONLY_ROOT" "$uid" "$gid" "$(( ${#binds[@]} / 2 ))" "${binds[@]}" \
        env -i "${env[@]}" "${POD_COMMAND[@]}"
}
passes() { run_test_pod "$@" && echo ">> passed"; }

if [ "$APT" = 1 ]; then
    check "mini-mirror binary (target/release or cargo build --release)" find_binary
    check "hermetic fixture mirror built and signed (fixture.sh + mini-mirror build; gpgv)" build_fixture_mirror
    check "cases: good tree, wrong keyring, missing keyring" make_cases
    check "helm template for the fixture, test Pod extracted from the manifest" render_for_fixture
    # shellcheck source=/dev/null
    [ -s "$WORK/testpod/pod.env" ] && . "$WORK/testpod/pod.env"
    check "test Pod: chart's script + sources on the service, non-root, read-only root, test hook" test_pod_shape
    CLIENT=$WORK/client
    check "clean bookworm client chroot (cached debootstrap minbase)" unpack_client bookworm "$CLIENT"
    check "mirror served in a loopback-only netns (chart's nginx.conf :8080, values-all override :8081)" serve_cases

    if [ -n "${POD_COMMAND+x}" ] && [ -d "$CLIENT/usr" ] && [ -n "$E2E_NETNS" ]; then
        G=http://127.0.0.1:8080/good
        check "helm test script passes (pod user $POD_RUN_AS_USER, read-only root, pinned keyring SHA256)" \
            passes "$G"
        check "helm test script passes as root (node use; apt's _apt sandbox)" passes --uid 0 "$G"
        check "helm test script passes without a pinned SHA256 (signature check only)" \
            passes "$G" MIRROR_KEYRING_SHA256=
        check "helm test script passes through the values-all nginx.conf override" \
            passes http://127.0.0.1:8081/good
        check "helm test script FAILS when the served keyring is wrong (apt: NO_PUBKEY / not signed)" \
            fails_with 'NO_PUBKEY|not signed|signatures couldn.t be verified|is not signed' \
            run_test_pod http://127.0.0.1:8080/wrongkey MIRROR_KEYRING_SHA256=
        check "helm test script FAILS when the keyring does not match the pinned SHA256" \
            fails_with 'expected [0-9a-f]{64}' run_test_pod http://127.0.0.1:8080/wrongkey
        check "helm test script FAILS when the keyring is missing (404)" \
            fails_with 'could not download the keyring' run_test_pod http://127.0.0.1:8080/nokey
        check "helm test script FAILS when a component is not in the mirror" \
            fails_with 'apt-get update (exited|printed)' run_test_pod "$G" \
            MIRROR_SOURCES_FILE= "MIRROR_SOURCES=fixture greet-stable main no-such-component"
        check "the client chroot is unchanged (no sources, keys or lists written)" \
            sh -c "! find '$CLIENT/etc/apt' '$CLIENT/var/lib/apt/lists' -newer '$WORK/testpod/pod.env' | grep ."
    else
        FAILED=$((FAILED + 1)); echo "FAILED helm test script runs (setup above failed)"
    fi
fi

DONE=1
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
