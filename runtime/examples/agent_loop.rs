//! A small agent loop that embeds Warden: a scripted planner (no LLM, a fixed plan with
//! one rule) runs tools as tasks, narrows its grant for a sub-agent, reacts when a call
//! is denied, and prints the audit records every step left, as they were recorded.
//!
//! Run it from the repository root once the guests are built (the README's first
//! command builds them):
//!
//! ```sh
//! (cd guest-examples && cargo build --release --target wasm32-wasip2 --target-dir ../target/guests)
//! cargo run -p warden-runtime --example agent_loop
//! ```
//!
//! The integration tests run this same code (`tests/all/library.rs` includes this file
//! and calls [`run`]), so it cannot drift from the library.

use serde_json::{Value, json};
use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use warden::audit::checkpoint::HostKey;
use warden::audit::log::{AuditLog, LogOptions};
use warden::audit::stream::{AuditStream, Subscription, Update};
use warden::manifest::Manifest;
use warden::{EngineConfig, Outcome, Runtime, TaskGrant, TaskOutput, TaskRequest};
use warden_host_api::grant::Narrowing;

#[cfg_attr(test, expect(dead_code, reason = "the tests call `run` instead"))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples");
    let dir = tempfile::tempdir()?;
    run(&examples, &dir.path().join("audit.jsonl"), &mut |line| {
        println!("{line}")
    })
    .await
}

/// The whole loop: loads `file-search` and `echo` from `examples` (the
/// `guest-examples/` directory), records to a fresh audit log at `log`, and says what
/// happens through `say`, one line at a time.
pub async fn run(
    examples: &Path,
    log: &Path,
    say: &mut dyn FnMut(String),
) -> Result<(), Box<dyn Error>> {
    // One runtime for every tool; fuel metered so that each task reports what it used.
    let runtime = Runtime::new(&EngineConfig {
        fuel: true,
        ..EngineConfig::default()
    })?;
    let load = |name: &str| -> Result<_, Box<dyn Error>> {
        let manifest = Manifest::load(&examples.join(name).join("manifest.toml"))?;
        Ok(runtime.load(manifest)?)
    };
    let search = load("file-search")?;
    let echo = load("echo")?;

    // Every task records to the tamper-evident log; the stream shows us each record
    // once the log holds it.
    let key = HostKey::generate("agent-loop/warden-audit")?;
    let verifier = key.verifier().clone();
    let audit = Arc::new(AuditLog::open(log, key, LogOptions::default())?);
    let stream = Arc::new(AuditStream::new(audit.clone()));
    let mut watch = stream.subscribe();
    let request = |input: Value, agent: &str| {
        TaskRequest::new(input.to_string(), stream.clone()).agent(agent)
    };

    // The planner holds everything the manifest allows, for five minutes.
    let root = search.root_grant(Duration::from_secs(300), Some("planner".into()));
    say(format!(
        "planner: holds grant {} ({})",
        short(root.id()),
        fs_of(root.caps().fs())
    ));

    // Step 1: the planner surveys the whole workspace itself.
    let grant = TaskGrant::from_lineage([&root])?;
    let out = search
        .run(request(json!({"query": "needle"}), "planner").grant(grant))
        .await?;
    let found = matches(&out)?;
    say(format!(
        "step 1: planner searched /workspace: {} matches ({})",
        found.len(),
        about(&out)
    ));
    show(&mut watch, say);

    // Step 2: a sub-agent gets only the notes, read-only, for one minute.
    let narrowing = Narrowing::parse(["fs=/workspace/notes:read"])?;
    let child = root.attenuate(
        &narrowing,
        Some(Duration::from_secs(60)),
        Some("searcher".into()),
    )?;
    say(format!(
        "planner: narrowed grant {} to {} for searcher",
        short(child.id()),
        fs_of(child.caps().fs())
    ));
    let lineage = TaskGrant::from_lineage([&root, &child])?;
    // The searcher does not know its grant and climbs out of it for the whole workspace.
    let mut root_dir = "/workspace/notes/..".to_owned();
    let mut attempt = 1;
    let notes = loop {
        let input = json!({"query": "needle", "root": root_dir});
        let out = search
            .run(request(input, "searcher").grant(lineage.clone()))
            .await?;
        say(format!(
            "step 2.{attempt}: searcher searched {root_dir}: {}",
            about(&out)
        ));
        let denials = show(&mut watch, say);
        match &out.outcome {
            // The rule: a refusal is not retried as it was; narrow the request to what
            // the grant holds, once.
            Outcome::ToolError { kind, message } if attempt == 1 => {
                say(format!(
                    "planner: the searcher was refused ({kind}: {message}), {denials} call(s) \
                     denied; retrying within its grant"
                ));
                root_dir = child.caps().fs()[0].guest.clone();
                attempt += 1;
            }
            _ => break matches(&out)?,
        }
    };

    // Step 3: report through the echo tool, which holds no capability at all.
    let report = json!({"workspace_matches": found.len(), "notes_matches": notes});
    let out = echo.run(request(report, "planner")).await?;
    say(format!("step 3: planner reported {}", result(&out)?));
    show(&mut watch, say);

    drop((search, echo, stream));
    let intact = warden::audit::verify::verify(log, &verifier)?;
    say(format!(
        "audit log: {} records, intact, the last checkpoint covers {}",
        intact.records, intact.covered
    ));
    Ok(())
}

/// Prints the records the stream holds now, which are all of the step's (a task's
/// records are published before its `run` returns): each task's start and end and every
/// denial in full, the rest as a count. Returns how many calls were denied.
fn show(watch: &mut Subscription, say: &mut dyn FnMut(String)) -> usize {
    let (mut allowed, mut denied) = (0, 0);
    while let Some(update) = watch.try_recv() {
        let r = match update {
            Update::Record(r) => r,
            Update::Missed(n) => {
                say(format!("  audit: {n} records missed"));
                continue;
            }
        };
        let event = r["event"].as_str().unwrap_or("?");
        let deny = r["decision"] == "deny";
        if !deny && !event.starts_with("task.") {
            allowed += 1;
            continue;
        }
        let task = short(r["task"].as_str().unwrap_or("?")).to_owned();
        if event == "task.end" && allowed > 0 {
            say(format!("  audit {task} ({allowed} more records)"));
            allowed = 0;
        }
        let mut line = format!("  audit {task} {event}");
        for k in ["call", "resource", "decision", "rule", "outcome"] {
            if let Some(v) = r[k].as_str() {
                line.push_str(&format!(" {k}={v}"));
            }
        }
        denied += usize::from(deny);
        say(line);
    }
    denied
}

/// Task id, time and fuel: what a host keeps about each run.
fn about(out: &TaskOutput) -> String {
    let outcome = match &out.outcome {
        Outcome::Result(_) => "ok".to_owned(),
        Outcome::ToolError { kind, .. } => format!("tool error {kind}"),
        Outcome::Exit(code) => format!("exit {code}"),
    };
    format!(
        "{outcome}, task {}, {:.1} ms, fuel {}",
        short(&out.task),
        out.duration.as_secs_f64() * 1e3,
        out.fuel.map_or("unmetered".into(), |f| f.to_string())
    )
}

fn result(out: &TaskOutput) -> Result<Value, Box<dyn Error>> {
    match &out.outcome {
        Outcome::Result(json) => Ok(serde_json::from_str(json)?),
        other => Err(format!("task {} did not return a result: {other:?}", out.task).into()),
    }
}

/// The `path:line` of each match of a file-search result.
fn matches(out: &TaskOutput) -> Result<Vec<String>, Box<dyn Error>> {
    let value = result(out)?;
    let list = value["matches"].as_array().cloned().unwrap_or_default();
    Ok(list
        .iter()
        .map(|m| format!("{}:{}", m["path"].as_str().unwrap_or("?"), m["line"]))
        .collect())
}

fn fs_of(fs: &[warden_host_api::fs::manifest::FsGrant]) -> String {
    let dirs: Vec<String> = fs
        .iter()
        .map(|g| format!("{} {}", g.guest, g.access))
        .collect();
    format!("fs {}", dirs.join(", "))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}
