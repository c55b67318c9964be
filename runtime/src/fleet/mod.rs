//! Many hosts, one record: Warden over NATS JetStream.
//!
//! Every host ships its audit log to one JetStream stream ([`ship`]): each record on
//! `warden.audit.<HOST>.records` with `Nats-Msg-Id` `<HOST>:<SEQ>`, and its latest
//! checkpoint on `warden.audit.<HOST>.checkpoints`. The local log stays the source of
//! truth: tasks never wait on the network unless shipping is required, and a shipper that
//! lost its server catches up from the log when it is back.

pub mod collect;
pub mod copy;
pub mod revoke;
pub mod ship;
pub mod work;

/// The JetStream stream that holds every host's audit records and checkpoints.
pub const AUDIT_STREAM: &str = "WARDEN_AUDIT";

/// The subjects of [`AUDIT_STREAM`].
pub const AUDIT_SUBJECTS: &str = "warden.audit.>";

/// The subject a host's records are published on.
pub fn records_subject(host: &HostId) -> String {
    format!("warden.audit.{}.records", host.0)
}

/// The subject a host's checkpoints are published on.
pub fn checkpoints_subject(host: &HostId) -> String {
    format!("warden.audit.{}.checkpoints", host.0)
}

/// The subject a collector publishes a host's cosigned checkpoints on.
pub fn cosignatures_subject(host: &HostId) -> String {
    format!("warden.audit.{}.cosignatures", host.0)
}

/// The JetStream stream that keeps collectors' alerts.
pub const ALERTS_STREAM: &str = "WARDEN_ALERTS";

/// The subject of the alerts about one host.
pub fn alerts_subject(host: &HostId) -> String {
    format!("warden.alerts.{}", host.0)
}

/// The servers of a `--nats` URL: one, or several separated by commas (the members of a
/// cluster; a client also learns the others from the first it reaches).
pub(crate) fn servers(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Creates a stream of file storage for `subjects` if it is not there.
pub(crate) async fn ensure_stream(
    js: &async_nats::jetstream::Context,
    name: &str,
    subjects: &str,
) -> Result<async_nats::jetstream::stream::Stream, String> {
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: name.into(),
        subjects: vec![subjects.into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())
}

/// A host's name in the fleet: one NATS subject token (letters, digits, `-` and `_`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(String);

impl HostId {
    /// The name as it is.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for HostId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for HostId {
    type Err = String;

    /// Refuses a name that is not one subject token, naming the first character that is
    /// not allowed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 128 {
            return Err(format!(
                "host id {s:?}: 1 to 128 letters, digits, '-' or '_'"
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "host id {s:?}: {c:?} is not allowed (letters, digits, '-' or '_': it is a \
                 NATS subject token)"
            ));
        }
        Ok(HostId(s.to_string()))
    }
}

impl HostId {
    /// This machine's host name, with every character a subject token cannot hold
    /// replaced by `_`.
    pub fn of_this_host() -> HostId {
        let name: String = crate::task::hostname()
            .chars()
            .take(128)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        HostId(if name.is_empty() { "host".into() } else { name })
    }
}
