//! `warden worker`: take tasks of the fleet's work queues and run them here.

use crate::approve::{ApproveArgs, Deciders, positive_duration};
use crate::host::{EngineArgs, LogArgs, load_manifests, protected, tokio_runtime};
use crate::{Failure, usage};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use warden::EngineConfig;
use warden_host_api::audit::EventSink;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Manifests, or directories holding them (*.toml and */manifest.toml): the tools
    /// this worker runs, each only under its own manifest.
    #[arg(required = true, value_name = "MANIFEST|DIR")]
    paths: Vec<PathBuf>,
    /// The audit log, shipped, and the NATS server (--nats, required) whose work queues
    /// hold the tasks.
    #[command(flatten)]
    log: LogArgs,
    /// Tasks this worker runs at once, over all its tools: it takes no more from the
    /// queues until one ends.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..))]
    slots: u32,
    /// How long the server waits to hear from a worker about a task it took before
    /// giving the task to another worker: how long a dead worker's tasks wait.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = positive_duration)]
    ack_wait: Duration,
    /// Who answers gated calls.
    #[command(flatten)]
    approval: ApproveArgs,
    /// A Rego policy asked about every capability-relevant call of every tool, besides
    /// each manifest's [policy].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

pub(crate) fn worker(args: Args, engine: &EngineArgs) -> Result<ExitCode, Failure> {
    let Args {
        paths,
        log,
        slots,
        ack_wait,
        approval,
        policy,
    } = args;
    let (Some(url), host) = (log.nats().map(str::to_owned), log.host()) else {
        return Err(usage(
            "warden worker needs --nats URL (or WARDEN_NATS): the server whose work queues \
             hold the tasks",
        ));
    };
    let deciders = Deciders::new(approval, policy, Vec::new())?;
    let manifests: Vec<_> = load_manifests(engine, &paths, &protected(Some(&log)))?
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    let fuel = manifests.iter().any(|m| m.declared.limits.fuel.is_some());
    let max_tasks = EngineConfig::default().max_tasks.max(slots);
    let runtime = deciders.apply(engine.runtime(fuel, max_tasks)?)?;
    let wait_covered = log.wait_covered;
    let log = log.open(runtime.revocations())?;
    let sink: Arc<dyn EventSink> = log.log.clone();
    let runtime = engine.gate(runtime.with_load_audit(sink.clone()), &log.log);
    let mut tools = Vec::new();
    for m in manifests {
        let name = m.tool.name.clone();
        let tool = runtime.load(m).map_err(usage)?;
        eprintln!(
            "warden worker: {name} from {}",
            warden::fleet::work::tasks_subject(&name)
        );
        tools.push(tool);
    }
    let opts = warden::fleet::work::WorkerOptions {
        url,
        host,
        slots: slots as usize,
        ack_wait,
        wait_covered,
    };
    let rt = tokio_runtime()?;
    let worked = rt.block_on(warden::fleet::work::work(
        tools,
        sink,
        opts,
        crate::collect::stopped(),
    ));
    log.finish();
    worked.map_err(usage)?;
    Ok(ExitCode::SUCCESS)
}
