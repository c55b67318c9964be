//! Warden runs AI-agent tools as WebAssembly components with only the
//! capabilities their manifest grants.
//!
//! A [`Runtime`] owns the engine and the linker, in which every WASI 0.2
//! interface goes through Warden's interposers (`warden-host-api`). Loading a
//! [`manifest::Manifest`] gives a [`Tool`]: the compiled component, its kind
//! and an `InstancePre`. Each [`Tool::run`] is one task in a fresh store with
//! only the manifest's grants (or a narrower grant), and every host call it makes
//! becomes an audit record.
//!
//! # Embedding Warden in an agent host
//!
//! ```no_run
//! # // Not run as a doctest: it needs the guests built (see the README). The
//! # // integration tests and `examples/agent_loop.rs` run the same calls.
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use warden::audit::checkpoint::HostKey;
//! use warden::audit::log::{AuditLog, LogOptions};
//! use warden::audit::stream::{AuditStream, Update};
//! use warden::{EngineConfig, Outcome, Runtime, TaskGrant, TaskRequest, manifest::Manifest};
//! use warden_host_api::grant::Narrowing;
//!
//! // One runtime per process: it runs up to `max_tasks` tasks at once and queues the rest.
//! let runtime = Runtime::new(&EngineConfig { fuel: true, ..EngineConfig::default() })?;
//! let search = runtime.load(Manifest::load("guest-examples/file-search/manifest.toml".as_ref())?)?;
//!
//! // Every record goes to the tamper-evident log, then to whoever watches the stream.
//! let log = AuditLog::open("audit.jsonl".as_ref(), HostKey::generate("me/warden-audit")?, LogOptions::default())?;
//! let stream = Arc::new(AuditStream::new(Arc::new(log)));
//! let mut watch = stream.subscribe();
//! tokio::spawn(async move {
//!     while let Some(Update::Record(r)) = watch.recv().await {
//!         println!("{} {} {}", r["task"], r["event"], r["decision"]);
//!     }
//! });
//!
//! // The planner holds the manifest's ceiling; a sub-agent gets the notes, read-only.
//! let root = search.root_grant(Duration::from_secs(300), Some("planner".into()));
//! let child = root.attenuate(&Narrowing::parse(["fs=/workspace/notes:read"])?, None, Some("sub".into()))?;
//!
//! let out = search
//!     .run(
//!         TaskRequest::new(r#"{"query":"needle","root":"/workspace/notes"}"#)
//!             .agent("sub")
//!             .sink(stream.clone())
//!             .grant(TaskGrant::from_lineage([&root, &child])?),
//!     )
//!     .await?;
//! if let Outcome::Result(json) = &out.outcome {
//!     println!("task {} took {:?}, fuel {:?}: {json}", out.task, out.duration, out.fuel);
//! }
//! # Ok(()) }
//! ```
//!
//! - **Tasks**: [`TaskRequest::new`] and its builder methods say what one task gets;
//!   [`TaskOutput`] has its id (as in its audit records), outcome, output, duration
//!   and fuel; [`TaskError`] says why it did not complete, naming the task.
//! - **Concurrency**: a runtime admits [`EngineConfig::max_tasks`] tasks at once over
//!   all its tools, each with a pool slot sized by [`engine::build`]; tasks beyond that
//!   wait, holding no instance, so memory stays bounded however many are started.
//!
//! # Grants
//!
//! Without a grant, a task holds what its manifest allows. An agent host issues a
//! root grant from a tool's manifest ([`Tool::root_grant`]), narrows it for each
//! sub-step or sub-agent with [`Grant::attenuate`] (never wider; see
//! [`warden_host_api::grant`]), and runs the task under the lineage with
//! [`TaskGrant::from_lineage`]; revoking any grant of it ([`Runtime::revocations`])
//! ends the task. Grants that travel between processes are signed tokens
//! ([`token`]).
//!
//! # Audit stream
//!
//! [`audit::stream::AuditStream`] wraps the log as every task's sink and publishes
//! each record, once the log holds it, to subscribers that never hold a task up.
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod audit;
pub mod component;
pub mod engine;
pub mod func;
pub mod manifest;
pub mod mcp;
mod task;
pub mod token;

pub use component::Kind;
pub use engine::EngineConfig;
pub use task::{LineageError, Outcome, TaskError, TaskGrant, TaskOutput, TaskRequest, new_task_id};

use func::FunctionInfo;
use manifest::{Manifest, ManifestError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use task::{Prepared, TaskData};
use tokio::sync::Semaphore;
use warden_host_api::approval::{self, Approver, Deny};
use warden_host_api::audit::EventSink;
use warden_host_api::bindings::ToolPre;
use warden_host_api::grant::Grant;
use warden_host_api::grant::live::{Ended, Liveness, Revocations};
use warden_host_api::policy::{Clock, Policy};
use warden_host_api::secrets::TaskSecrets;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Val};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;

/// Why a tool could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The manifest is invalid or its digest pin does not match.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The component file could not be read.
    #[error("{}: cannot read component: {error}", path.display())]
    Read {
        /// The component path.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is not a component Warden can run.
    #[error("{}: {message}", path.display())]
    Rejected {
        /// The component path.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The component needs more of something than a task slot holds
    /// ([`EngineConfig::slot`]).
    #[error(
        "{}: needs {need} {} per task, more than the {holds} a task slot holds; raise it with \
         `{} {need}` (or {}={need}; a library host sets EngineConfig::slot.{})",
        path.display(), limit.what(), limit.flag(), limit.env(), limit.field()
    )]
    TooLarge {
        /// The component path.
        path: PathBuf,
        /// Which number of the slot it exceeds.
        limit: engine::SlotLimit,
        /// How many the component needs.
        need: u32,
        /// How many a slot holds.
        holds: u32,
    },
    /// The manifest asks for fuel, but the runtime does not meter it.
    #[error("{}: limits.fuel is set, but this runtime was built without fuel metering", path.display())]
    FuelNotMetered {
        /// The manifest path.
        path: PathBuf,
    },
}

/// How often a runtime reads a shared revocation list for running tasks.
pub const REVOCATION_POLL: Duration = Duration::from_millis(500);

/// The engine and linker shared by all tools and tasks.
pub struct Runtime {
    engine: Engine,
    linker: Linker<TaskData>,
    /// Compiled components, authenticated ([`engine::cache`]); `None` compiles every time.
    cache: Option<engine::cache::CodeCache>,
    /// What each task slot holds, for the error that says a component needs more.
    slot: engine::TaskSlot,
    /// Told of compiles that take more than a second.
    compile_notices: Option<engine::slow::Notify>,
    settings: Settings,
}

/// What a runtime decides for every task, whichever tool runs it: each loaded tool
/// takes a copy (cheap: `Arc`s), so a setting changed later applies to tools loaded later.
#[derive(Clone)]
struct Settings {
    fuel: bool,
    revocations: Arc<Revocations>,
    approver: Arc<dyn Approver>,
    approval_timeout: Duration,
    policy: Option<Policy>,
    clock: Option<Clock>,
    /// One permit per task slot of the engine's pool, shared by every tool.
    slots: Arc<Semaphore>,
}

impl Runtime {
    /// A runtime with the given engine settings.
    pub fn new(cfg: &EngineConfig) -> wasmtime::Result<Self> {
        let engine = engine::build(cfg)?;
        let cache = match (&cfg.cache_dir, &cfg.cache_key) {
            (None, _) => None,
            (Some(dir), Some(key)) => Some(engine::cache::CodeCache::open(dir, key)?),
            (Some(dir), None) => wasmtime::bail!(
                "cache_dir {} is set without cache_key: cached machine code is only loaded \
                 once a secret shows this host wrote it",
                dir.display()
            ),
        };
        let mut linker = Linker::new(&engine);
        warden_host_api::add_to_linker(&mut linker)?;
        Ok(Runtime {
            engine,
            linker,
            cache,
            slot: cfg.slot,
            compile_notices: None,
            settings: Settings {
                fuel: cfg.fuel,
                revocations: Arc::new(Revocations::new(None)),
                approver: Arc::new(Deny::default()),
                approval_timeout: approval::DEFAULT_TIMEOUT,
                policy: None,
                clock: None,
                slots: Arc::new(Semaphore::new(cfg.max_tasks as usize)),
            },
        })
    }

    /// Asks `policy` about every capability-relevant call of every task of the tools
    /// loaded after this, as well as any `[policy]` a tool's manifest names: each must
    /// allow a call, and a denial from either refuses it. This is where an agent host puts
    /// the rules that hold for every tool it runs.
    ///
    /// ```
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use warden::Runtime;
    /// use warden_host_api::policy::Policy;
    ///
    /// let policy = Policy::from_source("host.rego", r#"
    ///     package warden
    ///     deny contains "sub-agents may not write" if {
    ///         input.call.kind == "fs.write"
    ///         input.grant.depth > 0
    ///     }
    ///     cacheable := true
    /// "#)?;
    /// let runtime = Runtime::new(&Default::default())?.with_policy(policy);
    /// # Ok(()) }
    /// # demo().unwrap();
    /// ```
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.settings.policy = Some(policy);
        self
    }

    /// Policies read `input.time` from `clock` instead of the system clock, in the tasks
    /// of the tools loaded after this.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.settings.clock = Some(clock);
        self
    }

    /// Tells `notify` about every compile that takes more than a second ([`engine::slow`]):
    /// the first load of a large component, such as a Python or JavaScript tool, compiles for
    /// seconds before a task can start, and a user should know why nothing happens.
    pub fn with_compile_notices(
        mut self,
        notify: impl Fn(&engine::slow::CompileNotice) + Send + Sync + 'static,
    ) -> Self {
        self.compile_notices = Some(Arc::new(notify));
        self
    }

    /// Asks `approver` about every call an `approval = "required"` gate of a
    /// tool's manifest covers, in every task of the tools loaded after this.
    /// Without one, gated calls are refused ([`Deny`]).
    ///
    /// ```no_run
    /// # fn demo() -> wasmtime::Result<()> {
    /// use std::sync::Arc;
    /// use warden::Runtime;
    /// use warden_host_api::approval::{ApprovalRequest, CallbackApprover, Decision};
    ///
    /// let approver = CallbackApprover::new("ui", |req: ApprovalRequest| async move {
    ///     // Ask someone; here, allow nothing outside /workspace/out.
    ///     if req.resource.starts_with("/workspace/out/") {
    ///         Decision::approve("ui", "output directory")
    ///     } else {
    ///         Decision::refuse("ui", "only /workspace/out may change")
    ///     }
    /// });
    /// let runtime = Runtime::new(&Default::default())?.with_approver(Arc::new(approver));
    /// # Ok(()) }
    /// ```
    pub fn with_approver(mut self, approver: Arc<dyn Approver>) -> Self {
        self.settings.approver = approver;
        self
    }

    /// How long an approver may take before its silence refuses the call
    /// ([`approval::DEFAULT_TIMEOUT`], 60 s, unless set). A task's own
    /// `limits.timeout` still cuts a wait short.
    pub fn with_approval_timeout(mut self, timeout: Duration) -> Self {
        self.settings.approval_timeout = timeout;
        self
    }

    /// Uses `revocations` for every task's grant: a revocation there ends
    /// the running tasks it reaches. Shared with a file, it reaches other
    /// processes too.
    ///
    /// With a file, a thread reads it every [`REVOCATION_POLL`] for as long as the list
    /// lives, so that a revocation written by another process (`warden grant revoke`) also
    /// stops tasks that are already running here.
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        if revocations.file().is_some() {
            let list = Arc::downgrade(&revocations);
            let spawned = std::thread::Builder::new()
                .name("warden-revocations".into())
                .spawn(move || {
                    while let Some(list) = list.upgrade() {
                        // A list that cannot be read now is read again next
                        // time; tasks starting meanwhile refuse to run.
                        let _ = list.refresh();
                        drop(list);
                        std::thread::sleep(REVOCATION_POLL);
                    }
                });
            // Without the thread, revocations still reach every task start.
            drop(spawned);
        }
        self.settings.revocations = revocations;
        self
    }

    /// The revocation list tasks are checked against.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.settings.revocations
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled-component cache, if [`EngineConfig::cache_dir`] named one.
    pub fn code_cache(&self) -> Option<&engine::cache::CodeCache> {
        self.cache.as_ref()
    }

    /// Compiles a component file, checking nothing but that it is one; from the runtime's
    /// cache when it holds an authenticated artifact of it ([`EngineConfig::cache_dir`]).
    pub fn compile(&self, path: &std::path::Path) -> Result<(Component, Vec<u8>), LoadError> {
        let bytes = std::fs::read(path).map_err(|error| LoadError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        // Watched only when compiling: a cache hit starts no thread.
        let watch = || {
            self.compile_notices
                .clone()
                .map(|notify| engine::slow::Watch::start(notify, path, bytes.len() as u64))
        };
        let component = match &self.cache {
            Some(cache) => cache.component_compiling(&self.engine, &bytes, watch),
            None => {
                let _watch = watch();
                Component::new(&self.engine, &bytes)
            }
        };
        let component = component.map_err(|e| {
            let text = format!("{e:#}");
            if let Some((limit, need)) = engine::SlotLimit::refusal(&text) {
                return LoadError::TooLarge {
                    path: path.to_path_buf(),
                    limit,
                    need,
                    holds: limit.of(&self.slot),
                };
            }
            // The pool's other bounds (a table's or a memory's initial size, the instance's
            // state), not the component's validity, refused it.
            let message = if text.contains("pooling allocator") {
                format!("too large for a task slot: {text}")
            } else {
                format!("not a valid component: {e}")
            };
            LoadError::Rejected {
                path: path.to_path_buf(),
                message,
            }
        })?;
        Ok((component, bytes))
    }

    /// Loads the tool of `manifest`: reads and pins its component, detects
    /// its kind and links it against Warden's interposers.
    pub fn load(&self, manifest: Manifest) -> Result<Tool, LoadError> {
        if manifest.limits.fuel.is_some() && !self.settings.fuel {
            return Err(LoadError::FuelNotMetered {
                path: manifest.path.clone(),
            });
        }
        let path = manifest.tool.component.clone();
        let (component, bytes) = self.compile(&path)?;
        manifest.verify_digest(&bytes)?;
        let digest = format!("blake3:{}", blake3::hash(&bytes).to_hex());
        let rejected = |message: String| LoadError::Rejected {
            path: path.clone(),
            message,
        };
        let kind = component::detect(&self.engine, &component).map_err(rejected)?;
        let pre: InstancePre<TaskData> = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| rejected(format!("cannot be linked: {e:#}")))?;
        let mut functions = Vec::new();
        let entry = match kind {
            Kind::Tool => Entry::Tool(ToolPre::new(pre).map_err(|e| rejected(format!("{e:#}")))?),
            Kind::Command => {
                Entry::Command(CommandPre::new(pre).map_err(|e| rejected(format!("{e:#}")))?)
            }
            Kind::Functions => {
                functions = func::functions(&self.engine, &component);
                let exports = func::export_indexes(&component, &functions).map_err(rejected)?;
                Entry::Functions { pre, exports }
            }
        };
        Ok(Tool {
            engine: self.engine.clone(),
            manifest: Arc::new(manifest),
            kind,
            digest,
            entry,
            functions,
            settings: self.settings.clone(),
        })
    }
}

/// What a task asks of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Invoke {
    /// `invoke`, the function called, or the command's `run`.
    Run,
    /// A `warden:tool` component's `describe`.
    Describe,
}

/// What a `warden:tool` component says about itself ([`Tool::describe`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolInfo {
    /// Its short machine name, e.g. `file-search`.
    pub name: String,
    /// One or two sentences for the agent that decides whether to call it.
    pub description: String,
    /// The JSON Schema (draft 2020-12) of its `invoke` input.
    pub input_schema: serde_json::Value,
}

enum Entry {
    Tool(ToolPre<TaskData>),
    Command(CommandPre<TaskData>),
    /// Where each of [`Tool::functions`] is, in the same order.
    Functions {
        pre: InstancePre<TaskData>,
        exports: Vec<ComponentExportIndex>,
    },
}

/// The function a task calls, and its arguments, checked before the task starts.
struct Call<'a> {
    index: usize,
    info: &'a FunctionInfo,
    args: Vec<Val>,
}

/// A loaded tool: ready to run tasks.
pub struct Tool {
    engine: Engine,
    manifest: Arc<Manifest>,
    kind: Kind,
    digest: String,
    entry: Entry,
    functions: Vec<FunctionInfo>,
    settings: Settings,
}

impl Tool {
    /// The tool's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The component's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// `blake3:<hex>` of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// A root grant of everything this tool's manifest allows (its
    /// [ceiling](Manifest::ceiling)), issued now to `agent` and expiring after `ttl`: the
    /// grant an agent host narrows with [`Grant::attenuate`] for each sub-step, and runs
    /// tasks under with [`TaskGrant::from_lineage`]. See the [crate docs](crate#grants).
    pub fn root_grant(&self, ttl: Duration, agent: Option<String>) -> Grant {
        Grant::root(self.manifest.ceiling(), ttl, agent)
    }

    /// The functions of a [`Kind::Functions`] component, each a tool that
    /// [`TaskRequest::call`] names; empty for other kinds.
    pub fn functions(&self) -> &[FunctionInfo] {
        &self.functions
    }

    /// The function `req` calls and its arguments, converted by the function's types; or
    /// why the request is not one this tool can run. Nothing has started yet.
    fn call_of(&self, req: &TaskRequest) -> Result<Option<Call<'_>>, TaskError> {
        let wrong = |message: String| TaskError::Arguments { message };
        let names = || {
            let names: Vec<&str> = self.functions.iter().map(|f| f.name.as_str()).collect();
            names.join(", ")
        };
        let name = match (self.kind, &req.call) {
            (Kind::Functions, Some(name)) => name,
            (Kind::Functions, None) => {
                return Err(wrong(format!(
                    "{} exports functions: name the one to call (--call NAME), one of {}",
                    self.manifest.tool.name,
                    names()
                )));
            }
            (_, None) => return Ok(None),
            (kind, Some(name)) => {
                return Err(wrong(format!(
                    "cannot call {name:?}: {} is a {kind} component, which exports no functions \
                     to call by name; run it without --call",
                    self.manifest.tool.name
                )));
            }
        };
        let index = func::resolve(&self.functions, name)
            .map_err(|why| wrong(format!("{}: {why}", self.manifest.tool.name)))?;
        let info = &self.functions[index];
        if let Err(why) = &info.callable {
            return Err(wrong(format!("{} cannot be called: {why}", info.name)));
        }
        let input: serde_json::Value = if req.input.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_str(&req.input).map_err(|e| {
                wrong(format!(
                    "{}: the arguments are not valid JSON: {e}",
                    info.name
                ))
            })?
        };
        let args = info
            .arguments(&input)
            .map_err(|e| wrong(format!("{}: {e}", info.name)))?;
        Ok(Some(Call { index, info, args }))
    }

    /// Runs one task.
    ///
    /// The task's secrets are fetched first, just in time, from their providers; a secret
    /// that cannot be fetched ends the task before the tool starts, with
    /// [`TaskError::Secret`] naming it and its source.
    ///
    /// For a [`Kind::Functions`] component, [`TaskRequest::call`] names the function and
    /// [`TaskRequest::input`] holds its arguments; a wrong name or arguments that do not fit
    /// the function's types are [`TaskError::Arguments`], before anything starts or is
    /// recorded.
    ///
    /// A runtime runs at most [`EngineConfig::max_tasks`] tasks at once, over all its
    /// tools; a task started beyond that waits for one to end before it starts (before its
    /// `task.start` record, its duration and its `limits.timeout` begin). Dropping the
    /// future gives the slot back, whether the task was waiting or running.
    pub async fn run(&self, req: TaskRequest) -> Result<TaskOutput, TaskError> {
        self.execute(req, Invoke::Run).await
    }

    /// Asks a `warden:tool` component to describe itself: its name, description and
    /// the JSON Schema of its input, as its `describe` export says. It runs as a task
    /// under the manifest like any other (records go to `sink`), since `describe` is the
    /// tool's own code.
    ///
    /// An error for components of other kinds (their functions describe themselves:
    /// [`Tool::functions`]) and for a schema that is not JSON.
    pub async fn describe(&self, sink: Arc<dyn EventSink>) -> Result<ToolInfo, TaskError> {
        let req = TaskRequest::default().sink(sink);
        let name = &self.manifest.tool.name;
        if self.kind != Kind::Tool {
            return Err(TaskError::Arguments {
                message: format!(
                    "{name} is a {} component: only a warden:tool component has describe",
                    self.kind
                ),
            });
        }
        let out = self.execute(req, Invoke::Describe).await?;
        let Outcome::Result(json) = out.outcome else {
            return Err(TaskError::Host {
                task: out.task,
                message: format!("{name}: describe returned no description"),
            });
        };
        serde_json::from_str(&json).map_err(|e| TaskError::Host {
            task: out.task,
            message: format!("{name}: describe: {e}"),
        })
    }

    async fn execute(&self, req: TaskRequest, invoke: Invoke) -> Result<TaskOutput, TaskError> {
        let call = self.call_of(&req)?;
        let task = new_task_id();
        // Declared before the store, so dropped after it: the pool slot the store held is
        // free before another task is admitted, on every path out of here.
        let _slot = self
            .settings
            .slots
            .acquire()
            .await
            .map_err(|_| TaskError::Host {
                task: task.clone(),
                message: "the runtime's task slots were closed".into(),
            })?;
        // A grant narrower than the manifest replaces its sections for this task.
        let narrowed = req
            .grant
            .as_ref()
            .and_then(|g| g.caps.as_ref())
            .map(|caps| self.manifest.narrowed(caps));
        let manifest: &Manifest = match &narrowed {
            Some(Ok(m)) => m,
            _ => &self.manifest,
        };
        let p = Prepared {
            engine: &self.engine,
            manifest,
            digest: &self.digest,
            fuel_metered: self.settings.fuel,
            approver: &self.settings.approver,
            approval_timeout: self.settings.approval_timeout,
            policy: self.settings.policy.as_ref(),
            clock: self.settings.clock.as_ref(),
        };
        let audit = task::audit(&p, &req, &task);
        let function = match invoke {
            Invoke::Describe => Some("describe"),
            Invoke::Run => call.as_ref().map(|c| c.info.full_name.as_str()),
        };
        task::start(&audit, manifest, self.kind, &req, function).map_err(|e| TaskError::Host {
            task: task.clone(),
            message: format!("{e:#}"),
        })?;
        let started = Instant::now();
        if let Some(Err(why)) = narrowed {
            let error = TaskError::Widened {
                task: task.clone(),
                message: why,
            };
            return Err(task::abandon(
                &audit,
                started,
                "error:grant-widened".into(),
                error,
            ));
        }
        let grant = match self.grant(&req) {
            Ok(grant) => grant,
            Err(ended) => {
                let outcome = "error:grant-ended".to_owned();
                let error = TaskError::Grant {
                    task: task.clone(),
                    ended,
                };
                return Err(task::abandon(&audit, started, outcome, error));
            }
        };
        // Before any secret is fetched: a task whose directories are not what its grant
        // says does not start.
        let fs_state = match task::directories(manifest) {
            Ok(fs_state) => fs_state,
            Err(error) => {
                let error = TaskError::Directory {
                    task: task.clone(),
                    error,
                };
                return Err(task::abandon(
                    &audit,
                    started,
                    "error:fs-grant".into(),
                    error,
                ));
            }
        };
        let secrets = match TaskSecrets::fetch(&manifest.secrets, &audit).await {
            Ok(secrets) => secrets,
            Err(error) => {
                let outcome = format!("error:secret:{}", error.code());
                let error = TaskError::Secret {
                    task: task.clone(),
                    error,
                };
                return Err(task::abandon(&audit, started, outcome, error));
            }
        };
        let (mut store, out, err, tripwire) =
            match task::store(&p, &req, audit.clone(), secrets, fs_state) {
                Ok(built) => built,
                Err(message) => {
                    let error = TaskError::Host {
                        task: task.clone(),
                        message,
                    };
                    return Err(task::abandon(&audit, started, "trap".into(), error));
                }
            };
        store.data_mut().host.grant = grant;
        // Epoch interruption stops guest code; this stops a task whose guest
        // is parked in a host call that never returns.
        let backstop = manifest.limits.timeout + Duration::from_secs(1);
        let raw = tokio::time::timeout(backstop, self.call(&mut store, &req, call, invoke)).await;
        task::finish(store, &p, task, started, raw, (out, err), tripwire)
    }

    /// The liveness of the task's grant, registered for revocation; an
    /// error when it has already ended.
    fn grant(&self, req: &TaskRequest) -> Result<Option<Arc<Liveness>>, Ended> {
        let Some(g) = &req.grant else {
            return Ok(None);
        };
        // Revocations by other processes count from the task's start; a
        // list that cannot be read is no reason to run, nor to guess.
        if let Err(e) = self.settings.revocations.refresh() {
            return Err(Ended::Unknown {
                id: g.chain.last().cloned().unwrap_or_default(),
                why: e.to_string(),
            });
        }
        let live = Liveness::new(g.chain.clone(), g.expires);
        self.settings.revocations.register(&live)?;
        Ok(Some(live))
    }

    async fn call(
        &self,
        store: &mut Store<TaskData>,
        req: &TaskRequest,
        call: Option<Call<'_>>,
        invoke: Invoke,
    ) -> wasmtime::Result<Outcome> {
        match &self.entry {
            Entry::Functions { pre, exports } => {
                let Some(call) = call else {
                    // `call_of` gives every functions task a call.
                    return Err(wasmtime::Error::msg("no function to call"));
                };
                let instance = pre.instantiate_async(&mut *store).await?;
                let f = instance
                    .get_func(&mut *store, exports[call.index])
                    .ok_or_else(|| {
                        wasmtime::Error::msg(format!("{} is not a function", call.info.full_name))
                    })?;
                // Placeholders: wasmtime overwrites them with the results.
                let mut results = vec![Val::Bool(false); call.info.results.len()];
                f.call_async(&mut *store, &call.args, &mut results).await?;
                Ok(match call.info.returned(&results) {
                    Ok(value) => Outcome::Result(value.to_string()),
                    Err(error) => Outcome::ToolError {
                        kind: "failed",
                        message: error.to_string(),
                    },
                })
            }
            Entry::Tool(pre) if invoke == Invoke::Describe => {
                let tool = pre.instantiate_async(&mut *store).await?;
                let info = tool.call_describe(&mut *store).await?;
                let schema = serde_json::from_str(&info.input_schema).map_err(|e| {
                    wasmtime::Error::msg(format!("describe: input-schema is not JSON: {e}"))
                })?;
                let info = ToolInfo {
                    name: info.name,
                    description: info.description,
                    input_schema: schema,
                };
                Ok(Outcome::Result(serde_json::to_string(&info)?))
            }
            Entry::Tool(pre) => {
                let tool = pre.instantiate_async(&mut *store).await?;
                Ok(match tool.call_invoke(&mut *store, &req.input).await? {
                    Ok(s) => Outcome::Result(s),
                    Err(e) => task::tool_error(e),
                })
            }
            Entry::Command(pre) => {
                let cmd = pre.instantiate_async(&mut *store).await?;
                match cmd.wasi_cli_run().call_run(&mut *store).await {
                    Ok(Ok(())) => Ok(Outcome::Exit(0)),
                    Ok(Err(())) => Ok(Outcome::Exit(1)),
                    Err(e) => match task::exit_status(&e) {
                        Some(code) => Ok(Outcome::Exit(code)),
                        None => Err(e),
                    },
                }
            }
        }
    }
}
