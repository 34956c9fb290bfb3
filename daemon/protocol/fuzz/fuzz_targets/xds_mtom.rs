//! `xds::mtom::parse` splits multipart/related bodies from the network. The input's first line
//! is the Content-Type (parsed with `parse_content_type`), the rest the body; the body is also
//! tried under a fixed, valid MTOM Content-Type so the part splitter is reached often. Must
//! never panic; what it accepts has unique Content-IDs and an `application/xop+xml` root, and
//! rebuilt with `mtom::build` it parses again to the same parts.
#![no_main]

use epa_protocol::xds::mtom::{ContentType, Package, build, parse, parse_content_type};
use libfuzzer_sys::fuzz_target;

const FIXED: &str = "multipart/related; type=\"application/xop+xml\"; boundary=\"MIMEBoundary\"";

fn check(ct: &ContentType, body: &[u8]) {
    let Ok(p) = parse(ct, body) else {
        return;
    };
    let root_ct = parse_content_type(&p.root.content_type);
    assert!(
        root_ct.is_ok_and(|c| c.mime == "application/xop+xml"),
        "{:?}",
        p.root.content_type
    );
    let ids: Vec<&str> = std::iter::once(p.root.content_id.as_str())
        .chain(p.attachments.iter().map(|a| a.content_id.as_str()))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        assert!(!ids[..i].contains(id), "Content-ID {id:?} twice");
    }
    round_trip(ct, &p);
}

/// `build` quotes the root id and takes the envelope as text: only such packages are rebuilt.
fn round_trip(ct: &ContentType, p: &Package) {
    let (Some(boundary), Ok(envelope)) = (ct.param("boundary"), std::str::from_utf8(&p.root.body))
    else {
        return;
    };
    let root_id = &p.root.content_id;
    if root_id
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return;
    }
    let (content_type, body) = build("urn:fuzz", envelope, &p.attachments, boundary, root_id);
    let ct2 = parse_content_type(&content_type).expect("built Content-Type parses");
    let again = parse(&ct2, &body).expect("rebuilt package parses");
    assert_eq!(again.root.content_id, p.root.content_id);
    assert_eq!(again.root.body, p.root.body);
    assert_eq!(again.attachments, p.attachments);
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(head) = std::str::from_utf8(head)
        && let Ok(ct) = parse_content_type(head)
    {
        check(&ct, body);
    }
    if let Ok(ct) = parse_content_type(FIXED) {
        check(&ct, data);
    }
});
