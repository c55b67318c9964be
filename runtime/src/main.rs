//! `warden`: run a tool under its manifest, check a manifest, inspect a
//! component, verify and read the audit log, manage grants, start a new tool.
//!
//! Exit codes: 0 success; 1 the tool failed (error result, trap, limit,
//! runtime denial that ended it); 2 usage, invalid manifest or rejected
//! component. `audit verify` and `audit check-proof`: 0 intact or valid, 1
//! not, 2 usage or unreadable.

mod grants;
mod scaffold;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use warden::audit::checkpoint::{HostKey, VerifierKey};
use warden::audit::log::{AuditLog, LogOptions};
use warden::audit::proof::{InclusionProof, ProveError};
use warden::audit::verify;
use warden::engine::TaskSlot;
use warden::engine::slow::CompileNotice;
use warden::manifest::{Manifest, Protected};
use warden::mcp::ClientApproval;
use warden::{EngineConfig, Kind, LoadError, Outcome, Runtime, TaskError, TaskRequest};
use warden_host_api::approval::{Approver, CommandApprover, Deny, TtyApprover, Unanimous};
use warden_host_api::audit::EventSink;
use warden_host_api::grant::live::Revocations;
use warden_host_api::policy::{Policy, parse_context_pair};

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Run AI-agent tools as Wasm components under a capability manifest"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    slot: SlotArgs,
}

/// What each task slot holds, and so the most one component may need (warden::engine::TaskSlot).
/// The defaults fit components from Rust, componentize-py and componentize-js.
#[derive(clap::Args)]
struct SlotArgs {
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
}

/// The task slot of this process's engines, from [`SlotArgs`]; set once in `main`.
static SLOT: std::sync::OnceLock<TaskSlot> = std::sync::OnceLock::new();

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the tool of MANIFEST once, as one task.
    Run {
        /// The tool's manifest (TOML).
        manifest: PathBuf,
        /// JSON input for a tool's `invoke`.
        #[arg(long, conflicts_with = "input_file")]
        input: Option<String>,
        /// File holding the JSON input.
        #[arg(long)]
        input_file: Option<PathBuf>,
        /// The function to call, for a component that exports plain functions
        /// (`read-file`, `records.make-user` or the full
        /// `local:demo/records@0.1.0#make-user`); --input holds its arguments as
        /// a JSON object keyed by parameter name.
        #[arg(long, value_name = "FUNC")]
        call: Option<String>,
        #[command(flatten)]
        log: LogArgs,
        /// The agent this task runs for, as recorded in the audit log.
        #[arg(long)]
        agent: Option<String>,
        /// Run under this grant token (from `warden grant issue` or
        /// `attenuate`): the task holds only what it grants, until it
        /// expires or is revoked.
        #[arg(long, env = "WARDEN_GRANT")]
        grant: Option<String>,
        /// The issuer public key (ed25519/<hex>) that must have signed the
        /// grant token; default: this host's issuer key.
        #[arg(long, requires = "grant")]
        issuer: Option<String>,
        #[command(flatten)]
        approval: ApproveArgs,
        /// A fact about this task for policies to weigh, as KEY=VALUE; VALUE is
        /// read as JSON if it parses (risk=0.4 is a number, urgent=true a
        /// boolean), else as a string. Repeat for more.
        #[arg(long, value_name = "KEY=VALUE", value_parser = context_pair)]
        context: Vec<(String, serde_json::Value)>,
        /// A Rego policy asked about every capability-relevant call, besides
        /// the manifest's [policy]: both must allow a call.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Arguments for a command component.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Validate MANIFEST and print the effective grants.
    Check {
        /// The manifest to check.
        manifest: PathBuf,
    },
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Grant tools: the issuer key of grant tokens, revocation.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Print a component's kind, exports and imports, and which imports no
    /// grant of its manifest would allow.
    Inspect {
        /// The component (.wasm).
        component: PathBuf,
        /// The manifest to compare against; default: manifest.toml beside
        /// the component, if there is one.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// Compile components into this machine's cache ahead of their first task, which then
    /// starts at once: worth it for large ones (a Python or JavaScript tool takes seconds).
    Compile {
        /// Manifests (their tool's component) or component files (.wasm).
        #[arg(required = true, value_name = "MANIFEST|COMPONENT")]
        paths: Vec<PathBuf>,
    },
    /// Create a tool NAME that builds into a wasm32-wasip2 component and runs
    /// with `warden run` as it is: source, WIT, manifest with a sample grant,
    /// README.
    New {
        /// The tool's name, also its crate's or package's: lowercase letters
        /// (a-z), digits, '-' and '_', starting with a letter.
        name: String,
        /// The tool's language: rust (cargo), python (componentize-py) or js
        /// (componentize-js).
        #[arg(long, value_name = "LANG", default_value = "rust", value_parser = ["rust", "python", "js"])]
        lang: String,
        /// Where to create it; default ./NAME. It must not exist, or be an
        /// empty directory.
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
    },
    /// Serve tools over the Model Context Protocol: on stdio, or with --http
    /// over Streamable HTTP on a loopback address behind a bearer token. Each
    /// tools/call runs as one task under its manifest.
    Mcp {
        /// Manifests, or directories holding them (*.toml and */manifest.toml).
        #[arg(required = true, value_name = "MANIFEST|DIR")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        log: LogArgs,
        #[command(flatten)]
        http: McpHttpArgs,
        /// Who answers gated calls. The MCP client is asked (through
        /// elicitation) only with --approve mcp: alone, or after --approve-cmd
        /// or --approve tty agreed.
        #[command(flatten)]
        approval: ApproveArgs,
        /// A Rego policy asked about every capability-relevant call of every
        /// tool, besides each manifest's [policy].
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
}

/// `warden mcp --http` and its limits.
#[derive(clap::Args)]
struct McpHttpArgs {
    /// Serve Streamable HTTP at this loopback address and port (e.g.
    /// 127.0.0.1:8931; port 0 picks one), at the path /mcp, instead of stdio.
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// File holding the bearer token HTTP clients must send (at least 32
    /// characters), readable by its owner only; default: a new random token,
    /// printed on stderr.
    #[arg(
        long,
        env = "WARDEN_MCP_TOKEN_FILE",
        value_name = "FILE",
        requires = "http"
    )]
    token_file: Option<PathBuf>,
    /// A browser origin allowed to call, besides the server's own loopback
    /// origin (e.g. https://app.example.com); requests from any other Origin
    /// are refused.
    #[arg(long, value_name = "ORIGIN", requires = "http")]
    allow_origin: Vec<String>,
    /// Connections open at once; more are answered 503 and closed.
    #[arg(long, value_name = "N", default_value_t = 64, requires = "http",
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// How long a client may take to send a request's headers.
    #[arg(long, value_name = "DURATION", default_value = "10s", requires = "http",
          value_parser = positive_duration)]
    header_timeout: Duration,
}

/// Where a task's audit records go.
#[derive(clap::Args)]
struct LogArgs {
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
}

/// Who answers approval gates, and how long they may take.
#[derive(clap::Args)]
struct ApproveArgs {
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

fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = warden_host_api::limits::manifest::parse_duration(text).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// What decides a task's calls beyond its grant: `--approve*`, `--policy`, `--context`.
struct Deciders {
    approver: Arc<dyn Approver>,
    approval_timeout: Duration,
    policy: Option<PathBuf>,
    context: Vec<(String, serde_json::Value)>,
}

impl Deciders {
    /// `rt` with this approver, its timeout and the `--policy` (compiled here: a broken
    /// one is a usage error naming its file and line).
    fn apply(&self, rt: Runtime) -> Result<Runtime, Failure> {
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
    fn new(
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
    fn for_mcp(
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

fn context_pair(text: &str) -> Result<(String, serde_json::Value), String> {
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

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the verifier key of this host's checkpoints, creating the host
    /// key (mode 0600) on first use.
    Key {
        /// The host key file; default under the XDG state directory.
        #[arg(long, env = "WARDEN_KEY")]
        key: Option<PathBuf>,
    },
    /// Take on the records of LOG that no checkpoint covers, which a writer
    /// refuses to append after: a `recovery` record names them and their
    /// digest, and a checkpoint signs it. Every later `audit verify` reports
    /// them as adopted without checkpoint cover. Check them first.
    Adopt {
        /// The audit log (JSON Lines).
        log: PathBuf,
        /// The host key that signs the log's checkpoints; default: this
        /// host's key.
        #[arg(long, env = "WARDEN_KEY")]
        key: Option<PathBuf>,
    },
    /// Verify LOG and its checkpoints (LOG.checkpoints): exit 0 intact, 1 not
    /// intact (the first bad seq and what is wrong), 2 usage or unreadable.
    Verify {
        /// The audit log (JSON Lines).
        log: PathBuf,
        /// The verifier key (name+id+key), or a file holding it; default:
        /// this host's key ($WARDEN_KEY or the XDG state directory).
        #[arg(long, value_name = "VKEY")]
        key: Option<String>,
        /// A signed checkpoint kept apart from the log (e.g. the
        /// `checkpoint` of an earlier `audit prove`): the log must still
        /// hold what it signed. Catches trailing records removed together
        /// with the checkpoints that covered them.
        #[arg(long, value_name = "NOTE")]
        checkpoint: Option<PathBuf>,
    },
    /// Print an inclusion proof (JSON) of record SEQ against the last
    /// checkpoint of LOG, after verifying LOG.
    Prove {
        /// The audit log (JSON Lines).
        log: PathBuf,
        /// The record to prove.
        seq: u64,
        /// The verifier key (name+id+key), or a file holding it; default:
        /// this host's key.
        #[arg(long, value_name = "VKEY")]
        key: Option<String>,
    },
    /// Check a proof printed by `warden audit prove`, offline: exit 0 valid,
    /// 1 invalid, 2 usage or unreadable.
    CheckProof {
        /// The proof file (JSON).
        proof: PathBuf,
        /// The verifier key (name+id+key), or a file holding it.
        #[arg(long, value_name = "VKEY")]
        key: String,
        /// A file holding the record's line: also check that the proof is
        /// of these bytes.
        #[arg(long, value_name = "LINE-FILE")]
        record: Option<PathBuf>,
    },
    /// Print the records of LOG for people, one line each: seq, time, task,
    /// event, call, resource, decision, rule, outcome. Does not verify.
    Show {
        /// The audit log (JSON Lines).
        log: PathBuf,
        /// Only records of this task (its id, or the start of it).
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// Only denied calls.
        #[arg(long)]
        deny: bool,
        /// Print the matching records' lines as they are.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum GrantCommand {
    /// Print the public key (ed25519/<hex>) that verifies this host's grant
    /// tokens offline, creating the issuer key (mode 0600) on first use.
    Key {
        /// The issuer key file; default under the XDG state directory.
        #[arg(long, env = "WARDEN_GRANT_KEY")]
        grant_key: Option<PathBuf>,
    },
    /// Revoke grant ID and every grant derived from it, in the revocation
    /// list under the XDG state directory: tasks under it are refused when
    /// they start, and running ones stop when their process reads the list.
    Revoke {
        /// The grant's id.
        id: String,
    },
    /// Issue a grant token for the tool of MANIFEST: its ceiling, narrowed
    /// by each --narrow, for --ttl. Prints the token.
    Issue {
        /// The tool's manifest.
        manifest: PathBuf,
        /// How long the grant holds (e.g. 30s, 5m, 1h).
        #[arg(long, default_value = "5m")]
        ttl: String,
        /// A narrowing, repeatable: fs=/workspace/src:read,
        /// http=https://api.github.com/repos/x/ GET, tcp=HOST:PORT,
        /// secrets=NAME, env=NAME, memory=32MiB, timeout=2s, fuel=N, output=64KiB.
        #[arg(long)]
        narrow: Vec<String>,
        /// The agent the grant is issued to.
        #[arg(long)]
        agent: Option<String>,
        /// The issuer key file; default under the XDG state directory.
        #[arg(long, env = "WARDEN_GRANT_KEY")]
        grant_key: Option<PathBuf>,
    },
    /// Derive a narrower child of TOKEN, without the issuer key. Prints the
    /// child token; a narrowing that would widen anything is refused.
    Attenuate {
        /// The parent grant token.
        token: String,
        /// How long the child holds; never past its parent.
        #[arg(long)]
        ttl: Option<String>,
        /// A narrowing, repeatable (as for `issue`).
        #[arg(long)]
        narrow: Vec<String>,
        /// The agent the child is issued to.
        #[arg(long)]
        agent: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = SLOT.set(TaskSlot {
        core_instances: cli.slot.instances,
        memories: cli.slot.memories,
        tables: cli.slot.tables,
    });
    // Keys an older Warden kept beside the default log move to keys/, and that log to audit/.
    match warden::audit::keys::migrate_legacy_layout() {
        Ok(moved) => moved.iter().for_each(|m| eprintln!("warden: {m}")),
        Err(e) => eprintln!("warden: could not move an older layout into place: {e}"),
    }
    let result = match cli.command {
        Command::Run {
            manifest,
            input,
            input_file,
            call,
            log,
            agent,
            grant,
            issuer,
            approval,
            context,
            policy,
            args,
        } => Deciders::new(approval, policy, context).and_then(|deciders| {
            run(
                &manifest,
                (input, input_file, call),
                agent,
                log,
                (grant, issuer),
                deciders,
                args,
            )
        }),
        Command::Check { manifest } => check(&manifest),
        Command::Audit(AuditCommand::Key { key }) => audit_key(key),
        Command::Audit(AuditCommand::Adopt { log, key }) => audit_adopt(&log, key),
        Command::Audit(AuditCommand::Verify {
            log,
            key,
            checkpoint,
        }) => audit_verify(&log, key, checkpoint),
        Command::Audit(AuditCommand::Prove { log, seq, key }) => audit_prove(&log, seq, key),
        Command::Audit(AuditCommand::CheckProof { proof, key, record }) => {
            audit_check_proof(&proof, &key, record)
        }
        Command::Audit(AuditCommand::Show {
            log,
            task,
            deny,
            json,
        }) => audit_show(&log, task, deny, json),
        Command::Inspect {
            component,
            manifest,
        } => inspect(&component, manifest),
        Command::Grant(GrantCommand::Key { grant_key }) => grant_key_print(grant_key),
        Command::Grant(GrantCommand::Revoke { id }) => grant_revoke(&id),
        Command::Grant(GrantCommand::Issue {
            manifest,
            ttl,
            narrow,
            agent,
            grant_key,
        }) => grant_issue(&manifest, &ttl, &narrow, agent, grant_key),
        Command::Grant(GrantCommand::Attenuate {
            token,
            ttl,
            narrow,
            agent,
        }) => grant_attenuate(&token, ttl.as_deref(), &narrow, agent),
        Command::Compile { paths } => compile(&paths),
        Command::New { name, lang, path } => new_tool(&name, &lang, path),
        Command::Mcp {
            paths,
            log,
            http,
            approval,
            policy,
        } => Deciders::for_mcp(approval, policy)
            .and_then(|(deciders, client)| mcp(&paths, log, http, deciders, client)),
    };
    match result {
        Ok(code) => code,
        Err(Failure::Usage(msg)) => {
            eprintln!("warden: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Tool(msg)) => {
            eprintln!("warden: {msg}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    /// Exit 2: usage, manifest or component.
    Usage(String),
    /// Exit 1: the tool failed.
    Tool(String),
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure::Usage(e.to_string())
}

/// A runtime as the CLI runs tools: compiled components cached per machine, and the
/// revocation list under the state directory.
fn runtime(fuel: bool, max_tasks: u32) -> Result<Runtime, Failure> {
    let cfg = EngineConfig {
        fuel,
        max_tasks,
        ..cached_engine()?
    };
    Ok(
        engine(&cfg)?.with_revocations(Arc::new(Revocations::new(Some(
            warden::audit::default_revocation_path(),
        )))),
    )
}

/// A runtime on `cfg` that says so on stderr when a compile takes a while.
fn engine(cfg: &EngineConfig) -> Result<Runtime, Failure> {
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

/// Engine settings with the per-user compiled-component cache, authenticated by the secret in
/// the keys directory.
fn cached_engine() -> Result<EngineConfig, Failure> {
    let cache_dir = warden::engine::default_cache_dir();
    let cache_key = match cache_dir {
        Some(_) => Some(default_key_file(warden::audit::default_cache_key_path())?),
        None => None,
    };
    Ok(EngineConfig {
        cache_dir,
        cache_key,
        slot: SLOT.get().copied().unwrap_or_default(),
        ..EngineConfig::default()
    })
}

/// `path`, a key file in Warden's keys directory, after making sure that directory is
/// private (mode 0700).
fn default_key_file(path: PathBuf) -> Result<PathBuf, Failure> {
    warden::audit::keys::private_dir(&warden::audit::keys_dir()).map_err(usage)?;
    Ok(path)
}

/// The host key of `--key`, or this host's, created on first use.
fn host_key(path: Option<PathBuf>) -> Result<HostKey, Failure> {
    let path = match path {
        Some(path) => path,
        None => default_key_file(warden::audit::default_key_path())?,
    };
    HostKey::load_or_create(&path, &warden::audit::key_name()).map_err(usage)
}

/// What no `[[fs]]` grant may overlap in this process: Warden's defaults, the log and key
/// files named by `log` (or their defaults), and the issuer key.
fn protected(log: Option<&LogArgs>) -> Protected {
    let named = |flag: Option<&PathBuf>, var: &str| {
        flag.cloned().or_else(|| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    };
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
}

/// One thread: Wasm tasks are CPU-bound and yield at every epoch tick, and two threads
/// in one process give less throughput than one (DESIGN.md).
fn tokio_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("cannot start tokio: {e}")))
}

/// The audit log of `--audit`, `--key` and `--fsync`, opened.
fn audit_sink(log: LogArgs) -> Result<AuditLog, Failure> {
    let audit_path = log.audit.unwrap_or_else(warden::audit::default_path);
    let key = host_key(log.key)?;
    let options = LogOptions {
        fsync: log.fsync,
        ..LogOptions::default()
    };
    AuditLog::open(&audit_path, key, options).map_err(usage)
}

/// 32 random bytes, hex: a bearer token nobody guesses.
fn random_token() -> Result<String, Failure> {
    warden_host_api::hex::random(32).map_err(|e| usage(format!("no randomness for a token: {e}")))
}

/// `warden mcp`: loads every manifest, then serves until the client leaves (stdio) or
/// the process is stopped (HTTP).
fn mcp(
    paths: &[PathBuf],
    audit: LogArgs,
    http: McpHttpArgs,
    deciders: Deciders,
    client_approval: ClientApproval,
) -> Result<ExitCode, Failure> {
    use warden::mcp::{Catalog, HttpOptions, WardenMcp};
    let mut manifests = Vec::new();
    let protected = protected(Some(&audit));
    for path in warden::mcp::manifest_paths(paths).map_err(usage)? {
        let m = Manifest::load(&path).map_err(usage)?;
        m.check_exposure(&protected).map_err(usage)?;
        manifests.push((path, m));
    }
    // The options, and the token to show if it was made here.
    let http = match http.http {
        Some(addr) => {
            let (token, shown) = match &http.token_file {
                Some(file) => (read_token_file(file)?, None),
                None => {
                    let token = random_token()?;
                    (token.clone(), Some(token))
                }
            };
            let mut options = HttpOptions::new(addr, token);
            options.allowed_origins = http.allow_origin;
            options.max_connections = http.max_connections as usize;
            options.header_timeout = http.header_timeout;
            Some((options, shown))
        }
        None => None,
    };
    let fuel = manifests.iter().any(|(_, m)| m.limits.fuel.is_some());
    let max_tasks = EngineConfig::default().max_tasks;
    let runtime = deciders.apply(runtime(fuel, max_tasks)?)?;
    let sink: Arc<dyn EventSink> = Arc::new(audit_sink(audit)?);
    let rt = tokio_runtime()?;
    rt.block_on(async move {
        let catalog = Catalog::load(&runtime, manifests, sink.clone())
            .await
            .map_err(usage)?;
        let server = WardenMcp::new(catalog, sink, client_approval);
        match http {
            Some((options, shown)) => {
                let printed = move |bound: std::net::SocketAddr| {
                    eprintln!("warden mcp: serving http://{bound}/mcp");
                    if let Some(token) = shown {
                        eprintln!("warden mcp: bearer token {token}");
                    }
                };
                warden::mcp::serve_http(server, options, printed)
                    .await
                    .map_err(usage)?;
                Ok(ExitCode::SUCCESS)
            }
            None => {
                warden::mcp::serve_stdio(server)
                    .await
                    .map_err(|e| Failure::Tool(format!("{e:#}")))?;
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// The bearer token in `file`, which only its owner may read: anyone who can read it can
/// run every tool the server offers.
fn read_token_file(file: &Path) -> Result<String, Failure> {
    use std::os::unix::fs::PermissionsExt;
    let shown = file.display();
    let meta = std::fs::metadata(file).map_err(|e| usage(format!("--token-file {shown}: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(usage(format!(
            "--token-file {shown}: others can read it (mode {mode:o}): chmod 600 {shown}"
        )));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| usage(format!("--token-file {shown}: {e}")))?;
    Ok(text.trim().to_owned())
}

fn load(manifest: &Path) -> Result<(Runtime, warden::Tool), Failure> {
    load_with(manifest, &protected(None), Ok)
}

/// Like [`load`], with the runtime set up by `configure` before the tool is
/// loaded, and no grant overlapping `protected`.
fn load_with(
    manifest: &Path,
    protected: &Protected,
    configure: impl FnOnce(Runtime) -> Result<Runtime, Failure>,
) -> Result<(Runtime, warden::Tool), Failure> {
    let m = Manifest::load(manifest).map_err(usage)?;
    m.check_exposure(protected).map_err(usage)?;
    let rt = configure(runtime(m.limits.fuel.is_some(), 4)?)?;
    let tool = rt.load(m).map_err(|e: LoadError| usage(e))?;
    Ok((rt, tool))
}

fn run(
    manifest: &Path,
    (input, input_file, call): (Option<String>, Option<PathBuf>, Option<String>),
    agent: Option<String>,
    log: LogArgs,
    (grant, issuer): (Option<String>, Option<String>),
    mut deciders: Deciders,
    args: Vec<String>,
) -> Result<ExitCode, Failure> {
    let context = std::mem::take(&mut deciders.context);
    let (_rt, tool) = load_with(manifest, &protected(Some(&log)), |rt| deciders.apply(rt))?;
    let grant = match grant {
        Some(token) => Some(grants::verify(&token, issuer.as_deref(), &tool)?),
        None => None,
    };
    let input = match (input, input_file) {
        (Some(i), _) => i,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map_err(|e| usage(format!("--input-file {}: {e}", f.display())))?,
        (None, None) => "{}".to_string(),
    };
    if tool.kind() == Kind::Tool || tool.kind() == Kind::Functions {
        serde_json::from_str::<serde_json::Value>(&input)
            .map_err(|e| usage(format!("--input is not valid JSON: {e}")))?;
    }
    let mut stdin = Vec::new();
    if tool.kind() == Kind::Command {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            std::io::stdin()
                .read_to_end(&mut stdin)
                .map_err(|e| usage(format!("cannot read stdin: {e}")))?;
        }
    }
    let sink = audit_sink(log)?;
    let rt = tokio_runtime()?;
    let out = rt.block_on(tool.run(TaskRequest {
        input,
        args,
        stdin,
        agent,
        sink: Arc::new(sink),
        grant,
        context: context.into_iter().collect(),
        client: serde_json::Map::new(),
        call,
        approver: None,
        mcp: None,
    }));
    let out = out.map_err(|e| match e {
        // Nothing ran: the request itself was wrong.
        TaskError::Arguments { .. } => usage(e),
        TaskError::Trap { ref stderr, .. } => {
            // An interpreter's uncaught exception is there, and is what the user needs.
            let _ = std::io::stderr().write_all(stderr);
            Failure::Tool(e.to_string())
        }
        e => Failure::Tool(e.to_string()),
    })?;
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    match out.outcome {
        Outcome::Result(json) => {
            let _ = stderr.write_all(&out.stdout);
            let _ = stderr.write_all(&out.stderr);
            let _ = writeln!(stdout, "{json}");
            Ok(ExitCode::SUCCESS)
        }
        Outcome::ToolError { kind, message } => {
            let _ = stderr.write_all(&out.stderr);
            Err(Failure::Tool(format!(
                "{} failed ({kind}): {message} [task {}]",
                tool.manifest().tool.name,
                out.task
            )))
        }
        Outcome::Exit(code) => {
            let _ = stdout.write_all(&out.stdout);
            let _ = stdout.flush();
            let _ = stderr.write_all(&out.stderr);
            if code == 0 {
                Ok(ExitCode::SUCCESS)
            } else {
                Err(Failure::Tool(format!(
                    "{} exited with status {code} [task {}]",
                    tool.manifest().tool.name,
                    out.task
                )))
            }
        }
    }
}

fn audit_key(key: Option<PathBuf>) -> Result<ExitCode, Failure> {
    println!("{}", host_key(key)?.verifier());
    Ok(ExitCode::SUCCESS)
}

/// `warden audit adopt`: the operator takes on records no checkpoint covers.
fn audit_adopt(log: &Path, key: Option<PathBuf>) -> Result<ExitCode, Failure> {
    if !log.is_file() {
        return Err(usage(format!("{}: no such log", log.display())));
    }
    let key = host_key(key)?;
    let (_log, adopted) = AuditLog::adopt(log, key, LogOptions::default()).map_err(usage)?;
    match adopted {
        Some(a) => println!(
            "adopted seq {} to {} ({} records, digest {}) without checkpoint cover: recovery \
             record seq {} says so{}, and a checkpoint signs it; `warden audit verify` will \
             report them",
            a.from_seq,
            a.to_seq,
            a.to_seq - a.from_seq + 1,
            a.digest,
            a.record,
            if a.cut_bytes > 0 {
                format!(
                    " (and that a torn last line of {} bytes was cut)",
                    a.cut_bytes
                )
            } else {
                String::new()
            }
        ),
        None => println!(
            "nothing to adopt: a checkpoint covers every record of {}",
            log.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn grant_key_print(path: Option<PathBuf>) -> Result<ExitCode, Failure> {
    let path = match path {
        Some(path) => path,
        None => default_key_file(warden::audit::default_grant_key_path())?,
    };
    let key = warden::token::IssuerKey::load_or_create(&path).map_err(usage)?;
    println!("{}", key.public());
    Ok(ExitCode::SUCCESS)
}

fn grant_issue(
    manifest: &Path,
    ttl: &str,
    narrow: &[String],
    agent: Option<String>,
    grant_key: Option<PathBuf>,
) -> Result<ExitCode, Failure> {
    let m = Manifest::load(manifest).map_err(usage)?;
    let (token, about) = grants::issue(&m, ttl, narrow, agent, grant_key)?;
    eprintln!("{about}");
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn grant_attenuate(
    token: &str,
    ttl: Option<&str>,
    narrow: &[String],
    agent: Option<String>,
) -> Result<ExitCode, Failure> {
    let (child, about) = grants::attenuate(token, ttl, narrow, agent)?;
    eprintln!("{about}");
    println!("{child}");
    Ok(ExitCode::SUCCESS)
}

fn grant_revoke(id: &str) -> Result<ExitCode, Failure> {
    // The list holds one id a line, read back trimmed.
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(usage(format!(
            "{id:?} is not a grant id: ids have no whitespace or control characters"
        )));
    }
    let path = warden::audit::default_revocation_path();
    let list = Revocations::new(Some(path.clone()));
    list.refresh().map_err(usage)?;
    if list.is_revoked(id) {
        println!("grant {id} was already revoked in {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    list.revoke(id).map_err(usage)?;
    println!(
        "revoked grant {id} and every grant derived from it, in {}: tasks under it are refused \
         at start, and running ones stop when their process next reads the list",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The verifier key of `--key`: a key string, or a file holding one (or a
/// host key, whose public half is used); without it, this host's key,
/// which is never created just to verify.
fn verifier_key(key: Option<&str>) -> Result<VerifierKey, Failure> {
    let Some(text) = key else {
        let path = std::env::var_os("WARDEN_KEY")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(warden::audit::default_key_path);
        if !path.exists() {
            return Err(usage(format!(
                "no --key given and no host key at {}",
                path.display()
            )));
        }
        let host = HostKey::load_or_create(&path, &warden::audit::key_name()).map_err(usage)?;
        return Ok(host.verifier().clone());
    };
    let parsed = VerifierKey::parse(text);
    if let Ok(key) = parsed {
        return Ok(key);
    }
    let path = Path::new(text);
    if path.is_file() {
        let contents = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--key {}: {e}", path.display())))?;
        if contents.trim_start().starts_with("PRIVATE+KEY+") {
            return HostKey::parse(&contents)
                .map(|k| k.verifier().clone())
                .map_err(|e| usage(format!("--key {}: {e}", path.display())));
        }
        return VerifierKey::parse(&contents)
            .map_err(|e| usage(format!("--key {}: {e}", path.display())));
    }
    Err(usage(format!(
        "--key {text:?} is neither a verifier key nor a file holding one: {}",
        parsed.unwrap_err()
    )))
}

fn audit_verify(
    log: &Path,
    key: Option<String>,
    kept: Option<PathBuf>,
) -> Result<ExitCode, Failure> {
    let key = verifier_key(key.as_deref())?;
    let kept = match kept {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            let cp = warden::audit::checkpoint::Checkpoint::verify(&text, &key)
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            Some(cp)
        }
        None => None,
    };
    let report = match verify::verify(log, &key) {
        Ok(report) => report,
        Err(e) if e.is_damage() => {
            println!("not intact: {e}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(usage(e)),
    };
    if let Some(cp) = &kept {
        if cp.size > report.records {
            println!(
                "not intact: seq {}: truncated: the kept checkpoint covers {} records, the log has {}",
                report.records, cp.size, report.records
            );
            return Ok(ExitCode::from(1));
        }
        let root = report.tree().root_at(cp.size).map_err(usage)?;
        if root[..] != cp.root[..] {
            println!(
                "not intact: the first {} records differ from what the kept checkpoint signed",
                cp.size
            );
            return Ok(ExitCode::from(1));
        }
    }
    println!(
        "intact: {} records, {} checkpoints, {} covered by the last checkpoint, {} after it \
         chained but not yet signed",
        report.records, report.checkpoints, report.covered, report.uncovered
    );
    for a in &report.adopted {
        println!(
            "adopted: seq {} to {} ({} records) were taken on without checkpoint cover by \
             `warden audit adopt` (recovery record seq {}, digest {}): nothing but that \
             decision vouches for them",
            a.from_seq,
            a.to_seq,
            a.to_seq - a.from_seq + 1,
            a.record,
            a.digest
        );
    }
    if report.checkpoints == 0 && report.records > 0 {
        println!(
            "warning: no checkpoints: the records are chained, but nothing signs them, and a \
             writer refuses to append until `warden audit adopt` takes them on"
        );
    }
    if let Some(cp) = &kept {
        println!("the kept checkpoint of {} records matches", cp.size);
    }
    if let Some(torn) = report.torn_tail {
        println!(
            "torn tail: {} bytes at offset {} after the last record (a write cut short after \
             the last checkpoint; the writer drops it when it next opens the log)",
            torn.len, torn.offset
        );
    }
    if report.torn_checkpoint {
        println!(
            "torn checkpoint: ignored an incomplete last note in {}",
            verify::checkpoints_path(log).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn audit_prove(log: &Path, seq: u64, key: Option<String>) -> Result<ExitCode, Failure> {
    let key = verifier_key(key.as_deref())?;
    let report = match verify::verify(log, &key) {
        Ok(report) => report,
        Err(e) if e.is_damage() => {
            eprintln!("warden: not intact, no proof: {e}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(usage(e)),
    };
    match InclusionProof::new(&report, seq) {
        Ok(proof) => {
            let json = serde_json::to_string_pretty(&proof).map_err(usage)?;
            println!("{json}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ ProveError::NoSuchRecord { .. }) => Err(usage(e)),
        Err(e) => {
            eprintln!("warden: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn audit_check_proof(
    proof: &Path,
    key: &str,
    record: Option<PathBuf>,
) -> Result<ExitCode, Failure> {
    let key = verifier_key(Some(key))?;
    let text = std::fs::read(proof).map_err(|e| usage(format!("{}: {e}", proof.display())))?;
    let parsed: InclusionProof = serde_json::from_slice(&text)
        .map_err(|e| usage(format!("{}: not a proof: {e}", proof.display())))?;
    let record = match record {
        Some(path) => Some(
            std::fs::read(&path).map_err(|e| usage(format!("--record {}: {e}", path.display())))?,
        ),
        None => None,
    };
    match parsed.check(&key, record.as_deref()) {
        Ok(cp) => {
            println!(
                "valid: seq {} is among the {} records that checkpoint {} signs{}",
                parsed.seq,
                cp.size,
                cp.origin,
                if record.is_some() {
                    ", and the record given is that record"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("invalid: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn audit_show(
    log: &Path,
    task: Option<String>,
    deny: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    use std::io::BufRead;
    let file = std::fs::File::open(log).map_err(|e| usage(format!("{}: {e}", log.display())))?;
    let mut reader = std::io::BufReader::new(file);
    let mut stdout = std::io::stdout().lock();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| usage(format!("{}: {e}", log.display())))?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            eprintln!("warden: line {number}: torn ({n} bytes without a newline), skipped");
            break;
        }
        line.pop();
        let record: serde_json::Value = match serde_json::from_slice(&line) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) | Err(_) => {
                eprintln!("warden: line {number}: not a JSON object, skipped");
                continue;
            }
        };
        let field = |name: &str| record.get(name).and_then(|v| v.as_str());
        if task
            .as_deref()
            .is_some_and(|t| !field("task").is_some_and(|id| id.starts_with(t)))
        {
            continue;
        }
        if deny && field("decision") != Some("deny") {
            continue;
        }
        let written = if json {
            stdout
                .write_all(&line)
                .and_then(|_| stdout.write_all(b"\n"))
        } else {
            writeln!(stdout, "{}", show_line(&record))
        };
        if written.is_err() {
            // The reader went away (a pager closed): nothing left to do.
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One record for people: seq, time to the millisecond, the first 8 digits
/// of the task id, event, call, resource, decision, rule (quoted: it has
/// spaces), outcome; `-` where a record has no such field.
fn show_line(r: &serde_json::Value) -> String {
    let text = |name: &str| match r.get(name) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => "-".into(),
        Some(v) => v.to_string(),
    };
    let time = text("time");
    // 2026-11-25T19:47:18.123456789Z -> 2026-11-25T19:47:18.123Z
    let time = match time.split_once('.') {
        Some((secs, frac)) if frac.ends_with('Z') && frac.len() > 4 => {
            format!("{secs}.{}Z", &frac[..3])
        }
        _ => time,
    };
    let task: String = text("task").chars().take(8).collect();
    let rule = match r.get("rule").and_then(|v| v.as_str()) {
        Some(rule) => format!("{rule:?}"),
        None => "-".into(),
    };
    format!(
        "{:>6}  {time}  {task:<8}  {:<10}  {}  {}  {}  {rule}  {}",
        text("seq"),
        text("event"),
        text("call"),
        text("resource"),
        text("decision"),
        text("outcome"),
    )
}

fn check(manifest: &Path) -> Result<ExitCode, Failure> {
    let (_rt, tool) = load(manifest)?;
    print!("{}", tool.manifest().effective_grants());
    println!("component kind: {}", tool.kind());
    println!("component digest: {}", tool.digest());
    Ok(ExitCode::SUCCESS)
}

/// `warden compile`: each component compiled (or found in the cache), with the time it took.
fn compile(paths: &[PathBuf]) -> Result<ExitCode, Failure> {
    let rt = engine(&EngineConfig {
        max_tasks: 1,
        ..cached_engine()?
    })?;
    if rt.code_cache().is_none() {
        return Err(usage(
            "no cache directory (neither XDG_CACHE_HOME nor HOME is set): nothing to compile into",
        ));
    }
    for path in paths {
        let component = if path.extension().is_some_and(|e| e == "wasm") {
            path.clone()
        } else {
            Manifest::load(path).map_err(usage)?.tool.component
        };
        let started = std::time::Instant::now();
        rt.compile(&component).map_err(usage)?;
        println!(
            "{}: ready ({:.2} s)",
            component.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(component: &Path, manifest: Option<PathBuf>) -> Result<ExitCode, Failure> {
    let rt = engine(&EngineConfig {
        max_tasks: 1,
        ..cached_engine()?
    })?;
    let (c, bytes) = rt.compile(component).map_err(usage)?;
    let kind = warden::component::detect(rt.engine(), &c);
    println!("component: {}", component.display());
    println!("digest: blake3:{}", blake3::hash(&bytes).to_hex());
    match &kind {
        Ok(k) => println!("kind: {k}"),
        Err(msg) => println!("kind: not runnable: {msg}"),
    }
    println!("exports:");
    for e in warden::component::exports(rt.engine(), &c) {
        println!("  {e}");
    }
    if kind == Ok(Kind::Functions) {
        print_functions(&warden::func::functions(rt.engine(), &c));
    }
    let imports = warden::component::imports(rt.engine(), &c);
    println!("imports:");
    for i in &imports {
        println!("  {i}");
    }
    let manifest = manifest.or_else(|| {
        let beside = component.with_file_name("manifest.toml");
        beside.exists().then_some(beside)
    });
    if let Some(path) = manifest {
        let m = Manifest::load(&path).map_err(usage)?;
        println!("against {}:", path.display());
        let mut any = false;
        for i in &imports {
            if let Some(why) = ungranted(i, &m) {
                any = true;
                println!("  {i}: {why}");
            }
        }
        if !any {
            println!("  every import is allowed by some grant");
        }
    }
    Ok(if kind.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Each function with its signature and the JSON Schemas of its arguments and result.
fn print_functions(functions: &[warden::func::FunctionInfo]) {
    println!("functions (warden run MANIFEST --call NAME --input ARGS):");
    for f in functions {
        println!("  {}: {}", f.name, f.signature());
        if f.full_name != f.name {
            println!("    full name: {}", f.full_name);
        }
        if let Err(why) = &f.callable {
            println!("    not callable: {why}");
        }
        // One line each, so that a script can take a schema with its line.
        println!("    input schema: {}", f.input_schema);
        println!("    output schema: {}", f.output_schema);
    }
}

/// Why no grant of `m` would let calls through `import` succeed, if none.
fn ungranted(import: &str, m: &Manifest) -> Option<String> {
    let iface = import.split('@').next().unwrap_or(import);
    match iface {
        "wasi:sockets/tcp-create-socket" | "wasi:sockets/ip-name-lookup" if m.tcp.is_empty() => {
            Some("no grant allows sockets or name lookup: add a [[tcp]] entry".into())
        }
        "wasi:sockets/udp-create-socket" => {
            Some("no grant allows UDP: every UDP socket is refused".into())
        }
        "wasi:filesystem/preopens" | "wasi:filesystem/types" if m.fs.is_empty() => {
            Some("no [[fs]] grant: the tool sees no directories".into())
        }
        "wasi:cli/environment" if m.env.vars.is_empty() && m.env.pass.is_empty() => {
            Some("no [env] grant: the tool sees an empty environment".into())
        }
        "wasi:http/outgoing-handler" if m.http.is_empty() => {
            Some("no [[http]] rules: every request is refused; add an [[http]] entry".into())
        }
        "warden:tool/secrets" if m.secrets.is_empty() => {
            Some("no [[secrets]]: every secret the tool opens is unknown".into())
        }
        i if !i.starts_with("wasi:") && !i.starts_with("warden:tool/") => {
            Some("not provided by warden: the component cannot be linked".into())
        }
        _ => None,
    }
}

/// `warden new`: scaffolds the tool, then prints the commands that build
/// and run it.
fn new_tool(name: &str, lang: &str, path: Option<PathBuf>) -> Result<ExitCode, Failure> {
    let lang: scaffold::Lang = lang.parse().map_err(usage)?;
    let dest = path.unwrap_or_else(|| PathBuf::from(name));
    scaffold::create(name, lang, &dest).map_err(usage)?;
    println!(
        "Created {} tool {name:?} in {}",
        lang.name(),
        dest.display()
    );
    println!();
    println!("Next steps:");
    if dest != Path::new(".") {
        println!("  cd {}", shell_word(&dest.display().to_string()));
    }
    let [setup, build] = lang.build_commands(name);
    // A machine's toolchain is its owner's business; a tool's own packages are its step.
    let per_machine = lang.setup_per_machine();
    if !per_machine {
        println!("  {setup}");
    }
    println!("  {build}");
    println!(
        "  warden run manifest.toml --input {}",
        shell_word(scaffold::SAMPLE_INPUT)
    );
    println!();
    if per_machine {
        println!("The first build needs `{setup}`; README.md says how to add grants.");
    } else {
        println!("README.md says how to add grants.");
    }
    Ok(ExitCode::SUCCESS)
}

/// `text` as one POSIX shell word: as it is when that is safe, else quoted.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
