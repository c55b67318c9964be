//! What every bench shares: the raw-wasmtime store the floor runs on, and
//! the means criterion wrote, for the ratios printed at the end.

use warden_host_api::wit::ToolPre;
use warden_host_api::wit::log as wlog;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable, ResourceType};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Store data of the raw-wasmtime floor: plain wasmtime-wasi, no Warden.
pub struct Raw {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl warden_host_api::wit::log::Host for Raw {
    fn log(&mut self, _: warden_host_api::wit::log::Level, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[allow(dead_code)]
/// The raw floor's store for components that import `wasi:http` too: the
/// store above plus wasmtime-wasi-http's context, sending through
/// wasmtime-wasi-http's default hooks.
pub struct RawHttp {
    pub raw: Raw,
    pub http: WasiHttpCtx,
}

#[allow(dead_code)]
impl RawHttp {
    /// A store's data with this WASI context.
    pub fn new(wasi: WasiCtx) -> RawHttp {
        RawHttp {
            raw: Raw {
                wasi,
                table: ResourceTable::new(),
            },
            http: WasiHttpCtx::new(),
        }
    }
}

impl WasiView for RawHttp {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.raw.ctx()
    }
}

impl WasiHttpView for RawHttp {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.raw.table,
            hooks: Default::default(),
        }
    }
}

/// `component` linked for the raw floor: plain wasmtime-wasi and
/// wasmtime-wasi-http, a log that drops lines, and `warden:tool/secrets` as
/// traps, since no bench calls it.
#[allow(dead_code)]
pub fn raw_tool(engine: &wasmtime::Engine, component: &Component) -> ToolPre<RawHttp> {
    let mut linker: Linker<RawHttp> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
    wlog::add_to_linker::<RawHttp, HasSelf<Raw>>(&mut linker, |t| &mut t.raw).unwrap();
    // Not `define_unknown_imports_as_traps`: it would also stub the WASI
    // interfaces the component imports at a newer patch version than
    // wasmtime-wasi names, shadowing the real ones that semver matching finds.
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if !name.starts_with("warden:tool/secrets@") {
            continue;
        }
        let mut stub = linker.instance(name).unwrap();
        for (export, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::Resource(_) => stub
                    .resource(export, ResourceType::host::<()>(), |_, _| Ok(()))
                    .unwrap(),
                ComponentItem::ComponentFunc(_) => stub
                    .func_new(export, |_, _, _, _| {
                        Err(wasmtime::Error::msg("the raw floor has no secrets"))
                    })
                    .unwrap(),
                _ => {}
            }
        }
    }
    ToolPre::new(linker.instantiate_pre(component).unwrap()).unwrap()
}

/// A real audit log at `dir/name`, written with `fsync` and otherwise the defaults.
#[allow(dead_code)]
pub fn log(
    dir: &std::path::Path,
    name: &str,
    fsync: warden::audit::log::Fsync,
) -> std::sync::Arc<warden::audit::log::AuditLog> {
    use warden::audit::log::{AuditLog, LogOptions};
    let key = warden::audit::checkpoint::HostKey::generate("bench/warden-audit").unwrap();
    let options = LogOptions {
        fsync,
        ..LogOptions::default()
    };
    std::sync::Arc::new(AuditLog::open(&dir.join(name), key, options).unwrap())
}

/// The mean time of `group/name` in nanoseconds, from criterion's output.
pub fn mean(group: &str, name: &str) -> Option<f64> {
    estimate(group, name, "mean")
}

/// The median time of `group/name` in nanoseconds (of the per-iteration times of
/// criterion's samples), for targets stated as a p50.
#[allow(dead_code)]
pub fn median(group: &str, name: &str) -> Option<f64> {
    estimate(group, name, "median")
}

fn estimate(group: &str, name: &str, which: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::guests::root().join("target"))
        .join("criterion");
    let text =
        std::fs::read_to_string(dir.join(group).join(name).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v[which]["point_estimate"].as_f64()
}

/// The probe guest with one read-only grant, `/ro` holding `hello.txt`, for the benches
/// that price a host call: its `stat_loop` makes n `fs::metadata` calls in one task,
/// each a `metadata-hash-at` and a `stat-at`.
#[allow(dead_code)]
pub struct Probe {
    /// The directory granted as `/ro`'s parent.
    pub root: std::path::PathBuf,
    /// The probe component.
    pub wasm: std::path::PathBuf,
}

#[allow(dead_code)]
impl Probe {
    /// The probe's files under `dir`.
    pub fn new(dir: &std::path::Path) -> Probe {
        let root = dir.join("probe");
        std::fs::create_dir_all(root.join("ro")).unwrap();
        std::fs::write(root.join("ro/hello.txt"), "hello").unwrap();
        Probe {
            root,
            wasm: crate::guests::guests().join("probe.wasm"),
        }
    }

    /// Writes the manifest `NAME.toml` granting `/ro`, plus `extra` sections, and
    /// returns its path.
    pub fn manifest(&self, name: &str, extra: &str) -> std::path::PathBuf {
        let text = format!(
            "[tool]\nname = \"probe\"\ncomponent = {:?}\n\n[limits]\ntimeout = \"60s\"\n\n[[fs]]\nhost = \"ro\"\nguest = \"/ro\"\n{extra}",
            self.wasm.display().to_string()
        );
        let path = self.root.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The input that makes `calls` host calls.
    pub fn stat_loop(calls: u64) -> String {
        format!(r#"{{"op":"stat_loop","path":"/ro/hello.txt","n":{calls}}}"#)
    }

    /// One task on the raw floor: a store with `/ro` preopened, instantiate, invoke.
    pub async fn raw_task(&self, engine: &wasmtime::Engine, pre: &ToolPre<RawHttp>, input: &str) {
        let mut wasi = WasiCtx::builder();
        wasi.allow_blocking_current_thread(true);
        wasi.preopened_dir(
            self.root.join("ro"),
            "/ro",
            wasmtime_wasi::FsPerms::ReadOnly,
        )
        .unwrap();
        let mut store = wasmtime::Store::new(engine, RawHttp::new(wasi.build()));
        store.set_epoch_deadline(u64::MAX / 2);
        let tool = pre.instantiate_async(&mut store).await.unwrap();
        let out = tool.call_invoke(&mut store, input).await.unwrap();
        assert!(
            matches!(&out, Ok(s) if s.contains("\"ok\":true")),
            "{out:?}"
        );
    }
}

/// The `echo` guest on the raw floor, the cheapest possible task: the baseline of the
/// per-task benches.
#[allow(dead_code)]
pub struct Echo {
    pre: ToolPre<Raw>,
}

#[allow(dead_code)]
impl Echo {
    /// `echo` compiled for `engine` and linked with plain wasmtime-wasi.
    pub fn new(engine: &wasmtime::Engine) -> Echo {
        let wasm = crate::guests::guests().join("echo.wasm");
        let component = Component::from_file(engine, wasm).unwrap();
        let mut linker: Linker<Raw> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        linker.instance("warden:tool/types@0.1.0").unwrap();
        Echo {
            pre: ToolPre::new(linker.instantiate_pre(&component).unwrap()).unwrap(),
        }
    }

    /// One task: a new store, instantiate, one `invoke` of `input`, drop.
    pub async fn task(&self, engine: &wasmtime::Engine, input: &str) {
        let raw = Raw {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = wasmtime::Store::new(engine, raw);
        store.set_epoch_deadline(u64::MAX / 2);
        let tool = self.pre.instantiate_async(&mut store).await.unwrap();
        let out = tool.call_invoke(&mut store, input).await.unwrap();
        assert!(matches!(out.as_deref(), Ok(echoed) if echoed == input));
    }
}

/// The input every echo bench sends.
#[allow(dead_code)]
pub const ECHO_INPUT: &str = r#"{"hello":"world"}"#;

/// A `warden mcp` child (the release build cargo makes for the bench) serving over stdio,
/// initialized, its records in `audit`; `extra` follows `mcp MANIFEST --audit AUDIT`.
#[allow(dead_code)]
pub struct McpServer {
    _child: Reaped,
    /// Buffered, as a client writes: each request in one write, and requests sent
    /// together in one.
    to: std::io::BufWriter<std::process::ChildStdin>,
    from: std::io::BufReader<std::process::ChildStdout>,
    line: String,
    id: u64,
}

#[allow(dead_code)]
impl McpServer {
    pub fn start(
        manifest: &std::path::Path,
        audit: &std::path::Path,
        state: &std::path::Path,
        extra: &[&str],
    ) -> McpServer {
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("mcp")
            .arg(manifest)
            .arg("--audit")
            .arg(audit)
            .args(extra)
            .env("XDG_STATE_HOME", state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut server = McpServer {
            to: std::io::BufWriter::new(child.stdin.take().unwrap()),
            from: std::io::BufReader::new(child.stdout.take().unwrap()),
            _child: Reaped(child),
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
        use std::io::Write;
        self.to.write_all(request.as_bytes()).unwrap();
        self.to.write_all(b"\n").unwrap();
    }

    fn answer(&mut self) {
        use std::io::{BufRead, Write};
        self.to.flush().unwrap();
        self.line.clear();
        self.from.read_line(&mut self.line).unwrap();
        assert!(
            self.line.contains("\"result\"") && !self.line.contains("\"isError\":true"),
            "{}",
            self.line
        );
    }

    /// `n` `tools/call` requests to `echo` written at once, then their `n` answers read.
    pub fn calls(&mut self, n: usize) {
        for _ in 0..n {
            self.id += 1;
            let request = call_line(self.id);
            self.send(&request);
        }
        for _ in 0..n {
            self.answer();
        }
    }

    /// As [`McpServer::calls`], returning how long each answer took from the moment
    /// the requests were written.
    pub fn calls_timed(&mut self, n: usize) -> Vec<std::time::Duration> {
        let start = std::time::Instant::now();
        for _ in 0..n {
            self.id += 1;
            let request = call_line(self.id);
            self.send(&request);
        }
        (0..n)
            .map(|_| {
                self.answer();
                start.elapsed()
            })
            .collect()
    }
}

/// A `tools/call` request to `echo`, as one JSON-RPC line without its newline.
fn call_line(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{ECHO_INPUT}}}}}"#
    )
}

/// The floor under any stdio round trip: `cat` in a child process, echoing each
/// request line back over the same kind of pipes a client and `warden mcp` use. On
/// a VM whose idle vCPUs halt, waking the other process costs more than the
/// task itself, and no server can answer faster than this.
pub struct PipeEcho {
    _child: Reaped,
    to: std::process::ChildStdin,
    from: std::io::BufReader<std::process::ChildStdout>,
    request: String,
    line: String,
}

#[allow(dead_code)]
impl PipeEcho {
    pub fn start() -> PipeEcho {
        use std::process::{Command, Stdio};
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cat, for the pipe round-trip floor");
        PipeEcho {
            to: child.stdin.take().unwrap(),
            from: std::io::BufReader::new(child.stdout.take().unwrap()),
            _child: Reaped(child),
            request: format!("{}\n", call_line(1)),
            line: String::new(),
        }
    }

    /// One line the size of a `tools/call` request, there and back.
    pub fn round_trip(&mut self) {
        use std::io::{BufRead, Write};
        self.to.write_all(self.request.as_bytes()).unwrap();
        self.to.flush().unwrap();
        self.line.clear();
        self.from.read_line(&mut self.line).unwrap();
        assert_eq!(self.line, self.request);
    }
}

/// A child process a bench started, killed and waited for when the bench is done with it.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
