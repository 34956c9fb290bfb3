//! What an upload is, judged from its bytes (never from the file name): the MIME types the
//! ePA accepts from an insurant, the title rules, and the PDF/A hint.

/// 25 MB, the upload limit of the documents dialog.
pub const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;
pub const MAX_TITLE_CHARS: usize = 128;

/// The MIME type of `bytes`, or `None` when it is none of PDF, JPEG, PNG, TIFF, plain text.
pub fn mime_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some("image/tiff")
    } else if !bytes.is_empty() && is_plain_text(bytes) {
        Some("text/plain")
    } else {
        None
    }
}

/// Valid UTF-8 without control characters other than whitespace (no binary in disguise).
fn is_plain_text(bytes: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(bytes) else {
        return false;
    };
    let s = s.strip_prefix('\u{feff}').unwrap_or(s);
    s.chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
}

/// A PDF claims PDF/A conformance in its XMP metadata (`pdfaid:part`); the ePA prefers PDF/A
/// for long-term readability, so others get a hint (the upload goes ahead).
pub fn is_pdfa(bytes: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"pdfaid:part";
    bytes.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// A title for the record: trimmed, 1–128 characters, no control characters.
pub fn title(raw: &str) -> Option<String> {
    let t = raw.trim();
    let n = t.chars().count();
    ((1..=MAX_TITLE_CHARS).contains(&n) && !t.chars().any(char::is_control)).then(|| t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_content() {
        assert_eq!(mime_type(b"%PDF-1.7\n..."), Some("application/pdf"));
        assert_eq!(mime_type(&[0xFF, 0xD8, 0xFF, 0xE0, 0]), Some("image/jpeg"));
        assert_eq!(mime_type(b"\x89PNG\r\n\x1a\nxxxx"), Some("image/png"));
        assert_eq!(mime_type(b"II*\0abc"), Some("image/tiff"));
        assert_eq!(mime_type(b"MM\0*abc"), Some("image/tiff"));
        assert_eq!(
            mime_type("Blutdruck 120/80\nÜbelkeit\n".as_bytes()),
            Some("text/plain")
        );
        assert_eq!(mime_type(b"PK\x03\x04zip"), None);
        assert_eq!(mime_type(&[0xC3, 0x28]), None);
        assert_eq!(mime_type(b""), None);
        assert_eq!(mime_type(b"text\0with nul"), None);
    }

    #[test]
    fn titles_and_pdfa() {
        assert_eq!(title("  Befund  ").as_deref(), Some("Befund"));
        assert_eq!(title(""), None);
        assert_eq!(title("a\u{7}b"), None);
        assert_eq!(title(&"x".repeat(129)), None);
        assert!(title(&"ä".repeat(128)).is_some());
        assert!(is_pdfa(b"%PDF-1.4 <pdfaid:part>2</pdfaid:part>"));
        assert!(!is_pdfa(b"%PDF-1.4 plain"));
    }
}
