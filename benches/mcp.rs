//! The latency of one MCP `tools/call` round trip through `warden mcp`, against raw
//! wasmtime running the same tool, in one run.
//!
//! - `mcp-call/raw-wasmtime`: the `echo` guest on raw wasmtime (new store, instantiate
//!   from an `InstancePre`, one `invoke`, drop): the floor.
//! - `mcp-call/warden-mcp-stdio-{none,batch,always}`: a `warden mcp` child process serving
//!   `echo` over stdio, its audit log synced as each fsync setting says (`always` is the
//!   default); each iteration writes one `tools/call` request line and reads its response
//!   line. That is JSON-RPC framing both ways, rmcp's dispatch, a task under the manifest
//!   (with its audit records written to a real log) and the result's JSON.
//! - `mcp-call/pipe-round-trip`: a request line through `cat` in a child process and
//!   back, the floor under any stdio server on this machine.
//! - `mcp-call/fdatasync`: a 300-byte append to a file and its `fdatasync`, which a call
//!   answered at fsync `always` waits for.
//! - `mcp-inflight/warden-mcp-stdio-always-8`: eight requests written at once to the
//!   default server, and the time until all eight are answered: no call of the eight
//!   waits longer than that. After criterion, 500 more rounds give the p50 of each
//!   call's own latency.
//!
//! The server is the release build of `warden` that cargo builds for this bench.

mod floor;
#[path = "../tests/all/guests.rs"]
mod guests;

use floor::{ECHO_INPUT as INPUT, McpServer, mean, median};

use criterion::Criterion;
use std::time::Duration;
use warden::{EngineConfig, Runtime};

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = guests::root().join("guest-examples/echo/manifest.toml");
    let _wasm = guests::guests().join("echo.wasm");
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();

    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let engine = runtime.engine().clone();
    let echo = floor::Echo::new(&engine);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut group = c.benchmark_group("mcp-call");
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| rt.block_on(echo.task(&engine, INPUT)))
    });
    let mut pipe = floor::PipeEcho::start();
    group.bench_function("pipe-round-trip", |b| b.iter(|| pipe.round_trip()));
    drop(pipe);
    let mut synced = std::fs::File::create(dir.path().join("synced")).unwrap();
    group.bench_function("fdatasync", |b| {
        b.iter(|| {
            use std::io::Write;
            synced.write_all(&[b'x'; 300]).unwrap();
            synced.sync_data().unwrap();
        })
    });
    drop(synced);
    let key = dir.path().join("host.key");
    let mut servers: Vec<(&str, McpServer)> = FSYNC
        .iter()
        .map(|&fsync| {
            let audit = dir.path().join(format!("audit-{fsync}.jsonl"));
            let extra = ["--fsync", fsync, "--key", key.to_str().unwrap()];
            (
                fsync,
                McpServer::start(&manifest, &audit, dir.path(), &extra),
            )
        })
        .collect();
    for (fsync, server) in &mut servers {
        group.bench_function(format!("warden-mcp-stdio-{fsync}"), |b| {
            b.iter(|| server.calls(1))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("mcp-inflight");
    let (_, always) = servers.iter_mut().find(|(f, _)| *f == "always").unwrap();
    group.bench_function(format!("warden-mcp-stdio-always-{IN_FLIGHT}"), |b| {
        b.iter(|| always.calls(IN_FLIGHT))
    });
    group.finish();
    // Criterion times the eighth answer; the target is about a call's own latency.
    let mut latencies: Vec<Duration> = (0..LATENCY_ROUNDS)
        .flat_map(|_| always.calls_timed(IN_FLIGHT))
        .collect();
    latencies.sort();
    drop(servers);
    c.final_summary();
    report(latencies[latencies.len() / 2]);
}

const LATENCY_ROUNDS: usize = 500;

const FSYNC: [&str; 3] = ["none", "batch", "always"];
const IN_FLIGHT: usize = 8;

fn report(inflight_p50: Duration) {
    let (Some(raw), Some(pipe), Some(sync)) = (
        mean("mcp-call", "raw-wasmtime"),
        median("mcp-call", "pipe-round-trip"),
        median("mcp-call", "fdatasync"),
    ) else {
        println!("tools/call ratio: criterion estimates not found");
        return;
    };
    println!(
        "tools/call round trip (echo): raw wasmtime {:.1} µs; a line through `cat` and back (median) {:.1} µs: no stdio server answers faster than their sum, {:.1} µs",
        raw / 1e3,
        pipe / 1e3,
        (raw + pipe) / 1e3
    );
    println!(
        "a 300-byte append and its fdatasync (median): {:.1} µs: fsync always adds one to a call's answer",
        sync / 1e3
    );
    // The targets are p50s: criterion's median of its samples' per-iteration times.
    for fsync in FSYNC {
        let name = format!("warden-mcp-stdio-{fsync}");
        if let (Some(t), Some(p50)) = (mean("mcp-call", &name), median("mcp-call", &name)) {
            let floor = raw + pipe + if fsync == "always" { sync } else { 0.0 };
            println!(
                "tools/call round trip (echo), warden mcp over stdio, fsync {fsync}: mean {:.1} µs ({:.2}x raw), median {:.1} µs, of which {:.1} µs above that floor",
                t / 1e3,
                t / raw,
                p50 / 1e3,
                (p50 - floor) / 1e3
            );
        }
    }
    let name = format!("warden-mcp-stdio-always-{IN_FLIGHT}");
    if let (Some(t), Some(p50)) = (mean("mcp-inflight", &name), median("mcp-inflight", &name)) {
        println!(
            "tools/call, {IN_FLIGHT} in flight, fsync always: all answered in {:.1} µs (median {:.1} µs; {:.1} µs a call)",
            t / 1e3,
            p50 / 1e3,
            t / 1e3 / IN_FLIGHT as f64
        );
    }
    println!(
        "tools/call, {IN_FLIGHT} in flight, fsync always: p50 of each call's own latency {:.1} µs ({LATENCY_ROUNDS} rounds)",
        inflight_p50.as_secs_f64() * 1e6
    );
}
