#!/usr/bin/env bash
# Runs the tests of guise's unsafe code that Miri can interpret, under Miri: the PAM
# conversation driven with fake messages (crates/guise/src/sys/pam.rs) and the
# SetThreadToken request protocol driven without signals
# (crates/guise/src/sys/remote.rs). Every test in those two `tests` modules runs
# here, so none of them may call a foreign function (libpam, a credential system
# call): Miri cannot. The rest of the library cannot run under Miri.
#
# Installs what it needs first: the nightly toolchain's miri and rust-src
# components and Miri's sysroot (std's sources and their crates from crates.io).
# Outside CI a machine where Miri cannot be installed is a visible skip; under
# CI=true it is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

cannot_run() {
    if [ "${CI:-}" = true ]; then
        die "Miri cannot run: $1"
    fi
    log "skipped: Miri cannot run: $1"
    exit 0
}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    log "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal >&2 || cannot_run "no nightly toolchain"
fi
rustup component add --toolchain nightly miri rust-src >&2 \
    || cannot_run "the miri and rust-src components of nightly cannot be installed"
cargo +nightly miri setup >&2 || cannot_run "cargo miri setup failed (see above)"

modules=(sys::pam::tests:: sys::remote::tests::)
expected=0
for f in crates/guise/src/sys/pam.rs crates/guise/src/sys/remote.rs; do
    expected=$((expected + $(grep -c '^ *#\[test\]' "$f")))
done

log "Miri: ${modules[*]} ($expected tests)"
# No crate feature is needed by these tests: without them Miri builds far fewer
# crates. rustix (libc backend under Miri) casts an integer to a pointer for
# futex's timeout argument: permissive provenance lets Miri accept it quietly.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
MIRIFLAGS="-Zmiri-permissive-provenance ${MIRIFLAGS:-}" \
    cargo +nightly miri test --locked -p guise-impersonation --lib --no-default-features \
    -- "${modules[@]}" 2>&1 | tee "$out" >&2
# A filter that matched nothing, or fewer tests than the modules hold, is a
# failure too: this job must be able to fail.
ran=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$out" | tail -n 1)
[ "${ran:-0}" -eq "$expected" ] || die "Miri ran ${ran:-0} tests, expected $expected"
log "Miri: $ran tests passed"
