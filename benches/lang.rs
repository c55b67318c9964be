//! Cold and warm starts of tools in Python and JavaScript (and Rust, for scale), against raw
//! wasmtime in the same run.
//!
//! - **cold**: compiling the component from its bytes, as the first run on a machine does.
//!   Warden's engine (pooling allocator and the rest of the measured floor) against
//!   `wasmtime::Engine::default()`. Cranelift's work dominates both, so the ratio is near 1;
//!   the seconds are what a user waits once.
//! - **warm**: everything a later run does before and during its one task, with the compiled
//!   artifact in the cache: build the engine, read and authenticate the artifact, load it,
//!   link, and run one task (`describe` for the tool, which touches nothing). Two raw sides:
//!   `warm/raw-wasmtime` only deserializes the same artifact (the floor under the load half
//!   of Warden's number), and `warm/raw-first-task` does what a plain wasmtime embedder's
//!   new process does for its first task: a default engine, deserialize, link wasmtime-wasi,
//!   instantiate, call `describe`. Warden's `warm` over `raw-first-task` is the issue's "first
//!   task of a new process" ratio.
//!
//! The components are the guest examples `csv-query` (componentize-py), `issue-tracker`
//! (componentize-js) and `file-search` (Rust), built as the tests build them. Criterion's
//! smallest sample is ten runs; `cargo bench --bench lang` takes about ten minutes here.

mod floor;
#[path = "../tests/all/guests.rs"]
mod guests;

use criterion::Criterion;
use floor::mean;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use warden::manifest::Manifest;
use warden::{EngineConfig, Runtime};
use warden_host_api::audit::NullSink;
use wasmtime::component::Component;

struct Lang {
    name: &'static str,
    manifest: PathBuf,
    wasm: PathBuf,
}

fn langs() -> Vec<Lang> {
    let example = |dir: &str| {
        guests::root()
            .join("guest-examples")
            .join(dir)
            .join("manifest.toml")
    };
    vec![
        Lang {
            name: "python",
            manifest: example("csv-query"),
            wasm: guests::python_guest("csv-query", "../../wit", "tool").to_path_buf(),
        },
        Lang {
            name: "js",
            manifest: without_secrets(&example("issue-tracker")),
            wasm: guests::js_guest("issue-tracker").to_path_buf(),
        },
        Lang {
            name: "rust",
            manifest: example("file-search"),
            wasm: guests::guests().join("file_search.wasm"),
        },
    ]
}

/// A copy of `manifest` without its `[[secrets]]`, which every task fetches before it starts:
/// the bench measures loading and running, not reading an environment variable. The copy's
/// component path is made absolute, since it lives in a temp directory.
fn without_secrets(manifest: &std::path::Path) -> PathBuf {
    let text = std::fs::read_to_string(manifest).unwrap();
    let dir = manifest.parent().unwrap().display().to_string();
    let kept = text
        .split("[[secrets]]")
        .next()
        .unwrap()
        .replace("\"../../target/", &format!("\"{dir}/../../target/"));
    let copy = std::env::temp_dir().join(format!("warden-bench-lang-{}.toml", std::process::id()));
    std::fs::write(&copy, kept).unwrap();
    copy
}

fn main() {
    let langs = langs();
    let cache = tempfile::tempdir().unwrap();
    let cached = EngineConfig {
        cache_dir: Some(cache.path().join("compiled")),
        cache_key: Some(cache.path().join("cache.key")),
        max_tasks: 4,
        ..EngineConfig::default()
    };
    let uncached = EngineConfig {
        max_tasks: 4,
        ..EngineConfig::default()
    };
    let warden_cold = Runtime::new(&uncached).unwrap();
    let raw = wasmtime::Engine::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    for lang in &langs {
        let bytes = std::fs::read(&lang.wasm).unwrap();
        let mut group = c.benchmark_group(format!("lang-{}", lang.name));
        group.bench_function("cold/raw-wasmtime", |b| {
            b.iter(|| Component::new(&raw, &bytes).unwrap())
        });
        group.bench_function("cold/warden", |b| {
            b.iter(|| warden_cold.compile(&lang.wasm).unwrap())
        });

        // The cache holds the artifact from here on, as it does after a first run.
        let artifact = Component::new(&raw, &bytes).unwrap().serialize().unwrap();
        Runtime::new(&cached).unwrap().compile(&lang.wasm).unwrap();
        group.bench_function("warm/raw-wasmtime", |b| {
            b.iter(|| {
                #[expect(
                    unsafe_code,
                    reason = "deserializing is how wasmtime loads compiled code; the floor does it too"
                )]
                // SAFETY: the artifact was serialized just above by this process's engine.
                let component = unsafe { Component::deserialize(&raw, &artifact) };
                component.unwrap()
            })
        });
        group.bench_function("warm/raw-first-task", |b| {
            b.iter(|| rt.block_on(raw_first_task(&artifact)))
        });
        let manifest = Manifest::load(&lang.manifest).unwrap();
        group.bench_function("warm/warden", |b| {
            b.iter(|| warm_run(&rt, &cached, &manifest))
        });
        group.finish();
    }
    c.final_summary();
    report(&langs);
}

/// A later run's work: a runtime whose cache holds the component, the tool loaded from it,
/// and one task that asks the tool to describe itself.
fn warm_run(rt: &tokio::runtime::Runtime, cfg: &EngineConfig, manifest: &Manifest) {
    let runtime = Runtime::new(cfg).unwrap();
    let tool = runtime.load(manifest.clone()).unwrap();
    let info = rt.block_on(tool.describe(Arc::new(NullSink))).unwrap();
    assert!(!info.name.is_empty());
}

/// A plain wasmtime embedder's first task in a new process, from a serialized component:
/// engine, deserialize, link wasmtime-wasi (and wasi-http), instantiate, `describe`.
async fn raw_first_task(artifact: &[u8]) {
    let engine = wasmtime::Engine::default();
    #[expect(
        unsafe_code,
        reason = "deserializing is how wasmtime loads compiled code; the floor does it too"
    )]
    // SAFETY: the artifact was serialized by this process with an engine of the same config.
    let component = unsafe { Component::deserialize(&engine, artifact) }.unwrap();
    let pre = floor::raw_tool(&engine, &component);
    let data = floor::RawHttp::new(wasmtime_wasi::WasiCtx::builder().build());
    let mut store = wasmtime::Store::new(&engine, data);
    let tool = pre.instantiate_async(&mut store).await.unwrap();
    let info = tool.call_describe(&mut store).await.unwrap();
    assert!(!info.name.is_empty());
}

fn report(langs: &[Lang]) {
    for lang in langs {
        let group = format!("lang-{}", lang.name);
        // Criterion files the function "cold/warden" under cold_warden.
        let get = |name: &str| mean(&group, &name.replace('/', "_"));
        let size = std::fs::metadata(&lang.wasm).map(|m| m.len()).unwrap_or(0);
        match (
            get("cold/raw-wasmtime"),
            get("cold/warden"),
            get("warm/raw-wasmtime"),
            get("warm/raw-first-task"),
            get("warm/warden"),
        ) {
            (Some(cold_raw), Some(cold), Some(warm_raw), Some(first_raw), Some(warm)) => println!(
                "{:<6} {:>5.1} MB  cold: raw wasmtime {:.2} s, warden {:.2} s ({:.2}x)  \
                 warm: raw deserialize {:.1} ms, raw first task {:.1} ms, \
                 warden first task {:.1} ms ({:.2}x raw first task)",
                lang.name,
                size as f64 / 1e6,
                cold_raw / 1e9,
                cold / 1e9,
                cold / cold_raw,
                warm_raw / 1e6,
                first_raw / 1e6,
                warm / 1e6,
                warm / first_raw,
            ),
            _ => println!("{}: criterion estimates not found", lang.name),
        }
    }
}
