//! epa-sandbox: a local ePA 3 environment that speaks gematik's protocols (epa-protocol.md §10).
#![forbid(unsafe_code)]

pub mod aktensystem;
pub mod audit;
pub mod authz;
pub mod clock;
pub mod constraints;
pub mod control;
pub mod devices;
pub mod email;
pub mod idp;
pub mod info;
pub mod mail;
pub mod persist;
pub mod seed;
pub mod server;
pub mod services;
pub mod tls;
pub mod xds;
