//! The insurers this build knows. `available` comes from the environment (an IDP issuer for the
//! name); the list itself is shipped so that the profile can be validated offline.

/// The 11 AOKs first (the seed guide is the AOK's), then the other large Kassen.
pub const INSURERS: &[&str] = &[
    "AOK Baden-Württemberg",
    "AOK Bayern",
    "AOK Bremen/Bremerhaven",
    "AOK Hessen",
    "AOK Niedersachsen",
    "AOK Nordost",
    "AOK NordWest",
    "AOK PLUS",
    "AOK Rheinland/Hamburg",
    "AOK Rheinland-Pfalz/Saarland",
    "AOK Sachsen-Anhalt",
    "Techniker Krankenkasse",
    "BARMER",
    "DAK-Gesundheit",
    "IKK classic",
    "KKH",
    "hkk",
    "HEK",
    "SBK",
    "Mobil Krankenkasse",
    "BIG direkt gesund",
    "Knappschaft",
];

/// The shipped spelling of `name` (case and surrounding space do not matter).
pub fn canonical(name: &str) -> Option<&'static str> {
    let name = name.trim();
    INSURERS
        .iter()
        .copied()
        .find(|i| i.eq_ignore_ascii_case(name) || i.to_lowercase() == name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleven_aoks_and_names_are_matched_leniently() {
        assert_eq!(INSURERS.iter().filter(|i| i.starts_with("AOK")).count(), 11);
        assert_eq!(canonical(" aok plus "), Some("AOK PLUS"));
        assert_eq!(
            canonical("aok baden-württemberg"),
            Some("AOK Baden-Württemberg")
        );
        assert_eq!(canonical("AOK Mars"), None);
    }
}
