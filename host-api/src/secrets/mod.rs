//! Host-held secrets: `[[secrets]]`, their providers, the values of one task, redaction,
//! and the `warden:tool/secrets` interface.
//!
//! A tool never holds a secret's value unless its manifest says `reveal = true`. The
//! manifest binds a name to a source ([`manifest`]); for each task, the host fetches every
//! bound value just in time ([`TaskSecrets::fetch`], one `secret.fetch` record each) and
//! keeps it in zeroizing memory ([`SecretValue`]) until the task ends. The tool can then:
//!
//! - have the host add it to matching outgoing requests (`inject`, done by the HTTP side,
//!   which asks [`TaskSecrets::value`] for the value and redacts what comes back with a
//!   [`Redactor`], as it is and in its common [`encodings`]);
//! - use it without seeing it through `warden:tool/secrets`: `hmac-sha256`, `hmac-sha512`;
//! - read it with `reveal`, where the manifest allows that.
//!
//! Every use is a `secret.use` record with the secret's name, purpose, provider and TTL,
//! and never its value. A value that has outlived its TTL (the manifest's `ttl`, or a
//! shorter Vault lease) is renewed or fetched again on its next use, recorded as a
//! `secret.fetch` with reason `expired`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use warden_host_api::audit::{Audit, Level, NullSink, TaskMeta};
//! use warden_host_api::secrets::TaskSecrets;
//! use warden_host_api::secrets::manifest::{SecretSpec, Source};
//!
//! # use std::os::unix::fs::PermissionsExt;
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("api-token");
//! # std::fs::write(&path, "t0k\n").unwrap();
//! # std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
//! let spec = SecretSpec {
//!     index: 0,
//!     name: "api".into(),
//!     source: Source::File { path }, // a file only its owner may read
//!     purpose: "call the demo API".into(),
//!     inject: None,
//!     hmac: true,
//!     reveal: false,
//!     ttl: None,
//! };
//! let meta = TaskMeta {
//!     host: "h".into(), agent: None, task: "t".into(), parent: None,
//!     tool: "demo".into(), component: "blake3:00".into(), mcp: None, attempt: None,
//! };
//! let audit = Audit::new(meta, Arc::new(NullSink), Level::Calls);
//! let secrets = TaskSecrets::fetch(&[spec], &audit).await?;
//! assert_eq!(secrets.value("api").await?.expose(), b"t0k");
//! assert_eq!(&*secrets.redactor().redact(b"token t0k"), b"token [REDACTED:api]");
//! # Ok::<(), warden_host_api::secrets::SecretError>(())
//! # }).unwrap();
//! ```

pub mod encodings;
mod grant;
mod host;
pub mod manifest;
pub mod provider;
mod redact;
mod value;

pub use grant::{DeclaredSecrets, SecretGrant, SecretNarrowing, SecretWire, Secrets};
pub(crate) use host::add_to_linker;
pub use manifest::{Inject, SecretSpec, Source};
pub use provider::FetchError;
pub use provider::vault::{Lease, VaultError};
pub use redact::Redactor;
pub use value::SecretValue;

use crate::audit::{Audit, Event};
use provider::{Env, Fetched, Providers};
use serde_json::{Value, json};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a guest's `secret` resource refers to: a secret the task's manifest binds. It
/// never holds the value.
#[derive(Debug, Clone)]
pub struct SecretHandle {
    /// The name in `[[secrets]]`.
    pub name: String,
    /// Its position among the `[[secrets]]` entries.
    pub index: usize,
}

/// The secrets of one task: the manifest's bindings and the values fetched for them.
///
/// Cheap to clone (one `Arc`), `Send` and `Sync`, so the HTTP side can hold it in its
/// hooks. [`TaskSecrets::default`] binds nothing: every lookup fails with
/// [`SecretError::Unknown`]. Values are wiped when the last clone is dropped, which is
/// when the task's store is.
#[derive(Clone, Default)]
pub struct TaskSecrets {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    specs: Vec<SecretSpec>,
    /// One per spec, in the same order.
    slots: Vec<Slot>,
    audit: Audit,
    providers: Providers,
    /// Every value the task has held, superseded ones included, for redaction: a value
    /// rotated away during the task may still come back in a response.
    held: Mutex<Vec<(String, SecretValue)>>,
}

struct Slot {
    current: Mutex<Current>,
    /// Held while a value is fetched again, so that concurrent uses of an expired value
    /// wait for one fetch instead of each making their own.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Current {
    value: SecretValue,
    /// When the value stops being usable, if it does.
    expires: Option<Instant>,
    /// How long it was good for when fetched: `min(ttl, lease)`.
    lifetime: Option<Duration>,
    lease: Option<Lease>,
    version: Option<u64>,
}

impl Current {
    fn new(spec: &SecretSpec, fetched: Fetched) -> Current {
        let lifetime = lifetime(spec.ttl, fetched.lease.as_ref());
        Current {
            value: fetched.value,
            expires: lifetime.map(|l| Instant::now() + l),
            lifetime,
            lease: fetched.lease,
            version: fetched.version,
        }
    }

    fn fresh(&self) -> bool {
        self.expires.is_none_or(|at| Instant::now() < at)
    }
}

/// How long a fetched value may be used: the manifest's `ttl`, or the Vault lease when it
/// is shorter (a lease of zero means none).
fn lifetime(ttl: Option<Duration>, lease: Option<&Lease>) -> Option<Duration> {
    let lease = lease.map(|l| l.duration).filter(|d| !d.is_zero());
    match (ttl, lease) {
        (Some(t), Some(l)) => Some(t.min(l)),
        (t, l) => t.or(l),
    }
}

impl TaskSecrets {
    /// Fetches every secret of `specs` for one task, in manifest order, and records one
    /// `secret.fetch` event each (name, provider, source, TTL, version and lease; never the
    /// value). Stops at the first secret that cannot be fetched, after recording it.
    ///
    /// With no specs this does nothing at all.
    ///
    /// # Ambient Authority
    ///
    /// Reads warden's own environment (`env:` sources and `VAULT_*`), secret and token
    /// files, and connects to Vault, with the authority of the process.
    pub async fn fetch(specs: &[SecretSpec], audit: &Audit) -> Result<TaskSecrets, SecretError> {
        if specs.is_empty() {
            return Ok(TaskSecrets::default());
        }
        // Boxed, so that the state of a Vault request (kilobytes) is not part of every
        // task's future, which is moved whole into `block_on` or `spawn`.
        Box::pin(TaskSecrets::fetch_with(specs, audit, Env::process())).await
    }

    async fn fetch_with(
        specs: &[SecretSpec],
        audit: &Audit,
        env: Env,
    ) -> Result<TaskSecrets, SecretError> {
        let providers = Providers::new(env);
        let mut slots = Vec::with_capacity(specs.len());
        let mut held = Vec::with_capacity(specs.len());
        for spec in specs {
            let start = Instant::now();
            let result = providers.fetch(&spec.source).await;
            let result = result.map(|f| Current::new(spec, f));
            let ev = fetch_event(spec, "task", result.as_ref(), None, start.elapsed());
            audit.emit(&ev).map_err(|e| SecretError::audit(spec, &e))?;
            let current = result.map_err(|reason| SecretError::fetch(spec, reason))?;
            held.push((spec.name.clone(), current.value.clone()));
            slots.push(Slot {
                current: Mutex::new(current),
                refresh: tokio::sync::Mutex::new(()),
            });
        }
        Ok(TaskSecrets {
            inner: Some(Arc::new(Inner {
                specs: specs.to_vec(),
                slots,
                audit: audit.clone(),
                providers,
                held: Mutex::new(held),
            })),
        })
    }

    /// The task's `[[secrets]]` bindings, in manifest order; empty when it has none.
    pub fn specs(&self) -> &[SecretSpec] {
        self.inner.as_ref().map_or(&[], |i| &i.specs)
    }

    /// The binding named `name`, if the manifest has one.
    pub fn spec(&self, name: &str) -> Option<&SecretSpec> {
        self.specs().iter().find(|s| s.name == name)
    }

    /// The current value of the secret `name`.
    ///
    /// When the value has expired (its `ttl`, or its Vault lease), a renewable lease is
    /// renewed (`PUT /v1/sys/leases/renew`), or else the source is read again; either is a
    /// `secret.fetch` record with reason `expired`. Concurrent callers wait for one fetch.
    pub async fn value(&self, name: &str) -> Result<SecretValue, SecretError> {
        let inner = self.inner.as_ref().ok_or_else(|| self.unknown(name))?;
        let index = inner
            .specs
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| self.unknown(name))?;
        let spec = &inner.specs[index];
        let slot = &inner.slots[index];
        if let Some(v) = slot.fresh_value() {
            return Ok(v);
        }
        let _refreshing = slot.refresh.lock().await;
        if let Some(v) = slot.fresh_value() {
            return Ok(v);
        }
        let previous = slot.snapshot();
        let start = Instant::now();
        let mut renewed = None;
        let result = match previous
            .lease
            .as_ref()
            .filter(|l| l.renewable && !l.id.is_empty())
        {
            Some(lease) => match inner.providers.renew(lease).await {
                Ok(lease) if !lease.duration.is_zero() => {
                    renewed = Some(true);
                    Ok(Fetched {
                        value: previous.value.clone(),
                        lease: Some(lease),
                        version: previous.version,
                    })
                }
                // Not renewable any more (or the renewal failed): read it again, which
                // gives a new value under a new lease.
                _ => {
                    renewed = Some(false);
                    inner.providers.fetch(&spec.source).await
                }
            },
            None => inner.providers.fetch(&spec.source).await,
        };
        let result = result.map(|f| Current::new(spec, f));
        let ev = fetch_event(spec, "expired", result.as_ref(), renewed, start.elapsed());
        inner
            .audit
            .emit(&ev)
            .map_err(|e| SecretError::audit(spec, &e))?;
        let current = result.map_err(|reason| SecretError::fetch(spec, reason))?;
        let value = current.value.clone();
        {
            let mut held = inner.held.lock().unwrap_or_else(|e| e.into_inner());
            if !held.iter().any(|(_, v)| *v == value) {
                held.push((spec.name.clone(), value.clone()));
            }
        }
        *slot.current.lock().unwrap_or_else(|e| e.into_inner()) = current;
        Ok(value)
    }

    /// A redactor over every value this task has held so far, current and superseded.
    pub fn redactor(&self) -> Redactor {
        match &self.inner {
            Some(inner) => {
                let held = inner.held.lock().unwrap_or_else(|e| e.into_inner());
                Redactor::new(held.iter().cloned())
            }
            None => Redactor::new([]),
        }
    }

    /// A `secret.use` event for `operation` (`hmac-sha256`, `reveal`, `inject`, ...) on
    /// `spec`: name, purpose, provider, source, TTL and version of the current value.
    /// Callers add what they know (a destination, a data length) to its `args` object and
    /// the decision, then record it.
    pub fn use_event(&self, spec: &SecretSpec, operation: &str) -> Event {
        let current = self
            .inner
            .as_ref()
            .and_then(|i| i.slots.get(spec.index))
            .map(Slot::snapshot);
        let mut ev = Event::new("secret.use").resource(format!("secret {}", spec.name));
        ev.args = json!({
            "name": spec.name,
            "purpose": spec.purpose,
            "operation": operation,
            "provider": spec.source.provider(),
            "source": spec.source.to_string(),
            "ttl_s": current.as_ref().and_then(|c| c.lifetime).map(|d| d.as_secs_f64()),
            "version": current.as_ref().and_then(|c| c.version),
        });
        ev
    }

    fn unknown(&self, name: &str) -> SecretError {
        SecretError::Unknown {
            name: name.to_owned(),
            bound: self.specs().iter().map(|s| s.name.clone()).collect(),
        }
    }
}

impl Slot {
    fn snapshot(&self) -> Current {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn fresh_value(&self) -> Option<SecretValue> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.fresh().then(|| current.value.clone())
    }
}

impl fmt::Debug for TaskSecrets {
    /// Names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.specs().iter().map(|s| &s.name))
            .finish()
    }
}

/// The `secret.fetch` record of one fetch: what was read from where, never the value.
fn fetch_event(
    spec: &SecretSpec,
    reason: &str,
    result: Result<&Current, &FetchError>,
    renewed: Option<bool>,
    took: Duration,
) -> Event {
    let mut args = json!({
        "name": spec.name,
        "provider": spec.source.provider(),
        "source": spec.source.to_string(),
        "reason": reason,
        "ttl_s": Value::Null,
        "version": Value::Null,
    });
    if let Some(renewed) = renewed {
        args["renewed"] = renewed.into();
    }
    let outcome = match result {
        Ok(current) => {
            args["ttl_s"] = json!(current.lifetime.map(|d| d.as_secs_f64()));
            args["version"] = json!(current.version);
            if let Some(lease) = &current.lease {
                args["lease"] = json!({
                    "id": lease.id,
                    "duration_s": lease.duration.as_secs(),
                    "renewable": lease.renewable,
                });
            }
            "ok".to_owned()
        }
        Err(e) => {
            args["error"] = e.to_string().into();
            format!("error:{}", e.code())
        }
    };
    Event::new("secret.fetch")
        .resource(format!("secret {}", spec.name))
        .args(args)
        .allow(format!("{} binds {}", spec.label(), spec.source))
        .outcome(outcome)
        .took(took)
}

/// Why a secret could not be had. Names the secret and its source; never holds a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The manifest binds no secret of this name.
    #[error(
        "no secret named {name:?} is bound by the manifest; it binds {}",
        bound_list(bound)
    )]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names the manifest binds.
        bound: Vec<String>,
    },
    /// The provider could not supply the value.
    #[error("secret {name:?} ({reference}): {reason}")]
    Fetch {
        /// The secret's name.
        name: String,
        /// Its source, e.g. `vault:secret/app#password`.
        reference: String,
        /// Why.
        reason: Box<FetchError>,
    },
    /// The `secret.fetch` record could not be written, so the value was not used.
    #[error("secret {name:?}: audit log write failed, so the secret was not fetched: {message}")]
    Audit {
        /// The secret's name.
        name: String,
        /// The sink's error.
        message: String,
    },
}

impl SecretError {
    fn fetch(spec: &SecretSpec, reason: FetchError) -> SecretError {
        SecretError::Fetch {
            name: spec.name.clone(),
            reference: spec.source.to_string(),
            reason: Box::new(reason),
        }
    }

    fn audit(spec: &SecretSpec, e: &anyhow::Error) -> SecretError {
        SecretError::Audit {
            name: spec.name.clone(),
            message: format!("{e:#}"),
        }
    }

    /// The name of the secret.
    pub fn name(&self) -> &str {
        match self {
            SecretError::Unknown { name, .. }
            | SecretError::Fetch { name, .. }
            | SecretError::Audit { name, .. } => name,
        }
    }

    /// A short code for records, e.g. `unknown`, `vault-forbidden`, `env-unset`.
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::Unknown { .. } => "unknown",
            SecretError::Fetch { reason, .. } => reason.code(),
            SecretError::Audit { .. } => "audit",
        }
    }
}

fn bound_list(bound: &[String]) -> String {
    if bound.is_empty() {
        "none".into()
    } else {
        bound.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventSink, Level, Record, TaskMeta};
    use std::collections::HashMap;

    #[derive(Default)]
    pub(crate) struct Capture(pub Mutex<Vec<Value>>);

    impl EventSink for Capture {
        fn emit(&self, record: &Record<'_>) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(serde_json::to_value(record)?);
            Ok(())
        }
    }

    pub(crate) fn audit(sink: Arc<Capture>) -> Audit {
        let meta = TaskMeta {
            attempt: None,
            host: "h".into(),
            agent: None,
            task: "t".into(),
            parent: None,
            tool: "x".into(),
            component: "blake3:00".into(),
            mcp: None,
        };
        Audit::new(meta, sink, Level::Calls)
    }

    pub(crate) fn env_spec(index: usize, name: &str, var: &str) -> SecretSpec {
        SecretSpec {
            index,
            name: name.into(),
            source: Source::Env { var: var.into() },
            purpose: "testing".into(),
            inject: None,
            hmac: true,
            reveal: false,
            ttl: None,
        }
    }

    /// An environment whose values the test changes while the task runs.
    fn env(vars: Arc<Mutex<HashMap<String, String>>>) -> Env {
        Env::from_fn(move |k| vars.lock().unwrap().get(k).map(Into::into))
    }

    #[tokio::test]
    async fn fetch_records_each_secret_and_never_its_value() {
        let sink = Arc::new(Capture::default());
        let vars = Arc::new(Mutex::new(HashMap::from([
            ("A".to_string(), "value-of-a".to_string()),
            ("B".to_string(), "value-of-b".to_string()),
        ])));
        let specs = [env_spec(0, "a", "A"), env_spec(1, "b", "B")];
        let s = TaskSecrets::fetch_with(&specs, &audit(sink.clone()), env(vars))
            .await
            .unwrap();
        assert_eq!(s.value("b").await.unwrap().expose(), b"value-of-b");
        let records = sink.0.lock().unwrap().clone();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["event"], "secret.fetch");
        assert_eq!(records[0]["args"]["source"], "env:A");
        assert_eq!(records[0]["args"]["reason"], "task");
        assert_eq!(records[0]["rule"], "secrets[0] a binds env:A");
        assert!(
            !serde_json::to_string(&records)
                .unwrap()
                .contains("value-of")
        );
        assert_eq!(format!("{s:?}"), r#"["a", "b"]"#);

        let err = s.value("c").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "no secret named \"c\" is bound by the manifest; it binds a, b"
        );
        let none = TaskSecrets::default();
        assert!(none.specs().is_empty());
        assert_eq!(
            none.value("a").await.unwrap_err().to_string(),
            "no secret named \"a\" is bound by the manifest; it binds none"
        );
    }

    #[tokio::test]
    async fn a_failed_fetch_is_recorded_and_names_the_source() {
        let sink = Arc::new(Capture::default());
        let vars = Arc::new(Mutex::new(HashMap::new()));
        let err = TaskSecrets::fetch_with(
            &[env_spec(0, "gh", "GITHUB_TOKEN")],
            &audit(sink.clone()),
            env(vars),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret \"gh\" (env:GITHUB_TOKEN): GITHUB_TOKEN is not set in warden's environment (the tool's [env] is separate)"
        );
        let records = sink.0.lock().unwrap().clone();
        assert_eq!(records[0]["outcome"], "error:env-unset");
    }

    #[tokio::test]
    async fn an_expired_value_is_read_again_and_both_are_redacted() {
        let sink = Arc::new(Capture::default());
        let vars = Arc::new(Mutex::new(HashMap::from([(
            "T".to_string(),
            "first-value".to_string(),
        )])));
        let mut spec = env_spec(0, "t", "T");
        spec.ttl = Some(Duration::from_millis(50));
        let s = TaskSecrets::fetch_with(&[spec.clone()], &audit(sink.clone()), env(vars.clone()))
            .await
            .unwrap();
        assert_eq!(s.value("t").await.unwrap().expose(), b"first-value");
        vars.lock()
            .unwrap()
            .insert("T".into(), "second-value".into());
        // Still fresh: the old value, no fetch.
        assert_eq!(s.value("t").await.unwrap().expose(), b"first-value");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(s.value("t").await.unwrap().expose(), b"second-value");
        let records = sink.0.lock().unwrap().clone();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1]["args"]["reason"], "expired");
        assert_eq!(records[1]["args"]["ttl_s"], 0.05);
        let r = s.redactor();
        assert_eq!(
            &*r.redact(b"first-value second-value"),
            b"[REDACTED:t] [REDACTED:t]"
        );
        let ev = s.use_event(&spec, "hmac-sha256");
        assert_eq!(ev.event, "secret.use");
        assert_eq!(ev.args["purpose"], "testing");
        assert_eq!(ev.args["ttl_s"], 0.05);
    }

    #[tokio::test]
    async fn an_expired_renewable_lease_is_renewed_not_read_again() {
        let f = provider::vault::fake::fake(&[
            (
                "GET /v1/secret/data/db",
                200,
                r#"{"lease_id":"secret/db/l1","renewable":true,"lease_duration":3600,
                    "data":{"data":{"pw":"leased-value"},"metadata":{"version":2}}}"#,
            ),
            (
                "PUT /v1/sys/leases/renew",
                200,
                r#"{"lease_id":"secret/db/l1","renewable":true,"lease_duration":3600}"#,
            ),
        ])
        .await;
        let vars = Arc::new(Mutex::new(HashMap::from([
            ("VAULT_ADDR".to_string(), f.addr.clone()),
            ("VAULT_TOKEN".to_string(), "hvs.t".to_string()),
        ])));
        let spec = SecretSpec {
            source: Source::Vault {
                mount: "secret".into(),
                path: "db".into(),
                field: "pw".into(),
            },
            ttl: Some(Duration::from_millis(30)),
            ..env_spec(0, "db", "")
        };
        let sink = Arc::new(Capture::default());
        let s = TaskSecrets::fetch_with(&[spec], &audit(sink.clone()), env(vars))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(s.value("db").await.unwrap().expose(), b"leased-value");
        let records = sink.0.lock().unwrap().clone();
        assert_eq!(records[0]["args"]["version"], 2);
        assert_eq!(records[0]["args"]["lease"]["id"], "secret/db/l1");
        assert_eq!(records[0]["args"]["lease"]["renewable"], true);
        assert_eq!(records[1]["args"]["reason"], "expired");
        assert_eq!(records[1]["args"]["renewed"], true);
        let seen = f.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[1].starts_with("PUT /v1/sys/leases/renew "));
    }

    #[test]
    fn shareable_with_the_http_side() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<TaskSecrets>();
        fn sendable<T: Send>() {}
        sendable::<Redactor>();
        sendable::<SecretValue>();
    }

    #[test]
    fn lifetimes() {
        let lease = |s| Lease {
            id: String::new(),
            duration: Duration::from_secs(s),
            renewable: false,
        };
        let s = Duration::from_secs;
        assert_eq!(lifetime(None, None), None);
        assert_eq!(lifetime(Some(s(5)), None), Some(s(5)));
        assert_eq!(lifetime(None, Some(&lease(0))), None);
        assert_eq!(lifetime(None, Some(&lease(7))), Some(s(7)));
        assert_eq!(lifetime(Some(s(5)), Some(&lease(7))), Some(s(5)));
        assert_eq!(lifetime(Some(s(9)), Some(&lease(7))), Some(s(7)));
    }
}
