//! One module per noun.

pub mod daemon;
pub mod status;
pub mod user;
