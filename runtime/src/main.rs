//! `warden`: run a tool under its manifest, check a manifest, inspect a
//! component.
//!
//! Exit codes: 0 success; 1 the tool failed (error result, trap, limit,
//! runtime denial that ended it); 2 usage, invalid manifest or rejected
//! component.

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use warden::audit::checkpoint::HostKey;
use warden::audit::log::{AuditLog, LogOptions};
use warden::manifest::Manifest;
use warden::{EngineConfig, Kind, LoadError, Outcome, Runtime, TaskRequest};

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Run AI-agent tools as Wasm components under a capability manifest"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

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
        /// Audit log (JSON Lines); default under the XDG state directory.
        #[arg(long, env = "WARDEN_AUDIT")]
        audit: Option<PathBuf>,
        /// The agent this task runs for, as recorded in the audit log.
        #[arg(long)]
        agent: Option<String>,
        /// The host key that signs checkpoints; default under the XDG state
        /// directory, created on first use.
        #[arg(long, env = "WARDEN_KEY")]
        key: Option<PathBuf>,
        /// When audit records reach the disk: always (a call proceeds only
        /// once its record is synced), batch (synced in groups) or none.
        #[arg(long, env = "WARDEN_FSYNC", default_value = "always")]
        fsync: warden::audit::log::Fsync,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            manifest,
            input,
            input_file,
            audit,
            agent,
            key,
            fsync,
            args,
        } => run(
            &manifest,
            input,
            input_file,
            audit,
            agent,
            (key, fsync),
            args,
        ),
        Command::Check { manifest } => check(&manifest),
        Command::Audit(AuditCommand::Key { key }) => audit_key(key),
        Command::Inspect {
            component,
            manifest,
        } => inspect(&component, manifest),
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

fn load(manifest: &Path) -> Result<(Runtime, warden::Tool), Failure> {
    let m = Manifest::load(manifest).map_err(usage)?;
    let cfg = EngineConfig {
        fuel: m.limits.fuel.is_some(),
        max_tasks: 4,
        cache_dir: warden::engine::default_cache_dir(),
        ..EngineConfig::default()
    };
    let rt = Runtime::new(&cfg).map_err(|e| usage(format!("cannot start the engine: {e:#}")))?;
    let tool = rt.load(m).map_err(|e: LoadError| usage(e))?;
    Ok((rt, tool))
}

fn run(
    manifest: &Path,
    input: Option<String>,
    input_file: Option<PathBuf>,
    audit: Option<PathBuf>,
    agent: Option<String>,
    (key, fsync): (Option<PathBuf>, warden::audit::log::Fsync),
    args: Vec<String>,
) -> Result<ExitCode, Failure> {
    let (_rt, tool) = load(manifest)?;
    let input = match (input, input_file) {
        (Some(i), _) => i,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map_err(|e| usage(format!("--input-file {}: {e}", f.display())))?,
        (None, None) => "{}".to_string(),
    };
    if tool.kind() == Kind::Tool {
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
    let audit_path = audit.unwrap_or_else(warden::audit::default_path);
    let key_path = key.unwrap_or_else(warden::audit::default_key_path);
    let key = HostKey::load_or_create(&key_path, &warden::audit::key_name()).map_err(usage)?;
    let options = LogOptions {
        fsync,
        ..LogOptions::default()
    };
    let sink = AuditLog::open(&audit_path, key, options).map_err(usage)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("cannot start tokio: {e}")))?;
    let out = rt.block_on(tool.run(TaskRequest {
        input,
        args,
        stdin,
        agent,
        sink: Arc::new(sink),
    }));
    let out = out.map_err(|e| Failure::Tool(e.to_string()))?;
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
    let path = key.unwrap_or_else(warden::audit::default_key_path);
    let key = warden::audit::checkpoint::HostKey::load_or_create(&path, &warden::audit::key_name())
        .map_err(usage)?;
    println!("{}", key.verifier());
    Ok(ExitCode::SUCCESS)
}

fn check(manifest: &Path) -> Result<ExitCode, Failure> {
    let (_rt, tool) = load(manifest)?;
    print!("{}", tool.manifest().effective_grants());
    println!("component kind: {}", tool.kind());
    println!("component digest: {}", tool.digest());
    Ok(ExitCode::SUCCESS)
}

fn inspect(component: &Path, manifest: Option<PathBuf>) -> Result<ExitCode, Failure> {
    let rt = Runtime::new(&EngineConfig {
        max_tasks: 1,
        cache_dir: warden::engine::default_cache_dir(),
        ..EngineConfig::default()
    })
    .map_err(|e| usage(format!("cannot start the engine: {e:#}")))?;
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

/// Why no grant of `m` would let calls through `import` succeed, if none.
fn ungranted(import: &str, m: &Manifest) -> Option<String> {
    let iface = import.split('@').next().unwrap_or(import);
    match iface {
        "wasi:sockets/tcp-create-socket" | "wasi:sockets/udp-create-socket" => {
            Some("no grant allows sockets: every socket is refused".into())
        }
        "wasi:sockets/ip-name-lookup" => Some("no grant allows name lookup".into()),
        "wasi:filesystem/preopens" | "wasi:filesystem/types" if m.fs.is_empty() => {
            Some("no [[fs]] grant: the tool sees no directories".into())
        }
        "wasi:cli/environment" if m.env.vars.is_empty() && m.env.pass.is_empty() => {
            Some("no [env] grant: the tool sees an empty environment".into())
        }
        i if !i.starts_with("wasi:") && !i.starts_with("warden:tool/") => {
            Some("not provided by warden: the component cannot be linked".into())
        }
        _ => None,
    }
}
