//! A throwaway MIT Kerberos realm on loopback for the tests: its database, a
//! `krb5kdc` in the foreground on a free port, principals with passwords or in a
//! keytab. Everything lives in a temporary directory and names it through
//! `KRB5_CONFIG` and `KRB5_KDC_PROFILE`; the machine's own configuration is never
//! read or changed. The KDC stops when the realm is dropped.
//!
//! [`Realm::start_ldap`] keeps the realm's database in a private OpenLDAP
//! server (slapd, on a free port) through MIT's kldap module: the database
//! that can say which services may delegate to which (constrained delegation,
//! `krbAllowedToDelegateTo`), which MIT's default db2 module cannot.

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
    /// The directory server of an LDAP realm, and its port.
    ldap: Option<(Child, u16)>,
}

impl Drop for Realm {
    fn drop(&mut self) {
        let _ = self.kdc.kill();
        let _ = self.kdc.wait();
        if let Some((slapd, _)) = &mut self.ldap {
            let _ = slapd.kill();
            let _ = slapd.wait();
        }
    }
}

/// The directory server's administrator and the base of its tree.
const LDAP_ADMIN: &str = "cn=admin,dc=guise,dc=test";
const LDAP_PASSWORD: &str = "directory-password";
const LDAP_BASE: &str = "dc=guise,dc=test";

/// Whether a realm in OpenLDAP can be made (slapd, ldap-utils, krb5-kdc-ldap).
pub fn ldap_available() -> bool {
    available()
        && ["slapd", "ldapadd", "ldapmodify", "kdb5_ldap_util"]
            .iter()
            .all(|p| which(p).is_some())
        && Path::new("/usr/lib/x86_64-linux-gnu/krb5/plugins/kdb/kldap.so").exists()
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
    /// Creates the realm's database (MIT's db2) and starts its KDC.
    pub fn start() -> Realm {
        Self::start_with(false)
    }

    /// Creates the realm's database in a private OpenLDAP server and starts its
    /// KDC: a realm where constrained delegation can be allowed
    /// ([`Realm::allow_delegation`]).
    pub fn start_ldap() -> Realm {
        Self::start_with(true)
    }

    fn start_with(ldap: bool) -> Realm {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // krb5.conf is read by every client, also by server threads that
        // impersonate one: the directory is open to all (the database and keytabs
        // in it are not).
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut port = free_port();
        let slapd = ldap.then(|| start_slapd(d));
        let (module, dbmodules) = match &slapd {
            Some((_, lport)) => (
                "  database_module = ldapconf\n".to_owned(),
                format!(
                    "[dbmodules]\n ldapconf = {{\n  db_library = kldap\n  \
                     ldap_kerberos_container_dn = cn=krbContainer,{LDAP_BASE}\n  \
                     ldap_kdc_dn = {LDAP_ADMIN}\n  ldap_kadmind_dn = {LDAP_ADMIN}\n  \
                     ldap_service_password_file = {stash}\n  \
                     ldap_servers = ldap://127.0.0.1:{lport}\n }}\n",
                    stash = d.join("service.stash").display()
                ),
            ),
            None => (String::new(), String::new()),
        };
        // The port is chosen before the KDC binds it: another process may take
        // it first (a test's ephemeral socket), so a KDC that exits is started
        // again on another port.
        let write_conf = |port: u16| {
            std::fs::write(
                d.join("krb5.conf"),
                format!(
                    "[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n \
                     dns_lookup_realm = false\n rdns = false\n dns_canonicalize_hostname = false\n \
                     udp_preference_limit = 1\n forwardable = true\n\
                     [realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n{module} }}\n\
                     [domain_realm]\n localhost = {REALM}\n .localhost = {REALM}\n{dbmodules}"
                ),
            )
            .unwrap();
            std::fs::write(
                d.join("kdc.conf"),
                format!(
                    "[kdcdefaults]\n kdc_ports = {port}\n kdc_tcp_ports = {port}\n\
                     [realms]\n {REALM} = {{\n  database_name = {db}\n  key_stash_file = {stash}\n  \
                     acl_file = {acl}\n  max_life = 1h\n  max_renewable_life = 1d\n{module} }}\n\
                     [logging]\n kdc = FILE:{log}\n",
                    db = d.join("principal").display(),
                    stash = d.join("stash").display(),
                    acl = d.join("kadm5.acl").display(),
                    log = d.join("kdc.log").display(),
                ),
            )
            .unwrap();
        };
        write_conf(port);
        std::fs::write(d.join("kadm5.acl"), "").unwrap();
        let realm_cmd = |program: &str| {
            let mut c = Command::new(which(program).unwrap_or_else(|| program.into()));
            c.env("KRB5_CONFIG", d.join("krb5.conf"))
                .env("KRB5_KDC_PROFILE", d.join("kdc.conf"));
            c
        };
        let master = "the master key of a test realm";
        let out = match &slapd {
            None => realm_cmd("kdb5_util")
                .args(["create", "-s", "-r", REALM, "-P", master])
                .output()
                .unwrap(),
            Some((_, lport)) => {
                let url = format!("ldap://127.0.0.1:{lport}");
                let out = realm_cmd("kdb5_ldap_util")
                    .args(["-D", LDAP_ADMIN, "-w", LDAP_PASSWORD, "-H", &url])
                    .args([
                        "create",
                        "-subtrees",
                        LDAP_BASE,
                        "-r",
                        REALM,
                        "-s",
                        "-P",
                        master,
                    ])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "kdb5_ldap_util create: {out:?}");
                with_stdin(
                    realm_cmd("kdb5_ldap_util")
                        .args(["-D", LDAP_ADMIN, "-w", LDAP_PASSWORD, "-H", &url])
                        .args(["stashsrvpw", "-f"])
                        .arg(d.join("service.stash"))
                        .arg(LDAP_ADMIN),
                    &format!("{LDAP_PASSWORD}\n{LDAP_PASSWORD}\n"),
                )
            }
        };
        assert!(
            out.status.success(),
            "creating the realm's database: {out:?}"
        );
        let start_kdc = || {
            realm_cmd("krb5kdc")
                .args(["-n", "-r", REALM])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        // Ready once it logged that it serves (after binding every port) and
        // still runs; a KDC that exited (its port taken) starts again elsewhere.
        let mut kdc = start_kdc();
        let t = Instant::now();
        for attempt in 1.. {
            let log = std::fs::read_to_string(d.join("kdc.log")).unwrap_or_default();
            let exited = kdc.try_wait().unwrap();
            if exited.is_none() && log.contains("commencing operation") {
                break;
            }
            if let Some(status) = exited {
                assert!(attempt < 50, "the KDC keeps exiting ({status}): {log}");
                port = free_port();
                write_conf(port);
                kdc = start_kdc();
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the KDC did not start: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Realm {
            dir,
            kdc,
            port,
            ldap: slapd,
        }
    }

    /// Lets service `from` delegate to service `to` for any client
    /// (`krbAllowedToDelegateTo`: constrained delegation, S4U2Proxy). An LDAP
    /// realm only.
    pub fn allow_delegation(&self, from: &str, to: &str) {
        let (_, lport) = self.ldap.as_ref().expect("an LDAP realm");
        let change = format!(
            "dn: krbPrincipalName={from},cn={REALM},cn=krbContainer,{LDAP_BASE}\n\
             changetype: modify\nadd: krbAllowedToDelegateTo\nkrbAllowedToDelegateTo: {to}\n"
        );
        ldap_tool("ldapmodify", *lport, &change);
    }

    /// The processes of the realm (the KDC, and slapd for an LDAP realm), for a
    /// realm that is never dropped to stop at exit.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.kdc.id())
            .chain(self.ldap.as_ref().map(|(s, _)| s.id()))
            .collect()
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
    /// its own, which is returned. The service is marked OK-AS-DELEGATE (trusted
    /// for delegation), so that a client's `--delegate` forwards its ticket to it;
    /// [`Realm::kadmin`] with `modprinc -ok_as_delegate NAME` takes that away.
    pub fn add_service(&self, name: &str) -> PathBuf {
        let keytab = self
            .dir
            .path()
            .join(format!("{}.keytab", name.replace('/', "_")));
        self.kadmin(&format!("addprinc -randkey +ok_as_delegate {name}"));
        self.kadmin(&format!("ktadd -k {} {name}", keytab.display()));
        keytab
    }

    /// Gets a ticket-granting ticket for `principal` with `password` into the cache
    /// file `cache` (forwardable, so it can be delegated), with `kinit`; the cache
    /// is then given to `owner`.
    pub fn kinit(&self, principal: &str, password: &str, cache: &Path, owner: u32) {
        let out = with_stdin(
            Command::new(which("kinit").unwrap())
                .args(["-f", "-c"])
                .arg(format!("FILE:{}", cache.display()))
                .arg(principal)
                .env("KRB5_CONFIG", self.krb5_conf()),
            &format!("{password}\n"),
        );
        assert!(out.status.success(), "kinit {principal}: {out:?}");
        std::os::unix::fs::chown(cache, Some(owner), Some(owner)).unwrap();
    }
}

/// Runs `program` (ldapadd, ldapmodify) as the directory's administrator with
/// `ldif` on stdin.
fn ldap_tool(program: &str, port: u16, ldif: &str) {
    let out = with_stdin(
        Command::new(which(program).unwrap()).args([
            "-x",
            "-H",
            &format!("ldap://127.0.0.1:{port}"),
            "-D",
            LDAP_ADMIN,
            "-w",
            LDAP_PASSWORD,
        ]),
        ldif,
    );
    assert!(out.status.success(), "{program}: {out:?}");
}

/// Starts a private slapd for the realm's database in `d`, on a free port, with
/// the Kerberos schema of krb5-kdc-ldap; returns it and its port.
fn start_slapd(d: &Path) -> (Child, u16) {
    let schema = Command::new("zcat")
        .arg("/usr/share/doc/krb5-kdc-ldap/kerberos.schema.gz")
        .output()
        .unwrap();
    assert!(schema.status.success(), "the Kerberos schema: {schema:?}");
    std::fs::write(d.join("kerberos.schema"), &schema.stdout).unwrap();
    std::fs::create_dir(d.join("ldap")).unwrap();
    std::fs::write(
        d.join("slapd.conf"),
        format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/nis.schema\ninclude /etc/ldap/schema/inetorgperson.schema\n\
             include {schema}\npidfile {pid}\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             database mdb\nsuffix \"{LDAP_BASE}\"\nrootdn \"{LDAP_ADMIN}\"\nrootpw {LDAP_PASSWORD}\n\
             directory {db}\nmaxsize 104857600\n",
            schema = d.join("kerberos.schema").display(),
            pid = d.join("slapd.pid").display(),
            db = d.join("ldap").display(),
        ),
    )
    .unwrap();
    let port = free_port();
    let slapd = Command::new(which("slapd").unwrap())
        .arg("-f")
        .arg(d.join("slapd.conf"))
        .args(["-h", &format!("ldap://127.0.0.1:{port}/"), "-d", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "slapd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    ldap_tool(
        "ldapadd",
        port,
        &format!(
            "dn: {LDAP_BASE}\nobjectClass: dcObject\nobjectClass: organization\no: guise\ndc: guise\n"
        ),
    );
    (slapd, port)
}

/// Authenticates once to `acceptor` over loopback TCP, the context started by
/// `start` (on a blocking thread: it may impersonate); returns what the server
/// knows of the client.
#[cfg(feature = "kerberos")]
pub fn network_client(
    rt: &tokio::runtime::Runtime,
    acceptor: &guise::kerberos::Acceptor,
    start: impl FnOnce() -> guise::Result<guise::kerberos::Initiator> + Send + 'static,
) -> guise::client::PeerIdentity {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = async {
            let (tcp, from) = listener.accept().await.unwrap();
            acceptor.accept(tcp, from).await.unwrap()
        };
        let client = async {
            let initiator = tokio::task::spawn_blocking(start).await.unwrap().unwrap();
            let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
            initiator.connect(tcp).await.unwrap()
        };
        let ((_, peer), _) = tokio::join!(server, client);
        peer
    })
}

/// The token of `peer` at `level` (what the client allowed), as a server's
/// client core makes it.
pub fn token_at(
    peer: guise::client::PeerIdentity,
    level: guise::ImpersonationLevel,
) -> guise::Token {
    let mut ctx = guise::client::ClientContext::new(std::sync::Arc::new(peer), level);
    ctx.set_qos(guise::client::SecurityQos {
        level,
        ..guise::client::SecurityQos::default()
    });
    ctx.message_received(None);
    ctx.token().unwrap()
}

/// `klist` started from `token` (as a primary token): exit code and output.
pub fn klist_from(token: &guise::Token) -> (i32, String) {
    run_from(token, &which("klist").unwrap(), &[])
}

/// `program ARGS` started from `token` (as a primary token): exit code and
/// output (stdout, then stderr).
pub fn run_from(token: &guise::Token, program: &Path, args: &[&str]) -> (i32, String) {
    use guise::process::CommandExt;
    let primary = token
        .duplicate(
            guise::ImpersonationLevel::Impersonation,
            guise::TokenType::Primary,
        )
        .unwrap();
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_as_user(&primary, &guise::process::SpawnOptions::default())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs `cmd` with `input` on its stdin; its output.
fn with_stdin(cmd: &mut Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Whether `dir` is removed within a few seconds (a thread of its own removes
/// delegated caches).
pub fn gone(dir: &Path) -> bool {
    let t = Instant::now();
    while dir.exists() {
        if t.elapsed() > Duration::from_secs(5) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// `guise whoami --all --json` started from `token`: what it reports.
pub fn whoami_from(token: &guise::Token) -> serde_json::Value {
    let (code, out) = run_from(
        token,
        Path::new(super::GUISE),
        &["whoami", "--all", "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["ok"], true, "{v}");
    v["data"].clone()
}

/// Asserts that `klist` printed `user`'s ticket-granting ticket of the realm.
pub fn assert_tgt_of(klist: &str, user: &str) {
    assert!(
        klist.contains(&format!("Default principal: {user}@{REALM}")),
        "{klist}"
    );
    assert!(
        klist.contains(&format!("krbtgt/{REALM}@{REALM}")),
        "{klist}"
    );
}
