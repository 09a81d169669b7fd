#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 20) from the seed corpus.
# Fails if a target finds an input that panics or breaks its round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
seconds=${1:-20}
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz from crates.io"
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
cargo fuzz build -s none
for target in $(cargo fuzz list); do
    corpus=$(mktemp -d)
    cp seeds/$target/* "$corpus"/
    log "fuzzing $target for ${seconds}s"
    cargo fuzz run -s none "$target" "$corpus" -- -max_total_time="$seconds" 2>&1 | tail -n 1
    rm -rf "$corpus"
done
