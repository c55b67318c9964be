//! What auditing costs: records appended per second, and what one audited
//! host call costs against the same call on raw wasmtime, in one run.
//!
//! - `append/*`: `AuditLog::emit` of a typical call record (numbering,
//!   JSON, BLAKE3 leaf hash, group commit, tree, checkpoints) until the
//!   records are written, with fsync `none` and `batch`; and `append/leaf-hash`, the
//!   BLAKE3 leaf hash of one such record's line and one tree node, which the writer
//!   computes for each record in turn because every line names the hash before it.
//! - `host-call/*`: a task of the `probe` guest making 1,000 `fs::metadata` calls, each
//!   two host calls (wasi-libc asks `metadata-hash-at` for the inode, then `stat-at`),
//!   one record each: on raw wasmtime-wasi, on Warden with a sink that
//!   drops records (interposition and event building only), and on Warden
//!   writing the real log with fsync `none` and `batch`. The per-call cost
//!   and its ratio to raw wasmtime are printed at the end.

mod floor;
#[path = "../tests/all/guests.rs"]
mod guests;

use floor::{log, mean};

use criterion::Criterion;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use warden::audit::log::Fsync;
use warden::manifest::Manifest;
use warden::{EngineConfig, Runtime, TaskRequest};
use warden_host_api::audit::{Event, EventSink, NullSink, Record, TaskMeta};

const CALLS: u64 = 1000;
/// Host calls per `fs::metadata`.
const PER_STAT: u64 = 2;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();

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
    let event = Event::call("wasi:filesystem/types.[method]descriptor.stat-at")
        .args(serde_json::json!({ "path": "hello.txt", "flags": "(SYMLINK_FOLLOW)" }))
        .resource("/ro/hello.txt")
        .allow("fs[0] /ro read")
        .outcome("ok")
        .took(Duration::from_nanos(1500));
    let mut group = c.benchmark_group("append");
    for (name, fsync) in [("fsync-none", Fsync::None), ("fsync-batch", Fsync::Batch)] {
        let sink = log(dir.path(), &format!("append-{name}.jsonl"), fsync);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    sink.emit(&Record {
                        meta: &meta,
                        time: SystemTime::now(),
                        event: &event,
                    })
                    .unwrap();
                }
                sink.checkpoint().unwrap();
                start.elapsed()
            })
        });
    }
    // The floor under the writer, whose leaf hashes chain and so run one after
    // another: a typical line's leaf hash, and the one inner node each leaf adds to
    // the tree on average.
    let written = std::fs::read_to_string(dir.path().join("append-fsync-none.jsonl")).unwrap();
    let line = written.lines().nth(1).unwrap().as_bytes().to_vec();
    group.bench_function("leaf-hash", |b| {
        use warden::audit::merkle::{Blake3, leaf_hash, node_hash};
        b.iter(|| {
            let leaf = leaf_hash::<Blake3>(std::hint::black_box(&line));
            node_hash::<Blake3>(&leaf, &leaf)
        })
    });
    group.finish();

    let probe = floor::Probe::new(dir.path());
    let manifest = probe.manifest("manifest", "");
    let input = floor::Probe::stat_loop(CALLS);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let tool = runtime.load(Manifest::load(&manifest).unwrap()).unwrap();

    let engine = runtime.engine().clone();
    let component = wasmtime::component::Component::from_file(&engine, &probe.wasm).unwrap();
    let raw_pre = floor::raw_tool(&engine, &component);

    let sinks: Vec<(&str, Arc<dyn EventSink>)> = vec![
        ("warden-null-sink", Arc::new(NullSink)),
        (
            "warden-log-none",
            log(dir.path(), "calls-none.jsonl", Fsync::None),
        ),
        (
            "warden-log-batch",
            log(dir.path(), "calls-batch.jsonl", Fsync::Batch),
        ),
    ];
    let mut group = c.benchmark_group("host-call");
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| rt.block_on(probe.raw_task(&engine, &raw_pre, &input)))
    });
    for (name, sink) in &sinks {
        let request = TaskRequest::new(input.clone(), sink.clone());
        group.bench_function(*name, |b| {
            b.iter(|| {
                let out = rt.block_on(tool.run(request.clone())).unwrap();
                assert!(
                    matches!(&out.outcome, warden::Outcome::Result(s) if s.contains("\"ok\":true"))
                );
            })
        });
    }
    group.finish();
    c.final_summary();
    report();
}

fn report() {
    for name in ["fsync-none", "fsync-batch"] {
        if let Some(ns) = mean("append", name) {
            println!("append {name}: {:.0} records/s ({ns:.0} ns each)", 1e9 / ns);
        }
    }
    if let Some(ns) = mean("append", "leaf-hash") {
        println!(
            "a record's leaf hash and tree node (the writer's serial floor): {ns:.0} ns, at most {:.0} records/s",
            1e9 / ns
        );
    }
    let Some(raw) = mean("host-call", "raw-wasmtime") else {
        return;
    };
    let calls = (CALLS * PER_STAT) as f64;
    println!(
        "host call (metadata-hash-at, stat-at), raw wasmtime: {:.0} ns per call",
        raw / calls
    );
    let null = mean("host-call", "warden-null-sink");
    for name in ["warden-null-sink", "warden-log-none", "warden-log-batch"] {
        if let Some(t) = mean("host-call", name) {
            let over = match null {
                Some(null) if name != "warden-null-sink" => {
                    format!(", {:+.0} ns over the null sink", (t - null) / calls)
                }
                _ => String::new(),
            };
            println!(
                "host call (metadata-hash-at, stat-at), {name}: {:.0} ns per call, {:.2}x raw{over}",
                t / calls,
                t / raw
            );
        }
    }
}
