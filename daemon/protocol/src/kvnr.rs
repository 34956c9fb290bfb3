//! The Krankenversichertennummer (KVNR), unchangeable part: the insurant id that also names the
//! health record (`x-insurantid`, OpenAPI `InsurantIdType`, pattern `^[A-Z]{1}\d{9}$`).
//!
//! Layout: one letter `A`–`Z`, eight digits, one check digit (10 characters).
//!
//! Check digit ("modifizierter Luhn"): the letter becomes its two-digit alphabet position
//! (`A` = `01` … `Z` = `26`); together with the eight digits that gives ten digits `d1..d10`.
//! They are multiplied alternately by 1, 2, 1, 2, …; a product ≥ 10 is replaced by its cross sum;
//! the products are summed and the check digit is that sum mod 10.
//!
//! Error detection (tested exhaustively below):
//! * every substitution of a single one of the nine digits (including the check digit itself)
//!   is detected — a weight-1 position shifts the sum by the difference, and for a weight-2
//!   position `d ↦ crosssum(2d)` is a permutation of 0..=9;
//! * a substitution of the **letter** is *not* always detected: 26 letters map onto only 10
//!   possible contributions, e.g. `E` (05 → 0 + crosssum(10) = 1) and `J` (10 → 1 + 0 = 1)
//!   contribute the same, so `E…` and `J…` with the same digits have the same check digit.
//!
//! A KVNR is personal data. Error messages name the offending character and position but never
//! echo the whole input.

use std::fmt;
use std::str::FromStr;

/// What a KVNR looks like, appended to every error message.
const SHAPE: &str = "a KVNR is one letter A-Z followed by 9 digits, the last being a check digit \
                     (e.g. X110411675)";

/// A validated, normalised (upper-case, trimmed) KVNR, e.g. `X110411675`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kvnr(String);

/// Why a string is not a KVNR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvnrError {
    /// Nothing (or only whitespace) was given.
    #[error("the KVNR is empty; {SHAPE}")]
    Empty,
    /// Not exactly 10 characters after trimming.
    #[error("the KVNR has {len} characters instead of 10; {SHAPE}")]
    WrongLength {
        /// Number of characters (not bytes) after trimming.
        len: usize,
    },
    /// The first character is not a letter A–Z.
    #[error("the KVNR must start with a letter A-Z, found {found:?}; {SHAPE}")]
    BadFirstChar {
        /// The offending character (after upper-casing).
        found: char,
    },
    /// One of characters 2–10 is not a digit.
    #[error("character {position} of the KVNR must be a digit, found {found:?}; {SHAPE}")]
    NonDigit {
        /// 1-based character position (2..=10).
        position: usize,
        /// The offending character.
        found: char,
    },
    /// All characters are well-formed but the check digit does not match (usually a typo).
    #[error("the KVNR check digit does not match, the number probably contains a typo; {SHAPE}")]
    WrongCheckDigit {
        /// The check digit computed from the first nine characters.
        expected: u8,
        /// The check digit found in position 10.
        found: u8,
    },
}

impl Kvnr {
    /// Parses and validates a KVNR. Leading/trailing whitespace is removed and letters are
    /// upper-cased first, so `" x110411675 "` parses as `X110411675`.
    pub fn parse(input: &str) -> Result<Kvnr, KvnrError> {
        let normalised = input.trim().to_ascii_uppercase();
        let len = normalised.chars().count();
        if len == 0 {
            return Err(KvnrError::Empty);
        }
        if len != 10 {
            return Err(KvnrError::WrongLength { len });
        }
        let mut chars = normalised.chars();
        let letter = chars.next().ok_or(KvnrError::Empty)?;
        if !letter.is_ascii_uppercase() {
            return Err(KvnrError::BadFirstChar { found: letter });
        }
        let mut digits = [0u8; 9];
        for (i, (slot, c)) in digits.iter_mut().zip(chars).enumerate() {
            *slot = digit_value(c).ok_or(KvnrError::NonDigit {
                position: i + 2,
                found: c,
            })?;
        }
        let [d0, d1, d2, d3, d4, d5, d6, d7, found] = digits;
        let expected = check_digit(letter, &[d0, d1, d2, d3, d4, d5, d6, d7])
            .ok_or(KvnrError::BadFirstChar { found: letter })?;
        if expected != found {
            return Err(KvnrError::WrongCheckDigit { expected, found });
        }
        // Only ASCII is left at this point, so `normalised` is exactly the 10 validated bytes.
        Ok(Kvnr(normalised))
    }

    /// The KVNR as a 10-character string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The letter (first character).
    pub fn letter(&self) -> char {
        self.0.chars().next().unwrap_or('?')
    }
}

/// The check digit for a letter (`A`–`Z`, lower case accepted) and eight digits (each 0–9), or
/// `None` if an input is out of range.
pub fn check_digit(letter: char, digits: &[u8; 8]) -> Option<u8> {
    let letter = letter.to_ascii_uppercase();
    if !letter.is_ascii_uppercase() || digits.iter().any(|&d| d > 9) {
        return None;
    }
    let position = letter as u8 - b'A' + 1; // 1..=26
    let all: [u8; 10] = [
        position / 10,
        position % 10,
        digits[0],
        digits[1],
        digits[2],
        digits[3],
        digits[4],
        digits[5],
        digits[6],
        digits[7],
    ];
    let sum: u32 = all
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let product = u32::from(d) * if i % 2 == 0 { 1 } else { 2 };
            // Cross sum of a number below 100.
            product / 10 + product % 10
        })
        .sum();
    u8::try_from(sum % 10).ok()
}

/// Builds the KVNR `letter` + `digits` + computed check digit, or `None` if the letter is not
/// `A`–`Z` (lower case is accepted and upper-cased) or a digit is greater than 9.
pub fn with_check_digit(letter: char, digits: &[u8; 8]) -> Option<Kvnr> {
    let check = check_digit(letter, digits)?;
    let mut s = String::with_capacity(10);
    s.push(letter.to_ascii_uppercase());
    for &d in digits.iter().chain(std::iter::once(&check)) {
        s.push(char::from(b'0' + d));
    }
    Some(Kvnr(s))
}

/// A random, well-formed KVNR (random letter, 8 random digits, correct check digit) for tests
/// and the sandbox. Nothing marks it as a test number: do not send generated numbers to
/// production systems.
pub fn generate_test_kvnr(rng: &mut impl rand_core::CryptoRng) -> Kvnr {
    let letter = char::from(b'A' + uniform_below(rng, 26));
    let mut digits = [0u8; 8];
    for d in &mut digits {
        *d = uniform_below(rng, 10);
    }
    // Both inputs are in range by construction; the fallback is unreachable.
    with_check_digit(letter, &digits).unwrap_or_else(|| Kvnr(String::from("A000000000")))
}

/// Uniform value in `0..n` (n ≤ 256) by rejection sampling, so no modulo bias.
fn uniform_below(rng: &mut impl rand_core::CryptoRng, n: u8) -> u8 {
    let n = u32::from(n.max(1));
    let zone = (u32::MAX / n) * n;
    loop {
        let x = rng.next_u32();
        if x < zone {
            return u8::try_from(x % n).unwrap_or(0);
        }
    }
}

/// Value of an ASCII digit (`char::to_digit` accepts ASCII digits only).
fn digit_value(c: char) -> Option<u8> {
    c.to_digit(10).and_then(|d| u8::try_from(d).ok())
}

impl fmt::Display for Kvnr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Kvnr {
    type Err = KvnrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kvnr::parse(s)
    }
}

impl AsRef<str> for Kvnr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for Kvnr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Kvnr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Kvnr;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a KVNR string such as \"X110411675\"")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Kvnr, E> {
                Kvnr::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Contribution of one letter to the check sum, mod 10.
    fn letter_contribution(letter: char) -> u8 {
        // check_digit is linear in the contributions, so with all-zero digits it is exactly
        // the letter's contribution.
        check_digit(letter, &[0; 8]).unwrap_or(255)
    }

    #[test]
    fn gematik_examples_by_hand() {
        // M432109873: M = 13 -> 1 3 4 3 2 1 0 9 8 7, weights 1 2 1 2 ...
        //   1*1=1, 3*2=6, 4*1=4, 3*2=6, 2*1=2, 1*2=2, 0*1=0, 9*2=18->9, 8*1=8, 7*2=14->5
        //   sum = 43 -> check digit 3 == last char 3: valid.
        assert_eq!(check_digit('M', &[4, 3, 2, 1, 0, 9, 8, 7]), Some(3));
        assert!(Kvnr::parse("M432109873").is_ok());

        // Z123456789: Z = 26 -> 2 6 1 2 3 4 5 6 7 8
        //   2, 6*2=12->3, 1, 2*2=4, 3, 4*2=8, 5, 6*2=12->3, 7, 8*2=16->7
        //   sum = 43 -> check digit 3 != last char 9: invalid (the OpenAPI example is not a
        //   valid KVNR, it only matches the pattern).
        assert_eq!(check_digit('Z', &[1, 2, 3, 4, 5, 6, 7, 8]), Some(3));
        assert_eq!(
            Kvnr::parse("Z123456789"),
            Err(KvnrError::WrongCheckDigit {
                expected: 3,
                found: 9
            })
        );

        // X110411675: X = 24 -> 2 4 1 1 0 4 1 1 6 7
        //   2, 4*2=8, 1, 1*2=2, 0, 4*2=8, 1, 1*2=2, 6, 7*2=14->5
        //   sum = 35 -> check digit 5 == last char 5: valid.
        assert_eq!(check_digit('X', &[1, 1, 0, 4, 1, 1, 6, 7]), Some(5));
        assert!(Kvnr::parse("X110411675").is_ok());
    }

    #[test]
    fn table() {
        use KvnrError::*;
        let cases: &[(&str, Result<&str, KvnrError>)] = &[
            ("X110411675", Ok("X110411675")),
            ("x110411675", Ok("X110411675")),
            ("  X110411675\t\n", Ok("X110411675")),
            ("M432109873", Ok("M432109873")),
            ("", Err(Empty)),
            ("   ", Err(Empty)),
            ("X11041167", Err(WrongLength { len: 9 })),
            ("X1104116750", Err(WrongLength { len: 11 })),
            ("X 110411675", Err(WrongLength { len: 11 })),
            ("1110411675", Err(BadFirstChar { found: '1' })),
            ("Ä110411675", Err(BadFirstChar { found: 'Ä' })),
            ("-110411675", Err(BadFirstChar { found: '-' })),
            (
                "XX10411675",
                Err(NonDigit {
                    position: 2,
                    found: 'X',
                }),
            ),
            (
                "X11041167A",
                Err(NonDigit {
                    position: 10,
                    found: 'A',
                }),
            ),
            (
                "X1104116７5",
                Err(NonDigit {
                    position: 9,
                    found: '７',
                }),
            ),
            (
                "X11041167٥",
                Err(NonDigit {
                    position: 10,
                    found: '٥',
                }),
            ),
            (
                "X110411676",
                Err(WrongCheckDigit {
                    expected: 5,
                    found: 6,
                }),
            ),
            (
                "Z123456789",
                Err(WrongCheckDigit {
                    expected: 3,
                    found: 9,
                }),
            ),
        ];
        for (input, want) in cases {
            let got = Kvnr::parse(input);
            match want {
                Ok(s) => assert_eq!(got.as_ref().map(Kvnr::as_str), Ok(*s), "{input:?}"),
                Err(e) => assert_eq!(got.as_ref(), Err(e), "{input:?}"),
            }
        }
    }

    #[test]
    fn error_messages_describe_the_format() {
        for input in ["", "X1", "1110411675", "XX10411675", "Z123456789"] {
            let msg = Kvnr::parse(input)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains("one letter A-Z followed by 9 digits"), "{msg}");
        }
        // The input itself is not echoed.
        let msg = Kvnr::parse("Z123456789")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!msg.contains("Z123456789"), "{msg}");
    }

    #[test]
    fn with_check_digit_builds_valid_numbers() {
        assert_eq!(
            with_check_digit('X', &[1, 1, 0, 4, 1, 1, 6, 7]).map(|k| k.to_string()),
            Some("X110411675".to_string())
        );
        assert_eq!(
            with_check_digit('m', &[4, 3, 2, 1, 0, 9, 8, 7]).map(|k| k.to_string()),
            Some("M432109873".to_string())
        );
        assert_eq!(with_check_digit('1', &[0; 8]), None);
        assert_eq!(with_check_digit('Ä', &[0; 8]), None);
        assert_eq!(with_check_digit('A', &[0, 0, 0, 0, 0, 0, 0, 10]), None);
    }

    #[test]
    fn traits() {
        let k: Kvnr = "x110411675".parse().unwrap();
        assert_eq!(k.as_str(), "X110411675");
        assert_eq!(k.to_string(), "X110411675");
        assert_eq!(k.letter(), 'X');
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"X110411675\"");
        let back: Kvnr = serde_json::from_str("\"x110411675\"").unwrap();
        assert_eq!(back, k);
        let err = serde_json::from_str::<Kvnr>("\"Z123456789\"").unwrap_err();
        assert!(err.to_string().contains("check digit"), "{err}");
        assert!(serde_json::from_str::<Kvnr>("12").is_err());
    }

    #[test]
    fn generator_is_deterministic_and_valid() {
        let mut a = ChaCha20Rng::seed_from_u64(7);
        let mut b = ChaCha20Rng::seed_from_u64(7);
        for _ in 0..1000 {
            let k = generate_test_kvnr(&mut a);
            assert_eq!(k, generate_test_kvnr(&mut b));
            assert_eq!(Kvnr::parse(k.as_str()), Ok(k.clone()));
        }
    }

    #[test]
    fn generator_covers_all_letters() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut seen = [false; 26];
        for _ in 0..2000 {
            let k = generate_test_kvnr(&mut rng);
            seen[usize::from(k.letter() as u8 - b'A')] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    /// Exhaustive over all positions and all replacement digits for a sample of numbers.
    #[test]
    fn every_single_digit_substitution_is_detected() {
        let mut rng = ChaCha20Rng::seed_from_u64(42);
        for _ in 0..200 {
            let k = generate_test_kvnr(&mut rng);
            let bytes = k.as_str().as_bytes();
            for pos in 1..10 {
                for d in b'0'..=b'9' {
                    if d == bytes[pos] {
                        continue;
                    }
                    let mut changed = bytes.to_vec();
                    changed[pos] = d;
                    let s = String::from_utf8(changed).unwrap();
                    assert!(
                        matches!(Kvnr::parse(&s), Err(KvnrError::WrongCheckDigit { .. })),
                        "{s} accepted"
                    );
                }
            }
        }
    }

    /// A letter substitution is detected exactly when the two letters contribute differently.
    #[test]
    fn letter_substitution_detection_is_what_the_algorithm_allows() {
        // E (05) and J (10) collide, as documented in the module docs.
        assert_eq!(letter_contribution('E'), letter_contribution('J'));
        assert_eq!(letter_contribution('E'), 1);
        let mut undetected_pairs = 0;
        for a in 'A'..='Z' {
            for b in 'A'..='Z' {
                if a == b {
                    continue;
                }
                let k = with_check_digit(a, &[1, 1, 0, 4, 1, 1, 6, 7]).unwrap();
                let swapped = format!("{b}{}", &k.as_str()[1..]);
                let detected = Kvnr::parse(&swapped).is_err();
                assert_eq!(
                    detected,
                    letter_contribution(a) != letter_contribution(b),
                    "{a} -> {b}"
                );
                if !detected {
                    undetected_pairs += 1;
                }
            }
        }
        // 26 letters over 10 residues: many ordered pairs collide.
        assert!(undetected_pairs > 0);
    }

    proptest! {
        #[test]
        fn generated_kvnrs_are_valid(seed in any::<u64>()) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let k = generate_test_kvnr(&mut rng);
            prop_assert_eq!(k.as_str().len(), 10);
            prop_assert_eq!(Kvnr::parse(k.as_str()), Ok(k.clone()));
        }

        #[test]
        fn with_check_digit_round_trips(letter in proptest::char::range('A', 'Z'),
                                        digits in proptest::array::uniform8(0u8..10)) {
            let k = with_check_digit(letter, &digits).unwrap();
            prop_assert_eq!(Kvnr::parse(k.as_str()), Ok(k.clone()));
        }

        #[test]
        fn changing_one_digit_invalidates(letter in proptest::char::range('A', 'Z'),
                                          digits in proptest::array::uniform8(0u8..10),
                                          pos in 1usize..10,
                                          delta in 1u8..10) {
            let k = with_check_digit(letter, &digits).unwrap();
            let mut b = k.as_str().as_bytes().to_vec();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let s = String::from_utf8(b).unwrap();
            let is_wrong_check_digit =
                matches!(Kvnr::parse(&s), Err(KvnrError::WrongCheckDigit { .. }));
            prop_assert!(is_wrong_check_digit);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Kvnr::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_misses(s in "[ \\ta-zA-Z0-9Ä٥]{0,14}") {
            if let Ok(k) = Kvnr::parse(&s) {
                // Anything accepted matches the OpenAPI pattern ^[A-Z]{1}\d{9}$.
                let b = k.as_str().as_bytes();
                prop_assert_eq!(b.len(), 10);
                prop_assert!(b[0].is_ascii_uppercase());
                prop_assert!(b[1..].iter().all(u8::is_ascii_digit));
            }
        }
    }
}
