//! `warden`: run a tool under its manifest, check a manifest, inspect a
//! component, verify and read the audit log, manage grants, start a new tool.
//!
//! Exit codes: 0 success; 1 the tool failed (error result, trap, limit,
//! runtime denial that ended it); 2 usage, invalid manifest or rejected
//! component. `audit verify` and `audit check-proof`: 0 intact or valid, 1
//! not, 2 usage or unreadable.
//!
//! A module per subcommand, each with its clap arguments; `host` is how every subcommand
//! sets up an engine, its keys and its audit log, and `approve` who decides gated calls.

mod approve;
mod audit;
mod baseline;
mod check;
mod collect;
mod compile;
mod diff;
mod grant;
mod host;
mod inspect;
mod mcp;
mod new;
mod pull;
mod run;
mod scaffold;
mod sign;
mod tokens;
mod worker;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
    engine: host::EngineArgs,
}

// Parsed once per process: the size of the largest variant costs nothing. Each variant's
// doc comment is its help; the `Args` structs have none, which would replace it.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the tool of MANIFEST once, as one task.
    Run(run::Args),
    /// Validate MANIFEST and print the effective grants.
    Check(check::Args),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(audit::Command),
    /// Grant tools: the issuer key of grant tokens, revocation.
    #[command(subcommand)]
    Grant(grant::Command),
    /// Print a component's kind, exports and imports, and which imports no
    /// grant of its manifest would allow.
    Inspect(inspect::Args),
    /// Compile components into this machine's cache ahead of their first task, which then
    /// starts at once: worth it for large ones (a Python or JavaScript tool takes seconds).
    Compile(compile::Args),
    /// Show what changed between two versions of a tool (manifests, component files or
    /// oci:// references): imports, exports, each function's schema, the grants.
    /// Exit 0 if nothing did, 1 if something did.
    Diff(diff::Args),
    /// Approved baselines: what a runtime with --gate holds each tool to.
    #[command(subcommand)]
    Baseline(baseline::Command),
    /// Fetch components from OCI registries into the local store, with the signatures
    /// published beside them; tools that name them by oci:// then load offline.
    Pull(pull::Args),
    /// Publish a signature of a component beside it in its registry, where `warden pull`
    /// finds it and [tool] signed-by checks it.
    Sign(sign::Args),
    /// Create a tool NAME that builds into a wasm32-wasip2 component and runs
    /// with `warden run` as it is: source, WIT, manifest with a sample grant,
    /// README.
    New(new::Args),
    /// Serve tools over the Model Context Protocol: on stdio, or with --http
    /// over Streamable HTTP on a loopback address behind a bearer token. Each
    /// tools/call runs as one task under its manifest.
    Mcp(mcp::Args),
    /// Take tasks of the tools of MANIFEST|DIR from the fleet's work queues on --nats
    /// (sent by `warden mcp --workers` or the library), run each under its manifest,
    /// and reply; a task whose worker died is run again by another, unless its manifest
    /// says the tool is not idempotent.
    Worker(worker::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Keys an older Warden kept beside the default log move to keys/, and that log to audit/.
    match warden::audit::keys::migrate_legacy_layout() {
        Ok(moved) => moved.iter().for_each(|m| eprintln!("warden: {m}")),
        Err(e) => eprintln!("warden: could not move an older layout into place: {e}"),
    }
    let engine = &cli.engine;
    let result = match cli.command {
        Command::Run(args) => run::run(args, engine),
        Command::Check(args) => check::check(args, engine),
        Command::Audit(command) => audit::audit(command),
        Command::Grant(command) => grant::grant(command),
        Command::Inspect(args) => inspect::inspect(args, engine),
        Command::Compile(args) => compile::compile(args, engine),
        Command::New(args) => new::new(args),
        Command::Pull(args) => pull::pull(args, engine),
        Command::Diff(args) => diff::diff(args, engine),
        Command::Baseline(command) => baseline::baseline(command, engine),
        Command::Sign(args) => sign::sign(args, engine),
        Command::Mcp(args) => mcp::mcp(args, engine),
        Command::Worker(args) => worker::worker(args, engine),
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

/// Why a subcommand failed, which decides the exit code.
enum Failure {
    /// Exit 2: usage, manifest or component.
    Usage(String),
    /// Exit 1: the tool failed.
    Tool(String),
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure::Usage(e.to_string())
}
