//! Warden runtime.
#![deny(missing_docs)]

pub mod manifest;
