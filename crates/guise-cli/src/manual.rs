//! The manual pages: clap's sections (NAME, SYNOPSIS, DESCRIPTION, OPTIONS,
//! SUBCOMMANDS) and, for each page, EXIT STATUS, ENVIRONMENT, FILES and EXAMPLES.

use std::io::Write;

/// A definition list: a term and what it means.
type Items = &'static [(&'static str, &'static str)];

const LOG_ENV: Items = &[
    (
        "GUISE_LOG",
        "Which events are written: a tracing filter (info for the audit trail of a service, info,guise::audit=debug for every impersonation and revert). Unset: warnings (every denial and refused logon among them) and where a server listens.",
    ),
    (
        "GUISE_LOG_FORMAT",
        "How events are written, as --log: text, json or journald.",
    ),
];

const SERVER_ENV: Items = &[
    (
        "LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES",
        "Sockets passed by systemd (socket activation): served instead of --socket.",
    ),
    (
        "NOTIFY_SOCKET, WATCHDOG_USEC",
        "Type=notify: READY=1, STATUS=, STOPPING=1 and WATCHDOG=1 are sent there.",
    ),
];

const KERBEROS_ENV: Items = &[
    (
        "KRB5_CONFIG",
        "The Kerberos configuration (default /etc/krb5.conf).",
    ),
    (
        "KRB5CCNAME",
        "The caller's credential cache (guise rpc call --kerberos).",
    ),
];

const SERVER_EXIT: Items = &[
    (
        "0",
        "Stopped by SIGTERM or SIGINT, after the requests in flight. SIGHUP neither stops the server nor changes anything.",
    ),
    (
        "2",
        "It could not start (a socket it cannot bind or that systemd did not pass, a served directory it cannot open, a bad option) or failed while serving.",
    ),
];

const CLIENT_EXIT: Items = &[
    ("0", "The server did what was asked."),
    (
        "1",
        "The server refused: its Win32 error (ERROR_ACCESS_DENIED, ERROR_BAD_IMPERSONATION_LEVEL, ERROR_FILE_NOT_FOUND, ...) is printed, or is the failure envelope under --json.",
    ),
    (
        "2",
        "guise's own error: no server at the socket, a server of another kind, a bad option.",
    ),
];

const PLAIN_EXIT: Items = &[("0", "Success."), ("2", "An error or a bad option.")];

const SOCKETS: (&str, &str) = (
    "/run/guise/files.sock, /run/guise/files-grpc.sock",
    "The sockets of the shipped units (guise-serve.socket, guise-rpc.socket).",
);
const UNITS: (&str, &str) = (
    "/usr/lib/systemd/system/guise-*.service, guise-*.socket",
    "The units (/etc/systemd/system when installed with PREFIX=/usr/local).",
);
const SERVER_FILES: Items = &[
    SOCKETS,
    UNITS,
    ("/srv/guise", "The directory the shipped units serve."),
];

/// The sections of the page `name` (`guise`, `guise-serve`, `guise-rpc-call`,
/// ...): its exit statuses, environment, files and examples.
struct Page {
    exit: Items,
    env: Vec<Items>,
    files: Items,
    examples: Items,
}

fn page(name: &str) -> Page {
    let mut p = Page {
        exit: PLAIN_EXIT,
        env: vec![LOG_ENV],
        files: &[],
        examples: &[],
    };
    match name {
        "guise" => {
            p.exit = &[
                ("0", "Success."),
                (
                    "1",
                    "A refusal: a file server refused the request, or access-check denied the access.",
                ),
                ("2", "guise's own error, or a bad option."),
                (
                    "125, 126, 127",
                    "guise run: guise's own error, a program that cannot be executed, one not found; else the program's own status.",
                ),
            ];
            p.env = vec![LOG_ENV, SERVER_ENV, KERBEROS_ENV];
            p.files = &[
                (
                    "/etc/pam.d/guise",
                    "The PAM service of guise run --password-stdin (LogonUser).",
                ),
                (
                    "/usr/share/dbus-1/system.d/org.guise.Files1.conf",
                    "The bus policy of guise dbus serve (/etc/dbus-1/system.d with PREFIX=/usr/local).",
                ),
                (
                    "/usr/share/dbus-1/system-services/org.guise.Files1.service",
                    "D-Bus activation: starts guise-dbus.service.",
                ),
                SOCKETS,
                UNITS,
            ];
            p.examples = &[
                (
                    "guise serve --socket /run/files.sock --root /srv/guise",
                    "Serve /srv/guise on a named pipe; every request runs as its client.",
                ),
                (
                    "guise cat --socket /run/files.sock notes.txt",
                    "Read one's own file through it.",
                ),
                (
                    "guise whoami --all",
                    "The current token, as Windows whoami /all.",
                ),
                (
                    "guise sddl --explain 'O:BAG:BAD:(A;;FR;;;AU)'",
                    "A security descriptor, as a table of its ACEs.",
                ),
                (
                    "guise run --user alice -- id",
                    "Run a program as alice (root).",
                ),
            ];
        }
        "guise-serve" => {
            p.exit = SERVER_EXIT;
            p.env = vec![
                LOG_ENV,
                SERVER_ENV,
                &[(
                    "GUISE_IO_URING",
                    "off: open as each client by switching a worker, never through io_uring (as --io-uring off).",
                )],
            ];
            p.files = SERVER_FILES;
            p.examples = &[
                (
                    "guise serve --socket /run/files.sock --root /srv/guise",
                    "Serve /srv/guise; clients use guise cat, ls, stat and put.",
                ),
                (
                    "systemctl enable --now guise-serve.socket",
                    "The same under systemd, started on the first connection.",
                ),
            ];
        }
        "guise-rpc-serve" => {
            p.exit = SERVER_EXIT;
            p.env = vec![LOG_ENV, SERVER_ENV, KERBEROS_ENV];
            p.files = &[
                SOCKETS,
                UNITS,
                (
                    "/etc/guise/guise.keytab",
                    "The keytab guise-rpc-kerberos.service passes as a credential (--keytab %d/keytab).",
                ),
            ];
            p.examples = &[
                (
                    "guise rpc serve --socket /run/files-grpc.sock --root /srv/guise",
                    "Serve guise.files.v1.Files to local callers.",
                ),
                (
                    "guise rpc serve --listen tcp://0.0.0.0:4460 --keytab /etc/guise/guise.keytab --root /srv/guise",
                    "Serve remote callers that authenticate with Kerberos.",
                ),
                (
                    "grpcurl -plaintext -unix /run/files-grpc.sock list",
                    "Any gRPC client calls it (reflection is served).",
                ),
            ];
        }
        "guise-dbus-serve" => {
            p.exit = SERVER_EXIT;
            p.env = vec![
                LOG_ENV,
                &[(
                    "DBUS_SYSTEM_BUS_ADDRESS",
                    "The system bus, when --address is not given.",
                )],
            ];
            p.files = &[
                (
                    "/usr/share/dbus-1/system.d/org.guise.Files1.conf",
                    "The bus policy (/etc/dbus-1/system.d with PREFIX=/usr/local).",
                ),
                (
                    "/usr/share/dbus-1/system-services/org.guise.Files1.service",
                    "D-Bus activation through guise-dbus.service.",
                ),
            ];
            p.examples = &[(
                "busctl call org.guise.Files1 /org/guise/Files1 org.guise.Files1 ReadWithOptions 'sa{sv}' notes.txt 1 level s impersonation",
                "Read one's own file over the system bus in one command.",
            )];
        }
        "guise-cat" | "guise-ls" | "guise-stat" | "guise-put" => {
            p.exit = CLIENT_EXIT;
            p.examples = &[
                (
                    "guise cat --socket /run/guise/files.sock notes.txt",
                    "Read one's own file (at Impersonation level, the default).",
                ),
                (
                    "guise ls --socket /run/guise/files.sock --json",
                    "List the served directory as JSON.",
                ),
                (
                    "echo hello | guise put --socket /run/guise/files.sock --mode 600 notes.txt",
                    "Write a file as oneself.",
                ),
            ];
        }
        n if n.starts_with("guise-rpc-call") => {
            p.exit = CLIENT_EXIT;
            p.env = vec![LOG_ENV, KERBEROS_ENV];
            p.examples = &[
                (
                    "guise rpc call --socket /run/guise/files-grpc.sock read notes.txt",
                    "Read one's own file over gRPC.",
                ),
                (
                    "guise rpc call --connect tcp://files.example.com:4460 --kerberos whoami",
                    "Who a remote server sees, from one's Kerberos ticket.",
                ),
            ];
        }
        "guise-access-check" => {
            p.exit = &[
                ("0", "The access is allowed."),
                ("1", "The access is denied."),
                ("2", "An error or a bad option."),
            ];
            p.examples = &[
                (
                    "guise access-check --sddl 'O:BAG:BAD:(A;;FR;;;AU)' --desired FILE_GENERIC_READ --user alice",
                    "Whether alice may read an object with that descriptor.",
                ),
                (
                    "guise access-check --file /srv/share/report.txt --user alice --desired FW",
                    "Whether alice may write that file, as the kernel would decide.",
                ),
            ];
        }
        "guise-run" => {
            p.exit = &[
                (
                    "125",
                    "guise's own error (no such user, a refused logon, a bad option).",
                ),
                ("126", "The program cannot be executed."),
                ("127", "The program is not found."),
                ("any other", "The program's own exit status."),
            ];
            p.env = vec![
                LOG_ENV,
                &[(
                    "TERM",
                    "Kept for the program when guise makes it a pseudo-terminal; other variables only with --preserve-env or --env.",
                )],
            ];
            p.files = &[("/etc/pam.d/guise", "The PAM service of --password-stdin.")];
            p.examples = &[
                ("guise run --user alice -- id", "Run id as alice (root)."),
                (
                    "guise run --user alice --login",
                    "alice's login shell in her home directory.",
                ),
                (
                    "guise run --user alice --password-stdin -- make",
                    "Log alice on through PAM with her password, then run make.",
                ),
            ];
        }
        "guise-whoami" => {
            p.examples = &[("guise whoami --all --json", "The whole token as JSON.")];
        }
        "guise-sddl" => {
            p.examples = &[
                (
                    "guise sddl --explain 'O:BAG:BAD:(A;;FR;;;AU)(D;;FW;;;S-1-22-2-100)'",
                    "Each ACE of a descriptor in words.",
                ),
                (
                    "guise sddl --file /srv/share/report.txt --explain",
                    "A Linux file's owner, group, mode and ACL as a descriptor.",
                ),
            ];
        }
        "guise-completions" => {
            p.examples = &[(
                "guise completions bash > /usr/share/bash-completion/completions/guise",
                "Completion for bash (--user completes user names).",
            )];
        }
        "guise-man" => {
            p.examples = &[(
                "guise man --out-dir /usr/local/share/man/man1",
                "Every page.",
            )];
        }
        "guise-demo" => {
            p.examples = &[("guise demo", "The whole model end to end (root).")];
        }
        n if n.starts_with("guise-bench") => {
            p.examples = &[(
                "guise bench serve --clients 8 --seconds 5 --compare 3",
                "Requests per second with and without impersonation, and their ratio.",
            )];
        }
        n if n.starts_with("guise-dbus") => {
            p.exit = SERVER_EXIT;
            p.examples = &[(
                "guise dbus serve --root /srv/guise",
                "Serve org.guise.Files1 on the system bus.",
            )];
        }
        n if n.starts_with("guise-rpc") => {
            p.env = vec![LOG_ENV, SERVER_ENV, KERBEROS_ENV];
            p.examples = &[(
                "guise rpc serve --socket /run/files-grpc.sock --root /srv/guise",
                "Serve guise.files.v1.Files to local callers.",
            )];
        }
        _ => {}
    }
    if p.files.is_empty() {
        p.files = &[(
            "none",
            "This command reads no file of its own; guise(1) lists the files of guise.",
        )];
    }
    p
}

/// Text for roff: backslashes and hyphens escaped, no line starting a request.
fn roff_text(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

fn items(out: &mut impl Write, title: &str, items: &[(&str, &str)]) -> std::io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out, ".SH \"{title}\"")?;
    for (term, text) in items {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff_text(term), roff_text(text))?;
    }
    Ok(())
}

/// Writes the page of `cmd`, named `name`.
pub fn render(cmd: &clap::Command, name: &str, out: &mut impl Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(out)?;
    }
    let p = page(name);
    items(out, "EXIT STATUS", p.exit)?;
    let env: Vec<(&str, &str)> = p.env.iter().flat_map(|e| e.iter().copied()).collect();
    items(out, "ENVIRONMENT", &env)?;
    items(out, "FILES", p.files)?;
    if !p.examples.is_empty() {
        writeln!(out, ".SH EXAMPLES")?;
        for (command, text) in p.examples {
            writeln!(
                out,
                ".PP\n{}\n.PP\n.RS 4\n.nf\n{}\n.fi\n.RE",
                roff_text(text),
                roff_text(command)
            )?;
        }
    }
    writeln!(
        out,
        ".SH \"SEE ALSO\"\n\\fBguise\\fR(1); docs/deployment.md, docs/protocol.md, docs/audit.md"
    )?;
    if cmd.get_version().is_some() || cmd.get_long_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}
