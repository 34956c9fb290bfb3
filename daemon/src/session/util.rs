//! Small pure helpers of the journey: RFC 3339 times, the authorization URL's parts, the QR
//! code, the device name.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

use epa_ipc::deeplink::percent_decode;
use epa_protocol::xds::rim::{civil_from_days, days_from_civil};

/// `2025-04-22T14:23:01Z`, `…T14:23:01.123+02:00`: the date-time of the ePA interfaces.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let (mo, d) = (u32::try_from(mo).ok()?, u32::try_from(d).ok()?);
    let t = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(t).ok()
}

/// UTC, seconds precision: `2025-04-22T14:23:01Z`.
pub fn format_rfc3339(t: u64) -> String {
    let t = i64::try_from(t).unwrap_or(i64::MAX / 2);
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// What the daemon needs from the `Location` of sendAuthorizationRequestFdV.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthorizationUrl {
    /// `state` (decoded), to compare with the callback's.
    pub state: String,
    /// `https://host[:port]/path/status?request_uri=…` — the IDP's cross-device status, if it
    /// offers one (vendor-specific; probed before use).
    pub status_url: Option<String>,
}

/// Checks the IDP authorization URL (https, no fragment) and takes `state` out of it.
pub fn parse_authorization_url(url: &str) -> Option<AuthorizationUrl> {
    let rest = url.strip_prefix("https://")?;
    if url.len() > 8192 || url.contains('#') || url.chars().any(|c| c.is_whitespace()) {
        return None;
    }
    let (before, query) = rest.split_once('?')?;
    if before.is_empty() || before.starts_with('/') {
        return None;
    }
    let mut state = None;
    let mut request_uri = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "state" => state = Some(percent_decode(v)?),
            "request_uri" => request_uri = Some(v),
            _ => {}
        }
    }
    let state = state.filter(|s| !s.is_empty())?;
    let status_url = request_uri.filter(|r| !r.is_empty()).map(|r| {
        format!(
            "https://{}/status?request_uri={r}",
            before.trim_end_matches('/')
        )
    });
    Some(AuthorizationUrl { state, status_url })
}

/// The QR code of `url`: PNG bytes (for the GUI) and text (for terminals: light modules drawn,
/// which reads correctly on the usual dark terminal background).
pub fn qr_code(url: &str) -> Result<(Vec<u8>, String), String> {
    use image::ImageEncoder;
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| e.to_string())?;
    let text = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    let img = code
        .render::<image::Luma<u8>>()
        .module_dimensions(6, 6)
        .quiet_zone(true)
        .build();
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::L8,
        )
        .map_err(|e| e.to_string())?;
    Ok((png, text))
}

/// registerDevice's `deviceName`: the host name, at most 80 characters.
pub fn device_name() -> String {
    #[cfg(unix)]
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    #[cfg(not(unix))]
    let host = std::env::var("COMPUTERNAME").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    if host.is_empty() {
        "epa-desktop".to_owned()
    } else {
        host
    }
}

/// `^\d{6}$`: the device confirmation code.
pub fn is_confirmation_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Compares two secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_rejects_junk() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2025-04-22T14:23:01Z"), Some(1_745_331_781));
        assert_eq!(
            parse_rfc3339("2025-04-22T16:23:01.123+02:00"),
            Some(1_745_331_781)
        );
        assert_eq!(format_rfc3339(1_745_331_781), "2025-04-22T14:23:01Z");
        for bad in [
            "",
            "2025-04-22",
            "2025-13-01T00:00:00Z",
            "2025-04-22T14:23:01",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_authorization_url_yields_state_and_status() {
        let u = parse_authorization_url(
            "https://127.0.0.1:4000/idp/aok-plus/auth?client_id=https%3A%2F%2Frp&request_uri=urn%3Ax%3A1f&state=ab-9_c",
        )
        .unwrap();
        assert_eq!(u.state, "ab-9_c");
        assert_eq!(
            u.status_url.as_deref(),
            Some("https://127.0.0.1:4000/idp/aok-plus/auth/status?request_uri=urn%3Ax%3A1f")
        );
        assert!(parse_authorization_url("http://x/auth?state=a").is_none());
        assert!(parse_authorization_url("https://x/auth?client_id=a").is_none());
        assert!(parse_authorization_url("https://x/auth?state=a#frag").is_none());
        assert!(parse_authorization_url("https:///auth?state=a").is_none());
    }

    #[test]
    fn qr_codes_render_as_png_and_text() {
        let (png, text) = qr_code("https://example.invalid/auth?state=1").unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(text.lines().count() > 10);
    }

    #[test]
    fn codes_and_secrets() {
        assert!(is_confirmation_code("012345"));
        assert!(!is_confirmation_code("12345"));
        assert!(!is_confirmation_code("12345a"));
        assert!(!is_confirmation_code("١٢٣٤٥٦"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        let name = device_name();
        assert!(!name.is_empty() && name.chars().count() <= 80);
    }
}
