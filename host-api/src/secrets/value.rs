//! [`SecretValue`]: the bytes of a secret, which nothing prints and everything wipes.

use std::fmt;
use zeroize::Zeroizing;

/// The value of a secret, in memory that is overwritten with zeros when it is dropped.
///
/// There is no `Display` and no `Serialize`, and `Debug` prints `[REDACTED]`, so a value
/// cannot reach a record, an error or a log line by accident: the only way to its bytes is
/// [`expose`](Self::expose), which is easy to find in a review.
///
/// Each clone is its own zeroizing copy. Values live in a task's [`super::TaskSecrets`]
/// and are wiped when the task ends and its store is dropped.
///
/// ```
/// use warden_host_api::secrets::SecretValue;
///
/// let v = SecretValue::new(b"hunter2".to_vec());
/// assert_eq!(format!("{v:?}"), "[REDACTED]");
/// assert_eq!(v.expose(), b"hunter2");
/// ```
#[derive(Clone, Default)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Takes ownership of `bytes` without copying them.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretValue(Zeroizing::new(bytes))
    }

    /// Wraps bytes that are already in zeroizing memory.
    pub fn from_zeroizing(bytes: Zeroizing<Vec<u8>>) -> Self {
        SecretValue(bytes)
    }

    /// The bytes of the secret. Whatever copies them is responsible for wiping the copy.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes; safe to record.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for SecretValue {
    /// Compares in time that depends on the lengths only, not on where the bytes differ.
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(other.0.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl Eq for SecretValue {}
