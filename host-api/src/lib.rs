//! Host side of every import a Warden tool can call.
#![deny(missing_docs)]

pub mod env;
pub mod fs;
pub mod limits;
