//! `warden run`: the tool of a manifest, once, as one task.

use crate::approve::{ApproveArgs, Deciders, context_pair};
use crate::host::{EngineArgs, LogArgs, protected, tokio_runtime};
use crate::{Failure, tokens, usage};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use warden::{Kind, Outcome, TaskError, TaskRequest};

#[derive(clap::Args)]
pub(crate) struct Args {
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
}

/// `warden run`: loads the tool, runs one task, and prints its result (or its output, for a
/// command) and why it failed.
pub(crate) fn run(args: Args, engine: &EngineArgs) -> Result<ExitCode, Failure> {
    let Args {
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
    } = args;
    let deciders = Deciders::new(approval, policy, context)?;
    let m = engine.manifest(&manifest, &protected(Some(&log)))?;
    let runtime = deciders.apply(engine.runtime(m.declared.limits.fuel.is_some(), 4)?)?;
    // Opened before the load, so that the load is recorded, refused or not.
    let wait_covered = log.wait_covered;
    let log = log.open(runtime.revocations())?;
    let runtime = engine.gate(runtime.with_load_audit(log.log.clone()), &log.log);
    let tool = match runtime.load(m) {
        Ok(tool) => tool,
        Err(e) => {
            log.finish();
            return Err(usage(e));
        }
    };
    let context = deciders.context;
    let grant = match grant {
        Some(token) => Some(tokens::verify(&token, issuer.as_deref(), &tool)?),
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
    if let (Some(_), Some((_, max_age))) = (&grant, &log.revocations) {
        // A fresh process has not heard from the fleet yet: give it the time a view may
        // be old. If it still has not, the task is refused, saying why.
        runtime.revocations().wait_view(*max_age);
    }
    let rt = tokio_runtime()?;
    let mut req = TaskRequest::new(input, log.log.clone())
        .args(args)
        .stdin(stdin)
        .wait_covered(wait_covered);
    req.agent = agent;
    req.grant = grant;
    req.call = call;
    req.context = context.into_iter().collect();
    let out = rt.block_on(tool.run(req));
    log.finish();
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
