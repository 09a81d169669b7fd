//! A safety net for binaries: the libc credential setters, defined to abort.

/// Defines, in the calling binary, the libc credential setters (`setuid`, `setgid`,
/// `seteuid`, `setegid`, `setreuid`, `setregid`, `setresuid`, `setresgid`,
/// `setgroups`, `initgroups`) as functions that report the call and abort.
///
/// glibc applies these to every thread of the process, silently undoing every
/// thread's impersonation. Code in the binary that links them (for example the
/// spawning code of `std::process::Command`, for its `uid`/`gid`/`groups` options)
/// then links these instead: the binary imports none of libc's, which
/// `nm -D --undefined-only` can check, and a call fails closed. Shared libraries
/// the process loads keep libc's own.
///
/// Use it once, at the top level of a binary crate:
///
/// ```ignore
/// guise::forbid_libc_credential_setters!();
/// ```
#[macro_export]
macro_rules! forbid_libc_credential_setters {
    () => {
        const _: () = {
            // SAFETY: these definitions take the place of libc's for the code of this
            // binary; they touch no memory and never return.
            #[unsafe(no_mangle)]
            extern "C" fn setuid(_: u32) -> i32 {
                $crate::sys_setter_called("setuid")
            }
            #[unsafe(no_mangle)]
            extern "C" fn setgid(_: u32) -> i32 {
                $crate::sys_setter_called("setgid")
            }
            #[unsafe(no_mangle)]
            extern "C" fn seteuid(_: u32) -> i32 {
                $crate::sys_setter_called("seteuid")
            }
            #[unsafe(no_mangle)]
            extern "C" fn setegid(_: u32) -> i32 {
                $crate::sys_setter_called("setegid")
            }
            #[unsafe(no_mangle)]
            extern "C" fn setreuid(_: u32, _: u32) -> i32 {
                $crate::sys_setter_called("setreuid")
            }
            #[unsafe(no_mangle)]
            extern "C" fn setregid(_: u32, _: u32) -> i32 {
                $crate::sys_setter_called("setregid")
            }
            #[unsafe(no_mangle)]
            extern "C" fn setresuid(_: u32, _: u32, _: u32) -> i32 {
                $crate::sys_setter_called("setresuid")
            }
            #[unsafe(no_mangle)]
            extern "C" fn setresgid(_: u32, _: u32, _: u32) -> i32 {
                $crate::sys_setter_called("setresgid")
            }
            #[unsafe(no_mangle)]
            extern "C" fn setgroups(_: usize, _: *const u32) -> i32 {
                $crate::sys_setter_called("setgroups")
            }
            #[unsafe(no_mangle)]
            extern "C" fn initgroups(_: *const u8, _: u32) -> i32 {
                $crate::sys_setter_called("initgroups")
            }
        };
    };
}

/// Called by the setters [`forbid_libc_credential_setters!`] defines: reports and
/// aborts.
#[doc(hidden)]
pub fn sys_setter_called(name: &str) -> ! {
    eprintln!(
        "guise: the libc credential setter {name}() was called; it would change every thread's credentials; aborting"
    );
    std::process::abort()
}
