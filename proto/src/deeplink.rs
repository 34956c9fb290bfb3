//! The strict parser for the URLs the browser hands back through the OS URL handler:
//! `epa-desktop://auth/callback?code=…&state=…` (or the OAuth error form
//! `?error=…&error_description=…&state=…`). Anything else is refused with the reason, so a
//! crafted link can neither smuggle parameters nor reach another part of the app.

use zeroize::Zeroizing;

pub const SCHEME: &str = "epa-desktop";
/// The redirect URI registered with the IDPs.
pub const AUTH_CALLBACK: &str = "epa-desktop://auth/callback";

/// Longest URL accepted at all (the authorization code may have 2000 characters).
const MAX_URL: usize = 4096;
const MAX_CODE: usize = 2000;
const MAX_STATE: usize = 512;
const MAX_ERROR: usize = 256;
const MAX_DESCRIPTION: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeepLinkError {
    #[error("the link is longer than {MAX_URL} characters")]
    TooLong,
    #[error("the link is not an epa-desktop:// link")]
    Scheme,
    #[error("the link does not point to the login callback (epa-desktop://auth/callback)")]
    Target,
    #[error("the link contains a fragment, user name or port, which a login callback never has")]
    ExtraParts,
    #[error("parameter {0} is not allowed in a login callback")]
    UnknownParameter(String),
    #[error("parameter {0} appears more than once")]
    Duplicate(&'static str),
    #[error("parameter {0} is missing")]
    Missing(&'static str),
    #[error("parameter {0} is malformed")]
    Malformed(&'static str),
}

impl DeepLinkError {
    /// What is wrong, for people (never repeating the link itself: it may carry a code).
    pub fn describe(&self, lang: crate::i18n::Lang) -> String {
        use crate::i18n::Lang;
        let text = match lang {
            Lang::En => self.to_string(),
            Lang::De => match self {
                DeepLinkError::TooLong => "der Link ist zu lang".to_owned(),
                DeepLinkError::Scheme => "kein epa-desktop://-Link".to_owned(),
                DeepLinkError::Target => {
                    "der Link führt nicht zur Anmelde-Rückkehr (epa-desktop://auth/callback)"
                        .to_owned()
                }
                DeepLinkError::ExtraParts => {
                    "der Link enthält Fragment, Benutzername oder Port".to_owned()
                }
                DeepLinkError::UnknownParameter(p) => format!("unzulässiger Parameter „{p}“"),
                DeepLinkError::Duplicate(p) => format!("Parameter „{p}“ kommt mehrfach vor"),
                DeepLinkError::Missing(p) => format!("Parameter „{p}“ fehlt"),
                DeepLinkError::Malformed(p) => format!("Parameter „{p}“ ist fehlerhaft"),
            },
        };
        // A parameter name comes from outside: no control characters reach a terminal.
        text.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    }
}

/// A one-time authorization code: a credential for a few seconds. No Debug, no Clone.
pub struct AuthorizationCode(Zeroizing<String>);

impl AuthorizationCode {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What a valid callback says.
pub enum AuthCallback {
    /// The IDP authenticated the user; the code goes to `send_authcode_fdv`.
    Code {
        code: AuthorizationCode,
        state: String,
    },
    /// The IDP (or the user) ended the login: OAuth `error` and its description.
    Error {
        error: String,
        description: Option<String>,
        state: Option<String>,
    },
}

impl AuthCallback {
    pub fn state(&self) -> Option<&str> {
        match self {
            Self::Code { state, .. } => Some(state),
            Self::Error { state, .. } => state.as_deref(),
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes a query value (`+` is a space, as in form encoding); `None` when an escape
/// is broken or the result is not UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = b.get(i + 1).copied().and_then(hex)?;
                let lo = b.get(i + 2).copied().and_then(hex)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A parameter value: decoded, non-empty, at most `max` characters, no control characters.
fn decode(raw: &str, name: &'static str, max: usize) -> Result<String, DeepLinkError> {
    let s = percent_decode(raw).ok_or(DeepLinkError::Malformed(name))?;
    if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(DeepLinkError::Malformed(name));
    }
    Ok(s)
}

/// Codes and states are URL-safe tokens; anything else in them is an attack or a bug.
fn is_token(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Parses a callback URL; only `epa-desktop://auth/callback` with `code`+`state` or
/// `error`(+`error_description`)(+`state`) passes.
pub fn parse_auth_callback(url: &str) -> Result<AuthCallback, DeepLinkError> {
    if url.len() > MAX_URL {
        return Err(DeepLinkError::TooLong);
    }
    let (scheme, rest) = url.split_once("://").ok_or(DeepLinkError::Scheme)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(DeepLinkError::Scheme);
    }
    if rest.contains('#') {
        return Err(DeepLinkError::ExtraParts);
    }
    let (target, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = target.split_once('/').unwrap_or((target, ""));
    if authority.contains('@') || authority.contains(':') {
        return Err(DeepLinkError::ExtraParts);
    }
    // Host names are case-insensitive, paths are not.
    if !authority.eq_ignore_ascii_case("auth") || path != "callback" {
        return Err(DeepLinkError::Target);
    }
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (slot, key, max): (&mut Option<String>, &'static str, usize) = match name {
            "code" => (&mut code, "code", MAX_CODE),
            "state" => (&mut state, "state", MAX_STATE),
            "error" => (&mut error, "error", MAX_ERROR),
            "error_description" => (&mut description, "error_description", MAX_DESCRIPTION),
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(DeepLinkError::UnknownParameter(shown));
            }
        };
        if slot.is_some() {
            return Err(DeepLinkError::Duplicate(key));
        }
        *slot = Some(decode(value, key, max)?);
    }
    if state.as_deref().is_some_and(|s| !is_token(s)) {
        return Err(DeepLinkError::Malformed("state"));
    }
    match (code, error) {
        (Some(_), Some(_)) => Err(DeepLinkError::Malformed("error")),
        (Some(code), None) => {
            let code = Zeroizing::new(code);
            if !is_token(&code) {
                return Err(DeepLinkError::Malformed("code"));
            }
            if description.is_some() {
                return Err(DeepLinkError::UnknownParameter("error_description".into()));
            }
            Ok(AuthCallback::Code {
                code: AuthorizationCode(code),
                state: state.ok_or(DeepLinkError::Missing("state"))?,
            })
        }
        (None, Some(error)) => {
            if !is_token(&error) {
                return Err(DeepLinkError::Malformed("error"));
            }
            Ok(AuthCallback::Error {
                error,
                description,
                state,
            })
        }
        (None, None) => Err(DeepLinkError::Missing("code")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn err(url: &str) -> DeepLinkError {
        match parse_auth_callback(url) {
            Ok(_) => panic!("accepted: {url}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_login_callback_yields_code_and_state() {
        let Ok(AuthCallback::Code { code, state }) =
            parse_auth_callback("epa-desktop://auth/callback?code=abc-123_X.y~&state=0af3")
        else {
            panic!("refused")
        };
        assert_eq!(code.expose(), "abc-123_X.y~");
        assert_eq!(state, "0af3");
        // Parameter order and scheme/host case do not matter.
        assert!(parse_auth_callback("EPA-Desktop://AUTH/callback?state=s&code=c").is_ok());
    }

    #[test]
    fn an_idp_error_is_reported() {
        let Ok(AuthCallback::Error {
            error,
            description,
            state,
        }) = parse_auth_callback(
            "epa-desktop://auth/callback?error=access_denied&error_description=Vom+Nutzer%20abgebrochen&state=s1",
        )
        else {
            panic!("refused")
        };
        assert_eq!(error, "access_denied");
        assert_eq!(description.as_deref(), Some("Vom Nutzer abgebrochen"));
        assert_eq!(state.as_deref(), Some("s1"));
    }

    #[test]
    fn everything_else_is_refused_with_the_reason() {
        let table: &[(&str, DeepLinkError)] = &[
            (
                "https://auth/callback?code=a&state=b",
                DeepLinkError::Scheme,
            ),
            (
                "epa-desktop:auth/callback?code=a&state=b",
                DeepLinkError::Scheme,
            ),
            (
                "epa-desktop://other/callback?code=a&state=b",
                DeepLinkError::Target,
            ),
            (
                "epa-desktop://auth/Callback?code=a&state=b",
                DeepLinkError::Target,
            ),
            (
                "epa-desktop://auth/callback/x?code=a&state=b",
                DeepLinkError::Target,
            ),
            (
                "epa-desktop://auth/callback?code=a&state=b#f",
                DeepLinkError::ExtraParts,
            ),
            (
                "epa-desktop://u@auth/callback?code=a&state=b",
                DeepLinkError::ExtraParts,
            ),
            (
                "epa-desktop://auth:1/callback?code=a&state=b",
                DeepLinkError::ExtraParts,
            ),
            (
                "epa-desktop://auth/callback?code=a&state=b&redirect=x",
                DeepLinkError::UnknownParameter("redirect".into()),
            ),
            (
                "epa-desktop://auth/callback?code=a&code=b&state=c",
                DeepLinkError::Duplicate("code"),
            ),
            (
                "epa-desktop://auth/callback?code=a",
                DeepLinkError::Missing("state"),
            ),
            (
                "epa-desktop://auth/callback?state=a",
                DeepLinkError::Missing("code"),
            ),
            (
                "epa-desktop://auth/callback?code=&state=a",
                DeepLinkError::Malformed("code"),
            ),
            (
                "epa-desktop://auth/callback?code=a%2&state=b",
                DeepLinkError::Malformed("code"),
            ),
            (
                "epa-desktop://auth/callback?code=a%0Ab&state=b",
                DeepLinkError::Malformed("code"),
            ),
            (
                "epa-desktop://auth/callback?code=a%20b&state=b",
                DeepLinkError::Malformed("code"),
            ),
            (
                "epa-desktop://auth/callback?code=%FF&state=b",
                DeepLinkError::Malformed("code"),
            ),
            (
                "epa-desktop://auth/callback?code=a&state=%3Cx%3E",
                DeepLinkError::Malformed("state"),
            ),
            (
                "epa-desktop://auth/callback?code=a&error=x&state=b",
                DeepLinkError::Malformed("error"),
            ),
        ];
        for (url, want) in table {
            assert_eq!(&err(url), want, "{url}");
        }
        let long = format!(
            "epa-desktop://auth/callback?code={}&state=s",
            "a".repeat(2001)
        );
        assert_eq!(err(&long), DeepLinkError::Malformed("code"));
        assert_eq!(err(&"x".repeat(5000)), DeepLinkError::TooLong);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(url in ".{0,300}") {
            let _ = parse_auth_callback(&url);
        }

        #[test]
        fn valid_tokens_round_trip(code in "[A-Za-z0-9._~-]{1,300}", state in "[A-Za-z0-9._~-]{1,100}") {
            let url = format!("{AUTH_CALLBACK}?code={code}&state={state}");
            let Ok(AuthCallback::Code { code: c, state: s }) = parse_auth_callback(&url) else {
                panic!("refused {url}");
            };
            proptest::prop_assert_eq!(c.expose(), code.as_str());
            proptest::prop_assert_eq!(s, state);
        }
    }
}
