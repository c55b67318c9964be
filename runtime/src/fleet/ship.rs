//! Shipping a host's audit log to JetStream.
//!
//! A [`Shipper`] follows the log on disk ([`Follower`]) from the first record the fleet
//! has not acknowledged, publishes each record (its exact line, so that whoever receives
//! it can hash it into the same Merkle tree) and then the newest checkpoint that the
//! acknowledged records reach. What was acknowledged is kept beside the log in
//! `<LOG>.shipped`, so a restarted host carries on where it stopped, and a server that
//! was away is caught up from the log. Publishing twice is harmless: the stream drops a
//! message whose `Nats-Msg-Id` it saw in its duplicate window, and the collector drops a
//! record whose seq it holds with the same bytes.
//!
//! The shipper runs on a thread of its own: tasks never wait on the network, unless the
//! log is told shipping is required ([`AuditLog::ship`]), in which case a task's end
//! waits for its records to be acknowledged.

use super::{
    AUDIT_STREAM, AUDIT_SUBJECTS, HostId, checkpoints_subject, cosignatures_subject, ensure_stream,
    records_subject,
};
use crate::audit::follow::{FollowError, Follower};
use crate::audit::log::AuditLog;
use async_nats::jetstream::{self, message::PublishMessage};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where and as whom to ship.
#[derive(Debug, Clone)]
pub struct ShipOptions {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// This host's name in the fleet.
    pub host: HostId,
    /// A task's end waits until its records are acknowledged.
    pub required: bool,
}

/// What a shipper has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Records `0..acknowledged` are acknowledged by the stream.
    pub acknowledged: u64,
    /// The size of the last checkpoint acknowledged.
    pub checkpoint: u64,
    /// The last failure, until the next batch goes through.
    pub error: Option<String>,
}

/// Why shipping could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// `<LOG>.shipped` could not be read or does not hold a seq.
    #[error("{}: {why}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The shipper's thread or runtime could not start.
    #[error("starting the audit shipper: {0}")]
    Start(std::io::Error),
}

/// Ships one log until it is finished or dropped.
pub struct Shipper {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    status: Mutex<Status>,
    /// Set by [`Shipper::finish`]: ship what is written, then stop at this instant at the
    /// latest.
    stop_by: Mutex<Option<Instant>>,
    stopped: AtomicBool,
}

/// `<LOG>.shipped`: how many of the log's records the fleet acknowledged.
pub fn shipped_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".shipped");
    PathBuf::from(name)
}

/// The first seq not acknowledged, from `<LOG>.shipped` (0 when there is none).
fn read_state(path: &Path) -> Result<(u64, u64), ShipError> {
    let bad = |why: String| ShipError::State {
        path: path.to_path_buf(),
        why,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(bad(e.to_string())),
    };
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(next)), Some(Ok(cp))) => Ok((next, cp)),
        _ => Err(bad(format!(
            "expected \"<next seq> <checkpoint size>\", found {:?}; remove the file to ship \
             the log again from its start (the stream and the collector drop what they hold)",
            text.trim()
        ))),
    }
}

/// Written aside and renamed: a reader never sees half of it. Not synced: losing an
/// update only sends records again.
fn write_state(path: &Path, next: u64, cp: u64) -> std::io::Result<()> {
    let tmp = {
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    };
    let _ = std::fs::remove_file(&tmp);
    std::fs::write(&tmp, format!("{next} {cp}\n"))?;
    std::fs::rename(&tmp, path)
}

impl Shipper {
    /// Starts shipping `log` to the server `opts` names. Returns at once: the server may
    /// be down, and is connected to (and reconnected to) in the background.
    ///
    /// # Errors
    ///
    /// A `<LOG>.shipped` that cannot be read, or a thread that cannot start.
    pub fn start(log: Arc<AuditLog>, opts: ShipOptions) -> Result<Shipper, ShipError> {
        let state = shipped_path(log.path());
        let (next, cp) = read_state(&state)?;
        let held = log.wait_written(u64::MAX, Duration::ZERO);
        if next > held {
            // Left from another log, or edited: following it would skip records.
            return Err(ShipError::State {
                path: state,
                why: format!(
                    "says {next} records were acknowledged, but the log holds {held}; if the \
                     log was started afresh, remove this file"
                ),
            });
        }
        log.ship(next, opts.required);
        let shared = Arc::new(Shared {
            status: Mutex::new(Status {
                acknowledged: next,
                checkpoint: cp,
                error: None,
            }),
            stop_by: Mutex::new(None),
            stopped: AtomicBool::new(false),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("warden-ship-io")
            .enable_all()
            .build()
            .map_err(ShipError::Start)?;
        let run = Run {
            log,
            opts,
            state,
            shared: shared.clone(),
            runtime,
            next,
            checkpoint: cp,
        };
        let thread = std::thread::Builder::new()
            .name("warden-ship".into())
            .spawn(move || run.run())
            .map_err(ShipError::Start)?;
        Ok(Shipper {
            shared,
            thread: Some(thread),
        })
    }

    /// What has been shipped so far.
    pub fn status(&self) -> Status {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Ships what the log holds now, waiting up to `timeout`, and stops. The status says
    /// how far it got.
    pub fn finish(mut self, timeout: Duration) -> Status {
        *self
            .shared
            .stop_by
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + timeout);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.status()
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The shipper's thread.
struct Run {
    log: Arc<AuditLog>,
    opts: ShipOptions,
    state: PathBuf,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Runtime,
    /// The first seq not acknowledged.
    next: u64,
    /// The size of the last checkpoint acknowledged.
    checkpoint: u64,
}

/// Records published per batch: each batch's acknowledgements are awaited together.
const BATCH: usize = 512;

impl Run {
    fn run(mut self) {
        // The client spawns its own tasks (the connection, the acknowledgements) on it.
        let runtime = self.runtime.handle().clone();
        let _entered = runtime.enter();
        let connecting = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .name(format!("warden-ship {}", self.opts.host));
        let client = match self
            .runtime
            .block_on(connecting.connect(super::servers(&self.opts.url)))
        {
            Ok(c) => c,
            Err(e) => return self.error(format!("connecting to {}: {e}", self.opts.url)),
        };
        // Bounded, so that a server gone quiet is noticed and retried.
        let js = jetstream::context::ContextBuilder::new()
            .timeout(Duration::from_secs(2))
            .build(client);
        // Cosignatures come back whenever a collector verified a checkpoint.
        self.runtime.spawn(keep_cosignatures(
            js.clone(),
            self.opts.host.clone(),
            self.log.path().to_path_buf(),
            self.log.verifier().clone(),
        ));
        let records = records_subject(&self.opts.host);
        let checkpoints = checkpoints_subject(&self.opts.host);
        let mut follower = Follower::new(self.log.path(), self.next);
        let mut stream_ready = false;
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.shared.stopped.load(Ordering::Relaxed) {
                return;
            }
            let stop_by = *self
                .shared
                .stop_by
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let written =
                self.log
                    .wait_shippable(self.next, self.checkpoint, Duration::from_millis(100));
            let checkpoint_due = self
                .log
                .latest_checkpoint()
                .is_some_and(|(size, _)| size > self.checkpoint && size <= self.next);
            if let Some(by) = stop_by
                && ((written <= self.next && !checkpoint_due) || Instant::now() >= by)
            {
                return;
            }
            if written <= self.next && !checkpoint_due {
                continue;
            }
            if !stream_ready {
                match self
                    .runtime
                    .block_on(ensure_stream(&js, AUDIT_STREAM, AUDIT_SUBJECTS))
                {
                    Ok(_) => stream_ready = true,
                    Err(e) => {
                        self.error(format!("creating the stream {AUDIT_STREAM}: {e}"));
                        self.pause(&mut backoff);
                        continue;
                    }
                }
            }
            let batch = match follower.read(BATCH) {
                Ok(b) => b,
                Err(FollowError::Gone { first, .. }) => {
                    // Retired before this host shipped with a fleet: the collector sees
                    // the gap and says so; there is nothing to send for it.
                    self.error(format!(
                        "records {} to {} were retired before they were shipped",
                        self.next,
                        first - 1
                    ));
                    self.next = first;
                    follower = Follower::new(self.log.path(), first);
                    continue;
                }
                Err(e) => {
                    self.error(format!("reading the log: {e}"));
                    self.pause(&mut backoff);
                    follower = Follower::new(self.log.path(), self.next);
                    continue;
                }
            };
            if let Some((last, _)) = batch.last() {
                let last = *last;
                match self
                    .runtime
                    .block_on(publish_records(&js, &records, &self.opts.host, batch))
                {
                    Ok(()) => {
                        self.next = last + 1;
                        self.log.acknowledge(self.next);
                        backoff = Duration::from_millis(100);
                        self.acknowledged();
                    }
                    Err(e) => {
                        self.error(format!("publishing records to {}: {e}", self.opts.url));
                        self.pause(&mut backoff);
                        follower = Follower::new(self.log.path(), self.next);
                        continue;
                    }
                }
            }
            // The newest checkpoint that what is acknowledged reaches: the collector holds
            // every record before it, and so can check any earlier one itself.
            if let Some((size, note)) = self.log.latest_checkpoint()
                && size > self.checkpoint
                && size <= self.next
            {
                let id = format!(
                    "{}:cp:{size}:{}",
                    self.opts.host,
                    &blake3::hash(note.as_bytes()).to_hex()[..16]
                );
                let sent = self.runtime.block_on(async {
                    let publish = PublishMessage::build()
                        .payload(bytes::Bytes::copy_from_slice(note.as_bytes()))
                        .message_id(id);
                    js.send_publish(checkpoints.clone(), publish)
                        .await
                        .map_err(|e| e.to_string())?
                        .await
                        .map_err(|e| e.to_string())
                });
                match sent {
                    Ok(_) => {
                        self.checkpoint = size;
                        self.acknowledged();
                    }
                    Err(e) => {
                        self.error(format!("publishing a checkpoint to {}: {e}", self.opts.url));
                        self.pause(&mut backoff);
                    }
                }
            }
        }
    }

    fn acknowledged(&self) {
        if let Err(e) = write_state(&self.state, self.next, self.checkpoint) {
            self.error(format!("{}: {e}", self.state.display()));
            return;
        }
        let mut st = self.shared.status.lock().unwrap_or_else(|p| p.into_inner());
        st.acknowledged = self.next;
        st.checkpoint = self.checkpoint;
        st.error = None;
    }

    /// Notes a failure. A shipper asked to finish gives up at the first one: the log
    /// keeps the records for the next run.
    fn error(&self, why: String) {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .error = Some(why);
        let stopping = self
            .shared
            .stop_by
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if stopping {
            self.shared.stopped.store(true, Ordering::Relaxed);
        }
    }

    /// Waits before trying again, twice as long each time up to 5 s, or less if the
    /// shipper is stopping.
    fn pause(&self, backoff: &mut Duration) {
        let stop_by = *self
            .shared
            .stop_by
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut wait = *backoff;
        if let Some(by) = stop_by {
            wait = wait.min(by.saturating_duration_since(Instant::now()));
        }
        std::thread::sleep(wait);
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
    }
}

/// Follows the collectors' cosignatures of this host's checkpoints and appends each one
/// that is larger than any kept, and that this host signed, to `<LOG>.cosigned`. Runs
/// until the shipper's runtime stops.
async fn keep_cosignatures(
    js: jetstream::Context,
    host: HostId,
    log: PathBuf,
    key: crate::audit::checkpoint::VerifierKey,
) {
    use futures_util::StreamExt as _;
    let path = crate::audit::witness::cosigned_path(&log);
    let mut kept = largest_kept(&path, &key);
    let mut backoff = Duration::from_millis(100);
    loop {
        let follow = async {
            let stream = ensure_stream(&js, AUDIT_STREAM, AUDIT_SUBJECTS).await?;
            let consumer = stream
                .create_consumer(jetstream::consumer::pull::OrderedConfig {
                    filter_subject: cosignatures_subject(&host),
                    deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        };
        let mut messages = match follow.await {
            Ok(m) => m,
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        while let Some(Ok(msg)) = messages.next().await {
            let Ok(note) = std::str::from_utf8(&msg.payload) else {
                continue;
            };
            // Only this host's own checkpoints, with a signature line besides its own.
            let Ok(cp) = crate::audit::checkpoint::Checkpoint::verify(note, &key) else {
                continue;
            };
            if cp.size <= kept || note.matches("\n\u{2014} ").count() < 2 {
                continue;
            }
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, format!("{}\n\n", note.trim_end()).as_bytes())
                });
            if appended.is_ok() {
                kept = cp.size;
            }
        }
    }
}

/// The largest checkpoint of this host in `<LOG>.cosigned`, or 0.
fn largest_kept(path: &Path, key: &crate::audit::checkpoint::VerifierKey) -> u64 {
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    crate::audit::verify::split_notes(&bytes)
        .0
        .iter()
        .filter_map(|n| std::str::from_utf8(n).ok())
        .filter_map(|n| crate::audit::checkpoint::Checkpoint::verify(n, key).ok())
        .map(|cp| cp.size)
        .max()
        .unwrap_or(0)
}

/// Publishes a batch and waits for every acknowledgement.
async fn publish_records(
    js: &jetstream::Context,
    subject: &str,
    host: &HostId,
    batch: Vec<(u64, Vec<u8>)>,
) -> Result<(), String> {
    let mut acks = Vec::with_capacity(batch.len());
    for (seq, line) in batch {
        let publish = PublishMessage::build()
            .payload(line.into())
            .message_id(format!("{host}:{seq}"));
        acks.push(
            js.send_publish(subject.to_string(), publish)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    for ack in acks {
        ack.await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
