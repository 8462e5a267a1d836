# The mini-mirror container image: a verified, re-signed partial APT repository built from a
# sources/ tree at image build time, served by nginx (nginx/mini-mirror.conf) from /srv on port
# 8080 as a non-root user.
#
# Use ./build.sh (it stages the build context, passes the signing key and its passphrase as build
# SECRETS and prints the image name); see `./build.sh --help`. By hand, from the repository root:
#
#   docker buildx build \
#       --secret id=signkey,src=/secure/release.key \
#       --secret id=signkey_passphrase,src=/secure/release.pass \
#       --build-arg HTTP_PROXY --build-arg HTTPS_PROXY --build-arg NO_PROXY \
#       -t mini-mirror:latest-bookworm .
#
# Stages:
#   compile          cargo build --release in BUILDER_IMAGE (skipped with BINARY_FROM=prebuilt)
#   runtime          BUILD_BASE_IMAGE + the shared libraries mini-mirror links (nettle, gmp)
#   binary-compile   runtime + the binary from `compile`                    (BINARY_FROM=compile)
#   binary-prebuilt  runtime + PREBUILT_BINARY from the build context       (BINARY_FROM=prebuilt)
#   mirror           runs `mini-mirror build` on MIRROR_SOURCE_DIR into /out
#   (last)           BASE_IMAGE (nginx) + /out at /srv + nginx/mini-mirror.conf
#
# Needs BuildKit (Docker >= 23 / buildx) or podman/buildah: RUN --mount=type=secret|cache. There is
# deliberately no `# syntax=` line: it would pull a frontend image from Docker Hub.
#
# Secrets (never build args, ENV or copied files; only the RUN that signs sees them):
#   id=signkey             the operator's OpenPGP secret key (armored or binary)
#   id=signkey_passphrase  its passphrase (may be absent or empty for an unprotected key)
# and, optionally (public, but passed the same way because it is optional and not in the context):
#   id=extra_ca            PEM CA certificates to trust during the build, for a TLS-intercepting
#                          proxy (apt-get, cargo, mini-mirror); they reach no layer of the final image
# Without a signing key a throwaway key is generated for this one image (with a warning).
#
# Proxies: HTTP_PROXY, HTTPS_PROXY, NO_PROXY (and the lower-case forms) are predefined build args:
# pass them with --build-arg and every RUN (apt-get, cargo, mini-mirror) uses them. They are
# deliberately not declared with ARG here, so that their values (which may hold credentials)
# stay out of the image history.

ARG BUILDER_IMAGE=docker.io/library/rust:1-bookworm
ARG BUILD_BASE_IMAGE=docker.io/library/debian:bookworm-slim
ARG BASE_IMAGE=docker.io/library/nginx:1.27-bookworm
# compile | prebuilt
ARG BINARY_FROM=compile

# ---- compile: mini-mirror from source ----------------------------------------------------------
FROM ${BUILDER_IMAGE} AS compile
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then \
        cp /run/secrets/extra_ca /usr/local/share/ca-certificates/mini-mirror-build-extra-ca.crt \
        && update-ca-certificates >/dev/null; \
    fi \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nettle-dev libclang-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,id=mini-mirror-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=mini-mirror-cargo-target,target=/build/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/mini-mirror /opt/mini-mirror/mini-mirror

# ---- runtime: what the binary needs to run (ldd: libnettle, libhogweed, libgmp; TLS roots) -------
FROM ${BUILD_BASE_IMAGE} AS runtime
RUN --mount=type=secret,id=extra_ca \
    set -eu; missing=''; \
    for p in ca-certificates libnettle8 libhogweed6 libgmp10; do \
        dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed \
            || missing="$missing $p"; \
    done; \
    if [ -n "$missing" ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
        && rm -rf /var/lib/apt/lists/*; \
    fi; \
    if [ -s /run/secrets/extra_ca ]; then \
        cp /run/secrets/extra_ca /usr/local/share/ca-certificates/mini-mirror-build-extra-ca.crt \
        && update-ca-certificates >/dev/null; \
    fi

FROM runtime AS binary-compile
COPY --from=compile /opt/mini-mirror/mini-mirror /usr/local/bin/mini-mirror

FROM runtime AS binary-prebuilt
# A path inside the build context (build.sh puts MINI_MIRROR_BINARY there).
ARG PREBUILT_BINARY=target/release/mini-mirror
COPY ${PREBUILT_BINARY} /usr/local/bin/mini-mirror

# ---- mirror: build the published tree ------------------------------------------------------------
FROM binary-${BINARY_FROM} AS mirror
# Fails here, with the loader's message, when a library is missing.
RUN mini-mirror --version
ARG MIRROR_SOURCE_DIR=sources
COPY ${MIRROR_SOURCE_DIR} /mirror/sources
# Changes on every build (build.sh passes the build time), so that the mirror is always fetched
# afresh from upstream (and signed with the key given now) instead of being taken from the layer
# cache. The download cache below keeps rebuilds cheap; mini-mirror re-hashes every cache hit.
ARG MIRROR_BUILD_ID=
# Extra flags for `mini-mirror build`, e.g. "--jobs 4 -v" (not for secrets).
ARG MINI_MIRROR_BUILD_FLAGS=
# The previous build's published tree (empty unless build.sh got PREVIOUS_TREE): its snapshots
# are kept, up to --keep (KEEP_SNAPSHOTS). Copied into /out by the RUN below, in its own layer:
# overlayfs cannot atomically exchange a directory of a lower layer.
COPY previous /mirror/previous
RUN --mount=type=secret,id=signkey \
    --mount=type=secret,id=signkey_passphrase \
    --mount=type=cache,id=mini-mirror-download-cache,target=/var/cache/mini-mirror,sharing=locked \
    set -eu; \
    echo "mini-mirror build ${MIRROR_BUILD_ID}"; \
    mkdir -p /out && cp -a /mirror/previous/. /out/; \
    set --; \
    if [ -s /run/secrets/signkey ]; then \
        set -- --sign-key /run/secrets/signkey; \
        if [ -s /run/secrets/signkey_passphrase ]; then \
            set -- "$@" --passphrase-file /run/secrets/signkey_passphrase; \
        fi; \
    else \
        echo "WARNING: no signing key (build secret id=signkey): a throwaway key is generated for this image only" >&2; \
    fi; \
    mini-mirror build --sources /mirror/sources --output /out \
        --cache /var/cache/mini-mirror --state-dir /tmp/mini-mirror-state \
        $MINI_MIRROR_BUILD_FLAGS "$@"; \
    rm -rf /tmp/mini-mirror-state; \
    chmod -R a+rX /out

# ---- the image: nginx serving /srv ------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=latest
ARG CREATED=
ARG REVISION=
ARG SOURCE_URL=
ARG MIRROR_SOURCES=
ARG MIRROR_PREFIXES=
# The official nginx image's unprivileged user (nginx, 101:101). Any uid works: nginx only
# needs /tmp and read access to /srv and /etc/nginx.
ARG RUNTIME_UID=101
ARG RUNTIME_GID=101
LABEL org.opencontainers.image.title="mini-mirror" \
      org.opencontainers.image.description="Verified, re-signed partial APT repository served by nginx on :8080 (built by mini-mirror)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      io.mini-mirror.prefixes="${MIRROR_PREFIXES}" \
      io.mini-mirror.sources="${MIRROR_SOURCES}"
COPY nginx/mini-mirror.conf /etc/nginx/nginx.conf
COPY --from=mirror /out/ /srv/
# The configuration is valid for this nginx (leaves nothing behind).
RUN nginx -t -q -e stderr -c /etc/nginx/nginx.conf && rm -rf /tmp/nginx-* /tmp/nginx.pid
USER ${RUNTIME_UID}:${RUNTIME_GID}
EXPOSE 8080
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["nginx", "-e", "stderr", "-g", "daemon off;"]
CMD []
