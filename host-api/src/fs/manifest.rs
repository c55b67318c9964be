//! The `[[fs]]` manifest section (placeholder until the manifest work lands).

use std::path::PathBuf;

/// One granted directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsGrant {
    /// Absolute host directory.
    pub host: PathBuf,
    /// Absolute guest path.
    pub guest: String,
    /// What the tool may do there.
    pub access: Access,
}

/// Access to a granted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only.
    Read,
    /// Read and write.
    ReadWrite,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::ReadWrite => "read-write",
        })
    }
}
