//! The approvals of one task: which calls are gated, who answers, how long
//! they may take, and the `approval` record each answer becomes.

use super::{Answer, ApprovalKind, ApprovalRequest, Approver, Gates};
use crate::audit::{Event, TaskMeta};
use crate::http::Egress;
use crate::limits::manifest::format_duration;
use serde_json::json;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Methods that only read: an `[[http]]` gate never asks about them.
pub(crate) fn is_safe_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// The approval gates of one task and the approver that answers for it.
///
/// Cheap to clone (one `Arc`). [`Approvals::default`] gates nothing, so no
/// call ever asks; that is what a task whose manifest has no
/// `approval = "required"` gets.
#[derive(Clone, Default)]
pub struct Approvals {
    inner: Option<Arc<Inner>>,
}

#[derive(Clone)]
struct Inner {
    gates: Gates,
    /// `gates.http` as an egress rule set, so that a request is matched
    /// exactly as the egress check matched it.
    http: Egress,
    approver: Arc<dyn Approver>,
    timeout: Duration,
    /// When the task's `limits.timeout` ends: no wait goes past it.
    deadline: Option<Instant>,
    agent: Option<String>,
    tool: String,
    task: String,
    grant: Option<String>,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("Approvals(none)"),
            Some(i) => f
                .debug_struct("Approvals")
                .field("gates", &i.gates)
                .field("approver", &i.approver.name())
                .field("timeout", &i.timeout)
                .finish_non_exhaustive(),
        }
    }
}

/// What a gated call asks, before the task's details are added.
pub(crate) struct Question {
    /// WIT name of the call.
    pub call: &'static str,
    pub kind: ApprovalKind,
    pub resource: String,
    /// The rule that allowed the call, and the gate if another rule holds it.
    pub rule: String,
    /// What the tool wants to do, after "TOOL wants to": `open /rw/a for writing`.
    pub action: String,
}

/// An approver's answer, as the gated call needs it.
pub(crate) struct Asked {
    pub approved: bool,
    /// No answer came in time.
    pub timed_out: bool,
    /// The `rule` of the call's own record: the question's rule and the answer.
    pub rule: String,
    /// The `approval` record.
    pub event: Event,
}

impl Approvals {
    /// The approvals of the task whose records carry `meta`: `gates` are
    /// decided by `approver`, which gets `timeout` for each answer.
    pub fn new(
        gates: Gates,
        approver: Arc<dyn Approver>,
        timeout: Duration,
        meta: &TaskMeta,
    ) -> Approvals {
        if gates.is_empty() {
            return Approvals::default();
        }
        Approvals {
            inner: Some(Arc::new(Inner {
                http: Egress::new(gates.http.clone()),
                gates,
                approver,
                timeout,
                deadline: None,
                agent: meta.agent.clone(),
                tool: meta.tool.clone(),
                task: meta.task.clone(),
                grant: None,
            })),
        }
    }

    /// Names the grant the task runs under in every request.
    pub fn grant(mut self, id: Option<String>) -> Approvals {
        if let Some(inner) = &mut self.inner {
            Arc::make_mut(inner).grant = id;
        }
        self
    }

    /// Cuts every wait short at `deadline`, when the task's own timeout ends.
    pub fn deadline(mut self, deadline: Instant) -> Approvals {
        if let Some(inner) = &mut self.inner {
            Arc::make_mut(inner).deadline = Some(deadline);
        }
        self
    }

    /// The task's gates; `None` when nothing is gated.
    pub fn gates(&self) -> Option<&Gates> {
        self.inner.as_ref().map(|i| &i.gates)
    }

    /// The approver's name, where something is gated.
    pub fn approver(&self) -> Option<String> {
        self.inner.as_ref().map(|i| i.approver.name())
    }

    /// The gate a change to these guest paths (normalized, absolute) falls
    /// under, if any.
    pub(crate) fn fs_gate<'a>(&'a self, paths: &[&str]) -> Option<&'a str> {
        let inner = self.inner.as_ref()?;
        inner
            .gates
            .fs
            .iter()
            .find(|root| paths.iter().any(|p| crate::fs::within(p, root)))
            .map(String::as_str)
    }

    /// The gated rule a request matches, if it changes something; `url` must
    /// be the URL the egress check normalized.
    pub(crate) fn http_gate(&self, method: &str, url: &str) -> Option<String> {
        let inner = self.inner.as_ref()?;
        if is_safe_method(method) {
            return None;
        }
        let allowed = inner.http.check(method, url).ok()?;
        inner
            .gates
            .http
            .get(allowed.index())
            .map(ToString::to_string)
    }

    /// Whether every use of the secret `name` asks.
    pub(crate) fn secret_gated(&self, name: &str) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|i| i.gates.secrets.iter().any(|s| s == name))
    }

    /// Asks the approver, waiting at most the timeout (and never past the
    /// task's deadline). Never fails: an approver that cannot answer refuses.
    pub(crate) async fn ask(&self, q: Question) -> Asked {
        let Some(inner) = self.inner.as_ref() else {
            // Only gated calls ask, and only a task with gates has any; were
            // one to ask anyway, it is refused, not let through.
            let rule = format!("{} requires approval: the task has no approver", q.rule);
            let mut event = Event::new("approval")
                .resource(q.resource)
                .deny(rule.clone())
                .outcome("error:refused");
            event.call = Some(q.call);
            return Asked {
                approved: false,
                timed_out: false,
                rule,
                event,
            };
        };
        let start = Instant::now();
        let request = ApprovalRequest {
            agent: inner.agent.clone(),
            tool: inner.tool.clone(),
            task: inner.task.clone(),
            grant: inner.grant.clone(),
            call: q.call.to_owned(),
            kind: q.kind,
            resource: q.resource,
            rule: q.rule,
            summary: format!("{} wants to {}", inner.tool, q.action),
        };
        let left = inner
            .deadline
            .map(|d| d.saturating_duration_since(start))
            .filter(|left| *left < inner.timeout);
        let wait = left.unwrap_or(inner.timeout);
        let answer = tokio::time::timeout(wait, answer(&*inner.approver, &request)).await;
        let took = start.elapsed();
        let rule = &request.rule;
        let (approved, approver, answer, reason, text) = match answer {
            Ok(d) if d.approved => {
                let text = format!("{rule}; approved by {}: {}", d.approver, d.reason);
                (true, d.approver, "yes", d.reason, text)
            }
            Ok(d) => {
                let text = format!(
                    "{rule} requires approval: refused by {}: {}",
                    d.approver, d.reason
                );
                (false, d.approver, "no", d.reason, text)
            }
            Err(_) => {
                let name = inner.approver.name();
                let within = format_duration(wait);
                let reason = match left {
                    Some(_) => {
                        format!("no answer within {within}, when the task's limits.timeout ends")
                    }
                    None => format!("no answer within {within}"),
                };
                let text = format!("{rule} requires approval: {reason} from {name}");
                (false, name, "timeout", reason, text)
            }
        };
        let mut event = Event::new("approval")
            .args(json!({
                "kind": request.kind,
                "approver": approver,
                "answer": answer,
                "reason": reason,
                "summary": request.summary,
                "grant": request.grant,
            }))
            .resource(request.resource)
            .outcome(match answer {
                "yes" => "ok",
                "no" => "error:refused",
                _ => "error:timeout",
            })
            .took(took);
        event.call = Some(q.call);
        let event = if approved {
            event.allow(text.clone())
        } else {
            event.deny(text.clone())
        };
        Asked {
            approved,
            timed_out: answer == "timeout",
            rule: text,
            event,
        }
    }
}

/// The approver's answer; a refusal if it panics, since an embedder's bug
/// must not unwind through the tool's host call.
async fn answer(approver: &dyn Approver, request: &ApprovalRequest) -> Answer {
    let mut deciding = approver.approve(request);
    std::future::poll_fn(|cx| {
        std::panic::catch_unwind(AssertUnwindSafe(|| deciding.as_mut().poll(cx))).unwrap_or_else(
            |_| Poll::Ready(Answer::refuse(approver.name(), "the approver panicked")),
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::{CallbackApprover, Deny};
    use crate::http::HttpRule;

    fn meta() -> TaskMeta {
        TaskMeta {
            attempt: None,
            host: "h".into(),
            agent: Some("planner".into()),
            task: "t1".into(),
            parent: None,
            tool: "probe".into(),
            component: "blake3:00".into(),
            mcp: None,
        }
    }

    fn gates() -> Gates {
        Gates {
            fs: vec!["/rw".into()],
            http: vec![HttpRule::parse("http://127.0.0.1:8080/api/", None).unwrap()],
            secrets: vec!["signer".into()],
        }
    }

    fn question() -> Question {
        Question {
            call: "wasi:filesystem/types.[method]descriptor.open-at",
            kind: ApprovalKind::FsWrite,
            resource: "/rw/a".into(),
            rule: "fs[1] /rw read-write".into(),
            action: "open /rw/a for writing".into(),
        }
    }

    #[test]
    fn gates_match_what_a_call_touches() {
        let a = Approvals::new(
            gates(),
            Arc::new(Deny::default()),
            Duration::from_secs(1),
            &meta(),
        );
        assert_eq!(a.fs_gate(&["/rw/x/y"]), Some("/rw"));
        assert_eq!(a.fs_gate(&["/rw"]), Some("/rw"));
        assert_eq!(a.fs_gate(&["/rwx/y"]), None);
        // A rename out of a gated grant is a change to it.
        assert_eq!(a.fs_gate(&["/other/b", "/rw/a"]), Some("/rw"));

        let api = "http://127.0.0.1:8080/api/items";
        assert!(a.http_gate("POST", api).is_some());
        assert!(a.http_gate("DELETE", api).is_some());
        assert!(a.http_gate("GET", api).is_none());
        assert!(a.http_gate("HEAD", api).is_none());
        assert!(a.http_gate("POST", "http://127.0.0.1:8080/other").is_none());

        assert!(a.secret_gated("signer"));
        assert!(!a.secret_gated("other"));

        let none = Approvals::default();
        assert_eq!(none.fs_gate(&["/rw/a"]), None);
        assert!(none.gates().is_none());
        let empty = Approvals::new(
            Gates::default(),
            Arc::new(Deny::default()),
            Duration::from_secs(1),
            &meta(),
        );
        assert!(
            empty.gates().is_none(),
            "nothing gated is no approvals at all"
        );
    }

    #[tokio::test]
    async fn an_answer_becomes_a_record() {
        let approver = CallbackApprover::new("ui", |r: ApprovalRequest| async move {
            assert_eq!(r.summary, "probe wants to open /rw/a for writing");
            assert_eq!(r.agent.as_deref(), Some("planner"));
            assert_eq!(r.grant.as_deref(), Some("g1"));
            Answer::approve("alice", "looks fine")
        });
        let a = Approvals::new(gates(), Arc::new(approver), Duration::from_secs(5), &meta())
            .grant(Some("g1".into()));
        let asked = a.ask(question()).await;
        assert!(asked.approved);
        assert_eq!(
            asked.rule,
            "fs[1] /rw read-write; approved by alice: looks fine"
        );
        let ev = serde_json::to_value(&asked.event).unwrap();
        assert_eq!(ev["event"], "approval");
        assert_eq!(ev["decision"], "allow");
        assert_eq!(ev["args"]["approver"], "alice");
        assert_eq!(ev["args"]["answer"], "yes");
        assert_eq!(ev["args"]["kind"], "fs-write");
        assert_eq!(ev["resource"], "/rw/a");
        assert!(ev["dur_ns"].is_u64());
    }

    #[tokio::test]
    async fn a_refusal_names_the_approver_and_the_reason() {
        let a = Approvals::new(
            gates(),
            Arc::new(Deny::default()),
            Duration::from_secs(5),
            &meta(),
        );
        let asked = a.ask(question()).await;
        assert!(!asked.approved && !asked.timed_out);
        assert!(
            asked.rule.starts_with(
                "fs[1] /rw read-write requires approval: refused by deny: no approver is configured"
            ),
            "{}",
            asked.rule
        );
        let ev = serde_json::to_value(&asked.event).unwrap();
        assert_eq!(ev["decision"], "deny");
        assert_eq!(ev["outcome"], "error:refused");
    }

    #[tokio::test]
    async fn a_panicking_approver_refuses() {
        let broken = CallbackApprover::new("broken", |_| async { panic!("a bug in the embedder") });
        let a = Approvals::new(gates(), Arc::new(broken), Duration::from_secs(5), &meta());
        let asked = a.ask(question()).await;
        assert!(!asked.approved);
        assert_eq!(
            asked.rule,
            "fs[1] /rw read-write requires approval: refused by broken: the approver panicked"
        );
    }

    #[tokio::test]
    async fn silence_is_a_refusal_and_the_task_deadline_cuts_it_short() {
        let never = CallbackApprover::new("slow", |_| std::future::pending::<Answer>());
        let never: Arc<dyn Approver> = Arc::new(never);
        let a = Approvals::new(gates(), never.clone(), Duration::from_millis(30), &meta());
        let asked = a.ask(question()).await;
        assert!(!asked.approved && asked.timed_out);
        assert_eq!(
            asked.rule,
            "fs[1] /rw read-write requires approval: no answer within 30ms from slow"
        );
        assert_eq!(
            serde_json::to_value(&asked.event).unwrap()["outcome"],
            "error:timeout"
        );

        let a = Approvals::new(gates(), never, Duration::from_secs(60), &meta())
            .deadline(Instant::now() + Duration::from_millis(50));
        let start = Instant::now();
        let asked = a.ask(question()).await;
        assert!(asked.timed_out);
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the deadline cut the wait"
        );
        assert!(
            asked.rule.contains("when the task's limits.timeout ends"),
            "{}",
            asked.rule
        );
    }
}
