//! What a policy costs a host call, in one run.
//!
//! - `policy-check/*`: `TaskPolicy::check` alone for one `fs.read` call: a verdict the
//!   policy marked cacheable and found in the task's cache, and one evaluated afresh
//!   (input document built, serialized, evaluated by regorus).
//! - `policy-call/*`: a task of the `probe` guest making 1,000 `fs::metadata` calls, each
//!   two host calls (wasi-libc asks `metadata-hash-at` for the inode, then `stat-at`),
//!   each asking the policy: on raw wasmtime-wasi; on Warden without a policy; on Warden with
//!   `no-writes-unless-low-risk.rego` (cacheable, so asked once per path); and with
//!   `business-hours.rego` (reads the time, so evaluated on every call). Records go to a
//!   sink that drops them, so the log's own cost (the audit bench) is left out. The
//!   per-call cost, what the policy adds to it, and the ratio to raw wasmtime are printed
//!   at the end.

mod floor;
#[path = "../tests/all/guests.rs"]
mod guests;

use floor::mean;

use criterion::Criterion;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use warden::manifest::Manifest;
use warden::{EngineConfig, Runtime, TaskRequest};
use warden_host_api::audit::TaskMeta;
use warden_host_api::policy::{CallKind, GrantInfo, Policy, TaskPolicy};

const CALLS: u64 = 1000;
/// Host calls per `fs::metadata`.
const PER_STAT: u64 = 2;
const STAT_AT: &str = "wasi:filesystem/types.[method]descriptor.stat-at";

/// A Wednesday, 10:00 UTC: inside business hours, so every call is allowed.
fn wednesday_10() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_600_800)
}

fn policy(name: &str) -> (std::path::PathBuf, Policy) {
    let path = guests::root().join("guest-examples/policies").join(name);
    let policy = Policy::load(&path).unwrap();
    (path, policy)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();

    let (risk_path, risk) = policy("no-writes-unless-low-risk.rego");
    let (hours_path, hours) = policy("business-hours.rego");
    let meta = TaskMeta {
        attempt: None,
        host: "bench".into(),
        agent: Some("agent".into()),
        task: "0123456789abcdef01234567".into(),
        parent: None,
        tool: "probe".into(),
        component: format!("blake3:{}", "ab".repeat(32)),
        mcp: None,
    };
    let context = serde_json::json!({"risk": 0.1})
        .as_object()
        .unwrap()
        .clone();
    let task_policy = |p: &Policy| {
        TaskPolicy::new(
            vec![p.clone()],
            &meta,
            GrantInfo::root("g-1", None),
            context.clone(),
        )
        .clock(Arc::new(wednesday_10))
    };
    let cached = task_policy(&risk);
    let fresh = task_policy(&hours);
    let mut group = c.benchmark_group("policy-check");
    for (name, task) in [("cached", &cached), ("evaluated", &fresh)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let r = task.check(
                    STAT_AT,
                    CallKind::FsRead,
                    Some(black_box("/ro/hello.txt")),
                    None,
                );
                assert!(r.is_ok());
            })
        });
    }
    group.finish();

    let probe = floor::Probe::new(dir.path());
    let manifest = |name: &str, policy: Option<&std::path::Path>| {
        let extra = policy.map_or_else(String::new, |p| {
            format!("\n[policy]\nfile = {:?}\n", p.display().to_string())
        });
        Manifest::load(&probe.manifest(name, &extra)).unwrap()
    };
    let input = floor::Probe::stat_loop(CALLS);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(&EngineConfig::default())
        .unwrap()
        .with_clock(Arc::new(wednesday_10));
    let tools = [
        ("warden-no-policy", None),
        ("warden-policy-cached", Some(risk_path.as_path())),
        ("warden-policy-evaluated", Some(hours_path.as_path())),
    ]
    .map(|(name, policy)| (name, runtime.load(manifest(name, policy)).unwrap()));

    let engine = runtime.engine().clone();
    let component = wasmtime::component::Component::from_file(&engine, &probe.wasm).unwrap();
    let raw_pre = floor::raw_tool(&engine, &component);

    let mut group = c.benchmark_group("policy-call");
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| rt.block_on(probe.raw_task(&engine, &raw_pre, &input)))
    });
    for (name, tool) in &tools {
        let mut request = TaskRequest::dangerous(input.clone())
            .discard_audit()
            .agent("agent");
        request.context = context.clone();
        group.bench_function(*name, |b| {
            b.iter(|| {
                let out = rt.block_on(tool.run(request.clone())).unwrap();
                assert!(
                    matches!(&out.outcome, warden::Outcome::Result(s) if s.contains("\"ok\":true")),
                    "{:?}",
                    out.outcome
                );
            })
        });
    }
    group.finish();
    c.final_summary();
    report();
}

fn report() {
    for name in ["cached", "evaluated"] {
        if let Some(ns) = mean("policy-check", name) {
            println!("policy check alone, {name}: {ns:.0} ns");
        }
    }
    let (Some(raw), Some(plain)) = (
        mean("policy-call", "raw-wasmtime"),
        mean("policy-call", "warden-no-policy"),
    ) else {
        return;
    };
    let per_call = |t: f64| t / (CALLS * PER_STAT) as f64;
    println!(
        "host call (metadata-hash-at, stat-at), raw wasmtime: {:.0} ns per call",
        per_call(raw)
    );
    println!(
        "host call (metadata-hash-at, stat-at), warden-no-policy: {:.0} ns per call, {:.2}x raw",
        per_call(plain),
        plain / raw
    );
    for name in ["warden-policy-cached", "warden-policy-evaluated"] {
        if let Some(t) = mean("policy-call", name) {
            println!(
                "host call (metadata-hash-at, stat-at), {name}: {:.0} ns per call, {:.2}x raw, {:.2}x no policy (+{:.0} ns)",
                per_call(t),
                t / raw,
                t / plain,
                per_call(t - plain)
            );
        }
    }
}
