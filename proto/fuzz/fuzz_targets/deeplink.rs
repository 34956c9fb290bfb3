//! The OS URL handler passes any string a web page can produce: the parser must never panic,
//! and whatever it accepts must be a callback of the allowed shape.
#![no_main]

use epa_ipc::deeplink::{AuthCallback, parse_auth_callback};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(AuthCallback::Code { code, state }) = parse_auth_callback(url) {
        assert!(!code.expose().is_empty() && !state.is_empty());
        assert!(url.to_ascii_lowercase().starts_with("epa-desktop://auth/callback?"));
    }
});
