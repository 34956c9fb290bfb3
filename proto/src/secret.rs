//! Secrets a client handles: the local-session token and passwords on their way to the daemon.
//! No Debug, Clone or Serialize; wiped from memory on drop.

use zeroize::Zeroizing;

/// Metadata header carrying the local-session token.
pub const SESSION_HEADER: &str = "epa-session-token";

/// A local-session token returned by `Unlock`.
pub struct SessionToken(Zeroizing<String>);

impl SessionToken {
    pub fn new(token: String) -> Self {
        Self(Zeroizing::new(token))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A password typed by the user.
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(password: String) -> Self {
        Self(Zeroizing::new(password))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}
