//! A throwaway Samba Active Directory domain, GUISE.TEST, on loopback in
//! namespaces of its own (`ad-dc.sh`): a domain controller with alice, bob and
//! carol (uids 10001-10003, Domain Users gid 10000), finance (gid 10010) holding
//! accounting (gid 10011, alice), and auditors (no gidNumber, bob). Programs run
//! in its namespaces (`nsenter`) see its accounts through NSS (winbind).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The password of alice, bob and carol.
pub const PASSWORD: &str = "Guise-User-1";

/// Whether Samba's domain controller, winbind and its NSS module are installed.
pub fn available() -> bool {
    ["samba", "samba-tool", "wbinfo", "nsenter", "unshare"]
        .iter()
        .all(|p| super::kdc::which(p).is_some())
        && Path::new("/lib/x86_64-linux-gnu/libnss_winbind.so.2").exists()
        && Path::new("/usr/share/samba/setup/ad-schema").exists()
}

/// The running domain; stopped (every process of its namespaces) when dropped.
pub struct Domain {
    child: Child,
    /// The host pid of a process in the namespaces, for nsenter.
    pid: u32,
    dir: tempfile::TempDir,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/ad-dc.sh")
}

impl Domain {
    /// Provisions the domain and starts it: about 15 seconds.
    pub fn start() -> Domain {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("script.log")).unwrap();
        // A pid namespace too: when the script's process ends, the kernel ends
        // every process of the domain.
        let child = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--kill-child",
                "--mount",
                "--net",
                "--uts",
                "--propagation",
                "private",
                "bash",
            ])
            .arg(script())
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let t = Instant::now();
        let mut domain = Domain { child, pid: 0, dir };
        while !domain.dir.path().join("ready").exists() {
            if let Some(status) = domain.child.try_wait().unwrap() {
                panic!(
                    "the domain controller did not start ({status}): {}",
                    domain.logs()
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "the domain controller did not start in time: {}",
                domain.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // unshare's child is the script, in the namespaces.
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", domain.child.id()))
                .unwrap();
        domain.pid = children.split_whitespace().next().unwrap().parse().unwrap();
        domain
    }

    fn logs(&self) -> String {
        ["script.log", "provision.log", "samba.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                format!(
                    "== {f}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The keytab of guise's service, `guise/dc1.guise.test@GUISE.TEST`
    /// (`samba-tool domain exportkeytab`).
    pub fn keytab(&self) -> PathBuf {
        self.dir.path().join("guise.keytab")
    }

    /// A credential cache with `user`'s ticket-granting ticket from the domain
    /// controller (kinit with the password), as `FILE:...`.
    pub fn kinit(&self, user: &str) -> String {
        let cache = self.dir.path().join(format!("{user}.cc"));
        let mut child = self
            .command("kinit")
            .arg(format!("{user}@GUISE.TEST"))
            .env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kinit {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("FILE:{}", cache.display())
    }

    /// Starts `guise rpc serve` for Kerberos clients on 127.0.0.1:`port` in the
    /// domain's namespaces, as guise's service (its keytab), serving `root`,
    /// with the krb5 configuration `krb5_conf` (the domain's, or a variant);
    /// returns once it listens.
    pub fn serve_kerberos(
        &self,
        root: &Path,
        port: u16,
        krb5_conf: &Path,
    ) -> super::server::Server {
        let child = self
            .command(super::GUISE)
            .args([
                "rpc",
                "serve",
                "--listen",
                &format!("tcp://127.0.0.1:{port}"),
                "--keytab",
            ])
            .arg(self.keytab())
            .args(["--principal", "guise/dc1.guise.test@GUISE.TEST", "--root"])
            .arg(root)
            .env("KRB5_CONFIG", krb5_conf)
            .env("GUISE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let server = super::server::Server::new(child, root.to_owned());
        let t = Instant::now();
        let probe = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
        while self.run("bash", &["-c", &probe]).0 != 0 {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the server did not start: {}",
                server.log_so_far()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `guise rpc call --connect tcp://dc1.guise.test:PORT --kerberos --level
    /// impersonation ARGS` with the credential cache `cache`, in the domain's
    /// namespaces: exit code, stdout, stderr.
    pub fn kerberos_call(&self, port: u16, cache: &str, args: &[&str]) -> (i32, String, String) {
        let out = self
            .command(super::GUISE)
            .args([
                "rpc",
                "call",
                "--connect",
                &format!("tcp://dc1.guise.test:{port}"),
                "--kerberos",
            ])
            .args(["--level", "impersonation"])
            .args(args)
            .env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5CCNAME", cache)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The domain's krb5.conf.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// A command run in the domain's namespaces.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.pid.to_string())
            .args(["-m", "-n", "-u", "--"])
            .arg(program);
        c
    }

    /// Runs `program ARGS` in the domain's namespaces: exit code, stdout, stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> (i32, String, String) {
        let out = self.command(program).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `wbinfo ARGS`, which must succeed: its lines.
    pub fn wbinfo(&self, args: &[&str]) -> Vec<String> {
        let (code, out, err) = self.run("wbinfo", args);
        assert_eq!(code, 0, "wbinfo {args:?}: {err}");
        out.lines().map(str::to_owned).collect()
    }

    /// The SID of `name`, as `wbinfo -n` gives it.
    pub fn sid(&self, name: &str) -> String {
        self.wbinfo(&["-n", name])[0]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
