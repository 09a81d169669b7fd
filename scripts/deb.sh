#!/usr/bin/env bash
# Builds the Debian package of guise (cargo-deb) from the release binary, then,
# with --check (root), installs it with dpkg -i, checks what it installed
# (the binary runs, the manual and the units are where the system expects them,
# every unit verifies with systemd-analyze) and removes it again with dpkg --purge.
#   bash scripts/deb.sh            # target/debian/guise_VERSION_ARCH.deb
#   bash scripts/deb.sh --check    # and install, verify, purge
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

check=0
for arg in "$@"; do
    case $arg in
        --check) check=1 ;;
        *) die "unknown option $arg (--check)" ;;
    esac
done
ensure_debs dpkg-dev
if ! cargo deb --version >/dev/null 2>&1; then
    log "installing cargo-deb from crates.io"
    cargo install --locked cargo-deb
fi

target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# A no-op when the release binary is up to date; never an older binary packaged.
cargo build --release --locked -p guise-cli
# The stage is what the package holds: install.sh as a package installs
# (PREFIX=/usr: /usr/bin, /usr/lib/systemd/system, /usr/share/dbus-1).
stage=$target/release/deb-stage
rm -rf "$stage"
mkdir -m 0755 "$stage"
PREFIX=/usr DESTDIR=$stage bash scripts/install.sh --no-build 2>"$stage.log" \
    || { cat "$stage.log" >&2; die "install.sh could not stage the package"; }
rm -f "$stage.log"
rm -f "$target"/debian/guise_*.deb
cargo deb -p guise-cli --no-build --no-strip --locked >/dev/null
deb=$(ls "$target"/debian/guise_*.deb)
log "built $deb"
[ "$check" = 1 ] || exit 0

[ "$(id -u)" -eq 0 ] || die "--check installs the package: it needs root"
ensure_debs systemd
if dpkg -s guise >/dev/null 2>&1; then
    die "a package named guise is installed already; --check installs and purges its own"
fi
contents=$(dpkg-deb --contents "$deb")
# Installing and purging must not replace or remove what is already on this
# machine (an install.sh install, an administrator's PAM file): refused then.
while read -r path; do
    [ -e "/$path" ] && [ ! -d "/$path" ] && die "/$path exists already: --check installs and purges the package, which would replace or remove it (run it on a machine without guise)"
done < <(dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's#^\./##')
for f in ./usr/bin/guise ./usr/share/man/man1/guise.1 ./usr/share/man/man1/guise-serve.1 \
    ./usr/lib/systemd/system/guise-serve.socket ./usr/lib/systemd/system/guise-serve.service \
    ./usr/lib/systemd/system/guise-rpc.socket ./usr/lib/systemd/system/guise-rpc.service \
    ./usr/lib/systemd/system/guise-rpc-kerberos.socket ./usr/lib/systemd/system/guise-rpc-kerberos.service \
    ./usr/lib/systemd/system/guise-dbus.service ./usr/share/dbus-1/system.d/org.guise.Files1.conf \
    ./usr/share/dbus-1/system-services/org.guise.Files1.service ./etc/pam.d/guise \
    ./usr/share/bash-completion/completions/guise; do
    grep -q " $f\$" <<<"$contents" || die "the package lacks $f"
done
dpkg-deb --field "$deb" Depends | grep -q libpam0g || die "the package does not depend on libpam0g"

log "dpkg -i $(basename "$deb")"
trap 'dpkg --purge guise >/dev/null 2>&1 || true' EXIT
dpkg -i "$deb" >/dev/null
dpkg -s guise | grep -q '^Status: install ok installed' || die "dpkg did not install guise"
/usr/bin/guise --version | grep -q '^guise ' || die "the installed guise does not run"
/usr/bin/guise whoami --json | grep -q '"ok":true' || die "the installed guise whoami fails"
grep -q '^Exec=/usr/bin/guise dbus serve' /usr/share/dbus-1/system-services/org.guise.Files1.service \
    || die "the activation file does not start /usr/bin/guise"
grep -q '^SystemdService=guise-dbus.service' /usr/share/dbus-1/system-services/org.guise.Files1.service \
    || die "the activation file does not start guise-dbus.service"
units=$(dpkg -L guise | grep '^/usr/lib/systemd/system/')
[ "$(wc -l <<<"$units")" -eq 7 ] || die "expected 7 units, the package has: $units"
log "systemd-analyze verify of the installed units"
# shellcheck disable=SC2086
out=$(systemd-analyze verify --man=no $units 2>&1) || die "systemd-analyze verify failed: $out"
[ -z "$out" ] || die "systemd-analyze verify complained: $out"
for unit in $units; do
    grep -q '^ExecStart=/usr/bin/guise ' "$unit" || case $unit in *.socket) ;; *) die "$unit does not start /usr/bin/guise" ;; esac
done
dpkg --purge guise >/dev/null
trap - EXIT
[ ! -e /usr/bin/guise ] || die "dpkg --purge left /usr/bin/guise"
[ ! -e /usr/lib/systemd/system/guise-serve.service ] || die "dpkg --purge left the units"
log "the package installs, its units verify, and it purges"
