#!/usr/bin/env bash
# Build (and optionally push) the mini-mirror container image: the mirror of MIRROR_SOURCE_DIR,
# built and signed at image build time, served by nginx on port 8080 as a non-root user.
#
#   [VAR=value ...] ./build.sh [--help]
#
# Image name: ${REGISTRY_URI}${IMAGE}:${VERSION}-${DISTRO}${EXTRA_TAG_INFO}
#   IMAGE             image name                                   (default: mini-mirror)
#   VERSION           version part of the tag                     (default: latest)
#   DISTRO            distro part of the tag                      (default: bookworm; empty: no "-")
#   REGISTRY_URI      registry prefix, e.g. registry.example.com/team/ (a missing final / is added)
#   EXTRA_TAG_INFO    appended to the tag as is, e.g. -rc1
#
# What goes into the image:
#   MIRROR_SOURCE_DIR            the sources/ tree to mirror (default: the repository's sources/)
#   RELEASE_SIGN_KEY_PATH        the operator's OpenPGP secret key; passed as build secret
#                                id=signkey (never a build arg, never in a layer or the history).
#                                Unset: a throwaway key is generated for this image (warning).
#   RELEASE_SIGN_KEY_PASSPHRASE  its passphrase; written to a private temporary file (umask 077)
#                                and passed as build secret id=signkey_passphrase; never in argv
#   HTTP_PROXY, HTTPS_PROXY, NO_PROXY (either case)
#                                proxies for the build (apt-get, cargo, mini-mirror); passed in
#                                both cases as predefined build args, by name (values stay out of
#                                argv and out of the image history)
#   EXTRA_CA_CERTS               a PEM file of CA certificates to trust during the build (a
#                                TLS-intercepting proxy); build secret id=extra_ca; not in the
#                                final image
#
# Base images and the binary:
#   BASE_IMAGE_NGINX     the final image's base       (default: docker.io/library/nginx:1.27-bookworm)
#   BUILDER_IMAGE        Rust image of the compile stage (default: docker.io/library/rust:1-bookworm)
#   BUILD_BASE_IMAGE     runs mini-mirror during the build (default: docker.io/library/debian:bookworm-slim)
#   MINI_MIRROR_BINARY   a host-built mini-mirror binary: skips the compile stage (BUILDER_IMAGE
#                        is then not needed); it must run on BUILD_BASE_IMAGE (glibc, libnettle8)
#
# Tooling:
#   CONTAINER_TOOL       docker (with buildx), podman, buildah or none; when unset the first that
#                        works, in that order, else none. none: no container engine at all --
#                        mini-mirror builds the tree on this machine and `mini-mirror image` writes
#                        the image (BASE_IMAGE_NGINX read from its registry, or oci:DIR[:TAG]);
#                        registry credentials from REGISTRY_AUTH_FILE / auth.json / docker config
#   OCI_LAYOUT           CONTAINER_TOOL=none without PUSH=1: the OCI layout directory written
#                        (default: ./image-oci), tagged with the image tag
#   PUSH=1               push the image after the build
#   BUILD_NETWORK        network mode of the build's RUN steps (e.g. host); default: the tool's
#   MINI_MIRROR_BUILD_FLAGS  extra `mini-mirror build` flags, e.g. "--jobs 4 -v"
#
# Snapshots (apt --snapshot in the cluster):
#   KEEP_SNAPSHOTS       snapshots per prefix the image carries, the new one included (default 1:
#                        just the current one); more need PREVIOUS_TREE
#   PREVIOUS_TREE        the published tree of the previous build (an output directory, e.g.
#                        copied out of the previous image's /srv): its snapshots are kept
#   BASE_URL             the URL clients reach the image at (http://apt-mirror.svc:8080): the
#                        Releases then say `Snapshots: BASE_URL/<prefix>/snapshots/@SNAPSHOTID@/`
#   BUILD_FLAGS          extra flags for the build command, word-split (e.g. "--no-cache")
#
# The last line on stdout is the image name; progress and the tool's output go to stderr.
# Example:
#   REGISTRY_URI=registry.example.com/infra/ VERSION=1.4 PUSH=1 \
#   RELEASE_SIGN_KEY_PATH=/run/secrets/release.key RELEASE_SIGN_KEY_PASSPHRASE=... ./build.sh
set -euo pipefail
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { printf 'build.sh: %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    '') ;;
    *) usage >&2; die "unknown argument '$1' (build.sh is configured by environment variables)" ;;
esac

# Take the passphrase out of the environment at once: no child process inherits it.
PASSPHRASE_SET=0
if [ -n "${RELEASE_SIGN_KEY_PASSPHRASE+x}" ]; then
    PASSPHRASE_SET=1
    PASSPHRASE=$RELEASE_SIGN_KEY_PASSPHRASE
    export -n RELEASE_SIGN_KEY_PASSPHRASE PASSPHRASE
    unset RELEASE_SIGN_KEY_PASSPHRASE
fi

IMAGE=${IMAGE:-mini-mirror}
VERSION=${VERSION:-latest}
DISTRO=${DISTRO-bookworm}
REGISTRY_URI=${REGISTRY_URI:-}
EXTRA_TAG_INFO=${EXTRA_TAG_INFO:-}
BASE_IMAGE_NGINX=${BASE_IMAGE_NGINX:-docker.io/library/nginx:1.27-bookworm}
BUILDER_IMAGE=${BUILDER_IMAGE:-docker.io/library/rust:1-bookworm}
BUILD_BASE_IMAGE=${BUILD_BASE_IMAGE:-docker.io/library/debian:bookworm-slim}
MINI_MIRROR_BINARY=${MINI_MIRROR_BINARY:-}
PUSH=${PUSH:-0}
BUILD_NETWORK=${BUILD_NETWORK:-}
MINI_MIRROR_BUILD_FLAGS=${MINI_MIRROR_BUILD_FLAGS:-}
KEEP_SNAPSHOTS=${KEEP_SNAPSHOTS:-1}
case "$KEEP_SNAPSHOTS" in ''|*[!0-9]*|0) die "KEEP_SNAPSHOTS must be a number of at least 1, not '$KEEP_SNAPSHOTS'" ;; esac
PREVIOUS_TREE=${PREVIOUS_TREE:-}
[ -z "$PREVIOUS_TREE" ] || [ -d "$PREVIOUS_TREE" ] || die "PREVIOUS_TREE: no such directory: $PREVIOUS_TREE"
BASE_URL=${BASE_URL:-}
case "$BASE_URL" in ''|http://*|https://*) ;; *) die "BASE_URL must be an http:// or https:// URL, not '$BASE_URL'" ;; esac
MINI_MIRROR_BUILD_FLAGS="--keep $KEEP_SNAPSHOTS${BASE_URL:+ --base-url $BASE_URL} $MINI_MIRROR_BUILD_FLAGS"
BUILD_FLAGS=${BUILD_FLAGS:-}

[ -z "$REGISTRY_URI" ] || [ "${REGISTRY_URI%/}" != "$REGISTRY_URI" ] || REGISTRY_URI=$REGISTRY_URI/
TAG="${REGISTRY_URI}${IMAGE}:${VERSION}${DISTRO:+-$DISTRO}${EXTRA_TAG_INFO}"

# ---- container tool --------------------------------------------------------------------------------
docker_ok() { command -v docker >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
if [ -z "${CONTAINER_TOOL:-}" ]; then
    if docker_ok; then CONTAINER_TOOL=docker
    elif command -v podman >/dev/null 2>&1; then CONTAINER_TOOL=podman
    elif command -v buildah >/dev/null 2>&1; then CONTAINER_TOOL=buildah
    else
        say "no container engine found (docker with buildx, podman, buildah): building with 'mini-mirror image' (CONTAINER_TOOL=none)"
        CONTAINER_TOOL=none
    fi
fi
case "$CONTAINER_TOOL" in
    docker)
        command -v docker >/dev/null 2>&1 || die "CONTAINER_TOOL=docker, but there is no docker command"
        docker buildx version >/dev/null 2>&1 \
            || die "CONTAINER_TOOL=docker needs the buildx plugin (build secrets); use podman or buildah otherwise" ;;
    podman|buildah)
        command -v "$CONTAINER_TOOL" >/dev/null 2>&1 || die "CONTAINER_TOOL=$CONTAINER_TOOL, but there is no $CONTAINER_TOOL command" ;;
    none) ;;
    *) die "CONTAINER_TOOL must be docker, podman, buildah or none (got '$CONTAINER_TOOL')" ;;
esac

# ---- inputs ----------------------------------------------------------------------------------------
if [ -n "${MIRROR_SOURCE_DIR:-}" ]; then SOURCES=$MIRROR_SOURCE_DIR; else SOURCES=$REPO/sources; fi
[ -d "$SOURCES" ] || die "MIRROR_SOURCE_DIR: no such directory: $SOURCES"
SOURCES=$(cd "$SOURCES" && pwd -P)
mapfile -t SOURCE_FILES < <(cd "$SOURCES" && find . -mindepth 3 -name source.txt -type f | sed 's#^\./##' | LC_ALL=C sort)
[ ${#SOURCE_FILES[@]} -gt 0 ] || die "MIRROR_SOURCE_DIR $SOURCES has no <prefix>/<name>/source.txt"

KEY=${RELEASE_SIGN_KEY_PATH:-}
if [ -n "$KEY" ]; then
    [ -e "$KEY" ] || die "RELEASE_SIGN_KEY_PATH: no such file: $KEY"
    [ -f "$KEY" ] || die "RELEASE_SIGN_KEY_PATH: not a regular file: $KEY"
    { [ -r "$KEY" ] && head -c 1 "$KEY" >/dev/null 2>&1; } || die "RELEASE_SIGN_KEY_PATH: cannot read $KEY"
    [ -s "$KEY" ] || die "RELEASE_SIGN_KEY_PATH: empty file: $KEY"
    KEY=$(cd "$(dirname "$KEY")" && pwd -P)/$(basename "$KEY")
    case "$KEY" in "$SOURCES"/*)
        die "RELEASE_SIGN_KEY_PATH is inside MIRROR_SOURCE_DIR ($KEY): keep the secret key out of the build context" ;;
    esac
else
    say "WARNING: RELEASE_SIGN_KEY_PATH is not set: the image is signed with a throwaway key generated during the build"
    [ "$PASSPHRASE_SET" = 0 ] || say "WARNING: RELEASE_SIGN_KEY_PASSPHRASE is set but there is no key; ignored"
fi

EXTRA_CA=${EXTRA_CA_CERTS:-}
if [ -n "$EXTRA_CA" ]; then
    [ -f "$EXTRA_CA" ] && [ -r "$EXTRA_CA" ] || die "EXTRA_CA_CERTS: cannot read $EXTRA_CA"
    grep -q -- '-----BEGIN CERTIFICATE-----' "$EXTRA_CA" || die "EXTRA_CA_CERTS: no PEM certificate in $EXTRA_CA"
fi

if [ -n "$MINI_MIRROR_BINARY" ]; then
    if [ ! -f "$MINI_MIRROR_BINARY" ] || [ ! -x "$MINI_MIRROR_BINARY" ]; then
        die "MINI_MIRROR_BINARY: not an executable file: $MINI_MIRROR_BINARY"
    fi
fi

# ---- private temp dir: the build context and the secrets ------------------------------------------
WORK=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/mini-mirror-build.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
SECRETS=$WORK/secrets CTX=$WORK/context
(umask 077 && mkdir "$SECRETS" && : >"$SECRETS/empty")
if [ "$PASSPHRASE_SET" = 1 ] && [ -n "$KEY" ]; then
    # printf is a shell builtin: the passphrase is in no process's argv.
    (umask 077 && printf '%s' "$PASSPHRASE" >"$SECRETS/passphrase")
    PASSFILE=$SECRETS/passphrase
else
    PASSFILE=$SECRETS/empty
fi
unset PASSPHRASE

# The build context holds exactly what the Dockerfile copies.
mkdir -p "$CTX/nginx"
install -m 0644 "$REPO/Dockerfile" "$CTX/Dockerfile"
install -m 0644 "$REPO/nginx/mini-mirror.conf" "$CTX/nginx/mini-mirror.conf"
if [ -n "$MINI_MIRROR_BINARY" ]; then
    mkdir -p "$CTX/prebuilt"
    cp "$MINI_MIRROR_BINARY" "$CTX/prebuilt/mini-mirror"
    chmod 0755 "$CTX/prebuilt/mini-mirror"
else
    install -m 0644 "$REPO/Cargo.toml" "$REPO/Cargo.lock" "$CTX/"
    cp -R "$REPO/src" "$CTX/src"
fi
# Symlinks are followed: the context must be self-contained.
cp -R -L "$SOURCES" "$CTX/sources"
# The previous tree as it is (hard links and the snapshots' pool links kept): the build starts
# from it and keeps its snapshots.
mkdir -p "$CTX/previous"
if [ -n "$PREVIOUS_TREE" ]; then
    cp -a "$PREVIOUS_TREE/." "$CTX/previous/"
    rm -rf "$CTX/previous"/.staging-* "$CTX/previous/.mini-mirror.lock"
fi
chmod -R a+rX "$CTX"

# Key files outside the sources tree (an absolute path such as
# /usr/share/keyrings/debian-archive-keyring.gpg, or a relative one leading out of it) are taken
# from this machine, as `mini-mirror build` here would: copied beside the source.txt (in the staged
# copy only) and referred to by a relative path.
src_prefixes=() src_desc=()
for rel in "${SOURCE_FILES[@]}"; do
    f=$CTX/sources/$rel dir=$(dirname "$rel")
    line=$(grep -v -E '^[[:space:]]*(#|$)' "$f" | head -n 1 || true)
    read -r url key dist comps <<<"$line" || true
    [ -n "${comps:-}" ] || die "$SOURCES/$rel: expected '<upstream_url> <key> <dist> <component>...'"
    case "$key" in
        http://*|https://*) keyfile='' ;;
        /*) keyfile=$key ;;
        *) keyfile=$(realpath -m "$SOURCES/$dir/$key") ;;
    esac
    # An absolute path is rewritten even inside the tree: the tree is elsewhere in the image.
    case "$key:$keyfile" in
        *:|[!/]*:"$SOURCES"/*) ;;
        *)
            if [ -f "$keyfile" ]; then
                local_name="host-key-$(printf '%s' "${keyfile#/}" | tr -c 'A-Za-z0-9._-' '_')"
                install -m 0644 "$keyfile" "$CTX/sources/$dir/$local_name"
                awk -v new="$local_name" '
                    !done && $0 !~ /^[[:space:]]*(#|$)/ { $2 = new; done = 1 } { print }' "$f" >"$f.tmp"
                mv "$f.tmp" "$f"; chmod 0644 "$f"
                say "$rel: key $keyfile taken from this machine"
            else
                say "WARNING: $rel: key $keyfile does not exist here; it must exist in BUILD_BASE_IMAGE"
            fi ;;
    esac
    src_prefixes+=("$(dirname "$dir")")
    # Labels must not carry credentials of the upstream URL.
    clean_url=$(sed -E 's#^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@#\1#' <<<"$url")
    src_desc+=("$dir: $clean_url $dist $comps")
done
MIRROR_PREFIXES=$(printf '%s\n' "${src_prefixes[@]}" | awk '!seen[$0]++' | paste -sd, -)
MIRROR_SOURCES=$(printf '%s\n' "${src_desc[@]}" | paste -sd';' - | sed 's/;/; /g')

# ---- labels ------------------------------------------------------------------------------------------
CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REVISION='' SOURCE_URL=${SOURCE_URL:-}
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    REVISION=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || true)
    [ -z "$REVISION" ] || [ -z "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ] || REVISION=$REVISION-dirty
    [ -n "$SOURCE_URL" ] || SOURCE_URL=$(git -C "$REPO" remote get-url origin 2>/dev/null || true)
fi
SOURCE_URL=$(sed -E 's#^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@#\1#' <<<"$SOURCE_URL")

# ---- no container engine: mini-mirror builds the tree here and writes the image itself -------------
if [ "$CONTAINER_TOOL" = none ]; then
    BIN=${MINI_MIRROR_BINARY:-}
    if [ -z "$BIN" ]; then
        BIN=$(command -v mini-mirror || true)
        [ -n "$BIN" ] || BIN=$REPO/target/release/mini-mirror
        if [ ! -x "$BIN" ] && command -v cargo >/dev/null 2>&1; then
            say "compiling mini-mirror (cargo build --release --locked)"
            (cd "$REPO" && cargo build --release --locked >&2) || die "cargo build failed"
        fi
    fi
    [ -x "$BIN" ] || die "CONTAINER_TOOL=none needs a mini-mirror binary: set MINI_MIRROR_BINARY, put mini-mirror on PATH, or install cargo"
    OUT=$WORK/out
    mkdir -p "$OUT"
    [ -z "$PREVIOUS_TREE" ] || cp -a "$CTX/previous/." "$OUT/"
    key_args=()
    if [ -n "$KEY" ]; then
        key_args=(--sign-key "$KEY")
        [ "$PASSFILE" = "$SECRETS/empty" ] || key_args+=(--passphrase-file "$PASSFILE")
    fi
    # shellcheck disable=SC2086 # MINI_MIRROR_BUILD_FLAGS is a list of flags
    "$BIN" build --sources "$CTX/sources" --output "$OUT" --state-dir "$WORK/state" \
        $MINI_MIRROR_BUILD_FLAGS "${key_args[@]}" >&2 || die "mini-mirror build failed"
        if [ "$PUSH" = 1 ]; then DEST=$TAG
    else DEST=oci:${OCI_LAYOUT:-$REPO/image-oci}:${TAG##*:}; fi
    ca_args=()
    [ -z "$EXTRA_CA" ] || ca_args=(--ca-cert "$EXTRA_CA")
    "$BIN" image --tree "$OUT" --base "$BASE_IMAGE_NGINX" --tag "$DEST" "${ca_args[@]}" \
        --label "org.opencontainers.image.version=$VERSION" \
        --label "org.opencontainers.image.revision=$REVISION" \
        --label "org.opencontainers.image.source=$SOURCE_URL" \
        --label "io.mini-mirror.sources=$MIRROR_SOURCES" >&2 || die "mini-mirror image failed"
    [ "$PUSH" = 1 ] || say "wrote the image to $DEST (PUSH=1 pushes it to the registry instead)"
    echo "$TAG"
    exit 0
fi

# ---- the build ---------------------------------------------------------------------------------------
args=(
    -f "$CTX/Dockerfile" -t "$TAG"
    --secret "id=signkey,src=${KEY:-$SECRETS/empty}"
    --secret "id=signkey_passphrase,src=$PASSFILE"
    --secret "id=extra_ca,src=${EXTRA_CA:-$SECRETS/empty}"
    --build-arg "BASE_IMAGE=$BASE_IMAGE_NGINX"
    --build-arg "BUILDER_IMAGE=$BUILDER_IMAGE"
    --build-arg "BUILD_BASE_IMAGE=$BUILD_BASE_IMAGE"
    --build-arg "MIRROR_SOURCE_DIR=sources"
    --build-arg "MIRROR_BUILD_ID=$CREATED-$$-$RANDOM"
    --build-arg "MINI_MIRROR_BUILD_FLAGS=$MINI_MIRROR_BUILD_FLAGS"
    --build-arg "VERSION=$VERSION"
    --build-arg "CREATED=$CREATED"
    --build-arg "REVISION=$REVISION"
    --build-arg "SOURCE_URL=$SOURCE_URL"
    --build-arg "MIRROR_PREFIXES=$MIRROR_PREFIXES"
    --build-arg "MIRROR_SOURCES=$MIRROR_SOURCES"
)
if [ -n "$MINI_MIRROR_BINARY" ]; then
    args+=(--build-arg BINARY_FROM=prebuilt --build-arg PREBUILT_BINARY=prebuilt/mini-mirror)
else
    args+=(--build-arg BINARY_FROM=compile)
fi
# Proxies, both cases, passed by name: the tool reads the values from its environment.
for v in HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    lc=$(tr '[:upper:]' '[:lower:]' <<<"$v")
    val=${!v:-${!lc:-}}
    [ -n "$val" ] || continue
    export "$v=$val" "$lc=$val"
    args+=(--build-arg "$v" --build-arg "$lc")
done
[ -z "$BUILD_NETWORK" ] || args+=(--network "$BUILD_NETWORK")
# shellcheck disable=SC2206
extra=($BUILD_FLAGS)

say "building $TAG with $CONTAINER_TOOL (sources: $SOURCES; prefixes: $MIRROR_PREFIXES; binary: ${MINI_MIRROR_BINARY:-compiled in $BUILDER_IMAGE})"
case "$CONTAINER_TOOL" in
    docker)  docker buildx build --load "${args[@]}" "${extra[@]}" "$CTX" >&2 ;;
    # --format docker: the OCI image format has no HEALTHCHECK.
    podman)  podman build --format docker --layers "${args[@]}" "${extra[@]}" "$CTX" >&2 ;;
    buildah) buildah bud --format docker --layers "${args[@]}" "${extra[@]}" "$CTX" >&2 ;;
esac || die "the image build failed ($CONTAINER_TOOL)"

if [ "$PUSH" = 1 ]; then
    say "pushing $TAG"
    "$CONTAINER_TOOL" push "$TAG" >&2 || die "push of $TAG failed"
fi
echo "$TAG"
