//! [`TaskCx`]: what every capability's host calls know of the task they serve.

use crate::approval::Approvals;
use crate::audit::Audit;
use crate::grant::live::{Ended, Liveness};
use crate::policy::TaskPolicy;
use std::sync::Arc;
use std::time::Instant;

/// The task one store runs, as every capability sees it: who it is and where its records go
/// (its [`Audit`]), when it must be over, whether its grant still holds, and who decides
/// beyond the grants (its policy and its approvers).
///
/// Built once per task, before its store, and shared: the host state holds it, and so
/// does whatever outlives a host call (an HTTP response body still streaming), so that no
/// capability keeps a copy of its own that could disagree.
#[derive(Debug)]
pub struct TaskCx {
    audit: Audit,
    deadline: Instant,
    grant: Option<Arc<Liveness>>,
    policy: TaskPolicy,
    approvals: Approvals,
}

impl TaskCx {
    /// A task whose records go to `audit` and which must be over by `deadline`, under no
    /// grant but its manifest, asking no policy and no approver.
    pub fn new(audit: Audit, deadline: Instant) -> TaskCx {
        TaskCx {
            audit,
            deadline,
            grant: None,
            policy: TaskPolicy::default(),
            approvals: Approvals::default(),
        }
    }

    /// Runs under the grant whose liveness is `grant`: once it ends (revoked, expired),
    /// every host call is refused and the task ends.
    pub fn grant(mut self, grant: Option<Arc<Liveness>>) -> TaskCx {
        self.grant = grant;
        self
    }

    /// Asks `policy` about every capability-relevant call.
    pub fn policy(mut self, policy: TaskPolicy) -> TaskCx {
        self.policy = policy;
        self
    }

    /// Asks `approvals`' approver at the manifest's approval gates.
    pub fn approvals(mut self, approvals: Approvals) -> TaskCx {
        self.approvals = approvals;
        self
    }

    /// Where the task's records go.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// When the task's `limits.timeout` ends: nothing it starts may outlive it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub(crate) fn task_policy(&self) -> &TaskPolicy {
        &self.policy
    }

    pub(crate) fn task_approvals(&self) -> &Approvals {
        &self.approvals
    }

    /// Whether the task's grant still holds; `Ok` for a task under its manifest alone.
    pub(crate) fn grant_check(&self) -> Option<Result<(), Ended>> {
        self.grant.as_ref().map(|g| g.check())
    }

    /// The grant's id, for the record of its end.
    pub(crate) fn grant_id(&self) -> Option<&str> {
        self.grant.as_ref().map(|g| g.id())
    }
}
