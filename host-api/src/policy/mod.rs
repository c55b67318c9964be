//! Policy as code: a Rego module that may refuse a capability-relevant call that the
//! grant would allow.
//!
//! The manifest is the ceiling of what a tool may touch and the grant is what one task
//! holds; a policy adds conditions that neither can express, because they depend on who is
//! asking, how deep in a delegation chain, with what risk, and when. It is a Rego module
//! (OPA 1.0 syntax, evaluated by the [regorus] interpreter) in `package warden`, named in
//! the manifest:
//!
//! ```toml
//! [policy]
//! file = "policy.rego"     # relative to the manifest, or absolute
//! ```
//!
//! It is compiled when the manifest is loaded, so a broken policy is an invalid manifest,
//! reported with the policy's file and line ([`manifest`]). Each task holds a
//! [`TaskPolicy`] (the manifest's policy and the runtime's, if any, with the task's agent,
//! grant and context), which every capability-relevant host call asks after the grant
//! allowed the call and before it proceeds: path operations and the descriptor calls that
//! read or change a file, each environment variable, each outgoing HTTP request and each
//! secret it would carry, TCP connects, name lookups, and secret uses. A denial refuses the
//! call with the guest's usual "access denied" error, and its
//! [`message`](Denied::message) becomes the deny record's `rule`.
//!
//! # What a policy defines
//!
//! Warden reads three rules of `package warden`, each optional, but at least one of
//! `deny` and `allow` must be there:
//!
//! - **`deny`**: a set of messages, usually built with `deny contains msg if { ... }`.
//!   Any message denies the call, and every message is reported. A message should say
//!   what was refused and what would allow it. (A boolean `deny if ...` also works, with
//!   the message `deny is true`.)
//! - **`allow`**: if the module defines it, the policy is an allow-list: a call is
//!   allowed only when `allow` is `true`, and otherwise denied with the message `no allow
//!   rule matched this call`. Write `default allow := false` to make that explicit. An
//!   allow-list sees *every* capability-relevant call, so list reads too.
//! - **`cacheable`**: if `true` for a call, its verdict may be reused for the same grant,
//!   call and resource without asking the policy again ([`PolicyCache`]). Define it only
//!   for decisions that do not read `input.time`; it may depend on the input, e.g.
//!   `cacheable if input.call.kind != "fs.write"`.
//!
//! **Deny wins**: if `deny` holds any message the call is denied whatever `allow` says.
//!
//! **Failing closed**: an evaluation error — a built-in that fails (they are strict here:
//! `to_number("high")` is an error, not undefined), a complete rule with two values, a
//! wrong type for `allow` or `cacheable`, an evaluation longer than
//! [`EVALUATION_TIME_LIMIT`] — denies the call with a message that starts with `policy
//! error:` and names the line, and is never cached.
//!
//! # The input
//!
//! `input` is a [`PolicyInput`]: agent, tool, task, the grant and its delegation chain,
//! the call (WIT name and kind), the resource, the HTTP method, the caller's `context`
//! and the time. The [`input`] module shows the whole document; it is stable.
//!
//! The built-ins are OPA's, less those that would make a decision depend on something
//! the input does not show: no `time.*` (read `input.time`, which a test can set), no
//! `http.send`, no `opa.runtime`, no `rand.*`. `regex.*` and `net.cidr_*` are there.
//! `print` is accepted and its output dropped: warden's stderr carries the tool's.
//!
//! # Example
//!
//! ```
//! use serde_json::json;
//! use warden_host_api::policy::{CallInfo, CallKind, GrantInfo, Policy, PolicyCache, PolicyInput, PolicyTime};
//!
//! let policy = Policy::from_source("risk.rego", r#"
//!     package warden
//!
//!     deny contains msg if {
//!         input.call.kind == "fs.write"
//!         not input.context.risk < 0.3
//!         msg := sprintf("writes need context.risk below 0.3, found %v", [input.context.risk])
//!     }
//!
//!     cacheable := true   # it reads the call and the context, never the time
//! "#).unwrap();
//!
//! let mut input = PolicyInput {
//!     agent: Some("planner".into()),
//!     tool: "notes".into(),
//!     task: "7f3a".into(),
//!     grant: GrantInfo::root("g-1", None),
//!     call: CallInfo::new("wasi:filesystem/types.[method]descriptor.open-at", CallKind::FsWrite),
//!     resource: Some("/notes/today.md".into()),
//!     method: None,
//!     context: json!({"risk": 0.4}).as_object().unwrap().clone(),
//!     client: Default::default(),
//!     time: PolicyTime::now(),
//! };
//! let cache = PolicyCache::new();
//! let denied = policy.check(&input, &cache).unwrap_err();
//! assert_eq!(denied.message(), "policy risk.rego: writes need context.risk below 0.3, found 0.4");
//!
//! input.call.kind = CallKind::FsRead;
//! assert!(policy.check(&input, &cache).is_ok());
//! ```
//!
//! [regorus]: https://github.com/microsoft/regorus

mod cache;
mod engine;
mod error;
pub mod input;
pub mod manifest;
mod task;
mod verdict;

#[cfg(test)]
mod tests;

pub use cache::{DEFAULT_CAPACITY, PolicyCache};
pub use engine::{EVALUATION_TIME_LIMIT, Policy};
pub use error::PolicyError;
pub use input::{
    CallInfo, CallKind, ContextError, GrantInfo, PolicyInput, PolicyTime, parse_context_pair,
};
pub use task::{Clock, TaskPolicy};
pub use verdict::{Denied, Verdict};
