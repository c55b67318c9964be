//! fs capability.

pub mod manifest;
