//! Per-task cost of Warden against raw wasmtime, in one run.
//!
//! Both sides run the `echo` guest on the same engine configuration (pooling
//! allocator, `memory_init_cow(false)`, `concurrency_support(false)`, epoch
//! interruption): a new store with its WASI context, instantiation from an
//! `InstancePre`, one `invoke`, drop. The raw side links plain wasmtime-wasi;
//! the Warden side is `Tool::run` with every host call interposed, a task
//! start and end record (to a sink that discards them, so the log's own cost
//! is left to the audit bench) and all limits armed. The ratio of the two
//! means is printed at the end.

mod floor;
#[path = "../tests/all/guests.rs"]
mod guests;

use floor::mean;

use criterion::Criterion;
use std::sync::Arc;
use std::time::Duration;
use warden::manifest::Manifest;
use warden::{EngineConfig, Runtime, TaskRequest};
use warden_host_api::audit::NullSink;

const INPUT: &str = r#"{"hello":"world"}"#;

fn main() {
    let _wasm = guests::guests().join("echo.wasm");
    let manifest = guests::root().join("guest-examples/echo/manifest.toml");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let tool = runtime.load(Manifest::load(&manifest).unwrap()).unwrap();
    let sink = Arc::new(NullSink);
    let request = TaskRequest::new(INPUT, sink);

    let engine = runtime.engine().clone();
    let echo = floor::Echo::new(&engine);

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut group = c.benchmark_group("task");
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| rt.block_on(echo.task(&engine, INPUT)))
    });
    group.bench_function("warden", |b| {
        b.iter(|| {
            let out = rt.block_on(tool.run(request.clone())).unwrap();
            assert_eq!(out.outcome, warden::Outcome::Result(INPUT.into()));
        })
    });
    group.finish();
    c.final_summary();
    report();
}

/// Prints Warden's mean per-task time as a multiple of raw wasmtime's, from
/// the estimates criterion just wrote.
fn report() {
    match (mean("task", "raw-wasmtime"), mean("task", "warden")) {
        (Some(raw), Some(warden)) => println!(
            "per-task: raw wasmtime {:.1} µs, warden {:.1} µs, ratio {:.2}x",
            raw / 1e3,
            warden / 1e3,
            warden / raw
        ),
        _ => println!("per-task ratio: criterion estimates not found"),
    }
}
