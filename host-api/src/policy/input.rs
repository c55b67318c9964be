//! The input document a policy sees as `input`: who is calling, under which grant, what
//! call on what resource, with what caller-supplied context, and when.
//!
//! The schema is stable: fields are added, never renamed or removed, and every field is
//! always present (`null` where it does not apply), so that a policy can tell "absent" from
//! "not given" without guessing. A complete document, as `serde_json` writes it:
//!
//! ```json
//! {
//!   "agent": "planner",
//!   "tool": "repo-search",
//!   "task": "7f3a9c",
//!   "grant": {
//!     "id": "g-leaf",
//!     "depth": 2,
//!     "chain": ["g-root", "g-child", "g-leaf"],
//!     "expires": "2026-11-25T18:00:00.000000000Z"
//!   },
//!   "call": {
//!     "name": "wasi:filesystem/types.[method]descriptor.open-at",
//!     "kind": "fs.write"
//!   },
//!   "resource": "/workspace/out.txt",
//!   "method": null,
//!   "context": { "risk": 0.4 },
//!   "client": { "risk": 0 },
//!   "time": {
//!     "rfc3339": "2026-11-25T17:30:00.000000000Z",
//!     "hour": 17,
//!     "weekday": "Wednesday"
//!   }
//! }
//! ```
//!
//! Times are UTC and written as the audit log writes them (RFC 3339, nanoseconds, `Z`).
//! `weekday` is spelt as OPA's `time.weekday` spells it.

use std::fmt;
use std::time::SystemTime;

use crate::time::Civil;

use serde::Serialize;
use serde_json::{Map, Value};

/// The document a policy evaluates as `input`; see the [module docs](self) for its JSON.
///
/// A policy must not be handed anything the audit log would not hold: no file contents,
/// request bodies or secret values, only names, paths and URLs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyInput {
    /// The agent the task runs for, as the agent host named it (`--agent`); `null` if
    /// none was named.
    pub agent: Option<String>,
    /// The tool's name from the manifest's `tool.name`.
    pub tool: String,
    /// The task's id, as in the audit log.
    pub task: String,
    /// The grant the task holds and the chain it was delegated through.
    pub grant: GrantInfo,
    /// The host call about to proceed.
    pub call: CallInfo,
    /// What the call acts on, in the guest's terms: a guest path for files, a URL for
    /// HTTP, `host:port` for TCP, a name for DNS, secrets and environment variables;
    /// `null` for calls without one.
    pub resource: Option<String>,
    /// The HTTP method (`GET`, `POST`, ...) for `http` calls; `null` for every other kind.
    pub method: Option<String>,
    /// Facts about the task that the operator states: `warden run --context risk=0.4`
    /// becomes `{"risk": 0.4}`, as does `TaskRequest::context` from an embedding agent
    /// host; empty if none were given. Nothing a tool's caller sends over MCP lands here.
    pub context: Map<String, Value>,
    /// What the party asking for the task claims about it, unverified: the
    /// `_meta["dev.warden/context"]` of an MCP `tools/call`. The client may say anything
    /// (`{"risk": 0}`), so a policy should read it only to refuse, never to allow more
    /// than `context` would; empty if nothing was claimed.
    pub client: Map<String, Value>,
    /// When the call is made, in UTC.
    pub time: PolicyTime,
}

impl PolicyInput {
    /// This input as the regorus document a policy reads as `input`.
    pub(crate) fn document(&self) -> Result<regorus::Value, String> {
        document(self)
    }
}

/// `value` as a regorus document, through the `Serialize` that also writes the JSON the
/// module docs show: one spelling of every field.
pub(crate) fn document<T: Serialize>(value: &T) -> Result<regorus::Value, String> {
    serde_json::to_value(value)
        .map(regorus::Value::from)
        .map_err(|e| format!("input: {e}"))
}

/// The `grant` part of [`PolicyInput`]: the grant a task holds and where it came from.
///
/// `depth` and `id` are derived from `chain`, so the three cannot disagree: a grant issued
/// from the manifest has depth 0 and a chain of one; each delegation adds one.
///
/// ```
/// use warden_host_api::policy::GrantInfo;
///
/// let g = GrantInfo::new(vec!["root".into(), "child".into()], None).unwrap();
/// assert_eq!((g.id(), g.depth()), ("child", 1));
/// assert!(GrantInfo::new(Vec::new(), None).is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantInfo {
    id: String,
    depth: usize,
    chain: Vec<String>,
    expires: Option<String>,
}

impl GrantInfo {
    /// A grant from its delegation chain, root first and the task's own grant last, and
    /// its expiry; `None` if `chain` is empty.
    pub fn new(chain: Vec<String>, expires: Option<SystemTime>) -> Option<GrantInfo> {
        let id = chain.last()?.clone();
        Some(GrantInfo {
            id,
            depth: chain.len() - 1,
            chain,
            expires: expires.map(crate::time::rfc3339),
        })
    }

    /// A grant issued directly from the manifest: depth 0, a chain of itself.
    pub fn root(id: impl Into<String>, expires: Option<SystemTime>) -> GrantInfo {
        let id = id.into();
        GrantInfo {
            chain: vec![id.clone()],
            id,
            depth: 0,
            expires: expires.map(crate::time::rfc3339),
        }
    }

    /// The grant's id: the last element of the chain.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many delegations away from the manifest: 0 for a root grant, 1 for its child.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Grant ids from the root to this grant.
    pub fn chain(&self) -> &[String] {
        &self.chain
    }

    /// The expiry in RFC 3339 UTC, if the grant has one.
    pub fn expires(&self) -> Option<&str> {
        self.expires.as_deref()
    }
}

/// The `call` part of [`PolicyInput`]: which host function, and what kind of access.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CallInfo {
    /// The WIT name of the host function, as in the audit record's `call`, e.g.
    /// `wasi:filesystem/types.[method]descriptor.open-at`.
    pub name: String,
    /// The kind of access, the same for every function that does the same thing.
    pub kind: CallKind,
}

impl CallInfo {
    /// A call to the WIT function `name` of the given kind.
    pub fn new(name: impl Into<String>, kind: CallKind) -> CallInfo {
        CallInfo {
            name: name.into(),
            kind,
        }
    }
}

/// The kind of a capability-relevant call, written as a dotted string in the input.
///
/// Policies should match on `call.kind` rather than on WIT names: a kind names the effect
/// (a write is a write whether it is `open-at` with `truncate` or `unlink-file-at`), and a
/// new WASI version adds WIT names, not kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum CallKind {
    /// `"fs.read"`: opening for reading, reading a directory, reading metadata.
    #[serde(rename = "fs.read")]
    FsRead,
    /// `"fs.write"`: opening for writing, creating, truncating, renaming, removing,
    /// setting times.
    #[serde(rename = "fs.write")]
    FsWrite,
    /// `"env"`: reading the environment.
    #[serde(rename = "env")]
    Env,
    /// `"http"`: an outgoing HTTP request; `method` says which.
    #[serde(rename = "http")]
    Http,
    /// `"tcp"`: an outgoing TCP connection.
    #[serde(rename = "tcp")]
    Tcp,
    /// `"dns"`: a name lookup.
    #[serde(rename = "dns")]
    Dns,
    /// `"secret"`: using a host-held secret (injection, signing) or revealing it.
    #[serde(rename = "secret")]
    Secret,
}

impl CallKind {
    /// The spelling in the input document, e.g. `"fs.write"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::FsRead => "fs.read",
            CallKind::FsWrite => "fs.write",
            CallKind::Env => "env",
            CallKind::Http => "http",
            CallKind::Tcp => "tcp",
            CallKind::Dns => "dns",
            CallKind::Secret => "secret",
        }
    }
}

impl fmt::Display for CallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `time` part of [`PolicyInput`]: one instant in UTC, pre-digested for policies.
///
/// Policies read the time from here and not from a Rego built-in (the `time.*` built-ins
/// are not compiled in), so that the runtime decides which clock a policy sees and a test
/// can set it: build the input with [`PolicyTime::at`] instead of [`PolicyTime::now`].
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use warden_host_api::policy::PolicyTime;
///
/// let t = PolicyTime::at(UNIX_EPOCH + Duration::from_secs(1_764_091_800));
/// assert_eq!(t.rfc3339(), "2025-11-25T17:30:00.000000000Z");
/// assert_eq!((t.hour(), t.weekday()), (17, "Tuesday"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyTime {
    rfc3339: String,
    hour: u8,
    weekday: &'static str,
}

impl PolicyTime {
    /// The current time of the system clock.
    ///
    /// # Ambient Authority
    ///
    /// Reads the process's wall clock; tests and runtimes that inject a clock use
    /// [`PolicyTime::at`].
    pub fn now() -> PolicyTime {
        PolicyTime::at(SystemTime::now())
    }

    /// The given instant.
    pub fn at(time: SystemTime) -> PolicyTime {
        let civil = Civil::of(time);
        PolicyTime {
            rfc3339: civil.rfc3339(),
            hour: civil.hour,
            weekday: civil.weekday_name(),
        }
    }

    /// RFC 3339 in UTC with nanoseconds, e.g. `2026-11-25T17:30:00.000000000Z`.
    pub fn rfc3339(&self) -> &str {
        &self.rfc3339
    }

    /// The hour of the day in UTC, 0 to 23.
    pub fn hour(&self) -> u8 {
        self.hour
    }

    /// The day of the week in UTC, `"Monday"` to `"Sunday"`.
    pub fn weekday(&self) -> &'static str {
        self.weekday
    }
}

/// Why a `--context KEY=VALUE` argument was refused; carries the argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// No `=`, or nothing before it.
    #[error("expected KEY=VALUE, e.g. risk=0.4, found {0:?}")]
    Syntax(String),
}

/// Parses one `KEY=VALUE` context argument: the value is JSON if it parses as JSON
/// (`0.4`, `true`, `"x"`, `[1,2]`), otherwise the literal string.
///
/// This is how an agent host's `--context risk=0.4` becomes `{"risk": 0.4}` rather than
/// `{"risk": "0.4"}`, so that `input.context.risk < 0.3` compares numbers.
///
/// ```
/// use serde_json::json;
/// use warden_host_api::policy::parse_context_pair;
///
/// assert_eq!(parse_context_pair("risk=0.4").unwrap(), ("risk".into(), json!(0.4)));
/// assert_eq!(parse_context_pair("ticket=OPS-12").unwrap(), ("ticket".into(), json!("OPS-12")));
/// assert!(parse_context_pair("risk").is_err());
/// ```
pub fn parse_context_pair(arg: &str) -> Result<(String, Value), ContextError> {
    let (key, value) = arg
        .split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| ContextError::Syntax(arg.to_owned()))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::WEEKDAYS;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> PolicyTime {
        PolicyTime::at(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn calendar() {
        let epoch = at(0);
        assert_eq!(epoch.rfc3339(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(epoch.weekday(), "Thursday");
        // 2000-02-29 was a Tuesday; 951_782_400 is its midnight.
        let leap = at(951_782_400 + 23 * 3600 + 59 * 60 + 59);
        assert_eq!(leap.rfc3339(), "2000-02-29T23:59:59.000000000Z");
        assert_eq!((leap.hour(), leap.weekday()), (23, "Tuesday"));
        let nanos = PolicyTime::at(UNIX_EPOCH + Duration::new(1, 5));
        assert_eq!(nanos.rfc3339(), "1970-01-01T00:00:01.000000005Z");
        let before = PolicyTime::at(UNIX_EPOCH - Duration::new(1, 250_000_000));
        assert_eq!(before.rfc3339(), "1969-12-31T23:59:58.750000000Z");
        assert_eq!(before.weekday(), "Wednesday");
    }

    #[test]
    fn every_weekday_in_one_week() {
        // 2026-11-23 00:00 UTC is a Monday.
        let monday = 1_795_392_000;
        let names: Vec<_> = (0..7).map(|d| at(monday + d * 86_400).weekday()).collect();
        assert_eq!(names, WEEKDAYS);
        assert_eq!(at(monday).rfc3339(), "2026-11-23T00:00:00.000000000Z");
    }

    #[test]
    fn grant_depth_follows_the_chain() {
        let root = GrantInfo::root("g0", None);
        assert_eq!(
            (root.id(), root.depth(), root.chain()),
            ("g0", 0, &["g0".to_owned()][..])
        );
        let leaf = GrantInfo::new(
            vec!["g0".into(), "g1".into(), "g2".into()],
            Some(UNIX_EPOCH),
        )
        .unwrap();
        assert_eq!((leaf.id(), leaf.depth()), ("g2", 2));
        assert_eq!(leaf.expires(), Some("1970-01-01T00:00:00.000000000Z"));
    }

    #[test]
    fn context_pairs() {
        use serde_json::json;
        let cases = [
            ("risk=0.4", ("risk", json!(0.4))),
            ("ok=true", ("ok", json!(true))),
            ("list=[1,2]", ("list", json!([1, 2]))),
            ("name=\"x\"", ("name", json!("x"))),
            ("name=x y", ("name", json!("x y"))),
            ("empty=", ("empty", json!(""))),
            ("eq=a=b", ("eq", json!("a=b"))),
        ];
        for (arg, (key, value)) in cases {
            assert_eq!(
                parse_context_pair(arg).unwrap(),
                (key.to_owned(), value),
                "{arg}"
            );
        }
        for bad in ["risk", "=0.4", ""] {
            assert_eq!(
                parse_context_pair(bad).unwrap_err(),
                ContextError::Syntax(bad.to_owned())
            );
        }
    }
}
