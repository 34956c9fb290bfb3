//! `epa-ipc`: the only contract between `epad` and its clients.
//!
//! Clients use [`DaemonClient`] and the serde view types in [`types`]; the prost/tonic code in
//! [`pb`] is for the daemon's service implementations and for tests that must speak raw gRPC.
#![forbid(unsafe_code)]

pub mod autostart;
pub mod client;
pub mod deeplink;
pub mod error;
pub mod i18n;
pub mod present;
pub mod secret;
pub mod transport;
pub mod types;

pub use client::{DaemonClient, Download};
pub use error::{ClientError, ErrorCategory, Reason};
pub use secret::{Password, SessionToken};
pub use transport::Endpoint;

/// Version of the `epa.desktop.v1` API. Bumped on every incompatible change; client and daemon
/// must agree exactly.
pub const PROTOCOL_VERSION: u32 = 1;

/// Metadata header every client request carries, so the daemon can refuse mismatched clients
/// with a clear reason instead of a protobuf decode error.
pub const PROTOCOL_HEADER: &str = "epa-protocol-version";

/// Version of this crate, i.e. of the client using it.
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Generated prost/tonic code for `epa.desktop.v1`. Daemon-side and raw-protocol tests only.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used
)]
pub mod pb {
    tonic::include_proto!("epa.desktop.v1");
}
