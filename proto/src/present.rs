//! What both clients show or do the same way: dates (UTC, said plainly: there is no time-zone
//! database here), safe file names for documents from the record, and the system's handler
//! for files and links.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// (year, month, day) of a day count since 1970-01-01, proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // In range by construction (1..=12, 1..=31).
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// The inverse of [`civil_from_days`].
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn split(unix: u64) -> ((i64, u32, u32), u64) {
    let days = i64::try_from(unix / 86_400).unwrap_or(i64::MAX / 2);
    (civil_from_days(days), unix % 86_400)
}

/// `dd.mm.yyyy` (UTC), the guide's date format.
pub fn format_date(unix: u64) -> String {
    let ((y, m, d), _) = split(unix);
    format!("{d:02}.{m:02}.{y:04}")
}

/// `dd.mm.yyyy hh:mm` (UTC).
pub fn format_date_time(unix: u64) -> String {
    let (_, secs) = split(unix);
    format!(
        "{} {:02}:{:02}",
        format_date(unix),
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// `2026-03-01 14:05 UTC`.
pub fn format_time_utc(unix: u64) -> String {
    let ((y, m, d), secs) = split(unix);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// `dd.mm.yyyy` (also `d.m.yyyy`) or ISO `yyyy-mm-dd` → the unix time of that day's start
/// (UTC). `None` when it is no real date from 1970 on (31.02. is refused).
pub fn parse_date(s: &str) -> Option<u64> {
    let s = s.trim();
    let (y, m, d) = if let Some((y, rest)) = s.split_once('-') {
        let (m, d) = rest.split_once('-')?;
        // ISO dates are written in full: yyyy-mm-dd.
        if m.len() != 2 || d.len() != 2 {
            return None;
        }
        (y, m, d)
    } else {
        let mut parts = s.split('.');
        let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        (y, m, d)
    };
    let digits = |t: &str| !t.is_empty() && t.len() <= 4 && t.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y) && digits(m) && digits(d)) || y.len() != 4 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || d == 0 || y < 1970 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if civil_from_days(days) != (y, m, d) {
        return None;
    }
    u64::try_from(days * 86_400).ok()
}

/// The file extension of a document's MIME type.
pub fn extension(mime: &str) -> &'static str {
    match mime.split(';').next().unwrap_or("").trim() {
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/tiff" => "tif",
        m if m.starts_with("text/") => "txt",
        _ => "bin",
    }
}

/// Longest file name [`safe_file_name`] makes (bytes), below every common file system's limit.
pub const MAX_FILE_NAME: usize = 180;

/// A file name for a document from the record (titles are untrusted): no separators, no `..`,
/// no control or Windows-reserved characters, no reserved device names, no leading dot,
/// bounded length, never empty; `ext` appended unless it is there.
pub fn safe_file_name(title: &str, ext: &str) -> String {
    // Path components that are only dots ("..", ".") or empty vanish; the rest join with `_`.
    let joined = title
        .split(['/', '\\'])
        .filter(|part| !part.trim().chars().all(|c| c == '.'))
        .collect::<Vec<_>>()
        .join("_");
    let mut name: String = joined
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '<' | '>' | '"' | '|' | '?' | '*' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    while name.contains("..") {
        name = name.replace("..", ".");
    }
    // Leading dots hide a file (and `.` alone is the directory); trailing dots and blanks are
    // dropped by Windows.
    let mut name = name
        .trim_matches(|c: char| c == '.' || c == '_' || c.is_whitespace())
        .to_owned();
    if name.is_empty() {
        name = "Dokument".to_owned();
    }
    let stem = name
        .split('.')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase();
    const RESERVED: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];
    let numbered = (stem.starts_with("COM") || stem.starts_with("LPT"))
        && stem.len() == 4
        && stem.as_bytes().get(3).is_some_and(u8::is_ascii_digit);
    if RESERVED.contains(&stem.as_str()) || numbered {
        name.insert(0, '_');
    }
    let ext = ext.trim_start_matches('.');
    let has_ext = !ext.is_empty()
        && name
            .rsplit_once('.')
            .is_some_and(|(_, e)| e.eq_ignore_ascii_case(ext));
    let budget = MAX_FILE_NAME.saturating_sub(if has_ext || ext.is_empty() {
        0
    } else {
        ext.len() + 1
    });
    if name.len() > budget {
        let mut cut = budget;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
        name = name.trim_end_matches(['.', ' ']).to_owned();
    }
    if !has_ext && !ext.is_empty() {
        name.push('.');
        name.push_str(ext);
    }
    name
}

/// The system's handler for a file or link (`xdg-open`, `open`, the Windows URL handler) with
/// `target` as its one argument: no shell ever parses it. Output is discarded.
pub fn system_open(target: &OsStr) -> Command {
    #[cfg(target_os = "macos")]
    let mut cmd = Command::new("open");
    // Windows (untested): `start` is a cmd.exe built-in that would parse `&` in a URL, so the
    // URL protocol handler is called directly.
    #[cfg(windows)]
    let mut cmd = {
        let mut c = Command::new("rundll32");
        c.arg("url.dll,FileProtocolHandler");
        c
    };
    #[cfg(not(any(target_os = "macos", windows)))]
    let mut cmd = Command::new("xdg-open");
    cmd.arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn dates_format_and_parse() {
        assert_eq!(format_date(0), "01.01.1970");
        assert_eq!(format_date(1_709_164_800), "29.02.2024");
        assert_eq!(format_date(1_741_132_800), "05.03.2025");
        assert_eq!(
            format_date_time(1_741_132_800 + 13 * 3600 + 7 * 60),
            "05.03.2025 13:07"
        );
        assert_eq!(format_time_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time_utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time_utc(1_767_225_599), "2025-12-31 23:59 UTC");
        for (s, want) in [
            ("1970-01-01", 0),
            ("2024-02-29", 1_709_164_800),
            ("05.03.2025", 1_741_132_800),
            ("5.3.2025", 1_741_132_800),
            (" 2025-03-05 ", 1_741_132_800),
        ] {
            assert_eq!(parse_date(s), Some(want), "{s}");
        }
        for bad in [
            "",
            "2023-02-29",
            "31.02.2025",
            "2024-13-01",
            "24-01-01",
            "2024-1-1",
            "1.1.25",
            "heute",
            "2024-01-01-01",
            "01.01.1969",
            "aa.bb.cccc",
            "1.2.3.2024",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn days_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn formatted_dates_parse_back(unix in 0u64..4_102_444_800) {
            let day = unix - unix % 86_400;
            prop_assert_eq!(parse_date(&format_date(unix)), Some(day));
        }
    }

    #[test]
    fn file_names_from_titles_are_safe() {
        let long = "ä".repeat(300);
        let cases: &[(&str, &str)] = &[
            ("../../etc/passwd", "etc_passwd.pdf"),
            ("a/b", "a_b.pdf"),
            ("a\\b", "a_b.pdf"),
            ("CON", "_CON.pdf"),
            ("con.txt", "_con.txt.pdf"),
            ("LPT1", "_LPT1.pdf"),
            ("COMMENT", "COMMENT.pdf"),
            ("", "Dokument.pdf"),
            ("   ", "Dokument.pdf"),
            ("..", "Dokument.pdf"),
            (".bashrc", "bashrc.pdf"),
            ("Befund\u{1b}[2J\n\r\t", "Befund_[2J.pdf"),
            ("Arztbrief Dr. Müller", "Arztbrief Dr. Müller.pdf"),
            ("bericht.PDF", "bericht.PDF"),
            ("a..b", "a.b.pdf"),
            ("x:y*z?", "x_y_z.pdf"),
        ];
        for (title, want) in cases {
            assert_eq!(safe_file_name(title, "pdf"), *want, "{title:?}");
        }
        let name = safe_file_name(&long, "pdf");
        assert!(name.len() <= MAX_FILE_NAME, "{}", name.len());
        assert!(name.ends_with("ä.pdf"));
    }

    proptest! {
        #[test]
        fn no_title_leaves_the_chosen_directory(title in ".{0,300}", ext in "(pdf|txt|)") {
            let n = safe_file_name(&title, &ext);
            prop_assert!(!n.is_empty() && n.len() <= MAX_FILE_NAME);
            prop_assert!(!n.contains('/') && !n.contains('\\') && !n.contains(".."), "{}", n);
            prop_assert!(!n.chars().any(char::is_control), "{}", n);
            prop_assert!(!n.starts_with('.'), "{}", n);
            let p = Path::new("/target").join(&n);
            prop_assert_eq!(p.parent(), Some(Path::new("/target")));
        }
    }

    #[test]
    fn the_system_handler_gets_the_target_as_one_argument() {
        let cmd = system_open(OsStr::new("https://x.invalid/a b&c=d"));
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(
            args.last().unwrap(),
            &OsStr::new("https://x.invalid/a b&c=d")
        );
    }
}
