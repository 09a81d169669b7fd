//! Access control for a server's own objects: security descriptors, SDDL and
//! AccessCheck.
//!
//! A server that exports objects of its own (records, views, files it manages)
//! decides access itself with the client's token, even at Identification level,
//! exactly as Windows' `AccessCheck` does:
//!
//! ```
//! use guise::security::{access_check, sddl, AccessMask, GenericMapping};
//! use guise::{ImpersonationLevel, Token, TokenType};
//!
//! # fn main() -> guise::Result<()> {
//! let sd = sddl::parse("O:BAG:BAD:(A;;FR;;;WD)(A;;FA;;;S-1-22-1-1000)", None)?;
//! let alice = Token::from_ids(1000, 1000, &[1000])?
//!     .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)?;
//! let bob = Token::from_ids(1001, 1001, &[1001])?
//!     .duplicate(ImpersonationLevel::Identification, TokenType::Impersonation)?;
//! let write = GenericMapping::FILE.map(AccessMask::GENERIC_WRITE);
//! assert!(access_check(&sd, &alice, write, &GenericMapping::FILE)?.is_allowed());
//! assert!(!access_check(&sd, &bob, write, &GenericMapping::FILE)?.is_allowed());
//! # Ok(())
//! # }
//! ```

pub mod access;
mod alias;
pub mod conditional;
pub mod descriptor;
pub mod file;
pub mod mask;
pub mod membership;
pub mod sddl;

pub use access::{
    AccessCheck, AccessCheckOptions, Denial, ObjectType, access_check, access_check_by_type,
    access_check_by_type_result_list, access_check_thread, access_check_with,
    reference_access_check,
};
pub use descriptor::{Ace, AceFlags, AceType, Acl, Control, Guid, SecurityDescriptor};
pub use file::{
    FileSecurity, file_access_check, file_security, file_security_fd, file_security_for,
};
pub use mask::{AccessMask, GenericMapping};
pub use membership::{check_token_membership, is_user_an_admin};
