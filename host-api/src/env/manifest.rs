//! The `[env]` manifest section (placeholder until the manifest work lands).

use std::collections::BTreeMap;

/// Environment variables a tool may see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSection {
    /// Literal values.
    pub vars: BTreeMap<String, String>,
    /// Names copied from the host environment, if set there.
    pub pass: Vec<String>,
}
