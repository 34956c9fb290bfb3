//! Small pure helpers for what the screens show: dates, the KVNR check, file names.

pub use epa_ipc::present::{extension, parse_date, safe_file_name};

/// `dd.mm.yyyy` (UTC), the guide's date format.
pub fn date(unix: u64) -> String {
    epa_ipc::present::format_date(unix)
}

/// `dd.mm.yyyy hh:mm` (UTC).
pub fn date_time(unix: u64) -> String {
    epa_ipc::present::format_date_time(unix)
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
    fn times_read_as_the_screens_show_them() {
        // Dates and file names themselves: epa_ipc::present.
        assert_eq!(date(1_741_132_800), "05.03.2025");
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
}
