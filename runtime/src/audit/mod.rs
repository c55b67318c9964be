//! The tamper-evident audit log ([`log`]), its checkpoints and keys, and what reads it:
//! [`verify`], [`proof`], [`show`]. Capability modules write records to an
//! [`EventSink`](warden_host_api::audit::EventSink) and do not know the log exists.

pub mod checkpoint;
pub mod follow;
pub mod keys;
pub mod log;
pub mod merkle;
pub mod proof;
pub mod segments;
pub mod show;
pub mod stream;
pub mod verify;
pub mod witness;

use std::path::PathBuf;

/// Warden's state directory: `$XDG_STATE_HOME/warden`, or
/// `~/.local/state/warden`. It holds, each apart from the others:
///
/// ```text
/// warden/
///   audit/audit.jsonl      the default audit log, and audit.jsonl.checkpoints
///   keys/                  mode 0700: host.key, grant.key, cache.key (each 0600)
///   revoked                the revocation list
/// ```
///
/// The keys are not in the log's directory: whoever may write where the log is (a log
/// shipper, a shared log directory) can delete or replace files there, and must not be able
/// to replace the key that signs the log.
pub fn state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("warden")
}

/// The log used when neither `--audit` nor `WARDEN_AUDIT` names one:
/// `audit/audit.jsonl` under the [state directory](state_dir).
pub fn default_path() -> PathBuf {
    state_dir().join("audit/audit.jsonl")
}

/// The directory of Warden's keys, `keys/` under the [state directory](state_dir),
/// apart from the audit log's. [`keys::private_dir`] creates it with mode 0700.
pub fn keys_dir() -> PathBuf {
    state_dir().join("keys")
}

/// The host key used when `--key` does not name one.
pub fn default_key_path() -> PathBuf {
    keys_dir().join("host.key")
}

/// The issuer key that signs grant tokens, when neither `--grant-key` nor
/// `WARDEN_GRANT_KEY` names one.
pub fn default_grant_key_path() -> PathBuf {
    keys_dir().join("grant.key")
}

/// The secret that authenticates compiled components in the cache
/// ([`crate::engine::cache`]).
pub fn default_cache_key_path() -> PathBuf {
    keys_dir().join("cache.key")
}

/// The revocation list every `warden` process of this user shares: `warden
/// grant revoke` appends to it, and tasks are checked against it.
pub fn default_revocation_path() -> PathBuf {
    state_dir().join("revoked")
}

/// The name of this host's key and the origin of its checkpoints:
/// `<hostname>/warden-audit`.
pub fn key_name() -> String {
    format!("{}/warden-audit", crate::task::hostname())
}

/// RFC 3339 UTC with nanoseconds, e.g. `2026-11-25T19:47:18.123456789Z`.
pub use warden_host_api::time::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_rfc3339() {
        let t = UNIX_EPOCH + Duration::new(1_795_636_038, 5);
        assert_eq!(rfc3339(t), "2026-11-25T19:47:18.000000005Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000000Z");
    }
}
