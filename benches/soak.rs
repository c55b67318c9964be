//! A soak of `warden mcp`: one server process, driven for a given time by clients that
//! call `file-search` with a mix of allowed, denied and failing calls, watched from
//! outside as an operator would watch it.
//!
//! ```text
//! cargo bench --bench soak -- [--duration 60s] [--clients 4] [--transport http|stdio]
//!                             [--interval 10s] [--fsync none|batch|always] [--keep DIR]
//!                             [--max-growth 8] [--segment-size SIZE] [--compress]
//!                             [--retain-segments N]
//! ```
//!
//! Every interval it prints one line: calls per second, p50 and p99 latency of the
//! interval's calls, the server's resident memory and open file descriptors (from
//! `/proc`), records written per second and the log's size on disk. At the end it stops
//! the server, runs `warden audit verify` on the log, and fails (exit 1) if the log is not
//! intact, if any call was answered other than as its kind expects, if the server died, or
//! if after the first interval (the warm-up) its resident memory grew by more than
//! `--max-growth` MiB or its descriptors by more than 8 (calls hold none once answered).
//!
//! Over `http` each client is its own MCP session on its own connection (Streamable HTTP,
//! `--http 127.0.0.1:0`, a bearer token file); over `stdio` the clients share the one
//! stream, each waiting for its own answers. The mix, by call number: 8 in 10 search the
//! sample tree (`allowed`), 1 in 10 asks for a root outside the grant (`denied`: the tool
//! answers with an error naming the path), 1 in 10 sends an argument the tool refuses
//! (`failing`).
//!
//! The server is the release build of `warden` that cargo builds for this bench; the log,
//! key and token live in a temporary directory unless `--keep DIR` names one.

#[path = "../tests/all/guests.rs"]
mod guests;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const ALLOWED: &str = r#"{"query":"needle"}"#;
const DENIED: &str = r#"{"query":"root","root":"/etc"}"#;
const FAILING: &str = r#"{"query":"needle","colour":"red"}"#;

struct Options {
    duration: Duration,
    interval: Duration,
    clients: usize,
    http: bool,
    fsync: String,
    keep: Option<PathBuf>,
    /// How much resident memory may grow after the first interval (the warm-up).
    max_growth_mib: f64,
    /// Passed to the server: `--segment-size`, and `--compress`.
    segment_size: Option<String>,
    compress: bool,
    /// Passed to the server: `--retain-segments`.
    retain_segments: Option<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |at| text.split_at(at));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration such as 90s, 30m or 2h"))?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{text:?}: the unit is s, m or h")),
    }
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        duration: Duration::from_secs(60),
        interval: Duration::from_secs(10),
        clients: 4,
        http: true,
        fsync: "none".into(),
        keep: None,
        max_growth_mib: 8.0,
        segment_size: None,
        compress: false,
        retain_segments: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--duration" => o.duration = parse_duration(&value()?)?,
            "--interval" => o.interval = parse_duration(&value()?)?,
            "--clients" => {
                o.clients = value()?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--clients: a positive number")?
            }
            "--transport" => {
                o.http = match value()?.as_str() {
                    "http" => true,
                    "stdio" => false,
                    other => return Err(format!("--transport {other}: http or stdio")),
                }
            }
            "--fsync" => o.fsync = value()?,
            "--keep" => o.keep = Some(PathBuf::from(value()?)),
            "--max-growth" => {
                o.max_growth_mib = value()?
                    .trim_end_matches("MiB")
                    .parse()
                    .map_err(|_| "--max-growth: MiB, e.g. 8")?
            }
            "--segment-size" => o.segment_size = Some(value()?),
            "--compress" => o.compress = true,
            "--retain-segments" => o.retain_segments = Some(value()?),
            // What `cargo bench` passes to every bench binary.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// What one call is, and what its answer must be.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Allowed,
    Denied,
    Failing,
}

impl Kind {
    fn of(n: u64) -> Kind {
        match n % 10 {
            3 => Kind::Denied,
            7 => Kind::Failing,
            _ => Kind::Allowed,
        }
    }

    fn arguments(self) -> &'static str {
        match self {
            Kind::Allowed => ALLOWED,
            Kind::Denied => DENIED,
            Kind::Failing => FAILING,
        }
    }

    /// Whether `response` (a JSON-RPC response line) is what this kind of call gets.
    fn answered(self, response: &serde_json::Value) -> Result<(), String> {
        let result = response
            .get("result")
            .ok_or_else(|| format!("no result: {response}"))?;
        let is_error = result.get("isError").and_then(|e| e.as_bool()) == Some(true);
        let text = result.to_string();
        let ok = match self {
            Kind::Allowed => !is_error && text.contains("files_scanned"),
            Kind::Denied => is_error || text.contains("/etc"),
            Kind::Failing => is_error && text.contains("colour"),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{self:?} call answered {text}"))
        }
    }
}

/// What the clients have done, read and reset by the monitor each interval.
#[derive(Default)]
struct Tally {
    latencies: Mutex<Vec<Duration>>,
    calls: AtomicU64,
    wrong: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, kind: Kind, took: Duration, response: &serde_json::Value) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.latencies.lock().unwrap().push(took);
        if let Err(e) = kind.answered(response) {
            let mut wrong = self.wrong.lock().unwrap();
            if wrong.len() < 10 {
                wrong.push(e);
            }
        }
    }
}

fn request(id: u64, method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
}

fn call(id: u64, kind: Kind) -> String {
    request(
        id,
        "tools/call",
        &format!(
            r#"{{"name":"file-search","arguments":{}}}"#,
            kind.arguments()
        ),
    )
}

const INITIALIZE: &str = r#"{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"warden-soak","version":"1"}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

// ---- stdio ------------------------------------------------------------------------------

/// Clients sharing the server's stdin and stdout: a reader thread hands each response to
/// the client whose id it answers.
fn stdio_clients(server: &mut Child, o: &Options, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut to = server.stdin.take().unwrap();
    let from = BufReader::new(server.stdout.take().unwrap());
    let waiting: Arc<Mutex<HashMap<u64, mpsc::Sender<serde_json::Value>>>> = Arc::default();
    let (first, answer) = mpsc::channel();
    waiting.lock().unwrap().insert(0, first);
    {
        let waiting = waiting.clone();
        std::thread::spawn(move || {
            for line in from.lines() {
                let Ok(line) = line else { break };
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let Some(id) = value.get("id").and_then(|i| i.as_u64()) else {
                    continue;
                };
                if let Some(tx) = waiting.lock().unwrap().remove(&id) {
                    let _ = tx.send(value);
                }
            }
        });
    }
    writeln!(to, "{}", request(0, "initialize", INITIALIZE)).unwrap();
    answer.recv().expect("the server answers initialize");
    writeln!(to, "{INITIALIZED}").unwrap();
    let to = Arc::new(Mutex::new(to));
    let next = Arc::new(AtomicU64::new(1));
    for _ in 0..o.clients {
        let (to, next, waiting) = (to.clone(), next.clone(), waiting.clone());
        let (tally, stop) = (tally.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let id = next.fetch_add(1, Ordering::Relaxed);
                let kind = Kind::of(id);
                let (tx, rx) = mpsc::channel();
                waiting.lock().unwrap().insert(id, tx);
                let start = Instant::now();
                if writeln!(to.lock().unwrap(), "{}", call(id, kind)).is_err() {
                    return;
                }
                let Ok(response) = rx.recv() else { return };
                tally.record(kind, start.elapsed(), &response);
            }
        });
    }
}

// ---- Streamable HTTP --------------------------------------------------------------------

/// One MCP session over one kept-alive HTTP/1.1 connection.
struct HttpClient {
    stream: BufReader<TcpStream>,
    addr: String,
    token: String,
    session: Option<String>,
}

impl HttpClient {
    fn connect(addr: &str, token: &str) -> std::io::Result<HttpClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let mut client = HttpClient {
            stream: BufReader::new(stream),
            addr: addr.into(),
            token: token.into(),
            session: None,
        };
        let (headers, _) = client.post(&request(0, "initialize", INITIALIZE))?;
        client.session = headers.get("mcp-session-id").cloned();
        client.post(INITIALIZED)?;
        Ok(client)
    }

    /// POSTs one JSON-RPC message; returns the response headers and the JSON-RPC
    /// message of the answer, if any (a JSON body, or the last `data:` of an SSE body).
    fn post(
        &mut self,
        body: &str,
    ) -> std::io::Result<(HashMap<String, String>, Option<serde_json::Value>)> {
        let mut head = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
             MCP-Protocol-Version: 2025-11-25\r\nContent-Length: {}\r\n",
            self.addr,
            self.token,
            body.len()
        );
        if let Some(s) = &self.session {
            head.push_str(&format!("Mcp-Session-Id: {s}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let bad = |m: String| std::io::Error::other(m);
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("not an HTTP status line: {line:?}")))?;
        let mut headers = HashMap::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
            let mut body = Vec::new();
            loop {
                line.clear();
                self.stream.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
                let mut chunk = vec![0; size + 2];
                self.stream.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
            body
        } else {
            let len: usize = headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            self.stream.read_exact(&mut body)?;
            body
        };
        if !(200..300).contains(&status) {
            return Err(bad(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        let text = String::from_utf8_lossy(&body);
        let json = if headers
            .get("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream"))
        {
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok())
                .find(|v| v.get("id").is_some())
        } else {
            serde_json::from_str(&text).ok()
        };
        Ok((headers, json))
    }
}

fn http_clients(addr: &str, token: &str, o: &Options, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    for c in 0..o.clients {
        let mut client = HttpClient::connect(addr, token).expect("an MCP session over HTTP");
        let (tally, stop) = (tally.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut id = c as u64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                let kind = Kind::of(id);
                let start = Instant::now();
                match client.post(&call(id, kind)) {
                    Ok((_, Some(response))) => tally.record(kind, start.elapsed(), &response),
                    Ok((_, None)) => tally.record(kind, start.elapsed(), &serde_json::Value::Null),
                    Err(e) => {
                        tally.wrong.lock().unwrap().push(format!("client {c}: {e}"));
                        return;
                    }
                }
            }
        });
    }
}

// ---- watching the server ----------------------------------------------------------------

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Counts the log's records as it grows, reading only what was added to the
/// open segment: the records are its first seq plus its lines.
struct LogWatch {
    path: PathBuf,
    inode: u64,
    first: u64,
    read: u64,
    lines: u64,
}

impl LogWatch {
    fn update(&mut self) -> (u64, u64) {
        self.count();
        (self.first + self.lines, self.read)
    }

    fn count(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        let Ok(meta) = file.metadata() else { return };
        if meta.ino() != self.inode {
            // A new segment: it starts where the closed one ended.
            let mut head = String::new();
            let _ = BufReader::new(&file).read_line(&mut head);
            let Some(seq) = serde_json::from_str::<serde_json::Value>(&head)
                .ok()
                .and_then(|v| v["seq"].as_u64())
            else {
                return;
            };
            (self.inode, self.first, self.read, self.lines) = (meta.ino(), seq, 0, 0);
        }
        use std::io::Seek;
        let _ = file.seek(std::io::SeekFrom::Start(self.read));
        let mut buf = vec![0; 1 << 16];
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            self.lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            self.read += n as u64;
        }
    }
}

fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("audit"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    let temp = tempfile::tempdir().unwrap();
    let dir = o.keep.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.jsonl");
    let manifest = guests::root().join("guest-examples/file-search/manifest.toml");
    let _wasm = guests::guests().join("file_search.wasm");
    let warden = env!("CARGO_BIN_EXE_warden");

    let mut cmd = Command::new(warden);
    cmd.arg("mcp")
        .arg(&manifest)
        .arg("--audit")
        .arg(&log)
        .args(["--fsync", &o.fsync, "--key"])
        .arg(dir.join("host.key"))
        .env("XDG_STATE_HOME", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(size) = &o.segment_size {
        cmd.args(["--segment-size", size]);
    }
    if o.compress {
        cmd.arg("--compress");
    }
    if let Some(n) = &o.retain_segments {
        cmd.args(["--retain-segments", n]);
    }
    let token = "soak-".to_string() + &"0123456789abcdef".repeat(3);
    if o.http {
        let token_file = dir.join("token");
        std::fs::write(&token_file, &token).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        cmd.args(["--http", "127.0.0.1:0", "--token-file"])
            .arg(&token_file);
    }
    let mut server = cmd.spawn().expect("warden mcp starts");
    let pid = server.id();
    let mut stderr = BufReader::new(server.stderr.take().unwrap());
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    if o.http {
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                eprintln!(
                    "soak: warden mcp exited before serving: {:?}",
                    server.wait()
                );
                return ExitCode::from(1);
            }
            if let Some(url) = line.trim().strip_prefix("warden mcp: serving http://") {
                break url.trim_end_matches("/mcp").to_owned();
            }
        };
        http_clients(&addr, &token, &o, tally.clone(), stop.clone());
    } else {
        stdio_clients(&mut server, &o, tally.clone(), stop.clone());
    }
    // The server's stderr, drained so that it never blocks on a full pipe.
    let said = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let said = said.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let mut said = said.lock().unwrap();
                if said.len() < 20 {
                    said.push(line);
                }
            }
        });
    }

    println!(
        "soak: warden mcp (pid {pid}) over {}, {} clients, fsync {}, for {:?}; log {}",
        if o.http { "Streamable HTTP" } else { "stdio" },
        o.clients,
        o.fsync,
        o.duration,
        log.display()
    );
    println!(
        "{:>7} {:>9} {:>8} {:>8} {:>9} {:>5} {:>10} {:>11} {:>9}",
        "t(s)",
        "calls",
        "calls/s",
        "p50(ms)",
        "p99(ms)",
        "fds",
        "rss(MiB)",
        "records/s",
        "log(MiB)"
    );
    let mut watch = LogWatch {
        path: log.clone(),
        inode: 0,
        first: 0,
        read: 0,
        lines: 0,
    };
    let start = Instant::now();
    let (mut last_calls, mut last_records, mut last_t) = (0u64, 0u64, Instant::now());
    let mut died = None;
    // (RSS KiB, FDs) after the warm-up, and the most seen since.
    let mut warm: Option<(u64, usize)> = None;
    let mut peak = (0u64, 0usize);
    while start.elapsed() < o.duration {
        std::thread::sleep(o.interval.min(o.duration.saturating_sub(start.elapsed())));
        if let Ok(Some(status)) = server.try_wait() {
            died = Some(status);
            break;
        }
        let mut lat = std::mem::take(&mut *tally.latencies.lock().unwrap());
        lat.sort();
        let calls = tally.calls.load(Ordering::Relaxed);
        let (records, _) = watch.update();
        let secs = last_t.elapsed().as_secs_f64();
        let (rss, fds) = (rss_kib(pid).unwrap_or(0), open_fds(pid).unwrap_or(0));
        match warm {
            None => warm = Some((rss, fds)),
            Some(_) => peak = (peak.0.max(rss), peak.1.max(fds)),
        }
        println!(
            "{:>7.0} {:>9} {:>8.0} {:>8.2} {:>9.2} {:>5} {:>10.1} {:>11.0} {:>9.1}",
            start.elapsed().as_secs_f64(),
            calls,
            (calls - last_calls) as f64 / secs,
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            fds,
            rss as f64 / 1024.0,
            (records - last_records) as f64 / secs,
            disk_bytes(&dir) as f64 / (1 << 20) as f64,
        );
        (last_calls, last_records, last_t) = (calls, records, Instant::now());
    }
    stop.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    let calls = tally.calls.load(Ordering::Relaxed);
    // SIGTERM: the HTTP server's way to stop; stdio ends with its input too.
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = server.wait();
    let (records, _) = watch.update();
    let bytes = disk_bytes(&dir);
    let mut failed = false;
    if let Some(status) = died {
        println!("soak: the server died: {status}");
        for line in said.lock().unwrap().iter() {
            println!("  {line}");
        }
        failed = true;
    }
    if let Some((rss, fds)) = warm {
        let grew = peak.0.saturating_sub(rss) as f64 / 1024.0;
        if grew > o.max_growth_mib {
            println!(
                "soak: resident memory grew by {grew:.1} MiB after the warm-up ({:.1} to {:.1} \
                 MiB), more than --max-growth {}",
                rss as f64 / 1024.0,
                peak.0 as f64 / 1024.0,
                o.max_growth_mib
            );
            failed = true;
        }
        if peak.1 > fds + 8 {
            println!(
                "soak: open descriptors grew from {fds} to {} after the warm-up",
                peak.1
            );
            failed = true;
        }
    }
    let wrong = tally.wrong.lock().unwrap();
    for w in wrong.iter() {
        println!("soak: wrong answer: {w}");
    }
    failed |= !wrong.is_empty();
    let verify = Command::new(warden)
        .args(["audit", "verify"])
        .arg(&log)
        .env("WARDEN_KEY", dir.join("host.key"))
        .env("XDG_STATE_HOME", &dir)
        .output()
        .expect("warden audit verify runs");
    let says = String::from_utf8_lossy(&verify.stdout);
    // With retention the disk holds only the newest records: the bytes per
    // call are those of the records kept, at the run's records per call.
    let retired = says
        .lines()
        .find_map(|l| l.strip_prefix("retired: seq 0 to "))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |last| last + 1);
    let kept = records.saturating_sub(retired).max(1);
    let per_call = bytes as f64 / kept as f64 * records as f64 / calls.max(1) as f64;
    println!(
        "soak: {calls} calls, {records} records ({retired} retired), {per_call:.0} bytes on \
         disk per call (log, segments and checkpoints); audit verify: {}",
        says.lines().next().unwrap_or_default()
    );
    failed |= !verify.status.success();
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
