//! Audit events: what every capability reports about every host call.
//!
//! Capability modules never write files. They hand an [`Event`] to the task's
//! [`Audit`] handle, which stamps it with who, where and when, and passes it to
//! an [`EventSink`]. The runtime decides what the sink is (a JSON Lines file
//! today, the Merkle log tomorrow); nothing in `host-api` changes when it does.
//!
//! The record fields follow the audit record of the design: `seq`, `time`,
//! `host`, `agent`, `task`, `parent`, `tool`, `component`, `event`, `call`,
//! `args`, `resource`, `decision`, `rule`, `outcome` and `dur_ns`. `args` is a
//! summary (paths, flags, sizes) and never holds file contents, bodies or
//! secret values. The log writes the task's identity (`host`, `agent`, `parent`,
//! `tool`, `component`) in its `task.start` and `task.end` only
//! ([`Record::identified`]); the records between name their `task`.
//!
//! # Bounded records
//!
//! Much of a record comes from the guest (paths, URLs, header names), and a
//! hostile tool must not fill the disk that every other tool logs to. So
//! [`Audit`] caps what it hands the sink:
//!
//! - a text field (`resource`, `rule`, `outcome`, any string in `args`) longer
//!   than [`MAX_FIELD`] bytes keeps its first [`KEEP`] bytes, then its length and
//!   the BLAKE3 of the whole value: `/ws/aaaa…[70000 bytes, blake3:9f2c…]`;
//! - an array in `args` keeps its first [`MAX_ITEMS`] elements, then one string
//!   naming how many more there were and the BLAKE3 of the whole array's JSON;
//! - a task writes at most its record budget ([`DEFAULT_RECORD_BUDGET`] unless
//!   the manifest's `[audit] max-records` says otherwise), besides its
//!   `task.end`. The record past the budget is an `audit.budget` record, and the
//!   call that wanted it, like every later one, fails as an unrecordable call
//!   does: the task ends.

use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Whether a host call was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The call was within the task's grants and was performed.
    Allow,
    /// The call was refused; `rule` says why.
    Deny,
}

/// How much detail the audit trail keeps for high-frequency calls: a manifest's `[audit]
/// level`, `"calls"` or `"full"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// One record per capability-relevant call (path operations, opens, env, HTTP, secrets
    /// ...); stream reads and writes and queries on an open descriptor (stat, type, flags,
    /// metadata hash) are summed per handle, with its drop, into one `call.summary`;
    /// polls, clocks, random and the like into one per task.
    #[default]
    Calls,
    /// One record for every host call, stream reads and polls included.
    Full,
}

impl Level {
    /// The manifest spelling: `"calls"` or `"full"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Calls => "calls",
            Level::Full => "full",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Level {
    type Err = String;

    /// Fails with a message naming the value, e.g. `expected "calls" or "full", found "all"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "calls" => Ok(Level::Calls),
            "full" => Ok(Level::Full),
            other => Err(format!("expected \"calls\" or \"full\", found {other:?}")),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Who, where and what: the fields that every record of one task shares.
#[derive(Debug, Clone, Serialize)]
pub struct TaskMeta {
    /// Name of the machine that ran the task.
    pub host: String,
    /// The agent the task runs for, as the caller named it.
    pub agent: Option<String>,
    /// Unique id of the task.
    pub task: String,
    /// Id of the task or grant this one was derived from.
    pub parent: Option<String>,
    /// Tool name from the manifest.
    pub tool: String,
    /// `blake3:<hex>` of the component bytes.
    pub component: String,
    /// The MCP session and request the task answers, when `warden mcp` runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpIds>,
    /// Which delivery of the task this is, when a fleet worker runs it: 1 the first
    /// time, more when a worker died mid-task and another took it again (same `task`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

/// Which MCP session and request a task answers: written as `"mcp":{"session":…,
/// "request":…}` in every record of the task, so that a client's tool call can be
/// found in the log (they are OpenTelemetry's `mcp.session.id` and `jsonrpc.request.id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct McpIds {
    /// The session: the `Mcp-Session-Id` of a Streamable HTTP session, or the id
    /// `warden mcp` gives each connection where the protocol has none.
    pub session: String,
    /// The JSON-RPC id of the `tools/call` request, as text.
    pub request: String,
}

/// One audit event, before the sink gives it a sequence number.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Kind of event: `task.start`, `call`, `task.end`, `log`, ...
    pub event: &'static str,
    /// WIT name of the host function, e.g.
    /// `wasi:filesystem/types.[method]descriptor.open-at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<&'static str>,
    /// Summary of the arguments: never contents or secrets.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub args: Value,
    /// The resource acted on, in the guest's terms (a guest path, a stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Whether the call was let through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Which grant or check decided, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `ok`, `error:<code>` or `trap:<kind>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Time the host spent on the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dur_ns: Option<u64>,
}

impl Event {
    /// A new event of the given kind with every optional field empty.
    pub fn new(event: &'static str) -> Self {
        Event {
            event,
            call: None,
            args: Value::Null,
            resource: None,
            decision: None,
            rule: None,
            outcome: None,
            dur_ns: None,
        }
    }

    /// A `call` event for the WIT function `call`.
    pub fn call(call: &'static str) -> Self {
        Event {
            call: Some(call),
            ..Event::new("call")
        }
    }

    /// Sets the argument summary.
    pub fn args(mut self, args: Value) -> Self {
        self.args = args;
        self
    }

    /// Sets the resource acted on.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Records an allow decision and the rule that made it.
    pub fn allow(mut self, rule: impl Into<String>) -> Self {
        self.decision = Some(Decision::Allow);
        self.rule = Some(rule.into());
        self
    }

    /// Records a deny decision and the rule that made it.
    pub fn deny(mut self, rule: impl Into<String>) -> Self {
        self.decision = Some(Decision::Deny);
        self.rule = Some(rule.into());
        self
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = Some(outcome.into());
        self
    }

    /// Sets the duration.
    pub fn took(mut self, dur: Duration) -> Self {
        self.dur_ns = Some(u64::try_from(dur.as_nanos()).unwrap_or(u64::MAX));
        self
    }
}

/// A stamped event as the sink receives it.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// Who ran what.
    #[serde(flatten)]
    pub meta: &'a TaskMeta,
    /// When the event happened.
    #[serde(skip)]
    pub time: SystemTime,
    /// The event itself.
    #[serde(flatten)]
    pub event: &'a Event,
}

impl Record<'_> {
    /// Whether the log writes the task's identity (`host`, `agent`, `parent`, `tool`,
    /// `component`, `mcp`) in this record: in `task.start` and `task.end`, and in records
    /// of no task (`task` is `-`). Every other record of a task names only its `task` and
    /// is read with its `task.start` (joined on `task`); the identity would repeat in
    /// each, a third of a call record. Both ends carry it so that a reader of a log whose
    /// oldest segments were retired still finds the identity of every task that ended.
    pub fn identified(&self) -> bool {
        matches!(self.event.event, "task.start" | "task.end") || self.meta.task == NO_TASK
    }
}

/// The `task` of records that belong to no task: the log's own (`recovery`,
/// `audit.retire`).
pub const NO_TASK: &str = "-";

/// Where records go. Implementations give each record its `seq` and `time`
/// fields when they serialize it, and must be cheap to call from a host call.
pub trait EventSink: Send + Sync {
    /// Takes one record. An error here ends the task: a call that cannot be
    /// recorded must not proceed.
    fn emit(&self, record: &Record<'_>) -> anyhow::Result<()>;

    /// Takes a task's last record, its `task.end`, without waiting for it: the
    /// [`Receipt`] is what the task's caller waits on before the result is
    /// returned, off the thread that runs tasks. A sink that has nothing to
    /// wait for writes it as any other record.
    fn end(&self, record: &Record<'_>) -> anyhow::Result<Receipt> {
        self.emit(record).map(|()| Receipt::settled_now())
    }
}

/// What a sink promises about a task's `task.end` record and everything the task
/// wrote before it, and the means to wait for each promise.
#[derive(Clone)]
pub struct Receipt {
    seq: u64,
    progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt")
            .field("seq", &self.progress.as_ref().map(|_| self.seq))
            .finish()
    }
}

impl Receipt {
    /// A receipt with nothing to wait for: the sink is done with the record.
    pub fn settled_now() -> Receipt {
        Receipt {
            seq: 0,
            progress: None,
        }
    }

    /// A receipt for record `seq` of a sink whose writer reports through `progress`.
    pub fn new(seq: u64, progress: Arc<dyn Progress>) -> Receipt {
        Receipt {
            seq,
            progress: Some(progress),
        }
    }

    /// The record's `seq`, when the sink numbers records.
    pub fn seq(&self) -> Option<u64> {
        self.progress.as_ref().map(|_| self.seq)
    }

    /// Waits until the record is as safe as the sink promises a finished task's records
    /// are (for the audit log: synced with fsync `always`, acknowledged by the fleet when
    /// shipping is required).
    pub async fn settled(&self) -> anyhow::Result<()> {
        match &self.progress {
            Some(p) => p.settled(self.seq).await,
            None => Ok(()),
        }
    }

    /// Waits until a signed checkpoint covers the record, and with it every record
    /// before it; for a sink without checkpoints, until it is [settled](Self::settled).
    pub async fn covered(&self) -> anyhow::Result<()> {
        match &self.progress {
            Some(p) => p.covered(self.seq).await,
            None => Ok(()),
        }
    }
}

/// How a sink's writer tells waiting callers how far it got.
#[async_trait::async_trait]
pub trait Progress: Send + Sync {
    /// Resolves once record `seq` is settled (see [`Receipt::settled`]).
    async fn settled(&self, seq: u64) -> anyhow::Result<()>;
    /// Resolves once a signed checkpoint covers record `seq`, asking for one now if
    /// none is due sooner.
    async fn covered(&self, seq: u64) -> anyhow::Result<()>;
}

/// A sink that keeps nothing, for benches and embedders that opt out.
#[derive(Debug, Default)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _record: &Record<'_>) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The longest text field a record keeps whole, in bytes.
pub const MAX_FIELD: usize = 1024;

/// How much of a longer text field is kept, in bytes (less, to end on a character).
pub const KEEP: usize = 256;

/// How many elements of an array in `args` are kept.
pub const MAX_ITEMS: usize = 64;

/// How many records a task may write, besides its `task.end`, unless its manifest says
/// otherwise.
pub const DEFAULT_RECORD_BUDGET: u64 = 100_000;

/// The audit handle of one task.
#[derive(Clone)]
pub struct Audit {
    meta: Arc<TaskMeta>,
    sink: Arc<dyn EventSink>,
    level: Level,
    budget: Arc<Budget>,
    /// The receipt of the task's `task.end`, once written.
    ended: Arc<std::sync::OnceLock<Receipt>>,
}

/// The records a task may still write.
#[derive(Debug)]
struct Budget {
    max: u64,
    used: AtomicU64,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("task", &self.meta.task)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// A handle that stamps records with `meta` and sends them to `sink`.
    pub fn new(meta: TaskMeta, sink: Arc<dyn EventSink>, level: Level) -> Self {
        Audit {
            meta: Arc::new(meta),
            sink,
            level,
            budget: Arc::new(Budget {
                max: DEFAULT_RECORD_BUDGET,
                used: AtomicU64::new(0),
            }),
            ended: Arc::default(),
        }
    }

    /// The same handle with a budget of `max` records besides `task.end` (see the
    /// [module docs](self)); set before the task's first record.
    pub fn with_budget(mut self, max: u64) -> Self {
        self.budget = Arc::new(Budget {
            max,
            used: AtomicU64::new(0),
        });
        self
    }

    /// The task's shared fields.
    pub fn meta(&self) -> &TaskMeta {
        &self.meta
    }

    /// The configured level of detail.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Sends one event to the sink, its fields capped; fails once the task's record
    /// budget is spent (`task.end` is always written).
    pub fn emit(&self, event: &Event) -> anyhow::Result<()> {
        if event.event != "task.end" {
            let max = self.budget.max;
            let used = self.budget.used.fetch_add(1, Ordering::Relaxed);
            if used >= max {
                if used == max {
                    let spent = Event::new("audit.budget")
                        .args(serde_json::json!({ "max_records": max }))
                        .outcome("error:budget");
                    self.write(&spent)?;
                }
                anyhow::bail!(
                    "the task wrote its budget of {max} audit records (raise [audit] \
                     max-records in the manifest if it needs more)"
                );
            }
        }
        self.write(event)
    }

    /// Sends the task's `task.end`, which no record budget refuses, and returns what the
    /// caller waits on before the task's result goes out.
    pub fn end(&self, event: &Event) -> anyhow::Result<Receipt> {
        let capped = cap(event);
        let receipt = self.sink.end(&Record {
            meta: &self.meta,
            time: SystemTime::now(),
            event: capped.as_ref().unwrap_or(event),
        })?;
        let _ = self.ended.set(receipt.clone());
        Ok(receipt)
    }

    /// The receipt of the task's `task.end`, once [`Audit::end`] wrote it.
    pub fn receipt(&self) -> Option<&Receipt> {
        self.ended.get()
    }

    fn write(&self, event: &Event) -> anyhow::Result<()> {
        let capped = cap(event);
        self.sink.emit(&Record {
            meta: &self.meta,
            time: SystemTime::now(),
            event: capped.as_ref().unwrap_or(event),
        })
    }
}

/// `event` with its long fields cut down, or `None` if none is too long (the usual case,
/// which copies nothing).
fn cap(event: &Event) -> Option<Event> {
    let long = |s: &Option<String>| s.as_ref().is_some_and(|s| s.len() > MAX_FIELD);
    if !long(&event.resource) && !long(&event.rule) && !long(&event.outcome) && fits(&event.args) {
        return None;
    }
    let mut event = event.clone();
    for field in [&mut event.resource, &mut event.rule, &mut event.outcome] {
        if let Some(text) = field.as_mut().filter(|s| s.len() > MAX_FIELD) {
            *text = cut(text);
        }
    }
    cap_value(&mut event.args);
    Some(event)
}

fn fits(value: &Value) -> bool {
    match value {
        Value::String(s) => s.len() <= MAX_FIELD,
        Value::Array(items) => items.len() <= MAX_ITEMS && items.iter().all(fits),
        Value::Object(map) => map.iter().all(|(k, v)| k.len() <= MAX_FIELD && fits(v)),
        _ => true,
    }
}

fn cap_value(value: &mut Value) {
    match value {
        Value::String(s) if s.len() > MAX_FIELD => *s = cut(s),
        Value::Array(items) => {
            if items.len() > MAX_ITEMS {
                let whole = serde_json::to_vec(items).unwrap_or_default();
                let more = items.len() - MAX_ITEMS;
                items.truncate(MAX_ITEMS);
                items.push(Value::String(format!(
                    "…[{more} more, blake3:{}]",
                    blake3::hash(&whole).to_hex()
                )));
            }
            items.iter_mut().for_each(cap_value);
        }
        Value::Object(map) => {
            if map.keys().any(|k| k.len() > MAX_FIELD) {
                let entries = std::mem::take(map);
                for (k, v) in entries {
                    let k = if k.len() > MAX_FIELD { cut(&k) } else { k };
                    map.insert(k, v);
                }
            }
            map.values_mut().for_each(cap_value);
        }
        _ => {}
    }
}

/// The first [`KEEP`] bytes of `text` (to a character boundary), its length and BLAKE3.
fn cut(text: &str) -> String {
    let mut end = KEEP.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}…[{} bytes, blake3:{}]",
        &text[..end],
        text.len(),
        blake3::hash(text.as_bytes()).to_hex()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Keep(Mutex<Vec<Value>>);

    impl EventSink for Keep {
        fn emit(&self, record: &Record<'_>) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(serde_json::to_value(record)?);
            Ok(())
        }
    }

    fn audit(sink: Arc<Keep>) -> Audit {
        let meta = TaskMeta {
            attempt: None,
            host: "h".into(),
            agent: None,
            task: "t".into(),
            parent: None,
            tool: "tool".into(),
            component: "blake3:00".into(),
            mcp: None,
        };
        Audit::new(meta, sink, Level::Calls)
    }

    #[test]
    fn long_fields_keep_a_prefix_their_length_and_hash() {
        let sink = Arc::new(Keep::default());
        let path = format!("/ws/{}", "é".repeat(40_000));
        let names: Vec<String> = (0..1000).map(|i| format!("x-h{i}")).collect();
        let event = Event::call("wasi:filesystem/types.[method]descriptor.open-at")
            .resource(path.clone())
            .args(serde_json::json!({ "path": path, "headers": names, "n": 3 }))
            .deny(format!("no grant covers {path}"));
        audit(sink.clone()).emit(&event).unwrap();
        let record = sink.0.lock().unwrap().pop().unwrap();
        let line = serde_json::to_string(&record).unwrap();
        assert!(line.len() < 8 * 1024, "{} bytes", line.len());
        let hash = blake3::hash(path.as_bytes()).to_hex().to_string();
        let resource = record["resource"].as_str().unwrap();
        assert!(resource.starts_with("/ws/éé"), "{resource}");
        assert!(resource.ends_with(&format!("…[{} bytes, blake3:{hash}]", path.len())));
        assert_eq!(record["args"]["path"], record["resource"]);
        let rule = format!("no grant covers {path}");
        let rule_hash = blake3::hash(rule.as_bytes()).to_hex().to_string();
        assert!(
            record["rule"]
                .as_str()
                .unwrap()
                .ends_with(&format!("blake3:{rule_hash}]"))
        );
        let headers = record["args"]["headers"].as_array().unwrap();
        assert_eq!(headers.len(), MAX_ITEMS + 1);
        assert!(
            headers[MAX_ITEMS]
                .as_str()
                .unwrap()
                .starts_with("…[936 more, blake3:")
        );
        assert_eq!(record["args"]["n"], 3);

        // Short records pass as they are.
        let short = Event::call("c")
            .resource("/ws/a")
            .args(serde_json::json!({ "p": "/ws/a" }));
        audit(sink.clone()).emit(&short).unwrap();
        let record = sink.0.lock().unwrap().pop().unwrap();
        assert_eq!(record["resource"], "/ws/a");
        assert_eq!(record["args"], serde_json::json!({ "p": "/ws/a" }));
    }

    #[test]
    fn a_task_past_its_budget_fails_but_still_ends() {
        let sink = Arc::new(Keep::default());
        let audit = audit(sink.clone()).with_budget(3);
        for _ in 0..3 {
            audit.emit(&Event::call("c")).unwrap();
        }
        let e = audit.emit(&Event::call("c")).unwrap_err().to_string();
        assert!(e.contains("budget of 3 audit records"), "{e}");
        assert!(e.contains("max-records"), "{e}");
        audit.emit(&Event::call("c")).unwrap_err();
        audit.emit(&Event::new("task.end")).unwrap();
        let events: Vec<String> = sink
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|r| r["event"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(events, ["call", "call", "call", "audit.budget", "task.end"]);
    }
}
