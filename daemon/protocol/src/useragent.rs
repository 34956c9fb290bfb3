//! The `x-useragent` header value required on every ePA call (outer and inner requests).
//!
//! ePA-Basic 3.0.1 `UserAgentType`: `^[a-zA-Z0-9]{20}\/[a-zA-Z0-9\-\.]{1,15}$` — a 20-character
//! alphanumeric ClientId (assigned by gematik at approval), `/`, and a version of 1–15 characters
//! from letters, digits, `-` and `.` (example `CLIENTID1234567890AB/2.1.12-45`).
//!
//! Newer interface versions relax the ClientId part to `[a-zA-Z0-9\-]{1,20}`; a client must emit
//! the strict 3.0.1 form, which is the only one this type accepts.

use std::fmt;
use std::str::FromStr;

/// Exact length of the ClientId part.
pub const CLIENT_ID_LEN: usize = 20;
/// Maximum length of the version part.
pub const MAX_VERSION_LEN: usize = 15;

const SHAPE: &str = "an x-useragent is a 20-character alphanumeric client id, '/', and a version \
                     of 1-15 letters, digits, '-' or '.' (e.g. CLIENTID1234567890AB/2.1.12-45)";

/// A validated `x-useragent` value: `<ClientId>/<version>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserAgent(String);

/// Why a string is not a valid `x-useragent` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserAgentError {
    /// There is no `/` separating client id and version.
    #[error("the user agent has no '/' between client id and version; {SHAPE}")]
    MissingSlash,
    /// The client id is not exactly 20 characters long.
    #[error("the client id has {len} characters instead of 20; {SHAPE}")]
    ClientIdLength {
        /// Length in characters.
        len: usize,
    },
    /// The client id contains a character other than `a-zA-Z0-9`.
    #[error("character {position} of the client id is {found:?}, not a letter or digit; {SHAPE}")]
    ClientIdChar {
        /// 1-based character position within the client id.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// The version is empty or longer than 15 characters.
    #[error("the version has {len} characters, allowed are 1 to 15; {SHAPE}")]
    VersionLength {
        /// Length in characters.
        len: usize,
    },
    /// The version contains a character other than `a-zA-Z0-9-.`.
    #[error(
        "character {position} of the version is {found:?}, allowed are letters, digits, '-' and \
         '.'; {SHAPE}"
    )]
    VersionChar {
        /// 1-based character position within the version.
        position: usize,
        /// The offending character.
        found: char,
    },
}

impl UserAgent {
    /// Validates a complete header value. No trimming: the value must match the pattern exactly.
    pub fn parse(value: &str) -> Result<UserAgent, UserAgentError> {
        let (client_id, version) = value.split_once('/').ok_or(UserAgentError::MissingSlash)?;
        validate_client_id(client_id)?;
        validate_version(version)?;
        Ok(UserAgent(value.to_owned()))
    }

    /// Builds `client_id/version` from its parts, validating both.
    pub fn new(client_id: &str, version: &str) -> Result<UserAgent, UserAgentError> {
        validate_client_id(client_id)?;
        validate_version(version)?;
        Ok(UserAgent(format!("{client_id}/{version}")))
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 20-character client id.
    pub fn client_id(&self) -> &str {
        self.0.get(..CLIENT_ID_LEN).unwrap_or_default()
    }

    /// The version part (after the `/`).
    pub fn version(&self) -> &str {
        self.0.get(CLIENT_ID_LEN + 1..).unwrap_or_default()
    }
}

fn validate_client_id(client_id: &str) -> Result<(), UserAgentError> {
    for (i, c) in client_id.chars().enumerate() {
        if !c.is_ascii_alphanumeric() {
            // A non-ASCII character also makes the length (in characters) questionable; report
            // the character, which is the more useful message.
            return Err(UserAgentError::ClientIdChar {
                position: i + 1,
                found: c,
            });
        }
    }
    // All ASCII from here, so bytes == characters.
    if client_id.len() != CLIENT_ID_LEN {
        return Err(UserAgentError::ClientIdLength {
            len: client_id.len(),
        });
    }
    Ok(())
}

fn validate_version(version: &str) -> Result<(), UserAgentError> {
    for (i, c) in version.chars().enumerate() {
        if !(c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            return Err(UserAgentError::VersionChar {
                position: i + 1,
                found: c,
            });
        }
    }
    if version.is_empty() || version.len() > MAX_VERSION_LEN {
        return Err(UserAgentError::VersionLength { len: version.len() });
    }
    Ok(())
}

impl fmt::Display for UserAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UserAgent {
    type Err = UserAgentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserAgent::parse(s)
    }
}

impl AsRef<str> for UserAgent {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for UserAgent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for UserAgent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = UserAgent;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an x-useragent string such as \"CLIENTID1234567890AB/2.1.12-45\"")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<UserAgent, E> {
                UserAgent::parse(v).map_err(E::custom)
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

    const ID: &str = "CLIENTID1234567890AB";

    /// Independent, literal transcription of the OpenAPI pattern, for the property test.
    fn matches_pattern(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() >= 22
            && b.len() <= 36
            && b[..20].iter().all(u8::is_ascii_alphanumeric)
            && b[20] == b'/'
            && b[21..]
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
    }

    #[test]
    fn spec_example() {
        let ua = UserAgent::parse("CLIENTID1234567890AB/2.1.12-45").unwrap();
        assert_eq!(ua.client_id(), ID);
        assert_eq!(ua.version(), "2.1.12-45");
        assert_eq!(ua.to_string(), "CLIENTID1234567890AB/2.1.12-45");
        assert_eq!(UserAgent::new(ID, "2.1.12-45"), Ok(ua.clone()));
        assert_eq!(
            "CLIENTID1234567890AB/2.1.12-45".parse::<UserAgent>(),
            Ok(ua.clone())
        );
        assert_eq!(
            serde_json::to_string(&ua).unwrap(),
            "\"CLIENTID1234567890AB/2.1.12-45\""
        );
        assert_eq!(
            serde_json::from_str::<UserAgent>("\"CLIENTID1234567890AB/2.1.12-45\"").unwrap(),
            ua
        );
        assert!(serde_json::from_str::<UserAgent>("\"x/1\"").is_err());
    }

    #[test]
    fn table() {
        use UserAgentError::*;
        let v15 = "1.2.3-4.5.6-7.8";
        let v16 = "1.2.3-4.5.6-7.89";
        let id19 = &ID[..19];
        let id21 = format!("{ID}C");
        let s = |x: &str| x.to_string();
        #[rustfmt::skip]
        let cases: Vec<(String, Result<(), UserAgentError>)> = vec![
            (format!("{ID}/1"), Ok(())),
            (format!("{ID}/{v15}"), Ok(())),
            (format!("{ID}/a-b.C"), Ok(())),
            (format!("{ID}/-"), Ok(())),
            (format!("{ID}/..."), Ok(())),
            (s("abcdefghijklmnopqrst/0"), Ok(())),
            (s("01234567890123456789/0"), Ok(())),
            (format!("{ID}/{v16}"), Err(VersionLength { len: 16 })),
            (format!("{ID}/"), Err(VersionLength { len: 0 })),
            (format!("{id19}/1.0"), Err(ClientIdLength { len: 19 })),
            (format!("{id21}/1.0"), Err(ClientIdLength { len: 21 })),
            (s("/1.0"), Err(ClientIdLength { len: 0 })),
            (s(ID), Err(MissingSlash)),
            (String::new(), Err(MissingSlash)),
            (format!("{ID}1.0"), Err(MissingSlash)),
            (s("CLIENTID-234567890AB/1.0"), Err(ClientIdChar { position: 9, found: '-' })),
            (s("CLIENTID_234567890AB/1.0"), Err(ClientIdChar { position: 9, found: '_' })),
            (s("ÄLIENTID1234567890AB/1.0"), Err(ClientIdChar { position: 1, found: 'Ä' })),
            (format!(" {ID}/1.0"), Err(ClientIdChar { position: 1, found: ' ' })),
            (format!("{ID}/1.0 "), Err(VersionChar { position: 4, found: ' ' })),
            (format!("{ID}/1/0"), Err(VersionChar { position: 2, found: '/' })),
            (format!("{ID}/1_0"), Err(VersionChar { position: 2, found: '_' })),
            (format!("{ID}/1.0\r\n"), Err(VersionChar { position: 4, found: '\r' })),
            (format!("{ID}/1.ü"), Err(VersionChar { position: 3, found: 'ü' })),
        ];
        for (input, want) in cases {
            let got = UserAgent::parse(&input);
            assert_eq!(
                got.as_ref().map(|_| ()),
                want.as_ref().map(|_| ()),
                "{input:?}"
            );
            if let Ok(ua) = got {
                assert_eq!(ua.as_str(), input);
                assert!(matches_pattern(&input));
            }
        }
    }

    #[test]
    fn new_validates_parts() {
        assert_eq!(
            UserAgent::new(ID, ""),
            Err(UserAgentError::VersionLength { len: 0 })
        );
        assert_eq!(
            UserAgent::new("short", "1.0"),
            Err(UserAgentError::ClientIdLength { len: 5 })
        );
        assert_eq!(
            UserAgent::new(ID, "1/2"),
            Err(UserAgentError::VersionChar {
                position: 2,
                found: '/'
            })
        );
        assert_eq!(
            UserAgent::new("CLIENTID1234567890A/", "1"),
            Err(UserAgentError::ClientIdChar {
                position: 20,
                found: '/'
            })
        );
    }

    #[test]
    fn error_messages_describe_the_format() {
        for input in [
            "",
            "x/1",
            "CLIENTID1234567890AB/",
            "CLIENTID1234567890AB/1_0",
        ] {
            let msg = UserAgent::parse(input)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains("20-character alphanumeric client id"), "{msg}");
        }
    }

    proptest! {
        #[test]
        fn accepted_values_match_the_pattern(s in "[a-zA-Z0-9./_ -]{0,40}") {
            let accepted = UserAgent::parse(&s).is_ok();
            prop_assert_eq!(accepted, matches_pattern(&s), "{:?}", s);
        }

        #[test]
        fn near_valid_values_match_the_pattern(
            id in "[a-zA-Z0-9_-]{19,21}",
            sep in "[/:]",
            version in "[a-zA-Z0-9./ -]{0,17}",
        ) {
            let s = format!("{id}{sep}{version}");
            let accepted = UserAgent::parse(&s).is_ok();
            prop_assert_eq!(accepted, matches_pattern(&s), "{:?}", s);
        }

        #[test]
        fn valid_values_round_trip(id in "[a-zA-Z0-9]{20}", version in "[a-zA-Z0-9.-]{1,15}") {
            let ua = UserAgent::new(&id, &version).unwrap();
            prop_assert_eq!(ua.client_id(), id.as_str());
            prop_assert_eq!(ua.version(), version.as_str());
            prop_assert_eq!(UserAgent::parse(ua.as_str()), Ok(ua.clone()));
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            if UserAgent::parse(&s).is_ok() {
                prop_assert!(matches_pattern(&s));
            }
        }
    }
}
