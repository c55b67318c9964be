//! A real HTTP/1.1 server on 127.0.0.1 for the egress tests: it echoes what
//! it received, so a test sees exactly what left the host, and it keeps
//! every request so a test can tell what never arrived.
//!
//! Routes:
//! - `/echo...`: 200, a JSON body `{method, path, headers, body}`, and each
//!   request header repeated back as `x-echo-<name>`;
//! - `/redirect?to=URL`: 302 to `URL`;
//! - `/big?n=N`: 200 with `N` bytes of `a`;
//! - `/slow?ms=N`: answers after `N` ms;
//! - `/chunks?size=N`: echoes the `authorization` header back in a chunked
//!   body, `N` bytes per chunk, so a value is split across chunks;
//! - `.../issues`: if `authorization` is `Bearer <token>` for the token the
//!   server was started with, 200 with a list of issues, or for a `POST` 201
//!   with the new issue (number 3, and the `title` of the JSON body); else 401;
//! - `/coded?as=FORM`: the `/echo` body, compressed or encoded as a server
//!   might: see [`coded`].

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server read it off the wire.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running server; it stops when the test process ends.
pub struct Server {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    /// Starts a server that accepts `token` on `/issues`.
    pub fn start(token: &str) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let token = token.to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                let token = token.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &log, &token);
                });
            }
        });
        Server { addr, received }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Received>>, token: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let req = Received {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let mut req = req;
    if let Some(n) = req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0; n];
        reader.read_exact(&mut body)?;
        req.body = body;
    } else if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        req.body = read_chunked(&mut reader)?;
    }
    log.lock().unwrap().push(req.clone());
    respond(stream, &req, token)
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let mut chunk = vec![0; n + 2];
        reader.read_exact(&mut chunk)?;
        if n == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

fn query(target: &str, key: &str) -> Option<String> {
    let q = target.split_once('?')?.1;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
}

/// The `/echo` JSON body of `req`.
fn echo_body(req: &Received) -> String {
    json!({
        "method": req.method,
        "path": req.target,
        "headers": req.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<Value>>(),
        "body": String::from_utf8_lossy(&req.body),
    })
    .to_string()
}

/// Compresses `plain` in content coding `coding`.
pub fn compress(coding: &str, plain: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match coding {
        "gzip" | "x-gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
            e.write_all(plain).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
            e.write_all(plain).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            e.write_all(plain).unwrap();
            drop(e);
            out
        }
        "zstd" => zstd::encode_all(plain, 3).unwrap(),
        other => panic!("no coding {other}"),
    }
}

/// `/coded?as=FORM`: what a server that echoes the request may send back.
///
/// Compressed, with `content-encoding`: `gzip`, `x-gzip`, `deflate`, `br`,
/// `zstd` (each whatever the request accepted); `accepted` (the first of
/// those that `accept-encoding` lists, as a well-behaved server does);
/// `gzip-twice` (`content-encoding: gzip, gzip`); `compress` (a coding
/// nobody decodes: the body as it is, labelled); `te-gzip` (the body gzipped
/// as a transfer coding, `transfer-encoding: gzip, chunked`); `bomb?mib=N`
/// (N MiB of zeros after the echo, gzipped).
///
/// Encoded, as text: the `authorization` value `Bearer <token>` after
/// `pad=N` bytes (so that the token sits at each offset modulo 3) in
/// `base64`, `base64-nopad`, `base64url`, `base64url-nopad`; every byte as
/// `percent` (`%XX`) or `percent-lower`; every character as `json-u`
/// (`\u00xx`) or `json-U`, inside a JSON string; `hex` or `HEX`.
fn coded(mut stream: TcpStream, req: &Received, form: &str) -> std::io::Result<()> {
    use base64::Engine;
    use base64::engine::general_purpose as b64;
    let echo = echo_body(req);
    let auth = req.header("authorization").unwrap_or("none").to_owned();
    let pad: usize = query(&req.target, "pad")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let padded = [&b"xyz"[..pad.min(3)], auth.as_bytes()].concat();
    let (coding, body): (Option<String>, Vec<u8>) = match form {
        "gzip" | "x-gzip" | "deflate" | "br" | "zstd" => {
            (Some(form.into()), compress(form, echo.as_bytes()))
        }
        "accepted" => {
            let accepted = req.header("accept-encoding").unwrap_or_default();
            match accepted
                .split(',')
                .map(str::trim)
                .find(|c| ["gzip", "deflate", "br", "zstd"].contains(c))
            {
                Some(c) => (Some(c.into()), compress(c, echo.as_bytes())),
                None => (None, echo.into_bytes()),
            }
        }
        "gzip-twice" => (
            Some("gzip, gzip".into()),
            compress("gzip", &compress("gzip", echo.as_bytes())),
        ),
        "compress" => (Some("compress".into()), echo.into_bytes()),
        "bomb" => {
            let mib: usize = query(&req.target, "mib")
                .and_then(|n| n.parse().ok())
                .unwrap_or(64);
            let mut plain = echo.into_bytes();
            plain.resize(plain.len() + (mib << 20), 0);
            (Some("gzip".into()), compress("gzip", &plain))
        }
        "te-gzip" => {
            let body = compress("gzip", echo.as_bytes());
            let mut out =
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n"
                    .to_vec();
            out.extend(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend(&body);
            out.extend(b"\r\n0\r\n\r\n");
            stream.write_all(&out)?;
            return stream.flush();
        }
        "base64" => (None, b64::STANDARD.encode(&padded).into_bytes()),
        "base64-nopad" => (None, b64::STANDARD_NO_PAD.encode(&padded).into_bytes()),
        "base64url" => (None, b64::URL_SAFE.encode(&padded).into_bytes()),
        "base64url-nopad" => (None, b64::URL_SAFE_NO_PAD.encode(&padded).into_bytes()),
        "percent" | "percent-lower" => {
            let mut s: String = auth.bytes().map(|b| format!("%{b:02X}")).collect();
            if form == "percent-lower" {
                s = s.to_lowercase();
            }
            (None, format!("https://example.com/?auth={s}").into_bytes())
        }
        "json-u" | "json-U" => {
            let mut s: String = auth.encode_utf16().map(|c| format!("\\u{c:04x}")).collect();
            if form == "json-U" {
                s = s
                    .replace("\\u", "\u{0}")
                    .to_uppercase()
                    .replace('\u{0}', "\\u");
            }
            (None, format!("{{\"auth\":\"{s}\"}}").into_bytes())
        }
        "hex" => (
            None,
            auth.bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
        ),
        "HEX" => (
            None,
            auth.bytes()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
                .into_bytes(),
        ),
        other => panic!("no form {other}"),
    };
    let mut head = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    if let Some(c) = coding {
        head.push_str(&format!("content-encoding: {c}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

fn respond(mut stream: TcpStream, req: &Received, token: &str) -> std::io::Result<()> {
    let path = req.target.split('?').next().unwrap_or_default();
    let plain = |status: &str, extra: &[(String, String)], body: &[u8]| {
        let mut head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        out
    };
    let out = if path.starts_with("/echo") {
        let body = echo_body(req);
        let echoed: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|(k, v)| (format!("x-echo-{k}"), v.clone()))
            .collect();
        plain("200 OK", &echoed, body.as_bytes())
    } else if path == "/coded" {
        let form = query(&req.target, "as").unwrap_or_default();
        return coded(stream, req, &form);
    } else if path == "/redirect" {
        let to = query(&req.target, "to").unwrap_or_default();
        plain("302 Found", &[("location".into(), to)], b"")
    } else if path == "/big" {
        let n: usize = query(&req.target, "n")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        plain("200 OK", &[], &vec![b'a'; n])
    } else if path == "/slow" {
        let ms: u64 = query(&req.target, "ms")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        std::thread::sleep(Duration::from_millis(ms));
        plain("200 OK", &[], b"late")
    } else if path == "/chunks" {
        let size: usize = query(&req.target, "size")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1)
            .max(1);
        let text = format!(
            "before {} after",
            req.header("authorization").unwrap_or("none")
        );
        let mut out =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
        stream.write_all(&out)?;
        out.clear();
        for chunk in text.as_bytes().chunks(size) {
            stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
            stream.write_all(chunk)?;
            stream.write_all(b"\r\n")?;
            stream.flush()?;
            // Separate writes, so the host sees separate frames.
            std::thread::sleep(Duration::from_millis(2));
        }
        stream.write_all(b"0\r\n\r\n")?;
        return stream.flush();
    } else if path.ends_with("/issues") {
        let authorized = req.header("authorization") == Some(&format!("Bearer {token}"));
        if authorized && req.method == "POST" {
            let asked: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let body = json!({
                "number": 3,
                "title": asked["title"],
                "html_url": format!("https://issues.test{path}/3"),
            })
            .to_string();
            plain(
                "201 Created",
                &[("content-type".into(), "application/json".into())],
                body.as_bytes(),
            )
        } else if authorized {
            let body = json!([
                {"number": 1, "title": "first issue", "state": "open"},
                {"number": 2, "title": "second issue", "state": "closed"},
            ])
            .to_string();
            plain(
                "200 OK",
                &[("content-type".into(), "application/json".into())],
                body.as_bytes(),
            )
        } else {
            plain(
                "401 Unauthorized",
                &[],
                b"{\"message\":\"Bad credentials\"}",
            )
        }
    } else {
        plain("404 Not Found", &[], b"")
    };
    stream.write_all(&out)?;
    stream.flush()
}
