//! Kerberos on a real MIT realm (`common::kdc`): the network credentials of tokens.
//! A LogonUser token carries the ticket the system's PAM stack obtained (pam_krb5;
//! guise does no kinit of its own) in a cache of its own, and a process started
//! from it reaches the network as the user; a token made without a logon has none.

#[path = "../../guise/tests/common/accounts.rs"]
#[allow(dead_code)]
mod accounts;
mod common;

use common::kdc::{self, Realm};

fn pam_krb5() -> bool {
    std::path::Path::new("/lib/x86_64-linux-gnu/security/pam_krb5.so").exists()
}

macro_rules! need_realm {
    () => {
        need_root!();
        if common::skip::skip_unless(
            kdc::available() && pam_krb5(),
            "MIT Kerberos (krb5-kdc, krb5-admin-server, krb5-user) and libpam-krb5",
        ) {
            return;
        }
    };
}

/// Runs `guise ARGS` with the realm's configuration, `stdin`, and `env`.
fn guise(realm: &Realm, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let conf = realm.krb5_conf();
    let mut all: Vec<(&str, &std::ffi::OsStr)> = vec![("KRB5_CONFIG", conf.as_os_str())];
    all.extend(env.iter().map(|&(k, v)| (k, std::ffi::OsStr::new(v))));
    common::guise_with_env(args, stdin, &all)
}

#[test]
fn a_process_started_from_a_kerberos_logon_shows_the_users_ticket() {
    need_realm!();
    let a = accounts::accounts();
    let realm = Realm::start();
    realm.add_user("alice", accounts::PASSWORD);
    let (pam, _) = common::pam_dir(
        "krb5",
        "auth required pam_krb5.so minimum_uid=1000\naccount required pam_unix.so\n\
         session required pam_unix.so\n",
    );
    let dir = pam.path().to_str().unwrap();
    let logon = [
        "run",
        "--user",
        "alice",
        "--password-stdin",
        "--pam-service",
        "krb5",
        "--pam-config-dir",
        dir,
        "--",
    ];
    // A cache the guise process itself names is never the token's: the program
    // gets the logon's own.
    let decoy = [("KRB5CCNAME", "FILE:/nonexistent/decoy")];
    let (code, out, err) = guise(
        &realm,
        &[&logon[..], &["klist"]].concat(),
        &format!("{}\n", accounts::PASSWORD),
        &decoy,
    );
    assert_eq!(code, 0, "{err}\n{out}");
    kdc::assert_tgt_of(&out, "alice");
    assert!(!out.contains("decoy"), "{out}");
    // The token says it has network credentials.
    let (code, out, err) = guise(
        &realm,
        &[&logon[..], &[common::GUISE, "whoami", "--all", "--json"]].concat(),
        &format!("{}\n", accounts::PASSWORD),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let whoami = json(&out);
    assert_eq!(whoami["kernel"]["uid"]["effective"], 61201, "{whoami}");
    assert_eq!(
        whoami["network_credentials"], true,
        "the logon's process: {whoami}"
    );
    drop(a);
    // A wrong password gets no ticket and no process.
    let (code, _, err) = guise(&realm, &[&logon[..], &["klist"]].concat(), "wrong\n", &[]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("ERROR_LOGON_FAILURE"), "{err}");
}

#[test]
fn a_process_from_a_token_without_a_logon_has_no_ticket() {
    need_realm!();
    let realm = Realm::start();
    // Ids alone: no password was seen, so no ticket can exist; the process has no
    // cache, and the one the guise process names does not reach it.
    let (code, out, err) = guise(
        &realm,
        &["run", "--uid", "61201", "--", "klist"],
        "",
        &[("KRB5CCNAME", "FILE:/tmp/the-servers-own-cache")],
    );
    assert_ne!(code, 0, "klist found credentials: {out}");
    assert!(
        !err.contains("the-servers-own-cache") && !out.contains("Default principal"),
        "{out}{err}"
    );
    // And guise says so.
    let (code, out, err) = guise(
        &realm,
        &[
            "run",
            "--uid",
            "61201",
            "--",
            common::GUISE,
            "whoami",
            "--all",
            "--json",
        ],
        "",
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let whoami = json(&out);
    assert_eq!(whoami["network_credentials"], false, "{whoami}");
}

// ---------------------------------------------------------------------------
// Remote clients: `guise rpc serve --listen tcp://… --keytab …` and
// `guise rpc call --connect tcp://… --kerberos`.

/// The service principal of the test servers (host-based `guise@localhost`).
const SERVICE: &str = "guise/localhost@GUISE.TEST";
/// The service principal of a second tier, at 127.0.0.1 (`guise@127.0.0.1`).
const SECOND: &str = "guise/127.0.0.1@GUISE.TEST";
/// The service principal of another second tier, at 127.0.0.2.
const THIRD: &str = "guise/127.0.0.2@GUISE.TEST";

/// A realm with alice and bob (local accounts), erin (no local account), the
/// service's keytab, and a served tree: alice's and bob's 0600 files.
struct Remote {
    realm: Realm,
    keytab: std::path::PathBuf,
    second: std::path::PathBuf,
    third: std::path::PathBuf,
    root: std::path::PathBuf,
    dir: tempfile::TempDir,
    _tree: tempfile::TempDir,
    _accounts: accounts::Accounts,
}

impl Remote {
    fn start() -> Remote {
        Self::start_in(Realm::start())
    }

    /// As [`Remote::start`], in `realm` (an LDAP realm, say).
    fn start_in(realm: Realm) -> Remote {
        let accounts = accounts::accounts();
        for user in ["alice", "bob", "erin"] {
            realm.add_user(user, accounts::PASSWORD);
        }
        let keytab = realm.add_service(SERVICE);
        let second = realm.add_service(SECOND);
        let third = realm.add_service(THIRD);
        let (tree, root) = common::server::tree();
        common::server::own_file(&root.join("alice.txt"), 61201, 0o600, "alice's secret\n");
        common::server::own_file(&root.join("bob.txt"), 61202, 0o600, "bob's secret\n");
        let dir = tempfile::tempdir().unwrap();
        Remote {
            realm,
            keytab,
            second,
            third,
            root,
            dir,
            _tree: tree,
            _accounts: accounts,
        }
    }

    /// A credential cache with `user`'s ticket-granting ticket (kinit with the
    /// password), owned by root (the client runs as root: only the ticket counts).
    fn kinit(&self, user: &str) -> String {
        let cache = self
            .dir
            .path()
            .join(format!("{}.cc", user.replace('/', "_")));
        self.realm.kinit(user, accounts::PASSWORD, &cache, 0);
        format!("FILE:{}", cache.display())
    }

    /// Starts `guise rpc serve` on TCP alone as [`SERVICE`] on 127.0.0.1;
    /// returns it and its port.
    fn serve(&self, extra: &[&str]) -> (common::server::Server, u16) {
        self.serve_as(&self.keytab, SERVICE, "127.0.0.1", extra)
    }

    /// Starts `guise rpc serve` on TCP alone as `principal` (whose keys are in
    /// `keytab`) on `host`; returns it and its port.
    fn serve_as(
        &self,
        keytab: &std::path::Path,
        principal: &str,
        host: &str,
        extra: &[&str],
    ) -> (common::server::Server, u16) {
        let port = std::net::TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(common::GUISE)
            .args(["rpc", "serve", "--listen"])
            .arg(format!("tcp://{host}:{port}"))
            .arg("--keytab")
            .arg(keytab)
            .args(["--principal", principal, "--root"])
            .arg(&self.root)
            .args(extra)
            .env("KRB5_CONFIG", self.realm.krb5_conf())
            .env("GUISE_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let server = common::server::Server::new(child, self.dir.path().join("none"));
        let t = std::time::Instant::now();
        while std::net::TcpStream::connect((host, port)).is_err() {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "the server did not start: {}",
                server.log_so_far()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        (server, port)
    }

    /// Runs `guise rpc call --connect tcp://localhost:PORT --kerberos ARGS` with
    /// the credential cache `cache`.
    fn call(&self, port: u16, cache: &str, args: &[&str]) -> (i32, String, String) {
        let target = format!("tcp://localhost:{port}");
        let all = [
            &["rpc", "call", "--connect", &target, "--kerberos"][..],
            args,
        ]
        .concat();
        guise(&self.realm, &all, "", &[("KRB5CCNAME", cache)])
    }
}

/// The data of a `--json` success envelope.
fn json(out: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(v["ok"], true, "{v}");
    v["data"].clone()
}

#[test]
fn a_remote_kerberos_client_reads_its_own_file_and_not_another_users() {
    need_realm!();
    let r = Remote::start();
    let (server, port) = r.serve(&[]);
    let alice = r.kinit("alice");
    let imp = ["--level", "impersonation"];
    let (code, out, err) = r.call(port, &alice, &[&imp[..], &["whoami", "--json"]].concat());
    assert_eq!(code, 0, "{err}\n{}", server.log_so_far());
    let id = json(&out);
    assert_eq!(id["uid"], 61201, "{id}");
    assert_eq!(id["principal"], format!("alice@{}", kdc::REALM), "{id}");
    assert_eq!(id["level"], "impersonation", "{id}");
    assert_eq!(
        id["network_credentials"], false,
        "nothing was delegated: {id}"
    );
    assert!(
        id["groups"].as_array().unwrap().contains(&61300.into()),
        "the groups come from NSS: {id}"
    );
    // The server thread is alice: her 0600 file, not bob's.
    let (code, out, err) = r.call(port, &alice, &[&imp[..], &["read", "alice.txt"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "alice's secret\n");
    assert!(
        server
            .wait_for_line(std::time::Duration::from_secs(10), |l| l
                .contains("event=\"request\"")
                && l.contains("uid=61201")
                && l.contains("op=\"read\""))
            .is_some(),
        "the call is audited as alice: {}",
        server.log_so_far()
    );
    let (code, out, err) = r.call(port, &alice, &[&imp[..], &["read", "bob.txt"]].concat());
    assert_ne!(code, 0, "alice read bob's file: {out}");
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
    // Bob, from his own ticket, gets his.
    let bob = r.kinit("bob");
    let (code, out, err) = r.call(port, &bob, &[&imp[..], &["read", "bob.txt"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "bob's secret\n");
}

/// The library's `kerberos_server` example, built now with the `kerberos` feature
/// into this test's own target directory and profile (a no-op when
/// `scripts/test.sh` built it first).
fn kerberos_server_example() -> std::path::PathBuf {
    // <target>/<profile>/deps/<this test>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    let target = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "guise-impersonation",
            "--features",
            "kerberos",
        ])
        .args([
            "--example",
            "kerberos_server",
            "--profile",
            profile,
            "--target-dir",
        ])
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the kerberos_server example: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir.join("examples/kerberos_server")
}

/// The library's example (`crates/guise/examples/kerberos_server.rs`) on a real
/// realm: alice's ticket makes the server alice, who reads her 0600 file and not
/// bob's, and the example prints what the kernel answered.
#[test]
fn the_kerberos_server_example_acts_as_the_remote_client() {
    need_realm!();
    let example = kerberos_server_example();
    let r = Remote::start();
    let alice = r.kinit("alice");
    let out = std::process::Command::new(&example)
        .arg(&r.keytab)
        .arg(SERVICE)
        .arg(r.root.join("alice.txt"))
        .arg(r.root.join("bob.txt"))
        .env("KRB5_CONFIG", r.realm.krb5_conf())
        .env("KRB5CCNAME", &alice)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "server: alice@{} is the local account alice (uid 61201)",
            kdc::REALM
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("alice.txt: the kernel answered as euid 61201: read \"alice's secret\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("bob.txt: the kernel answered as euid 61201: Permission denied"),
        "{stdout}"
    );
}

#[test]
fn a_remote_client_without_a_ticket_is_refused() {
    need_realm!();
    let r = Remote::start();
    let (server, port) = r.serve(&[]);
    let empty = format!("FILE:{}", r.dir.path().join("empty.cc").display());
    let (code, out, err) = r.call(
        port,
        &empty,
        &["--level", "impersonation", "read", "alice.txt"],
    );
    assert_ne!(code, 0, "served without a ticket: {out}");
    assert!(!out.contains("secret"), "{out}");
    assert!(
        err.contains("ERROR_NO_SUCH_LOGON_SESSION") && err.contains("kinit"),
        "{err}"
    );
    // Nothing reached the service as anyone.
    assert!(
        !server.log_so_far().contains("event=\"request\""),
        "{}",
        server.log_so_far()
    );
}

#[test]
fn a_principal_without_a_local_account_is_refused_with_a_clear_error() {
    need_realm!();
    let r = Remote::start();
    let (server, port) = r.serve(&[]);
    let erin = r.kinit("erin");
    let (code, out, err) = r.call(port, &erin, &["--level", "impersonation", "whoami"]);
    assert_ne!(code, 0, "served erin: {out}");
    assert!(
        err.contains(&format!("erin@{}", kdc::REALM)) && err.contains("no account here"),
        "{err}"
    );
    assert!(err.contains("ERROR_NO_SUCH_USER"), "{err}");
    // Erin's refusal, in words (the readiness probe's own refusal comes first).
    assert!(
        server
            .wait_for_line(std::time::Duration::from_secs(10), |l| {
                l.contains("network client") && l.contains("refused: ERROR_NO_SUCH_USER")
            })
            .is_some(),
        "{}",
        server.log_so_far()
    );
}

/// Attack: a client that speaks plain gRPC (HTTP/2, no Kerberos) to the TCP port
/// would be served as whoever the server guessed. It gets a refusal frame and the
/// connection closes; the service never sees a call.
#[test]
fn attack_a_plain_grpc_client_on_tcp_is_refused() {
    use std::io::{Read, Write};
    need_realm!();
    let r = Remote::start();
    let (server, port) = r.serve(&[]);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut reply = Vec::new();
    // The server closes once it has refused; what came before the close counts.
    let _ = s.read_to_end(&mut reply);
    assert_eq!(reply.first(), Some(&2), "not a refusal: {reply:?}");
    let text = String::from_utf8_lossy(&reply[5..]);
    assert!(text.contains("authentication failed"), "{text}");
    drop(s);
    assert!(
        server
            .wait_for_line(std::time::Duration::from_secs(10), |l| l
                .contains("not a guise Kerberos client"))
            .is_some(),
        "{}",
        server.log_so_far()
    );
    assert!(!server.log_so_far().contains("event=\"request\""));
}

/// Three tiers: alice → service A (impersonating alice) → service B, another
/// service. With Delegation (a forwarded ticket) B sees alice; at Impersonation
/// level A has no credentials of alice's (ERROR_NO_SUCH_LOGON_SESSION), and at
/// Delegation level without a forwarded ticket A has only what constrained
/// delegation gives, which this realm's KDC (db2) never allows: B never sees
/// alice.
#[test]
fn three_tiers_delegation_reaches_the_third_tier_and_impersonation_does_not() {
    need_realm!();
    let r = Remote::start();
    let (b, port_b) = r.serve_as(&r.second, SECOND, "127.0.0.1", &[]);
    let (a, port_a) = r.serve(&["--delegate-to", &format!("127.0.0.1:{port_b}")]);
    let alice = r.kinit("alice");
    let there = format!("tcp://127.0.0.1:{port_b}");
    let (code, out, err) = r.call(
        port_a,
        &alice,
        &["--delegate", "whoami-there", &there, "--json"],
    );
    assert_eq!(
        code,
        0,
        "{err}\nA: {}\nB: {}",
        a.log_so_far(),
        b.log_so_far()
    );
    let id = json(&out);
    assert_eq!(id["uid"], 61201, "B saw: {id}");
    assert_eq!(id["principal"], format!("alice@{}", kdc::REALM), "{id}");
    // A holds alice's delegated credentials while it serves her.
    let (code, out, err) = r.call(port_a, &alice, &["--delegate", "whoami", "--json"]);
    assert_eq!(code, 0, "{err}");
    let id = json(&out);
    assert_eq!(id["level"], "delegation", "{id}");
    assert_eq!(id["network_credentials"], true, "{id}");
    let b_log_before = b.log_so_far().matches("alice@").count();
    for (args, why) in [
        // Impersonation level: the ticket is forwarded, but the level forbids its use.
        (
            &["--delegate", "--level", "impersonation"][..],
            "ERROR_NO_SUCH_LOGON_SESSION",
        ),
        // Neither.
        (
            &["--level", "impersonation"][..],
            "ERROR_NO_SUCH_LOGON_SESSION",
        ),
        // Delegation allowed, nothing forwarded: constrained delegation, which
        // this KDC refuses.
        (&["--level", "delegation"][..], "ERROR_LOGON_FAILURE"),
    ] {
        let (code, out, err) = r.call(
            port_a,
            &alice,
            &[args, &["whoami-there", &there, "--json"]].concat(),
        );
        assert_ne!(code, 0, "{args:?}: B answered {out}");
        assert!(!out.contains("61201"), "{args:?}: {out}");
        // Under --json the refusal is the failure envelope on stdout.
        let said = format!("{out}{err}");
        assert!(said.contains(why), "{args:?}: {said}");
    }
    assert_eq!(
        b.log_so_far().matches("alice@").count(),
        b_log_before,
        "B saw alice without delegation: {}",
        b.log_so_far()
    );
}

/// Constrained delegation (S4U2Proxy), in a realm whose KDC keeps its database
/// in LDAP and lets A delegate to B only: alice allows Delegation but forwards
/// nothing; A reaches B as alice, and C, which the KDC does not allow, never
/// sees her. At Impersonation level A reaches no one.
#[test]
fn constrained_delegation_reaches_only_the_services_the_kdc_allows() {
    need_root!();
    if common::skip::skip_unless(
        kdc::ldap_available(),
        "MIT Kerberos with its LDAP module and OpenLDAP (krb5-kdc-ldap, slapd, ldap-utils)",
    ) {
        return;
    }
    let r = Remote::start_in(Realm::start_ldap());
    r.realm.allow_delegation(SERVICE, SECOND);
    let (b, port_b) = r.serve_as(&r.second, SECOND, "127.0.0.1", &[]);
    let (c, port_c) = r.serve_as(&r.third, THIRD, "127.0.0.2", &[]);
    let (a, port_a) = r.serve(&[
        "--delegate-to",
        &format!("127.0.0.1:{port_b}"),
        "--delegate-to",
        &format!("127.0.0.2:{port_c}"),
    ]);
    let alice = r.kinit("alice");
    let to_b = format!("tcp://127.0.0.1:{port_b}");
    let to_c = format!("tcp://127.0.0.2:{port_c}");
    let delegation = ["--level", "delegation"];
    let (code, out, err) = r.call(
        port_a,
        &alice,
        &[&delegation[..], &["whoami-there", &to_b, "--json"]].concat(),
    );
    assert_eq!(
        code,
        0,
        "{err}\nA: {}\nB: {}",
        a.log_so_far(),
        b.log_so_far()
    );
    let id = json(&out);
    assert_eq!(id["uid"], 61201, "B saw: {id}");
    assert_eq!(id["principal"], format!("alice@{}", kdc::REALM), "{id}");
    let (code, out, err) = r.call(
        port_a,
        &alice,
        &[&delegation[..], &["whoami-there", &to_c, "--json"]].concat(),
    );
    assert_ne!(code, 0, "C answered {out}");
    assert!(out.contains("ERROR_LOGON_FAILURE"), "{out}{err}");
    let (code, out, err) = r.call(
        port_a,
        &alice,
        &["--level", "impersonation", "whoami-there", &to_b, "--json"],
    );
    assert_ne!(code, 0, "B answered at Impersonation level: {out}");
    assert!(out.contains("ERROR_NO_SUCH_LOGON_SESSION"), "{out}{err}");
    assert!(
        !c.log_so_far().contains("alice@"),
        "C saw alice: {}",
        c.log_so_far()
    );
}

/// Attack: principals that look like a local user but are not that user's own:
/// `root@REALM` (a remote root) and `alice/admin@REALM` (another principal than
/// alice's). Neither is served as root or alice.
#[test]
fn attack_root_and_instance_principals_are_not_served_as_the_local_user() {
    need_realm!();
    let r = Remote::start();
    r.realm.add_user("root", accounts::PASSWORD);
    r.realm.add_user("alice/admin", accounts::PASSWORD);
    let (server, port) = r.serve(&[]);
    let imp = ["--level", "impersonation", "whoami", "--json"];
    let root = r.kinit("root");
    let (code, out, err) = r.call(port, &root, &imp);
    assert_ne!(code, 0, "served a remote root: {out}");
    assert!(
        out.contains("ERROR_ACCESS_DENIED") && out.contains("remote root"),
        "{out}{err}"
    );
    let admin = r.kinit("alice/admin");
    let (code, out, err) = r.call(port, &admin, &imp);
    assert_ne!(code, 0, "alice/admin was served: {out}");
    assert!(out.contains("ERROR_NO_SUCH_USER"), "{out}{err}");
    assert!(
        !server.log_so_far().contains("event=\"request\""),
        "{}",
        server.log_so_far()
    );
}

/// Attack: one host opens more idle connections than the server will
/// authenticate at once, so no one else can log on. Its handshakes are limited per
/// address: alice, from another address, is still served.
#[test]
fn attack_idle_connections_from_one_host_do_not_lock_out_others() {
    need_realm!();
    let r = Remote::start();
    let (server, port) = r.serve(&["--handshake-timeout", "60"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let idle: Vec<tokio::net::TcpStream> = rt.block_on(async {
        let mut idle = Vec::new();
        for _ in 0..80 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            idle.push(socket.connect(([127, 0, 0, 1], port).into()).await.unwrap());
        }
        idle
    });
    assert!(
        server
            .wait_for_line(std::time::Duration::from_secs(10), |l| l
                .contains("event=\"handshake-evicted\"")
                && l.contains("limit=\"handshakes-per-address\""))
            .is_some(),
        "{}",
        server.log_so_far()
    );
    let alice = r.kinit("alice");
    let (code, out, err) = r.call(
        port,
        &alice,
        &["--level", "impersonation", "whoami", "--json"],
    );
    assert_eq!(code, 0, "{err}\n{}", server.log_so_far());
    assert_eq!(json(&out)["uid"], 61201);
    drop(idle);
}

/// Attack (issue 19): stalled handshakes from many source addresses (8 addresses
/// with 8 each took all 64 places, and 14 of 15 genuine logins failed). Here 256
/// addresses on 16 networks keep connections open that never finish a
/// handshake, reconnecting whenever one is closed, while alice logs on ten
/// times: the handshake limits are fair per address and per network and close
/// the oldest unfinished handshake when full, so at least nine get through.
#[test]
fn attack_stalled_handshakes_from_256_addresses_do_not_lock_out_logins() {
    need_realm!();
    let r = Remote::start();
    let (server, port) = r.serve(&["--handshake-timeout", "60"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = std::thread::spawn({
        let stop = std::sync::Arc::clone(&stop);
        move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let tasks: Vec<_> = (0..256u32)
                    .map(|i| {
                        let stop = std::sync::Arc::clone(&stop);
                        tokio::spawn(async move {
                            use tokio::io::{AsyncReadExt, AsyncWriteExt};
                            let from = std::net::Ipv4Addr::new(
                                127,
                                0,
                                1 + (i / 16) as u8,
                                1 + (i % 16) as u8,
                            );
                            let mut opened = 0u32;
                            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                                socket.bind((from, 0).into()).unwrap();
                                if let Ok(mut s) =
                                    socket.connect(([127, 0, 0, 1], port).into()).await
                                {
                                    opened += 1;
                                    // The greeting and half a frame header: a handshake
                                    // that never goes on.
                                    let _ = s.write_all(b"GUISEGS1\x01\x00").await;
                                    let mut sink = [0u8; 64];
                                    let _ = tokio::time::timeout(
                                        std::time::Duration::from_millis(200),
                                        s.read(&mut sink),
                                    )
                                    .await;
                                    // Held open until the server closes it (read
                                    // returns) or the flood ends.
                                    loop {
                                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                                            break;
                                        }
                                        match tokio::time::timeout(
                                            std::time::Duration::from_millis(100),
                                            s.read(&mut sink),
                                        )
                                        .await
                                        {
                                            Ok(_) => break,
                                            Err(_) => continue,
                                        }
                                    }
                                }
                                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            }
                            opened
                        })
                    })
                    .collect();
                let mut opened = 0;
                for t in tasks {
                    opened += t.await.unwrap();
                }
                opened
            })
        }
    });
    // The flood holds every place before alice starts.
    assert!(
        server
            .wait_for_line(std::time::Duration::from_secs(10), |l| l
                .contains("closing the oldest unfinished handshake"))
            .is_some(),
        "{}",
        server.log_so_far()
    );
    let alice = r.kinit("alice");
    // Ten logins, two at a time.
    let login = || {
        (0..5)
            .filter(|_| {
                let (code, out, _) = r.call(
                    port,
                    &alice,
                    &["--level", "impersonation", "whoami", "--json"],
                );
                code == 0 && json(&out)["uid"] == 61201
            })
            .count()
    };
    let ok = std::thread::scope(|scope| {
        let runs = [scope.spawn(login), scope.spawn(login)];
        runs.map(|t| t.join().unwrap()).iter().sum::<usize>()
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = flood.join().unwrap();
    eprintln!("{ok} of 10 logins through a flood of {opened} connections");
    assert!(opened >= 256, "the flood opened only {opened} connections");
    assert!(
        ok >= 9,
        "only {ok} of 10 logins got through the flood: {}",
        server.log_so_far()
    );
}

/// A listener that counts its connections and answers each with `reply`.
fn counting_listener(
    reply: &'static [u8],
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = std::io::Write::write_all(&mut s, reply);
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    });
    (port, seen)
}

/// Attack (issue 19): WhoAmIThere connected to any host and port its caller
/// named (a port scanner inside the server's network) and put what the target
/// answered into the reply. A target neither on the service's own port nor
/// given with --delegate-to is refused without a connection; one that answers
/// garbage (here a refusal frame with a banner) fails with a fixed message.
#[test]
fn attack_whoami_there_reaches_only_allowed_targets_and_echoes_nothing() {
    need_realm!();
    let r = Remote::start();
    let (elsewhere, seen_elsewhere) = counting_listener(b"SSH-2.0-SECRET-BANNER-41\r\n");
    let (garbage, seen_garbage) =
        counting_listener(b"\x02\x00\x00\x00\x16SECRET-BANNER-42\x1b[2J\r\x07");
    let (server, port) = r.serve(&["--delegate-to", &format!("127.0.0.1:{garbage}")]);
    let alice = r.kinit("alice");
    let call = |target: u16| {
        r.call(
            port,
            &alice,
            &[
                "--delegate",
                "whoami-there",
                &format!("tcp://127.0.0.1:{target}"),
            ],
        )
    };
    let (code, out, err) = call(elsewhere);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("ERROR_ACCESS_DENIED") && err.contains("--delegate-to"),
        "{err}"
    );
    assert!(
        !err.contains("SECRET-BANNER") && !out.contains("SECRET-BANNER"),
        "{err}"
    );
    let (code, out, err) = call(garbage);
    assert_ne!(code, 0, "{out}");
    assert_eq!(
        seen_garbage.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "{err}"
    );
    assert!(
        !err.contains("SECRET-BANNER") && !out.contains("SECRET-BANNER"),
        "the target's bytes reached the caller: {err}"
    );
    assert!(
        err.contains("failed (ERROR_"),
        "{err}\n{}",
        server.log_so_far()
    );
    assert_eq!(
        seen_elsewhere.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the server connected to a target it was not given"
    );
}

/// Attack (issue 19): a server (or whoever answers on its port) refuses the
/// client with terminal escapes in its reason; `guise rpc call --kerberos`
/// printed them raw, so the server could drive the user's terminal. They are
/// escaped.
#[test]
fn attack_a_servers_refusal_cannot_drive_the_clients_terminal() {
    need_realm!();
    let r = Remote::start();
    let refusal: &[u8] = b"no\x1b]0;owned\x07\x1b[2J\rforged line";
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        // The greeting and the first token, then the refusal.
        let mut head = [0u8; 13];
        s.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes([head[9], head[10], head[11], head[12]]) as usize;
        let mut token = vec![0u8; len];
        s.read_exact(&mut token).unwrap();
        let mut frame = vec![2u8];
        frame.extend_from_slice(&(refusal.len() as u32).to_be_bytes());
        frame.extend_from_slice(refusal);
        s.write_all(&frame).unwrap();
    });
    let alice = r.kinit("alice");
    let (code, out, err) = r.call(port, &alice, &["whoami"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("forged line"), "the refusal is shown: {err:?}");
    assert!(
        !err.contains('\x1b') && !err.contains('\r') && !err.contains('\x07'),
        "raw control characters reached the terminal: {err:?}"
    );
    assert!(err.contains("\\x1b"), "{err:?}");
}

/// Attack (issue 19): a principal whose name holds CR and ESC (a realm's
/// administrator may create any name; a trusted realm's too) put them raw into
/// the server's text log, which forged log lines and drove the terminal of
/// whoever read it. Principal names are escaped in the log and in refusals.
#[test]
fn attack_control_characters_in_a_principal_do_not_reach_the_log() {
    need_realm!();
    let r = Remote::start();
    let evil = "eve\r2026-01-01T00:00:00Z  INFO forged\x1b[2J";
    r.realm.kadmin(&format!(
        "addprinc -pw \"{}\" \"{evil}\"",
        accounts::PASSWORD
    ));
    let (server, port) = r.serve(&[]);
    let cache = r.dir.path().join("eve.cc");
    r.realm.kinit(evil, accounts::PASSWORD, &cache, 0);
    let (code, out, err) = r.call(
        port,
        &format!("FILE:{}", cache.display()),
        &["--level", "impersonation", "whoami"],
    );
    assert_ne!(code, 0, "served eve: {out}");
    assert!(err.contains("ERROR_NO_SUCH_USER"), "{err:?}");
    assert!(!err.contains('\x1b') && !err.contains('\r'), "{err:?}");
    let log = server
        // Eve's refusal (the readiness probe's own refusal comes first).
        .wait_for_line(std::time::Duration::from_secs(10), |l| {
            l.contains("network client") && l.contains("refused: ") && l.contains("forged")
        })
        .map(|_| server.log_so_far())
        .unwrap_or_else(|| panic!("no refusal of eve logged: {}", server.log_so_far()));
    assert!(
        !log.contains('\x1b') && !log.contains('\r'),
        "raw control characters in the log: {log:?}"
    );
}

/// A file of another user's put where MIT krb5 keeps root's replay cache by
/// default, and what was there before put back when dropped.
struct PlantedReplayCache {
    path: std::path::PathBuf,
    saved: Option<std::path::PathBuf>,
}

impl PlantedReplayCache {
    fn plant(uid: u32) -> PlantedReplayCache {
        // MIT's default: `KRB5RCACHEDIR`, else /var/tmp, and `krb5_<euid>.rcache2`.
        let path = std::path::PathBuf::from("/var/tmp/krb5_0.rcache2");
        let saved = path.with_extension(format!("rcache2.saved-{}", std::process::id()));
        let saved = std::fs::rename(&path, &saved).is_ok().then_some(saved);
        std::fs::write(&path, "not a replay cache").unwrap();
        std::os::unix::fs::chown(&path, Some(uid), Some(uid)).unwrap();
        PlantedReplayCache { path, saved }
    }
}

impl Drop for PlantedReplayCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(saved) = &self.saved {
            let _ = std::fs::rename(saved, &self.path);
        }
    }
}

/// Attack (issue 19): a local user creates root's replay cache in the shared
/// /var/tmp before the server uses it; krb5 then refuses a cache root does not
/// own, and every login failed. The acceptor's replay cache is in a private
/// directory of the server's own.
#[test]
fn attack_a_replay_cache_planted_in_var_tmp_does_not_block_logins() {
    need_realm!();
    if std::env::var_os("KRB5RCACHEDIR").is_some() || std::env::var_os("KRB5RCACHENAME").is_some() {
        panic!("the test needs krb5's default replay cache location");
    }
    let r = Remote::start();
    let planted = PlantedReplayCache::plant(61201);
    let (server, port) = r.serve(&[]);
    let alice = r.kinit("alice");
    let (code, out, err) = r.call(
        port,
        &alice,
        &["--level", "impersonation", "whoami", "--json"],
    );
    assert_eq!(code, 0, "{err}\n{}", server.log_so_far());
    assert_eq!(json(&out)["uid"], 61201);
    // And the replay cache still refuses a replay: the stream test shows it
    // (kerberos_stream::attack_a_replayed_authenticator_is_refused).
    drop(planted);
}

/// Attack: a connection that never authenticates holds a place for ever. It is
/// told so and closed after the handshake timeout.
#[test]
fn attack_an_idle_unauthenticated_connection_is_closed() {
    use std::io::Read;
    need_realm!();
    let r = Remote::start();
    let (server, port) = r.serve(&["--handshake-timeout", "1"]);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "the connection stayed open"
    );
    assert_eq!(reply.first(), Some(&2), "not a refusal: {reply:?}");
    assert!(
        server
            .wait_for_line(std::time::Duration::from_secs(10), |l| l
                .contains("did not authenticate in time"))
            .is_some(),
        "{}",
        server.log_so_far()
    );
}

/// Service A ([`SERVICE`], which may call B) and service B ([`SECOND`]); their
/// servers and ports.
fn two_tiers(r: &Remote) -> ((common::server::Server, u16), (common::server::Server, u16)) {
    let (b, port_b) = r.serve_as(&r.second, SECOND, "127.0.0.1", &[]);
    let a = r.serve(&["--delegate-to", &format!("127.0.0.1:{port_b}")]);
    (a, (b, port_b))
}

/// Calls A's `whoami-there` B as alice (a fresh ticket-granting ticket, so no
/// service ticket of an earlier call is reused) with `delegate` (`--delegate` or
/// `--delegate-always`): whether alice's ticket-granting ticket reached A shows in
/// whether A reaches B as alice (without it A has only constrained delegation,
/// which this realm's KDC refuses). Returns that, and what the client said on
/// stderr.
fn forwarded_to_a(r: &Remote, port_a: u16, port_b: u16, delegate: &str) -> (bool, String) {
    let alice = r.kinit("alice");
    let there = format!("tcp://127.0.0.1:{port_b}");
    let (code, out, err) = r.call(
        port_a,
        &alice,
        &[delegate, "whoami-there", &there, "--json"],
    );
    if code != 0 {
        // Under --json the refusal is the failure envelope on stdout.
        assert!(out.contains("ERROR_LOGON_FAILURE"), "{out}{err}");
        return (false, err);
    }
    let id = json(&out);
    assert_eq!(id["uid"], 61201, "B saw: {id}");
    (true, err)
}

/// Attack: a client's `--delegate` forwards its ticket-granting ticket to any
/// service it calls, which can then act as the client anywhere. Windows
/// delegates only to a service the KDC marks OK-AS-DELEGATE: to a service not so
/// marked nothing is forwarded, and the client says so.
#[test]
fn delegate_forwards_nothing_to_a_service_not_marked_ok_as_delegate() {
    need_realm!();
    let r = Remote::start();
    r.realm
        .kadmin(&format!("modprinc -ok_as_delegate {SERVICE}"));
    let ((a, port_a), (b, port_b)) = two_tiers(&r);
    let (forwarded, err) = forwarded_to_a(&r, port_a, port_b, "--delegate");
    assert!(
        !forwarded,
        "a service not marked OK-AS-DELEGATE got alice's ticket\nA: {}\nB: {}",
        a.log_so_far(),
        b.log_so_far()
    );
    assert!(
        err.contains("nothing was delegated") && err.contains("OK-AS-DELEGATE"),
        "{err}"
    );
    assert!(!b.log_so_far().contains("alice@"), "{}", b.log_so_far());
}

/// The same service, once the KDC marks it OK-AS-DELEGATE
/// (`modprinc +ok_as_delegate`): `--delegate` forwards the ticket, silently.
#[test]
fn delegate_forwards_to_a_service_marked_ok_as_delegate() {
    need_realm!();
    let r = Remote::start();
    r.realm
        .kadmin(&format!("modprinc -ok_as_delegate {SERVICE}"));
    let ((_a, port_a), (_b, port_b)) = two_tiers(&r);
    assert!(!forwarded_to_a(&r, port_a, port_b, "--delegate").0);
    r.realm
        .kadmin(&format!("modprinc +ok_as_delegate {SERVICE}"));
    let (forwarded, err) = forwarded_to_a(&r, port_a, port_b, "--delegate");
    assert!(forwarded, "{err}");
    assert!(!err.contains("nothing was delegated"), "{err}");
}

/// `--delegate-always` forwards the ticket whatever the KDC says of the service
/// (the old behaviour, now an explicit choice).
#[test]
fn delegate_always_forwards_to_any_service() {
    need_realm!();
    let r = Remote::start();
    r.realm
        .kadmin(&format!("modprinc -ok_as_delegate {SERVICE}"));
    let ((_a, port_a), (_b, port_b)) = two_tiers(&r);
    let (forwarded, err) = forwarded_to_a(&r, port_a, port_b, "--delegate-always");
    assert!(forwarded, "{err}");
    assert!(!err.contains("nothing was delegated"), "{err}");
}

/// The Kerberos unit (`contrib/systemd/guise-rpc-kerberos.socket`): systemd
/// listens on TCP and passes the socket; `guise rpc serve` with no `--listen`
/// and no `--socket` serves it to Kerberos callers, each as itself.
#[test]
fn issue_22_a_socket_activated_tcp_listener_serves_kerberos_callers_as_themselves() {
    need_realm!();
    let activate =
        kdc::which("systemd-socket-activate").expect("systemd-socket-activate (systemd)");
    let r = Remote::start();
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(activate)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(["--fdname", "kerberos", "-E", "GUISE_LOG=info", "-E"])
        .arg(format!("KRB5_CONFIG={}", r.realm.krb5_conf().display()))
        .args([common::GUISE, "rpc", "serve", "--keytab"])
        .arg(&r.keytab)
        .args(["--principal", SERVICE, "--root"])
        .arg(&r.root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = common::server::Server::new(child, r.dir.path().join("none"));
    // Connect once systemd-socket-activate listens (it says so on stderr).
    assert!(
        server
            .wait_for_line(std::time::Duration::from_secs(10), |l| {
                l.starts_with("Listening on")
            })
            .is_some(),
        "systemd-socket-activate did not listen: {}",
        server.log_so_far()
    );
    let alice = r.kinit("alice");
    let imp = ["--level", "impersonation"];
    // The first connection starts the server on the socket systemd holds.
    let (code, out, err) = r.call(port, &alice, &[&imp[..], &["read", "alice.txt"]].concat());
    assert_eq!(
        (code, out.as_str()),
        (0, "alice's secret\n"),
        "{err}\n{}",
        server.log_so_far()
    );
    let (code, out, err) = r.call(port, &alice, &[&imp[..], &["read", "bob.txt"]].concat());
    assert_ne!(code, 0, "alice read bob's file: {out}");
    assert!(err.contains("ERROR_ACCESS_DENIED"), "{err}");
    let log = server.stderr();
    assert!(
        log.contains("serving the TCP socket systemd passed"),
        "{log}"
    );
    assert!(
        log.contains(&format!("tcp://127.0.0.1:{port} (Kerberos)")),
        "{log}"
    );
}
