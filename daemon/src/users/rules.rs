//! Rules for local user names and passwords ("Neuen lokalen Benutzer anlegen").
//!
//! A local user is identified by a name the person chooses and protected by a password. This
//! module only *validates*; it stores nothing and never logs. Passwords are secrets: no error,
//! `Debug` output or log line produced here contains a password or any part of it.
//!
//! # User names
//!
//! [`Username::parse`] normalises the raw input to Unicode NFC and then checks, in this order
//! (the first failing rule is reported):
//!
//! 1. not empty ([`RuleError::UsernameEmpty`]);
//! 2. at most [`USERNAME_MAX_CHARS`] characters (Unicode scalar values, counted *after* NFC, so
//!    a decomposed "u\u{308}" counts as one "ü") ([`RuleError::UsernameTooLong`]);
//! 3. no control or invisible formatting characters ([`RuleError::UsernameControlCharacter`]):
//!    everything [`char::is_control`] reports (C0, DEL, C1 — so tab, newline and NEL too), the
//!    Unicode line and paragraph separators U+2028/U+2029 (the only members of the categories
//!    Zl and Zp), and a fixed list of invisible format characters that would let two names
//!    look identical or reorder text on screen: the soft hyphen U+00AD, the zero-width space
//!    U+200B, the word joiner and invisible operators U+2060–U+2064, the byte-order mark
//!    U+FEFF, all bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E,
//!    U+2066–U+2069), U+180E and the interlinear annotation characters U+FFF9–U+FFFB.
//!    Deliberately *allowed* are the zero-width (non-)joiners U+200C/U+200D and the variation
//!    selectors, because emoji sequences ("👨‍👩‍👧") and several scripts need them;
//! 4. no whitespace ([`char::is_whitespace`]) at the start or end
//!    ([`RuleError::UsernameSurroundingWhitespace`]). The name is *not* trimmed silently: what
//!    the person typed is what they will have to type again. Whitespace inside the name
//!    ("Max Mustermann") is fine.
//!
//! Uniqueness is decided on [`Username::folded`], a case-insensitive form.
//!
//! # Passwords
//!
//! [`check_password`] checks, in this order: at most [`PASSWORD_MAX_BYTES`] bytes of UTF-8, at
//! least [`PASSWORD_MIN_CHARS`] characters, not the user name (case-insensitively), and not on
//! the shipped list of common passwords (`common-passwords.txt`, case-insensitively).

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// Maximum length of a user name in characters (Unicode scalar values after NFC).
pub const USERNAME_MAX_CHARS: usize = 64;

/// Minimum length of a password in characters (Unicode scalar values, as typed).
pub const PASSWORD_MIN_CHARS: usize = 10;

/// Maximum length of a password in **bytes** of its UTF-8 encoding (not characters): this
/// bounds the work done on untrusted input and what goes into key derivation. 1024 bytes are
/// 1024 ASCII characters but only 512 "ä" or 256 emoji.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// The shipped list of common passwords: one per line, lowercase; `#` starts a comment line.
const COMMON_PASSWORDS_TXT: &str = include_str!("common-passwords.txt");

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| common_password_entries().collect());

fn common_password_entries() -> impl Iterator<Item = &'static str> {
    COMMON_PASSWORDS_TXT
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// Why a user name or password was refused. Carries no user input at all, so it is safe to
/// log and to send to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the user name must not be empty")]
    UsernameEmpty,
    #[error("the user name must have at most {max} characters")]
    UsernameTooLong { max: usize },
    #[error(
        "the user name must not contain control characters, line breaks or invisible characters"
    )]
    UsernameControlCharacter,
    #[error("the user name must not start or end with a space")]
    UsernameSurroundingWhitespace,
    #[error("the password must have at least {min} characters")]
    PasswordTooShort { min: usize },
    #[error("the password must not be longer than {max} bytes")]
    PasswordTooLong { max: usize },
    #[error("the password must not be the user name; choose a different password")]
    PasswordEqualsUsername,
    #[error("the password is too common; choose one that is harder to guess")]
    PasswordTooCommon,
}

impl RuleError {
    /// Stable machine-readable reason sent to clients (never changes with the English text).
    pub fn reason(&self) -> &'static str {
        match self {
            RuleError::UsernameEmpty
            | RuleError::UsernameTooLong { .. }
            | RuleError::UsernameControlCharacter
            | RuleError::UsernameSurroundingWhitespace => "USERNAME_INVALID",
            RuleError::PasswordTooShort { .. } => "PASSWORD_TOO_SHORT",
            RuleError::PasswordTooLong { .. } => "PASSWORD_TOO_LONG",
            RuleError::PasswordEqualsUsername => "PASSWORD_EQUALS_USERNAME",
            RuleError::PasswordTooCommon => "PASSWORD_TOO_COMMON",
        }
    }
}

/// A validated local user name: NFC-normalised, 1–[`USERNAME_MAX_CHARS`] characters, no
/// control or invisible formatting characters, no surrounding whitespace (see the module
/// documentation for the exact rules).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Validates `raw` and returns it in NFC form.
    pub fn parse(raw: &str) -> Result<Username, RuleError> {
        // Normalise lazily and stop one character past the limit: a huge input is refused
        // without normalising all of it.
        let name: String = raw.nfc().take(USERNAME_MAX_CHARS + 1).collect();
        if name.is_empty() {
            return Err(RuleError::UsernameEmpty);
        }
        if name.chars().count() > USERNAME_MAX_CHARS {
            return Err(RuleError::UsernameTooLong {
                max: USERNAME_MAX_CHARS,
            });
        }
        if name.chars().any(is_forbidden_in_username) {
            return Err(RuleError::UsernameControlCharacter);
        }
        let starts_or_ends_with_space =
            name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace);
        if starts_or_ends_with_space {
            return Err(RuleError::UsernameSurroundingWhitespace);
        }
        Ok(Username(name))
    }

    /// The name as entered, in NFC.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive identity used for uniqueness: `NFC(lowercase(NFC(name)))`.
    ///
    /// This is Unicode *lowercasing* ([`str::to_lowercase`], the default `Lowercase_Mapping`),
    /// **not** full case folding: "Max", "MAX" and "max" are the same user, as are "Jürgen"
    /// and "JÜRGEN" and "ẞ"/"ß", but "STRASSE" and "straße" are different users (full case
    /// folding would map "ß" to "ss"). The result is not necessarily a valid [`Username`]
    /// itself (lowercasing "İ" yields two characters, so it may exceed the length limit).
    pub fn folded(&self) -> String {
        fold(&self.0)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `NFC(lowercase(NFC(s)))`.
fn fold(s: &str) -> String {
    let nfc: String = s.nfc().collect();
    nfc.to_lowercase().nfc().collect()
}

/// Like [`fold`], for secrets: every intermediate copy is wiped when dropped.
fn fold_secret(secret: &str) -> Zeroizing<String> {
    let nfc = Zeroizing::new(secret.nfc().collect::<String>());
    let lower = Zeroizing::new(nfc.to_lowercase());
    Zeroizing::new(lower.nfc().collect::<String>())
}

/// Characters a user name must not contain anywhere (see the module documentation).
fn is_forbidden_in_username(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // line and paragraph separators (Zl, Zp)
            '\u{2028}' | '\u{2029}'
            // invisible characters that make different names look identical
            | '\u{00AD}' | '\u{180E}' | '\u{200B}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            // bidirectional controls ("Trojan Source")
            | '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
        )
}

/// Checks a new password for `username`.
///
/// Rules, checked in this order: at most [`PASSWORD_MAX_BYTES`] bytes (UTF-8); at least
/// [`PASSWORD_MIN_CHARS`] characters (Unicode scalar values, as typed); its folded form (see
/// [`Username::folded`]) differs from the user name's folded form; its folded (NFC,
/// lowercased) form is not on the shipped common-password list.
///
/// The password is never copied into the error; temporary copies are zeroised.
pub fn check_password(password: &str, username: &Username) -> Result<(), RuleError> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(RuleError::PasswordTooLong {
            max: PASSWORD_MAX_BYTES,
        });
    }
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(RuleError::PasswordTooShort {
            min: PASSWORD_MIN_CHARS,
        });
    }
    let folded = fold_secret(password);
    if *folded == username.folded() {
        return Err(RuleError::PasswordEqualsUsername);
    }
    if COMMON_PASSWORDS.contains(folded.as_str()) {
        return Err(RuleError::PasswordTooCommon);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use unicode_normalization::is_nfc;

    fn name(raw: &str) -> Username {
        Username::parse(raw).unwrap()
    }

    #[test]
    fn accepts_valid_user_names() {
        let x64 = "x".repeat(64);
        let u64_nfc = "ü".repeat(64);
        let cases: &[(&str, &str)] = &[
            ("a", "a"),
            ("Max", "Max"),
            ("Max Mustermann", "Max Mustermann"),
            ("Jürgen", "Jürgen"),
            ("Ängste Öztürk-Weiß", "Ängste Öztürk-Weiß"),
            ("Ju\u{308}rgen", "Jürgen"), // NFD in, NFC out
            ("😀", "😀"),
            (
                "Familie 👨\u{200D}👩\u{200D}👧",
                "Familie 👨\u{200D}👩\u{200D}👧",
            ), // ZWJ allowed
            ("❤\u{FE0F}", "❤\u{FE0F}"), // variation selector allowed
            ("山田太郎", "山田太郎"),
            ("김철수", "김철수"),
            ("\u{1100}\u{1161}\u{11A8}", "각"), // conjoining jamo compose
            ("\u{2126}", "\u{03A9}"),           // OHM SIGN -> GREEK CAPITAL OMEGA
            ("Max\u{A0}Mustermann", "Max\u{A0}Mustermann"), // inner whitespace is fine
            ("O'Brien (Büro)", "O'Brien (Büro)"),
            (&x64, &x64),
            (&u64_nfc, &u64_nfc),
        ];
        for (raw, expected) in cases {
            let parsed = Username::parse(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(parsed.as_str(), *expected, "{raw:?}");
            assert_eq!(parsed.to_string(), *expected, "Display of {raw:?}");
        }
    }

    #[test]
    fn counts_characters_after_nfc() {
        // 64 "ü" written decomposed: 128 chars before NFC, 64 after.
        let nfd = "u\u{308}".repeat(64);
        assert_eq!(nfd.chars().count(), 128);
        let parsed = name(&nfd);
        assert_eq!(parsed.as_str(), "ü".repeat(64));
        assert_eq!(parsed.as_str().chars().count(), USERNAME_MAX_CHARS);
        // 65 of them are one too many.
        assert_eq!(
            Username::parse(&"u\u{308}".repeat(65)),
            Err(RuleError::UsernameTooLong { max: 64 })
        );
        // Multi-byte characters count once: 64 emoji (256 bytes) are fine.
        assert!(Username::parse(&"😀".repeat(64)).is_ok());
    }

    #[test]
    fn rejects_invalid_user_names() {
        use RuleError::*;
        let x65 = "x".repeat(65);
        let big = "y".repeat(100_000);
        let cases: &[(&str, RuleError)] = &[
            ("", UsernameEmpty),
            (&x65, UsernameTooLong { max: 64 }),
            (&big, UsernameTooLong { max: 64 }),
            ("Max\tMustermann", UsernameControlCharacter),
            ("Max\n", UsernameControlCharacter),
            ("\nMax", UsernameControlCharacter), // control beats surrounding whitespace
            ("Max\r\nMuster", UsernameControlCharacter),
            ("Max\u{7F}", UsernameControlCharacter), // DEL
            ("Max\u{0}", UsernameControlCharacter),  // NUL
            ("Max\u{1B}[31m", UsernameControlCharacter), // ESC
            ("Max\u{85}", UsernameControlCharacter), // NEL (C1)
            ("Max\u{9B}", UsernameControlCharacter), // CSI (C1)
            ("Max\u{2028}Muster", UsernameControlCharacter), // LINE SEPARATOR
            ("Max\u{2029}Muster", UsernameControlCharacter), // PARAGRAPH SEPARATOR
            ("Max\u{200B}", UsernameControlCharacter), // ZERO WIDTH SPACE
            ("\u{200B}", UsernameControlCharacter),
            ("Ma\u{AD}x", UsernameControlCharacter), // SOFT HYPHEN
            ("\u{FEFF}Max", UsernameControlCharacter), // BOM
            ("Max\u{2060}", UsernameControlCharacter), // WORD JOINER
            ("Max\u{202E}nimda", UsernameControlCharacter), // RIGHT-TO-LEFT OVERRIDE
            ("Max\u{2066}", UsernameControlCharacter), // LEFT-TO-RIGHT ISOLATE
            ("Max\u{200F}", UsernameControlCharacter), // RIGHT-TO-LEFT MARK
            (" Max", UsernameSurroundingWhitespace),
            ("Max ", UsernameSurroundingWhitespace),
            (" ", UsernameSurroundingWhitespace),
            ("   ", UsernameSurroundingWhitespace),
            ("\u{A0}Max", UsernameSurroundingWhitespace), // NO-BREAK SPACE
            ("Max\u{3000}", UsernameSurroundingWhitespace), // IDEOGRAPHIC SPACE
            ("Max\u{2003}", UsernameSurroundingWhitespace), // EM SPACE
        ];
        for (raw, expected) in cases {
            let shown: String = raw.chars().take(20).collect();
            assert_eq!(Username::parse(raw).as_ref(), Err(expected), "{shown:?}");
            assert_eq!(expected.reason(), "USERNAME_INVALID");
        }
    }

    #[test]
    fn folding_is_case_insensitive_and_normalised() {
        let same = [
            ("Max", "MAX"),
            ("Max", "max"),
            ("MAX", "max"),
            ("Jürgen", "JÜRGEN"),
            ("Jürgen", "jürgen"),
            ("Ju\u{308}rgen", "Jürgen"), // NFD vs NFC
            ("JU\u{308}RGEN", "jürgen"), // NFD upper vs NFC lower
            ("u\u{308}", "ü"),
            ("\u{1E9E}", "ß"), // capital sharp s lowercases to ß
            ("Max Mustermann", "mAX mUSTERMANN"),
            ("ÅSA", "\u{212B}sa"), // ANGSTROM SIGN normalises to Å
        ];
        for (a, b) in same {
            assert_eq!(name(a).folded(), name(b).folded(), "{a:?} vs {b:?}");
        }
        assert_eq!(name("Ju\u{308}rgen").folded(), "jürgen");
        assert_eq!(name("JÜRGEN").folded(), "jürgen");

        // Lowercasing, not full case folding: these stay different identities.
        let different = [("STRASSE", "straße"), ("Max", "Maxi"), ("Jürgen", "Jurgen")];
        for (a, b) in different {
            assert_ne!(name(a).folded(), name(b).folded(), "{a:?} vs {b:?}");
        }
        // The folded form keeps the original untouched.
        let jurgen = name("JÜRGEN");
        let _ = jurgen.folded();
        assert_eq!(jurgen.as_str(), "JÜRGEN");
    }

    #[test]
    fn accepts_good_passwords() {
        let user = name("Max Mustermann");
        let max_ascii = "a".repeat(PASSWORD_MAX_BYTES);
        let max_umlaut = "ä".repeat(PASSWORD_MAX_BYTES / 2); // exactly 1024 bytes
        let good = [
            "korrekt Pferd Batterie Heftklammer",
            "Tr0ub4dor&3x",
            "ääääääääää", // 10 chars, 20 bytes
            "😀😀😀😀😀😀😀😀😀😀",
            "日本語のパスワード です",
            "max mustermann!", // contains the name but is not the name
            "1234567890x7",
            max_ascii.as_str(),
            max_umlaut.as_str(),
        ];
        for pw in good {
            assert_eq!(check_password(pw, &user), Ok(()), "{pw:?}");
        }
    }

    #[test]
    fn rejects_bad_passwords() {
        use RuleError::*;
        let too_long_ascii = "a".repeat(PASSWORD_MAX_BYTES + 1);
        let too_long_umlaut = "ä".repeat(PASSWORD_MAX_BYTES / 2 + 1); // 513 chars, 1026 bytes
        let huge = "b".repeat(1_000_000);
        let user = name("Maximilian Muster");
        let cases: &[(&str, &Username, RuleError)] = &[
            ("", &user, PasswordTooShort { min: 10 }),
            ("short", &user, PasswordTooShort { min: 10 }),
            ("123456789", &user, PasswordTooShort { min: 10 }),
            ("äääääääää", &user, PasswordTooShort { min: 10 }), // 9 chars, 18 bytes
            (
                "u\u{308}u\u{308}u\u{308}u\u{308}u",
                &user,
                PasswordTooShort { min: 10 },
            ), // 9 scalars
            (&too_long_ascii, &user, PasswordTooLong { max: 1024 }),
            (&too_long_umlaut, &user, PasswordTooLong { max: 1024 }),
            (&huge, &user, PasswordTooLong { max: 1024 }),
            ("Maximilian Muster", &user, PasswordEqualsUsername),
            ("maximilian muster", &user, PasswordEqualsUsername),
            ("MAXIMILIAN MUSTER", &user, PasswordEqualsUsername),
            ("passwort123", &user, PasswordTooCommon),
            ("Passwort123", &user, PasswordTooCommon),
            ("PASSWORT123", &user, PasswordTooCommon),
            ("qwertzuiop", &user, PasswordTooCommon),
            ("QWERTYUIOP", &user, PasswordTooCommon),
            ("1234567890", &user, PasswordTooCommon),
            ("IchLiebeDich", &user, PasswordTooCommon),
            ("Fußball123", &user, PasswordTooCommon),
            ("Mu\u{308}nchen123", &user, PasswordTooCommon), // NFD input
            ("Schalke04!", &user, PasswordTooCommon),
        ];
        for (pw, user, expected) in cases {
            let shown: String = pw.chars().take(20).collect();
            assert_eq!(
                check_password(pw, user).as_ref(),
                Err(expected),
                "{shown:?}"
            );
        }
    }

    #[test]
    fn password_equal_to_name_compares_folded_forms() {
        let jurgen = name("Jürgen Schmidt");
        for pw in [
            "jürgen schmidt",
            "JÜRGEN SCHMIDT",
            "JU\u{308}RGEN SCHMIDT",
            "Ju\u{308}rgen Schmidt",
        ] {
            assert_eq!(
                check_password(pw, &jurgen),
                Err(RuleError::PasswordEqualsUsername),
                "{pw:?}"
            );
        }
        // Equality with the name wins over the common-password list.
        let common_name = name("Passwort123");
        assert_eq!(
            check_password("passwort123", &common_name),
            Err(RuleError::PasswordEqualsUsername)
        );
        // Not equal: extra characters.
        assert_eq!(check_password("Jürgen Schmidt 1", &jurgen), Ok(()));
    }

    #[test]
    fn errors_never_contain_the_password() {
        let user = name("Jürgen Schmidt");
        let secrets = [
            "geheim",
            "passwort123",
            "jürgen schmidt",
            &"s3cr3t".repeat(200),
        ];
        for pw in secrets {
            let err = check_password(pw, &user).unwrap_err();
            let shown = format!("{err} {err:?} {}", err.reason());
            assert!(!shown.contains(pw), "{shown}");
        }
    }

    #[test]
    fn reasons_are_stable() {
        use RuleError::*;
        let table = [
            (UsernameEmpty, "USERNAME_INVALID"),
            (UsernameTooLong { max: 64 }, "USERNAME_INVALID"),
            (UsernameControlCharacter, "USERNAME_INVALID"),
            (UsernameSurroundingWhitespace, "USERNAME_INVALID"),
            (PasswordTooShort { min: 10 }, "PASSWORD_TOO_SHORT"),
            (PasswordTooLong { max: 1024 }, "PASSWORD_TOO_LONG"),
            (PasswordEqualsUsername, "PASSWORD_EQUALS_USERNAME"),
            (PasswordTooCommon, "PASSWORD_TOO_COMMON"),
        ];
        for (err, reason) in table {
            assert_eq!(err.reason(), reason, "{err:?}");
        }
    }

    #[test]
    fn error_messages_say_what_to_do() {
        assert_eq!(
            RuleError::PasswordTooShort {
                min: PASSWORD_MIN_CHARS
            }
            .to_string(),
            "the password must have at least 10 characters"
        );
        assert_eq!(
            RuleError::UsernameTooLong {
                max: USERNAME_MAX_CHARS
            }
            .to_string(),
            "the user name must have at most 64 characters"
        );
        assert_eq!(
            RuleError::PasswordTooLong {
                max: PASSWORD_MAX_BYTES
            }
            .to_string(),
            "the password must not be longer than 1024 bytes"
        );
    }

    #[test]
    fn common_password_list_is_well_formed() {
        let entries: Vec<&str> = common_password_entries().collect();
        assert!(entries.len() >= 300, "only {} entries", entries.len());
        let mut seen = HashSet::new();
        for entry in &entries {
            assert!(
                entry.chars().count() >= PASSWORD_MIN_CHARS,
                "{entry:?} is shorter than {PASSWORD_MIN_CHARS} characters"
            );
            assert!(entry.len() <= PASSWORD_MAX_BYTES, "{entry:?}");
            assert_eq!(*entry, entry.to_lowercase(), "{entry:?} is not lowercase");
            assert!(is_nfc(entry), "{entry:?} is not NFC");
            assert_eq!(fold(entry), *entry, "{entry:?} is not in folded form");
            assert!(seen.insert(*entry), "{entry:?} is listed twice");
        }
        assert_eq!(COMMON_PASSWORDS.len(), entries.len());
        // Typical German and keyboard-walk entries are present.
        for must in [
            "passwort123",
            "hallo12345",
            "ichliebedich",
            "fussball123",
            "schalke04!",
            "qwertzuiop",
            "qwertyuiop",
            "1234567890",
            "asdfghjkl1",
        ] {
            assert!(COMMON_PASSWORDS.contains(must), "{must:?} missing");
        }
    }

    /// Arbitrary strings, plus strings from an alphabet full of edge cases (combining marks,
    /// case pairs that change length, whitespace, controls, invisible characters).
    fn tricky_string(max_len: usize) -> impl Strategy<Value = String> {
        let alphabet = vec![
            'a', 'M', 'x', 'ü', 'Ü', 'u', 'U', '\u{308}', '\u{301}', 'e', 'İ', 'ı', 'ß', 'ẞ', 'Σ',
            'σ', 'ς', 'Ω', '\u{2126}', '\u{212A}', '\u{212B}', '\u{1100}', '\u{1161}', '\u{11A8}',
            ' ', '\u{A0}', '\u{3000}', '\t', '\n', '\u{7F}', '\u{85}', '\u{2028}', '\u{200B}',
            '\u{200D}', '\u{FEFF}', '\u{202E}', '😀', '山', 'ǅ', 'ﬀ', '\u{0345}', 'ΐ',
        ];
        prop_oneof![
            proptest::collection::vec(any::<char>(), 0..=max_len)
                .prop_map(|v| v.into_iter().collect::<String>()),
            proptest::collection::vec(proptest::sample::select(alphabet), 0..=max_len)
                .prop_map(|v| v.into_iter().collect::<String>()),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics(raw in tricky_string(150)) {
            let _ = Username::parse(&raw);
        }

        #[test]
        fn accepted_names_satisfy_the_rules(raw in tricky_string(100)) {
            if let Ok(parsed) = Username::parse(&raw) {
                let s = parsed.as_str();
                let chars = s.chars().count();
                prop_assert!((1..=USERNAME_MAX_CHARS).contains(&chars));
                prop_assert!(is_nfc(s));
                prop_assert!(!s.chars().any(is_forbidden_in_username));
                prop_assert!(!s.starts_with(char::is_whitespace));
                prop_assert!(!s.ends_with(char::is_whitespace));
                prop_assert_eq!(s.to_owned(), raw.nfc().collect::<String>());
            }
        }

        #[test]
        fn parse_round_trips(raw in tricky_string(100)) {
            if let Ok(parsed) = Username::parse(&raw) {
                prop_assert_eq!(Username::parse(parsed.as_str()), Ok(parsed.clone()));
                prop_assert_eq!(Username::parse(&parsed.to_string()), Ok(parsed));
            }
        }

        #[test]
        fn folding_is_idempotent(raw in tricky_string(100)) {
            if let Ok(parsed) = Username::parse(&raw) {
                let folded = parsed.folded();
                prop_assert!(is_nfc(&folded));
                prop_assert_eq!(fold(&folded), folded.clone());
                // A folded name is usually a valid name again (not always: "İ" doubles in
                // length); when it is, folding it changes nothing.
                if let Ok(again) = Username::parse(&folded) {
                    prop_assert_eq!(again.folded(), folded);
                }
            }
        }

        #[test]
        fn case_variants_fold_alike(raw in "[a-zA-ZäöüÄÖÜ ]{1,64}") {
            if let Ok(parsed) = Username::parse(&raw) {
                let upper = Username::parse(&raw.to_uppercase()).unwrap();
                let lower = Username::parse(&raw.to_lowercase()).unwrap();
                prop_assert_eq!(upper.folded(), parsed.folded());
                prop_assert_eq!(lower.folded(), parsed.folded());
            }
        }

        #[test]
        fn check_password_never_panics(
            pw in prop_oneof![tricky_string(40), tricky_string(1100)],
            user in tricky_string(64),
        ) {
            if let Ok(user) = Username::parse(&user) {
                let _ = check_password(&pw, &user);
            }
            let _ = check_password(&pw, &name("Max"));
        }

        #[test]
        fn check_password_follows_its_rules(
            pw in prop_oneof![tricky_string(12), tricky_string(30), "[a-zA-Z0-9!]{8,14}"],
            user in prop_oneof![tricky_string(12), "[a-zA-Z0-9!]{8,14}".prop_map(String::from)],
        ) {
            let Ok(user) = Username::parse(&user) else { return Ok(()) };
            let folded = fold(&pw);
            let expected = if pw.len() > PASSWORD_MAX_BYTES {
                Err(RuleError::PasswordTooLong { max: PASSWORD_MAX_BYTES })
            } else if pw.chars().count() < PASSWORD_MIN_CHARS {
                Err(RuleError::PasswordTooShort { min: PASSWORD_MIN_CHARS })
            } else if folded == user.folded() {
                Err(RuleError::PasswordEqualsUsername)
            } else if COMMON_PASSWORDS.contains(folded.as_str()) {
                Err(RuleError::PasswordTooCommon)
            } else {
                Ok(())
            };
            prop_assert_eq!(check_password(&pw, &user), expected);
            // The name itself (when long enough) is never an acceptable password.
            if user.as_str().chars().count() >= PASSWORD_MIN_CHARS {
                prop_assert_eq!(
                    check_password(user.as_str(), &user),
                    Err(RuleError::PasswordEqualsUsername)
                );
                let upper = user.as_str().to_uppercase();
                if upper.len() <= PASSWORD_MAX_BYTES && fold(&upper) == user.folded() {
                    prop_assert_eq!(
                        check_password(&upper, &user),
                        Err(RuleError::PasswordEqualsUsername)
                    );
                }
            }
        }
    }
}
