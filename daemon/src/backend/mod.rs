//! The daemon's side of the ePA interfaces: HTTPS to an Aktensystem (trusting exactly the
//! configured CA) and the VAU channel on top of it. Everything a real Aktensystem would see comes
//! out of here; nothing here knows about local users or the vault.

pub mod environment;
pub mod info;
pub mod slot;
pub mod tls;
pub mod vau;

pub use vau::{VauClient, VauTarget};

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the configured CA certificate is unusable: {0}")]
    TrustAnchor(String),
    #[error("the Aktensystem at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the Aktensystem answered HTTP {status} on the VAU endpoint: {detail}")]
    Outer { status: u16, detail: String },
    #[error("VAU: {0}")]
    Vau(#[from] epa_protocol::vau::VauError),
    #[error("the Aktensystem's inner answer is not valid HTTP: {0}")]
    InnerHttp(#[from] epa_protocol::http::HttpError),
    #[error("the VAU channel is gone (server restart or expiry); a new one is needed")]
    ChannelLost,
    #[error("random number generator failed: {0}")]
    Random(String),
}

impl BackendError {
    /// Errors after which a fresh channel (and a new login) may succeed.
    pub fn needs_new_channel(&self) -> bool {
        matches!(
            self,
            Self::ChannelLost
                | Self::Vau(epa_protocol::vau::VauError::Restart)
                | Self::Outer {
                    status: 403 | 400,
                    ..
                }
        )
    }
}
