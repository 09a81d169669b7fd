//! The only module with `unsafe` code: what rustix does not wrap. Each block says
//! why it is sound.
//!
//! - [`spawn`]: the steps a child makes between `fork` and `exec` to take on a
//!   token's identity (installed with `CommandExt::pre_exec`).
//! - [`activation`]: taking over the descriptors systemd passed.
//! - [`fork`]: `fork` of a process of one thread.
//! - [`pam`]: a small binding to the system's libpam, in the style of sudo-rs.
//! - [`remote`]: SetThreadToken on another thread, through a real-time signal
//!   whose handler makes only the raw credential system calls.
//! - [`uring`]: opens through io_uring with a registered personality.
//! - [`gss`]: GSSAPI on MIT krb5, bound by hand (`kerberos` feature).
//! - [`wbclient`]: Samba's winbind client library, loaded at run time where it
//!   is installed (domain SIDs and groups of directory accounts).
//! - [`sss`]: SSSD's SID lookups (`libsss_nss_idmap`), loaded at run time where
//!   it is installed.
//! - [`setters`]: the macro that defines the libc credential setters in a binary as
//!   functions that abort.
#![allow(unsafe_code)]

#[cfg(feature = "systemd")]
pub(crate) mod activation;
pub(crate) mod creds;
pub(crate) mod fork;
#[cfg(feature = "kerberos")]
pub(crate) mod gss;
pub(crate) mod pam;
pub(crate) mod remote;
pub(crate) mod setters;
pub(crate) mod socket;
pub(crate) mod spawn;
pub(crate) mod sss;
#[cfg(feature = "uring")]
pub(crate) mod uring;
pub(crate) mod wbclient;
