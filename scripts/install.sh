#!/usr/bin/env bash
# Installs guise where the system expects each part:
#   the binary            $PREFIX/bin/guise                      (PREFIX=/usr/local)
#   manual pages          $PREFIX/share/man/man1/guise*.1
#   completions           bash, zsh and fish vendor directories under /usr/share
#   systemd units         /etc/systemd/system/guise-*.{socket,service}
#                         (/usr/lib/systemd/system with PREFIX=/usr, as a package)
#   the PAM service       /etc/pam.d/guise        (kept if it exists; --force replaces)
#   the D-Bus policy      /etc/dbus-1/system.d/org.guise.Files1.conf
#                         (/usr/share/dbus-1/system.d with PREFIX=/usr)
#   D-Bus activation      /usr/share/dbus-1/system-services/org.guise.Files1.service
# DESTDIR=DIR stages everything under DIR (for packaging): a directory of the
# caller's own that no one else may write to, made for the purpose
# (stage=$(mktemp -d); DESTDIR=$stage ...), never a fixed name in /tmp, which another
# user can make first and swap the staged binary in. --no-build installs the binary
# already built (target/release/guise).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

build=1
force=0
for arg in "$@"; do
    case $arg in
        --no-build) build=0 ;;
        --force) force=1 ;;
        *) die "unknown option $arg (--no-build, --force)" ;;
    esac
done
prefix=${PREFIX:-/usr/local}
dest=${DESTDIR:-}
# Installed as the system's own (a package, PREFIX=/usr): the vendor directories,
# which the administrator overrides in /etc. Else the administrator's own: /etc.
if [ "$prefix" = /usr ]; then
    unitdir=/usr/lib/systemd/system
    dbuspolicydir=/usr/share/dbus-1/system.d
else
    unitdir=/etc/systemd/system
    dbuspolicydir=/etc/dbus-1/system.d
fi

# A staging directory another user owns or may write to (a fixed name in /tmp that
# they made first) would let them swap the staged binary before it is packaged.
if [ -n "$dest" ]; then
    own='stage into a directory of your own (stage=$(mktemp -d))'
    if [ -L "$dest" ]; then
        die "DESTDIR $dest is a symbolic link: $own"
    fi
    if [ ! -e "$dest" ]; then
        mkdir -m 0755 -- "$dest" || die "cannot make DESTDIR $dest"
    fi
    [ -d "$dest" ] || die "DESTDIR $dest is not a directory"
    owner=$(stat -c %u -- "$dest")
    mode=$(stat -c %a -- "$dest")
    if [ "$owner" != "$(id -u)" ]; then
        die "DESTDIR $dest belongs to uid $owner, not to you: $own"
    fi
    if (( 8#$mode & 8#022 )); then
        die "DESTDIR $dest may be written by others (mode $mode): $own"
    fi
fi

if [ "$build" = 1 ]; then
    log "building the release binary"
    cargo build --release --locked -p guise-cli
fi
bin=target/release/guise
[ -x "$bin" ] || die "$bin is not built (run without --no-build)"

put() { # put MODE SOURCE TARGET
    install -D -m "$1" "$2" "$dest$3"
    printf '  %s\n' "$dest$3" >&2
}

log "installing into ${dest:-/}"
put 0755 "$bin" "$prefix/bin/guise"
pages=$(mktemp -d)
trap 'rm -rf "$pages"' EXIT
"$bin" man --out-dir "$pages"
for page in "$pages"/*.1; do
    put 0644 "$page" "$prefix/share/man/man1/$(basename "$page")"
done
"$bin" completions bash > "$pages/guise.bash"
"$bin" completions zsh > "$pages/_guise"
"$bin" completions fish > "$pages/guise.fish"
put 0644 "$pages/guise.bash" /usr/share/bash-completion/completions/guise
put 0644 "$pages/_guise" /usr/share/zsh/vendor-completions/_guise
put 0644 "$pages/guise.fish" /usr/share/fish/vendor_completions.d/guise.fish
for unit in contrib/systemd/*; do
    # The units name the binary where it was installed.
    sed "s#/usr/local/bin/guise#$prefix/bin/guise#" "$unit" > "$pages/$(basename "$unit")"
    put 0644 "$pages/$(basename "$unit")" "$unitdir/$(basename "$unit")"
done
if [ -e "$dest/etc/pam.d/guise" ] && [ "$force" = 0 ]; then
    log "keeping the existing $dest/etc/pam.d/guise (--force replaces it)"
else
    put 0644 contrib/pam.d/guise /etc/pam.d/guise
fi
put 0644 contrib/dbus/org.guise.Files1.conf "$dbuspolicydir/org.guise.Files1.conf"
sed "s#/usr/local/bin/guise#$prefix/bin/guise#" contrib/dbus/org.guise.Files1.service > "$pages/org.guise.Files1.service"
put 0644 "$pages/org.guise.Files1.service" /usr/share/dbus-1/system-services/org.guise.Files1.service
if [ -z "$dest" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    log "enable the services with: systemctl enable --now guise-serve.socket guise-rpc.socket"
    log "  (remote Kerberos callers: guise-rpc-kerberos.socket, with /etc/guise/guise.keytab;"
    log "   D-Bus: guise-dbus.service is started by the bus on the first call)"
fi
log "installed"
