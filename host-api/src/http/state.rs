//! Per-task HTTP state: the grants, the decision on each request, and the
//! requests in flight, whose records the task's end must not lose.

use super::manifest::{HttpGrant, RequestLimits};
use super::{Allowed, Egress, EgressDenied, check_header};
use crate::approval::Approvals;
use crate::audit::Event;
use crate::cx::TaskCx;
use crate::secrets::TaskSecrets;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::p2::bindings::http::types::{Method, Scheme};
use wasmtime_wasi_http::p2::types::HostOutgoingRequest;

/// The `[[http]]` grants of one task. The default has none and refuses
/// every request.
#[derive(Clone, Default)]
pub struct HttpState {
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("rules", &self.shared.as_ref().map_or(0, |s| s.grants.len()))
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    pub(crate) grants: Vec<HttpGrant>,
    pub(crate) egress: Egress,
    /// The task's secrets, for injection and redaction.
    pub(crate) secrets: TaskSecrets,
    /// Each secret with `inject`: its index among the secrets, and its
    /// `inject.url` as a rule of its own.
    injections: Vec<(usize, Egress)>,
    /// The task: its records, and when its own timeout ends (no request outlives it).
    pub(crate) cx: Arc<TaskCx>,
    /// The plan of the request `handle` is sending, for the send hook.
    pending: Mutex<Option<Plan>>,
    /// Requests whose end is not yet recorded.
    open: Mutex<Vec<Arc<Exchange>>>,
    /// Set at task end: later records would follow `task.end`.
    closed: AtomicBool,
    /// The first record about a request that could not be written from outside a host
    /// call (a response body ending while the guest streams it). Such a failure has no
    /// call to trap, so the task's next host call traps and its end fails (see
    /// [`HttpState::unrecorded`]).
    unrecorded: Mutex<Option<String>>,
    /// `unrecorded` is set: checked on every host call, so an atomic, not the lock.
    failed: AtomicBool,
}

impl HttpState {
    /// The grants of the task `cx`, whose `secrets` are injected into matching requests
    /// and redacted from every response.
    pub fn new(grants: Vec<HttpGrant>, secrets: TaskSecrets, cx: Arc<TaskCx>) -> HttpState {
        let egress = Egress::new(grants.iter().map(|g| g.rule.clone()).collect());
        let injections = secrets
            .specs()
            .iter()
            .enumerate()
            .filter_map(|(i, spec)| {
                let inject = spec.inject.as_ref()?;
                Some((i, Egress::new(vec![inject.rule.clone()])))
            })
            .collect();
        HttpState {
            shared: Some(Arc::new(Shared {
                grants,
                egress,
                secrets,
                injections,
                cx,
                pending: Mutex::new(None),
                open: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                unrecorded: Mutex::new(None),
                failed: AtomicBool::new(false),
            })),
        }
    }

    pub(crate) fn shared(&self) -> Option<&Arc<Shared>> {
        self.shared.as_ref()
    }

    /// Decides whether the guest's request may be sent.
    pub(crate) fn decide(&self, req: &HostOutgoingRequest) -> Decision {
        let method = method_name(&req.method);
        let scheme = match &req.scheme {
            None | Some(Scheme::Https) => "https".to_owned(),
            Some(Scheme::Http) => "http".to_owned(),
            Some(Scheme::Other(s)) => s.clone(),
        };
        let authority = req.authority.clone().unwrap_or_default();
        let path = req.path_with_query.clone().unwrap_or_else(|| "/".into());
        let url = format!("{scheme}://{authority}{path}");
        let headers: Vec<String> = req.headers.keys().map(|k| k.as_str().to_owned()).collect();
        let mut summary = Summary {
            method: method.clone(),
            url: url.clone(),
            headers,
            body: req.body.is_some(),
            secrets: Vec::new(),
        };
        let Some(shared) = &self.shared else {
            return Decision {
                summary,
                result: Err(EgressDenied::NotAllowed {
                    method: method.clone(),
                    url: url.clone(),
                    reason: "the manifest has no [[http]] rules".into(),
                    allow: format!("url = {url:?} and methods = [\"{method}\"]"),
                }),
            };
        };
        if !path.starts_with('/') {
            return Decision {
                summary,
                result: Err(EgressDenied::BadUrl {
                    url,
                    reason: "the path must start with `/`".into(),
                }),
            };
        }
        let allowed = match shared.egress.check(&method, &url) {
            Ok(a) => a,
            Err(denied) => {
                return Decision {
                    summary,
                    result: Err(denied),
                };
            }
        };
        summary.url = allowed.url().to_owned();
        for (name, value) in req.headers.iter() {
            if let Err(denied) = check_header(name.as_str(), value.as_bytes()) {
                return Decision {
                    summary,
                    result: Err(denied),
                };
            }
        }
        // A secret goes only where its own `inject.url` and an [[http]]
        // rule both allow, and only into the one header the host sets.
        let mut inject = Vec::new();
        for (index, rule) in &shared.injections {
            if rule.check(&method, allowed.url()).is_err() {
                continue;
            }
            let spec = &shared.secrets.specs()[*index];
            let header = spec.inject.as_ref().map_or("", |i| i.header.as_str());
            if req.headers.contains_key(header) {
                return Decision {
                    summary,
                    result: Err(EgressDenied::SecretHeader {
                        header: header.to_owned(),
                        secret: spec.name.clone(),
                        label: format!("secrets[{index}]"),
                    }),
                };
            }
            summary.secrets.push(spec.name.clone());
            inject.push(*index);
        }
        let grant = allowed.index();
        let exchange = Arc::new(Exchange {
            method: method.clone(),
            url: allowed.url().to_owned(),
            rule: allowed.to_string(),
            started: Instant::now(),
            state: Mutex::new(ExchangeState::default()),
        });
        Decision {
            summary,
            result: Ok(Plan {
                allowed,
                limits: shared.grants[grant].limits,
                inject,
                exchange,
                approvals: Approvals::default(),
            }),
        }
    }

    pub(crate) fn set_pending(&self, plan: Plan) {
        if let Some(s) = &self.shared {
            *lock(&s.pending) = Some(plan);
        }
    }

    pub(crate) fn take_pending(&self) -> Option<Plan> {
        self.shared.as_ref().and_then(|s| lock(&s.pending).take())
    }

    /// Why a record about one of this task's requests could not be written outside a host
    /// call, if one could not: the task must not go on (the runtime's call hook traps the
    /// next host call with it), as when any host call cannot be recorded.
    pub fn unrecorded(&self) -> Option<String> {
        let shared = self.shared.as_ref()?;
        if !shared.failed.load(Ordering::Acquire) {
            return None;
        }
        lock(&shared.unrecorded).clone()
    }

    /// Records the end of every request still open, as cut short by the end
    /// of the task; nothing about this task is recorded after this. Fails if a
    /// record about any of its requests could not be written, now or earlier.
    pub fn close(&self) -> anyhow::Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let open: Vec<Arc<Exchange>> = std::mem::take(&mut *lock(&shared.open));
        let mut ended = Ok(());
        for exchange in open {
            ended = ended.and(exchange.end(shared, "error:task-ended"));
        }
        shared.closed.store(true, Ordering::SeqCst);
        ended?;
        match self.unrecorded() {
            Some(e) => anyhow::bail!("{e}"),
            None => Ok(()),
        }
    }
}

impl Shared {
    /// Emits a record about a request from outside any host call; after the
    /// task has ended nothing is emitted.
    pub(crate) fn emit(&self, event: &Event) -> anyhow::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.cx.audit().emit(event).inspect_err(|e| {
            let mut first = lock(&self.unrecorded);
            if first.is_none() {
                *first = Some(format!(
                    "the {} record of a request could not be written: {e:#}",
                    event.event
                ));
                self.failed.store(true, Ordering::Release);
            }
        })
    }

    pub(crate) fn opened(&self, exchange: &Arc<Exchange>) {
        let mut open = lock(&self.open);
        // A task may make many requests: keep only those still going.
        open.retain(|e| !lock(&e.state).ended);
        open.push(exchange.clone());
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The request as the guest built it, for the `handle` record.
pub(crate) struct Summary {
    method: String,
    url: String,
    headers: Vec<String>,
    body: bool,
    /// Secrets the host will add.
    secrets: Vec<String>,
}

impl Summary {
    pub(crate) fn args(&self) -> Value {
        json!({
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "body": self.body,
            "secrets": self.secrets,
        })
    }

    pub(crate) fn resource(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    /// Asks the task's policies about the request and each secret the host would
    /// add to it: a request is a use of every secret it carries.
    pub(crate) fn check_policy(
        &self,
        call: &str,
        policy: &crate::policy::TaskPolicy,
    ) -> Result<(), crate::policy::Denied> {
        use crate::policy::CallKind;
        policy.check(call, CallKind::Http, Some(&self.url), Some(&self.method))?;
        for name in &self.secrets {
            policy.check(call, CallKind::Secret, Some(name), None)?;
        }
        Ok(())
    }
}

/// What `decide` made of a request.
pub(crate) struct Decision {
    summary: Summary,
    result: Result<Plan, EgressDenied>,
}

impl Decision {
    pub(crate) fn into_parts(self) -> (Summary, Result<Plan, EgressDenied>) {
        (self.summary, self.result)
    }
}

/// An allowed request on its way to the send hook.
pub(crate) struct Plan {
    pub(crate) allowed: Allowed,
    pub(crate) limits: RequestLimits,
    /// Indexes of the secrets to inject.
    pub(crate) inject: Vec<usize>,
    pub(crate) exchange: Arc<Exchange>,
    /// The task's approval gates, which the send hook asks before DNS.
    pub(crate) approvals: Approvals,
}

impl Plan {
    pub(crate) fn rule_text(&self) -> String {
        self.allowed.to_string()
    }
}

/// One request from the send hook to the end of its response, for the
/// records that say what happened to it.
pub(crate) struct Exchange {
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) rule: String,
    pub(crate) started: Instant,
    pub(crate) state: Mutex<ExchangeState>,
}

#[derive(Default)]
pub(crate) struct ExchangeState {
    pub(crate) addr: Option<std::net::SocketAddr>,
    pub(crate) status: Option<u16>,
    pub(crate) request_bytes: u64,
    pub(crate) response_bytes: u64,
    pub(crate) redacted: u64,
    /// The content coding Warden decoded, and how many bytes it decoded to.
    pub(crate) decoded: Option<(&'static str, u64)>,
    /// Why the response failed, where the outcome's code alone does not say.
    pub(crate) error: Option<String>,
    /// The response body was read to its end.
    pub(crate) complete: bool,
    pub(crate) ended: bool,
}

impl Exchange {
    /// Records the end of the exchange once: the response body ended, failed
    /// or was dropped, or the task ended first.
    pub(crate) fn end(&self, shared: &Shared, outcome: &str) -> anyhow::Result<()> {
        let mut st = lock(&self.state);
        if st.ended {
            return Ok(());
        }
        st.ended = true;
        let mut args = json!({
            "method": self.method,
            "url": self.url,
            "rule": self.rule,
            "addr": st.addr.map(|a| a.to_string()),
            "status": st.status,
            "request_bytes": st.request_bytes,
            "response_bytes": st.response_bytes,
            "redacted": st.redacted,
            "complete": st.complete,
        });
        if let Some((coding, bytes)) = st.decoded {
            args["content_encoding"] = coding.into();
            args["decoded_bytes"] = bytes.into();
        }
        if let Some(error) = &st.error {
            args["error"] = error.as_str().into();
        }
        let ev = Event::new("http.end")
            .args(args)
            .resource(format!("{} {}", self.method, self.url))
            .outcome(outcome)
            .took(self.started.elapsed());
        drop(st);
        shared.emit(&ev)
    }

    /// Time left for this request: its rule's timeout from when it started,
    /// not counting the time `waited` for an approver, cut at the task's
    /// deadline.
    pub(crate) fn remaining(
        &self,
        limits: &RequestLimits,
        task_deadline: Instant,
        waited: Duration,
    ) -> Duration {
        let own = self.started + waited + limits.timeout;
        own.min(task_deadline)
            .saturating_duration_since(Instant::now())
    }
}

pub(crate) fn method_name(m: &Method) -> String {
    match m {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(s) => s.clone(),
    }
}
