//! One task: a fresh store with only the manifest's grants, one call, and
//! the records that say what happened.

use crate::component::Kind;
use crate::manifest::Manifest;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use warden_host_api::approval::{Approvals, Approver};
use warden_host_api::audit::{Audit, Event, EventSink, McpIds, NullSink, Receipt, TaskMeta};
use warden_host_api::capability::TaskSetup;
use warden_host_api::cx::TaskCx;
use warden_host_api::fs::FsState;
use warden_host_api::fs::dirs::DirError;
use warden_host_api::grant::live::Ended;
use warden_host_api::grant::live::Liveness;
use warden_host_api::grant::{Capabilities, Grant};
use warden_host_api::http::HttpTask;
use warden_host_api::limits::manifest::Limits;
use warden_host_api::limits::{CappedPipe, LimitHit, Limiter, Tripwire};
use warden_host_api::policy::{Clock, GrantInfo, Policy, TaskPolicy};
use warden_host_api::secrets::{SecretError, TaskSecrets};
use warden_host_api::wit::types::ToolError as WitToolError;
use warden_host_api::{HostState, WardenView};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView};
use wasmtime_wasi_http::WasiHttpCtxView;

/// Store data of one task.
pub struct TaskData {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) host: HostState,
    http: HttpTask,
    limiter: Limiter,
    /// Guest-to-host transitions counted by wasmtime itself: a cross-check
    /// that every host call went through an interposer and was recorded.
    transitions: u64,
    /// Epoch callbacks, which are transitions but not host calls.
    epoch_callbacks: u64,
}

impl WardenView for TaskData {
    fn split(&mut self) -> (WasiCtxView<'_>, &mut HostState) {
        (
            WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            },
            &mut self.host,
        )
    }

    fn split_http(&mut self) -> (WasiHttpCtxView<'_>, &mut HostState) {
        (
            WasiHttpCtxView {
                ctx: &mut self.http.ctx,
                table: &mut self.table,
                hooks: &mut self.http.hooks,
            },
            &mut self.host,
        )
    }
}

/// What the caller passes to one task: made by [`TaskRequest::new`] and its builder
/// methods, which is how new fields arrive without breaking callers.
///
/// No request without an audit sink: there is no `Default`, and no struct literal outside
/// Warden.
///
/// ```compile_fail
/// let req = warden::TaskRequest::default();
/// ```
///
/// ```compile_fail
/// # use std::sync::Arc;
/// # let sink: Arc<dyn warden_host_api::audit::EventSink> = Arc::new(warden_host_api::audit::NullSink);
/// let req = warden::TaskRequest { input: String::new(), ..warden::TaskRequest::new("", sink) };
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct TaskRequest {
    /// JSON input for a tool's `invoke`, or the arguments object of a function's [`call`].
    ///
    /// [`call`]: TaskRequest::call
    pub input: String,
    /// Arguments after the program name, for commands.
    pub args: Vec<String>,
    /// Bytes on the guest's stdin.
    pub stdin: Vec<u8>,
    /// The agent the task runs for.
    pub agent: Option<String>,
    /// Where the task's audit records go.
    pub sink: Arc<dyn EventSink>,
    /// The grant the task runs under, if any: it ends the task when it
    /// expires or is revoked. Without one, the manifest's ceiling holds for
    /// the task's life.
    pub grant: Option<TaskGrant>,
    /// Facts the agent host states about this task for policies to weigh, their
    /// `input.context` (`--context risk=0.4` is `{"risk": 0.4}`); empty if none.
    pub context: serde_json::Map<String, serde_json::Value>,
    /// What the party asking for the task claims about it, unverified, as policies'
    /// `input.client`: `warden mcp` puts a client's `_meta["dev.warden/context"]` here,
    /// never in [`context`](TaskRequest::context). Empty if nothing was claimed.
    pub client: serde_json::Map<String, serde_json::Value>,
    /// The function to call, by name or full name (see [`crate::func`]), for a
    /// [`Kind::Functions`] component, which needs one; [`TaskRequest::input`] then holds its
    /// arguments as a JSON object. `None` for every other kind.
    pub call: Option<String>,
    /// Who answers this task's approval gates, in place of the runtime's
    /// ([`Runtime::with_approver`](crate::Runtime::with_approver)): an agent host that
    /// can ask the person behind this one request (as `warden mcp` asks its client).
    pub approver: Option<Arc<dyn Approver>>,
    /// The MCP session and request this task answers, written into every record.
    pub mcp: Option<McpIds>,
    /// The task's id, when the caller gives it (a fleet worker runs a task the id its
    /// client gave it); `None` makes a new one.
    pub task_id: Option<String>,
    /// Which delivery of the task this is, for a fleet worker (see
    /// [`TaskMeta::attempt`](warden_host_api::audit::TaskMeta::attempt)).
    pub attempt: Option<u32>,
    /// Return the result only once a signed checkpoint covers the task's records
    /// ([`Receipt::covered`]); otherwise it is returned once they are settled as the sink
    /// promises ([`Receipt::settled`]) and a checkpoint follows within the log's
    /// `checkpoint_delay`.
    pub wait_covered: bool,
}

impl TaskRequest {
    /// A request with `input` (a tool's JSON input, or a function's arguments object) whose
    /// records go to `sink`, and nothing else: no arguments, empty stdin, no agent, no
    /// grant (the manifest's ceiling), no policy context and no function. The methods
    /// below set the rest.
    ///
    /// Every task has an audit trail: a task whose records go nowhere is only made with
    /// [`TaskRequest::dangerous`], which says so.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use warden::TaskRequest;
    /// use warden::audit::log::{AuditLog, LogOptions};
    ///
    /// # let dir = tempfile::tempdir()?;
    /// # let key = warden::audit::checkpoint::HostKey::generate("example/warden-audit")?;
    /// let log = Arc::new(AuditLog::open(&dir.path().join("audit.jsonl"), key, LogOptions::default())?);
    /// let req = TaskRequest::new(r#"{"query":"needle"}"#, log)
    ///     .agent("planner")
    ///     .context("risk", 0.2);
    /// assert_eq!(req.agent.as_deref(), Some("planner"));
    /// assert_eq!(req.context["risk"], 0.2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(input: impl Into<String>, sink: Arc<dyn EventSink>) -> Self {
        TaskRequest {
            input: input.into(),
            args: Vec::new(),
            stdin: Vec::new(),
            agent: None,
            sink,
            grant: None,
            context: serde_json::Map::new(),
            client: serde_json::Map::new(),
            call: None,
            approver: None,
            mcp: None,
            task_id: None,
            attempt: None,
            wait_covered: false,
        }
    }

    /// Return the task's result only once a signed checkpoint covers its records (see
    /// [`TaskRequest::wait_covered`]).
    pub fn wait_covered(mut self, wait: bool) -> Self {
        self.wait_covered = wait;
        self
    }

    /// A request that gives up one of Warden's guarantees, each named where it is given
    /// up, as rustls names its dangerous options.
    pub fn dangerous(input: impl Into<String>) -> DangerousTaskRequest {
        DangerousTaskRequest {
            input: input.into(),
        }
    }

    /// Names the agent the task runs for, as its audit records will.
    pub fn agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = Some(agent.into());
        self
    }

    /// Sends the task's audit records to `sink`.
    pub fn sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sink = sink;
        self
    }

    /// Runs the task under `grant` instead of the manifest's ceiling alone.
    pub fn grant(mut self, grant: TaskGrant) -> Self {
        self.grant = Some(grant);
        self
    }

    /// States one fact for policies to weigh, as `input.context[key]`; a later value for
    /// the same key replaces an earlier one.
    pub fn context(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.context.insert(key.into(), value.into());
        self
    }

    /// Names the function of a [`Kind::Functions`] component to call; the input is then
    /// its arguments object.
    pub fn call(mut self, function: impl Into<String>) -> Self {
        self.call = Some(function.into());
        self
    }

    /// The arguments after the program name, for a command.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The bytes the guest reads on stdin.
    pub fn stdin(mut self, stdin: impl Into<Vec<u8>>) -> Self {
        self.stdin = stdin.into();
        self
    }

    /// Who answers this task's approval gates instead of the runtime's approver.
    pub fn approver(mut self, approver: Arc<dyn Approver>) -> Self {
        self.approver = Some(approver);
        self
    }
}

/// A [`TaskRequest`] that gives up a guarantee; see [`TaskRequest::dangerous`].
#[derive(Debug)]
pub struct DangerousTaskRequest {
    input: String,
}

impl DangerousTaskRequest {
    /// A task with no audit trail: its records are discarded, and nothing shows later what
    /// it did. For tests and benchmarks of Warden itself, not for running tools.
    pub fn discard_audit(self) -> TaskRequest {
        TaskRequest::new(self.input, Arc::new(NullSink))
    }
}

impl std::fmt::Debug for TaskRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The sink is a trait object with nothing to show; the input may be large.
        f.debug_struct("TaskRequest")
            .field("input_bytes", &self.input.len())
            .field("args", &self.args)
            .field("stdin_bytes", &self.stdin.len())
            .field("agent", &self.agent)
            .field("grant", &self.grant)
            .field("context", &self.context)
            .field("client", &self.client)
            .field("call", &self.call)
            .field("approver", &self.approver.as_ref().map(|a| a.name()))
            .field("mcp", &self.mcp)
            .finish_non_exhaustive()
    }
}

/// The part of a grant that decides how long a task may run.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskGrant {
    /// Grant ids from the root grant to the task's own, last.
    pub chain: Vec<String>,
    /// When the task's grant expires, if ever.
    pub expires: Option<SystemTime>,
    /// What the grant holds, when it is narrower than the manifest; checked against the
    /// manifest before the task starts. `None` runs with the manifest's ceiling.
    pub caps: Option<Capabilities>,
}

impl TaskGrant {
    /// The grant a task runs under, from grants the agent host holds in memory: `lineage`
    /// is a root grant (made from a manifest with [`Grant::root`] or
    /// [`Tool::root_grant`](crate::Tool::root_grant)) and the grants narrowed from it with
    /// [`Grant::attenuate`], each the parent of the next; the task gets the last one's
    /// capabilities and expiry. Revoking any grant of the lineage ends the task.
    ///
    /// Every link is checked again here (the parent, the depth, no wider capabilities, no
    /// later expiry), since grants may also come from their JSON form; that the root is
    /// within the tool's manifest is checked when the task starts
    /// ([`TaskError::Widened`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use warden::TaskGrant;
    /// use warden_host_api::grant::{Capabilities, Grant, Narrowing};
    ///
    /// // Nothing but the default limits; a real host starts from a tool's manifest.
    /// let ceiling = Capabilities::default();
    /// let root = Grant::root(ceiling, Duration::from_secs(300), None);
    /// let child = root.attenuate(&Narrowing::parse(["memory=8MiB"])?, None, Some("sub".into()))?;
    /// let grant = TaskGrant::from_lineage([&root, &child])?;
    /// assert_eq!(grant.chain, [root.id(), child.id()]);
    /// assert_eq!(grant.expires, Some(child.expires()));
    ///
    /// // The chain must start at its root: revoking the root must reach the task.
    /// assert!(TaskGrant::from_lineage([&child]).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_lineage<'a>(
        lineage: impl IntoIterator<Item = &'a Grant>,
    ) -> Result<TaskGrant, LineageError> {
        let mut chain = Vec::new();
        let mut last: Option<&Grant> = None;
        for grant in lineage {
            match last {
                None if grant.parent().is_some() || grant.depth() != 0 => {
                    return Err(LineageError::NotRoot {
                        id: grant.id().into(),
                        depth: grant.depth(),
                    });
                }
                None => {}
                Some(parent) => {
                    let broken = |why: String| LineageError::Broken {
                        id: grant.id().into(),
                        parent: parent.id().into(),
                        why,
                    };
                    if grant.parent() != Some(parent.id()) {
                        return Err(broken(format!(
                            "its parent is {}",
                            grant.parent().unwrap_or("none (it is a root)")
                        )));
                    }
                    if grant.depth() != parent.depth() + 1 {
                        return Err(broken(format!(
                            "its depth is {}, not {}",
                            grant.depth(),
                            parent.depth() + 1
                        )));
                    }
                    if grant.expires() > parent.expires() {
                        return Err(broken("it expires after its parent".into()));
                    }
                    parent
                        .caps()
                        .covers(grant.caps())
                        .map_err(|w| broken(format!("it is wider: {w}")))?;
                }
            }
            chain.push(grant.id().to_owned());
            last = Some(grant);
        }
        let last = last.ok_or(LineageError::Empty)?;
        Ok(TaskGrant {
            chain,
            expires: Some(last.expires()),
            caps: Some(last.caps().clone()),
        })
    }
}

/// Why grants given to [`TaskGrant::from_lineage`] are not one lineage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineageError {
    /// No grant was given.
    #[error("no grant given: pass the root grant and the grants narrowed from it, root first")]
    Empty,
    /// The first grant is not a root, so revoking its ancestors could not reach the task.
    #[error(
        "grant {id} (depth {depth}) is not a root grant: pass its whole lineage, root first, \
         so that revoking any ancestor reaches the task"
    )]
    NotRoot {
        /// The first grant given.
        id: String,
        /// Its depth.
        depth: u32,
    },
    /// A grant is not a narrowing of the one before it.
    #[error("grant {id} does not follow {parent} in the lineage: {why}")]
    Broken {
        /// The grant that does not follow.
        id: String,
        /// The grant before it.
        parent: String,
        /// What does not fit.
        why: String,
    },
}

/// How a task ended when it ran to completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A tool returned this JSON (a function: its result, see [`crate::func`]).
    Result(String),
    /// A tool returned an error, or a function whose result type is `result<T, E>`
    /// returned `err` (kind `failed`, the error's JSON as message).
    ToolError {
        /// `invalid-input`, `failed` or `denied`.
        kind: &'static str,
        /// The tool's message.
        message: String,
    },
    /// A command exited with this status.
    Exit(i32),
}

/// What a task produced.
#[derive(Debug, Clone)]
pub struct TaskOutput {
    /// The task's id, as in its audit records.
    pub task: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Everything the guest wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the guest wrote to stderr.
    pub stderr: Vec<u8>,
    /// Wall-clock time of the task.
    pub duration: Duration,
    /// Fuel consumed, where fuel is metered.
    pub fuel: Option<u64>,
    /// What the audit sink promised about the task's records when the result was
    /// returned: settled, and covered by a signed checkpoint soon after, or already with
    /// [`TaskRequest::wait_covered`]. `output.receipt.covered().await` waits for the proof.
    pub receipt: Receipt,
}

/// Why a task did not run to completion.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// A limit of the manifest ended the task.
    #[error("task {task} stopped: {hit}")]
    Limit {
        /// The task's id.
        task: String,
        /// Which limit.
        hit: LimitHit,
    },
    /// The guest trapped.
    #[error("task {task} trapped: {message}")]
    Trap {
        /// The task's id.
        task: String,
        /// What the trap said.
        message: String,
        /// What the guest wrote to stderr before it trapped: where an interpreter (Python,
        /// JavaScript) prints the uncaught exception that made it trap.
        stderr: Vec<u8>,
    },
    /// A secret the manifest binds could not be fetched, so the tool was not started.
    #[error("task {task} could not start: {error}")]
    Secret {
        /// The task's id.
        task: String,
        /// Which secret, from which provider, and why.
        error: SecretError,
    },
    /// The task's grant ended (expired or revoked) before or while it ran:
    /// the call that found it was refused with a deny record and the task
    /// was interrupted.
    #[error("task {task} stopped: {ended}")]
    Grant {
        /// The task's id.
        task: String,
        /// Why the grant no longer holds.
        ended: Ended,
    },
    /// The task's grant asks for more than the manifest allows, so it was not started.
    #[error("task {task} could not start: its grant is wider than the manifest: {message}")]
    Widened {
        /// The task's id.
        task: String,
        /// Which capability, and what the manifest allows instead.
        message: String,
    },
    /// The request does not fit the tool: a function to call that it does not export (or
    /// none, for a component that needs one), or arguments that do not fit the function's
    /// types. Nothing was started or recorded.
    #[error("{message}")]
    Arguments {
        /// What is wrong, naming the argument and the type expected, e.g.
        /// `records.make-user: argument age: expected u8 (0..=255), found -1`.
        message: String,
    },
    /// A directory of the task's grant could not be opened as the grant says (a symlink or
    /// a file on the way to a narrowed directory, a manifest directory replaced since the
    /// manifest was loaded), so the tool was not started.
    #[error("task {task} could not start: {error}")]
    Directory {
        /// The task's id.
        task: String,
        /// Which grant, which host path, and what is wrong with it.
        error: DirError,
    },
    /// The task could not be set up or recorded.
    #[error("task {task} could not run: {message}")]
    Host {
        /// The task's id.
        task: String,
        /// What went wrong.
        message: String,
    },
}

impl TaskError {
    /// The id of the task, as in its audit records; `None` when nothing was started
    /// ([`TaskError::Arguments`]).
    pub fn task(&self) -> Option<&str> {
        match self {
            TaskError::Limit { task, .. }
            | TaskError::Trap { task, .. }
            | TaskError::Secret { task, .. }
            | TaskError::Grant { task, .. }
            | TaskError::Widened { task, .. }
            | TaskError::Directory { task, .. }
            | TaskError::Host { task, .. } => Some(task),
            TaskError::Arguments { .. } => None,
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh task id, 24 hex digits nobody can predict: a BLAKE3 keyed hash of a
/// per-process counter and the time, under a key drawn from the OS once per process.
/// The counter keeps ids unique within a process, the key across processes, and the
/// time across a fork (which copies both). Without syscalls: `getpid` and a fresh
/// hasher were a tenth of what Warden adds to a task.
pub fn new_task_id() -> String {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No OS randomness: the ids stay unique (pid and start time), only guessable.
            let mut h = blake3::Hasher::new();
            h.update(&std::process::id().to_le_bytes());
            h.update(&nanos().to_le_bytes());
            key = *h.finalize().as_bytes();
        }
        key
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut block = [0u8; 24];
    block[..8].copy_from_slice(&n.to_le_bytes());
    block[8..].copy_from_slice(&nanos().to_le_bytes());
    warden_host_api::hex::encode(&blake3::keyed_hash(key, &block).as_bytes()[..12])
}

/// Nanoseconds since the epoch (0 before it).
fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// This machine's name, read once per process: every task's records carry
/// it, and a file read per task would be most of a task's cost.
pub(crate) fn hostname() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".into())
    })
    .clone()
}

/// Everything a task needs from its loaded tool.
pub(crate) struct Prepared<'a> {
    pub engine: &'a wasmtime::Engine,
    /// What the tool is, whatever grant it runs under: its name, `[audit]`, `[policy]`,
    /// approval gates, the secrets' specs and the `[[fs]]` roots resolved at load.
    pub manifest: &'a Manifest,
    /// What this task holds: the manifest's ceiling, or a grant within it.
    pub caps: &'a Capabilities,
    pub digest: &'a str,
    pub fuel_metered: bool,
    /// Who answers the manifest's approval gates, and how long they may take.
    pub approver: &'a Arc<dyn Approver>,
    pub approval_timeout: Duration,
    /// The runtime's own policy, asked besides the manifest's.
    pub policy: Option<&'a Policy>,
    /// Where policies read the time, if not from the system clock.
    pub clock: Option<&'a Clock>,
}

/// The audit handle of one task: its records carry who, where and what.
pub(crate) fn audit(p: &Prepared<'_>, req: &TaskRequest, task: &str) -> Audit {
    let m = p.manifest;
    let meta = TaskMeta {
        attempt: req.attempt,
        host: hostname(),
        agent: req.agent.clone(),
        task: task.to_string(),
        parent: None,
        tool: m.tool.name.clone(),
        component: p.digest.to_string(),
        mcp: req.mcp.clone(),
    };
    Audit::new(meta, req.sink.clone(), m.audit.level).with_budget(m.audit.max_records)
}

/// Opens the directories of `caps` (the manifest's `[[fs]]`, or narrowed from them) from
/// the manifest's grants as resolved at load, never by a host path below them. Ordinary grants' file I/O will run on the task's thread instead of hopping to
/// tokio's blocking pool; `special` grants' runs off it.
///
/// # Ambient Authority
///
/// Opens each manifest grant's host directory by its path, and checks it is the one
/// resolved at load.
pub(crate) fn directories(m: &Manifest, caps: &Capabilities) -> Result<FsState, DirError> {
    FsState::new(caps.fs().to_vec())
        .with_special(&m.declared.fs.special)
        .open(m.fs_roots(), cap_std::ambient_authority())
}

/// Builds the store of one task: only granted preopens and env, stdio pipes
/// capped at the output limit, sockets and name lookup only as `[[tcp]]` allows,
/// and the secrets fetched for it.
pub(crate) fn store(
    p: &Prepared<'_>,
    req: &TaskRequest,
    audit: Audit,
    grant: Option<Arc<Liveness>>,
    secrets: TaskSecrets,
    fs_state: FsState,
) -> Result<(Store<TaskData>, CappedPipe, CappedPipe, Tripwire), String> {
    let (m, caps) = (p.manifest, p.caps);
    let limits = caps.limits();
    let tripwire = Tripwire::default();
    let stdout = CappedPipe::new("stdout", limits.output, tripwire.clone());
    let stderr = CappedPipe::new("stderr", limits.output, tripwire.clone());
    // No preopens in the WasiCtx: the guest's directories are the ones
    // `fs_state` opened (see `directories`), handed over by Warden's
    // `get-directories`.
    let mut b = WasiCtxBuilder::new();
    b.stdin(MemoryInputPipe::new(req.stdin.clone()))
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    let mut argv = vec![m.tool.name.clone()];
    argv.extend(req.args.iter().cloned());
    b.args(&argv);
    let deadline = Instant::now() + limits.timeout;
    let approvals = Approvals::new(
        m.approval(),
        req.approver.as_ref().unwrap_or(p.approver).clone(),
        p.approval_timeout,
        audit.meta(),
    )
    .grant(req.grant.as_ref().and_then(|g| g.chain.last().cloned()))
    .deadline(deadline);
    let policy = task_policy(p, req, audit.meta());
    let cx = TaskCx::new(audit, deadline)
        .grant(grant)
        .policy(policy)
        .approvals(approvals);
    let mut setup = TaskSetup::new(&mut b, Arc::new(cx), fs_state, secrets);
    caps.configure(&mut setup);
    let host = setup.finish();
    let data = TaskData {
        wasi: b.build(),
        table: ResourceTable::new(),
        http: HttpTask::new(host.http()),
        host,
        limiter: Limiter::new(limits.memory, tripwire.clone()),
        transitions: 0,
        epoch_callbacks: 0,
    };
    let mut store = Store::new(p.engine, data);
    store.limiter(|d| &mut d.limiter);
    store.call_hook(|mut ctx, hook| {
        if matches!(hook, wasmtime::CallHook::CallingHost) {
            let data = ctx.data_mut();
            data.transitions += 1;
            // Every host call checks the grant before it runs.
            data.host.live(true).map_err(GrantEnded::trap)?;
            // A record about a request that could not be written while no host call was
            // running (a response body's end) stops the task at its next call.
            if let Some(e) = data.host.http().unrecorded() {
                wasmtime::bail!("audit log write failed, stopping the task: {e}");
            }
        }
        Ok(())
    });
    // Every tick the guest gives its thread back to the executor, so that a
    // busy task cannot starve the others on it; past the timeout it is
    // interrupted instead.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut ctx| {
        ctx.data_mut().epoch_callbacks += 1;
        // A task that makes no calls is stopped when its grant ends, too.
        ctx.data_mut().host.live(false).map_err(GrantEnded::trap)?;
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    if p.fuel_metered {
        let fuel = limits.fuel.unwrap_or(u64::MAX);
        store.set_fuel(fuel).map_err(|e| e.to_string())?;
    }
    Ok((store, stdout, stderr, tripwire))
}

/// The policies a task's calls ask: the manifest's `[policy]`, then the runtime's.
fn task_policy(p: &Prepared<'_>, req: &TaskRequest, meta: &TaskMeta) -> TaskPolicy {
    let policies: Vec<Policy> = (p.manifest.policy.as_ref().map(|s| &s.policy))
        .into_iter()
        .chain(p.policy)
        .cloned()
        .collect();
    if policies.is_empty() {
        return TaskPolicy::default();
    }
    // A task run on the manifest alone holds a root grant of its own, named by its
    // task id: depth 0, like a grant issued from the manifest.
    let grant = req
        .grant
        .as_ref()
        .and_then(|g| GrantInfo::new(g.chain.clone(), g.expires))
        .unwrap_or_else(|| GrantInfo::root(meta.task.clone(), None));
    let policy =
        TaskPolicy::new(policies, meta, grant, req.context.clone()).client(req.client.clone());
    match p.clock {
        Some(clock) => policy.clock(clock.clone()),
        None => policy,
    }
}

/// Records the start of a task, before anything is fetched or built for it.
pub(crate) fn start(
    audit: &Audit,
    p: &Prepared<'_>,
    kind: Kind,
    req: &TaskRequest,
    function: Option<&str>,
) -> anyhow::Result<()> {
    let mut ev = Event::new("task.start").args(json!({
        "kind": match kind {
            Kind::Tool => "tool",
            Kind::Command => "command",
            Kind::Functions => "functions",
        },
        "input_bytes": req.input.len(),
        "args": req.args.len(),
        "stdin_bytes": req.stdin.len(),
    }));
    let m = p.manifest;
    let held = m.declared.summary(p.caps);
    ev.args
        .as_object_mut()
        .expect("args is an object")
        .extend(held);
    if let Some(function) = function {
        ev.args["function"] = json!(function);
        ev = ev.resource(function);
    }
    // Which grant the task holds, root first: what revoking any of them would stop.
    if let Some(grant) = &req.grant {
        ev.args["grant"] = json!({
            "chain": grant.chain,
            "expires": grant.expires.map(crate::audit::rfc3339),
        });
    }
    let gates = m.approval();
    if !gates.is_empty() {
        let http: Vec<String> = gates.http.iter().map(|r| r.to_string()).collect();
        ev.args["approval"] = json!({ "fs": gates.fs, "http": http, "secrets": gates.secrets });
    }
    audit.emit(&ev)
}

/// Ends a task that never got a store: records its end (no host calls were made) and
/// returns `error`, or the recording failure if that failed too.
pub(crate) fn abandon(
    audit: &Audit,
    started: Instant,
    outcome: String,
    error: TaskError,
) -> TaskError {
    let end = Event::new("task.end")
        .args(json!({
            "host_calls": 0,
            "unrecorded_host_calls": 0,
            "fuel": null,
            "error": truncate(&error.to_string(), 1024),
        }))
        .outcome(outcome)
        .took(started.elapsed());
    match audit.end(&end) {
        Ok(_) => error,
        Err(e) => TaskError::Host {
            task: audit.meta().task.clone(),
            message: format!("{error}; and its end could not be recorded: {e:#}"),
        },
    }
}

/// Turns the raw result of the call into the task's output or error, and
/// records the end of the task.
pub(crate) fn finish(
    mut store: Store<TaskData>,
    p: &Prepared<'_>,
    task: String,
    started: Instant,
    raw: Result<wasmtime::Result<Outcome>, tokio::time::error::Elapsed>,
    pipes: (CappedPipe, CappedPipe),
    tripwire: Tripwire,
) -> Result<TaskOutput, TaskError> {
    let limits = p.caps.limits();
    let duration = started.elapsed();
    let fuel = if p.fuel_metered {
        store
            .get_fuel()
            .ok()
            .map(|left| limits.fuel.unwrap_or(u64::MAX) - left)
    } else {
        None
    };
    let result: Result<Outcome, TaskError> = match raw {
        Err(_) => Err(TaskError::Limit {
            task: task.clone(),
            hit: LimitHit::Timeout(limits.timeout),
        }),
        Ok(Ok(Outcome::Result(s))) if s.len() as u64 > limits.output => Err(TaskError::Limit {
            task: task.clone(),
            hit: LimitHit::Output {
                limit: limits.output,
                stream: "result",
            },
        }),
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => Err(classify(e, &task, limits, &tripwire)),
    };
    let data = store.data();
    let transitions = data
        .transitions
        .saturating_sub(data.limiter.grows() + data.epoch_callbacks);
    let host = &mut store.data_mut().host;
    let flushed = host.flush_tallies(None).and_then(|()| {
        host.http()
            .close()
            .map_err(|e| wasmtime::Error::msg(format!("{e:#}")))
    });
    let (outcome, detail) = match &result {
        Ok(Outcome::Result(s)) => ("ok".to_string(), json!({ "result_bytes": s.len() })),
        Ok(Outcome::ToolError { kind, message }) => (
            format!("error:{kind}"),
            json!({ "message": truncate(message, 1024) }),
        ),
        Ok(Outcome::Exit(code)) => (format!("exit:{code}"), json!({ "exit": code })),
        Err(TaskError::Limit { hit, .. }) => (
            format!("trap:limit:{}", limit_name(hit)),
            json!({ "limit": hit.to_string() }),
        ),
        Err(e) => (
            "trap".to_string(),
            json!({ "error": truncate(&e.to_string(), 1024) }),
        ),
    };
    let (calls, drops) = host.calls();
    let mut args = json!({
        "host_calls": calls,
        "unrecorded_host_calls": transitions.saturating_sub(calls + drops),
        "fuel": fuel,
    });
    if let (Some(a), Some(d)) = (args.as_object_mut(), detail.as_object()) {
        a.extend(d.clone());
    }
    let end = Event::new("task.end")
        .args(args)
        .outcome(outcome)
        .took(duration);
    // The end is recorded even when the tallies were not (a spent record budget): a
    // task's records always close.
    let recorded = host.end(end).map(drop);
    let recorded = flushed.and(recorded);
    if let Err(e) = recorded {
        return Err(TaskError::Host {
            task,
            message: format!("{e:#}"),
        });
    }
    let outcome = result.map_err(|e| match e {
        TaskError::Trap { task, message, .. } => TaskError::Trap {
            task,
            message,
            stderr: pipes.1.contents(),
        },
        e => e,
    })?;
    Ok(TaskOutput {
        task,
        outcome,
        stdout: pipes.0.contents(),
        stderr: pipes.1.contents(),
        duration,
        fuel,
        receipt: Receipt::settled_now(),
    })
}

fn limit_name(hit: &LimitHit) -> &'static str {
    match hit {
        LimitHit::Memory { .. } => "memory",
        LimitHit::Timeout(_) => "timeout",
        LimitHit::Fuel(_) => "fuel",
        LimitHit::Output { .. } => "output",
        _ => "other",
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Names the limit behind a trap, if one was hit.
fn classify(e: wasmtime::Error, task: &str, limits: &Limits, tripwire: &Tripwire) -> TaskError {
    if let Some(GrantEnded(ended)) = e.downcast_ref::<GrantEnded>() {
        return TaskError::Grant {
            task: task.into(),
            ended: ended.clone(),
        };
    }
    if let Some(hit) = tripwire.hit() {
        return TaskError::Limit {
            task: task.into(),
            hit,
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            return TaskError::Limit {
                task: task.into(),
                hit: LimitHit::Timeout(limits.timeout),
            };
        }
        Some(Trap::OutOfFuel) => {
            return TaskError::Limit {
                task: task.into(),
                hit: LimitHit::Fuel(limits.fuel.unwrap_or(0)),
            };
        }
        _ => {}
    }
    TaskError::Trap {
        task: task.into(),
        message: format!("{e:?}"),
        stderr: Vec::new(),
    }
}

/// The trap that ends a task whose grant ended.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct GrantEnded(Ended);

impl GrantEnded {
    fn trap(ended: Ended) -> wasmtime::Error {
        wasmtime::Error::new(GrantEnded(ended))
    }
}

/// Maps a command's exit trap to its status.
pub(crate) fn exit_status(e: &wasmtime::Error) -> Option<i32> {
    e.downcast_ref::<I32Exit>().map(|x| x.0)
}

/// The WIT tool error as an outcome.
pub(crate) fn tool_error(e: WitToolError) -> Outcome {
    let (kind, message) = match e {
        WitToolError::InvalidInput(m) => ("invalid-input", m),
        WitToolError::Failed(m) => ("failed", m),
        WitToolError::Denied(m) => ("denied", m),
    };
    Outcome::ToolError { kind, message }
}

#[cfg(test)]
mod tests {
    use super::new_task_id;

    #[test]
    fn task_ids_are_24_hex_digits_and_never_repeat() {
        let ids: Vec<String> = (0..10_000).map(|_| new_task_id()).collect();
        for id in &ids {
            assert_eq!(id.len(), 24, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{id}"
            );
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
