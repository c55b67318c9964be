//! Watching audit records as they happen: a sink that passes every record on to the
//! real log and then to whoever subscribed.
//!
//! An agent host wraps its log (an [`AuditLog`](super::log::AuditLog), or any
//! [`EventSink`]) in an [`AuditStream`], gives the
//! stream to its tasks as their sink, and [subscribes](AuditStream::subscribe) wherever it
//! wants to watch: a UI, a monitor that revokes a grant on the first denial, a test.
//!
//! # Guarantees
//! - **The log comes first.** A record goes to the wrapped sink before anyone sees it; if
//!   the sink refuses it, the host call fails as it would without the stream, and the
//!   record is not published. Subscribers never see what the log does not hold.
//! - **Subscribers never hold up a task.** Records are published on a bounded
//!   [`tokio::sync::broadcast`] channel: publishing never waits and never fails. A
//!   subscriber that falls more than the capacity behind loses the oldest records and is
//!   told how many ([`Update::Missed`]) before it reads on.
//! - **Order.** The records of one task arrive in the order the task made them, from
//!   `task.start` to `task.end`. Records of tasks running on different threads may arrive
//!   in a slightly different order than the log's `seq` gives them.
//! - **Nothing to pay when nobody watches**: without subscribers, records are not even
//!   turned into JSON.
//!
//! Each record is the JSON object of its log line, without `seq` and `prev` (which the
//! log assigns) and with the task's identity in every record (the log writes it only in a
//! task's `task.start` and `task.end`): `v`, `time`, `host`, `agent`, `task`, `parent`,
//! `tool`, `component`, `event`, `call`, `args`, `resource`, `decision`, `rule`,
//! `outcome`, `dur_ns`, where set.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use warden::audit::stream::{AuditStream, Update};
//! use warden_host_api::audit::{Audit, Event, EventSink, Level, NullSink, TaskMeta};
//!
//! // In a host: `AuditLog::open(..)` instead of NullSink, and `stream` as each
//! // `TaskRequest`'s sink.
//! let stream = Arc::new(AuditStream::new(Arc::new(NullSink)));
//! let mut watch = stream.subscribe();
//!
//! // What a task does with its sink:
//! let meta = TaskMeta {
//!     host: "h".into(), agent: None, task: "t1".into(), parent: None,
//!     tool: "echo".into(), component: "blake3:00".into(), mcp: None, attempt: None,
//! };
//! let audit = Audit::new(meta, stream.clone(), Level::Calls);
//! audit.emit(&Event::new("task.start"))?;
//! audit.emit(&Event::new("task.end").outcome("ok"))?;
//!
//! for expected in ["task.start", "task.end"] {
//!     match watch.recv().await {
//!         Some(Update::Record(record)) => {
//!             assert_eq!(record["event"], expected);
//!             assert_eq!(record["task"], "t1");
//!         }
//!         other => panic!("{other:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```

use super::rfc3339;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast;
use warden_host_api::audit::{EventSink, Receipt, Record};

/// How many records a subscriber may fall behind before it misses the oldest, unless
/// [`AuditStream::with_capacity`] says otherwise.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A sink that records to another sink, then publishes each record to its subscribers.
pub struct AuditStream {
    inner: Arc<dyn EventSink>,
    tx: broadcast::Sender<Arc<Value>>,
}

impl AuditStream {
    /// Wraps `inner`, with room for [`DEFAULT_CAPACITY`] records per subscriber.
    pub fn new(inner: Arc<dyn EventSink>) -> Self {
        AuditStream::with_capacity(inner, DEFAULT_CAPACITY)
    }

    /// Wraps `inner`, with room for `capacity` records per subscriber (at least 1) before
    /// a slow one misses the oldest.
    pub fn with_capacity(inner: Arc<dyn EventSink>, capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        AuditStream { inner, tx }
    }

    /// A new subscriber, which sees every record published from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription(self.tx.subscribe())
    }

    /// How many subscribers there are now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl std::fmt::Debug for AuditStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStream")
            .field("subscribers", &self.tx.receiver_count())
            .finish_non_exhaustive()
    }
}

impl EventSink for AuditStream {
    fn emit(&self, record: &Record<'_>) -> anyhow::Result<()> {
        self.inner.emit(record)?;
        self.publish(record)
    }

    fn end(&self, record: &Record<'_>) -> anyhow::Result<Receipt> {
        let receipt = self.inner.end(record)?;
        self.publish(record)?;
        Ok(receipt)
    }
}

impl AuditStream {
    /// Sends `record` to every subscriber, if there are any.
    fn publish(&self, record: &Record<'_>) -> anyhow::Result<()> {
        if self.tx.receiver_count() == 0 {
            return Ok(());
        }
        let mut json = serde_json::to_value(record)?;
        if let Value::Object(fields) = &mut json {
            fields.insert("v".into(), 1.into());
            fields.insert("time".into(), rfc3339(record.time).into());
        }
        // An error only means every subscriber left since the check above.
        let _ = self.tx.send(Arc::new(json));
        Ok(())
    }
}

/// What a subscriber reads next.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The next record, as JSON.
    Record(Arc<Value>),
    /// The subscriber fell behind and this many records were dropped for it; it reads on
    /// from the oldest record still kept.
    Missed(u64),
}

/// One subscriber of an [`AuditStream`]. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription(broadcast::Receiver<Arc<Value>>);

impl Subscription {
    /// The next update, waiting for one; `None` once the stream has been dropped (every
    /// task holding it has ended) and every record has been read.
    pub async fn recv(&mut self) -> Option<Update> {
        match self.0.recv().await {
            Ok(record) => Some(Update::Record(record)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Update::Missed(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next update if one is waiting, without waiting; `None` if none is.
    pub fn try_recv(&mut self) -> Option<Update> {
        match self.0.try_recv() {
            Ok(record) => Some(Update::Record(record)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Update::Missed(n)),
            Err(_) => None,
        }
    }
}
