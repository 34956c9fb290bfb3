//! MTOM/XOP packaging (SOAP 1.2 MTOM, XOP, RFC 2387 multipart/related, §5.2): the SOAP
//! envelope travels in a root part of type `application/xop+xml`, each binary document in its
//! own part, referenced from the envelope by `<xop:Include href="cid:…"/>`.

use bytes::Bytes;

use super::XdsError;

/// At most this many parts per message (the root plus documents).
pub const MAX_PARTS: usize = 10_000;

/// One MIME part.
#[derive(Clone, PartialEq, Eq)]
pub struct Part {
    /// Without the angle brackets.
    pub content_id: String,
    pub content_type: String,
    /// Shares the message's buffer: parsing a 25 MB document copies nothing.
    pub body: Bytes,
}

impl std::fmt::Debug for Part {
    // Bodies are health data: show sizes only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("content_id", &self.content_id)
            .field("content_type", &self.content_type)
            .field("len", &self.body.len())
            .finish()
    }
}

/// A parsed `Content-Type` value: lower-case media type and its parameters (names lower case,
/// values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    pub mime: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parses `type/subtype *( ";" name=value )` (RFC 9110 §8.3), values as tokens or quoted strings.
pub fn parse_content_type(s: &str) -> Result<ContentType, XdsError> {
    let bad = |m: &str| Err(XdsError::Mtom(format!("Content-Type: {m}")));
    let (mime, mut rest) = match s.find(';') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let mime = mime.trim();
    let Some((t, st)) = mime.split_once('/') else {
        return bad("no media type");
    };
    if t.is_empty() || st.is_empty() || !t.chars().all(is_tchar) || !st.chars().all(is_tchar) {
        return bad("bad media type");
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            break;
        }
        let Some(r) = rest.strip_prefix(';') else {
            return bad("expected ';'");
        };
        rest = r.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else {
            return bad("parameter without '='");
        };
        let name = &rest[..eq];
        if name.is_empty() || !name.chars().all(is_tchar) {
            return bad("bad parameter name");
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = r.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, c)) => v.push(c),
                        None => return bad("unterminated quoted string"),
                    },
                    c if c.is_control() && c != '\t' => return bad("control character"),
                    c => v.push(c),
                }
            }
            let Some(end) = end else {
                return bad("unterminated quoted string");
            };
            value = v;
            rest = &r[end..];
        } else {
            let end = rest.find([';', ' ', '\t']).unwrap_or(rest.len());
            let v = &rest[..end];
            if v.is_empty() || !v.chars().all(is_tchar) {
                return bad("bad parameter value");
            }
            value = v.to_owned();
            rest = &rest[end..];
        }
        params.push((name.to_ascii_lowercase(), value));
    }
    Ok(ContentType {
        mime: mime.to_ascii_lowercase(),
        params,
    })
}

/// Boundary search over whole documents (25 MB and more): memmem, not a byte-by-byte compare.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    memchr::memmem::find(&hay[from..], needle).map(|p| p + from)
}

/// The boundary rules of RFC 2046 §5.1.1: 1..70 characters of a restricted set.
fn boundary_ok(b: &str) -> bool {
    (1..=70).contains(&b.len())
        && !b.ends_with(' ')
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c))
}

/// Splits a multipart body into parts (headers parsed, bodies raw).
fn split(boundary: &str, whole: &Bytes) -> Result<Vec<Part>, XdsError> {
    let body: &[u8] = whole;
    let bad = |m: &str| Err(XdsError::Mtom(m.to_owned()));
    let dash = format!("--{boundary}");
    let delim = format!("\r\n--{boundary}");
    // The first delimiter may start the body (no preamble) or follow a preamble line.
    let mut pos = if body.starts_with(dash.as_bytes()) {
        dash.len()
    } else {
        match find(body, delim.as_bytes(), 0) {
            Some(p) => p + delim.len(),
            None => return bad("no opening boundary"),
        }
    };
    let mut parts = Vec::new();
    loop {
        // After a delimiter: "--" closes; otherwise transport padding and CRLF.
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        while matches!(body.get(pos), Some(b' ' | b'\t')) {
            pos += 1;
        }
        if !body[pos..].starts_with(b"\r\n") {
            return bad("boundary line not terminated by CRLF");
        }
        pos += 2;
        let Some(end) = find(body, delim.as_bytes(), pos) else {
            return bad("part not closed by a boundary");
        };
        if parts.len() >= MAX_PARTS {
            return bad("too many parts");
        }
        parts.push(parse_part(whole, pos..end)?);
        pos = end + delim.len();
    }
}

fn parse_part(whole: &Bytes, range: std::ops::Range<usize>) -> Result<Part, XdsError> {
    let bad = |m: String| Err(XdsError::Mtom(m));
    let raw = &whole[range.clone()];
    let (head, body_start) = if raw.starts_with(b"\r\n") {
        (&raw[..0], 2)
    } else {
        match find(raw, b"\r\n\r\n", 0) {
            Some(p) => (&raw[..p], p + 4),
            None => return bad("part without a header/body separator".into()),
        }
    };
    let head =
        std::str::from_utf8(head).map_err(|_| XdsError::Mtom("part header not UTF-8".into()))?;
    let mut content_id = None;
    let mut content_type = None;
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return bad(format!("bad part header line {line:?}"));
        };
        if name.is_empty() || !name.chars().all(is_tchar) {
            return bad(format!("bad part header name {name:?}"));
        }
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-id" => {
                let Some(id) = value.strip_prefix('<').and_then(|v| v.strip_suffix('>')) else {
                    return bad(format!("Content-ID must be <…>: {value:?}"));
                };
                if content_id.replace(id.to_owned()).is_some() {
                    return bad("Content-ID twice".into());
                }
            }
            "content-type" if content_type.replace(value.to_owned()).is_some() => {
                return bad("Content-Type twice".into());
            }
            // MTOM parts are binary; 7bit/8bit are its subsets. Others would need decoding.
            "content-transfer-encoding"
                if !matches!(
                    value.to_ascii_lowercase().as_str(),
                    "binary" | "8bit" | "7bit"
                ) =>
            {
                return bad(format!("Content-Transfer-Encoding {value:?} not supported"));
            }
            _ => {}
        }
    }
    Ok(Part {
        content_id: content_id.unwrap_or_default(),
        content_type: content_type.unwrap_or_else(|| "text/plain".into()),
        body: whole.slice(range.start + body_start..range.end),
    })
}

/// A parsed MTOM message: the root part (the SOAP envelope) and the attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub root: Part,
    pub attachments: Vec<Part>,
}

impl Package {
    /// The attachment an `xop:Include/@href` (`cid:…`, RFC 2392, percent-encoded) points to.
    pub fn resolve(&self, href: &str) -> Option<&Part> {
        let id = percent_decode(href.strip_prefix("cid:")?)?;
        self.attachments.iter().find(|p| p.content_id == id)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode_cid(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses a `multipart/related; type="application/xop+xml"` body. The root part is the one
/// named by `start` (else the first); it must be `application/xop+xml` with
/// `type="application/soap+xml"`. Content-IDs must be unique.
pub fn parse(content_type: &ContentType, body: &[u8]) -> Result<Package, XdsError> {
    parse_shared(content_type, &Bytes::copy_from_slice(body))
}

/// [`parse`] of a body the parts then share (no copy of the documents).
pub fn parse_shared(content_type: &ContentType, body: &Bytes) -> Result<Package, XdsError> {
    let bad = |m: String| Err(XdsError::Mtom(m));
    if content_type.mime != "multipart/related" {
        return bad(format!("{} is not multipart/related", content_type.mime));
    }
    if !content_type
        .param("type")
        .is_some_and(|t| t.eq_ignore_ascii_case("application/xop+xml"))
    {
        return bad("multipart/related without type=\"application/xop+xml\"".into());
    }
    let Some(boundary) = content_type.param("boundary").filter(|b| boundary_ok(b)) else {
        return bad("missing or invalid boundary".into());
    };
    let mut parts = split(boundary, body)?;
    if parts.is_empty() {
        return bad("no parts".into());
    }
    for (i, p) in parts.iter().enumerate() {
        if parts[..i].iter().any(|q| q.content_id == p.content_id) {
            return bad(format!("Content-ID <{}> twice", p.content_id));
        }
    }
    let root_index = match content_type.param("start") {
        Some(start) => {
            let id = start
                .strip_prefix('<')
                .and_then(|s| s.strip_suffix('>'))
                .unwrap_or(start);
            match parts.iter().position(|p| p.content_id == id) {
                Some(i) => i,
                None => return bad(format!("start part <{id}> not found")),
            }
        }
        None => 0,
    };
    let root = parts.remove(root_index);
    let rt = parse_content_type(&root.content_type)?;
    if rt.mime != "application/xop+xml"
        || !rt
            .param("type")
            .is_some_and(|t| t.eq_ignore_ascii_case("application/soap+xml"))
    {
        return bad(format!(
            "root part must be application/xop+xml; type=\"application/soap+xml\", not {}",
            root.content_type
        ));
    }
    Ok(Package {
        root,
        attachments: parts,
    })
}

/// Builds an MTOM message. Returns the `Content-Type` header value and the body.
/// `boundary` and `root_id` come from the caller (random, e.g. UUIDs).
pub fn build(
    action: &str,
    envelope: &str,
    attachments: &[Part],
    boundary: &str,
    root_id: &str,
) -> (String, Vec<u8>) {
    let (content_type, chunks) = build_chunks(action, envelope, attachments, boundary, root_id);
    (content_type, chunks.concat())
}

/// [`build`] as the pieces of the body in order: the framing and envelope in new buffers, each
/// attachment as the part it is (not copied), so a server can send a large document as is.
pub fn build_chunks(
    action: &str,
    envelope: &str,
    attachments: &[Part],
    boundary: &str,
    root_id: &str,
) -> (String, Vec<Bytes>) {
    let content_type = format!(
        "multipart/related; type=\"application/xop+xml\"; boundary=\"{boundary}\"; \
         start=\"<{root_id}>\"; start-info=\"application/soap+xml\"; action=\"{action}\""
    );
    let mut chunks = Vec::with_capacity(2 * attachments.len() + 1);
    let mut text = format!(
        "--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; \
         type=\"application/soap+xml\"; action=\"{action}\"\r\n\
         Content-Transfer-Encoding: binary\r\nContent-ID: <{root_id}>\r\n\r\n{envelope}\r\n"
    );
    for a in attachments {
        text.push_str(&format!(
            "--{boundary}\r\nContent-Type: {}\r\nContent-Transfer-Encoding: binary\r\n\
             Content-ID: <{}>\r\n\r\n",
            a.content_type, a.content_id
        ));
        chunks.push(Bytes::from(std::mem::take(&mut text)));
        chunks.push(a.body.clone());
        text.push_str("\r\n");
    }
    text.push_str(&format!("--{boundary}--\r\n"));
    chunks.push(Bytes::from(text));
    (content_type, chunks)
}

/// Collects the binary parts of a message while its envelope is written: either
/// `xop:Include` references (MTOM) or inline base64.
#[derive(Debug)]
pub struct Attachments {
    mtom: bool,
    prefix: String,
    parts: Vec<Part>,
}

impl Attachments {
    /// `id_suffix` makes Content-IDs unique per message (e.g. the message's UUID).
    pub fn new(mtom: bool, id_suffix: &str) -> Self {
        Self {
            mtom,
            prefix: id_suffix.to_owned(),
            parts: Vec::new(),
        }
    }

    pub fn mtom(&self) -> bool {
        self.mtom
    }

    /// Writes the content of an `xs:base64Binary` element.
    pub fn write(&mut self, w: &mut super::xml::Writer, bytes: &Bytes, mime: &str) {
        if self.mtom {
            let id = format!("{}.{}@epa-desktop", self.parts.len() + 1, self.prefix);
            w.empty(
                "xop:Include",
                &[
                    ("xmlns:xop", super::ns::XOP),
                    ("href", &format!("cid:{}", percent_encode_cid(&id))),
                ],
            );
            self.parts.push(Part {
                content_id: id,
                content_type: mime.to_owned(),
                body: bytes.clone(),
            });
        } else {
            w.raw(&super::base64::encode(bytes));
        }
    }

    pub fn into_parts(self) -> Vec<Part> {
        self.parts
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_types_parse_like_rfc9110() {
        let c = parse_content_type(
            "Multipart/Related; type=\"application/xop+xml\";start=\"<a@b>\" ; boundary=x-1",
        )
        .unwrap();
        assert_eq!(c.mime, "multipart/related");
        assert_eq!(c.param("start"), Some("<a@b>"));
        assert_eq!(c.param("boundary"), Some("x-1"));
        for bad in ["", "text", "a/b; c", "a/b; c=\"x", "a/b; =x", "a b/c"] {
            assert!(parse_content_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn build_and_parse_round_trip_with_binary_bodies() {
        let bin: Vec<u8> = (0..=255u8).chain(b"\r\n--b\r\n".iter().copied()).collect();
        let a = vec![Part {
            content_id: "1.x@epa-desktop".into(),
            content_type: "image/jpeg".into(),
            body: bin.clone().into(),
        }];
        let (ct, body) = build("urn:a", "<e/>", &a, "MIMEBoundary_abc", "root.message@x");
        let p = parse(&parse_content_type(&ct).unwrap(), &body).unwrap();
        assert_eq!(p.root.body, &b"<e/>"[..]);
        assert_eq!(p.attachments, a);
        assert_eq!(p.resolve("cid:1.x%40epa-desktop").unwrap().body, bin);
        assert!(p.resolve("cid:nope").is_none());
    }

    #[test]
    fn malformed_packages_are_refused() {
        let ct = parse_content_type(
            "multipart/related; type=\"application/xop+xml\"; boundary=b; start=\"<r>\"",
        )
        .unwrap();
        let root = "--b\r\nContent-Type: application/xop+xml; type=\"application/soap+xml\"\r\nContent-ID: <r>\r\n\r\n<e/>";
        assert!(parse(&ct, format!("{root}\r\n--b--").as_bytes()).is_ok());
        for bad in [
            root.to_string(),
            format!("{root}\r\n--b\r\nContent-ID: <r>\r\n\r\nx\r\n--b--"),
            "--b\r\nContent-Type: text/xml\r\nContent-ID: <r>\r\n\r\n<e/>\r\n--b--".into(),
            format!("{root}\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\neA==\r\n--b--"),
            "no boundary at all".into(),
        ] {
            assert!(parse(&ct, bad.as_bytes()).is_err(), "{bad}");
        }
        let no_type = parse_content_type("multipart/related; boundary=b").unwrap();
        assert!(parse(&no_type, format!("{root}\r\n--b--").as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400), ct in ".{0,80}") {
            if let Ok(c) = parse_content_type(&ct) {
                let _ = parse(&c, &body);
            }
            let c = parse_content_type("multipart/related; type=\"application/xop+xml\"; boundary=b").unwrap();
            let _ = parse(&c, &body);
            let mut framed = b"--b\r\n".to_vec();
            framed.extend_from_slice(&body);
            let _ = parse(&c, &framed);
        }
    }
}
