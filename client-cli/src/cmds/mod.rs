//! One module per noun.

pub mod daemon;
pub mod device;
pub mod docs;
pub mod epa;
pub mod login;
pub mod session;
pub mod status;
pub mod user;
