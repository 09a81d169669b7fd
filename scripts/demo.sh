#!/usr/bin/env bash
# The main job: builds guise and shows the security context it runs in.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
log "building guise"
cargo build --release --locked --quiet -p guise-cli
exec target/release/guise whoami --all "$@"
