#!/usr/bin/env bash
# The main job: builds guise and runs its demo (two throwaway identities read files
# through a guise file server at each impersonation level; the kernel decides).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
log "building guise"
cargo build --release --locked --quiet -p guise-cli
exec target/release/guise demo "$@"
