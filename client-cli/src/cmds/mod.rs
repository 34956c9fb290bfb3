//! One module per noun.

pub mod completions;
pub mod daemon;
pub mod demo;
pub mod device;
pub mod docs;
pub mod epa;
pub mod login;
pub mod session;
pub mod status;
pub mod user;
