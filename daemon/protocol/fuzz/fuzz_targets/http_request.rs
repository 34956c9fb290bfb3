//! `parse_request` must never panic, and whatever it accepts must survive a
//! serialise → parse round trip unchanged.
#![no_main]

use epa_protocol::http::{Limits, Request, parse_request};
use libfuzzer_sys::fuzz_target;

/// Re-parsing uses no limits: normalisation (`Name:v` → `Name: v`, an added Content-Length)
/// may legitimately grow a message that was just under a limit.
const UNLIMITED: Limits = Limits {
    max_header_bytes: usize::MAX,
    max_headers: usize::MAX,
    max_body_bytes: usize::MAX,
};

fuzz_target!(|data: &[u8]| {
    let tight = Limits {
        max_header_bytes: 256,
        max_headers: 8,
        max_body_bytes: 4096,
    };
    for limits in [Limits::default(), tight] {
        let Ok(parsed) = parse_request(data, &limits) else {
            continue;
        };
        // Rebuild it as a client would (framing headers are added by to_bytes).
        let host = parsed
            .header("host")
            .unwrap_or("sandbox.invalid")
            .to_owned();
        let mut request = Request::new(parsed.method, parsed.path.clone());
        request.body = parsed.body.clone();
        for (name, value) in &parsed.headers {
            let framing = ["host", "content-length", "transfer-encoding"]
                .iter()
                .any(|f| name.eq_ignore_ascii_case(f));
            if !framing {
                request = request.header(name.clone(), value.clone());
            }
        }
        // Upgrade-style headers are legal to receive but refused when sending.
        if let Ok(bytes) = request.to_bytes(&host) {
            let again = parse_request(&bytes, &UNLIMITED);
            assert!(again.is_ok(), "rebuilt request does not parse: {again:?}");
            if let Ok(again) = again {
                assert_eq!(again.method, parsed.method);
                assert_eq!(again.path, parsed.path);
                assert_eq!(again.body, parsed.body);
            }
        }
    }
});
