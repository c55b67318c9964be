//! Who decides a task's gated calls beyond its grant: `--approve*`, `--policy`, `--context`.

use crate::{Failure, usage};
use clap::ValueEnum;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use warden::Runtime;
use warden::mcp::ClientApproval;
use warden_host_api::approval::{Approver, CommandApprover, Deny, TtyApprover, Unanimous};
use warden_host_api::policy::{Policy, parse_context_pair};

/// Who answers approval gates, and how long they may take.
#[derive(clap::Args)]
pub(crate) struct ApproveArgs {
    /// Who answers the calls a manifest's `approval = "required"` gates:
    /// tty asks at this terminal; mcp asks the MCP client (warden mcp only);
    /// deny refuses them all, as happens when no approver is given. Given
    /// more than once, or with --approve-cmd, every approver named must agree.
    #[arg(long, value_name = "WHO")]
    approve: Vec<ApproveWith>,
    /// Answers gated calls with `sh -c CMD`, which reads the request as
    /// one line of JSON on stdin: exit status 0 approves, anything else
    /// refuses.
    #[arg(long, value_name = "CMD")]
    approve_cmd: Option<String>,
    /// How long an approver may take before its silence refuses the call
    /// (e.g. 30s, 300ms); the task's limits.timeout still cuts it short.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = positive_duration)]
    approve_timeout: Duration,
}

/// `--approve`: an approver that needs no argument.
#[derive(Clone, Copy, ValueEnum)]
enum ApproveWith {
    /// Ask at the terminal (/dev/tty).
    Tty,
    /// Refuse every gated call.
    Deny,
    /// Ask the MCP client that made the request, through elicitation (warden mcp
    /// only). With another approver, that one is asked first and both must agree.
    Mcp,
}

pub(crate) fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = warden_host_api::limits::manifest::parse_duration(text).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// What decides a task's calls beyond its grant: `--approve*`, `--policy`, `--context`.
pub(crate) struct Deciders {
    approver: Arc<dyn Approver>,
    approval_timeout: Duration,
    policy: Option<PathBuf>,
    pub(crate) context: Vec<(String, serde_json::Value)>,
}

impl Deciders {
    /// `rt` with this approver, its timeout and the `--policy` (compiled here: a broken
    /// one is a usage error naming its file and line).
    pub(crate) fn apply(&self, rt: Runtime) -> Result<Runtime, Failure> {
        let rt = rt
            .with_approver(self.approver.clone())
            .with_approval_timeout(self.approval_timeout);
        Ok(match &self.policy {
            Some(path) => {
                rt.with_policy(Policy::load(path).map_err(|e| usage(format!("--policy: {e}")))?)
            }
            None => rt,
        })
    }

    /// The deciders of `warden run`, where no MCP client can be asked.
    pub(crate) fn new(
        approval: ApproveArgs,
        policy: Option<PathBuf>,
        context: Vec<(String, serde_json::Value)>,
    ) -> Result<Deciders, Failure> {
        let (approvers, client) = approvers(&approval)?;
        if client {
            return Err(usage(
                "--approve mcp asks an MCP client, and warden run has none: use it with warden mcp",
            ));
        }
        Ok(Deciders {
            approver: approvers,
            approval_timeout: approval.approve_timeout,
            policy,
            context,
        })
    }

    /// The deciders of `warden mcp`, and whether (and after whom) the client is asked.
    pub(crate) fn for_mcp(
        approval: ApproveArgs,
        policy: Option<PathBuf>,
    ) -> Result<(Deciders, ClientApproval), Failure> {
        let (operator, client) = approvers(&approval)?;
        let given = approval
            .approve
            .iter()
            .any(|a| !matches!(a, ApproveWith::Mcp))
            || approval.approve_cmd.is_some();
        let client = match (client, given) {
            (false, _) => ClientApproval::Never,
            (true, false) => ClientApproval::Alone,
            (true, true) => ClientApproval::AfterOperator(operator.clone()),
        };
        let deciders = Deciders {
            approver: operator,
            approval_timeout: approval.approve_timeout,
            policy,
            context: Vec::new(),
        };
        Ok((deciders, client))
    }
}

pub(crate) fn context_pair(text: &str) -> Result<(String, serde_json::Value), String> {
    parse_context_pair(text).map_err(|e| e.to_string())
}

/// The operator's approver of `--approve` and `--approve-cmd` (every one named must
/// agree; refusing when none is given), and whether `--approve mcp` asks the client too.
fn approvers(args: &ApproveArgs) -> Result<(Arc<dyn Approver>, bool), Failure> {
    let mut operator: Vec<Arc<dyn Approver>> = Vec::new();
    let mut client = false;
    let mut deny = false;
    for with in &args.approve {
        match with {
            ApproveWith::Tty => operator.push(Arc::new(TtyApprover::new())),
            ApproveWith::Deny => deny = true,
            ApproveWith::Mcp => client = true,
        }
    }
    if let Some(cmd) = &args.approve_cmd {
        operator.push(Arc::new(CommandApprover::new(cmd.clone())));
    }
    if deny {
        if !operator.is_empty() || client {
            return Err(usage(
                "--approve deny refuses every gated call: give it alone, without other approvers",
            ));
        }
        return Ok((
            Arc::new(Deny::because("--approve deny refuses every gated call")),
            false,
        ));
    }
    let approver: Arc<dyn Approver> = match operator.len() {
        0 => Arc::new(Deny::default()),
        1 => operator.remove(0),
        _ => Arc::new(Unanimous::new(operator)),
    };
    Ok((approver, client))
}
