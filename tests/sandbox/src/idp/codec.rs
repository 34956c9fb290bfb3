//! The small encodings the IDP needs: percent-encoding (RFC 3986), `application/x-www-form-urlencoded`
//! (also used for query strings), base64url without padding (RFC 4648 §5), hex, and the PKCE S256
//! transformation (RFC 7636 §4.2).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// Percent-encodes everything except RFC 3986 "unreserved" characters (`A-Z a-z 0-9 - . _ ~`), so
/// the result is safe in any query parameter or path segment.
pub fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0xf));
        }
    }
    out
}

/// Why a form or query string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("bad percent escape in {0:?}")]
    BadEscape(String),
    #[error("parameter {0:?} is not UTF-8 after decoding")]
    NotUtf8(String),
    #[error("parameter {0:?} appears more than once")]
    Duplicate(String),
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte; the
/// bytes must form UTF-8. A `%` not followed by two hex digits is an error.
pub fn form_decode(s: &str) -> Result<String, FormError> {
    let raw = s.as_bytes();
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => {
                bytes.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex_value);
                let lo = raw.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => bytes.push(hi << 4 | lo),
                    _ => return Err(FormError::BadEscape(s.to_owned())),
                }
                i += 3;
            }
            b => {
                bytes.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| FormError::NotUtf8(s.to_owned()))
}

/// Decodes a whole form body or query string into name → value. Empty pieces (`a=1&&b=2`) are
/// skipped, a piece without `=` has the empty value, and a name given twice is an error (OAuth
/// forbids repeated parameters, RFC 6749 §3.1).
pub fn parse_form(s: &str) -> Result<HashMap<String, String>, FormError> {
    let mut map = HashMap::new();
    for piece in s.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        let name = form_decode(name)?;
        let value = form_decode(value)?;
        if map.contains_key(&name) {
            return Err(FormError::Duplicate(name));
        }
        map.insert(name, value);
    }
    Ok(map)
}

/// Encodes name/value pairs as a form body or query string (the inverse of [`parse_form`]).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| format!("{}={}", pct_encode(n), pct_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
pub fn b64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = b(0) << 16 | b(1) << 8 | b(2);
        // 1 byte → 2 characters, 2 → 3, 3 → 4.
        for k in 0..=chunk.len() {
            let six = (n >> (18 - 6 * k)) & 63;
            out.push(char::from(B64URL[six as usize]));
        }
    }
    out
}

/// Decodes base64url without padding; `None` for foreign characters, a dangling single
/// character, or non-zero leftover bits (so every byte string has exactly one encoding).
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        let mut n: u32 = 0;
        for (k, c) in chunk.iter().enumerate() {
            let v = B64URL.iter().position(|a| a == c)?;
            n |= (v as u32) << (18 - 6 * k);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let len = chunk.len() - 1;
        // Bits below the last full byte must be zero.
        let used_bits = 8 * len;
        if n & ((1u32 << (24 - used_bits)) - 1) != 0 {
            return None;
        }
        out.extend_from_slice(&bytes[..len]);
    }
    Some(out)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(hex_digit(b >> 4).to_ascii_lowercase());
        out.push(hex_digit(b & 0xf).to_ascii_lowercase());
    }
    out
}

/// PKCE S256: `BASE64URL(SHA256(ASCII(code_verifier)))`.
pub fn s256(code_verifier: &str) -> String {
    b64url_encode(&Sha256::digest(code_verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43–128 characters of `A-Z a-z 0-9 - . _ ~`.
pub fn is_code_verifier(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A PKCE S256 code challenge: base64url of 32 bytes.
pub fn is_s256_challenge(s: &str) -> bool {
    s.len() == 43 && b64url_decode(s).is_some_and(|b| b.len() == 32)
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(nibble & 0xf)])
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON string literal that is safe inside an inline `<script>` (no `</script>`, no `<!--`).
pub fn js_string(s: &str) -> String {
    serde_json::Value::from(s)
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn percent_encoding_round_trips() {
        assert_eq!(pct_encode("urn:a b/c~_.-"), "urn%3Aa%20b%2Fc~_.-");
        assert_eq!(pct_encode("ä"), "%C3%A4");
        for s in [
            "",
            "a b+c&d=e",
            "https://x.example/a?b=c#d",
            "Grüße 🙂",
            "%41",
        ] {
            assert_eq!(form_decode(&pct_encode(s)).unwrap(), s);
        }
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%20c%2b").unwrap(), "a b c+");
        assert_eq!(form_decode("%c3%A4").unwrap(), "ä");
        assert!(matches!(form_decode("%"), Err(FormError::BadEscape(_))));
        assert!(matches!(form_decode("%4"), Err(FormError::BadEscape(_))));
        assert!(matches!(form_decode("%zz"), Err(FormError::BadEscape(_))));
        assert!(matches!(form_decode("%ff"), Err(FormError::NotUtf8(_))));

        let m = parse_form("a=1&&b=x+y&c&d=%3D%26").unwrap();
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "x y");
        assert_eq!(m["c"], "");
        assert_eq!(m["d"], "=&");
        assert_eq!(m.len(), 4);
        assert_eq!(parse_form("a=1&a=2"), Err(FormError::Duplicate("a".into())));
        assert!(parse_form("").unwrap().is_empty());

        let body = form_encode(&[("client_id", "https://rp.example/x"), ("s", "a b&c")]);
        assert_eq!(body, "client_id=https%3A%2F%2Frp.example%2Fx&s=a%20b%26c");
        let m = parse_form(&body).unwrap();
        assert_eq!(m["client_id"], "https://rp.example/x");
        assert_eq!(m["s"], "a b&c");
    }

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        // RFC 4648 §10 (base64url alphabet, padding removed).
        let vectors = [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in vectors {
            assert_eq!(b64url_encode(plain.as_bytes()), enc);
            assert_eq!(b64url_decode(enc).unwrap(), plain.as_bytes());
        }
        assert_eq!(b64url_encode(&[0xfb, 0xff, 0xbf]), "-_-_");
        assert_eq!(b64url_decode("-_-_").unwrap(), [0xfb, 0xff, 0xbf]);
        for bad in ["Z", "Zm9vY", "Zm=", "Zm+v", "Zh"] {
            assert!(b64url_decode(bad).is_none(), "{bad}");
        }
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(b64url_decode(&b64url_encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(is_code_verifier(verifier));
        let challenge = s256(verifier);
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(is_s256_challenge(&challenge));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"
        ));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
        assert!(!is_code_verifier("short"));
        assert!(!is_code_verifier(&"a".repeat(129)));
        assert!(!is_code_verifier(&format!("{}!", "a".repeat(50))));
    }

    #[test]
    fn hex_and_escaping() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(
            html_escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let js = js_string("</script><!-- \"x\" & y");
        assert!(!js.contains('<') && !js.contains('>'));
        let back: String = serde_json::from_str(&js).unwrap();
        assert_eq!(back, "</script><!-- \"x\" & y");
    }
}
