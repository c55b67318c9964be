//! Approval gates: calls that a person (or a program acting for one) must let
//! through, one at a time, while the tool waits.
//!
//! A manifest marks a grant `approval = "required"` ([`manifest::Approval`]):
//!
//! | section | what asks | what never asks |
//! | --- | --- | --- |
//! | `[[fs]]` (`read-write` only) | every change below the grant: an open for writing, create, rename, delete, link, symlink, set-times | reads, stats, listings; writes through a descriptor whose open was approved |
//! | `[[http]]` | a request the rule matches whose method changes something: anything but `GET`, `HEAD`, `OPTIONS` | `GET`, `HEAD`, `OPTIONS` |
//! | `[[secrets]]` | every use: each `hmac-*`, each `reveal`, each request the secret is injected into | `open`, `name` |
//!
//! Before such a call proceeds, the task's [`Approver`] gets an
//! [`ApprovalRequest`] (agent, tool, task, grant, call, resource, the rule that
//! allowed it and a one-line summary) and answers with an [`Answer`]. The
//! answer is an `approval` audit record (approver, answer, latency, summary);
//! a refusal fails the call as that capability's denials do (`access` for a
//! file, `HTTP-request-denied` for a request, `denied` for a secret) with a
//! deny record that says who refused it.
//!
//! # Deny by default
//!
//! - Without an approver, every gated call is refused ([`Deny`]), and the
//!   record says how to configure one.
//! - No answer within the timeout ([`DEFAULT_TIMEOUT`], 60 s) is a refusal.
//!   Waiting counts toward the task's `limits.timeout`, which also cuts the
//!   wait short: a task never outlives its limit waiting for an answer.
//! - An approver that fails (no terminal, a command that cannot start or
//!   crashes) refuses.
//! - A gate is a property of the manifest, the ceiling: a task whose grant
//!   is narrower than the manifest is gated wherever the manifest's gates
//!   reach, so no attenuation can drop one. An `[[http]]` request is gated
//!   when *any* gated rule matches it, not only the rule that allowed it, so
//!   a broader rule listed first does not route around a gate.
//!
//! # Approvers
//!
//! - [`TtyApprover`]: asks at the terminal (`warden run --approve tty`);
//! - [`CommandApprover`]: runs a shell command with the request as JSON on
//!   stdin, exit status 0 approves (`warden run --approve-cmd CMD`);
//! - [`CallbackApprover`]: a closure, for embedders (`Runtime::with_approver`);
//! - [`Deny`]: refuses everything (`warden run --approve deny`, and the
//!   default);
//! - [`Unanimous`]: several approvers that must all agree (`--approve tty
//!   --approve-cmd CMD`, or `warden mcp --approve-cmd CMD --approve mcp`).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use warden_host_api::approval::{Approver, ApprovalRequest, CallbackApprover, Answer};
//!
//! // Approve writes under /workspace/out, refuse everything else.
//! let approver = CallbackApprover::new("out-only", |req: ApprovalRequest| async move {
//!     if req.resource.starts_with("/workspace/out/") {
//!         Answer::approve("out-only", "inside the output directory")
//!     } else {
//!         Answer::refuse("out-only", format!("{} is outside /workspace/out", req.resource))
//!     }
//! });
//! let approver: Arc<dyn Approver> = Arc::new(approver);
//! # let request = |resource: &str| ApprovalRequest {
//! #     agent: None, tool: "t".into(), task: "1".into(), grant: None,
//! #     call: "wasi:filesystem/types.[method]descriptor.open-at".into(),
//! #     kind: warden_host_api::approval::ApprovalKind::FsWrite,
//! #     resource: resource.into(), rule: "fs[0] /workspace read-write".into(),
//! #     summary: format!("t wants to open {resource} for writing"),
//! # };
//! assert!(approver.approve(&request("/workspace/out/report.md")).await.approved);
//! assert!(!approver.approve(&request("/workspace/src/main.rs")).await.approved);
//! # });
//! ```

mod command;
pub mod manifest;
pub(crate) mod task;
mod tty;

pub use async_trait::async_trait;
pub use command::CommandApprover;
pub use manifest::{Approval, Gates};
pub use task::Approvals;
pub(crate) use task::Question;
pub use tty::TtyApprover;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use std::time::Duration;

/// How long an approver may take before its silence is a refusal, unless
/// the runtime sets another timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a gated call asks the approver: everything a person needs to decide,
/// and nothing the tool should not reveal (no file contents, bodies or secret
/// values).
///
/// This is the JSON a [`CommandApprover`] reads on stdin:
///
/// ```json
/// {"agent":"planner","tool":"probe","task":"6f1c…","grant":null,
///  "call":"wasi:filesystem/types.[method]descriptor.open-at","kind":"fs-write",
///  "resource":"/rw/report.md","rule":"fs[1] /rw read-write",
///  "summary":"probe wants to open /rw/report.md for writing"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The agent the task runs for, as the caller named it.
    pub agent: Option<String>,
    /// The tool's name from its manifest.
    pub tool: String,
    /// The task's id, as in its audit records.
    pub task: String,
    /// The id of the grant the task runs under, if it runs under one.
    pub grant: Option<String>,
    /// The WIT name of the host call, e.g.
    /// `wasi:filesystem/types.[method]descriptor.open-at`.
    pub call: String,
    /// What sort of action it is.
    pub kind: ApprovalKind,
    /// What the call acts on: a guest path (`/rw/a.txt`; a rename names both,
    /// `/rw/a -> /rw/b`), a method and URL (`POST https://api.example.com/x`),
    /// or a secret (`secret github`).
    pub resource: String,
    /// The manifest rule that allowed the call, as audit records name it
    /// (`fs[1] /rw read-write`).
    pub rule: String,
    /// One line for a person: `probe wants to open /rw/a.txt for writing`.
    ///
    /// Paths and URLs in it come from the tool: an approver that shows it on a
    /// terminal must neutralize control characters, as [`TtyApprover`] does.
    pub summary: String,
}

/// What sort of action an [`ApprovalRequest`] asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ApprovalKind {
    /// A change to the filesystem under an `[[fs]]` grant (`fs-write`).
    FsWrite,
    /// An HTTP request that changes something (`http-request`).
    HttpRequest,
    /// One use of a secret: a MAC, a reveal, or an injection into a request
    /// (`secret-use`).
    SecretUse,
}

impl ApprovalKind {
    /// The JSON spelling: `fs-write`, `http-request` or `secret-use`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::FsWrite => "fs-write",
            ApprovalKind::HttpRequest => "http-request",
            ApprovalKind::SecretUse => "secret-use",
        }
    }
}

impl fmt::Display for ApprovalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Whether the call may proceed.
    pub approved: bool,
    /// Who answered, as the audit record names them: `tty`,
    /// `command:notify-oncall`, or whatever a callback says (a person's name,
    /// a ticket).
    pub approver: String,
    /// Why, in a few words: `answered y at /dev/tty`, `exit status 1`.
    pub reason: String,
}

impl Answer {
    /// The call may proceed.
    pub fn approve(approver: impl Into<String>, reason: impl Into<String>) -> Answer {
        Answer {
            approved: true,
            approver: approver.into(),
            reason: reason.into(),
        }
    }

    /// The call is refused.
    pub fn refuse(approver: impl Into<String>, reason: impl Into<String>) -> Answer {
        Answer {
            approved: false,
            approver: approver.into(),
            reason: reason.into(),
        }
    }
}

/// Decides gated calls.
///
/// Called from host calls while the tool waits, possibly for several tasks at
/// once, so it must be `Send + Sync`. It never fails: whatever goes wrong is a
/// refusal with a reason. It need not time out itself; the task drops the
/// future when its timeout passes, so an implementation that holds a
/// resource (a child process, a terminal) should release it on drop.
///
/// Implement it with [`async_trait`](macro@async_trait) (re-exported here):
///
/// ```
/// use warden_host_api::approval::{async_trait, Approver, ApprovalRequest, Answer};
///
/// /// Approves whatever a named agent asks.
/// struct TrustAgent(String);
///
/// #[async_trait]
/// impl Approver for TrustAgent {
///     fn name(&self) -> String {
///         format!("trust-agent:{}", self.0)
///     }
///
///     async fn approve(&self, request: &ApprovalRequest) -> Answer {
///         if request.agent.as_deref() == Some(self.0.as_str()) {
///             Answer::approve(self.name(), "trusted agent")
///         } else {
///             Answer::refuse(self.name(), "not the trusted agent")
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait Approver: Send + Sync {
    /// How records name this approver when it gives no answer (a timeout):
    /// `tty`, `command:CMD`, `deny`.
    fn name(&self) -> String;

    /// Decides one request.
    async fn approve(&self, request: &ApprovalRequest) -> Answer;
}

/// Refuses every gated call: what a task gets when nobody configured an
/// approver, and `warden run --approve deny`.
#[derive(Debug, Clone)]
pub struct Deny {
    reason: String,
}

impl Deny {
    /// Refuses with `reason`, which every deny record repeats.
    pub fn because(reason: impl Into<String>) -> Deny {
        Deny {
            reason: reason.into(),
        }
    }
}

impl Default for Deny {
    /// No approver is configured: the reason says how to configure one.
    fn default() -> Deny {
        Deny::because(
            "no approver is configured; to be asked, run warden with --approve tty or \
             --approve-cmd CMD (warden mcp: --approve mcp asks the client; in the library, \
             Runtime::with_approver)",
        )
    }
}

#[async_trait]
impl Approver for Deny {
    fn name(&self) -> String {
        "deny".into()
    }

    async fn approve(&self, _request: &ApprovalRequest) -> Answer {
        Answer::refuse("deny", self.reason.clone())
    }
}

/// Several approvers that must all approve, asked in order: the first
/// refusal refuses and the rest are not asked.
///
/// The decision names everyone who answered (`command:notify+mcp-elicitation`),
/// so the `approval` record says who let the call through. `warden mcp` puts
/// the operator's approver first and the MCP client second: the party being
/// gated is asked only once the operator agreed, and can never answer alone.
pub struct Unanimous {
    approvers: Vec<std::sync::Arc<dyn Approver>>,
}

impl Unanimous {
    /// Approves what every one of `approvers` approves; with none, refuses.
    pub fn new(approvers: Vec<std::sync::Arc<dyn Approver>>) -> Unanimous {
        Unanimous { approvers }
    }
}

impl fmt::Debug for Unanimous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Unanimous").field(&self.name()).finish()
    }
}

#[async_trait]
impl Approver for Unanimous {
    fn name(&self) -> String {
        let names: Vec<String> = self.approvers.iter().map(|a| a.name()).collect();
        names.join("+")
    }

    async fn approve(&self, request: &ApprovalRequest) -> Answer {
        let mut who = Vec::new();
        let mut why = Vec::new();
        for approver in &self.approvers {
            let d = approver.approve(request).await;
            who.push(d.approver);
            why.push(d.reason);
            if !d.approved {
                return Answer::refuse(who.join("+"), why.join("; "));
            }
        }
        if who.is_empty() {
            return Answer::refuse("unanimous", "no approver was given");
        }
        Answer::approve(who.join("+"), why.join("; "))
    }
}

/// An approver written as a closure, for embedders: the closure gets the
/// request and returns a future of the [`Answer`], so it may ask a UI, a
/// chat or a ticket system and wait for the answer.
///
/// See the [module example](self).
pub struct CallbackApprover {
    name: String,
    callback: Box<dyn Fn(ApprovalRequest) -> BoxDecision + Send + Sync>,
}

type BoxDecision = std::pin::Pin<Box<dyn Future<Output = Answer> + Send>>;

impl CallbackApprover {
    /// An approver named `name` in records (on a timeout; otherwise the
    /// [`Answer`] names who answered) that asks `callback`.
    pub fn new<F, Fut>(name: impl Into<String>, callback: F) -> CallbackApprover
    where
        F: Fn(ApprovalRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        CallbackApprover {
            name: name.into(),
            callback: Box::new(move |request| Box::pin(callback(request))),
        }
    }
}

impl fmt::Debug for CallbackApprover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackApprover")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Approver for CallbackApprover {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn approve(&self, request: &ApprovalRequest) -> Answer {
        (self.callback)(request.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn request() -> ApprovalRequest {
        ApprovalRequest {
            agent: Some("planner".into()),
            tool: "probe".into(),
            task: "t1".into(),
            grant: None,
            call: "wasi:filesystem/types.[method]descriptor.open-at".into(),
            kind: ApprovalKind::FsWrite,
            resource: "/rw/a.txt".into(),
            rule: "fs[1] /rw read-write".into(),
            summary: "probe wants to open /rw/a.txt for writing".into(),
        }
    }

    #[test]
    fn the_request_serializes_as_documented() {
        let json = serde_json::to_value(request()).unwrap();
        assert_eq!(json["kind"], "fs-write");
        assert_eq!(json["grant"], serde_json::Value::Null);
        assert_eq!(json["resource"], "/rw/a.txt");
        let back: ApprovalRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request());
    }

    #[tokio::test]
    async fn deny_refuses_and_says_how_to_configure_an_approver() {
        let d = Deny::default().approve(&request()).await;
        assert!(!d.approved);
        assert_eq!(d.approver, "deny");
        assert!(d.reason.contains("--approve tty"), "{}", d.reason);
        assert!(d.reason.contains("--approve-cmd CMD"), "{}", d.reason);
    }

    #[tokio::test]
    async fn a_callback_sees_the_request() {
        let a = CallbackApprover::new("ui", |r: ApprovalRequest| async move {
            Answer::approve("alice", format!("ok for {}", r.resource))
        });
        assert_eq!(a.name(), "ui");
        let d = a.approve(&request()).await;
        assert_eq!(d, Answer::approve("alice", "ok for /rw/a.txt"));
    }

    #[tokio::test]
    async fn unanimous_needs_every_answer_and_stops_at_the_first_no() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let asked = Arc::new(AtomicUsize::new(0));
        let counting = |name: &'static str, yes: bool| {
            let asked = asked.clone();
            Arc::new(CallbackApprover::new(name, move |_| {
                asked.fetch_add(1, Ordering::SeqCst);
                async move {
                    if yes {
                        Answer::approve(name, "yes")
                    } else {
                        Answer::refuse(name, "no")
                    }
                }
            })) as Arc<dyn Approver>
        };
        let both = Unanimous::new(vec![counting("op", true), counting("client", true)]);
        assert_eq!(
            both.approve(&request()).await,
            Answer::approve("op+client", "yes; yes")
        );
        assert_eq!(asked.swap(0, Ordering::SeqCst), 2);

        let op_says_no = Unanimous::new(vec![counting("op", false), counting("client", true)]);
        let d = op_says_no.approve(&request()).await;
        assert_eq!(d, Answer::refuse("op", "no"));
        assert_eq!(
            asked.swap(0, Ordering::SeqCst),
            1,
            "the client was asked after a no"
        );

        let client_says_no = Unanimous::new(vec![counting("op", true), counting("client", false)]);
        assert!(!client_says_no.approve(&request()).await.approved);
        assert!(
            !Unanimous::new(Vec::new())
                .approve(&request())
                .await
                .approved
        );
    }
}
