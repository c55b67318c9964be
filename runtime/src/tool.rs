//! [`Tool`]: a component loaded under its manifest, and how one task of it runs.

use crate::runtime::Settings;
use crate::*;
use func::FunctionInfo;
use manifest::Manifest;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};
use task::{Prepared, TaskData};
use warden_host_api::audit::{Audit, EventSink};
use warden_host_api::grant::live::{Ended, Liveness};
use warden_host_api::grant::{Capabilities, Grant};
use warden_host_api::secrets::TaskSecrets;
use warden_host_api::wit::ToolPre;
use wasmtime::component::{ComponentExportIndex, InstancePre, Val};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;

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

pub(crate) enum Entry {
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

/// Where a loaded tool's component came from and what was checked of it: what its
/// `tool.load` record says.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The tool's name.
    pub tool: String,
    /// The component's file, or its OCI reference as the manifest wrote it.
    pub source: String,
    /// The BLAKE3 digest of the component's bytes, once they were read.
    pub digest: Option<manifest::Digest>,
    /// For a component from a registry: its manifest's digest and its layer's.
    pub oci: Option<(oci::Sha256, oci::Sha256)>,
    /// The pins the manifest holds: `tool.digest`, and the digest in an `oci://` reference.
    pub pins: Vec<String>,
    /// The signature that verified, if `signed-by` asked for one.
    pub signature: Option<trust::Verified>,
    /// Whether the runtime requires signed tools.
    pub require_signed: bool,
    /// With approved baselines: the approved component, and how this one compares
    /// (`same`, `within`, `widened`).
    pub baseline: Option<(String, &'static str)>,
}

impl Provenance {
    pub(crate) fn new(manifest: &Manifest, require_signed: bool) -> Provenance {
        let mut pins = Vec::new();
        if let Some(d) = manifest.tool.digest {
            pins.push(d.to_string());
        }
        if let manifest::ComponentSource::Oci(r) = &manifest.tool.component
            && let Some(d) = r.digest()
        {
            pins.push(d.to_string());
        }
        Provenance {
            tool: manifest.tool.name.clone(),
            source: manifest.tool.component.to_string(),
            pins,
            require_signed,
            ..Provenance::default()
        }
    }

    /// Writes the `tool.load` record: allowed, or refused because of `refused`.
    pub(crate) fn record(&self, sink: &dyn EventSink, refused: Option<&str>) -> anyhow::Result<()> {
        use warden_host_api::audit::{Decision, Event, NO_TASK, Record, TaskMeta};
        let meta = TaskMeta {
            attempt: None,
            host: task::hostname(),
            agent: None,
            task: NO_TASK.into(),
            parent: None,
            tool: self.tool.clone(),
            component: self.digest.map_or_else(|| "-".into(), |d| d.to_string()),
            mcp: None,
        };
        let mut event = Event::new("tool.load");
        event.resource = Some(self.source.clone());
        event.args = serde_json::json!({
            "oci": self.oci.map(|(m, l)| serde_json::json!({
                "manifest": m.to_string(),
                "layer": l.to_string(),
            })),
            "pins": self.pins,
            "signature": match &self.signature {
                Some(v) => serde_json::json!({ "checked": true, "scheme": v.scheme, "key": v.key }),
                None => serde_json::json!({ "checked": false }),
            },
            "require_signed": self.require_signed,
            "baseline": self.baseline.as_ref().map(|(approved, drift)| serde_json::json!({
                "approved": approved,
                "drift": drift,
            })),
        });
        event.decision = Some(if refused.is_some() {
            Decision::Deny
        } else {
            Decision::Allow
        });
        event.rule = refused.map(str::to_owned);
        event.outcome = Some(if refused.is_some() { "refused" } else { "ok" }.into());
        sink.emit(&Record {
            meta: &meta,
            time: std::time::SystemTime::now(),
            event: &event,
        })
    }
}

/// A loaded tool: ready to run tasks.
pub struct Tool {
    pub(crate) provenance: Provenance,
    pub(crate) engine: Engine,
    pub(crate) manifest: Arc<Manifest>,
    /// The manifest's sections as a capability set: what a task holds without a grant, and
    /// what every grant must be within.
    pub(crate) ceiling: Capabilities,
    pub(crate) kind: Kind,
    pub(crate) digest: String,
    pub(crate) entry: Entry,
    pub(crate) functions: Vec<FunctionInfo>,
    pub(crate) settings: Settings,
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

    /// The compiled component.
    pub fn component(&self) -> &wasmtime::component::Component {
        match &self.entry {
            Entry::Tool(pre) => pre.instance_pre().component(),
            Entry::Command(pre) => pre.instance_pre().component(),
            Entry::Functions { pre, .. } => pre.component(),
        }
    }

    /// Where the component came from, and what was checked of it when it loaded.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// A root grant of everything this tool's manifest allows (its
    /// [ceiling](Manifest::ceiling)), issued now to `agent` and expiring after `ttl`: the
    /// grant an agent host narrows with [`Grant::attenuate`] for each sub-step, and runs
    /// tasks under with [`TaskGrant::from_lineage`]. See the [crate docs](crate#grants).
    pub fn root_grant(&self, ttl: Duration, agent: Option<String>) -> Grant {
        Grant::root(self.ceiling.clone(), ttl, agent)
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
        let req = TaskRequest::new("", sink);
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

    /// Runs the task, then waits, with its pool slot given back, for what its audit sink
    /// promises about its records before the result goes out.
    async fn execute(&self, req: TaskRequest, invoke: Invoke) -> Result<TaskOutput, TaskError> {
        let wait_covered = req.wait_covered;
        let mut audit = None;
        let result = self.attempt(req, invoke, &mut audit).await;
        let Some(receipt) = audit.as_ref().and_then(|a| a.receipt()).cloned() else {
            return result;
        };
        let safe = if wait_covered {
            receipt.covered().await
        } else {
            receipt.settled().await
        };
        match (result, safe) {
            (Ok(mut out), Ok(())) => {
                out.receipt = receipt;
                Ok(out)
            }
            (Ok(out), Err(e)) => Err(TaskError::Host {
                task: out.task,
                message: format!("the task ended, but its records were not made safe: {e:#}"),
            }),
            (Err(e), _) => Err(e),
        }
    }

    async fn attempt(
        &self,
        req: TaskRequest,
        invoke: Invoke,
        recorded: &mut Option<Audit>,
    ) -> Result<TaskOutput, TaskError> {
        let call = self.call_of(&req)?;
        let task = req.task_id.clone().unwrap_or_else(new_task_id);
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
        // A grant's capabilities, checked within the manifest's, are what the task holds;
        // one that widens anything ends the task once its start is recorded.
        let granted = req.grant.as_ref().and_then(|g| g.caps.as_ref());
        let widened = granted.and_then(|caps| self.ceiling.covers(caps).err());
        let caps = match granted {
            Some(caps) if widened.is_none() => caps,
            _ => &self.ceiling,
        };
        let manifest = &*self.manifest;
        let p = Prepared {
            engine: &self.engine,
            manifest,
            caps,
            digest: &self.digest,
            fuel_metered: self.settings.fuel,
            approver: &self.settings.approver,
            approval_timeout: self.settings.approval_timeout,
            policy: self.settings.policy.as_ref(),
            clock: self.settings.clock.as_ref(),
        };
        let audit = task::audit(&p, &req, &task);
        *recorded = Some(audit.clone());
        let function = match invoke {
            Invoke::Describe => Some("describe"),
            Invoke::Run => call.as_ref().map(|c| c.info.full_name.as_str()),
        };
        task::start(&audit, &p, self.kind, &req, function).map_err(|e| TaskError::Host {
            task: task.clone(),
            message: format!("{e:#}"),
        })?;
        let started = Instant::now();
        if let Some(widening) = widened {
            let error = TaskError::Widened {
                task: task.clone(),
                message: widening.to_string(),
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
        let fs_state = match task::directories(manifest, caps) {
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
        // Without a grant the manifest's specs are the task's: nothing to copy per task.
        let specs = match granted {
            Some(_) => Cow::Owned(caps.secret_specs(&manifest.declared.secrets.specs)),
            None => Cow::Borrowed(&manifest.declared.secrets.specs[..]),
        };
        let secrets = match TaskSecrets::fetch(&specs, &audit).await {
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
            match task::store(&p, &req, audit.clone(), grant, secrets, fs_state) {
                Ok(built) => built,
                Err(message) => {
                    let error = TaskError::Host {
                        task: task.clone(),
                        message,
                    };
                    return Err(task::abandon(&audit, started, "trap".into(), error));
                }
            };
        // Epoch interruption stops guest code; this stops a task whose guest
        // is parked in a host call that never returns.
        let backstop = caps.limits().timeout + Duration::from_secs(1);
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
