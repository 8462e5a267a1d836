#!/usr/bin/env bash
# Fuzz the parsers of untrusted upstream text for a bounded time each (not run in every CI).
#   fuzz/run.sh [SECONDS_PER_TARGET]      (default 60)
# Installs cargo-fuzz when missing; uses the stable toolchain with RUSTC_BOOTSTRAP=1 (cargo fuzz
# needs nightly flags). Crashes land in fuzz/artifacts/<target>/: copy each into
# tests/fuzz_regressions/<target>/ so `cargo test` replays it forever after.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in deb822 relation release; do
  mkdir -p "corpus/$target"
  # Seed with the regression inputs and a few real-looking samples.
  cp -n ../tests/fuzz_regressions/"$target"/* "corpus/$target/" 2>/dev/null || true
  echo "== fuzz $target for ${secs}s"
  cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536
done
