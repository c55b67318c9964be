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
//! - `mcp-inflight/warden-mcp-stdio-always-8`: eight requests written at once to the
//!   default server, and the time until all eight are answered: no call of the eight
//!   waits longer than that.
//!
//! The server is the release build of `warden` that cargo builds for this bench.

mod floor;
#[path = "../tests/all/guests.rs"]
mod guests;

use floor::mean;

use criterion::Criterion;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
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

    let mut group = c.benchmark_group("mcp-call");
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| rt.block_on(echo.task(&engine, INPUT)))
    });
    let mut servers: Vec<Server> = FSYNC
        .iter()
        .map(|fsync| Server::start(&manifest, dir.path(), fsync))
        .collect();
    for server in &mut servers {
        group.bench_function(format!("warden-mcp-stdio-{}", server.fsync), |b| {
            b.iter(|| server.calls(1))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("mcp-inflight");
    let always = servers.iter_mut().find(|s| s.fsync == "always").unwrap();
    group.bench_function(format!("warden-mcp-stdio-always-{IN_FLIGHT}"), |b| {
        b.iter(|| always.calls(IN_FLIGHT))
    });
    group.finish();
    drop(servers);
    c.final_summary();
    report();
}

const FSYNC: [&str; 3] = ["none", "batch", "always"];
const IN_FLIGHT: usize = 8;

/// A `warden mcp` child serving `echo` over stdio, initialized.
struct Server {
    fsync: &'static str,
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
    line: String,
    id: u64,
}

impl Server {
    fn start(manifest: &Path, dir: &Path, fsync: &'static str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("mcp")
            .arg(manifest)
            .arg("--audit")
            .arg(dir.join(format!("audit-{fsync}.jsonl")))
            .args(["--fsync", fsync, "--key"])
            .arg(dir.join("host.key"))
            .env("XDG_STATE_HOME", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let to = child.stdin.take().unwrap();
        let from = BufReader::new(child.stdout.take().unwrap());
        let mut server = Server {
            fsync,
            child,
            to,
            from,
            line: String::new(),
            id: 0,
        };
        server.send(
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#,
        );
        server.answer();
        server.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        server
    }

    fn send(&mut self, request: &str) {
        self.to.write_all(request.as_bytes()).unwrap();
        self.to.write_all(b"\n").unwrap();
    }

    fn answer(&mut self) {
        self.to.flush().unwrap();
        self.line.clear();
        self.from.read_line(&mut self.line).unwrap();
        assert!(self.line.contains("\"result\""), "{}", self.line);
    }

    /// `n` `tools/call` requests written at once, then their `n` answers read.
    fn calls(&mut self, n: usize) {
        for _ in 0..n {
            self.id += 1;
            let request = format!(
                r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"echo","arguments":{INPUT}}}}}"#,
                self.id
            );
            self.send(&request);
        }
        for _ in 0..n {
            self.answer();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn report() {
    let Some(raw) = mean("mcp-call", "raw-wasmtime") else {
        println!("tools/call ratio: criterion estimates not found");
        return;
    };
    println!(
        "tools/call round trip (echo): raw wasmtime {:.1} µs",
        raw / 1e3
    );
    for fsync in FSYNC {
        if let Some(t) = mean("mcp-call", &format!("warden-mcp-stdio-{fsync}")) {
            println!(
                "tools/call round trip (echo), warden mcp over stdio, fsync {fsync}: {:.1} µs, {:.2}x raw",
                t / 1e3,
                t / raw
            );
        }
    }
    if let Some(t) = mean(
        "mcp-inflight",
        &format!("warden-mcp-stdio-always-{IN_FLIGHT}"),
    ) {
        println!(
            "tools/call, {IN_FLIGHT} in flight, fsync always: all answered in {:.1} µs ({:.1} µs a call)",
            t / 1e3,
            t / 1e3 / IN_FLIGHT as f64
        );
    }
}
