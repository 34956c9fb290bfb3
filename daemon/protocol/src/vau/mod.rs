//! The VAU channel (gemSpec_Krypt ch. 7; our digest: epa-protocol.md §2): a handshake (M1–M4)
//! into the record system's trusted environment, then AES-256-GCM application messages.
//!
//! Both roles live here and share one key schedule ([`keys`]) and one set of codecs
//! ([`messages`]), so the client and the sandbox cannot drift apart without the known-answer
//! tests against gematik's recorded trace noticing.

mod cbor;
pub mod channel;
mod error;
pub mod handshake;
pub mod keys;
pub mod messages;

pub use channel::{ClientChannel, Direction, Environment, Header, ResponseKind, ServerChannel};
pub use error::VauError;
pub use handshake::{
    ClientAwaitingCert, ClientAwaitingM4, ClientHandshake, ServerAwaitingM3, VauServerKeys,
};
