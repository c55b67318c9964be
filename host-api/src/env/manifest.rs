//! The manifest section of this capability.
