//! `guise whoami`: the current token and the kernel's view of the thread.

use std::io::Write;

use anyhow::Result;
use guise::privilege::Capabilities;
use guise::token::GroupAttributes;
use guise::{Sid, ThreadCredentials, Token, TokenType};
use serde_json::{Value, json};

/// Options of `guise whoami`.
#[derive(clap::Args)]
pub struct Args {
    /// Show groups, privileges, token type and level, and the kernel view (like
    /// `whoami /all`).
    #[arg(long)]
    all: bool,
    /// Print JSON instead of tables: `{"ok":true,"data":{"user":...}}` (with
    /// --all, every part), on one line (docs/cli-json.md).
    #[arg(long)]
    pub json: bool,
    /// Show the token of this account instead (LsaLogonUser S4U at
    /// Identification level: no password, no privilege needed): its SIDs, its
    /// domain's for a directory account (winbind), and its Unix ids.
    #[arg(long, value_name = "NAME", value_hint = clap::ValueHint::Username)]
    pub user: Option<String>,
}

fn name_of(sid: &Sid) -> String {
    sid.lookup_account_name()
        .or_else(|| guise::directory::account_name(sid))
        .unwrap_or_else(|| sid.to_string())
}

/// The names of the capabilities in a kernel capability set's bits.
fn caps(bits: u64) -> Vec<String> {
    Capabilities::from_bits_retain(bits).names()
}

fn attributes(a: GroupAttributes) -> Vec<&'static str> {
    [
        (GroupAttributes::MANDATORY, "Mandatory group"),
        (GroupAttributes::ENABLED_BY_DEFAULT, "Enabled by default"),
        (GroupAttributes::ENABLED, "Enabled group"),
        (GroupAttributes::OWNER, "Group owner"),
        (
            GroupAttributes::USE_FOR_DENY_ONLY,
            "Group used for deny only",
        ),
        (GroupAttributes::LOGON_ID, "Logon id"),
    ]
    .into_iter()
    .filter(|(f, _)| a.contains(*f))
    .map(|(_, n)| n)
    .collect()
}

/// The token the calling thread acts as: its impersonation token, else the process's.
fn current_token() -> Result<Token> {
    match guise::open_thread_token(true) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == guise::ErrorKind::NoToken => Ok(Token::open_process()?),
        Err(e) => Err(e.into()),
    }
}

fn to_json(token: &Token, creds: &ThreadCredentials) -> Value {
    let stats = token.statistics();
    json!({
        "user": { "name": name_of(&token.user()), "sid": token.user().to_string() },
        "groups": token.groups().iter().map(|g| json!({
            "name": name_of(&g.sid),
            "sid": g.sid.to_string(),
            "attributes": attributes(g.attributes),
        })).collect::<Vec<_>>(),
        "privileges": token.privileges().iter().map(|p| json!({
            "name": p.privilege.name(),
            "description": p.privilege.info().description,
            "enabled": p.enabled,
        })).collect::<Vec<_>>(),
        "owner": token.owner().to_string(),
        "primary_group": token.primary_group().to_string(),
        "type": match token.token_type() { TokenType::Primary => "primary", TokenType::Impersonation => "impersonation" },
        "level": token.impersonation_level().map(|l| l.to_string()),
        "token_id": stats.token_id.to_string(),
        "logon_id": stats.authentication_id.to_string(),
        "modified_id": stats.modified_id.to_string(),
        "network_credentials": token.has_network_credentials(),
        "integrity_level": token.integrity_level().to_string(),
        "elevation_type": token.elevation_type().win32_name(),
        "elevated": token.is_elevated(),
        "session_id": token.session_id(),
        "logon_sid": token.logon_sid().map(|s| s.to_string()),
        "restricted": token.is_restricted(),
        "kernel": {
            "uid": { "real": creds.uid.real, "effective": creds.uid.effective, "saved": creds.uid.saved },
            "gid": { "real": creds.gid.real, "effective": creds.gid.effective, "saved": creds.gid.saved },
            "groups": creds.groups,
            "capabilities": {
                "effective": caps(creds.effective_capabilities().bits()),
                "permitted": caps(creds.permitted_capabilities().bits()),
            },
        },
    })
}

/// The Unix identity of an account's token, in place of the thread's kernel view.
fn unix_json(token: &Token) -> Value {
    let unix = token.unix();
    json!({ "uid": unix.uid().as_raw(), "gid": unix.gid().as_raw(), "groups": unix.groups() })
}

/// Runs `guise whoami`.
pub fn run(args: &Args, out: &mut impl Write) -> Result<()> {
    let (token, creds) = match &args.user {
        Some(name) => (Token::for_account(name)?, None),
        None => (current_token()?, Some(ThreadCredentials::current()?)),
    };
    if args.json {
        let mut value = match &creds {
            Some(creds) => to_json(&token, creds),
            None => {
                let mut v = to_json(&token, &ThreadCredentials::current()?);
                v.as_object_mut().unwrap().remove("kernel");
                v["unix"] = unix_json(&token);
                v
            }
        };
        if !args.all {
            value = json!({ "user": value["user"] });
        }
        crate::output::success(out, value)?;
        return Ok(());
    }
    if !args.all {
        writeln!(out, "{}", name_of(&token.user()))?;
        return Ok(());
    }
    let user = token.user();
    section(out, "USER INFORMATION")?;
    table(
        out,
        &["User Name", "SID"],
        vec![vec![name_of(&user), user.to_string()]],
    )?;

    section(out, "GROUP INFORMATION")?;
    let rows = token
        .groups()
        .iter()
        .map(|g| {
            vec![
                name_of(&g.sid),
                g.sid.to_string(),
                attributes(g.attributes).join(", "),
            ]
        })
        .collect();
    table(out, &["Group Name", "SID", "Attributes"], rows)?;

    section(out, "PRIVILEGES INFORMATION")?;
    let rows = token
        .privileges()
        .iter()
        .map(|p| {
            vec![
                p.privilege.name().to_owned(),
                p.privilege.info().description.to_owned(),
                if p.enabled { "Enabled" } else { "Disabled" }.to_owned(),
            ]
        })
        .collect();
    table(out, &["Privilege Name", "Description", "State"], rows)?;

    let stats = token.statistics();
    section(out, "TOKEN INFORMATION")?;
    writeln!(
        out,
        "Type: {}\nImpersonation level: {}\nToken id: {}\nLogon id: {}\nModified id: {}\nOwner: {}\nPrimary group: {}\nNetwork credentials: {}",
        match token.token_type() {
            TokenType::Primary => "Primary",
            TokenType::Impersonation => "Impersonation",
        },
        token
            .impersonation_level()
            .map_or("n/a (primary token)", |l| l.win32_name()),
        stats.token_id,
        stats.authentication_id,
        stats.modified_id,
        name_of(&token.owner()),
        name_of(&token.primary_group()),
        if token.has_network_credentials() {
            "yes"
        } else {
            "no"
        },
    )?;

    let Some(creds) = creds else {
        section(out, "UNIX IDENTITY")?;
        let unix = token.unix();
        let groups: Vec<String> = unix.groups().iter().map(u32::to_string).collect();
        writeln!(
            out,
            "uid: {}\ngid: {}\ngroups: {}",
            unix.uid().as_raw(),
            unix.gid().as_raw(),
            groups.join(" ")
        )?;
        return Ok(());
    };
    writeln!(
        out,
        "\nKERNEL VIEW (calling thread)\n----------------------------\n"
    )?;
    let ids = |r: &guise::thread::ResIds| {
        format!(
            "real {} effective {} saved {}",
            r.real, r.effective, r.saved
        )
    };
    writeln!(out, "uid: {}", ids(&creds.uid))?;
    writeln!(out, "gid: {}", ids(&creds.gid))?;
    let groups: Vec<String> = creds.groups.iter().map(u32::to_string).collect();
    writeln!(out, "groups: {}", groups.join(" "))?;
    writeln!(
        out,
        "effective capabilities: {}",
        caps(creds.effective_capabilities().bits()).join(" ")
    )?;
    writeln!(
        out,
        "permitted capabilities: {}",
        caps(creds.permitted_capabilities().bits()).join(" ")
    )?;
    Ok(())
}

fn section(out: &mut impl Write, title: &str) -> std::io::Result<()> {
    writeln!(out, "\n{title}\n{}\n", "-".repeat(title.len()))
}

/// Prints rows under a header, each column as wide as its widest cell, in the style
/// of Windows `whoami /all`.
fn table(out: &mut impl Write, header: &[&str], rows: Vec<Vec<String>>) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$} "));
            }
        }
        text
    };
    writeln!(
        out,
        "{}",
        line(header.iter().map(|h| h.to_string()).collect())
    )?;
    writeln!(
        out,
        "{}",
        line(widths.iter().map(|w| "=".repeat(*w)).collect())
    )?;
    for row in rows {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}
