//! [`PolicyCache`]: verdicts a policy marked cacheable, per grant, call and resource.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::engine::Policy;
use super::input::{CallKind, PolicyInput};
use super::verdict::{Denied, Verdict};

/// How many verdicts a [`PolicyCache::new`] keeps; see [`PolicyCache::with_capacity`].
pub const DEFAULT_CAPACITY: usize = 4096;

/// Verdicts that their policy declared cacheable, reused for the same grant, call and
/// resource.
///
/// The key is the policy, the grant id, the call (WIT name and kind), the HTTP method and
/// the resource. Everything else in the input — agent, tool, task, the grant's chain and
/// expiry, `context` and `time` — is not in the key: a policy may mark a decision
/// cacheable only if it does not depend on `time`, and the rest is fixed for the life of
/// a grant (a grant is issued to one agent for one task, whose context the agent host sets
/// when it starts the task). The method is in the key because one WIT function,
/// `wasi:http/outgoing-handler.handle`, sends every method to the same URL.
///
/// A verdict that is not cacheable is never stored, so the policy sees every such call.
/// Once full the cache stores nothing more (it does not evict), so its memory is bounded
/// and what it holds never changes under a running task. It is `Send + Sync`; one cache
/// per task, dropped with it, is the intended use, and it is safe to share one between
/// tasks and policies (the policy is part of the key).
#[derive(Debug)]
pub struct PolicyCache {
    entries: Mutex<HashMap<Key, Verdict>>,
    capacity: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    policy: u64,
    grant: String,
    call: String,
    kind: CallKind,
    method: Option<String>,
    resource: Option<String>,
}

impl Key {
    fn of(policy: &Policy, input: &PolicyInput) -> Key {
        Key::new(
            policy,
            input.grant.id(),
            &input.call.name,
            input.call.kind,
            input.method.as_deref(),
            input.resource.as_deref(),
        )
    }

    /// The key of a call from its parts, so that a cached verdict is found without
    /// building the whole input document.
    pub(crate) fn new(
        policy: &Policy,
        grant: &str,
        call: &str,
        kind: CallKind,
        method: Option<&str>,
        resource: Option<&str>,
    ) -> Key {
        Key {
            policy: policy.id(),
            grant: grant.to_owned(),
            call: call.to_owned(),
            kind,
            method: method.map(str::to_owned),
            resource: resource.map(str::to_owned),
        }
    }
}

impl Default for PolicyCache {
    fn default() -> Self {
        PolicyCache::new()
    }
}

impl PolicyCache {
    /// An empty cache that keeps up to [`DEFAULT_CAPACITY`] verdicts.
    pub fn new() -> PolicyCache {
        PolicyCache::with_capacity(DEFAULT_CAPACITY)
    }

    /// An empty cache that keeps up to `capacity` verdicts; 0 disables caching.
    pub fn with_capacity(capacity: usize) -> PolicyCache {
        PolicyCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The verdict stored for `input`'s grant, call and resource under `policy`, if any.
    pub fn get(&self, policy: &Policy, input: &PolicyInput) -> Option<Verdict> {
        self.lock().get(&Key::of(policy, input)).cloned()
    }

    /// Stores `verdict` for `input`'s grant, call and resource under `policy` if it is
    /// cacheable and there is room; says whether it did.
    pub fn insert(&self, policy: &Policy, input: &PolicyInput, verdict: &Verdict) -> bool {
        verdict.cacheable && self.store(Key::of(policy, input), verdict)
    }

    /// Forgets every verdict for the grant `id`, as when its task ends or it is revoked.
    pub fn forget_grant(&self, id: &str) {
        self.lock().retain(|key, _| key.grant != id);
    }

    /// How many verdicts are stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no verdict is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets every verdict.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The stored verdict for `input`, or a fresh evaluation, stored if cacheable.
    pub(crate) fn evaluate(&self, policy: &Policy, input: &PolicyInput) -> Verdict {
        self.evaluate_key(Key::of(policy, input), policy, || input.document())
    }

    /// The verdict stored under `key`, or else `policy`'s verdict on the input document
    /// `input` builds (only on a miss), stored if cacheable.
    pub(crate) fn evaluate_key(
        &self,
        key: Key,
        policy: &Policy,
        input: impl FnOnce() -> Result<regorus::Value, String>,
    ) -> Verdict {
        if let Some(verdict) = self.lock().get(&key) {
            return verdict.clone();
        }
        // Evaluated without the lock, so tasks sharing the cache do not queue behind
        // each other's policy evaluations; two racing misses both evaluate, and agree.
        let verdict = policy.evaluate_document(input());
        if verdict.cacheable {
            self.store(key, &verdict);
        }
        verdict
    }

    fn store(&self, key: Key, verdict: &Verdict) -> bool {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            return false;
        }
        entries.insert(key, verdict.clone());
        true
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Verdict>> {
        // A panic elsewhere while holding the lock leaves the map consistent: every
        // update is a single insert, retain or clear.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Policy {
    /// The hook for a capability-relevant host call: `Ok` if the call may proceed, else
    /// the denial, whose [`message`](Denied::message) goes into the audit record's `rule`.
    ///
    /// Consults `cache` first and stores the verdict there if the policy marked it
    /// cacheable; see [`PolicyCache`] for what a cached verdict is reused for.
    pub fn check(&self, input: &PolicyInput, cache: &PolicyCache) -> Result<(), Denied> {
        cache.evaluate(self, input).into_result(self.name())
    }
}
