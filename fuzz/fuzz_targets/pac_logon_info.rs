//! A Kerberos ticket's PAC logon information (`guise::kerberos::pac`), as a
//! domain controller, or someone who forged the ticket, writes it: decoding never
//! panics nor allocates past what the bytes hold; what decodes names a user and
//! groups in the user's domain. The AD-IF-RELEVANT walker never panics either.
#![no_main]

use guise::kerberos::pac;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = pac::parse_logon_info(data) {
        let user = info.user.sub_authorities();
        let primary = info.primary_group.sub_authorities();
        // The user and its primary group are RIDs of the same domain.
        assert_eq!(user.len(), primary.len());
        assert_eq!(user[..user.len() - 1], primary[..primary.len() - 1]);
        assert!(info.groups.len() <= 3 * 65_536);
    }
    let _ = pac::if_relevant_holds_pac(data);
});
