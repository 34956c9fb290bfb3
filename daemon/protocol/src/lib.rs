//! ePA 3 wire protocols. Filled by the protocol issue; empty on purpose for now.
#![forbid(unsafe_code)]
