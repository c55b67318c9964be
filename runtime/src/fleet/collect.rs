//! The collector: every host's audit log, verified as it arrives, and witnessed.
//!
//! A collector reads the audit stream through a durable JetStream consumer, so a
//! collector that stops carries on where its last acknowledgement left off. Each host named
//! in the hosts file gets a verified copy ([`HostCopy`]) in the output directory. Every
//! checkpoint the copy verifies is cosigned with the collector's witness key and published
//! back on `warden.audit.<HOST>.cosignatures`, where the host's shipper picks it up and
//! keeps it beside its log (`<LOG>.cosigned`). Whatever a copy finds wrong is an
//! [`Alert`]: a `fleet.alert` record in the collector's own audit log, a message on
//! `warden.alerts.<HOST>` (kept in the stream `WARDEN_ALERTS`), and a line on stderr.
//!
//! Order of work, for each batch of messages: take them into the copies, sync the copies,
//! then publish the cosignatures (a cosignature says the witness holds the records, so
//! they are on its disk first), then acknowledge the batch. A collector killed anywhere in
//! between is sent the batch again, and its copies take what they hold as duplicates.

use super::copy::{Alert, AlertKind, CopyError, HostCopy, Step};
use super::{
    ALERTS_STREAM, AUDIT_STREAM, AUDIT_SUBJECTS, HostId, alerts_subject, cosignatures_subject,
    ensure_stream,
};
use crate::audit::checkpoint::VerifierKey;
use crate::audit::log::AuditLog;
use crate::audit::witness::WitnessKey;
use async_nats::jetstream::{self, consumer::pull, message::PublishMessage};
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use warden_host_api::audit::{EventSink, Record, TaskMeta};

/// The hosts a collector accepts, each with the key that signs its checkpoints.
///
/// ```toml
/// # warden audit collect --hosts hosts.toml
/// [hosts.web-1]
/// key = "web-1/warden-audit+1a2b3c4d+AY…"   # `warden audit key` on web-1
/// ```
#[derive(Debug, Clone, Default)]
pub struct Hosts(BTreeMap<HostId, VerifierKey>);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsFile {
    #[serde(default)]
    hosts: BTreeMap<String, HostEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    key: String,
}

impl Hosts {
    /// Reads a hosts file; an error names the file and the field.
    pub fn load(path: &Path) -> Result<Hosts, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of a hosts file.
    pub fn parse(text: &str) -> Result<Hosts, String> {
        let file: HostsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.hosts.is_empty() {
            return Err("no [hosts.<ID>] table: name each host and its key".into());
        }
        let mut hosts = BTreeMap::new();
        for (id, entry) in file.hosts {
            let host: HostId = id.parse().map_err(|e| format!("hosts.{id}: {e}"))?;
            let key = VerifierKey::parse(&entry.key).map_err(|e| {
                format!("hosts.{id}.key: {e} (`warden audit key` on the host prints it)")
            })?;
            hosts.insert(host, key);
        }
        Ok(Hosts(hosts))
    }

    /// A hosts list from pairs, for embedders.
    pub fn from_keys(keys: impl IntoIterator<Item = (HostId, VerifierKey)>) -> Hosts {
        Hosts(keys.into_iter().collect())
    }

    /// How many hosts.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How to run a collector.
pub struct CollectOptions {
    /// The NATS server.
    pub url: String,
    /// The hosts whose logs are copied.
    pub hosts: Hosts,
    /// Where the copies go: `<DIR>/<HOST>.jsonl` and its checkpoints.
    pub dir: PathBuf,
    /// The key that cosigns verified checkpoints.
    pub witness: WitnessKey,
    /// The durable consumer's name: a second collector (another witness) takes another.
    pub durable: String,
    /// The collector's own audit log, where alerts are recorded.
    pub log: Option<Arc<AuditLog>>,
}

/// Why a collector stopped.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A copy could not be opened or written: it needs the operator.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// The output directory is in use by another collector, or cannot be made.
    #[error("{}: {why}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The collector's own audit log failed.
    #[error("the collector's audit log: {0}")]
    Log(String),
}

/// Messages taken before the copies are synced and the batch acknowledged.
const BATCH: usize = 1024;

/// A collector at work: the copies, and what is waiting to be published.
struct Collector {
    opts: CollectOptions,
    copies: HashMap<HostId, HostCopy>,
    /// Unknown hosts and hosts that are not subject tokens, alerted once each.
    strangers: HashSet<String>,
    /// Cosigned notes to publish after the next sync: (host, note).
    cosigned: Vec<(HostId, String)>,
    alerts: Vec<Alert>,
    /// When each host's status was last printed, and what it said.
    printed: HashMap<HostId, (u64, Option<u64>)>,
    last_print: Instant,
}

/// Runs a collector until `stop` resolves. Connection trouble is retried, with a line on
/// stderr; what stops it is a copy it cannot write, or `stop`.
pub async fn collect(
    opts: CollectOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), CollectError> {
    let dir = opts.dir.clone();
    let dir_error = |why: String| CollectError::Dir {
        path: dir.clone(),
        why,
    };
    std::fs::create_dir_all(&opts.dir).map_err(|e| dir_error(e.to_string()))?;
    // One collector per directory: two would write the same copies.
    let lock =
        std::fs::File::create(opts.dir.join(".lock")).map_err(|e| dir_error(e.to_string()))?;
    lock.try_lock()
        .map_err(|_| dir_error("another collector is running on this directory".into()))?;
    let mut copies = HashMap::new();
    for (host, key) in &opts.hosts.0 {
        copies.insert(
            host.clone(),
            HostCopy::open(&opts.dir, host.clone(), key.clone())?,
        );
    }
    let mut c = Collector {
        opts,
        copies,
        strangers: HashSet::new(),
        cosigned: Vec::new(),
        alerts: Vec::new(),
        printed: HashMap::new(),
        last_print: Instant::now(),
    };
    c.note_start()?;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .name("warden-collect")
        .connect(super::servers(&c.opts.url))
        .await
        .map_err(|e| dir_error(format!("connecting to {}: {e}", c.opts.url)))?;
    let js = jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client);
    tokio::pin!(stop);
    let mut backoff = Duration::from_millis(100);
    loop {
        let messages = tokio::select! {
            () = &mut stop => return Ok(()),
            m = c.subscribe(&js) => m,
        };
        let mut messages = match messages {
            Ok(m) => {
                backoff = Duration::from_millis(100);
                m
            }
            Err(e) => {
                eprintln!("warden collect: {e}; trying again in {backoff:?}");
                tokio::select! {
                    () = &mut stop => return Ok(()),
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let mut last: Option<jetstream::Message> = None;
        let mut taken = 0;
        loop {
            // With work taken and not settled, a moment's quiet settles it: a host waits
            // for its cosignature no longer than that. Otherwise wait for the next message.
            let quiet = if last.is_some() {
                Duration::from_millis(2)
            } else {
                Duration::from_secs(3600)
            };
            let next = tokio::select! {
                () = &mut stop => {
                    c.settle(&js, last.take()).await?;
                    return Ok(());
                }
                m = tokio::time::timeout(quiet, messages.next()) => m,
            };
            match next {
                Ok(Some(Ok(msg))) => {
                    c.take(&msg)?;
                    last = Some(msg);
                    taken += 1;
                    if taken >= BATCH {
                        c.settle(&js, last.take()).await?;
                        taken = 0;
                    }
                }
                // Quiet: settle what was taken.
                Err(_) => {
                    c.settle(&js, last.take()).await?;
                    taken = 0;
                }
                Ok(Some(Err(e))) => {
                    eprintln!("warden collect: reading the stream: {e}");
                    c.settle(&js, last.take()).await?;
                    break;
                }
                Ok(None) => {
                    c.settle(&js, last.take()).await?;
                    break;
                }
            }
        }
    }
}

impl Collector {
    /// The durable consumer's message stream, from the first message not acknowledged,
    /// creating the streams and the consumer if they are not there.
    ///
    /// A consumer sends a message it delivered but never heard back about only once its
    /// ack wait is over, and sends newer ones meanwhile: a collector that restarted would
    /// see a host's checkpoint before the records it covers, and call it a gap. So the
    /// consumer is made afresh from just past its acknowledgement floor: what was
    /// delivered and not acknowledged comes again first, in stream order, and the copies
    /// take what they hold as duplicates. One collector per durable name.
    async fn subscribe(&self, js: &jetstream::Context) -> Result<pull::Stream, String> {
        let stream = ensure_stream(js, AUDIT_STREAM, AUDIT_SUBJECTS).await?;
        ensure_stream(js, ALERTS_STREAM, "warden.alerts.>").await?;
        let durable = &self.opts.durable;
        let deliver_policy = match stream.consumer_info(durable).await {
            Ok(info) => {
                stream
                    .delete_consumer(durable)
                    .await
                    .map_err(|e| format!("the consumer {durable}: {e}"))?;
                jetstream::consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: info.ack_floor.stream_sequence + 1,
                }
            }
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => {
                jetstream::consumer::DeliverPolicy::All
            }
            Err(e) => return Err(format!("the consumer {durable}: {e}")),
        };
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(durable.clone()),
                description: Some("warden audit collect".into()),
                deliver_policy,
                filter_subjects: vec![
                    "warden.audit.*.records".into(),
                    "warden.audit.*.checkpoints".into(),
                ],
                ack_policy: jetstream::consumer::AckPolicy::All,
                ack_wait: Duration::from_secs(60),
                max_ack_pending: (4 * BATCH) as i64,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("the consumer {durable}: {e}"))?;
        consumer
            .stream()
            .max_messages_per_batch(BATCH)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| format!("reading from {AUDIT_STREAM}: {e}"))
    }

    /// Takes one message into its host's copy.
    fn take(&mut self, msg: &jetstream::Message) -> Result<(), CollectError> {
        let subject = msg.subject.as_str();
        let mut parts = subject.split('.');
        let (Some("warden"), Some("audit"), Some(token), Some(kind), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Ok(());
        };
        let host = token
            .parse::<HostId>()
            .ok()
            .filter(|h| self.copies.contains_key(h));
        let Some((host, copy)) = host.and_then(|h| {
            let copy = self.copies.get_mut(&h)?;
            Some((h, copy))
        }) else {
            if self.strangers.insert(token.to_string()) {
                self.alerts.push(Alert {
                    host: HostId(token.to_string()),
                    seq: None,
                    kind: AlertKind::UnknownHost,
                    detail: format!(
                        "{subject}: a host the hosts file does not name; its messages are \
                         dropped (add it with its key to copy its log)"
                    ),
                });
            }
            return Ok(());
        };
        let mut steps = Vec::new();
        match kind {
            "records" => {
                steps.push(copy.record(&msg.payload)?);
                if matches!(steps[0], Step::Taken)
                    && let Some(note) = copy.take_waiting()
                {
                    steps.push(copy.checkpoint(&note, &self.opts.witness, now())?);
                }
            }
            "checkpoints" => match std::str::from_utf8(&msg.payload) {
                Ok(note) => steps.push(copy.checkpoint(note, &self.opts.witness, now())?),
                Err(_) => steps.push(Step::Alert(Alert {
                    host: host.clone(),
                    seq: None,
                    kind: AlertKind::Malformed,
                    detail: "a checkpoint that is not UTF-8".into(),
                })),
            },
            _ => {}
        }
        for step in steps {
            match step {
                Step::Cosigned(note) => self.cosigned.push((host.clone(), note)),
                Step::Alert(alert) => self.alerts.push(alert),
                _ => {}
            }
        }
        Ok(())
    }

    /// Syncs the copies, publishes cosignatures and alerts, and acknowledges every message
    /// up to `last`.
    async fn settle(
        &mut self,
        js: &jetstream::Context,
        last: Option<jetstream::Message>,
    ) -> Result<(), CollectError> {
        for copy in self.copies.values_mut() {
            copy.sync()?;
        }
        for alert in std::mem::take(&mut self.alerts) {
            self.record_alert(&alert)?;
            let body = serde_json::json!({
                "host": alert.host.as_str(),
                "seq": alert.seq,
                "kind": alert.kind.as_str(),
                "detail": alert.detail,
                "collector": self.opts.witness.verifier().name(),
                "time": crate::audit::rfc3339(SystemTime::now()),
            });
            let sent = publish(js, alerts_subject(&alert.host), body.to_string(), None).await;
            if let Err(e) = sent {
                eprintln!(
                    "warden collect: publishing an alert: {e} (it is in the collector's log)"
                );
            }
        }
        for (host, note) in std::mem::take(&mut self.cosigned) {
            let size = note.lines().nth(1).unwrap_or("?").to_string();
            let id = format!(
                "{host}:cosig:{size}:{}",
                &blake3::hash(note.as_bytes()).to_hex()[..16]
            );
            if let Err(e) = publish(js, cosignatures_subject(&host), note, Some(id)).await {
                // The copy keeps it; the next checkpoint's cosignature covers this one.
                eprintln!("warden collect: publishing the cosignature of {host} at {size}: {e}");
            }
        }
        if let Some(msg) = last
            && let Err(e) = msg.ack().await
        {
            // Sent again, and taken as duplicates.
            eprintln!("warden collect: acknowledging: {e}");
        }
        self.print_status();
        Ok(())
    }

    /// A line per host whose copy moved, every few seconds at most.
    fn print_status(&mut self) {
        if self.last_print.elapsed() < Duration::from_secs(5) {
            return;
        }
        self.last_print = Instant::now();
        for (host, copy) in &self.copies {
            let now = (copy.records(), copy.verified());
            if self.printed.get(host) == Some(&now) {
                continue;
            }
            self.printed.insert(host.clone(), now);
            eprintln!(
                "warden collect: {host}: {} records, {} verified and cosigned{}",
                now.0,
                now.1.map_or_else(|| "none".into(), |v| v.to_string()),
                copy.halted()
                    .map_or_else(String::new, |h| format!("; halted: {h}"))
            );
        }
    }

    fn note_start(&self) -> Result<(), CollectError> {
        let hosts: Vec<&str> = self.opts.hosts.0.keys().map(HostId::as_str).collect();
        let mut ev = warden_host_api::audit::Event::new("fleet.collect").args(serde_json::json!({
            "hosts": hosts,
            "witness": self.opts.witness.verifier().to_string(),
            "dir": self.opts.dir.display().to_string(),
            "nats": self.opts.url,
        }));
        ev.outcome = Some("ok".into());
        self.emit(&ev)
    }

    fn record_alert(&self, alert: &Alert) -> Result<(), CollectError> {
        eprintln!("warden collect: alert: {alert}");
        let mut ev = warden_host_api::audit::Event::new("fleet.alert").args(serde_json::json!({
            "host": alert.host.as_str(),
            "seq": alert.seq,
            "kind": alert.kind.as_str(),
            "detail": alert.detail,
        }));
        ev.resource = Some(alert.host.to_string());
        ev.outcome = Some(format!("alert:{}", alert.kind.as_str()));
        self.emit(&ev)
    }

    fn emit(&self, ev: &warden_host_api::audit::Event) -> Result<(), CollectError> {
        let Some(log) = &self.opts.log else {
            return Ok(());
        };
        let meta = TaskMeta {
            attempt: None,
            host: crate::task::hostname(),
            agent: None,
            task: warden_host_api::audit::NO_TASK.into(),
            parent: None,
            tool: "warden collect".into(),
            component: "-".into(),
            mcp: None,
        };
        log.emit(&Record {
            meta: &meta,
            time: SystemTime::now(),
            event: ev,
        })
        .and_then(|()| log.checkpoint())
        .map_err(|e| CollectError::Log(e.to_string()))
    }
}

async fn publish(
    js: &jetstream::Context,
    subject: String,
    payload: String,
    id: Option<String>,
) -> Result<(), String> {
    let mut publish = PublishMessage::build().payload(payload.into_bytes().into());
    if let Some(id) = id {
        publish = publish.message_id(id);
    }
    js.send_publish(subject, publish)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosts_file_names_the_field_that_is_wrong() {
        let key = crate::audit::checkpoint::HostKey::generate("h/warden-audit").unwrap();
        let ok = format!("[hosts.web-1]\nkey = \"{}\"\n", key.verifier());
        assert_eq!(Hosts::parse(&ok).unwrap().len(), 1);
        let err = Hosts::parse("[hosts.\"web.1\"]\nkey = \"x\"\n").unwrap_err();
        assert!(err.starts_with("hosts.web.1: host id"), "{err}");
        let err = Hosts::parse("[hosts.web-1]\nkey = \"x+y+z\"\n").unwrap_err();
        assert!(err.starts_with("hosts.web-1.key: malformed key"), "{err}");
        let err = Hosts::parse(&ok.replace("key =", "kee =")).unwrap_err();
        assert!(err.contains("unknown field `kee`"), "{err}");
        let err = Hosts::parse("").unwrap_err();
        assert!(err.contains("no [hosts.<ID>]"), "{err}");
    }
}
