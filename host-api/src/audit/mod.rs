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
//! secret values.

use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
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

/// How much detail the audit trail keeps for high-frequency calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// One record per capability-relevant call; stream reads and writes,
    /// polls, clocks and random are summed per handle or interface.
    #[default]
    Calls,
    /// One record for every host call.
    Full,
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
}

/// Which MCP session and request a task answers: written as `"mcp":{"session":…,
/// "request":…}` in every record of the task, so that a client's tool call can be
/// found in the log (they are OpenTelemetry's `mcp.session.id` and `jsonrpc.request.id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// Where records go. Implementations give each record its `seq` and `time`
/// fields when they serialize it, and must be cheap to call from a host call.
pub trait EventSink: Send + Sync {
    /// Takes one record. An error here ends the task: a call that cannot be
    /// recorded must not proceed.
    fn emit(&self, record: &Record<'_>) -> anyhow::Result<()>;
}

/// A sink that keeps nothing, for benches and embedders that opt out.
#[derive(Debug, Default)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _record: &Record<'_>) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The audit handle of one task.
#[derive(Clone)]
pub struct Audit {
    meta: Arc<TaskMeta>,
    sink: Arc<dyn EventSink>,
    level: Level,
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
        }
    }

    /// The task's shared fields.
    pub fn meta(&self) -> &TaskMeta {
        &self.meta
    }

    /// The configured level of detail.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Sends one event to the sink.
    pub fn emit(&self, event: &Event) -> anyhow::Result<()> {
        self.sink.emit(&Record {
            meta: &self.meta,
            time: SystemTime::now(),
            event,
        })
    }
}
