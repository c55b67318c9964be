//! [`TaskPolicy`]: the policies one task's calls are checked against, and the part of
//! their input that stays the same for the whole task.

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::cache::{Key, PolicyCache};
use super::engine::Policy;
use super::input::{CallInfo, CallKind, GrantInfo, PolicyInput, PolicyTime, document};
use super::verdict::Denied;
use crate::audit::TaskMeta;

/// Where a task's policies read `input.time` from.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The policies of one task: every capability-relevant host call asks them, after the
/// grant allowed the call and before it proceeds (or asks an approver).
///
/// Cheap to clone (one `Arc`). [`TaskPolicy::default`] has no policy and allows every
/// call the grant allows; that is what a task gets when neither its manifest nor its
/// runtime names a policy.
///
/// ```
/// use warden_host_api::audit::TaskMeta;
/// use warden_host_api::policy::{CallKind, GrantInfo, Policy, TaskPolicy};
///
/// let policy = Policy::from_source("no-env.rego", r#"
///     package warden
///     deny contains "no environment for sub-agents" if {
///         input.call.kind == "env"
///         input.grant.depth > 0
///     }
/// "#).unwrap();
/// let meta = TaskMeta {
///     host: "build-7".into(),
///     agent: Some("planner".into()),
///     task: "t1".into(),
///     parent: None,
///     tool: "notes".into(),
///     component: "blake3:00".into(),
///     mcp: None,
///     attempt: None,
/// };
/// let chain = vec!["root".into(), "child".into()];
/// let task = TaskPolicy::new(vec![policy], &meta, GrantInfo::new(chain, None).unwrap(), Default::default());
///
/// let denied = task.check("wasi:cli/environment.get-environment", CallKind::Env, Some("HOME"), None);
/// assert_eq!(denied.unwrap_err().message(), "policy no-env.rego: no environment for sub-agents");
/// assert!(task.check("wasi:filesystem/types.[method]descriptor.stat-at", CallKind::FsRead, Some("/ws"), None).is_ok());
/// ```
#[derive(Clone, Default)]
pub struct TaskPolicy {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    policies: Vec<Policy>,
    cache: PolicyCache,
    agent: Option<String>,
    tool: String,
    task: String,
    grant: GrantInfo,
    context: Map<String, Value>,
    client: Map<String, Value>,
    clock: Option<Clock>,
    /// The input document with the task's fields, made at the first evaluation: each call
    /// replaces only its own fields (`call`, `resource`, `method`, `time`) in a copy, which
    /// shares the rest. Converting the whole input every call was a fifth of a decision.
    base: OnceLock<Result<regorus::Value, String>>,
}

impl std::fmt::Debug for TaskPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("TaskPolicy(none)"),
            Some(i) => f
                .debug_struct("TaskPolicy")
                .field("policies", &i.policies)
                .field("grant", &i.grant)
                .field("context", &i.context)
                .finish_non_exhaustive(),
        }
    }
}

impl TaskPolicy {
    /// The policies of the task whose records carry `meta`, running under `grant` with the
    /// agent host's `context`. Every policy must allow a call; with none, every call is
    /// left to the grant.
    pub fn new(
        policies: Vec<Policy>,
        meta: &TaskMeta,
        grant: GrantInfo,
        context: Map<String, Value>,
    ) -> TaskPolicy {
        if policies.is_empty() {
            return TaskPolicy::default();
        }
        TaskPolicy {
            inner: Some(Arc::new(Inner {
                policies,
                cache: PolicyCache::new(),
                agent: meta.agent.clone(),
                tool: meta.tool.clone(),
                task: meta.task.clone(),
                grant,
                context,
                client: Map::new(),
                clock: None,
                base: OnceLock::new(),
            })),
        }
    }

    /// Reads `input.time` from `clock` instead of the system clock: for an agent host
    /// with its own notion of time, and for tests of time-dependent policies.
    pub fn clock(mut self, clock: Clock) -> TaskPolicy {
        // Set while the task's policy is being built, before it is shared.
        if let Some(inner) = self.inner.as_mut().and_then(Arc::get_mut) {
            inner.clock = Some(clock);
        }
        self
    }

    /// What the task's caller claims, unverified, as `input.client` (an MCP client's
    /// `_meta` context), kept apart from the operator's `context`.
    pub fn client(mut self, client: Map<String, Value>) -> TaskPolicy {
        if let Some(inner) = self.inner.as_mut().and_then(Arc::get_mut) {
            inner.client = client;
        }
        self
    }

    /// Whether any policy is asked.
    pub fn is_active(&self) -> bool {
        self.inner.is_some()
    }

    /// Asks every policy about one call: `call` is its WIT name, `resource` what it acts
    /// on in the guest's terms (a path, URL, `host:port`, or a secret, variable or host
    /// name) and `method` the HTTP method of an `http` call. The first denial is returned;
    /// its [`message`](Denied::message) is the deny record's `rule`.
    pub fn check(
        &self,
        call: &str,
        kind: CallKind,
        resource: Option<&str>,
        method: Option<&str>,
    ) -> Result<(), Denied> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        // Built only when some policy has no cached verdict: a cache hit must not pay
        // for the document (its context, its time).
        let mut input = None;
        for policy in &inner.policies {
            let key = Key::new(policy, inner.grant.id(), call, kind, method, resource);
            let verdict = inner.cache.evaluate_key(key, policy, || {
                input
                    .get_or_insert_with(|| inner.document(call, kind, resource, method))
                    .clone()
            });
            verdict.into_result(policy.name())?;
        }
        Ok(())
    }
}

impl Inner {
    /// The document of `input_at(call, kind, resource, method, now)`, from the task's base.
    fn document(
        &self,
        call: &str,
        kind: CallKind,
        resource: Option<&str>,
        method: Option<&str>,
    ) -> Result<regorus::Value, String> {
        let base = self
            .base
            .get_or_init(|| document(&self.input_at("", CallKind::FsRead, None, None, UNIX_EPOCH)));
        let mut doc = base.clone()?;
        let fields = doc.as_object_mut().map_err(|e| format!("input: {e}"))?;
        let text = |s: Option<&str>| s.map_or(regorus::Value::Null, regorus::Value::from);
        fields.insert("call".into(), document(&CallInfo::new(call, kind))?);
        fields.insert("resource".into(), text(resource));
        fields.insert("method".into(), text(method));
        fields.insert("time".into(), document(&PolicyTime::at(self.now()))?);
        Ok(doc)
    }

    fn now(&self) -> SystemTime {
        self.clock.as_ref().map_or_else(SystemTime::now, |c| c())
    }

    fn input_at(
        &self,
        call: &str,
        kind: CallKind,
        resource: Option<&str>,
        method: Option<&str>,
        now: SystemTime,
    ) -> PolicyInput {
        PolicyInput {
            agent: self.agent.clone(),
            tool: self.tool.clone(),
            task: self.task.clone(),
            grant: self.grant.clone(),
            call: CallInfo::new(call, kind),
            resource: resource.map(str::to_owned),
            method: method.map(str::to_owned),
            context: self.context.clone(),
            client: self.client.clone(),
            time: PolicyTime::at(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, UNIX_EPOCH};

    fn meta() -> TaskMeta {
        TaskMeta {
            attempt: None,
            host: "h".into(),
            agent: None,
            task: "t".into(),
            parent: None,
            tool: "tool".into(),
            component: "blake3:00".into(),
            mcp: None,
        }
    }

    /// Each call's document is the task's base with that call's fields replaced: the same
    /// document, field for field, as converting the whole input, and nothing of one call is
    /// left in the next.
    #[test]
    fn a_call_document_is_the_whole_input_converted() {
        let mut meta = meta();
        meta.agent = Some("planner".into());
        let grant = GrantInfo::new(
            vec!["root".into(), "leaf".into()],
            Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        )
        .unwrap();
        let context = serde_json::json!({"risk": 0.4, "tags": ["a", "b"]});
        let policy = Policy::from_source("p.rego", "package warden\ndeny if false\n").unwrap();
        let tick = Arc::new(AtomicU64::new(1_795_600_800));
        let clock = tick.clone();
        let task = TaskPolicy::new(
            vec![policy],
            &meta,
            grant,
            context.as_object().unwrap().clone(),
        )
        .client(serde_json::json!({"risk": 0}).as_object().unwrap().clone())
        .clock(Arc::new(move || {
            UNIX_EPOCH + Duration::from_secs(clock.fetch_add(3700, Ordering::SeqCst))
        }));
        let inner = task.inner.as_ref().unwrap();
        let calls = [
            (
                "wasi:http/outgoing-handler.handle",
                CallKind::Http,
                Some("https://x.test/"),
                Some("POST"),
            ),
            (
                "wasi:cli/environment.get-environment",
                CallKind::Env,
                None,
                None,
            ),
            (
                "wasi:filesystem/types.[method]descriptor.open-at",
                CallKind::FsWrite,
                Some("/w/a"),
                None,
            ),
            (
                "wasi:http/outgoing-handler.handle",
                CallKind::Http,
                Some("https://x.test/"),
                Some("POST"),
            ),
        ];
        for (call, kind, resource, method) in calls {
            let fast = inner.document(call, kind, resource, method).unwrap();
            // The clock moved on by one tick; the whole input is made at the same time.
            tick.fetch_sub(3700, Ordering::SeqCst);
            let whole = inner
                .input_at(call, kind, resource, method, inner.now())
                .document()
                .unwrap();
            assert_eq!(fast, whole, "{call}");
        }
    }

    /// A policy that wrongly marks a time-dependent verdict cacheable shows whether
    /// the task reuses verdicts: a reused one does not see the clock move.
    #[test]
    fn a_task_reuses_cacheable_verdicts_per_resource() {
        let policy = Policy::from_source(
            "afternoon.rego",
            "package warden\ndeny contains \"afternoon\" if input.time.hour >= 12\ncacheable := true\n",
        )
        .unwrap();
        let hour = Arc::new(AtomicU64::new(10));
        let clock = hour.clone();
        let task = TaskPolicy::new(
            vec![policy],
            &meta(),
            GrantInfo::root("g", None),
            Map::new(),
        )
        .clock(Arc::new(move || {
            UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst) * 3600)
        }));
        let call = "wasi:filesystem/types.[method]descriptor.open-at";
        let check = |path: &str| task.check(call, CallKind::FsRead, Some(path), None);
        assert!(check("/a").is_ok());
        hour.store(13, Ordering::SeqCst);
        assert!(check("/a").is_ok(), "reused for the same resource");
        assert!(check("/b").is_err(), "asked again for another");
        let other_kind = task.check(call, CallKind::FsWrite, Some("/a"), None);
        assert!(other_kind.is_err(), "and for another kind of call");
    }

    #[test]
    fn every_policy_must_allow() {
        let first = Policy::from_source(
            "a.rego",
            "package warden\ndeny contains \"a\" if input.resource == \"/a\"\n",
        )
        .unwrap();
        let second = Policy::from_source(
            "b.rego",
            "package warden\ndeny contains \"b\" if input.resource == \"/b\"\n",
        )
        .unwrap();
        let task = TaskPolicy::new(
            vec![first, second],
            &meta(),
            GrantInfo::root("g", None),
            Map::new(),
        );
        let check = |path: &str| task.check("c", CallKind::FsRead, Some(path), None);
        assert_eq!(check("/a").unwrap_err().message(), "policy a.rego: a");
        assert_eq!(check("/b").unwrap_err().message(), "policy b.rego: b");
        assert!(check("/c").is_ok());
        assert!(
            !TaskPolicy::new(Vec::new(), &meta(), GrantInfo::root("g", None), Map::new())
                .is_active()
        );
    }
}
