//! `warden mcp`: tools served over the Model Context Protocol, on stdio or Streamable HTTP.

use crate::approve::{ApproveArgs, Deciders, positive_duration};
use crate::host::{EngineArgs, LogArgs, load_manifests, protected, tokio_runtime_with};
use crate::{Failure, usage};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use warden::EngineConfig;
use warden_host_api::audit::EventSink;

#[derive(clap::Args)]
pub(crate) struct Args {
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
    /// Send each tools/call to the fleet's workers (`warden worker`) through the work
    /// queues on --nats, instead of running it here; wait this long for a reply.
    #[arg(long, value_name = "TIMEOUT", num_args = 0..=1, default_missing_value = "120s",
          value_parser = positive_duration, requires = "nats")]
    workers: Option<Duration>,
    /// Threads that run tasks; default: one per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
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

/// 32 random bytes, hex: a bearer token nobody guesses.
fn random_token() -> Result<String, Failure> {
    warden_host_api::hex::random(32).map_err(|e| usage(format!("no randomness for a token: {e}")))
}

/// `warden mcp`: loads every manifest, then serves until the client leaves (stdio) or
/// the process is stopped (HTTP).
pub(crate) fn mcp(args: Args, engine: &EngineArgs) -> Result<ExitCode, Failure> {
    let Args {
        paths,
        log: audit,
        http,
        approval,
        policy,
        workers,
        threads,
    } = args;
    let (deciders, client_approval) = Deciders::for_mcp(approval, policy)?;
    if workers.is_some() && !matches!(client_approval, warden::mcp::ClientApproval::Never) {
        return Err(usage(
            "--workers with --approve mcp: a worker cannot ask this server's client; gated \
             calls are answered by each worker's own approver",
        ));
    }
    let nats = audit.nats().map(str::to_owned);
    use warden::mcp::{Catalog, HttpOptions, WardenMcp};
    let manifests = load_manifests(engine, &paths, &protected(Some(&audit)))?;
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
    let fuel = manifests
        .iter()
        .any(|(_, m)| m.declared.limits.fuel.is_some());
    let max_tasks = EngineConfig::default().max_tasks;
    let runtime = deciders.apply(engine.runtime(fuel, max_tasks)?)?;
    let wait_covered = audit.wait_covered;
    let log = audit.open(runtime.revocations())?;
    let sink: Arc<dyn EventSink> = log.log.clone();
    let runtime = engine.gate(runtime.with_load_audit(sink.clone()), &log.log);
    let threads = match threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let rt = tokio_runtime_with(threads)?;
    let served = rt.block_on(async move {
        let catalog = Catalog::load(&runtime, manifests, sink.clone())
            .await
            .map_err(usage)?;
        let mut server = WardenMcp::new(catalog, sink, client_approval).wait_covered(wait_covered);
        if let (Some(timeout), Some(url)) = (workers, &nats) {
            let dispatcher = warden::fleet::work::Dispatcher::connect(url, timeout)
                .await
                .map_err(usage)?;
            server = server.with_workers(dispatcher);
        }
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
    });
    log.finish();
    served
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
