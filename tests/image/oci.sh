# The engine-less OCI path (sourced by tests/image/run.sh, after its main build): `mini-mirror
# image` pushes to Debian's docker-registry on 127.0.0.1 with htpasswd auth and TLS from a test CA;
# skopeo reads it back; podman runs it in the loopback-only netns and the real apt installs from
# it; a one-package update uploads a small fraction of the first push (measured in the registry's
# blob storage); a tampered blob fails `pull` with nothing written; export --since + import into a
# second registry give a pullable, apt-installable mirror; build.sh CONTAINER_TOOL=none.
# shellcheck shell=bash

OT=   # set by oci_setup: $WORK/oci
OCI_USER=mmpush OCI_PASS="mm-registry-pass-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

oci_ca() {
    mkdir -p "$OT/tls" "$OT/certs"
    local t=$OT/tls
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mini-mirror test CA" \
        -keyout "$t/ca.key" -out "$t/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$t/ext"
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
        -days 2 -extfile "$t/ext" -out "$t/server.crt" 2>/dev/null
    cp "$t/ca.crt" "$OT/certs/ca.crt"   # skopeo/podman --cert-dir
    command -v htpasswd >/dev/null || host_apt_install apache2-utils
    htpasswd -Bbn "$OCI_USER" "$OCI_PASS" >"$t/htpasswd"
}

# oci_registry NAME: a TLS + htpasswd registry on 127.0.0.1; sets OCI_PORT_<NAME>, OCI_PID_<NAME>.
oci_registry() {
    local name=$1 port dir=$OT/registry-$1
    port=$(free_port)
    mkdir -p "$dir/data"
    cat >"$dir/config.yml" <<EOC
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
auth:
  htpasswd:
    realm: mini-mirror-test
    path: $OT/tls/htpasswd
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: $OT/tls/server.crt
    key: $OT/tls/server.key
EOC
    env -u REGISTRY_AUTH_FILE "$REGISTRY_BIN" serve "$dir/config.yml" >"$WORK/logs/registry-$name.log" 2>&1 &
    printf -v "OCI_PID_$name" %s "$!"
    OCI_PIDS+=("$!")
    local code
    for _ in $(seq 100); do
        code=$(curl -sS -m 2 --cacert "$OT/tls/ca.crt" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/v2/" 2>/dev/null || true)
        [ "$code" = 401 ] && { printf -v "OCI_PORT_$name" %s "$port"; return 0; }
        sleep 0.1
    done
    cat "$WORK/logs/registry-$name.log" >&2
    die "the TLS registry $name did not start on 127.0.0.1:$port"
}

# Bytes of blob content a registry stores (each uploaded blob once).
registry_bytes() {
    find "$OT/registry-$1/data" -path '*/blobs/sha256/*/data' -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}'
}

mm() { "$BIN" "$@" --cache "$OT/cache" --ca-cert "$OT/tls/ca.crt"; }
mm_nocache() { "$BIN" "$@"; }

oci_setup() {
    OT=$WORK/oci
    [ -f "$CONTAINERS_REGISTRIES_CONF" ] || echo 'unqualified-search-registries = []' >"$CONTAINERS_REGISTRIES_CONF"
    mkdir -p "$OT"
    oci_ca

    oci_registry a
    oci_registry b
    # The base image as an OCI layout (no registry to pull it from here).
    skopeo copy -q "containers-storage:$NGINX_BASE" "oci:$OT/base:nginx" >"$WORK/logs/oci-base.log" 2>&1 \
        || { cat "$WORK/logs/oci-base.log" >&2; die "could not copy the base image into an OCI layout"; }
    # The published tree, built on this machine (the unrelated 2 MB package is requested too,
    # so that the pool has some bulk to cut into layers).
    cp -a "$FX/sources" "$OT/sources"
    echo unrelated-big >>"$OT/sources/fixture/greet/packages.txt"
    "$BIN" build --sources "$OT/sources" --output "$OT/public" --cache "$OT/cache" --state-dir "$OT/state" \
        --sign-key "$KEYDIR/release.key" --passphrase-file "$KEYDIR/passphrase" -q >"$WORK/logs/oci-build1.log" 2>&1 \
        || { cat "$WORK/logs/oci-build1.log" >&2; die "mini-mirror build failed"; }
    A=127.0.0.1:$OCI_PORT_a B=127.0.0.1:$OCI_PORT_b
    printf '{"auths": {"%s": {"auth": "%s"}, "%s": {"auth": "%s"}}}\n' \
        "$A" "$(printf '%s:%s' "$OCI_USER" "$OCI_PASS" | base64 -w0)" \
        "$B" "$(printf '%s:%s' "$OCI_USER" "$OCI_PASS" | base64 -w0)" >"$OT/auth.json"
    echo '{}' >"$OT/noauth.json"
}

oci_push_checks() {
    local out rc=0
    # No credentials, and no trust in the test CA: both refused, naming why.
    out=$(REGISTRY_AUTH_FILE=$OT/noauth.json mm image --tree "$OT/public" --base "oci:$OT/base:nginx" --tag "$A/mirror:v1" 2>&1) && rc=0 || rc=$?
    [ "$rc" -ne 0 ] && grep -q "refused access" <<<"$out" \
        && ok "image without credentials fails: $(grep -o 'refused access[^:]*' <<<"$out" | head -n 1)" \
        || no "image without credentials: exit $rc: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    out=$(REGISTRY_AUTH_FILE=$OT/auth.json "$BIN" image --cache "$OT/cache" --tree "$OT/public" --base "oci:$OT/base:nginx" --tag "$A/mirror:v1" 2>&1) && rc=0 || rc=$?
    [ "$rc" -ne 0 ] && grep -qi "certificate\|tls" <<<"$out" \
        && ok "image against an untrusted CA fails (without --ca-cert)" \
        || no "image without --ca-cert: exit $rc: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    [ "$(registry_bytes a)" = 0 ] && ok "the failed attempts stored nothing in the registry" || no "failed attempts left $(registry_bytes a) bytes"
    export REGISTRY_AUTH_FILE_SAVED=$REGISTRY_AUTH_FILE
    export REGISTRY_AUTH_FILE=$OT/auth.json
    if ! mm image --tree "$OT/public" --base "oci:$OT/base:nginx" --tag "$A/mirror:v1" --layer-size 1024 --json \
            >"$OT/push1.json" 2>"$WORK/logs/oci-push1.err"; then
        tail -n 5 "$WORK/logs/oci-push1.err" >&2; no "mini-mirror image (first push)"; return 1
    fi
    FIRST_PUSH=$(registry_bytes a)
    local base_bytes
    base_bytes=$(skopeo inspect --raw "oci:$OT/base:nginx" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(sum(l["size"] for l in m["layers"]) + m["config"]["size"])')
    FIRST_MIRROR=$((FIRST_PUSH - base_bytes)) BASE_BYTES=$base_bytes
    ok "mini-mirror image pushed $A/mirror:v1 with htpasswd auth over TLS (test CA via --ca-cert): registry stores $FIRST_PUSH blob bytes; $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%d layers, %d pool layers" % (r["layers"], r["pool_layers"]))' "$OT/push1.json")"
    # skopeo reads it back.
    if skopeo inspect --cert-dir "$OT/certs" --authfile "$OT/auth.json" "docker://$A/mirror:v1" >"$OT/inspect1.json" 2>"$WORK/logs/oci-skopeo.err" \
       && python3 - "$OT/inspect1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["Labels"]["io.mini-mirror.image"] == "1", r["Labels"]
assert r["Labels"]["org.opencontainers.image.title"] == "mini-mirror"
assert len(r["Layers"]) >= 4, r["Layers"]
PY
    then ok "skopeo inspect reads $A/mirror:v1 ($(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["Layers"]))' "$OT/inspect1.json") layers, mini-mirror labels)"
    else no "skopeo inspect: $(tr '\n' ' ' <"$WORK/logs/oci-skopeo.err")"; fi
    skopeo copy -q --src-cert-dir "$OT/certs" --authfile "$OT/auth.json" "docker://$A/mirror:v1" "oci:$OT/skopeo-copy:v1" 2>"$WORK/logs/oci-skopeo-copy.err" \
        && ok "skopeo copy docker://$A/mirror:v1 to an OCI layout (every blob digest checked by skopeo)" \
        || no "skopeo copy: $(tr '\n' ' ' <"$WORK/logs/oci-skopeo-copy.err")"
    # digest: the registry's digest; exit 2 for a missing tag.
    local d s
    d=$(mm digest "$A/mirror:v1" 2>/dev/null || true)
    s=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Digest"])' "$OT/inspect1.json")
    [ -n "$d" ] && [ "$d" = "$s" ] && ok "mini-mirror digest prints $d (as skopeo)" || no "digest '$d' vs skopeo '$s'"
    rc=0; mm digest "$A/mirror:missing" >/dev/null 2>&1 || rc=$?
    [ "$rc" = 2 ] && ok "mini-mirror digest of a missing tag exits 2" || no "digest of a missing tag exited $rc"
    # Re-running the same push uploads nothing.
    mm image --tree "$OT/public" --base "oci:$OT/base:nginx" --tag "$A/mirror:v1" --layer-size 1024 --json >"$OT/push1b.json" 2>/dev/null || true
    local again; again=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pushed_bytes"])' "$OT/push1b.json" 2>/dev/null || echo '?')
    [ "$(registry_bytes a)" = "$FIRST_PUSH" ] && [ "$again" = 0 ] && [ "$(mm digest "$A/mirror:v1" 2>/dev/null)" = "$d" ] \
        && ok "a repeated push of the same tree uploads nothing (0 bytes) and makes the same digest" \
        || no "a repeated push grew the registry by $(( $(registry_bytes a) - FIRST_PUSH )) bytes"
}

oci_run_checks() {
    podman container exists "$CONTAINER" 2>/dev/null && podman rm -f -t 2 "$CONTAINER" >/dev/null 2>&1
    if ! podman pull -q --cert-dir "$OT/certs" --authfile "$OT/auth.json" "$A/mirror:v1" >"$WORK/logs/oci-podman-pull.log" 2>&1; then
        no "podman pull $A/mirror:v1: $(tail -n 3 "$WORK/logs/oci-podman-pull.log" | tr '\n' ' ')"; return 1
    fi
    podman run -d --name "$CONTAINER-oci" --network "ns:/run/netns/$E2E_NETNS" "$A/mirror:v1" >/dev/null 2>"$WORK/logs/oci-run.err" \
        || { no "podman run: $(cat "$WORK/logs/oci-run.err")"; return 1; }
    local up=0
    for _ in $(seq 100); do
        in_netns curl -fsS -m 2 -o /dev/null http://127.0.0.1:8080/healthz 2>/dev/null && { up=1; break; }
        sleep 0.1
    done
    [ "$up" = 1 ] || { podman logs "$CONTAINER-oci" >&2; no "the engine-less image does not answer /healthz"; return 1; }
    local cuid st rc=0
    cuid=$(podman exec "$CONTAINER-oci" id -u)
    podman healthcheck run "$CONTAINER-oci" >/dev/null 2>&1 || rc=$?
    st=$(podman inspect -f '{{.State.Health.Status}}' "$CONTAINER-oci" 2>/dev/null || true)
    [ "$cuid" = 101 ] && [ "$rc" = 0 ] && [ "$st" = healthy ] \
        && ok "podman runs the engine-less image in the loopback-only netns: uid $cuid, /healthz, HEALTHCHECK $st" \
        || no "engine-less image: uid '$cuid', healthcheck exit $rc status '$st'"
    oci_apt "$OT/public" "$OT/sources" "engine-less image"
    podman rm -f -t 2 "$CONTAINER-oci" >/dev/null 2>&1
}

# oci_apt TREE SOURCES WHAT: offline.sh against the server on 127.0.0.1:8080 in the netns.
oci_apt() {
    local rc=0 line n=0
    "$E2E_DIR/offline.sh" "$2" --mirror "$1" --netns "$E2E_NETNS" --port 8080 \
        >"$WORK/logs/oci-offline.out" 2>"$WORK/logs/oci-offline.err" || rc=$?
    while IFS= read -r line; do
        case "$line" in
            installed\ *) n=$((n + 1)) ;;
            failed\ *) no "$3: offline: $line" ;;
        esac
    done <"$WORK/logs/oci-offline.out"
    if [ "$rc" = 0 ] && grep -q '^installed hello-app$' "$WORK/logs/oci-offline.out"; then
        ok "$3: the real apt (apt-get update --error-on=any) installs every requested package ($n) from it"
    else
        tail -n 10 "$WORK/logs/oci-offline.err" >&2; no "$3: offline.sh exited $rc"
    fi
}

oci_update_checks() {
    # One package more (greet-docs) in the sources: a new build, a new push.
    echo greet-docs >>"$OT/sources/fixture/greet/packages.txt"
    "$BIN" build --sources "$OT/sources" --output "$OT/public" --cache "$OT/cache" --state-dir "$OT/state" \
        --sign-key "$KEYDIR/release.key" --passphrase-file "$KEYDIR/passphrase" -q >"$WORK/logs/oci-build2.log" 2>&1 \
        || { cat "$WORK/logs/oci-build2.log" >&2; no "the update build failed"; return 1; }
    local before; before=$(registry_bytes a)
    mm image --tree "$OT/public" --base "oci:$OT/base:nginx" --tag "$A/mirror:v2" --layer-size 1024 --json \
        >"$OT/push2.json" 2>"$WORK/logs/oci-push2.err" || { tail -n 5 "$WORK/logs/oci-push2.err" >&2; no "the update push failed"; return 1; }
    UPDATE_PUSH=$(( $(registry_bytes a) - before ))
    local pct mirror_pct
    pct=$(python3 -c "print('%.2f' % (100.0 * $UPDATE_PUSH / $FIRST_PUSH))")
    mirror_pct=$(python3 -c "print('%.1f' % (100.0 * $UPDATE_PUSH / $FIRST_MIRROR))")
    echo "figure: first push $FIRST_PUSH bytes ($FIRST_MIRROR of them the mirror's layers and config, the rest the base image); one-package update $UPDATE_PUSH bytes ($pct% of the first push, $mirror_pct% of its mirror part)"
    python3 -c "import sys; sys.exit(0 if $UPDATE_PUSH * 20 < $FIRST_PUSH else 1)" \
        && ok "a one-package update uploads $UPDATE_PUSH bytes: $pct% of the first push's $FIRST_PUSH (< 5%), counted in the registry's blob storage" \
        || no "the one-package update uploaded $UPDATE_PUSH bytes, $pct% of the first push ($FIRST_PUSH)"
    # Content-stable cut: the 2 MB package's layer is not uploaded again.
    [ "$UPDATE_PUSH" -lt 1000000 ] && ok "the update re-uploads no unchanged pool layer (the 2 MB package's layer kept its digest)" \
        || no "the update uploaded $UPDATE_PUSH bytes: unchanged pool layers were uploaded again"
}

oci_tamper_checks() {
    # Overwrite one byte of the tree layer of v1 in registry a's storage.
    local layer data out rc=0
    layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Layers"][-1])' "$OT/inspect1.json")
    data=$(find "$OT/registry-a/data" -path "*/blobs/sha256/*/${layer#sha256:}/data" | head -n 1)
    [ -f "$data" ] || { no "tamper: no blob file for $layer"; return 1; }
    cp "$data" "$OT/tree-layer.orig"
    printf 'X' | dd of="$data" bs=1 seek=600 conv=notrunc status=none
    mkdir -p "$OT/tampered"
    out=$("$BIN" -q pull "$A/mirror:v1" "$OT/tampered" --keyring "$KEYDIR/public.gpg" --cache "$OT/cache-tamper" --ca-cert "$OT/tls/ca.crt" 2>&1) || rc=$?
    local left; left=$(find "$OT/tampered" -mindepth 1 ! -name .mini-mirror.lock | head -n 3)
    [ "$rc" -ne 0 ] && grep -q "digest mismatch" <<<"$out" && [ -z "$left" ] \
        && ok "pull of a blob tampered in the registry's storage fails ($(grep -o 'blob sha256:[0-9a-f]\{12\}[^ ]* digest mismatch' <<<"$out" | head -n 1)), nothing written in DIR" \
        || no "tampered pull: exit $rc, left '$left': $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    cp "$OT/tree-layer.orig" "$data"
    # The intact image pulls, and verifies with the operator's key; a wrong pin is refused.
    rc=0; out=$("$BIN" -q pull "$A/mirror:v1" "$OT/pulled-a" --keyring "$KEYDIR/public.gpg" --cache "$OT/cache-tamper" --ca-cert "$OT/tls/ca.crt" 2>&1) || rc=$?
    [ "$rc" = 0 ] && ok "pull $A/mirror:v1: $out" || no "pull: exit $rc: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    rc=0; out=$("$BIN" -q pull "$A/mirror:v1" "$OT/pulled-a" --keyring "$KEYDIR/public.gpg" --cache "$OT/cache-tamper" --ca-cert "$OT/tls/ca.crt" 2>&1) || rc=$?
    [ "$rc" -ne 0 ] && grep -q "not empty" <<<"$out" && ok "pull into a non-empty DIR without --force is refused" || no "pull into a non-empty DIR: exit $rc"
    rc=0; out=$("$BIN" -q pull "$A/mirror:v1" "$OT/pinned" --keyring-sha256 "$(printf '0%.0s' $(seq 64))" --cache "$OT/cache-tamper" --ca-cert "$OT/tls/ca.crt" 2>&1) || rc=$?
    [ "$rc" -ne 0 ] && grep -q "pinned" <<<"$out" && ok "pull with a wrong --keyring-sha256 is refused" || no "wrong pin: exit $rc: $(tail -n 1 <<<"$out")"
    local pin; pin=$(sha256sum "$OT/pulled-a/fixture/mini-mirror-archive-keyring.gpg" | cut -d' ' -f1)
    rc=0; "$BIN" -q pull "$A/mirror:v1" "$OT/pinned" --keyring-sha256 "$pin" --force --cache "$OT/cache-tamper" --ca-cert "$OT/tls/ca.crt" >/dev/null 2>&1 || rc=$?
    [ "$rc" = 0 ] && ok "pull with the right --keyring-sha256 verifies the tree with its own keyring" || no "pinned pull exit $rc"
}

oci_bundle_checks() {
    local out rc=0
    mm export "$A/mirror:v1" --to "$OT/v1.tar" >"$OT/export1.txt" 2>"$WORK/logs/oci-export1.err" \
        || { tail -n 3 "$WORK/logs/oci-export1.err" >&2; no "export v1"; return 1; }
    skopeo inspect "oci-archive:$OT/v1.tar" >/dev/null 2>"$WORK/logs/oci-archive.err" \
        && ok "the full bundle is an oci-archive skopeo reads ($(stat -c %s "$OT/v1.tar") bytes)" \
        || no "skopeo inspect oci-archive: $(tr '\n' ' ' <"$WORK/logs/oci-archive.err")"
    mm export "$A/mirror:v2" --to "$OT/v2.tar" --since "$OT/v1.tar" >"$OT/export2.txt" 2>"$WORK/logs/oci-export2.err" \
        || { tail -n 3 "$WORK/logs/oci-export2.err" >&2; no "export --since"; return 1; }
    SINCE_BUNDLE=$(stat -c %s "$OT/v2.tar")
    echo "figure: --since bundle for the one-package update: $SINCE_BUNDLE bytes (full v1 bundle $(stat -c %s "$OT/v1.tar")); $(cat "$OT/export2.txt")"
    # The update bundle alone cannot be imported where v1 never arrived: refused, nothing tagged.
    rc=0; out=$(mm import "$OT/v2.tar" --to "$B/mirror:v2" 2>&1) || rc=$?
    local d2rc=0; mm digest "$B/mirror:v2" >/dev/null 2>&1 || d2rc=$?
    [ "$rc" -ne 0 ] && grep -q "neither in the bundle" <<<"$out" && [ "$d2rc" = 2 ] \
        && ok "importing the --since bundle before its base is refused; no tag was written" \
        || no "import out of order: exit $rc, digest exit $d2rc: $(tail -n 1 <<<"$out")"
    # A truncated bundle is refused.
    head -c $(( $(stat -c %s "$OT/v1.tar") / 2 )) "$OT/v1.tar" >"$OT/truncated.tar"
    rc=0; out=$(mm import "$OT/truncated.tar" --to "$B/mirror:v1" 2>&1) || rc=$?
    [ "$rc" -ne 0 ] && ok "a truncated bundle is refused: $(tail -n 1 <<<"$out" | cut -c1-160)" || no "truncated bundle imported"
    mm import "$OT/v1.tar" --to "$B/mirror:v1" >"$OT/import1.txt" 2>"$WORK/logs/oci-import1.err" \
        && mm import "$OT/v2.tar" --to "$B/mirror:v2" >"$OT/import2.txt" 2>"$WORK/logs/oci-import2.err" \
        && ok "import v1 then the --since bundle into a second registry: $(cat "$OT/import2.txt")" \
        || { no "import into the second registry: $(tail -n 2 "$WORK/logs/oci-import"*.err | tr '\n' ' ')"; return 1; }
    [ "$(mm digest "$B/mirror:v2")" = "$(mm digest "$A/mirror:v2")" ] \
        && ok "the second registry holds v2 under the same digest" || no "v2 digests differ between the registries"
    rc=0; out=$(mm -q pull "$B/mirror:v2" "$OT/pulled-b" --keyring "$KEYDIR/public.gpg" 2>&1) || rc=$?
    [ "$rc" = 0 ] && ok "pull from the second registry: $out" || { no "pull from b: $(tail -n 2 <<<"$out" | tr '\n' ' ')"; return 1; }
    # Served from the pulled tree, apt installs everything, greet-docs (the update) included.
    local port=8080 conf=$OT/nginx-pulled
    mkdir -p "$conf"
    sed -e "s#^\(\s*\)root /srv;#\1root $OT/pulled-b;#" -e "s#/tmp/nginx#$conf/nginx#g" "$REPO_ROOT/nginx/mini-mirror.conf" >"$conf/nginx.conf"
    chmod -R a+rX "$OT/pulled-b"; chmod a+x "$OT" "$WORK"
    in_netns nginx -c "$conf/nginx.conf" -g "daemon off;" >"$WORK/logs/oci-nginx.log" 2>&1 &
    local npid=$!
    for _ in $(seq 50); do in_netns curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break; sleep 0.1; done
    oci_apt "$OT/pulled-b" "$OT/sources" "pulled from the second registry"
    grep -q '^installed greet-docs$' "$WORK/logs/oci-offline.out" && ok "the update's package greet-docs installs from the imported v2" || no "greet-docs not installed from v2"
    kill "$npid" 2>/dev/null; wait "$npid" 2>/dev/null || true
}

oci_build_sh_checks() {
    run_build build-none CONTAINER_TOOL=none MINI_MIRROR_BINARY="$BIN" EXTRA_TAG_INFO=-none \
        BASE_IMAGE_NGINX="oci:$OT/base:nginx" REGISTRY_URI="$A" PUSH=1 EXTRA_CA_CERTS="$OT/tls/ca.crt" \
        RELEASE_SIGN_KEY_PATH="$KEYDIR/release.key" RELEASE_SIGN_KEY_PASSPHRASE="$PASSPHRASE" MIRROR_SOURCE_DIR="$OT/sources"
    if [ "$BUILD_RC" = 0 ] && skopeo inspect --cert-dir "$OT/certs" --authfile "$OT/auth.json" "docker://$BUILD_OUT" 2>/dev/null | grep -q '"io.mini-mirror.image": "1"'; then
        ok "build.sh CONTAINER_TOOL=none (no engine) pushed $BUILD_OUT"
    else
        tail -n 10 "$WORK/logs/build-none.err" >&2; no "build.sh CONTAINER_TOOL=none: exit $BUILD_RC, '$BUILD_OUT'"
    fi
    ! grep -qF -- "$PASSPHRASE" "$WORK/logs/build-none.err" "$WORK/logs/build-none.out" \
        && ok "CONTAINER_TOOL=none: the passphrase is not in build.sh's output" || no "the passphrase is in build.sh's output"
}

oci_main() {
    phase "oci: CA, registries, base layout, tree" oci_setup
    phase "oci: image push, skopeo, digest" oci_push_checks || return 0
    phase "oci: podman run + apt" oci_run_checks
    phase "oci: push cut mid-blob, re-run" oci_resume_checks
    phase "oci: one-package update" oci_update_checks
    phase "oci: tampered blob, pull" oci_tamper_checks
    phase "oci: purge and pulled blobs" oci_purge_checks
    phase "oci: export --since, import, pull, apt" oci_bundle_checks
    phase "oci: --format oci, OCI layout" oci_layout_checks
    phase "oci: build.sh CONTAINER_TOOL=none" oci_build_sh_checks
    export REGISTRY_AUTH_FILE=$REGISTRY_AUTH_FILE_SAVED
}

# An upload cut mid-blob (a forwarder that drops every connection once the base and half of the
# mirror's bytes went through, then refuses more): the push fails, leaves no tag, and the re-run completes it,
# uploading only what had not arrived.
oci_resume_checks() {
    local limit=$((BASE_BYTES + FIRST_MIRROR / 2)) rc=0 out
    python3 "$HERE/cut_proxy.py" "$OT/cut.port" "$OCI_PORT_a" "$limit" 2>"$WORK/logs/cut-proxy.err" &
    local cpid=$!
    for _ in $(seq 50); do [ -s "$OT/cut.port" ] && break; sleep 0.1; done
    local via=127.0.0.1:$(cat "$OT/cut.port")
    # The forwarder's address is another host name: give it the same credentials.
    python3 - "$OT/auth.json" "$A" "$via" <<'PY'
import json, sys
p, a, via = sys.argv[1:]
j = json.load(open(p)); j["auths"][via] = j["auths"][a]; json.dump(j, open(p, "w"))
PY
    out=$(mm image --tree "$OT/public" --base "oci:$OT/base:nginx" --tag "$via/resume:v1" --layer-size 1024 2>&1) || rc=$?
    wait "$cpid" 2>/dev/null || true
    local drc=0; mm digest "$A/resume:v1" >/dev/null 2>&1 || drc=$?
    [ "$rc" -ne 0 ] && [ "$drc" = 2 ] && ok "a push cut mid-blob fails ($(tail -n 1 <<<"$out" | cut -c1-120)) and leaves no tag" \
        || no "cut push: exit $rc, digest exit $drc"
    rc=0
    mm image --tree "$OT/public" --base "oci:$OT/base:nginx" --tag "$A/resume:v1" --layer-size 1024 --json \
        >"$OT/resume.json" 2>"$WORK/logs/oci-resume.err" || rc=$?
    local pushed reused
    pushed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pushed_bytes"])' "$OT/resume.json" 2>/dev/null || echo -1)
    reused=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reused_blobs"])' "$OT/resume.json" 2>/dev/null || echo 0)
    [ "$rc" = 0 ] && [ "$reused" -gt 0 ] && [ "$pushed" -lt "$FIRST_PUSH" ] \
        && ok "the re-run completes the push: $pushed bytes uploaded, $reused blobs already there from the cut run" \
        || no "resume: exit $rc, pushed $pushed, reused $reused: $(tail -n 2 "$WORK/logs/oci-resume.err" | tr '\n' ' ')"
    rc=0; "$BIN" -q pull "$A/resume:v1" "$OT/pulled-resume" --keyring "$KEYDIR/public.gpg" --cache "$OT/cache-resume" --ca-cert "$OT/tls/ca.crt" >/dev/null 2>&1 || rc=$?
    [ "$rc" = 0 ] && ok "the completed push pulls and verifies" || no "pull of the resumed push: exit $rc"
}

# purge keeps the blobs of pulled images, and drops them once the pull record is older than
# --older-than.
oci_purge_checks() {
    local c=$OT/cache-tamper n0 n1 n2
    n0=$(find "$c/blobs" -type f | wc -l)
    find "$c/blobs" -type f -exec touch -d '10 days ago' {} +
    "$BIN" -q purge --cache "$c" --output "$OT/none" --sources "$OT/none" >/dev/null 2>&1
    n1=$(find "$c/blobs" -type f | wc -l)
    find "$c/oci" -name '*.refs' -exec touch -d '10 days ago' {} +
    "$BIN" -q purge --cache "$c" --output "$OT/none" --sources "$OT/none" --older-than 5 >/dev/null 2>&1
    n2=$(find "$c/blobs" -type f | wc -l)
    [ "$n0" -gt 0 ] && [ "$n1" = "$n0" ] && [ "$n2" -lt "$n1" ] \
        && ok "purge keeps the $n0 blobs of pulled images, and removes them ($n2 left) once not pulled for --older-than days" \
        || no "purge: $n0 blobs, $n1 after purge, $n2 after --older-than 5"
}

# --format oci into an OCI layout directory: annotated layers, read by skopeo and by pull.
oci_layout_checks() {
    local rc=0
    mm image --tree "$OT/public" --base "oci:$OT/base:nginx" --tag "oci:$OT/layout:v2" --format oci --layer-size 1024 \
        >/dev/null 2>"$WORK/logs/oci-layout.err" || rc=$?
    if [ "$rc" = 0 ] && skopeo inspect --raw "oci:$OT/layout:v2" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
assert m["annotations"]["io.mini-mirror.image"] == "1"
kinds = [l.get("annotations", {}).get("io.mini-mirror.layer") for l in m["layers"]]
assert "pool" in kinds and kinds[-1] == "tree", kinds
'; then ok "image --format oci into oci:DIR: an OCI manifest with io.mini-mirror.* annotations (skopeo reads it)"
    else no "image --format oci: exit $rc: $(tail -n 2 "$WORK/logs/oci-layout.err" | tr '\n' ' ')"; fi
    rc=0; mm -q pull "oci:$OT/layout:v2" "$OT/pulled-layout" --keyring "$KEYDIR/public.gpg" >/dev/null 2>&1 || rc=$?
    [ "$rc" = 0 ] && diff -r "$OT/pulled-layout/fixture/dists" "$OT/public/fixture/dists" >/dev/null \
        && ok "pull oci:DIR gives back the published dists/ byte for byte" || no "pull from the layout: exit $rc"
}
