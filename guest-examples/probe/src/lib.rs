//! `probe`: the attacker that Warden's security tests aim at the sandbox.
//!
//! Each op tries one thing with ordinary `std` and reports exactly what the
//! guest saw, so a test can assert on the guest's view as well as on the audit
//! log. An op that the sandbox refuses is a normal outcome here and comes back
//! as `{"ok": false, ...}`, never as a panic or a tool error: only malformed
//! input (unknown op, missing or mistyped field) is a `tool-error`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "warden:tool/tool",
    generate_all,
});

use serde_json::{Map, Value, json};
use std::fs;
use std::hint::black_box;
use std::io::{self, BufRead, BufReader, Write};
use std::time::{SystemTime, UNIX_EPOCH};

const MIB: usize = 1 << 20;

const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "op": {"enum": ["read", "write", "create_dir", "remove", "rename", "set_times",
                    "list", "metadata", "symlink", "hard_link", "env", "env_all",
                    "spin", "membomb", "bigout", "print", "log", "tcp", "resolve", "udp",
                    "tcp_listen", "time", "raw_open", "raw_stat", "set_times_at", "stat_loop",
                    "secret_hmac", "secret_reveal"]}
  },
  "required": ["op"]
}"#;

/// The input object, with accessors whose errors name the field.
struct Args(Map<String, Value>);

impl Args {
    fn str(&self, field: &str) -> Result<&str, ToolError> {
        match self.0.get(field) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(ToolError::InvalidInput(format!(
                "{field}: expected a string, found {other}"
            ))),
            None => Err(ToolError::InvalidInput(format!("{field}: missing"))),
        }
    }

    fn u64(&self, field: &str) -> Result<u64, ToolError> {
        match self.0.get(field) {
            Some(v) => v.as_u64().ok_or_else(|| {
                ToolError::InvalidInput(format!(
                    "{field}: expected a non-negative integer, found {v}"
                ))
            }),
            None => Err(ToolError::InvalidInput(format!("{field}: missing"))),
        }
    }

    fn usize(&self, field: &str) -> Result<usize, ToolError> {
        let n = self.u64(field)?;
        usize::try_from(n).map_err(|_| {
            ToolError::InvalidInput(format!("{field}: {n} does not fit in this guest's memory"))
        })
    }

    fn bool_or(&self, field: &str, default: bool) -> Result<bool, ToolError> {
        match self.0.get(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(ToolError::InvalidInput(format!(
                "{field}: expected a boolean, found {other}"
            ))),
        }
    }
}

/// `{"ok": false, "kind": "PermissionDenied", "error": "PermissionDenied: <message>"}`:
/// the kind alone for assertions, the message for humans.
fn io_failure(err: &io::Error) -> Value {
    let mut v = json!({
        "ok": false,
        "kind": format!("{:?}", err.kind()),
        "error": format!("{:?}: {err}", err.kind()),
    });
    if let Some(code) = err.raw_os_error() {
        v["errno"] = code.into();
    }
    v
}

/// Turns an io result into the report, adding `extra` fields on success.
fn report<T>(result: io::Result<T>, extra: impl FnOnce(T) -> Value) -> Value {
    match result {
        Ok(value) => {
            let mut v = json!({"ok": true});
            if let (Value::Object(out), Value::Object(more)) = (&mut v, extra(value)) {
                out.extend(more);
            }
            v
        }
        Err(err) => io_failure(&err),
    }
}

fn none<T>(_: T) -> Value {
    Value::Null
}

fn unix_nanos(t: SystemTime) -> Value {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_nanos() as u64).into(),
        // Before 1970: report it rather than pretend it is zero.
        Err(e) => json!(-(e.duration().as_nanos() as i64)),
    }
}

fn metadata(args: &Args) -> Result<Value, ToolError> {
    let path = args.str("path")?;
    // `follow: false` looks at a symlink itself instead of its target.
    let md = if args.bool_or("follow", true)? {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    };
    Ok(report(md, |md| {
        json!({
            "is_file": md.is_file(),
            "is_dir": md.is_dir(),
            "is_symlink": md.file_type().is_symlink(),
            "len": md.len(),
            "readonly": md.permissions().readonly(),
            "modified": md.modified().map(unix_nanos).unwrap_or(Value::Null),
        })
    }))
}

fn set_times(args: &Args) -> Result<Value, ToolError> {
    let path = args.str("path")?;
    // Read-only by default, so that the test separates "may open" from
    // "may change times": wasi lets a read-only descriptor try either.
    let write = args.bool_or("write", false)?;
    let file = match fs::OpenOptions::new().read(true).write(write).open(path) {
        Ok(file) => file,
        Err(err) => {
            let mut v = io_failure(&err);
            v["stage"] = "open".into();
            return Ok(v);
        }
    };
    let now = SystemTime::now();
    Ok(match file.set_modified(now) {
        Ok(()) => json!({"ok": true, "modified": unix_nanos(now)}),
        Err(err) => {
            let mut v = io_failure(&err);
            v["stage"] = "set_modified".into();
            v
        }
    })
}

fn list(args: &Args) -> Result<Value, ToolError> {
    let path = args.str("path")?;
    let names = fs::read_dir(path).and_then(|entries| {
        let mut names = entries
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<Vec<_>>>()?;
        names.sort();
        Ok(names)
    });
    Ok(report(names, |names| json!({"entries": names})))
}

/// The preopen that holds `path` and the rest of `path` below it, found the
/// way wasi-libc finds it: the longest guest path that is a whole-component
/// prefix of `path`.
fn preopen_for(path: &str) -> Option<(wasi::filesystem::types::Descriptor, String)> {
    use wasi::filesystem::preopens::get_directories;
    get_directories()
        .into_iter()
        .filter_map(|(dir, name)| {
            let name = name.trim_end_matches('/');
            let rest = path.strip_prefix(name)?;
            let rest = if name.is_empty() {
                rest.trim_start_matches('/')
            } else {
                rest.strip_prefix('/')?
            };
            Some((name.len(), dir, rest.to_owned()))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, dir, rest)| (dir, rest))
}

fn no_preopen(path: &str) -> Value {
    json!({
        "ok": false,
        "kind": "NotFound",
        "error": format!("NotFound: no preopened directory holds {path:?}"),
    })
}

/// The report of a `wasi:filesystem` call made directly. Kinds here are wasi
/// error-code names (e.g. "not-permitted"), not io::ErrorKind names: nothing
/// in std converted them.
fn wasi_report(result: Result<(), wasi::filesystem::types::ErrorCode>) -> Value {
    match result {
        Ok(()) => json!({"ok": true}),
        Err(code) => json!({
            "ok": false,
            "kind": code.name(),
            "error": format!("{}: {}", code.name(), code.message()),
        }),
    }
}

fn symlink(args: &Args) -> Result<Value, ToolError> {
    let target = args.str("target")?;
    let link = args.str("link")?;
    // std's `symlink_path` is still unstable (`wasi_ext`) on wasip2, so this
    // calls `wasi:filesystem` `symlink-at` itself, as an attacker would.
    let Some((dir, rel)) = preopen_for(link) else {
        return Ok(no_preopen(link));
    };
    Ok(wasi_report(dir.symlink_at(target, &rel)))
}

/// Sets `path`'s modification time to now with `set-times-at` on its preopen,
/// without opening it (std has no path-based set-times on wasip2); `follow`
/// (default true) follows a final symlink.
fn set_times_at(args: &Args) -> Result<Value, ToolError> {
    use wasi::filesystem::types::{NewTimestamp, PathFlags};
    let path = args.str("path")?;
    let flags = if args.bool_or("follow", true)? {
        PathFlags::SYMLINK_FOLLOW
    } else {
        PathFlags::empty()
    };
    let Some((dir, rel)) = preopen_for(path) else {
        return Ok(no_preopen(path));
    };
    Ok(wasi_report(dir.set_times_at(
        flags,
        &rel,
        NewTimestamp::NoChange,
        NewTimestamp::Now,
    )))
}

/// The preopened directory named by the `preopen` field, or what a raw call reports when
/// there is none.
fn preopen(args: &Args) -> Result<Result<wasi::filesystem::types::Descriptor, Value>, ToolError> {
    let name = args.str("preopen")?;
    Ok(wasi::filesystem::preopens::get_directories()
        .into_iter()
        .find(|(_, n)| n == name)
        .map(|(dir, _)| dir)
        .ok_or_else(|| {
            json!({
                "ok": false,
                "kind": "NotFound",
                "error": format!("NotFound: no preopened directory named {name:?}"),
            })
        }))
}

/// Calls `open-at` on the preopen named `preopen` with `path` exactly as
/// given, bypassing wasi-libc's path resolution: absolute paths and `..`
/// reach the host as an attacker would send them.
fn raw_open(args: &Args) -> Result<Value, ToolError> {
    use wasi::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
    let path = args.str("path")?;
    let dir = match preopen(args)? {
        Ok(dir) => dir,
        Err(missing) => return Ok(missing),
    };
    Ok(
        match dir.open_at(
            PathFlags::empty(),
            path,
            OpenFlags::empty(),
            DescriptorFlags::READ,
        ) {
            Ok(_) => json!({"ok": true}),
            Err(code) => json!({
                "ok": false,
                "kind": code.name(),
                "error": format!("{}: {}", code.name(), code.message()),
            }),
        },
    )
}

/// `stat-at` under a preopen, every field as WASI gives it (std's metadata hides the link
/// count and the status-change time).
fn raw_stat(args: &Args) -> Result<Value, ToolError> {
    use wasi::filesystem::types::PathFlags;
    let path = args.str("path")?;
    let flags = if args.bool_or("follow", true)? {
        PathFlags::SYMLINK_FOLLOW
    } else {
        PathFlags::empty()
    };
    let dir = match preopen(args)? {
        Ok(dir) => dir,
        Err(missing) => return Ok(missing),
    };
    let time = |t: Option<wasi::clocks::wall_clock::Datetime>| {
        t.map_or(Value::Null, |t| json!([t.seconds, t.nanoseconds]))
    };
    Ok(match dir.stat_at(flags, path) {
        Ok(stat) => json!({
            "ok": true,
            "type": format!("{:?}", stat.type_),
            "link_count": stat.link_count,
            "size": stat.size,
            "accessed": time(stat.data_access_timestamp),
            "modified": time(stat.data_modification_timestamp),
            "changed": time(stat.status_change_timestamp),
        }),
        Err(code) => json!({"ok": false, "kind": code.name()}),
    })
}

fn membomb(args: &Args) -> Result<Value, ToolError> {
    let want = args.usize("mib")?;
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..want {
        // try_reserve reports a failed memory.grow instead of aborting, so the
        // guest can say how far it got when the host refuses more memory.
        let mut block = Vec::new();
        if block.try_reserve_exact(MIB).is_err() || blocks.try_reserve(1).is_err() {
            break;
        }
        // Touch every byte so the pages are really committed, not just reserved.
        block.resize(MIB, 0xA5);
        blocks.push(black_box(block));
    }
    Ok(json!({"ok": blocks.len() == want, "asked_mib": want, "got_mib": blocks.len()}))
}

/// Grows linear memory by `mib` and counts the bytes of the new pages that are not zero:
/// what an earlier task in the same slot could have left behind, if the slot's memory were
/// not reset.
fn leftover(args: &Args) -> Result<Value, ToolError> {
    const PAGE: usize = 64 * 1024;
    let pages = args.usize("mib")? * MIB / PAGE;
    let old = core::arch::wasm32::memory_grow(0, pages);
    if old == usize::MAX {
        return Ok(json!({"ok": false, "grown": false}));
    }
    let (start, len) = (old * PAGE, pages * PAGE);
    let mut nonzero = 0usize;
    for addr in (start..start + len).step_by(8) {
        // SAFETY: the pages were just grown, are owned by nothing else, and are read once.
        let word = unsafe { core::ptr::read_volatile(addr as *const u64) };
        nonzero += (word != 0) as usize;
    }
    Ok(json!({"ok": true, "grown_bytes": len, "nonzero_words": nonzero}))
}

fn print(args: &Args) -> Result<Value, ToolError> {
    let bytes = args.usize("bytes")?;
    let chunk = [b'p'; 4096];
    let mut out = io::stdout().lock();
    let mut left = bytes;
    let mut result = Ok(());
    while left > 0 && result.is_ok() {
        let n = left.min(chunk.len());
        result = out.write_all(&chunk[..n]);
        left -= n;
    }
    let result = result.and_then(|()| out.flush());
    Ok(report(result, |()| json!({"printed": bytes})))
}

/// Connects to `addr` (`host:port`: a name goes through `wasi:sockets` name lookup, an IP
/// literal does not); with `send`, writes it and a newline and reads one line back.
fn tcp(args: &Args) -> Result<Value, ToolError> {
    let addr = args.str("addr")?;
    let send = match args.0.get("send") {
        None => None,
        Some(_) => Some(args.str("send")?),
    };
    let mut stream = match std::net::TcpStream::connect(addr) {
        Ok(stream) => stream,
        Err(err) => {
            let mut v = io_failure(&err);
            v["stage"] = "connect".into();
            return Ok(v);
        }
    };
    let peer = stream.peer_addr().map(|a| a.to_string()).ok();
    let Some(line) = send else {
        return Ok(json!({"ok": true, "peer": peer}));
    };
    let exchange = stream
        .write_all(format!("{line}\n").as_bytes())
        .and_then(|()| stream.flush())
        .and_then(|()| {
            let mut reply = String::new();
            BufReader::new(&stream).read_line(&mut reply)?;
            Ok(reply)
        });
    Ok(match exchange {
        Ok(reply) => json!({"ok": true, "peer": peer, "reply": reply.trim_end_matches('\n')}),
        Err(err) => {
            let mut v = io_failure(&err);
            v["stage"] = "exchange".into();
            v
        }
    })
}

/// Looks `name` up as std does for a connect (`getaddrinfo`, i.e. `wasi:sockets`
/// `resolve-addresses`), and reports every address it got.
fn resolve(args: &Args) -> Result<Value, ToolError> {
    use std::net::ToSocketAddrs;
    let name = args.str("name")?;
    Ok(report(
        (name, 0u16).to_socket_addrs(),
        |addrs| json!({"addresses": addrs.map(|a| a.ip().to_string()).collect::<Vec<_>>()}),
    ))
}

/// Sends one datagram to `addr` from an ephemeral local port.
fn udp(args: &Args) -> Result<Value, ToolError> {
    let addr = args.str("addr")?;
    let socket = match std::net::UdpSocket::bind("0.0.0.0:0") {
        Ok(socket) => socket,
        Err(err) => {
            let mut v = io_failure(&err);
            v["stage"] = "bind".into();
            return Ok(v);
        }
    };
    Ok(match socket.send_to(b"ping", addr) {
        Ok(n) => json!({"ok": true, "sent": n}),
        Err(err) => {
            let mut v = io_failure(&err);
            v["stage"] = "send".into();
            v
        }
    })
}

/// Tries to accept connections with `wasi:sockets` directly: an IPv4 TCP socket, an
/// explicit `start-bind` to `bind` (`a.b.c.d:port`) when given, then `start-listen`.
/// Failures say at which stage, with the wasi error-code name as `kind`.
fn tcp_listen(args: &Args) -> Result<Value, ToolError> {
    use wasi::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
    use wasi::sockets::{instance_network, tcp_create_socket};
    let bind = match args.0.get("bind") {
        None => None,
        Some(_) => {
            let text = args.str("bind")?;
            let addr: std::net::SocketAddrV4 = text.parse().map_err(|e| {
                ToolError::InvalidInput(format!("bind: expected a.b.c.d:port, found {text:?}: {e}"))
            })?;
            Some(addr)
        }
    };
    let failed = |stage: &str, code: ErrorCode| {
        json!({
            "ok": false,
            "stage": stage,
            "kind": code.name(),
            "error": format!("{}: {}", code.name(), code.message()),
        })
    };
    let socket = match tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) {
        Ok(socket) => socket,
        Err(code) => return Ok(failed("create", code)),
    };
    let network = instance_network::instance_network();
    if let Some(addr) = bind {
        let [a, b, c, d] = addr.ip().octets();
        let local = IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port: addr.port(),
            address: (a, b, c, d),
        });
        if let Err(code) = socket.start_bind(&network, local) {
            return Ok(failed("bind", code));
        }
        socket.subscribe().block();
        if let Err(code) = socket.finish_bind() {
            return Ok(failed("bind", code));
        }
    }
    if let Err(code) = socket.start_listen() {
        return Ok(failed("listen", code));
    }
    socket.subscribe().block();
    Ok(match socket.finish_listen() {
        Ok(()) => json!({"ok": true}),
        Err(code) => failed("listen", code),
    })
}

/// `{"ok": false, "kind": "denied", "error": "<host's text>"}` for a `warden:tool/secrets`
/// error.
fn secret_failure(err: warden::tool::secrets::Error) -> Value {
    use warden::tool::secrets::Error;
    let (kind, text) = match err {
        Error::Unknown(t) => ("unknown", t),
        Error::Denied(t) => ("denied", t),
        Error::Unavailable(t) => ("unavailable", t),
    };
    json!({"ok": false, "kind": kind, "error": text})
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens the secret `name` and signs `data` with it `times` times (default 1), sleeping
/// `sleep_ms` between uses: two uses across a TTL show the host fetching it again.
fn secret_hmac(args: &Args) -> Result<Value, ToolError> {
    use warden::tool::secrets::Secret;
    let name = args.str("name")?;
    let data = args.str("data")?;
    let sha512 = match args.0.get("algo").and_then(Value::as_str) {
        None | Some("sha256") => false,
        Some("sha512") => true,
        Some(other) => {
            return Err(ToolError::InvalidInput(format!(
                "algo: expected \"sha256\" or \"sha512\", found {other:?}"
            )));
        }
    };
    let times = if args.0.contains_key("times") {
        args.u64("times")?
    } else {
        1
    };
    let sleep_ms = if args.0.contains_key("sleep_ms") {
        args.u64("sleep_ms")?
    } else {
        0
    };
    let secret = match Secret::open(name) {
        Ok(s) => s,
        Err(e) => return Ok(secret_failure(e)),
    };
    let mut hexes = Vec::new();
    for i in 0..times {
        if i > 0 && sleep_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(sleep_ms));
        }
        let mac = if sha512 {
            secret.hmac_sha512(data.as_bytes())
        } else {
            secret.hmac_sha256(data.as_bytes())
        };
        match mac {
            Ok(mac) => hexes.push(hex(&mac)),
            Err(e) => {
                let mut v = secret_failure(e);
                v["hexes"] = json!(hexes);
                return Ok(v);
            }
        }
    }
    Ok(json!({"ok": true, "name": secret.name(), "hex": hexes.first(), "hexes": hexes}))
}

fn secret_reveal(args: &Args) -> Result<Value, ToolError> {
    use warden::tool::secrets::Secret;
    let secret = match Secret::open(args.str("name")?) {
        Ok(s) => s,
        Err(e) => return Ok(secret_failure(e)),
    };
    Ok(match secret.reveal() {
        Ok(value) => json!({"ok": true, "value": value}),
        Err(e) => secret_failure(e),
    })
}

fn time() -> Value {
    json!({
        "ok": true,
        "unix_nanos": unix_nanos(SystemTime::now()),
        // Straight from wasi:random, not through a std hasher, so the test
        // sees exactly what the host's generator gave.
        "random": wasi::random::random::get_random_u64(),
    })
}

fn run(args: &Args) -> Result<Value, ToolError> {
    Ok(match args.str("op")? {
        "read" => report(
            fs::read_to_string(args.str("path")?),
            |data| json!({"data": data}),
        ),
        "write" => {
            let data = args.str("data")?;
            report(
                fs::write(args.str("path")?, data),
                |()| json!({"bytes": data.len()}),
            )
        }
        "create_dir" => report(fs::create_dir(args.str("path")?), none),
        "remove" => report(fs::remove_file(args.str("path")?), none),
        "rename" => report(fs::rename(args.str("from")?, args.str("to")?), none),
        "set_times" => set_times(args)?,
        "list" => list(args)?,
        "metadata" => metadata(args)?,
        "symlink" => symlink(args)?,
        "hard_link" => report(fs::hard_link(args.str("src")?, args.str("dst")?), none),
        "env" => {
            let name = args.str("name")?;
            match std::env::var(name) {
                Ok(value) => json!({"ok": true, "value": value}),
                Err(err) => json!({"ok": false, "error": format!("{name}: {err}")}),
            }
        }
        "env_all" => {
            let vars: Map<String, Value> = std::env::vars_os()
                .map(|(k, v)| {
                    let k = k.to_string_lossy().into_owned();
                    (k, v.to_string_lossy().into_owned().into())
                })
                .collect();
            json!({"ok": true, "vars": vars})
        }
        "spin" => {
            // black_box keeps the optimizer from proving the loop side-effect
            // free and deleting it: only the host's timeout may end this.
            let mut n: u64 = 0;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        "membomb" => membomb(args)?,
        "leftover" => leftover(args)?,
        "bigout" => {
            let bytes = args.usize("bytes")?;
            json!({"ok": true, "data": "b".repeat(bytes)})
        }
        "print" => print(args)?,
        "log" => {
            warden::tool::log::log(warden::tool::log::Level::Info, args.str("message")?);
            json!({"ok": true})
        }
        "tcp" => tcp(args)?,
        "resolve" => resolve(args)?,
        "udp" => udp(args)?,
        "tcp_listen" => tcp_listen(args)?,
        "time" => time(),
        "raw_open" => raw_open(args)?,
        "raw_stat" => raw_stat(args)?,
        "set_times_at" => set_times_at(args)?,
        "stat_loop" => {
            // n capability-relevant host calls in a row, for benches that
            // price one audited call.
            let path = args.str("path")?;
            let n = args.u64("n")?;
            let mut ok = 0u64;
            for _ in 0..n {
                ok += u64::from(fs::metadata(path).is_ok());
            }
            json!({"ok": ok == n, "calls": n})
        }
        "secret_hmac" => secret_hmac(args)?,
        "secret_reveal" => secret_reveal(args)?,
        other => {
            return Err(ToolError::InvalidInput(format!(
                "op: unknown operation {other:?}"
            )));
        }
    })
}

struct Probe;

impl Guest for Probe {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "probe".into(),
            description: "Security-test probe: performs one filesystem, env, network, clock or \
                          resource operation and reports exactly what it saw."
                .into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let args = match serde_json::from_str(&input) {
            Ok(Value::Object(obj)) => Args(obj),
            Ok(other) => {
                return Err(ToolError::InvalidInput(format!(
                    "input: expected an object, found {other}"
                )));
            }
            Err(e) => return Err(ToolError::InvalidInput(format!("input: not JSON: {e}"))),
        };
        run(&args).map(|v| v.to_string())
    }
}

export!(Probe);
