//! `guise access-check`: AccessCheck from the shell, one check or a batch of JSON lines.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use guise::security::{
    AccessCheck, AccessCheckOptions, AccessMask, GenericMapping, SecurityDescriptor,
    access_check_with, sddl,
};
use guise::token::{Group, GroupAttributes};
use guise::{Error, ErrorKind, ImpersonationLevel, Privilege, Sid, Token, TokenType};
use serde_json::{Value, json};

/// Options of `guise access-check`.
#[derive(clap::Args)]
pub struct Args {
    /// The object's security descriptor, as SDDL.
    #[arg(long, required_unless_present_any = ["batch", "file"])]
    sddl: Option<String>,
    /// Decide for this Linux file: its owner, group, mode bits and POSIX ACLs
    /// as a security descriptor (`guise sddl --file`), which gives the kernel's
    /// answer right by right, after every directory on the way granted
    /// traversal; the mapping is the file mapping. Without --user or
    /// --token-json, for the caller's own process token.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["sddl", "mapping"], value_hint = clap::ValueHint::AnyPath)]
    file: Option<std::path::PathBuf>,
    /// The rights asked for: a number (0x.. hex, decimal) or SDDL rights (FR, RCWD).
    /// Generic rights must be mapped first, as AccessCheck requires.
    #[arg(long, required_unless_present = "batch")]
    desired: Option<String>,
    /// Check for this account's token (at Identification level, from NSS and, for
    /// a directory account, winbind's domain SIDs; any caller may).
    #[arg(long, conflicts_with = "token_json", value_hint = clap::ValueHint::Username)]
    user: Option<String>,
    /// Check for the token described in this JSON file
    /// ({"user": SID, "groups": [SID...], "deny_only": [SID...], "privileges": [NAME...],
    /// "restricting": [SID...], "integrity_level": SID}).
    #[arg(long, value_name = "FILE")]
    token_json: Option<std::path::PathBuf>,
    /// The generic mapping of the object type.
    #[arg(long, default_value = "generic", value_parser = ["file", "key", "generic"])]
    mapping: String,
    /// Let SeBackupPrivilege and SeRestorePrivilege grant access (with --file:
    /// as the kernel's CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE do).
    #[arg(long)]
    backup_semantics: bool,
    /// The domain SID that domain-relative aliases (DA, DU, LA, ...) refer to;
    /// by default the domain this host is joined to (winbind).
    #[arg(long, value_name = "SID")]
    domain_sid: Option<Sid>,
    /// Read JSON lines on stdin and write one JSON line for each, in the
    /// envelope of --json: `{"ok":true,"data":{"allowed":...}}`, or
    /// `{"ok":false,"error":...,"message":...}` for a line that cannot be checked.
    #[arg(long, conflicts_with_all = ["sddl", "file", "desired", "user", "token_json"])]
    batch: bool,
    /// Print the result as JSON, `{"ok":true,"data":{"allowed":...}}` (as
    /// --batch writes each line), or the failure envelope (docs/cli-json.md).
    /// The exit status is still 0 allowed, 1 denied, 2 an error.
    #[arg(long)]
    pub json: bool,
}

/// The exit status of a check: 0 allowed, 1 denied.
pub enum Outcome {
    /// Access is allowed (or the batch ran).
    Allowed,
    /// Access is denied.
    Denied,
}

fn mapping_named(name: &str) -> Result<GenericMapping, Error> {
    match name {
        "file" => Ok(GenericMapping::FILE),
        "key" => Ok(GenericMapping::KEY),
        "generic" => Ok(GenericMapping::GENERIC),
        other => Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("unknown mapping {other:?} (file, key or generic)"),
        )),
    }
}

/// A SID as text: `S-1-...` or an SDDL alias.
fn sid_of(text: &str, domain: Option<&Sid>) -> Result<Sid, Error> {
    if text.starts_with("S-") || text.starts_with("s-") {
        text.parse()
    } else {
        sddl::alias_sid(text, domain)
    }
}

fn strings<'a>(v: &'a Value, key: &str) -> Result<Vec<&'a str>, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidParameter,
                        format!("{key}: every item must be a string"),
                    )
                })
            })
            .collect(),
        Some(_) => Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("{key} must be an array of strings"),
        )),
    }
}

/// A token from its JSON description: an Identification-level token of SIDs.
pub fn token_from_json(v: &Value, domain: Option<&Sid>) -> Result<Token, Error> {
    let user = v.get("user").and_then(Value::as_str).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidParameter,
            "the token needs a \"user\" SID",
        )
    })?;
    let user = sid_of(user, domain)?;
    let mut groups = Vec::new();
    for (key, attributes) in [
        ("groups", GroupAttributes::DEFAULT),
        ("deny_only", GroupAttributes::USE_FOR_DENY_ONLY),
    ] {
        for s in strings(v, key)? {
            groups.push(Group {
                sid: sid_of(s, domain)?,
                attributes,
            });
        }
    }
    let privileges = strings(v, "privileges")?
        .into_iter()
        .map(str::parse::<Privilege>)
        .collect::<Result<Vec<_>, _>>()?;
    let mut token = Token::from_sids(user, groups, privileges);
    let restricting = strings(v, "restricting")?
        .into_iter()
        .map(|s| sid_of(s, domain))
        .collect::<Result<Vec<_>, _>>()?;
    if !restricting.is_empty() {
        token = token.create_restricted(&guise::token::RestrictedTokenOptions {
            restricting_sids: restricting,
            ..Default::default()
        })?;
    }
    match v.get("integrity_level") {
        None | Some(Value::Null) => {}
        Some(Value::String(level)) => token.set_integrity_level(sid_of(level, domain)?)?,
        Some(_) => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "integrity_level must be a SID string (S-1-16-4096, LW, ...)",
            ));
        }
    }
    Ok(token)
}

fn desired_of(v: &Value) -> Result<AccessMask, Error> {
    match v {
        Value::String(s) => sddl::parse_access_mask(s.trim()),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(AccessMask::from_raw)
            .ok_or_else(|| Error::new(ErrorKind::InvalidParameter, "desired must fit in 32 bits")),
        _ => Err(Error::new(
            ErrorKind::InvalidParameter,
            "desired must be a string such as \"0x1\" or a number",
        )),
    }
}

/// The Win32 names of the rights in `mask`, the object-specific ones by the
/// mapping's object type (`file`, `key`; others by number).
fn right_names(mask: AccessMask, mapping: &str) -> Vec<String> {
    const STANDARD: [(u32, &str); 6] = [
        (0x0001_0000, "DELETE"),
        (0x0002_0000, "READ_CONTROL"),
        (0x0004_0000, "WRITE_DAC"),
        (0x0008_0000, "WRITE_OWNER"),
        (0x0010_0000, "SYNCHRONIZE"),
        (0x0100_0000, "ACCESS_SYSTEM_SECURITY"),
    ];
    const FILE: [(u32, &str); 9] = [
        (0x0001, "FILE_READ_DATA"),
        (0x0002, "FILE_WRITE_DATA"),
        (0x0004, "FILE_APPEND_DATA"),
        (0x0008, "FILE_READ_EA"),
        (0x0010, "FILE_WRITE_EA"),
        (0x0020, "FILE_EXECUTE"),
        (0x0040, "FILE_DELETE_CHILD"),
        (0x0080, "FILE_READ_ATTRIBUTES"),
        (0x0100, "FILE_WRITE_ATTRIBUTES"),
    ];
    const KEY: [(u32, &str); 6] = [
        (0x0001, "KEY_QUERY_VALUE"),
        (0x0002, "KEY_SET_VALUE"),
        (0x0004, "KEY_CREATE_SUB_KEY"),
        (0x0008, "KEY_ENUMERATE_SUB_KEYS"),
        (0x0010, "KEY_NOTIFY"),
        (0x0020, "KEY_CREATE_LINK"),
    ];
    let specific: &[(u32, &str)] = match mapping {
        "file" => &FILE,
        "key" => &KEY,
        _ => &[],
    };
    let bits = mask.bits();
    let mut named = 0;
    let mut names: Vec<String> = specific
        .iter()
        .chain(STANDARD.iter())
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(bit, name)| {
            named |= bit;
            (*name).to_owned()
        })
        .collect();
    if bits & !named != 0 {
        names.push(format!("0x{:x}", bits & !named));
    }
    names
}

fn result_json(r: &AccessCheck, mapping: &str) -> Value {
    match r.denial {
        None => json!({ "granted": r.granted.to_string(), "allowed": true }),
        Some(d) => json!({
            "granted": r.granted.to_string(),
            "allowed": false,
            "reason": d.reason.win32_name(),
            "missing": d.missing.to_string(),
            "missing_rights": right_names(d.missing, mapping),
        }),
    }
}

fn error_json(e: &Error) -> Value {
    crate::output::failure_value(e.kind().win32_name(), &e.to_string())
}

/// The last file a batch line reached: its path, who for, whether with backup
/// semantics, and what was reached.
type ReachedFile = (
    (String, String, bool),
    Result<Option<guise::security::FileSecurity>, Error>,
);

/// One batch line: its result, or the error that stopped it.
fn check_line(
    line: &str,
    domain: Option<&Sid>,
    cache: &mut Option<(String, Result<SecurityDescriptor, Error>)>,
    tokens: &mut HashMap<String, Result<Token, Error>>,
    files: &mut Option<ReachedFile>,
) -> Result<AccessCheck, Error> {
    let v: Value = serde_json::from_str(line).map_err(|e| {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("not a JSON object: {e}"),
        )
    })?;
    if !v.is_object() {
        return Err(Error::new(ErrorKind::InvalidParameter, "not a JSON object"));
    }
    let options = {
        let mut o = AccessCheckOptions::default();
        o.backup_semantics = v
            .get("backup_semantics")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        o
    };
    let desired = || {
        desired_of(
            v.get("desired")
                .ok_or_else(|| Error::new(ErrorKind::InvalidParameter, "\"desired\" is missing"))?,
        )
    };
    if let Some(path) = v.get("file") {
        let path = path
            .as_str()
            .ok_or_else(|| Error::new(ErrorKind::InvalidParameter, "file must be a string"))?;
        let token = match (v.get("user"), v.get("token")) {
            (Some(Value::String(name)), None) => match tokens.get(name) {
                Some(t) => t.clone(),
                None => {
                    let t = Token::for_account(name);
                    tokens.insert(name.clone(), t.clone());
                    t
                }
            }?,
            (None, Some(t)) => token_from_json(t, domain)?,
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    "a file line needs \"user\" (a name) or \"token\"",
                ));
            }
        };
        // Lines about one file and one account (each right asked on its own
        // line) reach it once.
        let key = (
            path.to_owned(),
            serde_json::to_string(&v.get("user").or(v.get("token"))).unwrap_or_default(),
            options.backup_semantics,
        );
        let reached = match files {
            Some((k, reached)) if *k == key => reached.clone()?,
            _ => {
                let reached = guise::security::file_security_for(path, &token, options);
                *files = Some((key, reached.clone()));
                reached?
            }
        };
        return guise::security::FileSecurity::check_reached(
            reached.as_ref(),
            &token,
            desired()?,
            options,
        );
    }
    let text = v.get("sddl").and_then(Value::as_str).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidParameter,
            "\"sddl\" or \"file\" is missing",
        )
    })?;
    // Bulk checks often ask about one object many times: keep the last parse.
    let sd = match cache {
        Some((last, sd)) if last == text => sd.clone()?,
        _ => {
            let sd = sddl::parse(text, domain);
            *cache = Some((text.to_owned(), sd.clone()));
            sd?
        }
    };
    let token = token_from_json(
        v.get("token")
            .ok_or_else(|| Error::new(ErrorKind::InvalidParameter, "\"token\" is missing"))?,
        domain,
    )?;
    let desired = desired()?;
    let mapping = match v.get("mapping") {
        None | Some(Value::Null) => GenericMapping::GENERIC,
        Some(Value::String(m)) => mapping_named(m)?,
        Some(_) => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "mapping must be a string",
            ));
        }
    };
    access_check_with(&sd, &token, desired, &mapping, options)
}

/// Answers every line of `input` with one JSON line, in order; a line that cannot be
/// checked gets an error line and the next lines are still answered.
pub fn batch(input: impl BufRead, out: &mut impl Write, domain: Option<&Sid>) -> Result<()> {
    let mut cache = None;
    // Accounts named by file lines, looked up once.
    let mut tokens = HashMap::new();
    let mut files = None;
    let mut input = input;
    let mut line = String::new();
    loop {
        // Flush before a read that may block, so a coprocess sees its answers.
        if input.fill_buf()?.is_empty() {
            break;
        }
        line.clear();
        input.read_line(&mut line)?;
        let text = line.trim_end_matches(['\n', '\r']);
        let mapping = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| {
                if v.get("file").is_some() {
                    return Some("file".to_owned());
                }
                v.get("mapping").and_then(Value::as_str).map(str::to_owned)
            })
            .unwrap_or_default();
        let answer = match check_line(text, domain, &mut cache, &mut tokens, &mut files) {
            Ok(r) => crate::output::success_value(result_json(&r, &mapping)),
            Err(e) => error_json(&e),
        };
        serde_json::to_writer(&mut *out, &answer)?;
        out.write_all(b"\n")?;
        if input.fill_buf().map(|b| b.is_empty()).unwrap_or(true) {
            out.flush()?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Runs `guise access-check`.
pub fn run(args: &Args, out: &mut impl Write) -> Result<Outcome> {
    let domain = crate::sddl::domain_or_joined(args.domain_sid);
    let domain = domain.as_ref();
    if args.batch {
        batch(std::io::stdin().lock(), out, domain)?;
        return Ok(Outcome::Allowed);
    }
    let Some(desired) = &args.desired else {
        bail!("--desired is required without --batch");
    };
    let desired = sddl::parse_access_mask(desired).context("--desired")?;
    let token = match (&args.user, &args.token_json) {
        (Some(name), None) => Token::for_account(name)?,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            token_from_json(&v, domain)?
        }
        (None, None) if args.file.is_some() => Token::open_process()?
            .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)?,
        _ => bail!("give --user NAME or --token-json FILE"),
    };
    let options = {
        let mut o = AccessCheckOptions::default();
        o.backup_semantics = args.backup_semantics;
        o
    };
    let (r, mapping_name) = match (&args.file, &args.sddl) {
        (Some(path), _) => (
            guise::security::file_access_check(path, &token, desired, options)?,
            "file",
        ),
        (None, Some(text)) => {
            let sd = sddl::parse(text, domain)?;
            let mapping = mapping_named(&args.mapping)?;
            (
                access_check_with(&sd, &token, desired, &mapping, options)?,
                args.mapping.as_str(),
            )
        }
        (None, None) => bail!("give --sddl SDDL or --file PATH"),
    };
    if args.json {
        crate::output::success(out, result_json(&r, mapping_name))?;
        return Ok(if r.denial.is_none() {
            Outcome::Allowed
        } else {
            Outcome::Denied
        });
    }
    let names = |m: AccessMask| {
        let n = sddl::rights_to_string(m);
        if n.is_empty() {
            m.to_string()
        } else {
            format!("{m} ({n})")
        }
    };
    match r.denial {
        None => {
            writeln!(out, "allowed: granted {}", names(r.granted))?;
            Ok(Outcome::Allowed)
        }
        Some(d) => {
            writeln!(
                out,
                "denied ({}): missing {} [{}]",
                d.reason.win32_name(),
                names(d.missing),
                right_names(d.missing, mapping_name).join(", ")
            )?;
            Ok(Outcome::Denied)
        }
    }
}
