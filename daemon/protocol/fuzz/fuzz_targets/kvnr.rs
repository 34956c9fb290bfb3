//! `Kvnr::parse` must never panic; accepted values are normalised, match the OpenAPI pattern
//! `^[A-Z]{1}\d{9}$`, and parse again to the same value.
#![no_main]

use epa_protocol::kvnr::{Kvnr, with_check_digit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    if let Ok(kvnr) = Kvnr::parse(&input) {
        let s = kvnr.as_str().as_bytes();
        assert_eq!(s.len(), 10);
        assert!(s[0].is_ascii_uppercase());
        assert!(s[1..].iter().all(u8::is_ascii_digit));
        assert_eq!(Kvnr::parse(kvnr.as_str()).as_ref(), Ok(&kvnr));
        let mut digits = [0u8; 8];
        for (d, c) in digits.iter_mut().zip(&s[1..9]) {
            *d = c - b'0';
        }
        assert_eq!(
            with_check_digit(char::from(s[0]), &digits).as_ref(),
            Some(&kvnr)
        );
    }
});
