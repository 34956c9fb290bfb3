//! `parse_response` must never panic, and whatever it accepts must survive a
//! serialise → parse round trip unchanged.
#![no_main]

use epa_protocol::http::{Limits, parse_response};
use libfuzzer_sys::fuzz_target;

/// Re-parsing uses no limits: normalisation (`Name:v` → `Name: v`, an added Content-Length)
/// may legitimately grow a message that was just under a limit.
const UNLIMITED: Limits = Limits {
    max_header_bytes: usize::MAX,
    max_headers: usize::MAX,
    max_body_bytes: usize::MAX,
};

fuzz_target!(|data: &[u8]| {
    // Small limits reach the limit checks; default limits reach deep bodies.
    let tight = Limits {
        max_header_bytes: 256,
        max_headers: 8,
        max_body_bytes: 4096,
    };
    for limits in [Limits::default(), tight] {
        let Ok(response) = parse_response(data, &limits) else {
            continue;
        };
        if let Ok(bytes) = response.try_to_bytes() {
            let again = parse_response(&bytes, &UNLIMITED);
            assert!(
                again.is_ok(),
                "re-serialised response does not parse: {again:?}"
            );
            if let Ok(again) = again {
                assert_eq!(again.status, response.status);
                assert_eq!(again.body, response.body);
            }
        }
        // The lenient serialisation must always produce a parseable message.
        assert!(parse_response(&response.to_bytes(), &UNLIMITED).is_ok());
    }
});
