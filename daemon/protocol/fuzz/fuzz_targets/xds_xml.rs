//! `xds::xml::parse` reads every SOAP envelope from the network: it must never panic, and what
//! it accepts must serialise back (`Element::to_xml`) to a document that parses to the same
//! tree. What the parser lets through without checking need not come back: characters XML 1.0
//! cannot carry (the writer replaces them by U+FFFD), names that are no XML names (names are
//! written as they are), elements in the `xmlns` namespace, and namespace names with characters
//! the writer escapes (quick-xml resolves a namespace to the raw, unescaped attribute value).
#![no_main]

use epa_protocol::xds::xml::{Element, parse};
use libfuzzer_sys::fuzz_target;

/// Whether the writer keeps a string as it is (see `xml::escape`).
fn writable(s: &str) -> bool {
    !s.chars().any(|c| {
        !matches!(c, '\t' | '\n' | '\r')
            && ((c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}')
    })
}

/// A namespace name the writer writes as it is (no character references) and may bind to a
/// prefix (not the `xmlns` namespace, which quick-xml resolves for `<xmlns:a>`).
fn plain_ns(s: &str) -> bool {
    !s.contains(['&', '<', '>', '"', '\'', '\t', '\n', '\r'])
        && s != "http://www.w3.org/2000/xmlns/"
        && writable(s)
}

/// An XML name as far as the syntax around it matters (ASCII name characters; any non-ASCII).
fn name_ok(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii())
        && chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c) || !c.is_ascii())
}

fn comes_back(el: &Element) -> bool {
    name_ok(&el.name)
        && plain_ns(&el.ns)
        && writable(&el.text)
        && el
            .attrs
            .iter()
            .all(|a| name_ok(&a.name) && plain_ns(&a.ns) && writable(&a.value))
        && el.children.iter().all(comes_back)
}

fuzz_target!(|data: &[u8]| {
    let Ok(el) = parse(data) else {
        return;
    };
    let xml = el.to_xml();
    let again = parse(xml.as_bytes());
    if comes_back(&el) {
        match again {
            Ok(again) => assert_eq!(again, el, "{xml}"),
            Err(e) => panic!("re-serialised element does not parse ({e}): {xml}"),
        }
    }
});
