//! ePA 3 wire protocols: the VAU channel (both roles), inner HTTP/1.1, KVNR, `x-useragent`.
//! No IPC, no storage, no async runtime in the crypto core; all randomness is injected.
#![forbid(unsafe_code)]

pub mod http;
pub mod kvnr;
pub mod kyber;
pub mod pki;
pub mod rest;
pub mod useragent;
pub mod vau;
pub mod xds;

/// The RNG every randomised operation takes, so tests can be deterministic.
pub use rand_core::CryptoRng;
