//! env capability.

pub mod manifest;
