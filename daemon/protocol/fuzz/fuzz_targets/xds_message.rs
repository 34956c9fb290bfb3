//! A SOAP message from the network, through `xds::soap::decode` and every ITI request and
//! response parser (ITI-18, -43, -41, -62, -92 and the RegistryResponse). The input's first
//! line is the Content-Type, the rest the body; the whole input is also tried as a plain
//! `application/soap+xml` body. Nothing may panic.
#![no_main]

use epa_protocol::xds::soap::{self, Message};
use epa_protocol::xds::{query, retrieve, submit};
use libfuzzer_sys::fuzz_target;

fn run_parsers(m: &Message) {
    let _ = m.fault();
    let _ = m.payload_inline();
    let _ = soap::check_request_addressing(m);
    let _ = query::parse_request(m);
    let _ = query::parse_response(m);
    let _ = retrieve::parse_request(m);
    let _ = retrieve::parse_response(m);
    let _ = submit::parse_provide_and_register(m);
    let _ = submit::parse_remove_objects(m);
    let _ = submit::parse_submit_objects(m);
    let _ = submit::parse_registry_response(m);
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(content_type) = std::str::from_utf8(head)
        && let Ok(m) = soap::decode(content_type, body)
    {
        run_parsers(&m);
    }
    if let Ok(m) = soap::decode("application/soap+xml; charset=UTF-8", data) {
        run_parsers(&m);
    }
});
