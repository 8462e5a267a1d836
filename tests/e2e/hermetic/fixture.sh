# The hermetic upstream: a small signed APT repository of real .deb packages with real
# relationships between them, written by the test itself. Sourced by hermetic/run.sh and tamper.sh.
# shellcheck shell=bash
#
#   fixture_make DIR       -> DIR/repo/{dists,pool} signed by a throwaway key, DIR/upstream-key.gpg
#   fixture_serve DIR      -> serves DIR/repo on 127.0.0.1:<free port> (host loopback), sets
#                             FIXTURE_URL and NGINX_PID_upstream
#   fixture_sources DIR    -> DIR/sources/fixture/greet/{source.txt,packages.txt,upstream-key.gpg}
#
# Suite "greet-stable", components main and contrib, architectures amd64 (+ all). The packages:
#   greet-base 1.0-1      all    Essential-like base data, Provides greet-data
#   libgreet 0.5-1        amd64  an OLD version that must not satisfy (>= 1.0)
#   libgreet 1.2-1        amd64  Pre-Depends greet-base (>= 1.0); Depends greet-data
#   libgreet-alt 0.9-1    amd64  the second alternative of hello-app's dependency
#   greet-voice-en 1.0-1  all    Provides greeting-voice (= 1.0), Depends greet-base
#   greet-voice-fr 1.0-1  all    Provides greeting-voice, Conflicts greet-voice-en (not requested)
#   hello-app 2.0-1       amd64  Depends libgreet (>= 1.0) | libgreet-alt, greeting-voice;
#                                Recommends greet-docs; ships /usr/bin/hello-app (a sh script)
#   greet-docs 1.0-1      all    only recommended
#   greet-tools 3.1-1     all    contrib; Depends hello-app (>= 2.0)
#   unrelated-big 1.0-1   amd64  never needed: must not be in the mirror
#   greet-engine 1.0-1    amd64  \ like nginx / nginx-light: greet-meta pins greet-engine to
#   greet-meta 1.0-1      all    / its own version: Depends greet-engine (>= V), (<< V.1~)
# Suite "greet-updates" (a second source of the same prefix, like bookworm-security):
#   greet-engine 1.0-2, greet-meta 1.0-2 (pinned to 1.0-2), greet-extra 1.0-1 (Depends greet-engine).
# Requested: greet-meta from greet-stable, greet-extra from greet-updates. A client that has both
# suites takes the newest candidates, so the mirror must offer greet-meta 1.0-2 together with
# greet-engine 1.0-2 (exactly as the real archive offers nginx-light and nginx in
# bookworm-security).

FIXTURE_SUITE=greet-stable

# fixture_deb OUTDIR NAME VERSION ARCH SECTION [FIELD: VALUE]...
fixture_deb() {
    local out=$1 name=$2 version=$3 arch=$4 section=$5; shift 5
    local d; d=$(mktemp -d)
    mkdir -p "$d/DEBIAN" "$d/usr/share/doc/$name"
    {
        echo "Package: $name"
        echo "Version: $version"
        echo "Architecture: $arch"
        echo "Maintainer: mini-mirror tests <tests@example.invalid>"
        echo "Section: $section"
        echo "Priority: optional"
        local f; for f in "$@"; do echo "$f"; done
        echo "Description: mini-mirror e2e fixture package $name"
        echo " Part of the hermetic end-to-end test of mini-mirror."
    } >"$d/DEBIAN/control"
    printf '%s %s (%s)\n' "$name" "$version" "$arch" >"$d/usr/share/doc/$name/README"
    if [ "$name" = hello-app ]; then
        mkdir -p "$d/usr/bin"
        printf '#!/bin/sh\necho "hello from hello-app %s"\n' "$version" >"$d/usr/bin/hello-app"
        chmod 0755 "$d/usr/bin/hello-app"
    fi
    if [ "$name" = unrelated-big ]; then
        head -c 2000000 /dev/urandom >"$d/usr/share/doc/$name/blob"
    fi
    mkdir -p "$out"
    dpkg-deb --root-owner-group -Zxz --build "$d" "$out/" >/dev/null
    rm -rf "$d"
}

fixture_make() {
    local dir=$1
    mkdir -p "$dir/repo"
    local repo=$dir/repo pm=$dir/repo/pool/main pc=$dir/repo/pool/contrib
    fixture_deb "$pm/g/greet-base" greet-base 1.0-1 all misc "Provides: greet-data" "Multi-Arch: foreign"
    fixture_deb "$pm/libg/libgreet" libgreet 0.5-1 amd64 libs
    fixture_deb "$pm/libg/libgreet" libgreet 1.2-1 amd64 libs "Pre-Depends: greet-base (>= 1.0)" "Depends: greet-data"
    fixture_deb "$pm/libg/libgreet-alt" libgreet-alt 0.9-1 amd64 libs "Depends: greet-base"
    fixture_deb "$pm/g/greet-voice" greet-voice-en 1.0-1 all misc "Provides: greeting-voice (= 1.0)" "Depends: greet-base"
    fixture_deb "$pm/g/greet-voice" greet-voice-fr 1.0-1 all misc "Provides: greeting-voice" "Conflicts: greet-voice-en" "Depends: greet-base"
    fixture_deb "$pm/h/hello-app" hello-app 2.0-1 amd64 utils \
        "Depends: libgreet (>= 1.0) | libgreet-alt, greeting-voice" "Recommends: greet-docs"
    fixture_deb "$pm/g/greet-docs" greet-docs 1.0-1 all doc
    fixture_deb "$pm/u/unrelated-big" unrelated-big 1.0-1 amd64 misc
    fixture_deb "$pc/g/greet-tools" greet-tools 3.1-1 all utils "Depends: hello-app (>= 2.0)"
    fixture_deb "$pm/g/greet-engine" greet-engine 1.0-1 amd64 misc
    fixture_deb "$pm/g/greet-meta" greet-meta 1.0-1 all misc "Depends: greet-engine (>= 1.0-1), greet-engine (<< 1.0-1.1~)"
    local pu=$dir/repo/pool/updates/main
    fixture_deb "$pu/g/greet-engine" greet-engine 1.0-2 amd64 misc
    fixture_deb "$pu/g/greet-meta" greet-meta 1.0-2 all misc "Depends: greet-engine (>= 1.0-2), greet-engine (<< 1.0-2.1~)"
    fixture_deb "$pu/g/greet-extra" greet-extra 1.0-1 amd64 misc "Depends: greet-engine"

    # Throwaway signing key, in a temporary GNUPGHOME.
    local gh; gh=$(mktemp -d)
    chmod 700 "$gh"
    GNUPGHOME=$gh gpg --batch --quiet --passphrase '' \
        --quick-gen-key "mini-mirror fixture upstream <fixture@example.invalid>" ed25519 sign never 2>/dev/null
    GNUPGHOME=$gh gpg --batch --quiet --export >"$dir/upstream-key.gpg"
    fixture_suite "$dir" "$gh" "$FIXTURE_SUITE" "main contrib" "pool/main pool/contrib"
    fixture_suite "$dir" "$gh" greet-updates "main" "pool/updates/main"
    gpgconf --homedir "$gh" --kill all 2>/dev/null || true
    rm -rf "$gh"
    chmod -R a+rX "$dir"
}

# fixture_suite DIR GNUPGHOME SUITE "COMPONENTS" "POOLDIRS" (one pool dir per component)
fixture_suite() {
    local dir=$1 gh=$2 suite=$3 repo=$1/repo
    local -a comps pools
    read -r -a comps <<<"$4"; read -r -a pools <<<"$5"
    local i
    for i in "${!comps[@]}"; do
        local bd=$repo/dists/$suite/${comps[$i]}/binary-amd64
        mkdir -p "$bd"
        (cd "$repo" && apt-ftparchive packages "${pools[$i]}") >"$bd/Packages"
        gzip -9 -n -k "$bd/Packages"
        xz -k "$bd/Packages"
    done
    local rel=$repo/dists/$suite
    (cd "$rel" && apt-ftparchive \
        -o APT::FTPArchive::Release::Origin=mini-mirror-fixture \
        -o APT::FTPArchive::Release::Label=mini-mirror-fixture \
        -o APT::FTPArchive::Release::Suite="$suite" \
        -o APT::FTPArchive::Release::Codename="$suite" \
        -o APT::FTPArchive::Release::Architectures=amd64 \
        -o "APT::FTPArchive::Release::Components=$4" \
        -o "APT::FTPArchive::Release::Description=mini-mirror hermetic fixture" \
        release .) >"$dir/Release.tmp"
    mv "$dir/Release.tmp" "$rel/Release"
    GNUPGHOME=$gh gpg --batch --quiet --yes --clearsign -o "$rel/InRelease" "$rel/Release"
    GNUPGHOME=$gh gpg --batch --quiet --yes -abs -o "$rel/Release.gpg" "$rel/Release"
    gpgv --keyring "$dir/upstream-key.gpg" "$rel/InRelease" 2>/dev/null || die "fixture $suite InRelease does not verify"
}

fixture_serve() {
    local dir=$1 port
    port=$(free_port)
    start_nginx upstream "$dir/repo" "127.0.0.1:$port" "$dir/nginx-upstream"
    FIXTURE_URL=http://127.0.0.1:$port
}

fixture_sources() {
    local dir=$1 s=$1/sources/fixture/greet
    mkdir -p "$s"
    cp "$dir/upstream-key.gpg" "$s/upstream-key.gpg"
    # Key path relative to the source's folder.
    echo "$FIXTURE_URL upstream-key.gpg $FIXTURE_SUITE main contrib" >"$s/source.txt"
    cat >"$s/packages.txt" <<'EOF'
# The hermetic fixture's requested packages.
hello-app
libgreet (>= 1.0)
greet-tools
greet-meta
EOF
    local u=$1/sources/fixture/greet-updates
    mkdir -p "$u"
    cp "$dir/upstream-key.gpg" "$u/upstream-key.gpg"
    echo "$FIXTURE_URL $u/upstream-key.gpg greet-updates main" >"$u/source.txt"   # absolute key path
    printf '%s\n' '# updates pocket of the fixture' greet-extra >"$u/packages.txt"
    cat >"$s/settings.toml" <<'EOF'
architectures = ["amd64"]
essential = false
recommends = false
EOF
}

# fixture_workdir NAME: make $FX, a fresh world-readable work dir for a fixture upstream, and
# trap the script's exit to stop the upstream's nginx ($NGINX_PID_upstream) and remove $FX
# (unless KEEP=1).
fixture_workdir() {
    FX=$(mktemp -d "/var/tmp/mm-$1.XXXXXX")
    chmod 0755 "$FX"
    NGINX_PID_upstream=
    trap _fixture_cleanup EXIT
    trap 'exit 130' INT TERM
}

_fixture_cleanup() {
    local rc=$?
    set +e
    stop_pid "$NGINX_PID_upstream"
    remove_workdir "$FX" "$KEEP"
    exit "$rc"
}
