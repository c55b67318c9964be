//! The one integration test binary: a module per capability, linked once.

mod manifest;
