#!/bin/sh
# apt-check.sh: prove that a mini-mirror serves correctly signed, complete APT indices, with
# apt itself as the judge. This is the chart's `helm test`; it also runs anywhere with apt
# (Debian/Ubuntu, any user, no other tools needed):
#
#   MIRROR_URL=http://apt-mirror.example.internal MIRROR_SOURCES_FILE=sources sh apt-check.sh
#
# For each line "<prefix> <dist> <component>..." of $MIRROR_SOURCES_FILE (or of $MIRROR_SOURCES):
#   1. fetch $MIRROR_URL/<prefix>/mini-mirror-archive-keyring.gpg (and, when
#      $MIRROR_KEYRING_SHA256 is set, require that SHA256);
#   2. write `deb [signed-by=<that keyring>] $MIRROR_URL/<prefix> <dist> <component>...`;
# then run `apt-get update --error-on=any` with ONLY those sources (the system's own sources,
# trusted keys and state are not used; nothing outside a private work directory is written),
# and require that apt printed no warning or error and fetched each dist's InRelease.
# No source is marked as trusted or as allowed to be insecure: a wrong or missing key fails.
# Exit status: 0 when the mirror passes, 1 when it fails, 2 on a usage error.
set -eu

MIRROR_URL=${MIRROR_URL:?set MIRROR_URL to the mirror base URL, e.g. http://apt-mirror:80}
MIRROR_URL=${MIRROR_URL%/}
MIRROR_KEYRING_SHA256=${MIRROR_KEYRING_SHA256:-}
if [ -n "${MIRROR_SOURCES_FILE:-}" ]; then
    MIRROR_SOURCES=$(cat "$MIRROR_SOURCES_FILE")
fi
MIRROR_SOURCES=${MIRROR_SOURCES:?set MIRROR_SOURCES_FILE or MIRROR_SOURCES (lines: prefix dist component...)}

say() { printf 'apt-check: %s\n' "$*"; }
fail() { printf 'apt-check: FAIL: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/apt-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# When run as root, apt downloads as the unprivileged _apt user: it must reach the work dir.
chmod 0755 "$WORK"
mkdir -p "$WORK/keyrings" "$WORK/lists/partial" "$WORK/cache/archives/partial" \
    "$WORK/etc/trusted.gpg.d" "$WORK/etc/sources.list.d"
: >"$WORK/etc/sources.list"

# fetch URL FILE: curl, wget, or apt's own downloader (always present where apt is).
fetch() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 --max-time 60 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -T 60 -t 3 -O "$2" "$1"
    else
        /usr/lib/apt/apt-helper -o APT::Sandbox::User="$(id -un)" download-file "$1" "$2" >/dev/null
    fi
}

n=0
dists=
printf '%s\n' "$MIRROR_SOURCES" | sed -e 's/#.*//' >"$WORK/sources.in"
while read -r prefix dist comps; do
    [ -n "${prefix:-}" ] || continue
    [ -n "${comps:-}" ] || fail "bad source line '$prefix ${dist:-}': expected '<prefix> <dist> <component>...'"
    prefix=${prefix#/}; prefix=${prefix%/}
    key=$WORK/keyrings/$(printf '%s' "$prefix" | tr '/' '_').gpg
    if [ ! -s "$key" ]; then
        url=$MIRROR_URL/$prefix/mini-mirror-archive-keyring.gpg
        fetch "$url" "$key" || fail "could not download the keyring $url"
        [ -s "$key" ] || fail "empty keyring at $url"
        if [ -n "$MIRROR_KEYRING_SHA256" ]; then
            got=$(sha256sum "$key" | cut -d' ' -f1)
            [ "$got" = "$MIRROR_KEYRING_SHA256" ] \
                || fail "keyring $url has SHA256 $got, expected $MIRROR_KEYRING_SHA256"
            say "keyring $url matches the expected SHA256"
        else
            say "keyring $url downloaded"
        fi
        chmod 0644 "$key"
    fi
    line="deb [signed-by=$key] $MIRROR_URL/$prefix $dist $comps"
    say "source: $line"
    printf '%s\n' "$line" >>"$WORK/etc/sources.list"
    dists="$dists $prefix/$dist"
    n=$((n + 1))
done <"$WORK/sources.in"
[ "$n" -gt 0 ] || fail "no sources given"

# apt with nothing but the sources above: private sources, trust, lists and cache directories.
set -- \
    -o Dir::Etc::sourcelist="$WORK/etc/sources.list" \
    -o Dir::Etc::sourceparts="$WORK/etc/sources.list.d" \
    -o Dir::Etc::trusted="$WORK/etc/trusted.gpg" \
    -o Dir::Etc::trustedparts="$WORK/etc/trusted.gpg.d" \
    -o Dir::State::lists="$WORK/lists" \
    -o Dir::State::status="$WORK/status" \
    -o Dir::Cache="$WORK/cache" \
    -o Acquire::Retries=2 \
    -o Acquire::http::Timeout=30 \
    -o Acquire::Languages=none
: >"$WORK/status"
if [ "$(id -u)" != 0 ]; then
    # Not root: apt cannot (and need not) switch to its _apt sandbox user.
    set -- "$@" -o APT::Sandbox::User="$(id -un 2>/dev/null || id -u)"
fi

say "apt-get update --error-on=any"
rc=0
LC_ALL=C apt-get "$@" update --error-on=any >"$WORK/update.log" 2>&1 || rc=$?
sed -e 's/^/  | /' "$WORK/update.log"
[ "$rc" -eq 0 ] || fail "apt-get update exited $rc"
if grep -Eq '^(W|E):' "$WORK/update.log"; then
    fail "apt-get update printed warnings or errors"
fi

# Each dist's signed InRelease made it into the lists directory (apt keeps only verified files).
# shellcheck disable=SC2086 # one word per prefix/dist
ndists=$(printf '%s\n' $dists | sort -u | wc -l)
nrel=$(find "$WORK/lists" -maxdepth 1 -name '*_InRelease' -type f | wc -l)
[ "$nrel" -ge "$ndists" ] || fail "apt kept $nrel verified InRelease file(s) for $ndists dist(s)"
npk=$(find "$WORK/lists" -maxdepth 1 -name '*_Packages' -type f | wc -l)
[ "$npk" -gt 0 ] || fail "apt fetched no Packages index"
say "ok: $n source(s), $npk Packages index(es) verified by apt from $MIRROR_URL"
