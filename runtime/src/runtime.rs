//! [`Runtime`]: one engine, its task slots and the deciders every tool it loads shares.

use crate::tool::Entry;
use crate::tool::Provenance;
use crate::*;
use manifest::{ComponentSource, Digest, Manifest, ManifestError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use task::TaskData;
use tokio::sync::Semaphore;
use warden_host_api::approval::{self, Approver, Deny};
use warden_host_api::audit::EventSink;
use warden_host_api::grant::live::Revocations;
use warden_host_api::policy::{Clock, Policy};
use warden_host_api::wit::ToolPre;
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};
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
    /// The component is to come from a registry, and the store has no intact copy of it.
    #[error("{error}")]
    Oci {
        /// The reference as the manifest wrote it.
        reference: String,
        /// Why it is not there.
        error: oci::OciError,
    },
    /// `signed-by` names keys, and none of them signed the component; or the runtime
    /// requires signatures and the manifest names no keys.
    #[error("{component}: {message}")]
    Signature {
        /// The component's file or reference.
        component: String,
        /// What was expected and what was found.
        message: String,
    },
    /// The component or its grants reach beyond the tool's approved baseline, or it has none.
    #[error("{component}: {message}")]
    Drift {
        /// The component's file or reference.
        component: String,
        /// How.
        message: String,
    },
    /// The load's `tool.load` record could not be written: a load that cannot be recorded
    /// does not happen.
    #[error("{component}: the load could not be recorded, so it is refused: {error}")]
    Unrecorded {
        /// The component's file or reference.
        component: String,
        /// Why the record could not be written.
        error: String,
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
    /// Where components from registries are found once pulled.
    store: Option<oci::Store>,
    /// Refuse every component that no `signed-by` key signed.
    require_signed: bool,
    /// Where each load's `tool.load` record goes.
    load_audit: Option<Arc<dyn EventSink>>,
    /// The approved baselines every tool must stay within.
    baselines: Option<baseline::Baselines>,
    settings: Settings,
}

/// What a runtime decides for every task, whichever tool runs it: each loaded tool
/// takes a copy (cheap: `Arc`s), so a setting changed later applies to tools loaded later.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) fuel: bool,
    pub(crate) revocations: Arc<Revocations>,
    pub(crate) approver: Arc<dyn Approver>,
    pub(crate) approval_timeout: Duration,
    pub(crate) policy: Option<Policy>,
    pub(crate) clock: Option<Clock>,
    /// One permit per task slot of the engine's pool, shared by every tool.
    pub(crate) slots: Arc<Semaphore>,
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
            store: None,
            require_signed: false,
            load_audit: None,
            baselines: None,
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
    /// use warden_host_api::approval::{ApprovalRequest, CallbackApprover, Answer};
    ///
    /// let approver = CallbackApprover::new("ui", |req: ApprovalRequest| async move {
    ///     // Ask someone; here, allow nothing outside /workspace/out.
    ///     if req.resource.starts_with("/workspace/out/") {
    ///         Answer::approve("ui", "output directory")
    ///     } else {
    ///         Answer::refuse("ui", "only /workspace/out may change")
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

    /// Loads components from registries out of `store` (default: [`oci::Store::default_dir`]).
    pub fn with_store(mut self, store: oci::Store) -> Self {
        self.store = Some(store);
        self
    }

    /// Refuses every tool whose component is not signed by a key its manifest's
    /// `signed-by` names, and every tool whose manifest names none: a host where nothing
    /// unsigned runs.
    pub fn with_require_signed(mut self, require: bool) -> Self {
        self.require_signed = require;
        self
    }

    /// Writes a `tool.load` record to `sink` for every load, allowed or refused: what was
    /// loaded from where, its digests, the signature checked and by which key, the pins.
    /// A load whose record cannot be written fails.
    pub fn with_load_audit(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.load_audit = Some(sink);
        self
    }

    /// Refuses every tool without an approved baseline in `baselines`, and every version
    /// whose imports or grants reach beyond it ([`baseline`]), until it is approved.
    pub fn with_baselines(mut self, baselines: baseline::Baselines) -> Self {
        self.baselines = Some(baselines);
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
        let bytes = read(path)?;
        let component = self.compile_bytes(path, &bytes, &Digest::of(&bytes))?;
        Ok((component, bytes))
    }

    /// Compiles the component `bytes`, named `label` in errors and notices, as
    /// [`compile`](Self::compile) does a file.
    pub fn compile_from(
        &self,
        label: &std::path::Path,
        bytes: &[u8],
    ) -> Result<Component, LoadError> {
        self.compile_bytes(label, bytes, &Digest::of(bytes))
    }

    /// Compiles `bytes`, read from `path`, whose digest is `digest`.
    fn compile_bytes(
        &self,
        path: &std::path::Path,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<Component, LoadError> {
        // Watched only when compiling: a cache hit starts no thread.
        let watch = || {
            self.compile_notices
                .clone()
                .map(|notify| engine::slow::Watch::start(notify, path, bytes.len() as u64))
        };
        let component = match &self.cache {
            Some(cache) => cache.component_compiling(&self.engine, bytes, digest.hash(), watch),
            None => {
                let _watch = watch();
                Component::new(&self.engine, bytes)
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
        Ok(component)
    }

    /// Loads the tool of `manifest`: reads and pins its component, checks its signature,
    /// detects its kind and links it against Warden's interposers. With
    /// [`with_load_audit`](Self::with_load_audit), the load is recorded, refused or not.
    pub fn load(&self, manifest: Manifest) -> Result<Tool, LoadError> {
        let mut provenance = Provenance::new(&manifest, self.require_signed);
        let result = self.load_recorded(manifest, &mut provenance);
        if let Some(sink) = &self.load_audit {
            let refused = result.as_ref().err().map(|e| e.to_string());
            provenance
                .record(sink.as_ref(), refused.as_deref())
                .map_err(|e| LoadError::Unrecorded {
                    component: provenance.source.clone(),
                    error: format!("{e:#}"),
                })?;
        }
        let mut tool = result?;
        tool.provenance = provenance;
        Ok(tool)
    }

    fn load_recorded(
        &self,
        manifest: Manifest,
        provenance: &mut Provenance,
    ) -> Result<Tool, LoadError> {
        if manifest.declared.limits.fuel.is_some() && !self.settings.fuel {
            return Err(LoadError::FuelNotMetered {
                path: manifest.path.clone(),
            });
        }
        let (path, bytes, signatures) = self.fetch(&manifest, provenance)?;
        // Hashed once: for the pin, the cache entry and the records. A component that is not
        // the pinned one, or not signed as the manifest or the host demands, is refused
        // before anything compiles or loads it.
        let digest = Digest::of(&bytes);
        provenance.digest = Some(digest);
        manifest.verify_digest_is(digest)?;
        let keys = &manifest.tool.signed_by;
        if keys.is_empty() {
            if self.require_signed {
                return Err(LoadError::Signature {
                    component: provenance.source.clone(),
                    message: "this host requires signed tools (--require-signed), and the \
                              manifest names no signed-by keys to check a signature against"
                        .into(),
                });
            }
        } else {
            let verified = trust::verify(keys, &bytes, &signatures).map_err(|message| {
                LoadError::Signature {
                    component: provenance.source.clone(),
                    message,
                }
            })?;
            provenance.signature = Some(verified);
        }
        let component = self.compile_bytes(&path, &bytes, &digest)?;
        drop(bytes);
        let digest = digest.to_string();
        if let Some(baselines) = &self.baselines {
            self.check_baseline(baselines, &manifest, &component, &digest, provenance)?;
        }
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
            provenance: Provenance::default(),
            engine: self.engine.clone(),
            ceiling: manifest.ceiling(),
            manifest: Arc::new(manifest),
            kind,
            digest,
            entry,
            functions,
            settings: self.settings.clone(),
        })
    }
}

impl Runtime {
    /// The component's bytes and the signatures beside it, from its file or the store.
    fn fetch(
        &self,
        manifest: &Manifest,
        provenance: &mut Provenance,
    ) -> Result<(PathBuf, Vec<u8>, trust::Signatures), LoadError> {
        // Signatures are looked for only where a key could check them.
        let signed = !manifest.tool.signed_by.is_empty();
        let mut signatures = trust::Signatures::default();
        match &manifest.tool.component {
            ComponentSource::File(path) => {
                let bytes = read(path)?;
                if signed {
                    let mut sig = path.clone().into_os_string();
                    sig.push(".minisig");
                    let sig = PathBuf::from(sig);
                    signatures.looked_in.push(sig.display().to_string());
                    signatures.minisig = read_signature(&sig)?;
                }
                Ok((path.clone(), bytes, signatures))
            }
            ComponentSource::Oci(reference) => {
                let oci = |error| LoadError::Oci {
                    reference: reference.to_string(),
                    error,
                };
                let store = match &self.store {
                    Some(s) => s.clone(),
                    None => oci::Store::open_default().map_err(oci)?,
                };
                let stored = store.component(reference).map_err(oci)?;
                let pinned = stored.reference.clone();
                let manifest_digest = pinned.digest().expect("stored components are pinned");
                provenance.oci = Some((manifest_digest, stored.layer.digest));
                if signed {
                    signatures = stored_signatures(&store, &pinned).map_err(oci)?;
                }
                Ok((PathBuf::from(pinned.to_string()), stored.bytes, signatures))
            }
        }
    }
}

/// The signatures the store holds beside the component `pinned`: what `warden pull`
/// brought from the tags `sha256-<hex>.minisig` and `.sig`.
fn stored_signatures(
    store: &oci::Store,
    pinned: &oci::Reference,
) -> Result<trust::Signatures, oci::OciError> {
    let digest = pinned.digest().expect("stored components are pinned");
    let mut signatures = trust::Signatures {
        manifest: Some(digest),
        ..Default::default()
    };
    for suffix in oci::SIGNATURE_SUFFIXES {
        (signatures.looked_in).push(format!("{}:{}", pinned.repository(), digest.tag(suffix)));
    }
    if let Some((_, layers)) = store.attached(pinned, "minisig")? {
        signatures.minisig = (layers.into_iter().next())
            .map(|(_, bytes)| String::from_utf8_lossy(&bytes).into_owned());
    }
    if let Some((_, layers)) = store.attached(pinned, "sig")? {
        signatures.cosign = layers
            .into_iter()
            .map(|(d, payload)| {
                let annotation = d.annotations.get(trust::cosign::SIGNATURE_ANNOTATION);
                (payload, annotation.cloned().unwrap_or_default())
            })
            .collect();
    }
    Ok(signatures)
}

impl Runtime {
    /// Refuses `component` unless its tool's approved baseline covers it.
    fn check_baseline(
        &self,
        baselines: &baseline::Baselines,
        manifest: &Manifest,
        component: &Component,
        digest: &str,
        provenance: &mut Provenance,
    ) -> Result<(), LoadError> {
        let name = &manifest.tool.name;
        let refuse = |message: String| LoadError::Drift {
            component: provenance.source.clone(),
            message,
        };
        let approve = format!(
            "review it with `warden diff`, then approve it with `warden baseline approve {}`",
            manifest.path.display()
        );
        let approved = baselines
            .get(name)
            .map_err(|e| refuse(e.to_string()))?
            .ok_or_else(|| {
                refuse(format!(
                    "{name} has no approved baseline in {}: {approve}",
                    baselines.dir().display()
                ))
            })?;
        let imports = component::imports(&self.engine, component);
        let drift =
            baseline::compare(&approved, digest, &imports, &manifest.ceiling()).map_err(refuse)?;
        provenance.baseline = Some((approved.component.clone(), drift.as_str()));
        if let baseline::Drift::Widened(how) = drift {
            return Err(refuse(format!(
                "{name} drifted from the version approved by {} at {} ({}): it {}; {approve}",
                approved.approved_by,
                approved.approved_at,
                approved.component,
                how.join("; and ")
            )));
        }
        Ok(())
    }
}

/// A minisign signature beside a component, if there is one.
fn read_signature(path: &std::path::Path) -> Result<Option<String>, LoadError> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() > 64 << 10 => Err(LoadError::Signature {
            component: path.display().to_string(),
            message: "larger than any minisign signature".into(),
        }),
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(LoadError::Read {
            path: path.to_owned(),
            error,
        }),
    }
}

/// The bytes of the component file at `path`.
fn read(path: &std::path::Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|error| LoadError::Read {
        path: path.to_path_buf(),
        error,
    })
}
