//! # guise — the Windows impersonation model for Linux services
//!
//! A server thread acts in the security context of its client, the kernel enforces
//! every access that thread makes, and then the thread reverts to the server's own
//! identity. Tokens, impersonation levels, `DuplicateTokenEx`, `SetThreadToken`,
//! `RevertToSelf` and their rules behave the way a Win32 programmer expects; the
//! effect is real: while a thread impersonates, its kernel credentials (effective
//! uid and gid, supplementary groups, effective capabilities) are the client's.
//!
//! ```no_run
//! use guise::{Token, ImpersonationLevel, TokenType};
//!
//! # fn main() -> guise::Result<()> {
//! // A token for the client (here from the ids the kernel reported for a peer).
//! let client = Token::from_ids(1000, 1000, &[1000, 100])?;
//! let contents = client.run_as(|| std::fs::read("/home/alice/notes.txt"))?;
//! // Here the thread is the server again, whether the closure returned or panicked.
//!
//! // Identification level: the server may inspect the token but not act as it.
//! let id_only = client.duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)?;
//! let guard = id_only.impersonate()?;
//! assert_eq!(guard.level(), ImpersonationLevel::Identification);
//! drop(guard);
//! # let _ = contents;
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//!
//! | feature | default | enables | needs to build (Debian 12) |
//! |---|---|---|---|
//! | — | always | tokens, impersonation, processes, LogonUser ([`logon`], PAM), security descriptors, the blocking named pipe ([`pipe`]), the worker [`pool`] | `build-essential`, `pkg-config`, `libpam0g-dev` |
//! | `tokio` | yes | the async pipe server (`pipe::tokio`), [`CommandExt`] for `tokio::process::Command` | — |
//! | `rpc` | yes | gRPC with tonic on Unix sockets (`rpc`); implies `tokio` | — |
//! | `dbus` | yes | D-Bus with zbus (`dbus`); implies `tokio` | — |
//! | `uring` | yes | opening files as a client through io_uring personalities (`uring`) | — |
//! | `systemd` | yes | socket activation and service notifications (`systemd`) | — |
//! | `kerberos` | no | remote gRPC clients authenticated with Kerberos (`kerberos`, `rpc::KerberosIncoming`, `rpc::connect_kerberos`), delegation, the network credentials of tokens; implies `rpc` | `libkrb5-dev` (MIT krb5's GSSAPI; no libclang) |
//!
//! Items that need a feature say so in these docs. Each transport has a runnable
//! example in the repository's `crates/guise/examples/` (`named_pipe_server`,
//! `tokio_pipe_server`, `rpc_server`, `dbus_service`, `systemd_activation`,
//! `kerberos_server`).
//!
//! A missing system library stops the build with the package to install and,
//! for Kerberos, the feature to turn off.
//!
//! ## What guise does not protect against
//! - Code in the same process that calls the libc credential setters (`setuid`,
//!   `seteuid`, `setgroups`, `initgroups`, ...): glibc applies them to every thread,
//!   undoing impersonation. guise's own binaries are checked to import none of them.
//! - Code that `fork`s from an impersonating thread without guise: the child copies
//!   the thread's mixed credentials (real uid the server's, effective the client's).
//! - Memory the client's identity should not see: impersonation decides what the
//!   *kernel* lets the thread do; the server's own memory is the server's business.
//! - A server without `CAP_SETUID`/`CAP_SETGID` cannot put a thread on the
//!   unprivileged sentinel identity; at Identification level its threads keep the
//!   server's ids with no capabilities and umask 0777 (see [`thread`]). Code that
//!   opens files for a client must call [`thread::check_open_as_client`] first;
//!   [`pool::ImpersonationPool`] runs such work on workers the kernel lets
//!   open no file (Landlock).
//! - Threads made by `std::thread::spawn` (or a thread pool) from an impersonating
//!   thread start with the client's credentials; guise refuses them
//!   ([`thread::spawn`] and [`thread::on_thread_start`] start threads right).
//!
//! See `docs/threat-model.md` in the repository for the full model.

#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod admission;
pub mod audit;
pub mod client;
#[cfg(feature = "dbus")]
#[cfg_attr(docsrs, doc(cfg(feature = "dbus")))]
pub mod dbus;
pub mod directory;
pub mod error;
pub mod fs;
pub mod id;
#[cfg(feature = "kerberos")]
#[cfg_attr(docsrs, doc(cfg(feature = "kerberos")))]
pub mod kerberos;
pub mod logon;
pub mod pipe;
pub mod pool;
pub mod privilege;
pub mod process;
#[cfg(feature = "rpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "rpc")))]
pub mod rpc;
pub mod security;
pub mod sid;
#[cfg(feature = "systemd")]
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
pub mod systemd;
pub mod thread;
pub mod token;
#[cfg(feature = "uring")]
#[cfg_attr(docsrs, doc(cfg(feature = "uring")))]
pub mod uring;

mod cred;
mod listener;
mod sys;

#[doc(hidden)]
pub use sys::setters::sys_setter_called;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;

pub use error::{Error, ErrorKind, Result};
pub use id::{Gid, Uid};
pub use logon::{Password, logon_user};
pub use privilege::Privilege;
pub use process::CommandExt;
pub use sid::Sid;
pub use thread::{
    Impersonation, ThreadCredentials, impersonate_self, open_thread_token, revert_to_self,
    set_thread_token,
};
pub use token::{ImpersonationLevel, LogonType, Token, TokenType};
