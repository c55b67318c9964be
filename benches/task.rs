//! Per-task cost of Warden against raw wasmtime, in one run.
//!
//! Both sides run the `echo` guest on the same engine configuration (pooling
//! allocator, `memory_init_cow(false)`, `concurrency_support(false)`, epoch
//! interruption): a new store with its WASI context, instantiation from an
//! `InstancePre`, one `invoke`, drop. The raw side links plain wasmtime-wasi;
//! the Warden side is `Tool::run` with every host call interposed, a task
//! start and end record and all limits armed.
//!
//! - `task/warden`: records go to a sink that discards them.
//! - `task/warden-log-*`: records go to a real `AuditLog` (a temporary
//!   directory), one per fsync setting, one task at a time.
//! - `inflight/*`: 16 tasks in flight on a two-thread tokio runtime, writing
//!   the real log with fsync `batch` and `always`; for `always`, the tasks per
//!   `fdatasync` and per signed checkpoint are printed from the log's own
//!   counters.
//! - `threads/*`: tasks/s with one and with two worker threads (discarding
//!   sink), against raw wasmtime on the same threads.
//!
//! The last two time batches of 512 tasks (criterion's throughput is per
//! task).
//!
//! The ratios of the means are printed at the end.

mod floor;
#[path = "../tests/all/guests.rs"]
mod guests;

use floor::{log, mean};

use criterion::Criterion;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use warden::audit::log::Fsync;
use warden::manifest::Manifest;
use warden::{EngineConfig, Runtime, TaskRequest, Tool};
use warden_host_api::audit::{EventSink, NullSink};

const INPUT: &str = r#"{"hello":"world"}"#;

/// Tasks in flight in the `inflight` group.
const INFLIGHT: usize = 16;

/// Tasks per iteration of the `inflight` and `threads` groups: enough that the
/// lanes' start and drain are a small part of each, whatever number of iterations
/// criterion asks for.
const BATCH: u64 = 512;

fn main() {
    let _wasm = guests::guests().join("echo.wasm");
    let manifest = guests::root().join("guest-examples/echo/manifest.toml");
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let runtime = Runtime::new(&engine_config()).unwrap();
    let tool = Arc::new(runtime.load(Manifest::load(&manifest).unwrap()).unwrap());
    let engine = runtime.engine().clone();
    let echo = Arc::new(floor::Echo::new(&engine));

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut group = c.benchmark_group("task");
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| rt.block_on(echo.task(&engine, INPUT)))
    });
    let sinks: Vec<(&str, Arc<dyn EventSink>)> = vec![
        ("warden", Arc::new(NullSink)),
        (
            "warden-log-none",
            log(dir.path(), "none.jsonl", Fsync::None),
        ),
        (
            "warden-log-batch",
            log(dir.path(), "batch.jsonl", Fsync::Batch),
        ),
        (
            "warden-log-always",
            log(dir.path(), "always.jsonl", Fsync::Always),
        ),
    ];
    for (name, sink) in &sinks {
        let request = TaskRequest::new(INPUT, sink.clone());
        group.bench_function(*name, |b| {
            b.iter(|| {
                let out = rt.block_on(tool.run(request.clone())).unwrap();
                assert_eq!(out.outcome, warden::Outcome::Result(INPUT.into()));
            })
        });
    }
    group.finish();

    let always = log(dir.path(), "inflight.jsonl", Fsync::Always);
    let multi = threads(2);
    let mut group = c.benchmark_group("inflight");
    let batch = log(dir.path(), "inflight-batch.jsonl", Fsync::Batch);
    group.throughput(criterion::Throughput::Elements(BATCH));
    group.bench_function("warden-log-batch-16", |b| {
        let sink: Arc<dyn EventSink> = batch.clone();
        b.iter_custom(|iters| multi.block_on(in_flight(&tool, &sink, iters * BATCH)))
    });
    let before = always.stats();
    let tasks = Arc::new(AtomicU64::new(0));
    group.bench_function("warden-log-always-16", |b| {
        let sink: Arc<dyn EventSink> = always.clone();
        b.iter_custom(|iters| {
            tasks.fetch_add(iters * BATCH, Ordering::Relaxed);
            multi.block_on(in_flight(&tool, &sink, iters * BATCH))
        })
    });
    group.finish();
    let after = always.stats();

    let mut group = c.benchmark_group("threads");
    group.throughput(criterion::Throughput::Elements(BATCH));
    for n in [1, 2] {
        let rt = threads(n);
        let (raw_engine, raw_echo) = (engine.clone(), echo.clone());
        group.bench_function(format!("raw-wasmtime-{n}"), |b| {
            b.iter_custom(|iters| {
                let (engine, echo) = (raw_engine.clone(), raw_echo.clone());
                rt.block_on(spread(n, iters * BATCH, move || {
                    let (engine, echo) = (engine.clone(), echo.clone());
                    async move { echo.task(&engine, INPUT).await }
                }))
            })
        });
        let sink: Arc<dyn EventSink> = Arc::new(NullSink);
        group.bench_function(format!("warden-{n}"), |b| {
            b.iter_custom(|iters| {
                let (tool, sink) = (tool.clone(), sink.clone());
                rt.block_on(spread(n, iters * BATCH, move || {
                    let (tool, sink) = (tool.clone(), sink.clone());
                    async move {
                        tool.run(TaskRequest::new(INPUT, sink)).await.unwrap();
                    }
                }))
            })
        });
    }
    group.finish();

    c.final_summary();
    report();
    let tasks = tasks.load(Ordering::Relaxed) as f64;
    let syncs = (after.syncs - before.syncs).max(1) as f64;
    let checkpoints = (after.checkpoints - before.checkpoints).max(1) as f64;
    println!(
        "{INFLIGHT} tasks in flight, fsync always: {tasks:.0} tasks, {:.1} tasks per fdatasync, \
         {:.1} tasks per signed checkpoint, {:.1} records per group commit",
        tasks / syncs,
        tasks / checkpoints,
        (after.records - before.records) as f64 / (after.groups - before.groups).max(1) as f64,
    );
}

/// The default engine, or with `WARDEN_BENCH_SLOTS=N` a pool of N task slots: the default
/// 100 reserve ~800 GB of address space, more than valgrind can map, and counting each
/// side's instructions under callgrind is the one measure of a task here that shared
/// vCPUs do not blur.
fn engine_config() -> EngineConfig {
    let mut config = EngineConfig::default();
    if let Ok(n) = std::env::var("WARDEN_BENCH_SLOTS") {
        config.max_tasks = n
            .parse()
            .expect("WARDEN_BENCH_SLOTS is a number of task slots");
    }
    config
}

fn threads(n: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `iters` echo tasks of `tool` into `sink`, [`INFLIGHT`] at a time.
async fn in_flight(tool: &Arc<Tool>, sink: &Arc<dyn EventSink>, iters: u64) -> Duration {
    let (tool, sink) = (tool.clone(), sink.clone());
    spread(INFLIGHT, iters, move || {
        let (tool, sink) = (tool.clone(), sink.clone());
        async move {
            let out = tool.run(TaskRequest::new(INPUT, sink)).await.unwrap();
            assert_eq!(out.outcome, warden::Outcome::Result(INPUT.into()));
        }
    })
    .await
}

/// Runs `iters` tasks made by `task`, on `lanes` spawned loops, and returns the
/// time until the last ended.
async fn spread<F, Fut>(lanes: usize, iters: u64, task: F) -> Duration
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let task = Arc::new(task);
    let left = Arc::new(AtomicU64::new(iters));
    let start = Instant::now();
    let loops: Vec<_> = (0..lanes)
        .map(|_| {
            let (task, left) = (task.clone(), left.clone());
            tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    task().await;
                }
            })
        })
        .collect();
    for l in loops {
        l.await.unwrap();
    }
    start.elapsed()
}

/// The time of one task, from that of a batch.
fn per_task(batch: f64) -> f64 {
    batch / BATCH as f64
}

/// Prints Warden's mean per-task time as a multiple of raw wasmtime's, from
/// the estimates criterion just wrote.
fn report() {
    let Some(raw) = mean("task", "raw-wasmtime") else {
        println!("per-task ratio: criterion estimates not found");
        return;
    };
    println!("per-task: raw wasmtime {:.1} µs", raw / 1e3);
    for name in [
        "warden",
        "warden-log-none",
        "warden-log-batch",
        "warden-log-always",
    ] {
        if let Some(t) = mean("task", name) {
            println!("per-task: {name} {:.1} µs, ratio {:.2}x", t / 1e3, t / raw);
        }
    }
    for fsync in ["batch", "always"] {
        if let Some(t) = mean("inflight", &format!("warden-log-{fsync}-16")).map(per_task) {
            println!(
                "{INFLIGHT} in flight, fsync {fsync}: {:.1} µs per task ({:.0} tasks/s), {:.2}x \
                 raw",
                t / 1e3,
                1e9 / t,
                t / raw
            );
        }
    }
    for n in [1, 2] {
        let (Some(r), Some(w)) = (
            mean("threads", &format!("raw-wasmtime-{n}")).map(per_task),
            mean("threads", &format!("warden-{n}")).map(per_task),
        ) else {
            continue;
        };
        println!(
            "{n} thread(s): raw wasmtime {:.0} tasks/s, warden {:.0} tasks/s ({:.2}x raw)",
            1e9 / r,
            1e9 / w,
            w / r
        );
    }
    if let (Some(one), Some(two)) = (mean("threads", "warden-1"), mean("threads", "warden-2")) {
        println!("warden 2 threads vs 1: {:.2}x tasks/s", one / two);
    }
    if let (Some(one), Some(two)) = (
        mean("threads", "raw-wasmtime-1"),
        mean("threads", "raw-wasmtime-2"),
    ) {
        println!("raw wasmtime 2 threads vs 1: {:.2}x tasks/s", one / two);
    }
}
