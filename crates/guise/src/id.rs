//! Typed user and group ids: a [`Uid`] cannot be passed where a [`Gid`] is meant.
//! Both convert from and to the raw `u32` the kernel uses.
//!
//! # Example
//! ```
//! use guise::{Gid, Uid};
//!
//! let uid = Uid::from(1000);
//! assert_eq!(uid.as_raw(), 1000);
//! assert!(!uid.is_root() && Uid::ROOT.is_root());
//! assert_eq!(u32::from(Gid::from_raw(100)), 100);
//! ```

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u32);

        impl $name {
            #[doc = concat!("The ", $what, " of root (0).")]
            pub const ROOT: $name = $name(0);

            #[doc = concat!("The ", $what, " with this number.")]
            pub const fn from_raw(raw: u32) -> $name {
                $name(raw)
            }

            /// The number, as the kernel takes it.
            pub const fn as_raw(self) -> u32 {
                self.0
            }

            #[doc = concat!("Whether this is root's ", $what, " (0).")]
            pub const fn is_root(self) -> bool {
                self.0 == 0
            }
        }

        impl From<u32> for $name {
            fn from(raw: u32) -> $name {
                $name(raw)
            }
        }

        impl From<$name> for u32 {
            fn from(id: $name) -> u32 {
                id.0
            }
        }

        impl PartialEq<u32> for $name {
            fn eq(&self, other: &u32) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for u32 {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user id (`uid_t`).
    Uid,
    "uid"
);
id_type!(
    /// A group id (`gid_t`).
    Gid,
    "gid"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_convert_compare_and_print_as_their_numbers() {
        let uid = Uid::from(61001);
        assert_eq!(uid, 61001);
        assert_eq!(61001, uid);
        assert_eq!(u32::from(uid), 61001);
        assert_eq!(uid.to_string(), "61001");
        assert!(Gid::ROOT.is_root() && !Gid::from_raw(5).is_root());
        assert!(Uid::from_raw(1) < Uid::from_raw(2));
    }
}
