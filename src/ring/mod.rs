//! The consistent-hashing ring (stub: being written).

pub mod token;

pub use token::{Token, TokenRange, key_token};
