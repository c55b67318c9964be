//! Host-held secrets: `[[secrets]]`, their providers, injection into
//! outgoing requests and the `warden:tool/secrets` interface.

/// What a guest's `secret` resource refers to: a secret the task's manifest
/// binds, by name. It never holds the value.
#[derive(Debug, Clone)]
pub struct SecretHandle {
    /// The name in `[[secrets]]`.
    pub name: String,
}
