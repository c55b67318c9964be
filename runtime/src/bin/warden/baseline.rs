//! `warden baseline approve`: a tool's current version and grants become its approved
//! baseline, behind a `tool.approve` audit record.

use crate::host::{EngineArgs, LogArgs, protected, tokio_runtime};
use crate::{Failure, usage};
use std::path::PathBuf;
use std::process::ExitCode;
use warden::baseline::{Approval, Baselines, Drift};

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Approve the tool of MANIFEST as it is now: its component, imports and grants become
    /// the baseline that a runtime with --gate holds every later version to.
    Approve(ApproveArgs),
}

#[derive(clap::Args)]
pub(crate) struct ApproveArgs {
    /// The tool's manifest.
    manifest: PathBuf,
    /// Who approves, as the audit record names them; default $USER.
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    #[command(flatten)]
    log: LogArgs,
}

pub(crate) fn baseline(command: Command, engine: &EngineArgs) -> Result<ExitCode, Failure> {
    let Command::Approve(args) = command;
    let by = args
        .by
        .or_else(|| std::env::var("USER").ok())
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| usage("name who approves with --by NAME"))?;
    let m = engine.manifest(&args.manifest, &protected(Some(&args.log)))?;
    let name = m.tool.name.clone();
    let key = args.log.host_key()?;
    let runtime = engine.plain_runtime()?;
    let log = args.log.open(runtime.revocations())?;
    let runtime = runtime.with_load_audit(log.log.clone());
    let tool = match runtime.load(m) {
        Ok(t) => t,
        Err(e) => {
            log.finish();
            return Err(usage(e));
        }
    };
    let component = tool.component();
    let imports = warden::component::imports(runtime.engine(), component);
    let exports = warden::component::exports(runtime.engine(), component);
    let ceiling = tool.manifest().ceiling();
    let baselines = Baselines::new(&engine.baselines_dir(), key.verifier().clone());
    // What the approval changes, for the record: a forged or unreadable baseline is
    // replaced, and says so.
    let previous = baselines.get(&name);
    let (previous, widened) = match &previous {
        Ok(Some(old)) => {
            let drift =
                warden::baseline::compare(old, tool.digest(), &imports, &ceiling).map_err(usage)?;
            let widened = match drift {
                Drift::Widened(how) => how,
                _ => Vec::new(),
            };
            (
                serde_json::json!({
                    "component": old.component,
                    "approved_by": old.approved_by,
                    "approved_at": old.approved_at,
                }),
                widened,
            )
        }
        Ok(None) => (serde_json::Value::Null, Vec::new()),
        Err(e) => (serde_json::json!({ "unusable": e.to_string() }), Vec::new()),
    };
    let approval = Approval {
        tool: name.clone(),
        source: tool.provenance().source.clone(),
        component: tool.digest().to_owned(),
        imports,
        exports,
        grants: serde_json::to_value(&ceiling).map_err(usage)?,
        approved_by: by.clone(),
        approved_at: warden_host_api::time::rfc3339(std::time::SystemTime::now()),
    };
    // The record first, synced: an approval that is not in the log does not exist.
    let receipt =
        warden::baseline::record_approval(log.log.as_ref(), &approval, previous, &widened)
            .map_err(|e| usage(format!("recording the approval: {e:#}")));
    let receipt = match receipt {
        Ok(r) => r,
        Err(e) => {
            log.finish();
            return Err(e);
        }
    };
    tokio_runtime()?
        .block_on(receipt.settled())
        .map_err(|e| usage(format!("recording the approval: {e:#}")))?;
    log.finish();
    baselines.put(&key, &approval).map_err(usage)?;
    println!(
        "{name}: approved {} by {by}; baseline {}",
        approval.component,
        baselines.path(&name).display()
    );
    if !widened.is_empty() {
        println!("  widened: {}", widened.join("; "));
    }
    Ok(ExitCode::SUCCESS)
}
