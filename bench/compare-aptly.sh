#!/usr/bin/env bash
# Benchmark mini-mirror against aptly on one case (not run in CI).
#
#   bench/compare-aptly.sh bench/cases/A          # or just: bench/compare-aptly.sh A
#   ROUNDS=1 bench/compare-aptly.sh C
#
# A case is a directory bench/cases/<name>/ holding a mini-mirror sources/ tree. The aptly side
# is derived from the same files: one aptly mirror per source and component, with
#   -filter = the lines of packages.txt joined by " | "   (or the case's aptly-filter file)
#   -keyring = the source's key (upstream signatures are verified, never ignored)
# then a snapshot per mirror and one `aptly publish snapshot` per source (all of its components),
# signed with the same throwaway key that mini-mirror gets via --sign-key.
#
# Each round runs, alternating the tools (the first tool alternates between rounds):
#   cold: mini-mirror with an empty cache/output/state; aptly with an empty rootDir
#         (mirror create, mirror update, snapshot create, publish snapshot)
#   warm: the same again on the state the cold run left (nothing changed upstream):
#         mini-mirror build again; aptly mirror update, snapshot create, publish switch
#   force: mini-mirror build --force on the same state (re-resolve, re-publish, re-sign even
#         though nothing changed), when the binary has --force
# Both tools fetch through a counting HTTP proxy on 127.0.0.1 (bench/lib/count-proxy.py) so
# "bytes downloaded" is measured the same way for both.
#
# Environment: ROUNDS (default 3); KEEP=1 keeps the temp dir; MINI_MIRROR=binary to measure (default:
# `cargo build --release` in this work tree, then target/release/mini-mirror); REPORT=FILE also
# appends the report there. Needs root or sudo only to apt-get install what is missing.
# The markdown report goes to stdout; progress goes to stderr.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
ROUNDS="${ROUNDS:-3}"
MINI_MIRROR_GIVEN="${MINI_MIRROR:-}"
MINI_MIRROR="${MINI_MIRROR:-$REPO_DIR/target/release/mini-mirror}"

# The Ubuntu archive key (case B) comes from this exact package; its SHA256 is pinned here.
UBUNTU_KEYRING_DEB_URL="http://archive.ubuntu.com/ubuntu/pool/main/u/ubuntu-keyring/ubuntu-keyring_2021.03.26_all.deb"
UBUNTU_KEYRING_DEB_SHA256="0d0e7ed6b112f5d03eabf3c7eb01ebdacf9c57714b279e90495cfc58c8c4520f"

say() { echo "compare-aptly: $*" >&2; }
die() { say "error: $*"; exit 1; }

# --------------------------------------------------------------------------------------------
# setup

ensure_tools() {
  local need=() p
  for p in aptly time gnupg gpgv curl xz-utils dpkg; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  command -v python3 >/dev/null || die "python3 is needed for the counting proxy and the report"
  if [ -z "${MINI_MIRROR_GIVEN:-}" ]; then
    # always the binary of the current work tree (a no-op when it is up to date; waits if
    # someone else holds cargo's lock)
    say "building mini-mirror (cargo build --release)"
    (cd "$REPO_DIR" && cargo build --release --locked -q >&2)
  fi
  [ -x "$MINI_MIRROR" ] || die "$MINI_MIRROR: not executable"
  # what is measured: the commit, whether src/ differs from it, and a private copy of the
  # binary (so a rebuild by someone else during the run cannot swap it)
  MM_VERSION="$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')"
  if [ -n "$(git -C "$REPO_DIR" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    MM_VERSION="$MM_VERSION + uncommitted src/ changes"
  fi
  if [ -n "$MINI_MIRROR_GIVEN" ]; then MM_VERSION="$MINI_MIRROR (work tree at $MM_VERSION)"; fi
  cp "$MINI_MIRROR" "$TMP/mini-mirror"
  MINI_MIRROR="$TMP/mini-mirror"
}

# fetch_ubuntu_keyring DEST: extract ubuntu-archive-keyring.gpg from the pinned ubuntu-keyring .deb.
fetch_ubuntu_keyring() {
  local dest="$1" d="$TMP/ubuntu-keyring"
  say "fetching the Ubuntu archive keyring into $dest"
  mkdir -p "$d"
  curl -fsS -o "$d/k.deb" "$UBUNTU_KEYRING_DEB_URL"
  echo "$UBUNTU_KEYRING_DEB_SHA256  $d/k.deb" | sha256sum -c --quiet - || die "ubuntu-keyring .deb: SHA256 mismatch"
  dpkg-deb -x "$d/k.deb" "$d/x"
  cp "$d/x/usr/share/keyrings/ubuntu-archive-keyring.gpg" "$dest"
}

# make_signing_key: a throwaway key in a temp GNUPGHOME; aptly signs with it through gpg, and
# mini-mirror gets the same secret key exported as armored text.
make_signing_key() {
  export GNUPGHOME="$TMP/gnupg"
  mkdir -m 700 "$GNUPGHOME"
  gpg --batch --quiet --passphrase '' --quick-gen-key 'mini-mirror bench <bench@example.invalid>' rsa3072 sign never 2>/dev/null
  SIGN_FPR=$(gpg --batch --list-secret-keys --with-colons 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}')
  gpg --batch --export-secret-keys --armor "$SIGN_FPR" >"$TMP/sign-key.asc"
  gpg --batch --export "$SIGN_FPR" >"$TMP/sign-key.pub.gpg"
}

# start_proxy: the counting proxy on a free port; PROXY_LOG gets one line per request.
start_proxy() {
  PROXY_LOG="$TMP/proxy.log"
  : >"$PROXY_LOG"
  python3 "$BENCH_DIR/lib/count-proxy.py" "$TMP/proxy.port" "$PROXY_LOG" &
  PROXY_PID=$!
  local i
  for i in $(seq 50); do [ -s "$TMP/proxy.port" ] && break; sleep 0.1; done
  [ -s "$TMP/proxy.port" ] || die "the counting proxy did not start"
  PROXY_URL="http://127.0.0.1:$(cat "$TMP/proxy.port")"
}

cleanup() {
  if [ -n "${PROXY_PID:-}" ]; then kill "$PROXY_PID" 2>/dev/null || true; fi
  if [ -d "${GNUPGHOME:-/nonexistent}" ]; then gpgconf --homedir "$GNUPGHOME" --kill all 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}

# --------------------------------------------------------------------------------------------
# the case: read the sources/ tree into SRC_* arrays (one entry per source)

# read_case: SRC_PREFIX, SRC_NAME, SRC_URL, SRC_KEY (absolute path), SRC_DIST, SRC_COMPS
# (space-separated), SRC_FILTER (aptly filter).
read_case() {
  SRC_PREFIX=() SRC_NAME=() SRC_URL=() SRC_KEY=() SRC_DIST=() SRC_COMPS=() SRC_FILTER=()
  local st dir line url key dist comps filter
  for st in "$CASE_DIR"/sources/*/*/source.txt; do
    [ -f "$st" ] || die "$CASE_DIR/sources: no <prefix>/<name>/source.txt"
    dir=$(dirname "$st")
    line=$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$st" | head -1)
    read -r url key dist comps <<<"$line"
    case "$key" in
      http://* | https://*)
        curl -fsS -o "$TMP/key-$(basename "$dir").gpg" "$key"
        key="$TMP/key-$(basename "$dir").gpg" ;;
      /*) ;;
      *) key="$dir/$key" ;;
    esac
    if [ ! -f "$key" ] && [ "$(basename "$key")" = ubuntu-archive-keyring.gpg ]; then
      fetch_ubuntu_keyring "$key"
    fi
    [ -f "$key" ] || die "$st: key $key not found"
    key=$(realpath "$key")
    if [ -f "$CASE_DIR/aptly-filter" ]; then
      filter=$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$CASE_DIR/aptly-filter" | head -1)
    else
      # packages.txt: drop comments and blanks, join the queries with " | " (aptly's syntax for
      # `name`, `name (>= v)` and `name {arch}` is the same as mini-mirror's).
      filter=$(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$dir/packages.txt" |
        grep -v '^$' | awk 'BEGIN {ORS=""} {print (NR > 1 ? " | " : "") $0}')
    fi
    SRC_PREFIX+=("$(basename "$(dirname "$dir")")")
    SRC_NAME+=("$(basename "$dir")")
    SRC_URL+=("$url") SRC_KEY+=("$key") SRC_DIST+=("$dist") SRC_COMPS+=("$comps") SRC_FILTER+=("$filter")
  done
  [ ${#SRC_NAME[@]} -gt 0 ] || die "$CASE_DIR: no sources"
  if grep -qs -E '^(recommends|suggests)[[:space:]]*=[[:space:]]*true' "$CASE_DIR"/sources/settings.toml "$CASE_DIR"/sources/*/*/settings.toml; then
    say "warning: recommends/suggests are not mirrored on the aptly side"
  fi
}

# --------------------------------------------------------------------------------------------
# measuring

# record TOOL KIND ROUND KEY VALUE: one raw figure into results.tsv
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TMP/results.tsv"; }

now() { date +%s.%N; }
add() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f\n", a + b}'; }

proxy_mark() { wc -l <"$PROXY_LOG"; }
# proxy_bytes MARK: body bytes and requests that went through the proxy since MARK
proxy_bytes() { tail -n +"$(($1 + 1))" "$PROXY_LOG" | awk '{b += $2; n++} END {printf "%.0f %d\n", b, n}'; }

# timed LABEL CMD...: run CMD under /usr/bin/time -v with the proxy; sets T_WALL, T_RSS_KB and
# T_CPU (user + system seconds, less sensitive than wall time to other load on the machine).
# Output goes to $TMP/logs/LABEL.out; returns CMD's status.
timed() {
  local label="$1"; shift
  local out="$TMP/logs/$label.out" tv="$TMP/logs/$label.time" t0 t1 rc=0
  t0=$(now)
  env -u NO_PROXY -u no_proxy HTTP_PROXY="$PROXY_URL" http_proxy="$PROXY_URL" \
    /usr/bin/time -v -o "$tv" "$@" >"$out" 2>&1 || rc=$?
  t1=$(now)
  T_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}')
  T_RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv" 2>/dev/null || echo 0)
  T_CPU=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ {s += $2} END {printf "%.3f\n", s}' "$tv" 2>/dev/null || echo 0)
  return $rc
}

# count_published DIR OUT: unique "name version arch" lines of every binary-*/Packages under DIR
count_published() {
  find "$1" -path '*/binary-*' -name Packages -print0 2>/dev/null |
    xargs -0 -r awk '/^Package:/ {p=$2} /^Version:/ {v=$2} /^Architecture:/ {a=$2}
                     /^$/ {if (p != "") print p, v, a; p=""} END {if (p != "") print p, v, a}' |
    sort -u >"$2"
  wc -l <"$2"
}

# check_signatures DIR: every InRelease under DIR verifies with the bench key
check_signatures() {
  local f ok=yes n=0
  while IFS= read -r -d '' f; do
    n=$((n + 1))
    gpgv --keyring "$TMP/sign-key.pub.gpg" "$f" >/dev/null 2>&1 || ok=no
  done < <(find "$1" -name InRelease -print0 2>/dev/null)
  [ "$n" -gt 0 ] || ok=no
  echo "$ok"
}

# --------------------------------------------------------------------------------------------
# mini-mirror

run_mini_mirror() {
  local kind="$1" round="$2" d mark bytes reqs label="mm-$1-r$2"
  d="$TMP/mm"
  if [ "$kind" = cold ]; then rm -rf "$d"; fi
  mkdir -p "$d"
  say "round $round: mini-mirror $kind"
  mark=$(proxy_mark)
  local extra=()
  if [ "$kind" = force ]; then extra=(--force); fi
  if timed "$label" "$MINI_MIRROR" build --sources "$CASE_DIR/sources" --output "$d/public" \
    --cache "$d/cache" --state-dir "$d/state" --sign-key "$TMP/sign-key.asc" --timings -q "${extra[@]}"; then
    read -r bytes reqs < <(proxy_bytes "$mark")
    record mini-mirror "$kind" "$round" wall "$T_WALL"
    record mini-mirror "$kind" "$round" rss_kb "$T_RSS_KB"
    record mini-mirror "$kind" "$round" cpu "$T_CPU"
    record mini-mirror "$kind" "$round" bytes "$bytes"
    record mini-mirror "$kind" "$round" requests "$reqs"
    # "timing: <phase> <secs>s  peak so far <MB> MB": the process peak so far at the phase's end
    awk '/^timing:/ {sub(/s$/, "", $3); print $2, $3, ($7 == "" ? "-" : $7)}' "$TMP/logs/$label.out" |
      while read -r ph secs peak_mb; do
        record mini-mirror "$kind" "$round" "phase:$ph" "$secs"
        if [ "$peak_mb" != "-" ]; then
          record mini-mirror "$kind" "$round" "phase_rss:$ph" "$((peak_mb * 1000000 / 1024))"
        fi
      done
    record mini-mirror "$kind" "$round" summary "$(grep '^summary:' "$TMP/logs/$label.out" | sed 's/^summary: //')"
    record mini-mirror "$kind" "$round" packages "$(count_published "$d/public" "$TMP/pkgs-mini-mirror.txt")"
    record mini-mirror "$kind" "$round" signed "$(check_signatures "$d/public")"
  else
    say "mini-mirror $kind failed; see the report"
    record mini-mirror "$kind" "$round" error "$(grep -v '^timing:' "$TMP/logs/$label.out" | tail -3 | tr '\n\t' '  ')"
  fi
}

# --------------------------------------------------------------------------------------------
# aptly

aptly_config() {
  local root="$1"
  cat >"$root.conf" <<EOF
{
  "rootDir": "$root",
  "architectures": ["amd64"],
  "gpgDisableVerify": false,
  "gpgDisableSign": false,
  "gpgProvider": "gpg",
  "dependencyFollowRecommends": false,
  "dependencyFollowSuggests": false,
  "dependencyFollowSource": false,
  "dependencyFollowAllVariants": false
}
EOF
}

# mirror_name I COMP: aptly's name for source I's component COMP
mirror_name() { echo "${SRC_PREFIX[$1]}_${SRC_NAME[$1]}_$2" | tr -c 'A-Za-z0-9_.\n-' '-'; }

run_aptly() {
  local kind="$1" round="$2" root="$TMP/aptly/root" i comp m snaps mark bytes reqs
  local wall=0 rss=0 cpu=0 ok=1 step=0
  declare -A ph_wall=() ph_rss=()
  say "round $round: aptly $kind"
  if [ "$kind" = cold ]; then rm -rf "$TMP/aptly"; fi
  mkdir -p "$TMP/aptly"
  aptly_config "$root"
  local A=(aptly -config="$root.conf")

  # aptly_step PHASE ARGS...: one aptly sub-command, timed and added to the phase totals
  aptly_step() {
    local phase="$1"; shift
    step=$((step + 1))
    if ! timed "aptly-$kind-r$round-$step-$phase" "${A[@]}" "$@"; then
      ok=0
      record aptly "$kind" "$round" error "aptly $* -> $(tail -3 "$TMP/logs/aptly-$kind-r$round-$step-$phase.out" | tr '\n\t' '  ')"
      return 1
    fi
    ph_wall[$phase]=$(add "${ph_wall[$phase]:-0}" "$T_WALL")
    if [ "$T_RSS_KB" -gt "${ph_rss[$phase]:-0}" ]; then ph_rss[$phase]=$T_RSS_KB; fi
    if [ "$T_RSS_KB" -gt "$rss" ]; then rss=$T_RSS_KB; fi
    wall=$(add "$wall" "$T_WALL")
    cpu=$(add "$cpu" "$T_CPU")
    return 0
  }

  mark=$(proxy_mark)
  for i in "${!SRC_NAME[@]}"; do
    snaps=() comps=()
    for comp in ${SRC_COMPS[$i]}; do
      m=$(mirror_name "$i" "$comp")
      if [ "$kind" = cold ]; then
        aptly_step "mirror-create" mirror create -architectures=amd64 -filter="${SRC_FILTER[$i]}" \
          -filter-with-deps -keyring="${SRC_KEY[$i]}" "$m" "${SRC_URL[$i]}" "${SRC_DIST[$i]}" "$comp" || break 2
      fi
      aptly_step "mirror-update" mirror update -keyring="${SRC_KEY[$i]}" "$m" || break 2
      aptly_step "snapshot-create" snapshot create "$m-$kind-r$round" from mirror "$m" || break 2
      snaps+=("$m-$kind-r$round") comps+=("$comp")
    done
    local complist
    complist=$(IFS=,; echo "${comps[*]}")
    if [ "$kind" = cold ]; then
      aptly_step "publish" publish snapshot -batch -gpg-key="$SIGN_FPR" -distribution="${SRC_DIST[$i]}" \
        -component="$complist" "${snaps[@]}" "${SRC_PREFIX[$i]}" || break
    else
      aptly_step "publish" publish switch -batch -gpg-key="$SIGN_FPR" -component="$complist" \
        "${SRC_DIST[$i]}" "${SRC_PREFIX[$i]}" "${snaps[@]}" || break
    fi
  done
  [ "$ok" = 1 ] || { say "aptly $kind failed; see the report"; return 0; }

  read -r bytes reqs < <(proxy_bytes "$mark")
  record aptly "$kind" "$round" wall "$wall"
  record aptly "$kind" "$round" rss_kb "$rss"
  record aptly "$kind" "$round" cpu "$cpu"
  record aptly "$kind" "$round" bytes "$bytes"
  record aptly "$kind" "$round" requests "$reqs"
  local p
  for p in "${!ph_wall[@]}"; do
    record aptly "$kind" "$round" "phase:$p" "${ph_wall[$p]}"
    record aptly "$kind" "$round" "phase_rss:$p" "${ph_rss[$p]}"
  done
  record aptly "$kind" "$round" packages "$(count_published "$root/public" "$TMP/pkgs-aptly.txt")"
  record aptly "$kind" "$round" signed "$(check_signatures "$root/public")"
  # aptly verified upstream with gpgv against -keyring: every mirror update says so
  local upd good
  upd=$(find "$TMP/logs" -name "aptly-$kind-r$round-*-mirror-update.out" | wc -l)
  good=$(grep -l 'Good signature' "$TMP/logs/aptly-$kind-r$round-"*-mirror-update.out 2>/dev/null | wc -l)
  record aptly "$kind" "$round" upstream_verified "$([ "$upd" -gt 0 ] && [ "$good" = "$upd" ] && echo yes || echo no)"
}

# --------------------------------------------------------------------------------------------
# link throughput: the biggest file of the first cold run, fetched again 3 times directly and
# 3 times through the proxy (curl, one stream).

measure_link() {
  local url f
  url=$(awk '$1 == 200 && $3 == "GET" {print $2, $4}' "$PROXY_LOG" | sort -n | tail -1 | cut -d' ' -f2)
  [ -n "$url" ] || return 0
  say "measuring link throughput with $url"
  record link - - url "$url"
  for f in 1 2 3; do
    record link direct "$f" sample "$(curl -fsS -o /dev/null -w '%{size_download} %{time_total}' "$url")"
    record link proxy "$f" sample "$(curl -fsS -x "$PROXY_URL" -o /dev/null -w '%{size_download} %{time_total}' "$url")"
  done
}

# --------------------------------------------------------------------------------------------

main() {
  [ $# -eq 1 ] || { sed -n '2,5p' "$0" | sed 's/^# //' >&2; exit 2; }
  CASE_DIR="$1"
  [ -d "$CASE_DIR" ] || CASE_DIR="$BENCH_DIR/cases/$1"
  [ -d "$CASE_DIR/sources" ] || die "$1: not a case directory (expected $1/sources/ or bench/cases/$1/sources/)"
  CASE_DIR=$(realpath "$CASE_DIR")
  CASE_DESC=$(head -1 "$CASE_DIR/description" 2>/dev/null || true)

  TMP=$(mktemp -d /tmp/compare-aptly.XXXXXX)
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$TMP/logs"
  : >"$TMP/results.tsv"

  ensure_tools
  read_case
  HAS_FORCE=0
  if "$MINI_MIRROR" build --help 2>/dev/null | grep -q -- '--force'; then HAS_FORCE=1; fi
  make_signing_key
  start_proxy
  say "case $(basename "$CASE_DIR"): ${#SRC_NAME[@]} source(s), $ROUNDS round(s), temp dir $TMP"
  local i
  for i in "${!SRC_NAME[@]}"; do
    say "  ${SRC_PREFIX[$i]}/${SRC_NAME[$i]}: ${SRC_URL[$i]} ${SRC_DIST[$i]} [${SRC_COMPS[$i]}] filter: ${SRC_FILTER[$i]}"
  done

  local r first second load0
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  for r in $(seq "$ROUNDS"); do
    # alternate which tool goes first, so neither always meets a cold upstream CDN cache
    if [ $((r % 2)) = 1 ]; then first=run_mini_mirror second=run_aptly; else first=run_aptly second=run_mini_mirror; fi
    $first cold "$r"
    $second cold "$r"
    [ "$r" = 1 ] && measure_link
    $first warm "$r"
    $second warm "$r"
    # mini-mirror leaves an unchanged prefix alone on a warm run; --force (when the binary has
    # it) measures the full warm path too: verify the cache, resolve, re-publish and re-sign,
    # which is what aptly's warm run does.
    if [ "$HAS_FORCE" = 1 ]; then run_mini_mirror force "$r"; fi
  done

  local report="$TMP/report.md"
  {
    echo "### Case $(basename "$CASE_DIR")${CASE_DESC:+: $CASE_DESC}"
    echo
    echo "<!-- $(date -u '+%F %H:%M UTC'); ROUNDS=$ROUNDS bench/compare-aptly.sh $(basename "$CASE_DIR") -->"
    echo "Run $(date -u '+%F %H:%M UTC') on $(nproc) cores; mini-mirror $MM_VERSION," \
      "$(aptly version 2>/dev/null | head -1).  "
    echo "Load average (1/5/15 min) at start: $load0, at end: $(cut -d' ' -f1-3 /proc/loadavg)" \
      "(other work on the machine inflates wall times; CPU times are steadier).  "
    echo "Command: \`ROUNDS=$ROUNDS bench/compare-aptly.sh $(basename "$CASE_DIR")\`"
    echo
  } >"$report"
  python3 "$BENCH_DIR/lib/report.py" "$TMP/results.tsv" "$(basename "$CASE_DIR")" "$ROUNDS" \
    "$TMP/pkgs-mini-mirror.txt" "$TMP/pkgs-aptly.txt" "${SRC_FILTER[*]}" >>"$report"
  cat "$report"
  if [ -n "${REPORT:-}" ]; then cat "$report" >>"$REPORT"; fi
}

main "$@"
