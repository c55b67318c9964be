//! The latency of one MCP `tools/call` round trip through `warden mcp`, against raw
//! wasmtime running the same tool, in one run.
//!
//! - `mcp-call/raw-wasmtime`: the `echo` guest on raw wasmtime (new store, instantiate
//!   from an `InstancePre`, one `invoke`, drop): the floor.
//! - `mcp-call/warden-mcp-stdio`: a `warden mcp` child process serving `echo` over stdio;
//!   each iteration writes one `tools/call` request line and reads its response line. That
//!   is JSON-RPC framing both ways, rmcp's dispatch, a task under the manifest (with its
//!   audit records written to a real log, fsync `none`) and the result's JSON.
//!
//! The server is the release build of `warden` that cargo builds for this bench.

mod floor;
#[path = "../tests/all/guests.rs"]
mod guests;

use floor::mean;

use criterion::Criterion;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use warden::{EngineConfig, Runtime};

const INPUT: &str = r#"{"hello":"world"}"#;

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

    let mut server = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("mcp")
        .arg(&manifest)
        .arg("--audit")
        .arg(dir.path().join("audit.jsonl"))
        .args(["--fsync", "none", "--key"])
        .arg(dir.path().join("host.key"))
        .env("XDG_STATE_HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut to = server.stdin.take().unwrap();
    let mut from = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    let mut exchange = |request: &str, answered: bool| {
        to.write_all(request.as_bytes()).unwrap();
        to.write_all(b"\n").unwrap();
        to.flush().unwrap();
        if answered {
            line.clear();
            from.read_line(&mut line).unwrap();
            assert!(line.contains("\"result\""), "{line}");
        }
    };
    exchange(
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#,
        true,
    );
    exchange(
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        false,
    );

    let mut group = c.benchmark_group("mcp-call");
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| rt.block_on(echo.task(&engine, INPUT)))
    });
    let mut id = 0u64;
    group.bench_function("warden-mcp-stdio", |b| {
        b.iter(|| {
            id += 1;
            let request = format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{INPUT}}}}}"#
            );
            exchange(&request, true);
        })
    });
    group.finish();
    let _ = server.kill();
    let _ = server.wait();
    c.final_summary();
    report();
}

fn report() {
    match (
        mean("mcp-call", "raw-wasmtime"),
        mean("mcp-call", "warden-mcp-stdio"),
    ) {
        (Some(raw), Some(mcp)) => println!(
            "tools/call round trip (echo): raw wasmtime {:.1} µs, warden mcp over stdio {:.1} µs, ratio {:.2}x",
            raw / 1e3,
            mcp / 1e3,
            mcp / raw
        ),
        _ => println!("tools/call ratio: criterion estimates not found"),
    }
}
