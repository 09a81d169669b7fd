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

/// Whether SSSD's AD provider, its NSS module and SID library are installed.
pub fn sssd_available() -> bool {
    super::kdc::which("sssd").is_some()
        && Path::new("/lib/x86_64-linux-gnu/libnss_sss.so.2").exists()
        && Path::new("/usr/lib/x86_64-linux-gnu/libsss_nss_idmap.so.0").exists()
        && Path::new("/usr/lib/x86_64-linux-gnu/sssd/libsss_ad.so").exists()
}

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

/// A member of the domain joined with SSSD (`ad-member.sh`), in namespaces of
/// its own on the domain's network; stopped when dropped.
pub struct Member {
    child: Child,
    pid: u32,
    dir: tempfile::TempDir,
}

impl Domain {
    /// Makes the machine account member1$ and its keytab, and starts a member
    /// with SSSD: returns once the domain's accounts resolve there.
    pub fn start_member(&self) -> Member {
        let conf = self.dir.path().join("dc/etc/smb.conf");
        let conf = conf.to_str().unwrap();
        let keytab = self.dir.path().join("member1.keytab");
        for args in [
            &["computer", "create", "member1", "-s", conf][..],
            &[
                "user",
                "setpassword",
                "member1$",
                "--newpassword=Guise-Member-1",
                "-s",
                conf,
            ],
            &[
                "spn",
                "add",
                "host/member1.guise.test",
                "member1$",
                "-s",
                conf,
            ],
            &[
                "domain",
                "exportkeytab",
                keytab.to_str().unwrap(),
                "--principal=member1$@GUISE.TEST",
                "-s",
                conf,
            ],
        ] {
            let (code, out, err) = self.run("samba-tool", args);
            assert_eq!(code, 0, "samba-tool {args:?}: {out}{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("script.log")).unwrap();
        let child = Command::new("nsenter")
            .arg("-t")
            .arg(self.pid.to_string())
            .args([
                "-n",
                "--",
                "unshare",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount",
                "--uts",
            ])
            .args(["--propagation", "private", "bash"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/ad-member.sh"))
            .arg(dir.path())
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut member = Member { child, pid: 0, dir };
        let t = Instant::now();
        while !member.dir.path().join("ready").exists() {
            if let Some(status) = member.child.try_wait().unwrap() {
                panic!(
                    "the SSSD member did not start ({status}): {}",
                    member.logs()
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(90),
                "the SSSD member did not start in time: {}",
                member.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // nsenter execs unshare, whose child is the script.
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", member.child.id()))
                .unwrap();
        member.pid = children.split_whitespace().next().unwrap().parse().unwrap();
        member
    }
}

impl Member {
    fn logs(&self) -> String {
        ["script.log", "sssd.log"]
            .iter()
            .map(|f| {
                format!(
                    "== {f}\n{}",
                    std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs `program ARGS` on the member: exit code, stdout, stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("nsenter")
            .arg("-t")
            .arg(self.pid.to_string())
            .args(["-m", "-n", "-u", "--"])
            .arg(program)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
