//! Encrypted data messages from the network: header parsing, control-message detection and
//! authenticated opening must never panic, and nothing unauthenticated may open.
#![no_main]

use epa_protocol::vau::channel::{Header, classify_response, open_message};
use epa_protocol::vau::keys::SymKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = classify_response(Some("application/cbor"), data);
    let _ = classify_response(None, data);
    if Header::decode(data).is_ok() {
        let key = SymKey::from_bytes([7; 32]);
        // Random bytes never authenticate under a fixed key.
        assert!(open_message(&key, data, "fuzz").is_err());
    }
});
