//! `xds::xml::parse` reads every SOAP envelope from the network: it must never panic, and what
//! it accepts must serialise back (`Element::to_xml`) to a document that parses to the same
//! tree. The parser refuses what the writer could not write back (characters outside XML 1.0,
//! names that are no QNames, the reserved `xml`/`xmlns` prefixes and namespaces misused) and
//! resolves references in namespace names, so the round trip holds for every accepted input.
#![no_main]

use epa_protocol::xds::xml::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(el) = parse(data) else {
        return;
    };
    let xml = el.to_xml();
    match parse(xml.as_bytes()) {
        Ok(again) => assert_eq!(again, el, "{xml}"),
        Err(e) => panic!("re-serialised element does not parse ({e}): {xml}"),
    }
});
