//! The tamper-evident audit log: JSON Lines, a Merkle tree over the exact
//! bytes of each line, and signed checkpoints beside it.
//!
//! # Format
//!
//! Line `i` of the log is record `seq` `i`. Every record but the first has
//! `prev`, the hex BLAKE3 leaf hash of the line before it, so that a changed
//! record is named by its successor. Leaf `i` of the RFC 9162 tree is line
//! `i` without its newline. `<LOG>.checkpoints` holds C2SP signed notes, each
//! followed by a blank line, committing to the tree's size and root.
//!
//! # Writing
//!
//! [`AuditLog::emit`] numbers and hashes a record under a short lock and
//! queues it; one writer thread appends what is queued in a single write,
//! syncs it (group commit), extends the tree and writes a checkpoint every
//! [`LogOptions::checkpoint_every`] records, every
//! [`LogOptions::checkpoint_interval`], and within
//! [`LogOptions::checkpoint_delay`] of every task end. A thread that records while
//! [`LogOptions::queue_bytes`] of records wait for the writer waits until it takes
//! them, so that memory stays bounded however fast tasks record.
//!
//! With [`Fsync::Always`] a host call's record is on disk before the call
//! proceeds, and a task's `task.end` ([`EventSink::end`]) before its result is
//! returned: the task's caller awaits the [`Receipt`], off the thread that
//! runs tasks. A group is synced at once for a blocked host call, and for
//! finished tasks once no other task is running; otherwise it gathers for up
//! to a millisecond, so that tasks ending together share one `fdatasync`.
//! Records nobody waits for (a `task.start`) are written without a sync and
//! made durable by the next. [`Fsync::Batch`] syncs each group without making
//! callers wait, and [`Fsync::None`] leaves syncing to the OS. Either way a
//! finished task is covered by a signed checkpoint within the delay, shared by
//! every task that ended meanwhile; [`Receipt::covered`] asks for one at once.
//! A failed sync is fatal: the log refuses every later record, and tasks that
//! cannot record stop.
//!
//! # Opening
//!
//! The log is locked for the writer's lifetime, so two processes never
//! interleave. On open the existing log is checked against the last
//! checkpoint: damage at or before it is tampering and the log is not
//! appended to; a torn last line after it (a writer killed mid-write) is
//! cut off, and a `recovery` record says what was cut.
//!
//! Complete records that no checkpoint covers are never taken on silently
//! ([`LogError::Uncovered`]). They are what a writer killed between a
//! record and the next checkpoint leaves, but also what is left after
//! someone rewrote the log, recomputed every `prev`, and deleted
//! `<LOG>.checkpoints`: the chain alone holds, and the next checkpoint
//! would sign the forgery with the real key. Only the operator can tell
//! the two apart, so the writer refuses until [`AuditLog::adopt`] (`warden
//! audit adopt`) appends a `recovery` record that names the adopted range
//! and its digest. That record is chained and signed like any other, so
//! every later `warden audit verify` reports the range
//! ([`Report::adopted`](super::verify::Report::adopted)).

use super::checkpoint::{Checkpoint, HostKey};
use super::merkle::{Blake3, Frontier, leaf_hash};
use super::rfc3339;
use super::segments::LogFiles;
use super::verify::{VerifyError, verify_log};
use serde_json::json;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use warden_host_api::audit::{Event, EventSink, NO_TASK, Progress, Receipt, Record, TaskMeta};
use warden_host_api::hex::encode as hex;

/// How long the writer lets a group gather when nobody waits for it.
const LINGER: Duration = Duration::from_millis(1);

/// After a sync that released several finished tasks, how long the writer lets
/// their callers start the next ones before it takes a group as complete because
/// no task is running: without it, tasks split into two groups that take turns.
const REJOIN: Duration = Duration::from_micros(150);

/// [`LogOptions::checkpoint_delay`] unless set: at most 100 signatures a second,
/// however many tasks end.
pub const DEFAULT_CHECKPOINT_DELAY: Duration = Duration::from_millis(10);

/// When records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Each caller waits until its record is synced (shared by all records
    /// of one group commit).
    #[default]
    Always,
    /// Each group is synced, but callers do not wait for it.
    Batch,
    /// Never synced by Warden; the OS writes back when it likes.
    None,
}

impl std::str::FromStr for Fsync {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Fsync::Always),
            "batch" => Ok(Fsync::Batch),
            "none" => Ok(Fsync::None),
            other => Err(format!(
                "expected \"always\", \"batch\" or \"none\", found {other:?}"
            )),
        }
    }
}

/// How the log is written.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Sync policy.
    pub fsync: Fsync,
    /// Write a checkpoint after this many records.
    pub checkpoint_every: u64,
    /// Write a checkpoint at least this often while records arrive.
    pub checkpoint_interval: Duration,
    /// The longest a finished task's records wait for a checkpoint to cover them.
    /// Tasks that end within this time of each other share one signature (and with
    /// fsync `always` or `batch`, one sync of the checkpoints); a caller that needs the
    /// proof at once asks for it ([`Receipt::covered`]), which does not wait.
    pub checkpoint_delay: Duration,
    /// Close the segment being written once it holds this many bytes
    /// ([`super::segments`]); `None`: never by size.
    pub segment_bytes: Option<u64>,
    /// Close the segment being written once it is this old; `None`: never
    /// by age.
    pub segment_age: Option<Duration>,
    /// Compress closed segments with zstd at this level (1 to 22; 3 is
    /// fast and already shrinks records about ninefold); `None`: keep
    /// them plain.
    pub compress: Option<i32>,
    /// Retire (delete) the oldest closed segments beyond this many, once
    /// an `audit.retire` record that names them is signed by a checkpoint;
    /// `None`: keep every segment. At least one is always kept.
    pub retain_segments: Option<usize>,
    /// Retire closed segments older than this (by the time they closed),
    /// the same way; the newest closed segment is always kept.
    pub retain_age: Option<Duration>,
    /// How many bytes of records may wait for the writer; a thread that records
    /// beyond that waits until the writer takes them. Without a bound, threads that
    /// record faster than the log is written grow the queue without end; with one,
    /// the writer's buffers stay in cache and are reused rather than faulted in
    /// afresh for each group. 1 MiB, a few thousand records, unless set.
    pub queue_bytes: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            fsync: Fsync::Always,
            checkpoint_every: 1024,
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_delay: DEFAULT_CHECKPOINT_DELAY,
            segment_bytes: None,
            segment_age: None,
            compress: None,
            retain_segments: None,
            retain_age: None,
            queue_bytes: 1 << 20,
        }
    }
}

/// Why the log cannot be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An I/O error on the log or its checkpoints.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The log was altered at or before its last checkpoint; it is not
    /// appended to.
    #[error(
        "{path}: refusing to append to a tampered log: {what} (run `warden audit verify {path}`)"
    )]
    Tampered {
        /// The log.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// Complete records after the last checkpoint (or in a log without
    /// checkpoints): the writer does not take them on without
    /// [`AuditLog::adopt`].
    #[error(
        "{path}: refusing to append: seq {from} to {last} ({count} records) are not covered by \
         any signed checkpoint ({why}). They may be the last records of a writer that was killed, \
         or a rewritten history whose checkpoints were removed, and signing them now would vouch \
         for them. Check them with `warden audit verify {path}` and `warden audit show {path}`, \
         then adopt them with `warden audit adopt {path}` (a recovery record names them in the \
         log for every later verify), or move the log aside to start a new one",
        count = last - from + 1
    )]
    Uncovered {
        /// The log.
        path: String,
        /// The first record not covered.
        from: u64,
        /// The last record.
        last: u64,
        /// What the checkpoints cover.
        why: String,
    },
}

/// Records adopted by [`AuditLog::adopt`]: what its `recovery` record says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Adoption {
    /// The first adopted record.
    pub from_seq: u64,
    /// The last adopted record.
    pub to_seq: u64,
    /// `blake3:<hex>` of the adopted records' leaf hashes, in order
    /// ([`range_digest`]).
    pub digest: String,
    /// The seq of the `recovery` record that adopted them.
    pub record: u64,
    /// Bytes of a torn last line that were cut as well.
    pub cut_bytes: u64,
}

/// What a log's writer has done since it was opened ([`AuditLog::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records appended.
    pub records: u64,
    /// Appends: each group commit writes every record queued since the last.
    pub groups: u64,
    /// `fdatasync` calls, on the log and on its checkpoints.
    pub syncs: u64,
    /// Checkpoints signed.
    pub checkpoints: u64,
}

#[derive(Default)]
struct Counters {
    records: std::sync::atomic::AtomicU64,
    groups: std::sync::atomic::AtomicU64,
    syncs: std::sync::atomic::AtomicU64,
    checkpoints: std::sync::atomic::AtomicU64,
}

impl Counters {
    fn add(counter: &std::sync::atomic::AtomicU64, n: u64) {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The tamper-evident log, as an [`EventSink`].
pub struct AuditLog {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    path: PathBuf,
    fsync: Fsync,
    checkpoint_delay: Duration,
    queue_bytes: usize,
    /// What every receipt waits on, shared.
    progress: Arc<LogProgress>,
    verifier: super::checkpoint::VerifierKey,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("fsync", &self.fsync)
            .finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<State>,
    /// What the writer has done, for [`AuditLog::stats`].
    stats: Counters,
    /// The writer has work: records, a checkpoint request, or closing.
    work: Condvar,
    /// Records became durable, a checkpoint was written, or the log failed.
    done: Condvar,
    /// The same, for receipts awaited on an async runtime.
    progress: tokio::sync::Notify,
}

impl Shared {
    /// Wakes everyone waiting on the writer's progress; called after `state` changed.
    fn notify(&self) {
        self.done.notify_all();
        self.progress.notify_waiters();
    }
}

#[derive(Default)]
struct State {
    next_seq: u64,
    /// The records queued for the writer, each from `time` on ([`body`]),
    /// and where each ends in `bodies`: the writer numbers, chains and
    /// hashes them, off the threads that record.
    bodies: Vec<u8>,
    ends: Vec<usize>,
    /// Records written (and synced, per policy).
    durable: u64,
    /// Size of the last checkpoint written.
    checkpointed: u64,
    /// A checkpoint covering at least this many records is wanted now.
    checkpoint_wanted: u64,
    /// When a checkpoint is owed to the tasks that ended since the writer last
    /// took the queue.
    cover_due: Option<Instant>,
    /// A host call waits for records `..sync_wanted` to be synced (fsync
    /// `always`): its thread is blocked until they are.
    sync_wanted: u64,
    /// Tasks that ended since the writer last took the queue, whose results wait
    /// for the sync (fsync `always`), and when the first of them ended.
    ends_waiting: u64,
    first_end: Option<Instant>,
    /// Tasks started and not yet ended, as the records say.
    running: u64,
    /// The writer has stopped: nothing more will be written.
    closed: bool,
    failed: Option<String>,
    closing: bool,
    /// The last checkpoint written: its size and its note.
    last_note: Option<(u64, Arc<str>)>,
    /// Set once a shipper follows the log ([`AuditLog::ship`]).
    shipping: Option<Shipping>,
}

/// What a shipper has had acknowledged, and whether tasks wait for it.
#[derive(Debug, Clone, Copy)]
struct Shipping {
    /// Records `0..acknowledged` are acknowledged by the fleet.
    acknowledged: u64,
    /// A task's end waits until its records are acknowledged.
    required: bool,
}

/// Whether the record bodies `queued` fill a queue of `bound` bytes. An empty queue is
/// never full, so that a bound of 0 means one group at a time rather than no records.
fn full(queued: &[u8], bound: usize) -> bool {
    !queued.is_empty() && queued.len() >= bound
}

impl State {
    /// Queues the record whose fields from `time` on are `body` ([`body`]);
    /// returns the seq it will have.
    fn enqueue(&mut self, event: &str, body: &[u8]) -> u64 {
        let seq = self.next_seq;
        match event {
            "task.start" => self.running += 1,
            "task.end" => self.running = self.running.saturating_sub(1),
            _ => {}
        }
        self.bodies.extend_from_slice(body);
        self.ends.push(self.bodies.len());
        self.next_seq += 1;
        seq
    }
}

/// The lines of the records `first..` whose bodies are `bodies` (each ending
/// where `ends` says), numbered and chained after the leaf `prev`: appended to
/// `out`, each with its newline, and their leaf hashes to `leaves`. Returns the
/// last leaf.
fn chain(
    mut prev: Option<[u8; 32]>,
    first: u64,
    bodies: &[u8],
    ends: &[usize],
    out: &mut Vec<u8>,
    leaves: &mut Vec<[u8; 32]>,
) -> Option<[u8; 32]> {
    let mut start = 0;
    for (i, &end) in ends.iter().enumerate() {
        let line = out.len();
        out.extend_from_slice(b"{\"v\":1,\"seq\":");
        out.extend_from_slice(itoa::Buffer::new().format(first + i as u64).as_bytes());
        if let Some(prev) = &prev {
            out.extend_from_slice(b",\"prev\":\"");
            hex_into(out, prev);
            out.push(b'"');
        }
        out.push(b',');
        out.extend_from_slice(&bodies[start..end]);
        let leaf = leaf_hash::<Blake3>(&out[line..]);
        out.push(b'\n');
        leaves.push(leaf);
        prev = Some(leaf);
        start = end;
    }
    prev
}

/// Lower-case hex of `bytes`, appended to `out`.
fn hex_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
}

/// Writes the fields of `record` that do not depend on its place in the log,
/// `"time":…` to the closing brace, into `out`: made before the lock is taken,
/// so that tasks recording at once wait only for each other's numbering and
/// hashing.
fn body(out: &mut Vec<u8>, record: &Record<'_>) -> serde_json::Result<()> {
    out.extend_from_slice(b"\"time\":\"");
    time_into(out, record.time);
    out.push(b'"');
    let rest = out.len();
    serde_json::to_writer(&mut *out, &Fields(record))?;
    // `{` opens the fields' own map: it continues this one instead.
    out[rest] = b',';
    Ok(())
}

/// `t` as [`rfc3339`] writes it, appended to `out`. The date and time of day
/// are formatted once per second per thread; records mostly come many to a
/// second.
fn time_into(out: &mut Vec<u8>, t: SystemTime) {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let Ok(since) = t.duration_since(std::time::UNIX_EPOCH) else {
        return out.extend_from_slice(rfc3339(t).as_bytes());
    };
    let (secs, nanos) = (since.as_secs(), since.subsec_nanos());
    SECOND.with_borrow_mut(|(second, prefix)| {
        if *second != secs {
            let whole = rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(secs));
            // `….000000000Z`: keep what comes before the fraction.
            *prefix = whole[..whole.len() - ".000000000Z".len()].to_owned();
            *second = secs;
        }
        out.extend_from_slice(prefix.as_bytes());
    });
    out.push(b'.');
    let mut digits = [b'0'; 9];
    let mut n = nanos;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
    out.push(b'Z');
}

/// Opens the log or its checkpoints file, refusing anything but a regular
/// file with one link that is not reached through a symlink.
///
/// Whoever can write the log's directory can put a symlink or a hard link
/// where the log was: Warden would then read, lock and append records (whose
/// strings a tool chooses) to whatever file it leads to, such as a shell's
/// startup file.
fn open_own(options: &mut OpenOptions, path: &Path) -> Result<File, LogError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let refuse = |why: String| LogError::Io {
        path: path.display().to_string(),
        error: std::io::Error::other(why),
    };
    // A symlink as the last component fails the open (ELOOP) instead of
    // being followed, created through, or written.
    let file = match options.custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refuse(
                "is a symlink; an audit log and its checkpoints are opened only by their own \
                 path: name the file it leads to with --audit, if that is the log"
                    .into(),
            ));
        }
        Err(error) => {
            return Err(LogError::Io {
                path: path.display().to_string(),
                error,
            });
        }
    };
    let meta = file.metadata().map_err(|error| LogError::Io {
        path: path.display().to_string(),
        error,
    })?;
    if !meta.is_file() {
        return Err(refuse("an audit log must be a regular file".into()));
    }
    if meta.nlink() != 1 {
        return Err(refuse(format!(
            "has {} hard links; an audit log and its checkpoints must have one, so that no \
             other file is written through them",
            meta.nlink()
        )));
    }
    Ok(file)
}

/// Adds the file to an I/O error's message.
fn at(path: &Path) -> impl Fn(std::io::Error) -> std::io::Error + '_ {
    move |e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Who writes the log's own records (`recovery`, `audit.retire`).
fn writer_meta() -> TaskMeta {
    TaskMeta {
        attempt: None,
        host: crate::task::hostname(),
        agent: None,
        task: NO_TASK.into(),
        parent: None,
        tool: "warden".into(),
        component: "-".into(),
        mcp: None,
    }
}

/// The seq of the first record in the open segment `file` of the log at
/// `path`, which has `records` records in all: its first line's seq, or
/// `records` when it is empty.
fn active_first(path: &Path, file: &File, records: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    // Positioned reads: the writer's offset, shared by any duplicate of the
    // descriptor, stays at the end.
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = file.read_at(&mut buf, line.len() as u64)?;
        if n == 0 {
            return Ok(records);
        }
        match buf[..n].iter().position(|&b| b == b'\n') {
            Some(end) => {
                line.extend_from_slice(&buf[..=end]);
                break;
            }
            None => line.extend_from_slice(&buf[..n]),
        }
    }
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(&line)
        .map(|s| s.seq)
        .map_err(|e| std::io::Error::other(format!("{}: line 1: {e}", path.display())))
}

/// Name of the checkpoints file of `log`.
pub fn checkpoints_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".checkpoints");
    PathBuf::from(name)
}

/// A record's fields after `time`, as a map of their own (see [`body`]).
struct Fields<'a>(&'a Record<'a>);

// Written out rather than derived with `#[serde(flatten)]`, which buffers
// every field through an intermediate map: this runs once per host call.
impl serde::Serialize for Fields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let record = self.0;
        let (m, e) = (record.meta, record.event);
        let mut map = s.serialize_map(None)?;
        if record.identified() {
            map.serialize_entry("host", &m.host)?;
            map.serialize_entry("agent", &m.agent)?;
            map.serialize_entry("task", &m.task)?;
            map.serialize_entry("parent", &m.parent)?;
            map.serialize_entry("tool", &m.tool)?;
            map.serialize_entry("component", &m.component)?;
            if let Some(mcp) = &m.mcp {
                map.serialize_entry("mcp", mcp)?;
            }
            if let Some(attempt) = m.attempt {
                map.serialize_entry("attempt", &attempt)?;
            }
        } else {
            map.serialize_entry("task", &m.task)?;
        }
        map.serialize_entry("event", e.event)?;
        if let Some(call) = e.call {
            map.serialize_entry("call", call)?;
        }
        if !e.args.is_null() {
            map.serialize_entry("args", &e.args)?;
        }
        if let Some(r) = &e.resource {
            map.serialize_entry("resource", r)?;
        }
        if let Some(d) = &e.decision {
            map.serialize_entry("decision", d)?;
        }
        if let Some(r) = &e.rule {
            map.serialize_entry("rule", r)?;
        }
        if let Some(o) = &e.outcome {
            map.serialize_entry("outcome", o)?;
        }
        if let Some(d) = e.dur_ns {
            map.serialize_entry("dur_ns", &d)?;
        }
        map.end()
    }
}

impl AuditLog {
    /// Opens (or creates) the log at `path`, checks it against its last
    /// checkpoint, recovers a torn tail, and starts the writer.
    ///
    /// # Errors
    ///
    /// [`LogError::Tampered`] when the log or its checkpoints are damaged,
    /// [`LogError::Uncovered`] when complete records follow the last
    /// checkpoint (see [`AuditLog::adopt`]), [`LogError::Io`] otherwise.
    pub fn open(path: &Path, key: HostKey, opts: LogOptions) -> Result<AuditLog, LogError> {
        Self::open_with(path, key, opts, false).map(|(log, _)| log)
    }

    /// Opens the log at `path` as [`AuditLog::open`] does, but takes on the
    /// complete records that no checkpoint covers: a `recovery` record names
    /// them (`args.adopted`: `from_seq`, `to_seq`, `records`, `digest`, and
    /// `root`, the tree's root after them) and a checkpoint signs it before
    /// this returns. `None` when there was nothing to adopt.
    ///
    /// This is the operator's decision that those records are genuine; the
    /// log says forever after that nothing but that decision vouches for
    /// them.
    pub fn adopt(
        path: &Path,
        key: HostKey,
        opts: LogOptions,
    ) -> Result<(AuditLog, Option<Adoption>), LogError> {
        Self::open_with(path, key, opts, true)
    }

    fn open_with(
        path: &Path,
        key: HostKey,
        opts: LogOptions,
        adopt: bool,
    ) -> Result<(AuditLog, Option<Adoption>), LogError> {
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |error| LogError::Io {
                path: p.clone(),
                error,
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(path))?;
        }
        let mut file = open_own(
            OpenOptions::new()
                .create(true)
                .read(true)
                .write(true)
                .truncate(false),
            path,
        )?;
        // One writer per log: a second process waits here for the first.
        file.lock().map_err(io(path))?;
        let cp_path = checkpoints_path(path);
        let cps = open_own(
            OpenOptions::new().create(true).read(true).append(true),
            &cp_path,
        )?;

        // The same checks as `warden audit verify`: anything it calls damage
        // stops the writer; only a torn tail is cut. Made on the files
        // opened and locked here, in one pass that holds no more than the
        // tree's right edge.
        super::segments::tidy(path).map_err(io(path))?;
        let files = LogFiles::open(path, &file, &cps).map_err(io(path))?;
        let report = verify_log(&files, key.verifier()).map_err(|e| match e {
            VerifyError::Io { path, error } => LogError::Io {
                path: path.display().to_string(),
                error,
            },
            e => LogError::Tampered {
                path: path.display().to_string(),
                what: e.to_string(),
            },
        })?;
        drop(files);
        if report.uncovered > 0 && !adopt {
            // Before anything is cut or written: the log stays as it was found.
            return Err(LogError::Uncovered {
                path: path.display().to_string(),
                from: report.covered,
                last: report.records - 1,
                why: match report.last_checkpoint() {
                    None => format!(
                        "there are no checkpoints: {} is missing or empty",
                        cp_path.display()
                    ),
                    Some(cp) => format!(
                        "the last checkpoint, {} in {}, covers {} records",
                        cp.index,
                        cp_path.display(),
                        cp.checkpoint.size
                    ),
                },
            });
        }
        let adopted = (report.uncovered > 0).then(|| {
            (
                report.covered,
                report.records - 1,
                report.uncovered_digest().to_owned(),
                hex(&report.root()),
            )
        });
        let cut = report.torn_tail.map_or(0, |t| t.len);
        if let Some(torn) = report.torn_tail {
            // The torn line ends the open segment; `torn.offset` counts the
            // bytes of every segment before it too.
            let len = file.metadata().map_err(io(path))?.len();
            file.set_len(len.saturating_sub(torn.len))
                .map_err(io(path))?;
            file.sync_all().map_err(io(path))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io(path))?;
        if report.torn_checkpoint {
            // A note cut short would run into the next one written.
            cps.set_len(report.notes_end()).map_err(io(&cp_path))?;
            cps.sync_all().map_err(io(&cp_path))?;
        }
        let records = report.records;
        let report_checkpoints = report.checkpoints;
        let last_leaf = report.last_hash;
        let covered = report.covered;
        let last_note = report
            .last_checkpoint()
            .map(|c| (c.checkpoint.size, Arc::<str>::from(c.note.as_str())));
        let tree = report.into_frontier();

        let state = State {
            next_seq: records,
            durable: records,
            checkpointed: covered,
            last_note,
            ..State::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            stats: Counters::default(),
            work: Condvar::new(),
            done: Condvar::new(),
            progress: tokio::sync::Notify::new(),
        });
        let bytes = file.metadata().map_err(io(path))?.len();
        let first = active_first(path, &file, records).map_err(io(path))?;
        let verifier = key.verifier().clone();
        let mut writer = Writer {
            shared: shared.clone(),
            path: path.to_path_buf(),
            file,
            cps,
            tree,
            key,
            opts: opts.clone(),
            first,
            bytes,
            since: Instant::now(),
            compressing: Vec::new(),
            retiring: None,
            last_note: String::new(),
            synced: records,
            prev: last_leaf,
            queued: (Vec::new(), Vec::new()),
            lines: Vec::new(),
            leaves: Vec::new(),
        };
        // Segments a writer closed but did not get to compress.
        if let Some(level) = opts.compress {
            for s in super::segments::segments(path).map_err(io(path))? {
                if !s.compressed {
                    writer.compress(s.records, level);
                }
            }
        }
        let handle = std::thread::Builder::new()
            .name("warden-audit".into())
            .spawn(move || writer.run())
            .map_err(io(path))?;
        let log = AuditLog {
            shared: shared.clone(),
            writer: Some(handle),
            path: path.to_path_buf(),
            fsync: opts.fsync,
            checkpoint_delay: opts.checkpoint_delay,
            queue_bytes: opts.queue_bytes,
            progress: Arc::new(LogProgress {
                shared,
                fsync: opts.fsync,
            }),
            verifier,
        };
        let meta = writer_meta();
        let failed = |e: anyhow::Error| LogError::Io {
            path: path.display().to_string(),
            error: std::io::Error::other(e.to_string()),
        };
        let mut adoption = None;
        if let Some((from, to, digest, root)) = adopted {
            let mut args = json!({
                "adopted": {
                    "from_seq": from,
                    "to_seq": to,
                    "records": to - from + 1,
                    "digest": digest,
                    "root": root,
                },
                "checkpoints": report_checkpoints,
                "why": "records no checkpoint covered, adopted by the operator (warden audit adopt)",
            });
            if cut > 0 {
                args["cut_bytes"] = json!(cut);
            }
            let mut ev = Event::new("recovery").args(args);
            ev.rule = Some(
                "adopted without checkpoint cover: only the operator's decision vouches for \
                 these records"
                    .into(),
            );
            log.emit(&Record {
                meta: &meta,
                time: SystemTime::now(),
                event: &ev,
            })
            .map_err(failed)?;
            log.checkpoint().map_err(failed)?;
            adoption = Some(Adoption {
                from_seq: from,
                to_seq: to,
                digest,
                record: to + 1,
                cut_bytes: cut,
            });
        } else if cut > 0 {
            let mut ev = Event::new("recovery").args(json!({
                "cut_bytes": cut,
                "from_seq": records,
                "why": "a torn last line: a write cut short",
            }));
            ev.rule = Some("a torn tail after the last checkpoint is cut on open".into());
            log.emit(&Record {
                meta: &meta,
                time: SystemTime::now(),
                event: &ev,
            })
            .map_err(failed)?;
        }
        Ok((log, adoption))
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public half of the key that signs the log's checkpoints.
    pub fn verifier(&self) -> &super::checkpoint::VerifierKey {
        &self.verifier
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `done(state)` holds or the log has failed.
    fn wait(
        &self,
        mut st: MutexGuard<'_, State>,
        done: impl Fn(&State) -> bool,
    ) -> anyhow::Result<()> {
        while !done(&st) {
            if let Some(f) = &st.failed {
                anyhow::bail!("audit log failed: {f}");
            }
            st = self.shared.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        Ok(())
    }

    /// Declares that a shipper follows this log from now on, its records
    /// `0..acknowledged` already acknowledged: retention then keeps every
    /// segment until its records are acknowledged, and with `required` a task's
    /// end waits for its own.
    pub fn ship(&self, acknowledged: u64, required: bool) {
        self.lock().shipping = Some(Shipping {
            acknowledged,
            required,
        });
    }

    /// Records `0..next` are acknowledged by the fleet.
    pub fn acknowledge(&self, next: u64) {
        let mut st = self.lock();
        if let Some(sh) = &mut st.shipping {
            sh.acknowledged = sh.acknowledged.max(next);
        }
        drop(st);
        self.shared.notify();
    }

    /// What the writer has done since the log was opened.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.stats;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        Stats {
            records: get(&c.records),
            groups: get(&c.groups),
            syncs: get(&c.syncs),
            checkpoints: get(&c.checkpoints),
        }
    }

    /// The last checkpoint written: its size and its signed note.
    pub fn latest_checkpoint(&self) -> Option<(u64, Arc<str>)> {
        self.lock().last_note.clone()
    }

    /// Waits up to `timeout` for records past the first `written` to be
    /// written; returns how many are written.
    pub fn wait_written(&self, written: u64, timeout: Duration) -> u64 {
        let st = self.lock();
        let (st, _) = self
            .shared
            .done
            .wait_timeout_while(st, timeout, |s| s.durable <= written && s.failed.is_none())
            .unwrap_or_else(|p| p.into_inner());
        st.durable
    }

    /// Waits up to `timeout` for records past the first `written`, or for a
    /// checkpoint larger than `checkpoint`: what a shipper has to send.
    /// Returns how many records are written.
    pub fn wait_shippable(&self, written: u64, checkpoint: u64, timeout: Duration) -> u64 {
        let st = self.lock();
        let (st, _) = self
            .shared
            .done
            .wait_timeout_while(st, timeout, |s| {
                s.durable <= written && s.checkpointed <= checkpoint && s.failed.is_none()
            })
            .unwrap_or_else(|p| p.into_inner());
        st.durable
    }

    /// Writes a checkpoint covering every record emitted so far and waits
    /// for it.
    pub fn checkpoint(&self) -> anyhow::Result<()> {
        let mut st = self.lock();
        let want = st.next_seq;
        st.checkpoint_wanted = st.checkpoint_wanted.max(want);
        self.shared.work.notify_one();
        self.wait(st, |s| s.checkpointed >= want)
    }
}

impl EventSink for AuditLog {
    fn emit(&self, record: &Record<'_>) -> anyhow::Result<()> {
        let (seq, mut st) = self.queue(record)?;
        // A task's start has no effect to hold back: any later record that
        // waits makes it durable too.
        if self.fsync == Fsync::Always && record.event.event != "task.start" {
            self.want_sync(&mut st, seq);
            self.wait(st, |s| s.durable > seq)
        } else {
            Ok(())
        }
    }

    fn end(&self, record: &Record<'_>) -> anyhow::Result<Receipt> {
        let (seq, mut st) = self.queue(record)?;
        if self.fsync == Fsync::Always {
            st.ends_waiting += 1;
            st.first_end.get_or_insert_with(Instant::now);
            // The group is complete when no task is left to join it.
            if st.running == 0 {
                self.shared.work.notify_one();
            }
        }
        if st.cover_due.is_none() {
            st.cover_due = Some(Instant::now() + self.checkpoint_delay);
        }
        Ok(Receipt::new(seq, self.progress.clone()))
    }
}

impl AuditLog {
    /// Queues `record`, waking the writer if it was idle; returns its seq and
    /// the state, still locked. Its [`body`] is written before the lock is
    /// taken, into a buffer this thread keeps for its next record.
    fn queue(&self, record: &Record<'_>) -> anyhow::Result<(u64, MutexGuard<'_, State>)> {
        use std::cell::RefCell;
        thread_local! {
            static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            buf.clear();
            body(buf, record)?;
            let mut st = self.lock();
            while full(&st.bodies, self.queue_bytes) && st.failed.is_none() && !st.closed {
                st = self.shared.done.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if let Some(f) = &st.failed {
                anyhow::bail!("audit log failed: {f}");
            }
            let idle = st.ends.is_empty();
            let seq = st.enqueue(record.event.event, buf);
            // One wake-up per group: a writer that is busy takes what is queued
            // when it comes back.
            if idle {
                self.shared.work.notify_one();
            }
            // A rare huge record does not pin its buffer for the thread's life.
            if buf.capacity() > 64 * 1024 {
                *buf = Vec::new();
            }
            Ok((seq, st))
        })
    }

    /// Somebody waits for record `seq` to be synced: the writer stops gathering a
    /// group and syncs what is queued.
    fn want_sync(&self, st: &mut State, seq: u64) {
        if st.sync_wanted <= seq {
            st.sync_wanted = seq + 1;
            self.shared.work.notify_one();
        }
    }
}

/// A finished task's view of the writer: when its `task.end` is settled, and covered.
struct LogProgress {
    shared: Arc<Shared>,
    fsync: Fsync,
}

impl LogProgress {
    /// Resolves once `done` holds; fails if the log failed or closed first.
    async fn until(&self, what: &str, done: impl Fn(&State) -> bool) -> anyhow::Result<()> {
        loop {
            let notified = self.shared.progress.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the state is read: a change after the read wakes it.
            notified.as_mut().enable();
            {
                let st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
                if done(&st) {
                    return Ok(());
                }
                if let Some(f) = &st.failed {
                    anyhow::bail!("audit log failed: {f}");
                }
                if st.closed {
                    anyhow::bail!("the audit log was closed before the record was {what}");
                }
            }
            notified.await;
        }
    }

    fn settled_in(&self, st: &State, seq: u64) -> bool {
        (self.fsync != Fsync::Always || st.durable > seq)
            && st
                .shipping
                .is_none_or(|sh| !sh.required || sh.acknowledged > seq)
    }
}

#[async_trait::async_trait]
impl Progress for LogProgress {
    async fn settled(&self, seq: u64) -> anyhow::Result<()> {
        self.until("settled", |st| self.settled_in(st, seq)).await
    }

    async fn covered(&self, seq: u64) -> anyhow::Result<()> {
        {
            let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.checkpointed <= seq && st.checkpoint_wanted <= seq {
                st.checkpoint_wanted = seq + 1;
                self.shared.work.notify_one();
            }
        }
        self.until("covered by a checkpoint", |st| {
            st.checkpointed > seq && self.settled_in(st, seq)
        })
        .await
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.lock().closing = true;
        self.shared.work.notify_one();
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    path: PathBuf,
    file: File,
    cps: File,
    tree: Frontier<Blake3>,
    key: HostKey,
    opts: LogOptions,
    /// The segment being written: its first seq, bytes, and when it opened.
    first: u64,
    bytes: u64,
    since: Instant,
    /// Closed segments being compressed.
    compressing: Vec<JoinHandle<()>>,
    /// Segments an `audit.retire` record (at this seq) retires, to delete
    /// once a checkpoint signs it.
    retiring: Option<(u64, Vec<super::segments::Segment>)>,
    /// The last checkpoint note written.
    last_note: String,
    /// Records synced to disk.
    synced: u64,
    /// The leaf hash of the last record written.
    prev: Option<[u8; 32]>,
    /// Buffers kept from one group to the next: the queue's (swapped with
    /// the state's, empty), and the lines and leaves being written.
    queued: (Vec<u8>, Vec<usize>),
    lines: Vec<u8>,
    leaves: Vec<[u8; 32]>,
}

impl Writer {
    fn run(mut self) {
        let queue_bytes = self.opts.queue_bytes;
        let mut last_cp = Instant::now();
        // When a checkpoint is owed to tasks whose records are written.
        let mut owed: Option<Instant> = None;
        // Until when tasks released by the last sync may still rejoin.
        let mut rejoin = Instant::now();
        loop {
            let (first, wanted, checkpointed, waited, released, closing) = {
                let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
                while st.ends.is_empty() && st.checkpoint_wanted <= st.checkpointed && !st.closing {
                    // Records written but not signed: sign them once a finished task's
                    // delay or the interval is up.
                    let unsigned = st.durable > st.checkpointed;
                    let interval_left = self
                        .opts
                        .checkpoint_interval
                        .saturating_sub(last_cp.elapsed());
                    let cover_left = owed.map(|d| d.saturating_duration_since(Instant::now()));
                    let left = match (unsigned, cover_left) {
                        (false, _) => self.opts.checkpoint_interval,
                        (true, Some(c)) => c.min(interval_left),
                        (true, None) => interval_left,
                    };
                    if left.is_zero() {
                        break;
                    }
                    let (s, _) = self
                        .shared
                        .work
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner());
                    st = s;
                }
                // Written at once for a blocked host call, a caller who asked for
                // a checkpoint, or finished tasks when no other task could join
                // their group; otherwise a group gathers for up to LINGER, so
                // that tasks ending close together share one sync.
                let waited_on = |st: &State| {
                    st.closing
                        || full(&st.bodies, queue_bytes)
                        || st.checkpoint_wanted > st.checkpointed
                        || st.sync_wanted > st.durable
                        || (st.ends_waiting > 0 && st.running == 0 && Instant::now() >= rejoin)
                };
                if !st.ends.is_empty() && !waited_on(&st) {
                    let noticed = Instant::now();
                    while !waited_on(&st) {
                        let mut until = st.first_end.unwrap_or(noticed) + LINGER;
                        if st.ends_waiting > 0 && st.running == 0 {
                            until = until.min(rejoin);
                        }
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        let (s, _) = self
                            .shared
                            .work
                            .wait_timeout(st, left)
                            .unwrap_or_else(|p| p.into_inner());
                        st = s;
                    }
                }
                if let Some(due) = st.cover_due.take() {
                    owed = Some(owed.map_or(due, |o| o.min(due)));
                }
                let waited = st.sync_wanted > st.durable || st.ends_waiting > 0;
                let released = st.ends_waiting;
                st.ends_waiting = 0;
                st.first_end = None;
                let first = st.next_seq - st.ends.len() as u64;
                std::mem::swap(&mut st.bodies, &mut self.queued.0);
                std::mem::swap(&mut st.ends, &mut self.queued.1);
                (
                    first,
                    st.checkpoint_wanted,
                    st.checkpointed,
                    waited,
                    released,
                    st.closing,
                )
            };
            // Threads that waited for room fill the next group while this one is written.
            if full(&self.queued.0, queue_bytes) {
                self.shared.done.notify_all();
            }
            if let Err(e) = self.append(first) {
                return self.fail(format!("writing records: {e}"));
            }
            let size = self.tree.len();
            let due = size > checkpointed
                && (wanted > checkpointed
                    || size - checkpointed >= self.opts.checkpoint_every
                    || last_cp.elapsed() >= self.opts.checkpoint_interval
                    || owed.is_some_and(|d| Instant::now() >= d)
                    || closing);
            // Batch syncs every group; always, the groups somebody waits for and
            // every group before a checkpoint, which signs only synced records.
            let sync = match self.opts.fsync {
                Fsync::None => false,
                Fsync::Batch => true,
                Fsync::Always => waited || due || closing,
            };
            if sync && let Err(e) = self.sync() {
                return self.fail(format!("syncing records: {e}"));
            }
            {
                let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
                st.durable = match self.opts.fsync {
                    Fsync::Always => self.synced,
                    Fsync::Batch | Fsync::None => size,
                };
                drop(st);
                self.shared.notify();
            }
            if released > 1 {
                rejoin = Instant::now() + REJOIN;
            }
            if due {
                if let Err(e) = self.write_checkpoint(size) {
                    return self.fail(format!("writing a checkpoint: {e}"));
                }
                last_cp = Instant::now();
                owed = None;
                {
                    let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
                    st.checkpointed = size;
                    st.last_note = Some((size, self.last_note.as_str().into()));
                    drop(st);
                    self.shared.notify();
                }
                if let Err(e) = self.finish_retiring(size) {
                    return self.fail(format!("retiring segments: {e}"));
                }
                // A segment closes right after a checkpoint, so that each
                // one ends with the checkpoint of its last record.
                if self.segment_full() {
                    if let Err(e) = self.rotate(size) {
                        return self.fail(format!("closing a segment: {e}"));
                    }
                    if let Err(e) = self.retire() {
                        return self.fail(format!("retiring segments: {e}"));
                    }
                }
            }
            if closing {
                let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
                if st.ends.is_empty() {
                    st.closed = true;
                    drop(st);
                    self.shared.notify();
                    for h in self.compressing.drain(..) {
                        let _ = h.join();
                    }
                    return;
                }
            }
        }
    }

    /// Writes the records taken from the queue, the first of them `first`.
    fn append(&mut self, first: u64) -> std::io::Result<()> {
        let (bodies, ends) = &mut self.queued;
        if ends.is_empty() {
            return Ok(());
        }
        self.lines.clear();
        self.leaves.clear();
        self.prev = chain(
            self.prev,
            first,
            bodies,
            ends,
            &mut self.lines,
            &mut self.leaves,
        );
        bodies.clear();
        ends.clear();
        self.file.write_all(&self.lines)?;
        self.bytes += self.lines.len() as u64;
        Counters::add(&self.shared.stats.groups, 1);
        Counters::add(&self.shared.stats.records, self.leaves.len() as u64);
        for leaf in &self.leaves {
            self.tree.push_hash(*leaf);
        }
        Ok(())
    }

    /// Syncs every record written so far.
    fn sync(&mut self) -> std::io::Result<()> {
        let size = self.tree.len();
        if self.synced < size {
            // Never retried: after a failed sync the kernel may have dropped
            // the dirty pages, so a retry could report success for lost data.
            self.file.sync_data()?;
            Counters::add(&self.shared.stats.syncs, 1);
            self.synced = size;
        }
        Ok(())
    }

    fn write_checkpoint(&mut self, size: u64) -> std::io::Result<String> {
        let note = Checkpoint {
            origin: self.key.verifier().name().to_string(),
            size,
            root: self.tree.root().to_vec(),
        }
        .sign(&self.key);
        self.cps.write_all(format!("{note}\n").as_bytes())?;
        if self.opts.fsync != Fsync::None {
            self.cps.sync_data()?;
            Counters::add(&self.shared.stats.syncs, 1);
        }
        Counters::add(&self.shared.stats.checkpoints, 1);
        self.last_note = note.clone();
        Ok(note)
    }

    fn segment_full(&self) -> bool {
        self.tree.len() > self.first
            && (self.opts.segment_bytes.is_some_and(|max| self.bytes >= max)
                || self
                    .opts
                    .segment_age
                    .is_some_and(|max| self.since.elapsed() >= max))
    }

    /// Closes the segment being written, which holds records `first..size`,
    /// every one of them covered by the checkpoint just written, and opens
    /// the next. The log is renamed before its checkpoints: a writer killed
    /// in between leaves the closed segment's notes in `<LOG>.checkpoints`,
    /// where they still read in order.
    fn rotate(&mut self, size: u64) -> std::io::Result<()> {
        use super::segments::{segment_checkpoints_path, segment_path, sync_dir};
        // A closed segment is never written again: it goes to disk whole,
        // whatever the sync policy.
        self.file.sync_all()?;
        self.cps.sync_all()?;
        self.synced = size;
        // Where the log will start once every segment before the next one
        // is retired: the tree's edge here and the checkpoint that signs
        // it. Written first, so that no segment ever lacks it.
        let anchor = super::verify::AnchorFile {
            v: 1,
            size,
            frontier: self.tree.nodes().iter().map(|h| hex(h)).collect(),
            checkpoint: self.last_note.clone(),
        };
        let anchor_path = super::segments::anchor_path(&segment_path(&self.path, size));
        let tmp = anchor_path.with_extension("anchor.tmp");
        {
            let mut f = super::segments::create_fresh(&tmp).map_err(at(&tmp))?;
            f.write_all(&serde_json::to_vec(&anchor)?)
                .map_err(at(&tmp))?;
            f.sync_all().map_err(at(&tmp))?;
        }
        std::fs::rename(&tmp, &anchor_path).map_err(at(&tmp))?;
        let seg = segment_path(&self.path, self.first);
        let cp_path = checkpoints_path(&self.path);
        std::fs::rename(&self.path, &seg).map_err(at(&self.path))?;
        std::fs::rename(&cp_path, segment_checkpoints_path(&seg)).map_err(at(&cp_path))?;
        let own = |e: LogError| match e {
            LogError::Io { error, .. } => error,
            other => std::io::Error::other(other.to_string()),
        };
        let file = open_own(
            OpenOptions::new().create_new(true).read(true).write(true),
            &self.path,
        )
        .map_err(own)?;
        // Another process opening the log now would find it new: it must
        // not become a second writer.
        file.try_lock().map_err(|e| {
            std::io::Error::other(format!("the new segment is locked by another process: {e}"))
        })?;
        let cps = open_own(
            OpenOptions::new().create_new(true).read(true).append(true),
            &cp_path,
        )
        .map_err(own)?;
        sync_dir(&self.path)?;
        self.file = file;
        self.cps = cps;
        self.first = size;
        self.bytes = 0;
        self.since = Instant::now();
        if let Some(level) = self.opts.compress {
            self.compress(seg, level);
        }
        Ok(())
    }

    /// Retires what the retention options say is past keeping: queues an
    /// `audit.retire` record naming the oldest closed segments, which are
    /// deleted once a checkpoint signs it ([`Writer::finish_retiring`]). The
    /// first segment kept has its anchor since it was opened, so a log cut
    /// at any point of this still verifies.
    fn retire(&mut self) -> std::io::Result<()> {
        if self.retiring.is_some()
            || (self.opts.retain_segments.is_none() && self.opts.retain_age.is_none())
        {
            return Ok(());
        }
        let closed = super::segments::segments(&self.path).map_err(at(&self.path))?;
        // The newest closed segment always stays.
        let keep_from = closed.len().saturating_sub(1);
        let by_count = self
            .opts
            .retain_segments
            .map_or(0, |n| closed.len().saturating_sub(n.max(1)));
        let by_age = match self.opts.retain_age {
            None => 0,
            Some(age) => closed
                .iter()
                .take_while(|s| {
                    std::fs::metadata(&s.records)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|old| old >= age)
                })
                .count(),
        };
        let mut n = by_count.max(by_age).min(keep_from);
        // Nothing the fleet has not acknowledged leaves this host.
        let shipping = self
            .shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .shipping;
        if let Some(sh) = shipping {
            n = n.min(
                closed
                    .iter()
                    .skip(1)
                    .take_while(|next| next.first <= sh.acknowledged)
                    .count(),
            );
        }
        if n == 0 {
            return Ok(());
        }
        let through = closed[n].first - 1;
        let retired: Vec<_> = closed[..n].to_vec();
        let names: Vec<String> = retired
            .iter()
            .filter_map(|s| s.records.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        let mut ev = Event::new("audit.retire").args(json!({
            "through_seq": through,
            "segments": names,
            "why": match (self.opts.retain_segments, self.opts.retain_age) {
                (Some(k), _) if by_count >= by_age => format!("keep {k} closed segments"),
                (_, Some(age)) => format!("keep segments younger than {}s", age.as_secs()),
                _ => String::new(),
            },
        }));
        ev.rule = Some("retention: segments retired only once this record is signed".into());
        let meta = writer_meta();
        let record = Record {
            meta: &meta,
            time: SystemTime::now(),
            event: &ev,
        };
        let mut line = Vec::new();
        body(&mut line, &record).map_err(std::io::Error::other)?;
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let seq = st.enqueue(ev.event, &line);
        st.checkpoint_wanted = st.checkpoint_wanted.max(seq + 1);
        self.retiring = Some((seq, retired));
        Ok(())
    }

    /// Deletes the segments an `audit.retire` record retired, once the
    /// checkpoint just written (of `size` records) signs that record:
    /// oldest first, records before checkpoints and anchor, so that what is
    /// left always starts at a segment with its anchor.
    fn finish_retiring(&mut self, size: u64) -> std::io::Result<()> {
        let Some((seq, _)) = &self.retiring else {
            return Ok(());
        };
        if *seq >= size {
            return Ok(());
        }
        let (_, retired) = self.retiring.take().expect("checked above");
        // A segment still being compressed is not deleted under it.
        for h in self.compressing.drain(..) {
            let _ = h.join();
        }
        use super::segments::{
            anchor_path, compressed_path, segment_checkpoints_path, segment_path,
        };
        for s in retired {
            let plain = segment_path(&self.path, s.first);
            for file in [
                plain.clone(),
                compressed_path(&plain),
                segment_checkpoints_path(&plain),
                anchor_path(&plain),
            ] {
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(at(&file)(e)),
                }
            }
            super::segments::sync_dir(&self.path)?;
        }
        Ok(())
    }

    /// Compresses a closed segment in the background; one that fails stays
    /// plain, and is tried again when the log is next opened.
    fn compress(&mut self, seg: PathBuf, level: i32) {
        self.compressing.retain(|h| !h.is_finished());
        let spawned = std::thread::Builder::new()
            .name("warden-audit-zstd".into())
            .spawn(move || {
                let _ = super::segments::compress(&seg, level);
            });
        if let Ok(h) = spawned {
            self.compressing.push(h);
        }
    }

    fn fail(self, why: String) {
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        st.failed = Some(why);
        st.closed = true;
        drop(st);
        self.shared.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn times_are_written_as_rfc3339_writes_them() {
        let cases = [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_796_313_584, 983_732_229),
            UNIX_EPOCH + Duration::new(1_796_313_584, 7),
            // The next second from the same thread: the cached part moves on.
            UNIX_EPOCH + Duration::new(1_796_313_585, 999_999_999),
            UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999),
            UNIX_EPOCH - Duration::new(86_400, 5),
        ];
        for t in cases {
            let mut out = b"x".to_vec();
            time_into(&mut out, t);
            assert_eq!(std::str::from_utf8(&out[1..]).unwrap(), rfc3339(t), "{t:?}");
        }
    }

    #[test]
    fn a_line_is_its_fields_in_order_with_seq_and_prev_first() {
        let meta = TaskMeta {
            attempt: Some(2),
            host: "h".into(),
            agent: Some("a\"b".into()),
            task: "t1".into(),
            parent: None,
            tool: "echo".into(),
            component: "blake3:00".into(),
            mcp: None,
        };
        let time = UNIX_EPOCH + Duration::new(1_796_313_584, 5);
        let start = Event::new("task.start").args(json!({"k": [1, "two"]}));
        let call = Event::call("wasi:x/y.z").resource("/r").outcome("ok");
        let mut st = State {
            next_seq: 7,
            ..State::default()
        };
        for ev in [&start, &call] {
            let mut line = Vec::new();
            body(
                &mut line,
                &Record {
                    meta: &meta,
                    time,
                    event: ev,
                },
            )
            .unwrap();
            st.enqueue(ev.event, &line);
        }
        let (mut out, mut leaves) = (Vec::new(), Vec::new());
        let last = chain(None, 0, &st.bodies, &st.ends, &mut out, &mut leaves);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"v":1,"seq":0,"time":"2026-12-03T15:59:44.000000005Z","host":"h","agent":"a\"b","task":"t1","parent":null,"tool":"echo","component":"blake3:00","attempt":2,"event":"task.start","args":{"k":[1,"two"]}}"#
        );
        let prev = hex(&leaf_hash::<Blake3>(lines[0].as_bytes()));
        assert_eq!(
            lines[1],
            format!(
                r#"{{"v":1,"seq":1,"prev":"{prev}","time":"2026-12-03T15:59:44.000000005Z","task":"t1","event":"call","call":"wasi:x/y.z","resource":"/r","outcome":"ok"}}"#
            )
        );
        assert_eq!(leaves[1], leaf_hash::<Blake3>(lines[1].as_bytes()));
        assert_eq!(last, Some(leaves[1]));
        assert_eq!((st.running, st.next_seq), (1, 9));
    }

    #[test]
    fn threads_that_record_faster_than_the_writer_writes_are_held_back() {
        // A bound of a few records, so that four threads reach it whatever this
        // machine's speed: unbounded, their queue grows to hundreds of KiB here.
        let record_bytes = 2048;
        let (_dir, log) = bounded_log(4 * record_bytes);
        let meta = writer_meta();
        let event = Event::call("wasi:x/y.z").args(json!({ "blob": "x".repeat(record_bytes) }));
        let largest = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut largest = 0;
                        for _ in 0..2000 {
                            log.emit(&now(&meta, &event)).unwrap();
                            largest = largest.max(log.lock().bodies.len());
                        }
                        largest
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .max()
                .unwrap()
        });
        // A thread that finds room adds its whole record, so the queue may pass the
        // bound by less than one record from each thread.
        let most = 4 * record_bytes + 4 * (record_bytes + 200);
        assert!(largest <= most, "{largest} bytes queued, more than {most}");
        log.checkpoint().unwrap();
        assert_eq!(log.stats().records, 8_000);
    }

    #[test]
    fn a_bound_of_zero_writes_one_group_at_a_time() {
        let (_dir, log) = bounded_log(0);
        let log = Arc::new(log);
        let (done, finished) = std::sync::mpsc::channel();
        let writer = log.clone();
        std::thread::spawn(move || {
            let meta = writer_meta();
            let event = Event::new("test.zero");
            for _ in 0..100 {
                writer.emit(&now(&meta, &event)).unwrap();
            }
            writer.checkpoint().unwrap();
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(30))
            .expect("100 records written within 30 s");
        assert_eq!(log.stats().records, 100);
    }

    /// A log with fsync `none` whose queue holds `queue_bytes`, in a directory of its own.
    fn bounded_log(queue_bytes: usize) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let key = HostKey::generate("bound/warden-audit").unwrap();
        let opts = LogOptions {
            fsync: Fsync::None,
            queue_bytes,
            ..LogOptions::default()
        };
        let log = AuditLog::open(&dir.path().join("audit.jsonl"), key, opts).unwrap();
        (dir, log)
    }

    fn now<'a>(meta: &'a TaskMeta, event: &'a Event) -> Record<'a> {
        Record {
            meta,
            time: SystemTime::now(),
            event,
        }
    }
}
