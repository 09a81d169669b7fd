#!/usr/bin/env bash
# What `cargo add guise-impersonation` gives a new user: builds a throwaway crate
# against the library as packaged (`cargo package`), with its default features,
# on a machine that has only build-essential, pkg-config and libpam0g-dev. MIT
# krb5 (headers, pkg-config files and libraries) and libclang are hidden from the
# build in a private mount namespace, so a default feature that needs either fails
# here. The built program runs in the same namespace (so it needs neither at run
# time) and its ELF needs are checked.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
[ "$(id -u)" -eq 0 ] || die "package-check.sh needs root (a private mount namespace)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo package -p guise-impersonation --locked --quiet --no-verify --allow-dirty --target-dir "$work/package"
tar -xzf "$work"/package/package/guise-impersonation-*.crate -C "$work"
lib=$(echo "$work"/guise-impersonation-*/)
mkdir -p "$work/newcomer/src"
cat > "$work/newcomer/Cargo.toml" <<TOML
[package]
name = "newcomer"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
guise-impersonation = { path = "$lib" }

[workspace]
TOML
cat > "$work/newcomer/src/main.rs" <<'RS'
//! A newcomer's first program: the process token, and a named pipe server.
fn main() -> guise::Result<()> {
    let token = guise::Token::open_process()?;
    println!("process token of {}", token.user());
    let dir = std::env::temp_dir().join(format!("newcomer-{}", std::process::id()));
    std::fs::create_dir(&dir).expect("a directory of our own");
    let addr = guise::pipe::PipeAddr::Path(dir.join("pipe.sock"));
    let _server = guise::pipe::PipeServer::bind(addr, guise::pipe::ServerOptions::default())?;
    println!("a named pipe server is listening");
    std::fs::remove_dir_all(&dir).expect("removed");
    Ok(())
}
RS
# The versions the workspace is tested with.
cp Cargo.lock "$work/newcomer/"

# What to hide: directories get an empty tmpfs, files /dev/null (a bind mount
# follows a symlink to the file it names, so the real libraries are hidden).
hide_dirs=() hide_files=()
for d in /usr/lib/llvm-* /usr/include/krb5 /usr/include/gssapi /usr/include/mit-krb5 \
    /usr/include/kadm5 /usr/lib/x86_64-linux-gnu/mit-krb5 /usr/lib/x86_64-linux-gnu/pkgconfig/mit-krb5; do
    [ -d "$d" ] && hide_dirs+=("$d")
done
for f in /usr/include/krb5.h /usr/include/gssapi.h /usr/include/profile.h \
    /usr/lib/x86_64-linux-gnu/libclang* /usr/lib/x86_64-linux-gnu/libkrb5* \
    /usr/lib/x86_64-linux-gnu/libgssapi_krb5* /usr/lib/x86_64-linux-gnu/libk5crypto* \
    /usr/lib/x86_64-linux-gnu/pkgconfig/krb5*.pc /usr/lib/x86_64-linux-gnu/pkgconfig/mit-krb5*.pc; do
    [ -f "$f" ] && hide_files+=("$(realpath "$f")")
done
log "building a throwaway crate against the packaged library, default features, krb5 and libclang hidden"
unshare -m bash -euo pipefail -s "$work/newcomer" "${#hide_files[@]}" "${hide_files[@]}" "${hide_dirs[@]}" <<'SH'
crate=$1 nfiles=$2
shift 2
mount --make-rprivate /
# Files first: some lie in the directories hidden next.
for ((i = 0; i < nfiles; i++)); do mount --bind /dev/null "$1"; shift; done
for d in "$@"; do mount -t tmpfs -o ro,size=1k none "$d"; done
# Nothing of either is left to find.
if compgen -G "/usr/include/krb5*/*.h" >/dev/null || pkg-config --exists krb5-gssapi 2>/dev/null \
    || [ -s "$(realpath /usr/lib/x86_64-linux-gnu/libkrb5.so.3 2>/dev/null)" ]; then
    echo "krb5 is still visible" >&2; exit 1
fi
cd "$crate"
CARGO_TARGET_DIR=$crate/target cargo build --quiet
./target/debug/newcomer
SH
needed=$(readelf -d "$work/newcomer/target/debug/newcomer" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
log "the program needs: $needed"
case "$needed" in
    *krb5* | *gssapi* | *clang*) die "a default build links $needed" ;;
esac
