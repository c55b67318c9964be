//! The `[policy]` manifest section: the Rego policy a tool's calls are checked against.
//!
//! ```toml
//! [policy]
//! file = "policy.rego"     # relative to this manifest, or absolute
//! ```
//!
//! Without a `[policy]` section no policy is asked: the grant alone decides. The file is
//! read and compiled when the manifest is loaded, not when a task starts, so that a
//! policy that does not compile is an invalid manifest (exit code 2) and never a tool
//! that fails at its first file write. The error names the manifest line and the
//! policy's own file and line:
//!
//! ```text
//! warden.toml:6: policy.file: /etc/warden/policy.rego:4:3: use of undefined variable `x` is unsafe
//! ```
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use warden_host_api::policy::manifest::RawPolicySection;
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("p.rego"), "package warden\ndeny contains \"no\" if input.call.kind == \"env\"\n").unwrap();
//!
//! let raw: RawPolicySection = toml::from_str(r#"file = "p.rego""#).unwrap();
//! let section = raw.resolve(dir.path(), cap_std::ambient_authority()).unwrap();
//! assert_eq!(section.file, dir.path().join("p.rego"));
//!
//! let raw: RawPolicySection = toml::from_str(r#"file = "missing.rego""#).unwrap();
//! let err = raw.resolve(dir.path(), cap_std::ambient_authority()).unwrap_err();
//! assert_eq!(err.field(), "policy.file");
//! assert!(err.to_string().starts_with("cannot read policy "));
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};

use cap_std::AmbientAuthority;
use toml::Spanned;

use super::engine::Policy;
use super::error::PolicyError;

/// The validated `[policy]` section: where the policy is, and the policy compiled.
///
/// ```toml
/// [policy]
/// file = "policy.rego"
/// ```
#[derive(Debug, Clone)]
pub struct PolicySection {
    /// The policy file, resolved against the manifest's directory and made absolute
    /// (symlinks are not resolved).
    pub file: PathBuf,
    /// The compiled policy, named by [`file`](Self::file).
    pub policy: Policy,
}

/// The `[policy]` section as written, before the file is read.
///
/// ```toml
/// [policy]
/// file = "policy.rego"
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicySection {
    /// `file = "policy.rego"`: the Rego module, relative to the manifest or absolute.
    pub file: Spanned<PathBuf>,
}

impl RawPolicySection {
    /// Resolves `file` against `base_dir` (the manifest's directory), reads it and
    /// compiles it.
    ///
    /// # Ambient Authority
    ///
    /// Reads the policy file by path, with the authority of the process.
    pub fn resolve(
        &self,
        base_dir: &Path,
        _ambient: AmbientAuthority,
    ) -> Result<PolicySection, PolicyManifestError> {
        let span = self.file.span();
        if self.file.get_ref().as_os_str().is_empty() {
            return Err(PolicyManifestError::Empty { span });
        }
        let file = base_dir.join(self.file.get_ref());
        let file = std::path::absolute(&file).unwrap_or(file);
        let policy =
            Policy::load(&file).map_err(|error| PolicyManifestError::Policy { span, error })?;
        Ok(PolicySection { file, policy })
    }
}

/// A `[policy]` section that failed: an empty path, or a policy that did not load.
///
/// [`field`](Self::field) and [`span`](Self::span) say where in the manifest; `Display`
/// says what, in lowercase and without the field name, so the caller can prefix file, line
/// and field. A policy error names the policy's own file and line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyManifestError {
    /// `file = ""`.
    #[error("must not be empty")]
    Empty {
        /// Byte range of the value in the manifest source.
        span: Range<usize>,
    },
    /// The policy could not be read or does not compile.
    #[error("{error}")]
    Policy {
        /// Byte range of the `file` value in the manifest source.
        span: Range<usize>,
        /// Why, naming the policy file and line.
        error: PolicyError,
    },
}

impl PolicyManifestError {
    /// The dotted manifest field the error is about: always `policy.file`.
    pub fn field(&self) -> &'static str {
        "policy.file"
    }

    /// Byte range of the `file` value in the manifest source.
    pub fn span(&self) -> Range<usize> {
        match self {
            PolicyManifestError::Empty { span } | PolicyManifestError::Policy { span, .. } => {
                span.clone()
            }
        }
    }
}
