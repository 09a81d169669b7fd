#!/usr/bin/env bash
# Mutation testing of the impersonation rules: every mutant cargo-mutants makes of
# a rule function (crates/guise/src/thread/rules.rs, and the client core's
# ClientContext in crates/guise/src/client.rs, which asks the rules and builds
# the token) must be caught by the library's root-free unit tests. Prints the
# count; fails on any mutant that survives or hangs.
#
# Left out of client.rs: the readers of kernel facts (SO_PEERCRED, /proc of the
# client process, pidfds, accept-time admission), which are not decisions and are
# tested as root by the pipe, rpc and D-Bus suites, not by unit tests; and the
# reader of directory facts (a domain user's SIDs from winbind), tested on the
# throwaway domain controller (tests/active_directory.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
if ! cargo mutants --version >/dev/null 2>&1; then
    log "installing cargo-mutants from crates.io"
    cargo install --locked cargo-mutants
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
log "cargo mutants: the rules module and the client core"
# Without debug info each mutant builds faster; without the transports' features
# the library builds faster still, and the rules need none of them.
status=0
CARGO_PROFILE_DEV_DEBUG=0 cargo mutants -p guise-impersonation --no-default-features --cargo-arg=--lib \
    --file crates/guise/src/thread/rules.rs --file crates/guise/src/client.rs \
    -E 'of_socket|peer_identity|pid_of|still_alive|status_uid|no_thread_acts_for_another|peer_capabilities|admit|directory_sids_of_peer' \
    --no-shuffle -o "$out" >"$out/log" 2>&1 || status=$?
count() { [ -f "$out/mutants.out/$1.txt" ] && wc -l <"$out/mutants.out/$1.txt" || echo 0; }
caught=$(count caught) missed=$(count missed) timeout=$(count timeout) unviable=$(count unviable)
log "mutants: $caught caught, $missed survived, $timeout timed out, $unviable unviable (did not build)"
if [ "$missed" -gt 0 ] || [ "$timeout" -gt 0 ]; then
    cat "$out/mutants.out/missed.txt" "$out/mutants.out/timeout.txt" >&2
    die "a mutant of a rule survived the suite"
fi
if [ "$caught" -eq 0 ]; then
    tail -n 30 "$out/log" >&2
    die "cargo mutants tested nothing (exit $status)"
fi
