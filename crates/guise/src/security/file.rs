//! A Linux file's owner, group, mode bits and POSIX ACLs as a Windows security
//! descriptor ([`GetNamedSecurityInfo`], [`GetSecurityInfo`]), built so that
//! AccessCheck of it gives exactly the kernel's answer.
//!
//! A server at Identification level (or one that must not open a file as its
//! client) can decide for its client with [`FileSecurity::access_check`], and an
//! administrator can ask "may alice write this file?" (`guise access-check
//! --file`).
//!
//! # The kernel's algorithm
//! The descriptor follows the kernel's own decision (`generic_permission` and
//! `acl_permission_check` in fs/namei.c, `posix_acl_permission` in
//! fs/posix_acl.c), which differs from the textbook one:
//! 1. The file's owner gets the owner bits, whatever its groups and the ACL.
//! 2. The access ACL is read only when the file has one **and the mode's group
//!    bits (the ACL's mask) are not all zero**. Then a named user gets its entry
//!    masked; a member of the owning group or of a named group gets a right when
//!    one of those entries holds it and the mask does, and nothing it lacks
//!    (it does not fall to "other"); anyone else gets "other".
//! 3. Without an ACL, or with a mask of `---`, a member of the owning group gets
//!    the group bits (`---` with such an ACL) and anyone else, named users and
//!    groups included, gets "other".
//!
//! The descriptor says the same with ACEs in this order: the owner's deny and
//! allow; each named user's deny and allow; an allow for each group entry; a deny
//! of the rest for each group entry; an allow for Everyone. AccessCheck decides
//! each right by the first ACE that names it and matches, so this order is the
//! kernel's.
//!
//! # Rights
//! | Linux | files | directories |
//! |---|---|---|
//! | `r` | `FILE_READ_DATA`, `FILE_READ_EA` | `FILE_LIST_DIRECTORY`, `FILE_READ_EA` |
//! | `w` | `FILE_WRITE_DATA`, `FILE_APPEND_DATA`, `FILE_WRITE_EA`, `FILE_WRITE_ATTRIBUTES` | `FILE_ADD_FILE`, `FILE_ADD_SUBDIRECTORY`, `FILE_WRITE_EA`, `FILE_WRITE_ATTRIBUTES`, `FILE_DELETE_CHILD` (the directory's owner only when it is sticky) |
//! | `x` | `FILE_EXECUTE` | `FILE_TRAVERSE` |
//!
//! So `FILE_GENERIC_READ` (SDDL `FR`), `FILE_GENERIC_WRITE` (`FW`) and
//! `FILE_GENERIC_EXECUTE` (`FX`) are granted exactly when the kernel grants
//! `r`, `w` and `x`. Everyone gets `FILE_READ_ATTRIBUTES`, `READ_CONTROL` and
//! `SYNCHRONIZE` (stat and getfacl need only the path); the owner also gets
//! `WRITE_DAC` (chmod, setfacl) and `FILE_WRITE_ATTRIBUTES` (any times). Nobody
//! gets `DELETE` or `WRITE_OWNER` from the file: on Linux deleting is the parent
//! directory's `FILE_DELETE_CHILD`, and changing the owner needs `CAP_CHOWN`
//! (SeRestorePrivilege).
//!
//! # Capabilities
//! Without backup semantics the answer is the kernel's for a process or thread
//! without `CAP_DAC_OVERRIDE` and `CAP_DAC_READ_SEARCH`: any non-root process,
//! and every thread while it impersonates with guise. With
//! [`AccessCheckOptions::backup_semantics`], an enabled SeBackupPrivilege acts as
//! `CAP_DAC_READ_SEARCH` (read any file; read and search any directory) and an
//! enabled SeRestorePrivilege as `CAP_DAC_OVERRIDE` (read and write anything;
//! execute a file only when one of its execute bits is set; search any
//! directory), the kernel's rules for root. The process token of a root process
//! has both enabled ([`crate::Token::open_process`]).
//!
//! # Where Windows and Linux part
//! - The kernel decides a request for several rights at once by one entry: a
//!   member of two named groups, one with `r` and one with `w`, may read and may
//!   write but not open for both. AccessCheck grants each right by any ACE, so
//!   rights must be asked one at a time ([`FileSecurity::access_check`] does).
//! - A token's deny-only group (a directory group the peer's process dropped)
//!   matches the deny ACEs of group entries: AccessCheck then refuses what the
//!   kernel would give as "other".
//! - The default ACL of a directory becomes inheritable ACEs (`OI CI IO`, for
//!   CREATOR OWNER and CREATOR GROUP); what a new file really gets also depends
//!   on the mode it is created with.
//!
//! [`GetNamedSecurityInfo`]: https://learn.microsoft.com/en-us/windows/win32/api/aclapi/nf-aclapi-getnamedsecurityinfow
//! [`GetSecurityInfo`]: https://learn.microsoft.com/en-us/windows/win32/api/aclapi/nf-aclapi-getsecurityinfo

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::access::{AccessCheck, AccessCheckOptions, access_check_with};
use super::descriptor::{Ace, AceFlags, Acl, Control, SecurityDescriptor};
use super::mask::{AccessMask, GenericMapping};
use crate::error::{Error, ErrorKind, Result};
use crate::privilege::Privilege;
use crate::sid::Sid;
use crate::token::Token;

/// The tag of a POSIX ACL entry (`ACL_USER_OBJ`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclTag {
    /// `user::` — the file's owner (`ACL_USER_OBJ`).
    UserObj,
    /// `user:UID:` — a named user (`ACL_USER`).
    User(u32),
    /// `group::` — the owning group (`ACL_GROUP_OBJ`).
    GroupObj,
    /// `group:GID:` — a named group (`ACL_GROUP`).
    Group(u32),
    /// `mask::` — the most any group or named user gets (`ACL_MASK`).
    Mask,
    /// `other::` (`ACL_OTHER`).
    Other,
}

impl AclTag {
    /// The tag's number in the extended attribute, and its id.
    fn code(self) -> (u16, u32) {
        match self {
            AclTag::UserObj => (0x01, u32::MAX),
            AclTag::User(uid) => (0x02, uid),
            AclTag::GroupObj => (0x04, u32::MAX),
            AclTag::Group(gid) => (0x08, gid),
            AclTag::Mask => (0x10, u32::MAX),
            AclTag::Other => (0x20, u32::MAX),
        }
    }
}

/// One entry of a POSIX ACL: a tag and `rwx` bits (4 read, 2 write, 1 execute).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AclEntry {
    /// Whom the entry is for.
    pub tag: AclTag,
    /// Its `rwx` bits.
    pub perm: u8,
}

/// A POSIX ACL (acl(5)), as the kernel keeps it in `system.posix_acl_access` and
/// `system.posix_acl_default`: entries sorted by tag, then id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct PosixAcl {
    /// The entries.
    pub entries: Vec<AclEntry>,
}

/// The version the kernel's ACL attributes carry (`POSIX_ACL_XATTR_VERSION`).
const XATTR_VERSION: u32 = 2;

impl PosixAcl {
    /// An ACL from the value of `system.posix_acl_access` or
    /// `system.posix_acl_default` (a little-endian version 2, then 8-byte
    /// entries: tag, permissions, id).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidAcl`] for a value of another version or size, an
    /// unknown tag or permission bits above 7.
    pub fn from_xattr(b: &[u8]) -> Result<PosixAcl> {
        let bad = |why: String| Error::new(ErrorKind::InvalidAcl, format!("POSIX ACL: {why}"));
        if b.len() < 4 || !(b.len() - 4).is_multiple_of(8) {
            return Err(bad(format!("{} bytes is no ACL", b.len())));
        }
        let version = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if version != XATTR_VERSION {
            return Err(bad(format!("version {version}")));
        }
        let entries = b[4..]
            .chunks_exact(8)
            .map(|e| {
                let tag = u16::from_le_bytes([e[0], e[1]]);
                let perm = u16::from_le_bytes([e[2], e[3]]);
                let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
                let tag = match tag {
                    0x01 => AclTag::UserObj,
                    0x02 => AclTag::User(id),
                    0x04 => AclTag::GroupObj,
                    0x08 => AclTag::Group(id),
                    0x10 => AclTag::Mask,
                    0x20 => AclTag::Other,
                    other => return Err(bad(format!("tag 0x{other:x}"))),
                };
                let perm = u8::try_from(perm)
                    .ok()
                    .filter(|p| *p <= 7)
                    .ok_or_else(|| bad(format!("permissions 0x{perm:x}")))?;
                Ok(AclEntry { tag, perm })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PosixAcl { entries })
    }

    /// The value to store in `system.posix_acl_access` (or `_default`): the
    /// entries sorted as the kernel requires.
    pub fn to_xattr(&self) -> Vec<u8> {
        let mut entries = self.entries.clone();
        entries.sort_by_key(|e| e.tag);
        let mut out = XATTR_VERSION.to_le_bytes().to_vec();
        for e in entries {
            let (tag, id) = e.tag.code();
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&u16::from(e.perm).to_le_bytes());
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    /// The permissions of the first entry with `tag`.
    pub fn perm(&self, tag: AclTag) -> Option<u8> {
        self.entries.iter().find(|e| e.tag == tag).map(|e| e.perm)
    }
}

/// What the kernel looks at to decide access to a file: its owner, group and
/// mode, and its POSIX ACLs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileStat {
    /// The owner's uid.
    pub uid: u32,
    /// The owning group's gid.
    pub gid: u32,
    /// The mode (type and permission bits, as `st_mode`).
    pub mode: u32,
    /// The access ACL (`system.posix_acl_access`), if the file has one.
    pub access_acl: Option<PosixAcl>,
    /// A directory's default ACL (`system.posix_acl_default`), if it has one.
    pub default_acl: Option<PosixAcl>,
}

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_ISVTX: u32 = 0o1000;

impl FileStat {
    /// Whether the file is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    fn bits(&self, shift: u32) -> u8 {
        ((self.mode >> shift) & 7) as u8
    }
}

/// A file's security descriptor and what the kernel's capability rules need
/// besides (see the [module documentation](self)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileSecurity {
    /// The descriptor: owner, group, and a protected DACL.
    pub descriptor: SecurityDescriptor,
    /// Whether the file is a directory.
    pub directory: bool,
    /// Whether any of the mode's execute bits is set (what `CAP_DAC_OVERRIDE`
    /// needs to execute a file).
    pub any_execute: bool,
}

/// The rights of `r`, `w` and `x` for a file or a directory.
struct Rights {
    read: AccessMask,
    write: AccessMask,
    execute: AccessMask,
}

impl Rights {
    fn of(directory: bool) -> Rights {
        let write = AccessMask::FILE_WRITE_DATA
            | AccessMask::FILE_APPEND_DATA
            | AccessMask::FILE_WRITE_EA
            | AccessMask::FILE_WRITE_ATTRIBUTES;
        Rights {
            read: AccessMask::FILE_READ_DATA | AccessMask::FILE_READ_EA,
            write: if directory {
                write | AccessMask::FILE_DELETE_CHILD
            } else {
                write
            },
            execute: AccessMask::FILE_EXECUTE,
        }
    }

    /// The rights of `rwx` bits.
    fn of_bits(&self, bits: u8) -> AccessMask {
        let mut m = AccessMask::empty();
        if bits & 4 != 0 {
            m |= self.read;
        }
        if bits & 2 != 0 {
            m |= self.write;
        }
        if bits & 1 != 0 {
            m |= self.execute;
        }
        m
    }

    fn all(&self) -> AccessMask {
        self.of_bits(7)
    }
}

/// The SIDs a file's ids stand for: those tokens hold for the same ids.
pub trait IdSids {
    /// The SID of the user of `uid`.
    ///
    /// # Errors
    /// A lookup that fails: no descriptor is made.
    fn user(&self, uid: u32) -> Result<Sid>;
    /// The SID of the group of `gid`.
    ///
    /// # Errors
    /// A lookup that fails.
    fn group(&self, gid: u32) -> Result<Sid>;
}

/// The SIDs of guise's tokens: Local System for uid 0, `S-1-22-1-uid` and
/// `S-1-22-2-gid`, or a directory account's and group's SIDs where winbind or
/// SSSD knows them ([`crate::directory`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenSids;

impl IdSids for TokenSids {
    fn user(&self, uid: u32) -> Result<Sid> {
        if uid == 0 {
            return Ok(Sid::LOCAL_SYSTEM);
        }
        if crate::directory::installed() {
            let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .map_err(|e| Error::sys(ErrorKind::Os, format!("looking up uid {uid}"), e))?;
            if let Some(user) = user
                && let Some(account) = crate::directory::account(&user.name, uid)?
            {
                return Ok(account.sid);
            }
        }
        Ok(Sid::unix_user(uid))
    }

    fn group(&self, gid: u32) -> Result<Sid> {
        if crate::directory::installed()
            && let Some(sid) = crate::directory::group_sid(gid)?
        {
            return Ok(sid);
        }
        Ok(Sid::unix_group(gid))
    }
}

/// The Unix SIDs only: Local System for uid 0, `S-1-22-1-uid`, `S-1-22-2-gid`.
/// No lookup is made.
#[derive(Clone, Copy, Debug, Default)]
pub struct UnixSids;

impl IdSids for UnixSids {
    fn user(&self, uid: u32) -> Result<Sid> {
        Ok(if uid == 0 {
            Sid::LOCAL_SYSTEM
        } else {
            Sid::unix_user(uid)
        })
    }

    fn group(&self, gid: u32) -> Result<Sid> {
        Ok(Sid::unix_group(gid))
    }
}

/// The ACEs that give a file's permission classes as the kernel does, with
/// `flags` on each. `owner_bits`, `group_bits` (the mask, with an ACL) and
/// `acl` as the kernel reads them; `owner`/`group` the SIDs of the owner and
/// owning group.
#[allow(clippy::too_many_arguments)]
fn permission_aces(
    owner: Sid,
    group: Sid,
    owner_bits: u8,
    group_bits: u8,
    other_bits: u8,
    acl: Option<&PosixAcl>,
    directory: bool,
    sticky: bool,
    sids: &dyn IdSids,
    flags: AceFlags,
) -> Result<Vec<Ace>> {
    let rights = Rights::of(directory);
    let mut aces = Vec::new();
    let mut push = |allow: bool, sid: Sid, mask: AccessMask| {
        if !mask.is_empty() {
            let t = if allow {
                super::descriptor::AceType::AccessAllowed
            } else {
                super::descriptor::AceType::AccessDenied
            };
            aces.push(Ace::new(t, flags, mask, sid));
        }
    };
    // Others than the owner never delete any child of a sticky directory.
    let others = |bits: u8| {
        let m = rights.of_bits(bits);
        if sticky {
            m - AccessMask::FILE_DELETE_CHILD
        } else {
            m
        }
    };
    let owner_extra = AccessMask::WRITE_DAC | AccessMask::FILE_WRITE_ATTRIBUTES;
    // 1. The owner: its bits, decided before anything else.
    push(
        false,
        owner,
        rights.all() - rights.of_bits(owner_bits) - owner_extra,
    );
    push(true, owner, rights.of_bits(owner_bits) | owner_extra);
    match acl.filter(|_| group_bits != 0) {
        // 2. The ACL, read only when the mask is not `---`.
        Some(acl) => {
            let mask = acl.perm(AclTag::Mask).unwrap_or(7);
            for e in &acl.entries {
                if let AclTag::User(uid) = e.tag {
                    let sid = sids.user(uid)?;
                    if sid == owner {
                        continue;
                    }
                    push(false, sid, others(7) - others(e.perm & mask));
                    push(true, sid, others(e.perm & mask));
                }
            }
            let mut group_entries = Vec::new();
            for e in &acl.entries {
                match e.tag {
                    AclTag::GroupObj => group_entries.push((group, e.perm)),
                    AclTag::Group(gid) => group_entries.push((sids.group(gid)?, e.perm)),
                    _ => {}
                }
            }
            for &(sid, perm) in &group_entries {
                push(true, sid, others(perm & mask));
            }
            for &(sid, _) in &group_entries {
                push(false, sid, others(7));
            }
            push(
                true,
                Sid::EVERYONE,
                others(acl.perm(AclTag::Other).unwrap_or(other_bits)),
            );
        }
        // 3. The mode alone.
        None => {
            push(true, group, others(group_bits));
            push(false, group, others(7) - others(group_bits));
            push(true, Sid::EVERYONE, others(other_bits));
        }
    }
    Ok(aces)
}

/// The security descriptor of a file with `stat` ([`GetSecurityInfo`] of a
/// Linux file), its ids named by `sids`: see the [module documentation](self).
///
/// # Errors
/// A lookup of `sids` that fails.
///
/// [`GetSecurityInfo`]: https://learn.microsoft.com/en-us/windows/win32/api/aclapi/nf-aclapi-getsecurityinfo
#[doc(alias = "GetSecurityInfo")]
#[doc(alias = "GetFileSecurity")]
pub fn descriptor_of(stat: &FileStat, sids: &dyn IdSids) -> Result<FileSecurity> {
    let directory = stat.is_dir();
    let owner = sids.user(stat.uid)?;
    let group = sids.group(stat.gid)?;
    let sticky = directory && stat.mode & S_ISVTX != 0;
    let mut aces = permission_aces(
        owner,
        group,
        stat.bits(6),
        stat.bits(3),
        stat.bits(0),
        stat.access_acl.as_ref(),
        directory,
        sticky,
        sids,
        AceFlags::empty(),
    )?;
    // Stat and getfacl need only the path.
    aces.push(Ace::allow(
        Sid::EVERYONE,
        AccessMask::FILE_READ_ATTRIBUTES | AccessMask::READ_CONTROL | AccessMask::SYNCHRONIZE,
    ));
    if let (true, Some(default)) = (directory, &stat.default_acl) {
        // A new file's owner and group: CREATOR OWNER and CREATOR GROUP.
        let perm = |tag| default.perm(tag).unwrap_or(0);
        let group_class = default
            .perm(AclTag::Mask)
            .unwrap_or_else(|| perm(AclTag::GroupObj));
        aces.extend(permission_aces(
            Sid::CREATOR_OWNER,
            Sid::CREATOR_GROUP,
            perm(AclTag::UserObj),
            group_class,
            perm(AclTag::Other),
            Some(default),
            true,
            false,
            sids,
            AceFlags::OBJECT_INHERIT | AceFlags::CONTAINER_INHERIT | AceFlags::INHERIT_ONLY,
        )?);
    }
    Ok(FileSecurity {
        descriptor: SecurityDescriptor {
            control: Control::DACL_PRESENT | Control::DACL_PROTECTED,
            rm_control: 0,
            owner: Some(owner),
            group: Some(group),
            dacl: Some(Acl::new(aces)),
            sacl: None,
        },
        directory,
        any_execute: stat.mode & 0o111 != 0,
    })
}

/// What the kernel decides a file's access by, read from an open descriptor
/// (any kind, `O_PATH` too).
///
/// # Errors
/// [`ErrorKind::Os`] when the file cannot be looked at; [`ErrorKind::InvalidAcl`]
/// for an ACL attribute guise cannot read.
pub fn stat_fd(fd: BorrowedFd<'_>) -> Result<FileStat> {
    use std::os::fd::AsRawFd;
    let st =
        rustix::fs::fstat(fd).map_err(|e| Error::sys(ErrorKind::Os, "looking at a file", e))?;
    // The attributes through the descriptor's own name, which works for O_PATH
    // descriptors too (fgetxattr does not): the same inode as fstat's.
    let proc = format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
    let acl = |name: &str| -> Result<Option<PosixAcl>> {
        let mut buf = vec![0u8; 65536];
        match rustix::fs::getxattr(proc.as_str(), name, &mut buf[..]) {
            Ok(n) => PosixAcl::from_xattr(&buf[..n]).map(Some),
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::OPNOTSUPP) => Ok(None),
            Err(e) => Err(Error::sys(ErrorKind::Os, format!("reading {name}"), e)),
        }
    };
    let mode = st.st_mode;
    Ok(FileStat {
        uid: st.st_uid,
        gid: st.st_gid,
        mode,
        access_acl: acl("system.posix_acl_access")?,
        default_acl: if mode & S_IFMT == S_IFDIR {
            acl("system.posix_acl_default")?
        } else {
            None
        },
    })
}

/// The security descriptor of the file at `path` (symbolic links followed), as
/// [`GetNamedSecurityInfo`] gives it for `SE_FILE_OBJECT`: see the [module
/// documentation](self). The file is opened `O_PATH` once, so the owner, mode
/// and ACL are those of one file.
///
/// # Errors
/// [`ErrorKind::Os`] when the file cannot be reached; a lookup of an id that
/// fails; [`ErrorKind::InvalidAcl`].
///
/// [`GetNamedSecurityInfo`]: https://learn.microsoft.com/en-us/windows/win32/api/aclapi/nf-aclapi-getnamedsecurityinfow
#[doc(alias = "GetNamedSecurityInfo")]
#[doc(alias = "GetNamedSecurityInfoW")]
#[doc(alias = "GetFileSecurity")]
pub fn file_security(path: impl AsRef<Path>) -> Result<FileSecurity> {
    let path = path.as_ref();
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::sys(ErrorKind::Os, format!("opening {}", path.display()), e))?;
    file_security_fd(fd.as_fd())
}

/// [`file_security`] of an open file ([`GetSecurityInfo`]).
///
/// # Errors
/// As [`file_security`].
///
/// [`GetSecurityInfo`]: https://learn.microsoft.com/en-us/windows/win32/api/aclapi/nf-aclapi-getsecurityinfo
#[doc(alias = "GetSecurityInfo")]
pub fn file_security_fd(fd: BorrowedFd<'_>) -> Result<FileSecurity> {
    descriptor_of(&stat_fd(fd)?, &TokenSids)
}

impl FileSecurity {
    /// Whether `token` may have `desired` on the file ([`AccessCheck`] of its
    /// descriptor with the file mapping): the kernel's answer, right by right
    /// (see the [module documentation](self)). Generic rights are mapped first.
    ///
    /// # Errors
    /// As [`super::access_check`].
    ///
    /// [`AccessCheck`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-accesscheck
    #[doc(alias = "AccessCheck")]
    pub fn access_check(
        &self,
        token: &Token,
        desired: AccessMask,
        options: AccessCheckOptions,
    ) -> Result<AccessCheck> {
        let mapping = GenericMapping::FILE;
        let desired = mapping.map(desired);
        // The DACL alone; privileges act below as the kernel's capabilities do.
        let plain = access_check_with(
            &self.descriptor,
            token,
            desired,
            &mapping,
            AccessCheckOptions::default(),
        )?;
        if !options.backup_semantics || plain.is_allowed() {
            return Ok(plain);
        }
        let by_capability = self.capability_grants(token);
        let max = desired.contains(AccessMask::MAXIMUM_ALLOWED);
        let want = desired - AccessMask::MAXIMUM_ALLOWED;
        // What the DACL grants right by right, with MAXIMUM_ALLOWED.
        let dacl = access_check_with(
            &self.descriptor,
            token,
            AccessMask::MAXIMUM_ALLOWED,
            &mapping,
            AccessCheckOptions::default(),
        )?
        .granted;
        let granted = dacl | by_capability;
        let missing = want - granted;
        let something = if max {
            !granted.is_empty()
        } else {
            !want.is_empty()
        };
        Ok(if missing.is_empty() && something {
            let mut allowed = AccessCheck::allowed(if max { granted } else { want });
            let rights = Rights::of(self.directory);
            for (p, by) in [
                (Privilege::Backup, rights.read | rights.execute),
                (Privilege::Restore, rights.all()),
            ] {
                if token.is_privilege_enabled(p)
                    && (by & (allowed.granted - dacl)).intersects(by_capability)
                {
                    allowed.privileges_used.insert(p);
                }
            }
            allowed
        } else {
            AccessCheck::denied(ErrorKind::AccessDenied, missing)
        })
    }

    /// The rights an enabled SeBackupPrivilege (`CAP_DAC_READ_SEARCH`) and
    /// SeRestorePrivilege (`CAP_DAC_OVERRIDE`) grant on this file, by the
    /// kernel's `generic_permission`.
    fn capability_grants(&self, token: &Token) -> AccessMask {
        let rights = Rights::of(self.directory);
        let mut granted = AccessMask::empty();
        if token.is_privilege_enabled(Privilege::Backup) {
            granted |= rights.read;
            if self.directory {
                granted |= rights.execute;
            }
        }
        if token.is_privilege_enabled(Privilege::Restore) {
            granted |= rights.read | rights.write;
            if self.directory || self.any_execute {
                granted |= rights.execute;
            }
        }
        granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acl_goes_to_its_attribute_and_back() {
        let acl = PosixAcl {
            entries: vec![
                AclEntry {
                    tag: AclTag::Other,
                    perm: 4,
                },
                AclEntry {
                    tag: AclTag::UserObj,
                    perm: 7,
                },
                AclEntry {
                    tag: AclTag::User(1000),
                    perm: 6,
                },
                AclEntry {
                    tag: AclTag::GroupObj,
                    perm: 5,
                },
                AclEntry {
                    tag: AclTag::Mask,
                    perm: 7,
                },
            ],
        };
        let bytes = acl.to_xattr();
        assert_eq!(bytes.len(), 4 + 5 * 8);
        let back = PosixAcl::from_xattr(&bytes).unwrap();
        let mut sorted = acl.entries.clone();
        sorted.sort_by_key(|e| e.tag);
        assert_eq!(back.entries, sorted);
        assert!(PosixAcl::from_xattr(&bytes[..bytes.len() - 1]).is_err());
        let mut v1 = bytes.clone();
        v1[0] = 1;
        assert!(PosixAcl::from_xattr(&v1).is_err());
        let mut bad_perm = bytes;
        bad_perm[6] = 8;
        assert!(PosixAcl::from_xattr(&bad_perm).is_err());
    }
}
