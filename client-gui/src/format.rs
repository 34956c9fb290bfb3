//! Small pure helpers for what the screens show: dates, the KVNR check, file names.

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian, UTC.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // Both are in range by construction (1..=31, 1..=12).
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `dd.mm.yyyy` (UTC), the guide's date format.
pub fn date(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let (y, m, d) = civil_from_days(days);
    format!("{d:02}.{m:02}.{y:04}")
}

/// `dd.mm.yyyy hh:mm` (UTC).
pub fn date_time(unix: u64) -> String {
    let secs = unix % 86_400;
    format!(
        "{} {:02}:{:02}",
        date(unix),
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// Parses `dd.mm.yyyy` (also `d.m.yyyy`, or ISO `yyyy-mm-dd`) to the unix time of that day's
/// start (UTC). `None` when it is no real date.
pub fn parse_date(s: &str) -> Option<u64> {
    let s = s.trim();
    let (y, m, d) = if let Some((y, rest)) = s.split_once('-') {
        let (m, d) = rest.split_once('-')?;
        (y, m, d)
    } else {
        let mut parts = s.split('.');
        let d = parts.next()?;
        let m = parts.next()?;
        let y = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        (y, m, d)
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y) && digits(m) && digits(d)) || y.len() != 4 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || d == 0 || y < 1970 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Reject 31.02. and the like: the day must survive the round trip.
    if civil_from_days(days) != (y, m, d) {
        return None;
    }
    u64::try_from(days).ok().map(|d| d * 86_400)
}

/// "4:05" for a countdown.
pub fn mm_ss(secs: u64) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// What is wrong with a KVNR as typed; `Ok` when shape and check digit are right.
///
/// The KVNR is a capital letter and nine digits; the last digit is a check digit over the
/// letter's two-digit alphabet position and the first eight digits (weights 1, 2 alternating,
/// two-digit products summed digit by digit, modulo 10). The daemon checks it again.
pub fn check_kvnr(raw: &str) -> Result<String, KvnrProblem> {
    let kvnr = normalize_kvnr(raw);
    let b = kvnr.as_bytes();
    if b.is_empty() {
        return Err(KvnrProblem::Empty);
    }
    if !b[0].is_ascii_uppercase() {
        return Err(KvnrProblem::Letter);
    }
    if !b[1..].iter().all(u8::is_ascii_digit) {
        return Err(KvnrProblem::Digits);
    }
    if b.len() < 10 {
        return Err(KvnrProblem::TooShort);
    }
    if b.len() > 10 {
        return Err(KvnrProblem::TooLong);
    }
    let letter = b[0] - b'A' + 1;
    let mut digits = vec![letter / 10, letter % 10];
    digits.extend(b[1..9].iter().map(|c| c - b'0'));
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let p = u32::from(d) * if i % 2 == 0 { 1 } else { 2 };
            p / 10 + p % 10
        })
        .sum();
    if sum % 10 != u32::from(b[9] - b'0') {
        return Err(KvnrProblem::CheckDigit);
    }
    Ok(kvnr)
}

pub fn normalize_kvnr(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvnrProblem {
    Empty,
    Letter,
    Digits,
    TooShort,
    TooLong,
    CheckDigit,
}

/// A file name from a document title: no path separators, no `..`, no leading dot, no control
/// or Windows-reserved characters, no device names, at most 120 bytes; never empty.
pub fn safe_file_name(title: &str, ext: &str) -> String {
    let mut name: String = title
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    name = name.trim().trim_start_matches('.').replace("..", "_");
    while name.len() > 120 {
        name.pop();
    }
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let reserved = ["CON", "PRN", "AUX", "NUL"].contains(&stem.as_str())
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    if name.is_empty() || reserved {
        name = format!("dokument_{name}");
    }
    if ext.is_empty() || name.to_ascii_lowercase().ends_with(&format!(".{ext}")) {
        name
    } else {
        format!("{name}.{ext}")
    }
}

/// The file extension for a MIME type the record allows.
pub fn extension(mime: &str) -> &'static str {
    match mime {
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/tiff" => "tif",
        "text/plain" => "txt",
        _ => "bin",
    }
}

/// The short type label of the table's "Typ" column.
pub fn type_label(mime: &str) -> &'static str {
    match mime {
        "application/pdf" => "PDF",
        "image/jpeg" => "JPG",
        "image/png" => "PNG",
        "image/tiff" => "TIFF",
        "text/plain" => "TXT",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(date(0), "01.01.1970");
        assert_eq!(date(1_741_132_800), "05.03.2025");
        assert_eq!(parse_date("05.03.2025"), Some(1_741_132_800));
        assert_eq!(parse_date("2025-03-05"), Some(1_741_132_800));
        assert_eq!(parse_date("5.3.2025"), Some(1_741_132_800));
        assert_eq!(
            date_time(1_741_132_800 + 3_600 * 13 + 60 * 7),
            "05.03.2025 13:07"
        );
        for bad in [
            "",
            "31.02.2025",
            "1.1.25",
            "aa.bb.cccc",
            "1.1.2025.1",
            "00.01.2025",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(
            parse_date("29.02.2024").map(date).as_deref(),
            Some("29.02.2024")
        );
        assert_eq!(mm_ss(305), "5:05");
    }

    #[test]
    fn kvnr_check_digit() {
        assert_eq!(check_kvnr(" x110411675 ").as_deref(), Ok("X110411675"));
        assert_eq!(check_kvnr("X110411676"), Err(KvnrProblem::CheckDigit));
        assert_eq!(check_kvnr(""), Err(KvnrProblem::Empty));
        assert_eq!(check_kvnr("1110411675"), Err(KvnrProblem::Letter));
        assert_eq!(check_kvnr("X11041"), Err(KvnrProblem::TooShort));
        assert_eq!(check_kvnr("X1104116750"), Err(KvnrProblem::TooLong));
        assert_eq!(check_kvnr("X11a411675"), Err(KvnrProblem::Digits));
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            safe_file_name("Befund 03/2025", "pdf"),
            "Befund 03_2025.pdf"
        );
        assert_eq!(
            safe_file_name("../../etc/passwd", "txt"),
            "___etc_passwd.txt"
        );
        assert_eq!(safe_file_name(".hidden", "txt"), "hidden.txt");
        assert_eq!(safe_file_name("", "pdf"), "dokument_.pdf");
        assert_eq!(safe_file_name("con", "txt"), "dokument_con.txt");
        assert_eq!(safe_file_name("x.pdf", "pdf"), "x.pdf");
        assert!(safe_file_name(&"ä".repeat(200), "pdf").len() <= 124);
    }
}
