//! `guise sddl`: canonical SDDL, the binary form, and a readable table of the ACEs.

use std::io::Write;

use anyhow::{Context, Result};
use guise::Sid;
use guise::security::{Acl, Control, SecurityDescriptor, sddl};

/// Options of `guise sddl`.
#[derive(clap::Args)]
pub struct Args {
    /// The domain SID that domain-relative aliases (DA, DU, LA, ...) refer to;
    /// by default the domain this host is joined to (winbind).
    #[arg(long, value_name = "SID")]
    domain_sid: Option<Sid>,
    /// Print the self-relative binary form (MS-DTYP 2.4.6) as hex instead.
    #[arg(long)]
    binary: bool,
    /// Also print a readable table of the owner, group and ACEs.
    #[arg(long)]
    explain: bool,
    /// Read the descriptor in binary form, as hex, instead of SDDL.
    #[arg(long)]
    from_binary: bool,
    /// Print JSON, `{"ok":true,"data":{...}}`: the canonical SDDL, the binary
    /// form, owner, group, control and each ACE (docs/cli-json.md).
    #[arg(long, conflicts_with_all = ["binary", "explain"])]
    pub json: bool,
    /// Print the security descriptor of this Linux file instead: its owner,
    /// group, mode bits and POSIX ACLs, mapped so that AccessCheck gives the
    /// kernel's answer (docs/file-security.md).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["descriptor", "from_binary"], value_hint = clap::ValueHint::AnyPath)]
    file: Option<std::path::PathBuf>,
    /// The security descriptor, as SDDL (or hex with --from-binary).
    #[arg(required_unless_present = "file")]
    descriptor: Option<String>,
}

/// Runs `guise sddl`.
pub fn run(args: &Args, out: &mut impl Write) -> Result<()> {
    let domain = domain_or_joined(args.domain_sid);
    let domain = domain.as_ref();
    let sd = match (&args.file, &args.descriptor) {
        (Some(path), _) => guise::security::file_security(path)?.descriptor,
        (None, Some(text)) if args.from_binary => {
            SecurityDescriptor::from_self_relative(&hex_decode(text)?)?
        }
        (None, Some(text)) => sddl::parse(text, domain)?,
        (None, None) => anyhow::bail!("give a descriptor or --file PATH"),
    };
    if args.json {
        crate::output::success(out, to_json(&sd, domain)?)?;
        return Ok(());
    }
    if args.binary {
        let bin = sd.to_self_relative()?;
        let hex: String = bin.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(out, "{hex}")?;
    } else {
        writeln!(out, "{}", sddl::to_string(&sd, domain)?)?;
    }
    if args.explain {
        explain(&sd, domain, out)?;
    }
    Ok(())
}

fn hex_decode(s: &str) -> Result<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    anyhow::ensure!(
        s.len().is_multiple_of(2),
        "the hex text has an odd number of digits"
    );
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .with_context(|| format!("{:?} at position {i} is not hex", &s[i..i + 2]))
        })
        .collect()
}

/// The descriptor as one JSON object: its canonical SDDL, its binary form (hex),
/// owner, group, control flags and each ACL's entries.
fn to_json(sd: &SecurityDescriptor, domain: Option<&Sid>) -> Result<serde_json::Value> {
    use serde_json::json;
    let acl = |a: &Option<guise::security::Acl>| {
        a.as_ref().map(|a| {
            a.aces
                .iter()
                .map(|ace| {
                    json!({
                        "type": ace.ace_type.win32_name(),
                        "flags": ace.flags.win32_names(),
                        "mask": ace.mask.to_string(),
                        "rights": sddl::rights_to_string(ace.mask),
                        "sid": ace.sid.to_string(),
                        "trustee": trustee(&ace.sid, domain),
                    })
                })
                .collect::<Vec<_>>()
        })
    };
    let bin = sd.to_self_relative()?;
    Ok(json!({
        "sddl": sddl::to_string(sd, domain)?,
        "binary": bin.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "owner": sd.owner.map(|s| s.to_string()),
        "group": sd.group.map(|s| s.to_string()),
        "control": sd.control.win32_names(),
        "dacl": acl(&sd.dacl),
        "sacl": acl(&sd.sacl),
    }))
}

/// The domain that domain-relative aliases refer to: `--domain-sid`, else the
/// domain this host is joined to (winbind), else none.
pub fn domain_or_joined(domain_sid: Option<Sid>) -> Option<Sid> {
    domain_sid.or_else(|| guise::directory::joined_domain().map(|d| d.sid))
}

/// The name of a trustee: its alias and account name where known.
pub fn trustee(sid: &Sid, domain: Option<&Sid>) -> String {
    let alias = sddl::sid_alias(sid, domain);
    let name = sid
        .lookup_account_name()
        .or_else(|| guise::directory::account_name(sid));
    match (alias, name) {
        (Some(a), Some(n)) => format!("{sid} ({a}, {n})"),
        (Some(a), None) => format!("{sid} ({a})"),
        (None, Some(n)) => format!("{sid} ({n})"),
        (None, None) => sid.to_string(),
    }
}

/// Flag names joined with ` | `, or `-` for none.
fn names(names: Vec<String>) -> String {
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(" | ")
    }
}

fn explain(sd: &SecurityDescriptor, domain: Option<&Sid>, out: &mut impl Write) -> Result<()> {
    let show = |s: &Option<Sid>| s.map_or_else(|| "(none)".to_owned(), |s| trustee(&s, domain));
    writeln!(out, "\nOwner: {}", show(&sd.owner))?;
    writeln!(out, "Group: {}", show(&sd.group))?;
    writeln!(out, "Control: {}", names(sd.control.win32_names()))?;
    let acl = |name: &str, acl: &Option<Acl>, present: bool, out: &mut dyn Write| -> Result<()> {
        match (acl, present) {
            (None, false) => writeln!(out, "{name}: absent")?,
            (None, true) => writeln!(
                out,
                "{name}: NULL (no access control: everyone may do anything)"
            )?,
            (Some(a), _) if a.aces.is_empty() => writeln!(out, "{name}: empty (grants nothing)")?,
            (Some(a), _) => {
                writeln!(out, "{name}: revision {}", a.revision)?;
                let rows: Vec<[String; 4]> = a
                    .aces
                    .iter()
                    .map(|ace| {
                        let rights = sddl::rights_to_string(ace.mask);
                        [
                            ace.ace_type.win32_name().to_owned(),
                            names(ace.flags.win32_names()),
                            format!(
                                "{} ({})",
                                ace.mask,
                                if rights.is_empty() { "-" } else { &rights }
                            ),
                            trustee(&ace.sid, domain),
                        ]
                    })
                    .collect();
                let width = |i: usize, title: &str| {
                    rows.iter()
                        .map(|r| r[i].len())
                        .chain([title.len()])
                        .max()
                        .unwrap_or(0)
                };
                let (t, f, r) = (width(0, "type"), width(1, "flags"), width(2, "rights"));
                writeln!(
                    out,
                    "  {:<3} {:<t$} {:<f$} {:<r$} trustee",
                    "#", "type", "flags", "rights"
                )?;
                for (i, (ace, row)) in a.aces.iter().zip(&rows).enumerate() {
                    writeln!(
                        out,
                        "  {:<3} {:<t$} {:<f$} {:<r$} {}",
                        i, row[0], row[1], row[2], row[3]
                    )?;
                    if let Some(g) = ace.object_type {
                        writeln!(out, "      object type {g}")?;
                    }
                    if let Some(g) = ace.inherited_object_type {
                        writeln!(out, "      inherited object type {g}")?;
                    }
                }
            }
        }
        Ok(())
    };
    acl(
        "DACL",
        &sd.dacl,
        sd.control.contains(Control::DACL_PRESENT),
        out,
    )?;
    acl(
        "SACL",
        &sd.sacl,
        sd.control.contains(Control::SACL_PRESENT),
        out,
    )?;
    Ok(())
}
