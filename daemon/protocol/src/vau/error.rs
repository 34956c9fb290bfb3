//! Everything that can go wrong in the VAU protocol, each with the outer HTTP status a server
//! answers with (epa-protocol.md §2.11).

use crate::kyber::KyberError;
use crate::pki::PkiError;

#[derive(Debug, thiserror::Error)]
pub enum VauError {
    #[error("CBOR decoding failed: {0}")]
    Cbor(String),
    #[error("expected message {expected}, got {got:?}")]
    UnexpectedMessage { expected: &'static str, got: String },
    #[error("field {0} is missing")]
    MissingField(&'static str),
    #[error("field {field}: {problem}")]
    BadField {
        field: &'static str,
        problem: String,
    },
    #[error("invalid P-256 point in {0}")]
    BadPoint(&'static str),
    #[error(transparent)]
    Kyber(#[from] KyberError),
    #[error("AEAD authentication failed for {0}")]
    Aead(&'static str),
    #[error("key confirmation mismatch in {0}: the peers saw different handshake bytes")]
    KeyConfirmation(&'static str),
    #[error("server certificate: {0}")]
    Pki(#[from] PkiError),
    #[error("the server's VAU keys expired at {exp} (now {now})")]
    KeysExpired { exp: u64, now: u64 },
    #[error("the server's VAU keys claim a lifetime of {0} s, more than the 30 days allowed")]
    KeyLifetimeTooLong(u64),
    #[error("encrypted message too short ({0} bytes)")]
    TooShort(usize),
    #[error("unsupported VAU message version {0}")]
    Version(u8),
    #[error(
        "PU flag {got} does not match this environment ({expected}): production and test traffic must not mix"
    )]
    PuMismatch { expected: u8, got: u8 },
    #[error("wrong direction byte {0}")]
    Direction(u8),
    #[error("unknown KeyID")]
    UnknownKeyId,
    #[error("response counter {got} does not answer request {expected}")]
    CounterMismatch { expected: u64, got: u64 },
    #[error("request counter {got} is not above {highest}: replay rejected")]
    Replay { got: u64, highest: u64 },
    #[error("the request counter is exhausted; open a new channel")]
    CounterExhausted,
    #[error("the server lost the channel (Restart): handshake and log in again")]
    Restart,
    #[error("VAU error {code} from the server: {message}")]
    Server { code: i64, message: String },
}

impl VauError {
    /// The outer HTTP status a VAU server answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            VauError::Aead(_)
            | VauError::KeyConfirmation(_)
            | VauError::PuMismatch { .. }
            | VauError::Direction(_)
            | VauError::UnknownKeyId
            | VauError::Replay { .. } => 403,
            VauError::Restart | VauError::Server { .. } | VauError::CounterExhausted => 500,
            _ => 400,
        }
    }
}
