#!/usr/bin/env bash
# The signing-key lint and the real clients agree: for a DSA key and an Ed25519 key,
# `mini-mirror key check` gives its verdict, and a repository signed with that key is put
# before a trixie client (apt 3, sqv) and a bookworm client (apt 2.6, gpgv) with
# `apt-get update --error-on=any`. Expected: DSA refused by the lint and by trixie (bookworm
# still takes it: the lint protects the clients of the next years); Ed25519 accepted by all.
# Uses the cached client roots of the live suite (made once from the real archive).
#   tests/e2e/key-policy.sh
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

BIN=${MINI_MIRROR_BIN:-$REPO_ROOT/target/release/mini-mirror}
[ -x "$BIN" ] || (cd "$REPO_ROOT" && cargo build --release --locked >&2)
W=$(mktemp -d /var/tmp/mm-keypolicy.XXXXXX)
trap 'rm -rf --one-file-system "$W"' EXIT

export GNUPGHOME=$W/gnupg
mkdir -m 700 "$GNUPGHOME"
for k in dsa2048 ed25519; do
    gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key "key-policy $k <$k@example.invalid>" "$k" sign 1y 2>/dev/null
    gpg --batch --export "$k@example.invalid" >"$W/$k.gpg"
    gpg --batch --pinentry-mode loopback --passphrase '' --export-secret-keys "$k@example.invalid" >"$W/$k.key"
done

# A one-package repository (Release with SHA256, by apt-ftparchive), signed by each key.
mkdir -p "$W/repo/pool" "$W/repo/dists/stable/main/binary-amd64" "$W/pkg/DEBIAN"
printf 'Package: key-policy-probe\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: probe\n' >"$W/pkg/DEBIAN/control"
dpkg-deb --build "$W/pkg" "$W/repo/pool/key-policy-probe_1.0_all.deb" >/dev/null
(cd "$W/repo" && apt-ftparchive packages pool >dists/stable/main/binary-amd64/Packages)
(cd "$W/repo/dists/stable" && apt-ftparchive -o APT::FTPArchive::Release::Suite=stable \
    -o APT::FTPArchive::Release::Codename=stable -o APT::FTPArchive::Release::Architectures=amd64 \
    -o APT::FTPArchive::Release::Components=main release . >Release)

for k in dsa2048 ed25519; do
    if "$BIN" key check --sign-key "$W/$k.key" >"$W/check-$k.log" 2>&1; then lint=accepts; else lint=refuses; fi
    want_lint=$([ "$k" = dsa2048 ] && echo refuses || echo accepts)
    [ "$lint" = "$want_lint" ] && ok "mini-mirror key check $lint $k" || no "mini-mirror key check $lint $k: $(tail -n 2 "$W/check-$k.log")"
    for rel in trixie bookworm; do
        root=$W/client-$rel
        if [ ! -d "$root" ]; then
            mkdir -p "$root"
            zstd -dc "$(client_tarball "$rel")" | tar -x -C "$root" || { no "client $rel: no cached root"; continue; }
        fi
        rm -rf "$root/srv/repo" "$root"/etc/apt/sources.list.d/*
        mkdir -p "$root/srv"
        cp -a "$W/repo" "$root/srv/repo"
        gpg --batch --yes --local-user "$k@example.invalid" --digest-algo SHA256 --clearsign \
            -o "$root/srv/repo/dists/stable/InRelease" "$root/srv/repo/dists/stable/Release"
        cp "$W/$k.gpg" "$root/srv/key.gpg"
        echo "deb [signed-by=/srv/key.gpg] file:/srv/repo stable main" >"$root/etc/apt/sources.list"
        rm -rf "$root/var/lib/apt/lists"/*
        if chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C apt-get update --error-on=any >"$W/$rel-$k.log" 2>&1; then
            apt=accepts
        else
            apt=refuses
        fi
        want=accepts
        [ "$k" = dsa2048 ] && [ "$rel" = trixie ] && want=refuses
        if [ "$apt" = "$want" ]; then ok "$rel apt $apt a $k-signed repository"
        else no "$rel apt $apt a $k-signed repository (expected: $want): $(grep -E '^(W|E):' "$W/$rel-$k.log" | head -n 2 | tr '\n' ' ')"; fi
    done
done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
