//! Host-held secrets: `[[secrets]]`, their providers, the values of one task, redaction,
//! and the `warden:tool/secrets` interface.

pub mod manifest;
mod redact;
mod value;

pub use manifest::{Inject, SecretSpec, Source};
pub use redact::Redactor;
pub use value::SecretValue;

/// What a guest's `secret` resource refers to: a secret the task's manifest binds. It
/// never holds the value.
#[derive(Debug, Clone)]
pub struct SecretHandle {
    /// The name in `[[secrets]]`.
    pub name: String,
    /// Its position among the `[[secrets]]` entries.
    pub index: usize,
}
