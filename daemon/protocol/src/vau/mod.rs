//! The VAU channel (being written)
