//! A throwaway MIT Kerberos realm on loopback for the tests: its database, a
//! `krb5kdc` in the foreground on a free port, principals with passwords or in a
//! keytab. Everything lives in a temporary directory and names it through
//! `KRB5_CONFIG` and `KRB5_KDC_PROFILE`; the machine's own configuration is never
//! read or changed. The KDC stops when the realm is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The realm's name.
pub const REALM: &str = "GUISE.TEST";

/// A running realm.
pub struct Realm {
    dir: tempfile::TempDir,
    kdc: Child,
    /// The KDC's port on 127.0.0.1 (UDP and TCP).
    pub port: u16,
}

impl Drop for Realm {
    fn drop(&mut self) {
        let _ = self.kdc.kill();
        let _ = self.kdc.wait();
    }
}

/// Whether MIT Kerberos' KDC and tools are installed (krb5-kdc, krb5-admin-server,
/// krb5-user).
pub fn available() -> bool {
    ["krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist"]
        .iter()
        .all(|p| which(p).is_some())
}

/// The full path of `program` on PATH or in the sbin directories.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A free TCP port on loopback (also free for UDP in practice).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Realm {
    /// Creates the realm's database and starts its KDC.
    pub fn start() -> Realm {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // krb5.conf is read by every client, also by server threads that
        // impersonate one: the directory is open to all (the database and keytabs
        // in it are not).
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let port = free_port();
        std::fs::write(
            d.join("krb5.conf"),
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n \
                 dns_lookup_realm = false\n rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 1\n \
                 forwardable = true\n\
                 [realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n\
                 [domain_realm]\n localhost = {REALM}\n .localhost = {REALM}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("kdc.conf"),
            format!(
                "[kdcdefaults]\n kdc_ports = {port}\n kdc_tcp_ports = {port}\n\
                 [realms]\n {REALM} = {{\n  database_name = {db}\n  key_stash_file = {stash}\n  \
                 acl_file = {acl}\n  max_life = 1h\n  max_renewable_life = 1d\n }}\n\
                 [logging]\n kdc = FILE:{log}\n",
                db = d.join("principal").display(),
                stash = d.join("stash").display(),
                acl = d.join("kadm5.acl").display(),
                log = d.join("kdc.log").display(),
            ),
        )
        .unwrap();
        std::fs::write(d.join("kadm5.acl"), "").unwrap();
        let realm_cmd = |program: &str| {
            let mut c = Command::new(which(program).unwrap_or_else(|| program.into()));
            c.env("KRB5_CONFIG", d.join("krb5.conf"))
                .env("KRB5_KDC_PROFILE", d.join("kdc.conf"));
            c
        };
        let out = realm_cmd("kdb5_util")
            .args([
                "create",
                "-s",
                "-r",
                REALM,
                "-P",
                "the master key of a test realm",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "kdb5_util: {out:?}");
        let kdc = realm_cmd("krb5kdc")
            .args(["-n", "-r", REALM])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let realm = Realm { dir, kdc, port };
        // Ready once it answers on TCP.
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the KDC did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        realm
    }

    /// The realm's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `krb5.conf` that names this realm (for `KRB5_CONFIG`).
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// Runs `kadmin.local -q QUERY` on the realm's database.
    pub fn kadmin(&self, query: &str) {
        let out = Command::new(which("kadmin.local").unwrap())
            .args(["-r", REALM, "-q", query])
            .env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.dir.path().join("kdc.conf"))
            .output()
            .unwrap();
        assert!(out.status.success(), "kadmin.local -q {query}: {out:?}");
    }

    /// Adds user principal `name` with `password`.
    pub fn add_user(&self, name: &str, password: &str) {
        self.kadmin(&format!("addprinc -pw \"{password}\" {name}"));
    }

    /// Adds service principal `name` with a random key, written to a keytab file of
    /// its own, which is returned.
    pub fn add_service(&self, name: &str) -> PathBuf {
        let keytab = self
            .dir
            .path()
            .join(format!("{}.keytab", name.replace('/', "_")));
        self.kadmin(&format!("addprinc -randkey {name}"));
        self.kadmin(&format!("ktadd -k {} {name}", keytab.display()));
        keytab
    }

    /// Gets a ticket-granting ticket for `principal` with `password` into the cache
    /// file `cache` (forwardable, so it can be delegated), with `kinit`; the cache
    /// is then given to `owner`.
    pub fn kinit(&self, principal: &str, password: &str, cache: &Path, owner: u32) {
        let mut child = Command::new(which("kinit").unwrap())
            .args(["-f", "-c"])
            .arg(format!("FILE:{}", cache.display()))
            .arg(principal)
            .env("KRB5_CONFIG", self.krb5_conf())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            format!("{password}\n").as_bytes(),
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "kinit {principal}: {out:?}");
        std::os::unix::fs::chown(cache, Some(owner), Some(owner)).unwrap();
    }
}
