//! A Linux file's owner, group, mode bits and POSIX ACLs as a Windows security
//! descriptor ([`GetNamedSecurityInfo`], [`GetSecurityInfo`]), built so that
//! AccessCheck of it gives exactly the kernel's answer.
//!
//! A server at Identification level (or one that must not open a file as its
//! client) can decide for its client with [`file_access_check`], and an
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
//! kernel's. An id is named by every SID a token may carry for it: its Unix SID
//! (`S-1-22-1-uid`, `S-1-22-2-gid`; Local System for uid 0) and the SIDs winbind
//! or SSSD give it, so a directory account's token matches as a local one does.
//!
//! # Rights
//! | Linux | files | directories |
//! |---|---|---|
//! | `r` | `FILE_READ_DATA`, `FILE_READ_EA` | `FILE_LIST_DIRECTORY`, `FILE_READ_EA` |
//! | `w` | `FILE_WRITE_DATA`, `FILE_APPEND_DATA`, `FILE_WRITE_EA`, `FILE_WRITE_ATTRIBUTES` | `FILE_ADD_FILE`, `FILE_ADD_SUBDIRECTORY`, `FILE_WRITE_EA`, `FILE_WRITE_ATTRIBUTES` |
//! | `x` | `FILE_EXECUTE` | `FILE_TRAVERSE` |
//! | `w` and `x` in one entry | — | `FILE_DELETE_CHILD` (the directory's owner's only when sticky) |
//!
//! So `FILE_GENERIC_READ` (SDDL `FR`), `FILE_GENERIC_WRITE` (`FW`) and
//! `FILE_GENERIC_EXECUTE` (`FX`) are granted exactly when the kernel grants
//! `r`, `w` and `x` (`access(2)`). Creating in a directory needs `FILE_ADD_FILE`
//! and `FILE_TRAVERSE`, as the kernel needs `w` and `x`. Everyone gets
//! `FILE_READ_ATTRIBUTES`, `READ_CONTROL` and `SYNCHRONIZE` (stat and getfacl need
//! only the path); the owner also gets `WRITE_DAC` (chmod, setfacl) and
//! `FILE_WRITE_ATTRIBUTES` (any times; others with `w` may only set them to now).
//! Nobody gets `DELETE` or `WRITE_OWNER` from the file: on Linux deleting is the
//! parent directory's `FILE_DELETE_CHILD`, and changing the owner needs
//! `CAP_CHOWN` (SeRestorePrivilege).
//!
//! [`FileSecurity::access_check`] also applies what holds for everyone,
//! privileges included: nothing writes a file on a read-only mount or an
//! immutable file, and nothing executes a file on a `noexec` mount.
//!
//! # The path
//! [`file_security`] describes the file a path leads to. [`file_access_check`]
//! decides for a path as the kernel resolves it for the token: every directory
//! on the way, the targets of symbolic links included, must grant
//! `FILE_TRAVERSE` (Linux checks traversal; Windows' SeChangeNotifyPrivilege,
//! which every token holds, does not bypass it here). As the kernel does, a
//! trailing slash needs a directory, no link on a `nosymfollow` mount is
//! followed, and with `fs.protected_symlinks` a trailing link in a sticky,
//! world-writable directory is followed only by its owner (or the
//! directory's). Paths through `/proc`, whose permissions are its own (hidden
//! pids, ptrace checks, magic links), are refused.
//!
//! # Capabilities
//! Without backup semantics the answer is the kernel's for a process or thread
//! without `CAP_DAC_OVERRIDE` and `CAP_DAC_READ_SEARCH`: any non-root process,
//! and every thread while it impersonates with guise. With
//! [`AccessCheckOptions::backup_semantics`], an enabled SeBackupPrivilege acts as
//! `CAP_DAC_READ_SEARCH` (read any file; read and search any directory) and an
//! enabled SeRestorePrivilege as `CAP_DAC_OVERRIDE` for writing only (write
//! any file; add to and delete in any directory), as
//! [`crate::fs::open_for_backup`] raises them.
//!
//! # Where Windows and Linux part
//! - The kernel decides a request for several rights at once by one entry: a
//!   member of two named groups, one with `r` and one with `w`, may read and may
//!   write but not open for both. AccessCheck grants each right by any ACE:
//!   ask for one right at a time where the difference matters.
//! - A token's deny-only group (a directory group the peer's process dropped)
//!   matches the deny ACEs of group entries: AccessCheck then refuses what the
//!   kernel would give as "other".
//! - The kernel lets only the owner of a sticky directory write its `user.*`
//!   extended attributes; `FILE_WRITE_EA` follows `w` there, as `FW` must.
//! - In a user namespace, files of unmapped owners show the overflow ids
//!   (65534): their descriptors name those.
//! - The default ACL of a directory becomes inheritable ACEs (`OI CI IO`, for
//!   CREATOR OWNER and CREATOR GROUP); what a new file really gets also depends
//!   on the mode it is created with.
//!
//! [`GetNamedSecurityInfo`]: https://learn.microsoft.com/en-us/windows/win32/api/aclapi/nf-aclapi-getnamedsecurityinfow
//! [`GetSecurityInfo`]: https://learn.microsoft.com/en-us/windows/win32/api/aclapi/nf-aclapi-getsecurityinfo

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::access::{
    AccessCheck, AccessCheckOptions, access_check_with, mandatory_denied, write_rights,
};
use super::descriptor::{Ace, AceFlags, AceType, Acl, Control, SecurityDescriptor};
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
    /// entries: tag, permissions, id), checked by the kernel's rules
    /// (`posix_acl_valid`): one `user::`, `group::` and `other::` entry, at
    /// most one `mask::`, which named entries need, sorted by tag and id, each
    /// named id once.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidAcl`] for a value of another version or size, an
    /// unknown tag, permission bits above 7, or an ACL the kernel would not
    /// take (where it would answer `EIO`).
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
        let acl = PosixAcl { entries };
        acl.validate().map_err(|why| bad(why.to_owned()))?;
        Ok(acl)
    }

    /// The kernel's `posix_acl_valid`: `Err` with the reason for an ACL it
    /// would refuse.
    fn validate(&self) -> std::result::Result<(), &'static str> {
        if !self.entries.is_sorted_by(|a, b| a.tag < b.tag) {
            return Err("entries out of order, or a named id twice");
        }
        let count = |f: fn(&AclTag) -> bool| self.entries.iter().filter(|e| f(&e.tag)).count();
        if count(|t| *t == AclTag::UserObj) != 1
            || count(|t| *t == AclTag::GroupObj) != 1
            || count(|t| *t == AclTag::Other) != 1
        {
            return Err("not exactly one user::, group:: and other:: entry");
        }
        let named = count(|t| matches!(t, AclTag::User(_) | AclTag::Group(_)));
        match count(|t| *t == AclTag::Mask) {
            0 if named > 0 => Err("named entries without a mask"),
            0 | 1 => Ok(()),
            _ => Err("more than one mask"),
        }
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

/// What holds for everyone on a file, privileges included: the kernel refuses
/// writing a file on a read-only mount or an immutable file, and executing one
/// on a `noexec` mount, before any permission is looked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileFlags {
    /// The file is on a read-only mount (`ST_RDONLY`).
    pub read_only_mount: bool,
    /// The file is on a `noexec` mount (`ST_NOEXEC`).
    pub noexec_mount: bool,
    /// The file is immutable (`chattr +i`, `STATX_ATTR_IMMUTABLE`).
    pub immutable: bool,
}

/// What the kernel looks at to decide access to a file: its owner, group and
/// mode, its POSIX ACLs, and what holds for everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
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
    /// The mount's and the inode's flags.
    pub flags: FileFlags,
}

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
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

/// A file's security descriptor and what the kernel's other rules need
/// besides (see the [module documentation](self)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileSecurity {
    /// The descriptor: owner, group, and a protected DACL.
    pub descriptor: SecurityDescriptor,
    /// Whether the file is a directory.
    pub directory: bool,
    /// The mount's and the inode's flags.
    pub flags: FileFlags,
}

/// The rights of `r`, `w` and `x` for a file or a directory.
struct Rights {
    directory: bool,
    read: AccessMask,
    write: AccessMask,
    execute: AccessMask,
}

impl Rights {
    fn of(directory: bool) -> Rights {
        Rights {
            directory,
            read: AccessMask::FILE_READ_DATA | AccessMask::FILE_READ_EA,
            write: AccessMask::FILE_WRITE_DATA
                | AccessMask::FILE_APPEND_DATA
                | AccessMask::FILE_WRITE_EA
                | AccessMask::FILE_WRITE_ATTRIBUTES,
            execute: AccessMask::FILE_EXECUTE,
        }
    }

    /// The rights of `rwx` bits of one entry: a directory's
    /// `FILE_DELETE_CHILD` needs `w` and `x` in the same entry, as the kernel's
    /// `may_delete` asks for both at once.
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
        if self.directory && bits & 3 == 3 {
            m |= AccessMask::FILE_DELETE_CHILD;
        }
        m
    }

    fn all(&self) -> AccessMask {
        self.of_bits(7)
    }
}

/// The SIDs a file's ids stand for: those tokens hold for the same ids.
pub trait IdSids {
    /// Every SID of the user of `uid`, the one to show as the owner first.
    ///
    /// # Errors
    /// A lookup that fails: no descriptor is made.
    fn user(&self, uid: u32) -> Result<Vec<Sid>>;
    /// Every SID of the group of `gid`, the one to show first.
    ///
    /// # Errors
    /// A lookup that fails.
    fn group(&self, gid: u32) -> Result<Vec<Sid>>;
}

/// The SIDs of guise's tokens: Local System for uid 0, else the directory's
/// SIDs of an id (winbind's, SSSD's; [`crate::directory`]) and its Unix SID
/// (`S-1-22-1-uid`, `S-1-22-2-gid`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenSids;

impl IdSids for TokenSids {
    fn user(&self, uid: u32) -> Result<Vec<Sid>> {
        if uid == 0 {
            return Ok(vec![Sid::LOCAL_SYSTEM]);
        }
        let mut sids = if crate::directory::installed() {
            crate::directory::sids_of_uid(uid)?
        } else {
            Vec::new()
        };
        sids.push(Sid::unix_user(uid));
        Ok(sids)
    }

    fn group(&self, gid: u32) -> Result<Vec<Sid>> {
        let mut sids = if crate::directory::installed() {
            crate::directory::sids_of_gid(gid)?
        } else {
            Vec::new()
        };
        sids.push(Sid::unix_group(gid));
        Ok(sids)
    }
}

/// [`IdSids`] that asks `inner` once per id: one path's directories and file
/// share owners and groups.
struct Memo<'a> {
    inner: &'a dyn IdSids,
    users: std::cell::RefCell<Vec<(u32, Vec<Sid>)>>,
    groups: std::cell::RefCell<Vec<(u32, Vec<Sid>)>>,
}

impl<'a> Memo<'a> {
    fn new(inner: &'a dyn IdSids) -> Memo<'a> {
        Memo {
            inner,
            users: Default::default(),
            groups: Default::default(),
        }
    }

    fn ask(
        cache: &std::cell::RefCell<Vec<(u32, Vec<Sid>)>>,
        id: u32,
        f: impl FnOnce() -> Result<Vec<Sid>>,
    ) -> Result<Vec<Sid>> {
        if let Some((_, sids)) = cache.borrow().iter().find(|(i, _)| *i == id) {
            return Ok(sids.clone());
        }
        let sids = f()?;
        cache.borrow_mut().push((id, sids.clone()));
        Ok(sids)
    }
}

impl IdSids for Memo<'_> {
    fn user(&self, uid: u32) -> Result<Vec<Sid>> {
        Self::ask(&self.users, uid, || self.inner.user(uid))
    }

    fn group(&self, gid: u32) -> Result<Vec<Sid>> {
        Self::ask(&self.groups, gid, || self.inner.group(gid))
    }
}

/// The Unix SIDs only: Local System for uid 0, `S-1-22-1-uid`, `S-1-22-2-gid`.
/// No lookup is made.
#[derive(Clone, Copy, Debug, Default)]
pub struct UnixSids;

impl IdSids for UnixSids {
    fn user(&self, uid: u32) -> Result<Vec<Sid>> {
        Ok(vec![if uid == 0 {
            Sid::LOCAL_SYSTEM
        } else {
            Sid::unix_user(uid)
        }])
    }

    fn group(&self, gid: u32) -> Result<Vec<Sid>> {
        Ok(vec![Sid::unix_group(gid)])
    }
}

/// The permission classes of a file as [`permission_aces`] needs them.
struct Classes<'a> {
    owner: &'a [Sid],
    group: &'a [Sid],
    owner_bits: u8,
    /// The group bits: the ACL's mask, with an ACL.
    group_bits: u8,
    other_bits: u8,
    acl: Option<&'a PosixAcl>,
    directory: bool,
    sticky: bool,
}

/// The ACEs that give a file's permission classes as the kernel does, with
/// `flags` on each.
fn permission_aces(c: &Classes<'_>, sids: &dyn IdSids, flags: AceFlags) -> Result<Vec<Ace>> {
    let rights = Rights::of(c.directory);
    let mut aces = Vec::new();
    let mut push = |allow: bool, sids: &[Sid], mask: AccessMask| {
        if mask.is_empty() {
            return;
        }
        let t = if allow {
            AceType::AccessAllowed
        } else {
            AceType::AccessDenied
        };
        for sid in sids {
            aces.push(Ace::new(t, flags, mask, *sid));
        }
    };
    // Others than the owner never delete any child of a sticky directory.
    let others = |bits: u8| {
        let m = rights.of_bits(bits);
        if c.sticky {
            m - AccessMask::FILE_DELETE_CHILD
        } else {
            m
        }
    };
    let owner_extra = AccessMask::WRITE_DAC | AccessMask::FILE_WRITE_ATTRIBUTES;
    // 1. The owner: its bits, decided before anything else.
    push(
        false,
        c.owner,
        rights.all() - rights.of_bits(c.owner_bits) - owner_extra,
    );
    push(true, c.owner, rights.of_bits(c.owner_bits) | owner_extra);
    match c.acl.filter(|_| c.group_bits != 0) {
        // 2. The ACL, read only when the mask is not `---`.
        Some(acl) => {
            let mask = acl.perm(AclTag::Mask).unwrap_or(7);
            for e in &acl.entries {
                if let AclTag::User(uid) = e.tag {
                    let named: Vec<Sid> = sids
                        .user(uid)?
                        .into_iter()
                        .filter(|s| !c.owner.contains(s))
                        .collect();
                    push(false, &named, others(7) - others(e.perm & mask));
                    push(true, &named, others(e.perm & mask));
                }
            }
            let mut group_entries: Vec<(Vec<Sid>, u8)> = Vec::new();
            for e in &acl.entries {
                match e.tag {
                    AclTag::GroupObj => group_entries.push((c.group.to_vec(), e.perm)),
                    AclTag::Group(gid) => group_entries.push((sids.group(gid)?, e.perm)),
                    _ => {}
                }
            }
            for (sids, perm) in &group_entries {
                push(true, sids, others(perm & mask));
            }
            for (sids, _) in &group_entries {
                push(false, sids, others(7));
            }
            push(
                true,
                &[Sid::EVERYONE],
                others(acl.perm(AclTag::Other).unwrap_or(c.other_bits)),
            );
        }
        // 3. The mode alone.
        None => {
            push(true, c.group, others(c.group_bits));
            push(false, c.group, others(7) - others(c.group_bits));
            push(true, &[Sid::EVERYONE], others(c.other_bits));
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
    let mut aces = permission_aces(
        &Classes {
            owner: &owner,
            group: &group,
            owner_bits: stat.bits(6),
            group_bits: stat.bits(3),
            other_bits: stat.bits(0),
            acl: stat.access_acl.as_ref(),
            directory,
            sticky: directory && stat.mode & S_ISVTX != 0,
        },
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
            &Classes {
                owner: &[Sid::CREATOR_OWNER],
                group: &[Sid::CREATOR_GROUP],
                owner_bits: perm(AclTag::UserObj),
                group_bits: group_class,
                other_bits: perm(AclTag::Other),
                acl: Some(default),
                directory: true,
                sticky: false,
            },
            sids,
            AceFlags::OBJECT_INHERIT | AceFlags::CONTAINER_INHERIT | AceFlags::INHERIT_ONLY,
        )?);
    }
    Ok(FileSecurity {
        descriptor: SecurityDescriptor {
            control: Control::DACL_PRESENT | Control::DACL_PROTECTED,
            rm_control: 0,
            owner: owner.first().copied(),
            group: group.first().copied(),
            dacl: Some(Acl::new(aces)),
            sacl: None,
        },
        directory,
        flags: stat.flags,
    })
}

/// What the kernel decides a file's access by, read from an open descriptor
/// (any kind, `O_PATH` too).
///
/// # Errors
/// [`ErrorKind::Os`] when the file cannot be looked at; [`ErrorKind::InvalidAcl`]
/// for an ACL attribute the kernel would not take.
pub fn stat_fd(fd: BorrowedFd<'_>) -> Result<FileStat> {
    stat_of(fd, true)
}

/// [`stat_fd`]; without `whole`, only what searching a directory depends on
/// (no mount flags, no default ACL).
fn stat_of(fd: BorrowedFd<'_>, whole: bool) -> Result<FileStat> {
    use rustix::fs::{AtFlags, StatVfsMountFlags, StatxAttributes, StatxFlags};
    use std::os::fd::AsRawFd;
    let look = |e| Error::sys(ErrorKind::Os, "looking at a file", e);
    let stx = rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH,
        StatxFlags::TYPE | StatxFlags::MODE | StatxFlags::UID | StatxFlags::GID,
    )
    .map_err(look)?;
    let wanted = StatxFlags::TYPE | StatxFlags::MODE | StatxFlags::UID | StatxFlags::GID;
    if !StatxFlags::from_bits_retain(stx.stx_mask).contains(wanted) {
        return Err(Error::new(
            ErrorKind::Os,
            "the file system did not give the file's type, mode and owner",
        ));
    }
    // The attributes through the descriptor's own name, which works for O_PATH
    // descriptors too (fgetxattr does not): the same inode as statx's.
    let proc = format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
    let acl = |name: &str| -> Result<Option<PosixAcl>> {
        // Room for 30 entries first (the kernel allocates what is offered),
        // then what the attribute needs.
        let mut buf = vec![0u8; 4 + 30 * 8];
        loop {
            match rustix::fs::getxattr(proc.as_str(), name, &mut buf[..]) {
                Ok(n) => return PosixAcl::from_xattr(&buf[..n]).map(Some),
                Err(rustix::io::Errno::NODATA | rustix::io::Errno::OPNOTSUPP) => return Ok(None),
                Err(rustix::io::Errno::RANGE) if buf.len() < 65536 => {
                    let need = rustix::fs::getxattr(proc.as_str(), name, &mut [0u8; 0][..])
                        .map_err(|e| Error::sys(ErrorKind::Os, format!("reading {name}"), e))?;
                    buf.resize(need.clamp(buf.len() + 1, 65536), 0);
                }
                Err(e) => return Err(Error::sys(ErrorKind::Os, format!("reading {name}"), e)),
            }
        }
    };
    let mode = u32::from(stx.stx_mode);
    let kind = mode & S_IFMT;
    let flags = if whole {
        let vfs = rustix::fs::fstatvfs(fd).map_err(look)?;
        FileFlags {
            read_only_mount: vfs.f_flag.contains(StatVfsMountFlags::RDONLY),
            noexec_mount: vfs.f_flag.contains(StatVfsMountFlags::NOEXEC),
            immutable: stx.stx_attributes.contains(StatxAttributes::IMMUTABLE),
        }
    } else {
        FileFlags::default()
    };
    Ok(FileStat {
        uid: stx.stx_uid,
        gid: stx.stx_gid,
        mode,
        // A symbolic link has no ACL of its own (its xattrs name its target's).
        access_acl: if kind == S_IFLNK {
            None
        } else {
            acl("system.posix_acl_access")?
        },
        default_acl: if whole && kind == S_IFDIR {
            acl("system.posix_acl_default")?
        } else {
            None
        },
        flags,
    })
}

fn open_path(dir: Option<BorrowedFd<'_>>, name: &Path, follow: bool) -> Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    match dir {
        Some(d) => rustix::fs::openat(d, name, flags, Mode::empty()),
        None => rustix::fs::open(name, flags, Mode::empty()),
    }
    .map_err(|e| Error::sys(ErrorKind::Os, format!("opening {}", name.display()), e))
}

/// The security descriptor of the file at `path` (symbolic links followed), as
/// [`GetNamedSecurityInfo`] gives it for `SE_FILE_OBJECT`: see the [module
/// documentation](self). The file is opened `O_PATH` once, so the owner, mode
/// and ACL are those of one file. It describes that file only: whether a token
/// may reach it through its path is [`file_access_check`]'s question.
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
    let fd = open_path(None, path.as_ref(), true)?;
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

/// The most symbolic links one lookup follows (the kernel's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// procfs' `f_type`: its symbolic links are magic links.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// `ST_NOSYMFOLLOW`: the kernel follows no symbolic link on such a mount.
const ST_NOSYMFOLLOW: u64 = 0x2000;

/// Whether `fd` is on procfs, whose files have permission rules of their own
/// (hidden pids, ptrace checks) and whose links are magic.
fn on_procfs(fd: BorrowedFd<'_>) -> Result<bool> {
    let fs = rustix::fs::fstatfs(fd)
        .map_err(|e| Error::sys(ErrorKind::Os, "looking at a file system", e))?;
    #[allow(clippy::unnecessary_cast)]
    Ok(fs.f_type as i64 == PROC_SUPER_MAGIC)
}

/// The token's own SID for its uid among the SIDs of that uid: a token made
/// when the directory answered keeps matching its files' owner ACEs.
struct WithToken<'a> {
    inner: &'a dyn IdSids,
    uid: u32,
    user: Sid,
}

impl IdSids for WithToken<'_> {
    fn user(&self, uid: u32) -> Result<Vec<Sid>> {
        let mut sids = self.inner.user(uid)?;
        if uid == self.uid && !sids.contains(&self.user) {
            sids.push(self.user);
        }
        Ok(sids)
    }

    fn group(&self, gid: u32) -> Result<Vec<Sid>> {
        self.inner.group(gid)
    }
}

/// Resolves `path` component by component as the kernel does for `token`:
/// each directory looked up in must grant it `FILE_TRAVERSE`, symbolic links
/// are followed (the last one too) by reading them, `..` goes up, a trailing
/// slash needs a directory. `None` when a directory on the way does not let
/// the token search it, or `fs.protected_symlinks` forbids it a trailing link.
fn walk(path: &Path, token: &Token, options: AccessCheckOptions) -> Result<Option<FileSecurity>> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(Error::new(ErrorKind::InvalidParameter, "an empty path"));
    }
    let resolving = |e: rustix::io::Errno| {
        Error::sys(ErrorKind::Os, format!("resolving {}", path.display()), e)
    };
    let refused_proc = || {
        Error::new(
            ErrorKind::InvalidParameter,
            format!(
                "{} goes through /proc, whose permissions are its own",
                path.display()
            ),
        )
    };
    let split = |b: &[u8]| -> VecDeque<OsString> {
        b.split(|&c| c == b'/')
            .filter(|c| !c.is_empty())
            .map(|c| OsString::from_vec(c.to_vec()))
            .collect()
    };
    let root = || open_path(None, Path::new("/"), true);
    let mut cur = if bytes[0] == b'/' {
        root()?
    } else {
        open_path(None, Path::new("."), true)?
    };
    if on_procfs(cur.as_fd())? {
        return Err(refused_proc());
    }
    let mut queue = split(bytes);
    let mut want_dir = bytes.ends_with(b"/");
    let mut links = 0;
    let memo = Memo::new(&TokenSids);
    let sids = WithToken {
        inner: &memo,
        uid: token.unix().uid().as_raw(),
        user: token.user(),
    };
    // What searching `cur` depends on, once read.
    let mut cur_stat = None;
    while let Some(name) = queue.pop_front() {
        let trailing = queue.is_empty();
        // Every lookup in a directory needs its search permission, `.` and
        // `..` included (may_lookup).
        let stat = match cur_stat.take() {
            Some(stat) => stat,
            None => stat_of(cur.as_fd(), false)?,
        };
        let here = descriptor_of(&stat, &sids)?;
        if !here
            .access_check(token, AccessMask::FILE_EXECUTE, options)?
            .is_allowed()
        {
            return Ok(None);
        }
        if name == "." {
            cur_stat = Some(stat);
            continue;
        }
        let next = open_path(Some(cur.as_fd()), Path::new(&name), false)?;
        if on_procfs(next.as_fd())? {
            return Err(refused_proc());
        }
        let st = stat_of(next.as_fd(), false)?;
        if st.mode & S_IFMT == S_IFLNK {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(resolving(rustix::io::Errno::LOOP));
            }
            let vfs = rustix::fs::fstatvfs(&next)
                .map_err(|e| Error::sys(ErrorKind::Os, "looking at a file system", e))?;
            if vfs.f_flag.bits() & ST_NOSYMFOLLOW != 0 {
                return Err(resolving(rustix::io::Errno::LOOP));
            }
            if trailing && !may_follow_link(&stat, st.uid, token)? {
                return Ok(None);
            }
            let target = rustix::fs::readlinkat(&next, "", Vec::new())
                .map_err(|e| Error::sys(ErrorKind::Os, "reading a symbolic link", e))?;
            let target = target.as_bytes();
            if trailing && target.ends_with(b"/") {
                want_dir = true;
            }
            for c in split(target).into_iter().rev() {
                queue.push_front(c);
            }
            if target.first() == Some(&b'/') {
                cur = root()?;
            } else {
                cur_stat = Some(stat);
            }
            continue;
        }
        if (!trailing || want_dir) && st.mode & S_IFMT != S_IFDIR {
            return Err(resolving(rustix::io::Errno::NOTDIR));
        }
        cur = next;
        cur_stat = Some(st);
    }
    Ok(Some(descriptor_of(&stat_fd(cur.as_fd())?, &sids)?))
}

/// The kernel's `may_follow_link` for a trailing symbolic link owned by
/// `link_uid` in the directory `dir`: with `fs.protected_symlinks`, a link in
/// a sticky, world-writable directory is followed only by its owner, or when
/// the directory's owner owns it too.
fn may_follow_link(dir: &FileStat, link_uid: u32, token: &Token) -> Result<bool> {
    if link_uid == token.unix().uid().as_raw() {
        return Ok(true);
    }
    if dir.mode & (S_ISVTX | 0o002) != (S_ISVTX | 0o002) || dir.uid == link_uid {
        return Ok(true);
    }
    let protected = std::fs::read_to_string("/proc/sys/fs/protected_symlinks")
        .map_err(|e| Error::with_source(ErrorKind::Os, "reading fs.protected_symlinks", e))?;
    Ok(protected.trim() == "0")
}

/// The security of the file at `path` as `token` reaches it: `None` when a
/// directory the kernel would look the path up in for the token does not grant
/// it `FILE_TRAVERSE` (symbolic links followed as the kernel follows them for
/// the token, their targets' directories included).
///
/// # Errors
/// As [`file_security`]; [`ErrorKind::InvalidParameter`] for a path through
/// `/proc`; [`ErrorKind::Os`] for a path the kernel would not resolve (too
/// many links, a link on a `nosymfollow` mount, a file where a directory is
/// needed).
pub fn file_security_for(
    path: impl AsRef<Path>,
    token: &Token,
    options: AccessCheckOptions,
) -> Result<Option<FileSecurity>> {
    walk(path.as_ref(), token, options)
}

/// Whether `token` may have `desired` on the file at `path` ([`AccessCheck`]
/// for a Linux file): every directory the kernel would look the path up in
/// for the token must grant it `FILE_TRAVERSE` ([`file_security_for`]), then
/// the file's own descriptor decides ([`FileSecurity::access_check`]). A
/// directory on the way that may not be searched denies everything asked.
///
/// # Errors
/// As [`file_security_for`] and [`super::access_check`].
///
/// [`AccessCheck`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-accesscheck
#[doc(alias = "AccessCheck")]
#[doc(alias = "GetNamedSecurityInfo")]
pub fn file_access_check(
    path: impl AsRef<Path>,
    token: &Token,
    desired: AccessMask,
    options: AccessCheckOptions,
) -> Result<AccessCheck> {
    FileSecurity::check_reached(
        file_security_for(path, token, options)?.as_ref(),
        token,
        desired,
        options,
    )
}

impl FileSecurity {
    /// [`FileSecurity::access_check`] of a file reached through its path, or
    /// the denial of everything asked when it could not be reached (`None`, as
    /// [`file_security_for`] says).
    ///
    /// # Errors
    /// As [`super::access_check`].
    pub fn check_reached(
        reached: Option<&FileSecurity>,
        token: &Token,
        desired: AccessMask,
        options: AccessCheckOptions,
    ) -> Result<AccessCheck> {
        match reached {
            Some(fs) => fs.access_check(token, desired, options),
            None => {
                let want = GenericMapping::FILE.map(desired) - AccessMask::MAXIMUM_ALLOWED;
                Ok(AccessCheck::denied(ErrorKind::AccessDenied, want))
            }
        }
    }

    /// Whether `token` may have `desired` on the file ([`AccessCheck`] of its
    /// descriptor with the file mapping): the kernel's answer, right by right
    /// (see the [module documentation](self)), with the rights no one has on
    /// this file (a read-only mount, an immutable file, a `noexec` mount)
    /// taken away and, with backup semantics, enabled SeBackupPrivilege and
    /// SeRestorePrivilege acting as the kernel's capabilities. Generic rights
    /// are mapped first.
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
        let max = desired.contains(AccessMask::MAXIMUM_ALLOWED);
        let want = desired - AccessMask::MAXIMUM_ALLOWED;
        let nobody = self.forbidden_to_all();
        // The DACL alone; privileges act below as the kernel's capabilities do.
        let plain = access_check_with(
            &self.descriptor,
            token,
            desired,
            &mapping,
            AccessCheckOptions::default(),
        )?;
        if plain.is_allowed() && !plain.granted.intersects(nobody) {
            return Ok(plain);
        }
        if plain.is_allowed() && !max {
            return Ok(AccessCheck::denied(ErrorKind::AccessDenied, want & nobody));
        }
        let by_capability = if options.backup_semantics {
            self.capability_grants(token) - mandatory_denied(&self.descriptor, token, &mapping)
        } else {
            AccessMask::empty()
        };
        // What the DACL grants right by right, with MAXIMUM_ALLOWED.
        let dacl = access_check_with(
            &self.descriptor,
            token,
            AccessMask::MAXIMUM_ALLOWED,
            &mapping,
            AccessCheckOptions::default(),
        )?
        .granted;
        let granted = (dacl | by_capability) - nobody;
        let missing = want - granted;
        let something = if max {
            !granted.is_empty()
        } else {
            !want.is_empty()
        };
        if !(missing.is_empty() && something) {
            return Ok(AccessCheck::denied(ErrorKind::AccessDenied, missing));
        }
        let mut allowed = AccessCheck::allowed(if max { granted } else { want });
        let rights = Rights::of(self.directory);
        for (p, by) in [
            (Privilege::Backup, rights.read | rights.execute),
            (Privilege::Restore, write_rights(&mapping)),
        ] {
            if token.is_privilege_enabled(p)
                && (by & (allowed.granted - dacl)).intersects(by_capability)
            {
                allowed.privileges_used.insert(p);
            }
        }
        Ok(allowed)
    }

    /// The rights no one has on this file, privileges included.
    fn forbidden_to_all(&self) -> AccessMask {
        // Every right that changes the file, as no-write-up counts them.
        let mut nobody = AccessMask::empty();
        if self.flags.read_only_mount || self.flags.immutable {
            nobody |= write_rights(&GenericMapping::FILE);
        }
        if self.flags.noexec_mount && !self.directory {
            nobody |= Rights::of(false).execute;
        }
        nobody
    }

    /// The rights an enabled SeBackupPrivilege (`CAP_DAC_READ_SEARCH`) and
    /// SeRestorePrivilege (`CAP_DAC_OVERRIDE`, for writing only) grant on this
    /// file, by the kernel's `generic_permission` and guise's backup-intent
    /// rule (SeRestorePrivilege never reads).
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
            granted |= rights.write;
            if self.directory {
                granted |= AccessMask::FILE_DELETE_CHILD;
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

    /// Attack: an ACL the kernel would refuse (`EIO`) is no ACL guise reads
    /// leniently (a missing `other::` must not fall back to the mode).
    #[test]
    fn attack_an_acl_the_kernel_refuses_is_refused() {
        let e = |tag, perm| AclEntry { tag, perm };
        let base = [
            e(AclTag::UserObj, 7),
            e(AclTag::GroupObj, 5),
            e(AclTag::Other, 0),
        ];
        let raw = |entries: &[AclEntry]| {
            // Written as given, unsorted.
            let mut out = XATTR_VERSION.to_le_bytes().to_vec();
            for en in entries {
                let (tag, id) = en.tag.code();
                out.extend_from_slice(&tag.to_le_bytes());
                out.extend_from_slice(&u16::from(en.perm).to_le_bytes());
                out.extend_from_slice(&id.to_le_bytes());
            }
            out
        };
        assert!(PosixAcl::from_xattr(&raw(&base)).is_ok());
        for entries in [
            vec![e(AclTag::UserObj, 7), e(AclTag::GroupObj, 5)],
            vec![
                e(AclTag::Other, 0),
                e(AclTag::UserObj, 7),
                e(AclTag::GroupObj, 5),
            ],
            vec![
                e(AclTag::UserObj, 7),
                e(AclTag::User(5), 7),
                e(AclTag::GroupObj, 5),
                e(AclTag::Other, 0),
            ],
            vec![
                e(AclTag::UserObj, 7),
                e(AclTag::GroupObj, 5),
                e(AclTag::Mask, 7),
                e(AclTag::Mask, 7),
                e(AclTag::Other, 0),
            ],
            vec![
                e(AclTag::UserObj, 7),
                e(AclTag::User(5), 7),
                e(AclTag::User(5), 1),
                e(AclTag::GroupObj, 5),
                e(AclTag::Mask, 7),
                e(AclTag::Other, 0),
            ],
        ] {
            let err = PosixAcl::from_xattr(&raw(&entries)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidAcl, "{entries:?}");
        }
    }
}
