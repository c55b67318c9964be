//! limits capability.

pub mod manifest;
