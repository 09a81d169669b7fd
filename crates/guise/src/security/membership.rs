//! Who the caller is, the Win32 way: [`check_token_membership`] with the
//! thread's or the process's token, [`is_user_an_admin`], and a token's default
//! DACL (`TokenDefaultDacl`).

use super::descriptor::{Ace, Acl, SecurityDescriptor};
use super::mask::AccessMask;
use super::sddl;
use crate::error::{Error, ErrorKind, Result};
use crate::sid::Sid;
use crate::token::{ImpersonationLevel, Token, TokenType};

/// Whether `sid` is the user or an enabled group of `token`
/// ([`CheckTokenMembership`]); with `None`, of the calling thread's
/// impersonation token, else of the process token (duplicated to an
/// Identification-level impersonation token, as Windows does). Deny-only groups
/// do not count.
///
/// # Errors
/// For a given token, as [`Token::check_membership`]; an impersonation below
/// Identification level.
///
/// [`CheckTokenMembership`]: https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-checktokenmembership
#[doc(alias = "CheckTokenMembership")]
pub fn check_token_membership(token: Option<&Token>, sid: &Sid) -> Result<bool> {
    match token {
        Some(t) => t.check_membership(sid),
        None => effective_token()?.check_membership(sid),
    }
}

/// Whether the caller is an administrator ([`IsUserAnAdmin`]): whether the
/// thread's token, else the process's, has Builtin Administrators enabled. uid 0
/// is a member; a directory account is when its domain groups map to it.
///
/// # Errors
/// As [`check_token_membership`].
///
/// [`IsUserAnAdmin`]: https://learn.microsoft.com/en-us/windows/win32/api/shlobj_core/nf-shlobj_core-isuseranadmin
#[doc(alias = "IsUserAnAdmin")]
pub fn is_user_an_admin() -> Result<bool> {
    check_token_membership(None, &Sid::ADMINISTRATORS)
}

/// The calling thread's impersonation token, else the process token, as an
/// impersonation token for checks.
fn effective_token() -> Result<Token> {
    match crate::thread::open_thread_token(true) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == ErrorKind::NoToken => Token::open_process()?
            .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation),
        Err(e) => Err(e),
    }
}

impl Token {
    /// The DACL that objects this token creates get when nothing else gives
    /// them one (`TokenDefaultDacl`): as on Windows, `GENERIC_ALL` for the
    /// token's owner and for Local System, unless set with
    /// [`Token::set_default_dacl`].
    #[doc(alias = "GetTokenInformation")]
    #[doc(alias = "TokenDefaultDacl")]
    pub fn default_dacl(&self) -> Acl {
        if let Some(text) = self.default_dacl_text()
            && let Ok(sd) = sddl::parse(text, None)
            && let Some(dacl) = sd.dacl
        {
            return dacl;
        }
        let mut aces = vec![Ace::allow(self.owner(), AccessMask::GENERIC_ALL)];
        if self.owner() != Sid::LOCAL_SYSTEM {
            aces.push(Ace::allow(Sid::LOCAL_SYSTEM, AccessMask::GENERIC_ALL));
        }
        Acl::new(aces)
    }

    /// Sets the default DACL (`SetTokenInformation` with `TokenDefaultDacl`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidAcl`] for an ACL that SDDL cannot hold.
    #[doc(alias = "SetTokenInformation")]
    #[doc(alias = "TokenDefaultDacl")]
    pub fn set_default_dacl(&mut self, dacl: &Acl) -> Result<()> {
        let sd = SecurityDescriptor {
            dacl: Some(dacl.clone()),
            ..SecurityDescriptor::default()
        }
        .normalized();
        let text = sddl::to_string(&sd, None)
            .map_err(|e| Error::new(ErrorKind::InvalidAcl, e.message().to_owned()))?;
        self.set_default_dacl_text(text);
        Ok(())
    }
}
