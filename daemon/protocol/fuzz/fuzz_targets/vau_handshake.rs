//! Every handshake decoder (M1–M4, the signed keys, control messages) must reject or accept
//! arbitrary bytes without panicking; an accepted message re-encodes to something it decodes
//! again.
#![no_main]

use epa_protocol::vau::messages::{
    M1, M2, M3, M3Inner, M4, SignedPublicKeys, VauPublicKeys, decode_control,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = M1::decode(data) {
        assert!(M1::decode(&m.encode()).is_ok());
    }
    if let Ok(m) = M2::decode(data) {
        assert!(M2::decode(&m.encode()).is_ok());
    }
    if let Ok(m) = M3::decode(data) {
        assert!(M3::decode(&m.encode()).is_ok());
    }
    let _ = M3Inner::decode(data);
    if let Ok(m) = M4::decode(data) {
        assert!(M4::decode(&m.encode()).is_ok());
    }
    if let Ok(s) = SignedPublicKeys::decode(data) {
        assert_eq!(SignedPublicKeys::decode(&s.encode()).ok(), Some(s));
    }
    let _ = VauPublicKeys::decode(data);
    let _ = decode_control(data);
});
