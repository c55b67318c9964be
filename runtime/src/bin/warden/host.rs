//! How every subcommand sets up what it runs on: the engine and its task slot, the
//! compiled-component cache, Warden's keys, the audit log, and what no grant may expose.

use crate::{Failure, usage};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use warden::audit::checkpoint::HostKey;
use warden::audit::log::{AuditLog, LogOptions};
use warden::engine::TaskSlot;
use warden::engine::slow::CompileNotice;
use warden::manifest::{ComponentSource, Manifest, Protected};
use warden::{EngineConfig, LoadError, Runtime};
use warden_host_api::grant::live::Revocations;

/// What each task slot holds, and so the most one component may need (warden::engine::TaskSlot).
/// The defaults fit components from Rust, componentize-py and componentize-js.
#[derive(clap::Args)]
pub(crate) struct EngineArgs {
    /// Core module instances one component may hold, nested components included.
    #[arg(long = "slot-instances", value_name = "N", global = true, env = "WARDEN_SLOT_INSTANCES",
          default_value_t = TaskSlot::DEFAULT.core_instances, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    instances: u32,
    /// Linear memories one component may define; each reserves address space for 4 GiB.
    #[arg(long = "slot-memories", value_name = "N", global = true, env = "WARDEN_SLOT_MEMORIES",
          default_value_t = TaskSlot::DEFAULT.memories, value_parser = clap::value_parser!(u32).range(1..=100))]
    memories: u32,
    /// Tables one component may define.
    #[arg(long = "slot-tables", value_name = "N", global = true, env = "WARDEN_SLOT_TABLES",
          default_value_t = TaskSlot::DEFAULT.tables, value_parser = clap::value_parser!(u32).range(1..=1000))]
    tables: u32,
    /// Refuse every tool whose component is not signed by a key its manifest's
    /// [tool] signed-by names, and every tool whose manifest names none.
    #[arg(long, global = true, env = "WARDEN_REQUIRE_SIGNED")]
    require_signed: bool,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Hold every tool to its approved baseline (`warden baseline approve`): a tool
    /// without one, or whose imports or grants reach beyond it, is refused.
    #[arg(long, global = true, env = "WARDEN_GATE")]
    gate: bool,
    /// Where approved baselines are kept; default baselines/ under the state directory.
    #[arg(long, global = true, value_name = "DIR", env = "WARDEN_BASELINES")]
    baselines: Option<PathBuf>,
}

/// How registries are reached, for `warden pull` and for the components a manifest names
/// by `oci://` that are not in the store yet.
#[derive(clap::Args)]
pub(crate) struct RegistryArgs {
    /// Speak plain HTTP to the registry: refused unless it is on this machine
    /// (localhost, 127.0.0.0/8, ::1).
    #[arg(long, global = true, env = "WARDEN_PLAIN_HTTP")]
    plain_http: bool,
    /// A file holding a bearer token for the registry; otherwise Docker's
    /// config.json (its auths, or the credential helper it names) is used.
    #[arg(
        long,
        global = true,
        env = "WARDEN_REGISTRY_TOKEN_FILE",
        value_name = "FILE"
    )]
    registry_token_file: Option<PathBuf>,
    /// Docker's config.json to take registry credentials from; default
    /// $DOCKER_CONFIG/config.json, then ~/.docker/config.json.
    #[arg(long, global = true, env = "WARDEN_DOCKER_CONFIG", value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// PEM certificates to trust for the registry instead of the web's roots.
    #[arg(long, global = true, env = "WARDEN_REGISTRY_CA", value_name = "FILE")]
    registry_ca: Option<PathBuf>,
}

impl RegistryArgs {
    pub(crate) fn options(&self) -> warden::oci::RegistryOptions {
        warden::oci::RegistryOptions {
            plain_http: self.plain_http,
            auth: warden::oci::Auth {
                token_file: self.registry_token_file.clone(),
                docker_config: self.docker_config.clone(),
            },
            ca_file: self.registry_ca.clone(),
        }
    }
}

/// The local store of pulled components.
pub(crate) fn store() -> Result<warden::oci::Store, Failure> {
    warden::oci::Store::open_default().map_err(usage)
}

impl EngineArgs {
    /// The manifest at `path`, refused if it exposes what `protected` names, with its
    /// component pulled into the store if it comes from a registry and is not there yet.
    pub(crate) fn manifest(&self, path: &Path, protected: &Protected) -> Result<Manifest, Failure> {
        let m = Manifest::load(path).map_err(usage)?;
        m.check_exposure(protected).map_err(usage)?;
        self.ensure_pulled(&m)?;
        Ok(m)
    }

    /// Where approved baselines are kept: --baselines DIR, $WARDEN_BASELINES, or the default.
    pub(crate) fn baselines_dir(&self) -> PathBuf {
        (self.baselines.clone()).unwrap_or_else(warden::baseline::Baselines::default_dir)
    }

    /// `runtime` held to the approved baselines, checked against `log`'s key, if --gate
    /// asks for it.
    pub(crate) fn gate(&self, runtime: Runtime, log: &AuditLog) -> Runtime {
        if !self.gate {
            return runtime;
        }
        runtime.with_baselines(warden::baseline::Baselines::new(
            &self.baselines_dir(),
            log.verifier().clone(),
        ))
    }

    /// A runtime that checks what a manifest asks (pins, signatures), for commands that
    /// look at a tool rather than serve it.
    pub(crate) fn plain_runtime(&self) -> Result<Runtime, Failure> {
        self.runtime(false, 2)
    }

    /// Pulls the component of `m` if it comes from a registry and the store lacks it:
    /// the first run of a tool fetches it, every later one runs offline.
    pub(crate) fn ensure_pulled(&self, m: &Manifest) -> Result<(), Failure> {
        let ComponentSource::Oci(reference) = &m.tool.component else {
            return Ok(());
        };
        let store = store()?;
        match store.component(reference) {
            Err(warden::oci::OciError::NotPulled { .. }) => {}
            _ => return Ok(()),
        }
        eprintln!("warden: pulling {reference}");
        let options = self.registry.options();
        let pulled = tokio_runtime()?
            .block_on(warden::oci::pull(&store, reference, &options))
            .map_err(|e| usage(format!("{}: tool.component: {e}", m.path.display())))?;
        eprintln!("warden: pulled {}", pulled.reference);
        Ok(())
    }

    /// Engine settings with these slots and the per-user compiled-component cache,
    /// authenticated by the secret in the keys directory.
    pub(crate) fn cached(&self) -> Result<EngineConfig, Failure> {
        let cache_dir = warden::engine::default_cache_dir();
        let cache_key = match cache_dir {
            Some(_) => Some(default_key_file(warden::audit::default_cache_key_path())?),
            None => None,
        };
        Ok(EngineConfig {
            cache_dir,
            cache_key,
            slot: TaskSlot {
                core_instances: self.instances,
                memories: self.memories,
                tables: self.tables,
            },
            ..EngineConfig::default()
        })
    }

    /// A runtime as the CLI runs tools: compiled components cached per machine, and the
    /// revocation list under the state directory.
    pub(crate) fn runtime(&self, fuel: bool, max_tasks: u32) -> Result<Runtime, Failure> {
        let cfg = EngineConfig {
            fuel,
            max_tasks,
            ..self.cached()?
        };
        Ok(engine(&cfg)?
            .with_revocations(Arc::new(Revocations::new(Some(
                warden::audit::default_revocation_path(),
            ))))
            .with_require_signed(self.require_signed))
    }

    /// The tool of `manifest` loaded on a runtime set up by `configure`, with no grant
    /// overlapping `protected`.
    pub(crate) fn load(
        &self,
        manifest: &Path,
        protected: &Protected,
        configure: impl FnOnce(Runtime) -> Result<Runtime, Failure>,
    ) -> Result<(Runtime, warden::Tool), Failure> {
        let m = self.manifest(manifest, protected)?;
        let rt = configure(self.runtime(m.declared.limits.fuel.is_some(), 4)?)?;
        let tool = rt.load(m).map_err(|e: LoadError| usage(e))?;
        Ok((rt, tool))
    }
}

/// A runtime on `cfg` that says so on stderr when a compile takes a while.
pub(crate) fn engine(cfg: &EngineConfig) -> Result<Runtime, Failure> {
    Ok(Runtime::new(cfg)
        .map_err(|e| usage(format!("cannot start the engine: {e:#}")))?
        .with_compile_notices(print_compile_notice))
}

fn print_compile_notice(notice: &CompileNotice) {
    match notice {
        CompileNotice::Slow {
            path,
            bytes,
            elapsed,
        } => eprintln!(
            "warden: compiling {} ({:.1} MB) to machine code, {} s so far; \
             later runs load it from the cache",
            path.display(),
            *bytes as f64 / 1e6,
            elapsed.as_secs()
        ),
        CompileNotice::Done { path, elapsed } => eprintln!(
            "warden: compiled {} in {:.1} s",
            path.display(),
            elapsed.as_secs_f64()
        ),
        _ => {}
    }
}

/// Where a task's audit records go.
#[derive(clap::Args)]
pub(crate) struct LogArgs {
    /// Audit log (JSON Lines); default under the XDG state directory.
    #[arg(long, env = "WARDEN_AUDIT")]
    audit: Option<PathBuf>,
    /// The host key that signs checkpoints; default keys/host.key under the
    /// XDG state directory, created on first use. Keep it out of the log's
    /// directory: whoever can write there could delete it.
    #[arg(long, env = "WARDEN_KEY")]
    key: Option<PathBuf>,
    /// When audit records reach the disk: always (a call proceeds only
    /// once its record is synced), batch (synced in groups) or none.
    #[arg(long, env = "WARDEN_FSYNC", default_value = "always")]
    fsync: warden::audit::log::Fsync,
    /// The longest a finished task's records wait for a signed checkpoint; tasks
    /// ending within it share one. 0 signs one at every task end.
    #[arg(long, env = "WARDEN_CHECKPOINT_DELAY", value_name = "DURATION",
          default_value = "10ms", value_parser = checkpoint_delay)]
    checkpoint_delay: std::time::Duration,
    /// Return a task's result only once a signed checkpoint covers its records,
    /// instead of once they are synced (always) or queued (batch, none).
    #[arg(long, env = "WARDEN_WAIT_COVERED")]
    pub wait_covered: bool,
    /// Close the log's segment once it holds this much (e.g. 64MiB): it is
    /// renamed LOG.seg-<FIRST SEQ>, and a new LOG begins; verify, prove and
    /// show read every segment. Default: one file.
    #[arg(long, env = "WARDEN_AUDIT_SEGMENT_SIZE", value_name = "SIZE",
          value_parser = segment_size)]
    segment_size: Option<u64>,
    /// Close the log's segment once it is this old (e.g. 1h).
    #[arg(long, env = "WARDEN_AUDIT_SEGMENT_AGE", value_name = "DURATION",
          value_parser = crate::approve::positive_duration)]
    segment_age: Option<std::time::Duration>,
    /// Compress closed segments with zstd (LOG.seg-<FIRST SEQ>.zst); they
    /// stay verifiable.
    #[arg(long, env = "WARDEN_AUDIT_COMPRESS")]
    compress: bool,
    /// Keep this many closed segments and retire (delete) older ones, each
    /// time behind an audit.retire record a checkpoint signs.
    #[arg(long, env = "WARDEN_AUDIT_RETAIN_SEGMENTS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    retain_segments: Option<u32>,
    /// Retire closed segments older than this (e.g. 30d), the same way.
    #[arg(long, env = "WARDEN_AUDIT_RETAIN_AGE", value_name = "DURATION",
          value_parser = crate::approve::positive_duration)]
    retain_age: Option<std::time::Duration>,
    /// Ship every audit record and checkpoint to this NATS server's JetStream (e.g.
    /// nats://127.0.0.1:4222, or a cluster's servers separated by commas), following
    /// the log and catching up after an outage; what was acknowledged is kept in
    /// LOG.shipped. Tasks do not wait for it unless --nats-required. The fleet's
    /// revocations are watched there too.
    #[arg(long, env = "WARDEN_NATS", value_name = "URL")]
    nats: Option<String>,
    /// A task ends only once the server acknowledged its records.
    #[arg(long, env = "WARDEN_NATS_REQUIRED", requires = "nats")]
    nats_required: bool,
    /// This host's name in the fleet (letters, digits, '-', '_'); default: the host name.
    #[arg(long, env = "WARDEN_HOST_ID", value_name = "ID")]
    host_id: Option<warden::fleet::HostId>,
    /// With --nats, the fleet's revocations (the warden-revocations bucket) are watched
    /// too; a task under a grant is refused while this process has not seen them whole
    /// for longer than this, and runs again once it has.
    #[arg(long, env = "WARDEN_REVOCATION_MAX_AGE", value_name = "DURATION",
          default_value = "10s", value_parser = crate::approve::positive_duration)]
    revocation_max_age: std::time::Duration,
}

/// `--checkpoint-delay`: zero or more, at most the one-second checkpoint interval, past
/// which it would promise nothing more.
fn checkpoint_delay(text: &str) -> Result<std::time::Duration, String> {
    let d = warden_host_api::limits::manifest::parse_duration(text).map_err(|e| e.to_string())?;
    let most = warden::audit::log::LogOptions::default().checkpoint_interval;
    if d > most {
        return Err(format!(
            "must be at most {most:?}: a checkpoint is written that often anyway"
        ));
    }
    Ok(d)
}

/// An audit log, and its shipper when `--nats` names a server.
pub(crate) struct OpenLog {
    pub log: Arc<AuditLog>,
    pub shipper: Option<warden::fleet::ship::Shipper>,
    /// Watches the fleet's revocations for the runtime's list, and how old its view may be.
    pub revocations: Option<(
        warden::fleet::revoke::RevocationWatcher,
        std::time::Duration,
    )>,
}

impl OpenLog {
    /// Ships what is written, waiting a few seconds at most, and says on stderr what is
    /// left for the next run on this log.
    pub(crate) fn finish(self) {
        drop(self.revocations);
        let Some(shipper) = self.shipper else {
            return;
        };
        let status = shipper.finish(std::time::Duration::from_secs(10));
        let written = self.log.wait_written(u64::MAX, std::time::Duration::ZERO);
        if status.acknowledged < written {
            eprintln!(
                "warden: records {} to {} are not shipped yet ({}); the next warden on {} \
                 ships them",
                status.acknowledged,
                written - 1,
                status
                    .error
                    .as_deref()
                    .unwrap_or("the server did not acknowledge them in time"),
                self.log.path().display()
            );
        }
    }
}

fn segment_size(text: &str) -> Result<u64, String> {
    match warden_host_api::limits::manifest::parse_size(text) {
        Ok(0) => Err("must be more than zero".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

impl LogArgs {
    /// The host key of `--key`, or this host's, created on first use.
    pub(crate) fn host_key(&self) -> Result<HostKey, Failure> {
        host_key(self.key.clone())
    }

    /// The NATS server of `--nats`, if any.
    pub(crate) fn nats(&self) -> Option<&str> {
        self.nats.as_deref()
    }

    /// This host's name in the fleet: `--host-id`, or the host name.
    pub(crate) fn host(&self) -> warden::fleet::HostId {
        self.host_id
            .clone()
            .unwrap_or_else(warden::fleet::HostId::of_this_host)
    }

    /// The audit log of `--audit`, `--key` and `--fsync`, opened, and shipped if `--nats`
    /// says where; with `--nats`, the fleet's revocations are watched for `revocations`.
    pub(crate) fn open(self, revocations: &Arc<Revocations>) -> Result<OpenLog, Failure> {
        let host = self.host();
        let audit_path = self.audit.unwrap_or_else(warden::audit::default_path);
        let key = host_key(self.key)?;
        let options = LogOptions {
            fsync: self.fsync,
            checkpoint_delay: self.checkpoint_delay,
            segment_bytes: self.segment_size,
            segment_age: self.segment_age,
            compress: self.compress.then_some(3),
            retain_segments: self.retain_segments.map(|n| n as usize),
            retain_age: self.retain_age,
            ..LogOptions::default()
        };
        let log = Arc::new(AuditLog::open(&audit_path, key, options).map_err(usage)?);
        let watcher = match &self.nats {
            None => None,
            Some(url) => Some((
                warden::fleet::revoke::RevocationWatcher::start(
                    revocations.clone(),
                    url.clone(),
                    self.revocation_max_age,
                )
                .map_err(|e| usage(format!("watching revocations on {url}: {e}")))?,
                self.revocation_max_age,
            )),
        };
        let shipper = match self.nats {
            None => None,
            Some(url) => Some(
                warden::fleet::ship::Shipper::start(
                    log.clone(),
                    warden::fleet::ship::ShipOptions {
                        url,
                        host,
                        required: self.nats_required,
                    },
                )
                .map_err(usage)?,
            ),
        };
        Ok(OpenLog {
            log,
            shipper,
            revocations: watcher,
        })
    }
}

/// `path`, a key file in Warden's keys directory, after making sure that directory is
/// private (mode 0700).
pub(crate) fn default_key_file(path: PathBuf) -> Result<PathBuf, Failure> {
    warden::audit::keys::private_dir(&warden::audit::keys_dir()).map_err(usage)?;
    Ok(path)
}

/// The host key of `--key`, or this host's, created on first use.
pub(crate) fn host_key(path: Option<PathBuf>) -> Result<HostKey, Failure> {
    let path = match path {
        Some(path) => path,
        None => default_key_file(warden::audit::default_key_path())?,
    };
    HostKey::load_or_create(&path, &warden::audit::key_name()).map_err(usage)
}

/// The manifests of `paths` (manifests, or directories holding them), each refused if it
/// exposes what `protected` names, their components from registries pulled if need be.
pub(crate) fn load_manifests(
    engine: &EngineArgs,
    paths: &[PathBuf],
    protected: &Protected,
) -> Result<Vec<(PathBuf, Manifest)>, Failure> {
    let mut manifests = Vec::new();
    for path in warden::mcp::manifest_paths(paths).map_err(usage)? {
        let m = engine.manifest(&path, protected)?;
        manifests.push((path, m));
    }
    Ok(manifests)
}

/// `$var` if it is set and not empty.
pub(crate) fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// What no `[[fs]]` grant may overlap in this process: Warden's defaults, the log and key
/// files named by `log` (or their defaults), and the issuer key.
pub(crate) fn protected(log: Option<&LogArgs>) -> Protected {
    let named = |flag: Option<&PathBuf>, var: &str| flag.cloned().or_else(|| env_path(var));
    let audit = named(log.and_then(|l| l.audit.as_ref()), "WARDEN_AUDIT")
        .unwrap_or_else(warden::audit::default_path);
    let key = named(log.and_then(|l| l.key.as_ref()), "WARDEN_KEY")
        .unwrap_or_else(warden::audit::default_key_path);
    let grant_key =
        named(None, "WARDEN_GRANT_KEY").unwrap_or_else(warden::audit::default_grant_key_path);
    Protected::defaults()
        .audit_log(&audit)
        .with(key, "the host key")
        .with(grant_key, "the grant issuer key")
        .with(
            warden::oci::Store::default_dir(),
            "the store of pulled components",
        )
}

/// One thread, for a command that runs one task at a time.
pub(crate) fn tokio_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio_runtime_with(1)
}

/// `threads` workers for tasks that arrive concurrently (`warden mcp --threads`). Since
/// pool slots keep their pages resident, a second thread adds tasks rather than TLB
/// shootdowns: eight MCP calls in flight are answered about a quarter sooner with two
/// workers than with one (benches/README.md).
pub(crate) fn tokio_runtime_with(threads: usize) -> Result<tokio::runtime::Runtime, Failure> {
    let mut builder = if threads > 1 {
        let mut multi = tokio::runtime::Builder::new_multi_thread();
        multi.worker_threads(threads).thread_name("warden-task");
        multi
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| usage(format!("cannot start tokio: {e}")))
}
