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

use floor::{Raw, mean};

use criterion::Criterion;
use std::sync::Arc;
use std::time::Duration;
use warden::manifest::Manifest;
use warden::{EngineConfig, Runtime, TaskRequest};
use warden_host_api::audit::NullSink;
use warden_host_api::bindings::ToolPre;
use wasmtime::Store;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::WasiCtx;

const INPUT: &str = r#"{"hello":"world"}"#;

fn main() {
    let wasm = guests::guests().join("echo.wasm");
    let manifest = guests::root().join("guest-examples/echo/manifest.toml");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let tool = runtime.load(Manifest::load(&manifest).unwrap()).unwrap();
    let sink = Arc::new(NullSink);
    let request = TaskRequest::new(INPUT).sink(sink);

    let engine = runtime.engine().clone();
    let component = wasmtime::component::Component::from_file(&engine, &wasm).unwrap();
    let mut linker: Linker<Raw> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    linker.instance("warden:tool/types@0.1.0").unwrap();
    let raw_pre = ToolPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut group = c.benchmark_group("task");
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut store = Store::new(
                    &engine,
                    Raw {
                        wasi: WasiCtx::builder().build(),
                        table: ResourceTable::new(),
                    },
                );
                store.set_epoch_deadline(u64::MAX / 2);
                let tool = raw_pre.instantiate_async(&mut store).await.unwrap();
                let out = tool.call_invoke(&mut store, INPUT).await.unwrap();
                assert!(matches!(out.as_deref(), Ok(INPUT)));
            })
        })
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
