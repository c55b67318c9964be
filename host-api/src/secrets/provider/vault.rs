//! `vault:MOUNT/PATH#FIELD`: HashiCorp Vault or OpenBao, KV secrets engine version 2.
//!
//! Configured the way the `vault` and `bao` command-line tools are, from warden's
//! environment:
//!
//! | variable | meaning |
//! | --- | --- |
//! | `VAULT_ADDR` | the server, default `https://127.0.0.1:8200` |
//! | `VAULT_TOKEN` | the token; else the file named by `VAULT_TOKEN_FILE`; else `~/.vault-token` |
//! | `VAULT_NAMESPACE` | sent as `X-Vault-Namespace` (Vault Enterprise, OpenBao namespaces) |
//! | `VAULT_CACERT` | PEM file of the CAs to trust for `https`, instead of the Web PKI roots |
//! | `VAULT_CLIENT_TIMEOUT` | per request, seconds (`30`) or a duration (`1m`); default 10s |
//!
//! A token file is held to the rule of `file:` secrets: only its owner may access it.
//! There is no way to turn certificate checks off.
//!
//! A read is `GET {VAULT_ADDR}/v1/{MOUNT}/data/{PATH}` with `X-Vault-Token`; the value is
//! `data.data[FIELD]`, which must be a string. The response's `lease_duration`,
//! `renewable` and `lease_id` and the secret's `data.metadata.version` are kept: a lease
//! that is renewable is renewed with `PUT /v1/sys/leases/renew` when it runs out, else the
//! secret is read again (KV v2 secrets have no lease, so a `ttl` in the manifest is what
//! makes warden read them again).
//!
//! Each request opens its own HTTP/1.1 connection (hyper over tokio, `tokio-rustls` with
//! the `ring` provider for `https`): a task reads a handful of secrets at most, and a
//! connection kept open would outlive the task that justified it.

use super::{Env, Fetched, read_file};
use crate::limits::manifest::parse_duration;
use crate::secrets::SecretValue;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::{Host, Url};
use wasmtime_wasi_http::io::TokioIo;
use zeroize::{Zeroize, Zeroizing};

/// `VAULT_ADDR` when it is not set, as for the `vault` CLI.
pub const DEFAULT_ADDR: &str = "https://127.0.0.1:8200";
/// How long one request may take, connection and TLS included, unless
/// `VAULT_CLIENT_TIMEOUT` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response read: a KV secret is small.
const MAX_RESPONSE: usize = 1 << 20;

/// A Vault lease, as a response reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lease {
    /// `lease_id`; empty for KV v2 reads.
    pub id: String,
    /// `lease_duration`; zero when the value does not expire.
    pub duration: Duration,
    /// `renewable`.
    pub renewable: bool,
}

/// A Vault client: where, with which token, and how.
pub(crate) struct Vault {
    addr: Url,
    token: SecretValue,
    /// Where the token came from, for errors: `VAULT_TOKEN`, `VAULT_TOKEN_FILE (/path)`.
    token_from: String,
    namespace: Option<HeaderValue>,
    timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Vault {
    /// Reads the `VAULT_*` variables and the token.
    ///
    /// # Ambient Authority
    ///
    /// Reads the token file and `VAULT_CACERT` by path, with the authority of the process.
    pub fn from_env(env: &Env) -> Result<Vault, VaultError> {
        let text = |var: &'static str| -> Result<Option<String>, VaultError> {
            env.get(var)
                .map(|v| {
                    v.into_string().map_err(|v| VaultError::Config {
                        var,
                        value: v.to_string_lossy().into_owned(),
                        reason: "not valid UTF-8".into(),
                    })
                })
                .transpose()
        };
        let raw_addr = text("VAULT_ADDR")?.unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr = parse_addr(&raw_addr).map_err(|reason| VaultError::Config {
            var: "VAULT_ADDR",
            value: raw_addr.clone(),
            reason,
        })?;
        let (token, token_from) = token(env)?;
        if HeaderValue::from_bytes(token.expose()).is_err() {
            return Err(VaultError::BadToken { from: token_from });
        }
        let namespace = match text("VAULT_NAMESPACE")? {
            Some(ns) => Some(HeaderValue::from_str(&ns).map_err(|_| VaultError::Config {
                var: "VAULT_NAMESPACE",
                value: ns.clone(),
                reason: "not a valid header value".into(),
            })?),
            None => None,
        };
        let timeout = match text("VAULT_CLIENT_TIMEOUT")? {
            Some(t) => parse_timeout(&t).ok_or_else(|| VaultError::Config {
                var: "VAULT_CLIENT_TIMEOUT",
                value: t.clone(),
                reason: "expected seconds (\"30\") or a duration (\"1m\") above zero".into(),
            })?,
            None => DEFAULT_TIMEOUT,
        };
        let tls = if addr.scheme() == "https" {
            Some(tls_config(env.get("VAULT_CACERT").map(PathBuf::from))?)
        } else {
            None
        };
        Ok(Vault {
            addr,
            token,
            token_from,
            namespace,
            timeout,
            tls,
        })
    }

    /// `VAULT_ADDR` as used, without a trailing `/`.
    fn shown(&self) -> String {
        self.addr.as_str().trim_end_matches('/').to_owned()
    }

    /// Reads `data.data[field]` of the KV v2 secret `path` under `mount`.
    pub async fn read(&self, mount: &str, path: &str, field: &str) -> Result<Fetched, VaultError> {
        let what = format!("{mount}/data/{path}");
        let mut segments = vec![mount, "data"];
        segments.extend(path.split('/'));
        let (status, body) = self.call(Method::GET, &segments, None, &what).await?;
        parse_read(
            status,
            &body,
            &Context {
                addr: &self.shown(),
                what: &what,
                token_from: &self.token_from,
            },
            field,
        )
    }

    /// Renews `lease`: `PUT /v1/sys/leases/renew`. The value stays what it was.
    pub async fn renew(&self, lease: &Lease) -> Result<Lease, VaultError> {
        let what = "sys/leases/renew";
        let body = serde_json::to_vec(&serde_json::json!({ "lease_id": lease.id }))
            .expect("a JSON object serializes");
        let (status, body) = self
            .call(Method::PUT, &["sys", "leases", "renew"], Some(body), what)
            .await?;
        let cx = Context {
            addr: &self.shown(),
            what,
            token_from: &self.token_from,
        };
        if status != StatusCode::OK {
            return Err(cx.status(status, &body));
        }
        let doc = Wiped::parse(&body).map_err(|reason| cx.bad(reason))?;
        Ok(lease_of(&doc.0))
    }

    /// One request, within the timeout.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Vec<u8>>,
        what: &str,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>), VaultError> {
        let mut url = self.addr.clone();
        {
            // Pushed one by one, so each segment is percent-encoded and none can add a
            // path, query or fragment of its own.
            let mut path = url.path_segments_mut().map_err(|()| VaultError::Config {
                var: "VAULT_ADDR",
                value: self.shown(),
                reason: "cannot be a base URL".into(),
            })?;
            path.pop_if_empty().push("v1");
            for s in segments {
                path.push(s);
            }
        }
        match tokio::time::timeout(self.timeout, self.exchange(method, &url, body)).await {
            Ok(result) => result,
            Err(_) => Err(VaultError::Timeout {
                addr: self.shown(),
                what: what.to_owned(),
                after: self.timeout,
            }),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>), VaultError> {
        let addr = self.shown();
        let connect = |error: std::io::Error| VaultError::Connect {
            addr: addr.clone(),
            error: error.to_string(),
        };
        let port = url.port_or_known_default().unwrap_or(8200);
        let (tcp, server_name) = match url.host() {
            Some(Host::Domain(d)) => (TcpStream::connect((d, port)).await, d.to_owned()),
            Some(Host::Ipv4(ip)) => (TcpStream::connect((ip, port)).await, ip.to_string()),
            Some(Host::Ipv6(ip)) => (TcpStream::connect((ip, port)).await, ip.to_string()),
            None => unreachable!("parse_addr refuses an address without a host"),
        };
        let tcp = tcp.map_err(connect)?;
        // Latency matters more than packet count for a request this small.
        let _ = tcp.set_nodelay(true);

        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let mut token = HeaderValue::from_bytes(self.token.expose())
            .expect("from_env checked that the token is a valid header value");
        token.set_sensitive(true);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, authority)
            .header("x-vault-token", token)
            // Required by Vault Agent listeners, and marks the request as an API client's.
            .header("x-vault-request", "true")
            .header("user-agent", concat!("warden/", env!("CARGO_PKG_VERSION")));
        if let Some(ns) = &self.namespace {
            request = request.header("x-vault-namespace", ns.clone());
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| VaultError::Http {
                addr: addr.clone(),
                error: e.to_string(),
            })?;
        match &self.tls {
            Some(config) => {
                let name = ServerName::try_from(server_name).map_err(|e| VaultError::Tls {
                    addr: addr.clone(),
                    error: e.to_string(),
                })?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| VaultError::Tls {
                        addr: addr.clone(),
                        error: e.to_string(),
                    })?;
                send(tls, request, &addr).await
            }
            None => send(tcp, request, &addr).await,
        }
    }
}

/// Sends `request` on a fresh HTTP/1.1 connection over `io` and reads the whole response.
async fn send<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
    addr: &str,
) -> Result<(StatusCode, Zeroizing<Vec<u8>>), VaultError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = |error: hyper::Error| VaultError::Http {
        addr: addr.to_owned(),
        error: error.to_string(),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http)?;
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status();
        let expected = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
            .min(MAX_RESPONSE);
        let mut body = response.into_body();
        let mut out = Zeroizing::new(Vec::with_capacity(expected));
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(http)?.into_data() else {
                continue;
            };
            if out.len() + data.len() > MAX_RESPONSE {
                return Err(VaultError::Bad {
                    addr: addr.to_owned(),
                    what: "the response".into(),
                    reason: format!("the response is larger than {MAX_RESPONSE} bytes"),
                });
            }
            append(&mut out, &data);
            if let Ok(mut data) = data.try_into_mut() {
                data.as_mut().zeroize();
            }
        }
        Ok((status, out))
    }
    .await;
    driver.abort();
    result
}

/// Appends without leaving a copy behind: a `Vec` that grows frees its old buffer
/// unwiped, so growing is done here, into zeroizing memory.
fn append(out: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    let needed = out.len() + data.len();
    if needed > out.capacity() {
        let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(out.capacity() * 2)));
        bigger.extend_from_slice(out);
        *out = bigger;
    }
    out.extend_from_slice(data);
}

fn parse_addr(addr: &str) -> Result<Url, String> {
    let url = Url::parse(addr).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("expected an http:// or https:// URL".into());
    }
    if url.host().is_none() {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold a user or password: the token goes in VAULT_TOKEN".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(url)
}

fn parse_timeout(text: &str) -> Option<Duration> {
    let d = match text.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => parse_duration(text).ok()?,
    };
    (!d.is_zero()).then_some(d)
}

/// The token and where it came from: `VAULT_TOKEN`, else `VAULT_TOKEN_FILE`, else
/// `~/.vault-token`.
fn token(env: &Env) -> Result<(SecretValue, String), VaultError> {
    if let Some(t) = env.get("VAULT_TOKEN") {
        let t = SecretValue::new(super::os_bytes(t));
        return Ok((t, "VAULT_TOKEN".into()));
    }
    let (path, from) = match env.get("VAULT_TOKEN_FILE") {
        Some(p) => {
            let p = PathBuf::from(p);
            let from = format!("VAULT_TOKEN_FILE ({})", p.display());
            (p, from)
        }
        None => {
            let Some(home) = env.get("HOME") else {
                return Err(VaultError::NoToken);
            };
            let p = PathBuf::from(home).join(".vault-token");
            if !p.exists() {
                return Err(VaultError::NoToken);
            }
            let from = format!("~/.vault-token ({})", p.display());
            (p, from)
        }
    };
    match read_file(&path) {
        Ok(t) if t.is_empty() => Err(VaultError::TokenFile {
            from,
            reason: "the file is empty".into(),
        }),
        Ok(t) => Ok((t, from)),
        Err(e) => Err(VaultError::TokenFile {
            from,
            reason: e.to_string(),
        }),
    }
}

fn tls_config(cacert: Option<PathBuf>) -> Result<Arc<rustls::ClientConfig>, VaultError> {
    let Some(path) = cacert else {
        return Ok(crate::tls::web_client_config());
    };
    let bad = |reason: String| VaultError::Config {
        var: "VAULT_CACERT",
        value: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(&path).map_err(|e| bad(format!("cannot read: {e}")))?;
    Ok(crate::tls::client_config(
        crate::tls::roots_from_pem(&pem).map_err(bad)?,
    ))
}

/// What errors about one request name.
struct Context<'a> {
    addr: &'a str,
    /// The API path, e.g. `secret/data/app`.
    what: &'a str,
    token_from: &'a str,
}

impl Context<'_> {
    fn bad(&self, reason: String) -> VaultError {
        VaultError::Bad {
            addr: self.addr.to_owned(),
            what: self.what.to_owned(),
            reason,
        }
    }

    fn status(&self, status: StatusCode, body: &[u8]) -> VaultError {
        let errors = vault_errors(body);
        match status {
            StatusCode::FORBIDDEN => VaultError::Forbidden {
                addr: self.addr.to_owned(),
                what: self.what.to_owned(),
                token_from: self.token_from.to_owned(),
                errors,
            },
            _ => VaultError::Status {
                addr: self.addr.to_owned(),
                what: self.what.to_owned(),
                status: status.as_u16(),
                errors,
            },
        }
    }
}

/// A parsed response whose strings are wiped when it is dropped: it may hold other fields
/// of the same secret, which are secrets too.
struct Wiped(Value);

impl Wiped {
    fn parse(body: &[u8]) -> Result<Wiped, String> {
        serde_json::from_slice(body)
            .map(Wiped)
            .map_err(|e| format!("not JSON: {e}"))
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        fn wipe(v: &mut Value) {
            match v {
                Value::String(s) => s.zeroize(),
                Value::Array(a) => a.iter_mut().for_each(wipe),
                Value::Object(o) => o.values_mut().for_each(wipe),
                _ => {}
            }
        }
        wipe(&mut self.0);
    }
}

fn lease_of(doc: &Value) -> Lease {
    Lease {
        id: doc["lease_id"].as_str().unwrap_or_default().to_owned(),
        duration: Duration::from_secs(doc["lease_duration"].as_u64().unwrap_or(0)),
        renewable: doc["renewable"].as_bool().unwrap_or(false),
    }
}

/// The `errors` of a Vault error response, one line; they are messages, never secrets.
fn vault_errors(body: &[u8]) -> String {
    let Ok(doc) = Wiped::parse(body) else {
        return String::new();
    };
    let mut out = String::new();
    for e in doc.0["errors"].as_array().into_iter().flatten() {
        if let Some(e) = e.as_str() {
            let e = e.split_whitespace().collect::<Vec<_>>().join(" ");
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(&e);
        }
    }
    if out.len() > 300 {
        let mut end = 300;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

fn parse_read(
    status: StatusCode,
    body: &[u8],
    cx: &Context<'_>,
    field: &str,
) -> Result<Fetched, VaultError> {
    if status == StatusCode::NOT_FOUND {
        // A deleted or destroyed latest version is a 404 whose body still has metadata.
        let version = Wiped::parse(body)
            .ok()
            .filter(|d| {
                d.0["data"]["metadata"]["deletion_time"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
                    || d.0["data"]["metadata"]["destroyed"] == true
            })
            .and_then(|d| d.0["data"]["metadata"]["version"].as_u64());
        return Err(VaultError::NotFound {
            addr: cx.addr.to_owned(),
            what: cx.what.to_owned(),
            deleted_version: version,
        });
    }
    if status != StatusCode::OK {
        return Err(cx.status(status, body));
    }
    let mut doc = Wiped::parse(body).map_err(|reason| cx.bad(reason))?;
    let lease = lease_of(&doc.0);
    let version = doc.0["data"]["metadata"]["version"].as_u64();
    let Some(data) = doc.0["data"]["data"].as_object_mut() else {
        return Err(cx.bad("no data.data object: is the mount a KV version 2 engine?".into()));
    };
    let value = match data.get_mut(field) {
        Some(Value::String(s)) => SecretValue::new(std::mem::take(s).into_bytes()),
        Some(other) => {
            return Err(VaultError::NotString {
                what: cx.what.to_owned(),
                field: field.to_owned(),
                found: json_type(other),
            });
        }
        None => {
            let mut available: Vec<String> = data.keys().cloned().collect();
            available.sort();
            return Err(VaultError::MissingField {
                what: cx.what.to_owned(),
                field: field.to_owned(),
                available,
            });
        }
    };
    // Kept even when empty (as for every KV v2 read), so that the record shows it.
    Ok(Fetched {
        value,
        lease: Some(lease),
        version,
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Why Vault or OpenBao could not supply a value. Carries addresses, API paths, field
/// names and Vault's own error messages, never a value or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// No `VAULT_TOKEN`, no `VAULT_TOKEN_FILE` and no `~/.vault-token`.
    #[error(
        "no vault token: set VAULT_TOKEN, or VAULT_TOKEN_FILE to a file holding one, or log in so that ~/.vault-token exists"
    )]
    NoToken,
    /// The token file could not be used.
    #[error("cannot use the vault token from {from}: {reason}")]
    TokenFile {
        /// `VAULT_TOKEN_FILE (path)` or `~/.vault-token (path)`.
        from: String,
        /// Why, e.g. its mode.
        reason: String,
    },
    /// The token holds bytes that no HTTP header can carry.
    #[error("the vault token from {from} holds characters an HTTP header cannot carry")]
    BadToken {
        /// Where it came from.
        from: String,
    },
    /// A `VAULT_*` variable is unusable.
    #[error("{var}={value:?}: {reason}")]
    Config {
        /// The variable.
        var: &'static str,
        /// Its value (never the token's).
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// No connection.
    #[error("cannot connect to vault at {addr}: {error}")]
    Connect {
        /// `VAULT_ADDR`.
        addr: String,
        /// The OS error.
        error: String,
    },
    /// The TLS handshake failed.
    #[error(
        "TLS with vault at {addr} failed: {error} (if its certificate is signed by a private CA, set VAULT_CACERT to that CA's PEM file)"
    )]
    Tls {
        /// `VAULT_ADDR`.
        addr: String,
        /// rustls's error.
        error: String,
    },
    /// The HTTP exchange failed after connecting.
    #[error("HTTP exchange with vault at {addr} failed: {error}")]
    Http {
        /// `VAULT_ADDR`.
        addr: String,
        /// hyper's error.
        error: String,
    },
    /// No complete answer within the timeout.
    #[error(
        "vault at {addr} did not answer for {what} within {after:?} (VAULT_CLIENT_TIMEOUT sets how long to wait)"
    )]
    Timeout {
        /// `VAULT_ADDR`.
        addr: String,
        /// The API path.
        what: String,
        /// The timeout.
        after: Duration,
    },
    /// 403: the token is invalid, expired, or its policies do not allow the read.
    #[error(
        "vault at {addr} refused the token from {token_from} for {what} (403 {errors}): check that the token is valid, unexpired and allowed to read {what}"
    )]
    Forbidden {
        /// `VAULT_ADDR`.
        addr: String,
        /// The API path.
        what: String,
        /// Where the token came from.
        token_from: String,
        /// Vault's messages.
        errors: String,
    },
    /// 404: no such secret, or its latest version is deleted.
    #[error("vault at {addr} has no secret at {what} (404){}", deleted_version.map(|v| format!(": version {v}, the latest, is deleted or destroyed")).unwrap_or_default())]
    NotFound {
        /// `VAULT_ADDR`.
        addr: String,
        /// The API path.
        what: String,
        /// The latest version, when it exists but is deleted.
        deleted_version: Option<u64>,
    },
    /// The secret exists but has no such field.
    #[error("{what} has no field {field:?}; {}", fields(available))]
    MissingField {
        /// The API path.
        what: String,
        /// The field asked for.
        field: String,
        /// The names of the fields it has, sorted.
        available: Vec<String>,
    },
    /// The field is not a string.
    #[error("field {field:?} of {what} is {found}, not a string")]
    NotString {
        /// The API path.
        what: String,
        /// The field.
        field: String,
        /// The JSON type it has.
        found: &'static str,
    },
    /// Another status.
    #[error("vault at {addr} answered {status} for {what}: {errors}")]
    Status {
        /// `VAULT_ADDR`.
        addr: String,
        /// The API path.
        what: String,
        /// The HTTP status.
        status: u16,
        /// Vault's messages.
        errors: String,
    },
    /// A response that is not what the KV v2 API sends.
    #[error("vault at {addr} sent a response for {what} that warden cannot read: {reason}")]
    Bad {
        /// `VAULT_ADDR`.
        addr: String,
        /// The API path.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

fn fields(available: &[String]) -> String {
    if available.is_empty() {
        return "it has no fields".into();
    }
    let mut out = String::from("its fields are ");
    for (i, name) in available.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{name:?}");
    }
    out
}

impl VaultError {
    /// A short code for records: `error:<code>`.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::NoToken => "vault-no-token",
            VaultError::TokenFile { .. } | VaultError::BadToken { .. } => "vault-token",
            VaultError::Config { .. } => "vault-config",
            VaultError::Connect { .. } => "vault-unreachable",
            VaultError::Tls { .. } => "vault-tls",
            VaultError::Http { .. } => "vault-http",
            VaultError::Timeout { .. } => "vault-timeout",
            VaultError::Forbidden { .. } => "vault-forbidden",
            VaultError::NotFound { .. } => "vault-not-found",
            VaultError::MissingField { .. } => "vault-missing-field",
            VaultError::NotString { .. } => "vault-not-string",
            VaultError::Status { .. } => "vault-status",
            VaultError::Bad { .. } => "vault-bad-response",
        }
    }
}

/// A stand-in for Vault, for tests here and in [`crate::secrets`].
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A stand-in for Vault: answers each `METHOD path` with a canned status and body,
    /// and keeps every request it saw.
    pub(crate) struct Fake {
        pub addr: String,
        pub seen: Arc<Mutex<Vec<String>>>,
    }

    pub(crate) async fn fake(routes: &[(&str, u16, &str)]) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let routes: HashMap<String, (u16, String)> = routes
            .iter()
            .map(|(k, s, b)| (k.to_string(), (*s, b.to_string())))
            .collect();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = conn.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                    if n == 0 {
                        return;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let n = conn.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                }
                let request = String::from_utf8_lossy(&buf).into_owned();
                log.lock().unwrap().push(request.clone());
                let line = head.lines().next().unwrap_or_default();
                let key = line.rsplit_once(' ').map(|(k, _)| k).unwrap_or_default();
                let (status, body) = routes
                    .get(key)
                    .cloned()
                    .unwrap_or((404, r#"{"errors":[]}"#.into()));
                if status == 0 {
                    // Never answers: for the timeout.
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    continue;
                }
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            }
        });
        Fake { addr, seen }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::fake;
    use super::*;
    use std::collections::HashMap;

    fn vault(addr: &str, extra: &[(&str, &str)]) -> Result<Vault, VaultError> {
        let mut vars: HashMap<String, String> = [
            ("VAULT_ADDR".to_string(), addr.to_string()),
            ("VAULT_TOKEN".to_string(), "hvs.test-token".to_string()),
        ]
        .into();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        Vault::from_env(&Env::from_fn(move |k| vars.get(k).map(Into::into)))
    }

    const SECRET: &str = r#"{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,
        "data":{"data":{"password":"pw-value","user":"u-value"},
                "metadata":{"created_time":"t","deletion_time":"","destroyed":false,"version":3}}}"#;

    #[tokio::test]
    async fn reads_a_field_and_its_version() {
        let f = fake(&[("GET /v1/secret/data/app/db", 200, SECRET)]).await;
        let v = vault(&f.addr, &[("VAULT_NAMESPACE", "team-a")]).unwrap();
        let got = v.read("secret", "app/db", "password").await.unwrap();
        assert_eq!(got.value.expose(), b"pw-value");
        assert_eq!(got.version, Some(3));
        assert_eq!(
            got.lease,
            Some(Lease::default()),
            "KV v2 reads have no lease"
        );
        let seen = f.seen.lock().unwrap();
        assert!(
            seen[0].contains("x-vault-token: hvs.test-token"),
            "{}",
            seen[0]
        );
        assert!(seen[0].contains("x-vault-namespace: team-a"), "{}", seen[0]);
    }

    #[tokio::test]
    async fn errors_name_what_failed_and_never_a_value() {
        let f = fake(&[
            ("GET /v1/secret/data/app", 200, SECRET),
            ("GET /v1/secret/data/locked", 403, r#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#),
            ("GET /v1/secret/data/list", 200, r#"{"data":{"data":{"n":5},"metadata":{"version":1}}}"#),
            ("GET /v1/secret/data/gone", 404, r#"{"data":{"data":null,"metadata":{"deletion_time":"2026-01-01T00:00:00Z","destroyed":false,"version":4}}}"#),
            ("GET /v1/secret/data/boom", 500, r#"{"errors":["internal error"]}"#),
        ])
        .await;
        let v = vault(&f.addr, &[]).unwrap();
        let err = v.read("secret", "app", "missing").await.err().unwrap();
        assert_eq!(
            err.to_string(),
            r#"secret/data/app has no field "missing"; its fields are "password", "user""#
        );
        assert_eq!(err.code(), "vault-missing-field");
        let err = v.read("secret", "locked", "k").await.err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "vault at {} refused the token from VAULT_TOKEN for secret/data/locked (403 1 error occurred: * permission denied): check that the token is valid, unexpired and allowed to read secret/data/locked",
                f.addr
            )
        );
        let err = v.read("secret", "nothing", "k").await.err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "vault at {} has no secret at secret/data/nothing (404)",
                f.addr
            )
        );
        let err = v.read("secret", "gone", "k").await.err().unwrap();
        assert!(
            err.to_string()
                .ends_with("(404): version 4, the latest, is deleted or destroyed"),
            "{err}"
        );
        let err = v.read("secret", "list", "n").await.err().unwrap();
        assert_eq!(
            err.to_string(),
            r#"field "n" of secret/data/list is number, not a string"#
        );
        let err = v.read("secret", "boom", "k").await.err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "vault at {} answered 500 for secret/data/boom: internal error",
                f.addr
            )
        );
        // A path segment cannot escape into another API path (the manifest refuses these
        // already; the URL is built so that it would not matter).
        let _ = v.read("secret", "a?b/../c", "k").await;
        let seen = f.seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert!(last.starts_with("GET /v1/secret/data/a%3Fb/c "), "{last}");
    }

    #[tokio::test]
    async fn renews_a_lease() {
        let f = fake(&[(
            "PUT /v1/sys/leases/renew",
            200,
            r#"{"lease_id":"db/creds/x","renewable":true,"lease_duration":60}"#,
        )])
        .await;
        let v = vault(&f.addr, &[]).unwrap();
        let lease = Lease {
            id: "db/creds/x".into(),
            duration: Duration::from_secs(1),
            renewable: true,
        };
        let renewed = v.renew(&lease).await.unwrap();
        assert_eq!(renewed.duration, Duration::from_secs(60));
        assert!(renewed.renewable);
        let seen = f.seen.lock().unwrap();
        assert!(
            seen[0].ends_with(r#"{"lease_id":"db/creds/x"}"#),
            "{}",
            seen[0]
        );
    }

    #[tokio::test]
    async fn timeouts_and_unreachable_servers() {
        let f = fake(&[("GET /v1/secret/data/slow", 0, "")]).await;
        let v = vault(&f.addr, &[("VAULT_CLIENT_TIMEOUT", "200ms")]).unwrap();
        let err = v.read("secret", "slow", "k").await.err().unwrap();
        assert_eq!(err.code(), "vault-timeout", "{err}");
        // A port that nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let v = vault(&format!("http://127.0.0.1:{port}"), &[]).unwrap();
        let err = v.read("secret", "x", "k").await.err().unwrap();
        assert_eq!(err.code(), "vault-unreachable", "{err}");
        assert!(
            err.to_string().starts_with(&format!(
                "cannot connect to vault at http://127.0.0.1:{port}: "
            )),
            "{err}"
        );
    }

    #[test]
    fn configuration() {
        let err = vault("ftp://x", &[]).err().unwrap();
        assert_eq!(
            err.to_string(),
            "VAULT_ADDR=\"ftp://x\": expected an http:// or https:// URL"
        );
        let err = vault("http://u:p@x", &[]).err().unwrap();
        assert_eq!(err.code(), "vault-config");
        assert!(!err.to_string().contains("hvs."));
        let err = vault("http://x", &[("VAULT_CLIENT_TIMEOUT", "soon")])
            .err()
            .unwrap();
        assert_eq!(err.code(), "vault-config");
        assert_eq!(parse_timeout("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_timeout("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_timeout("0"), None);
        // https gets a TLS configuration with the Web PKI roots.
        assert!(
            vault("https://vault.example.com", &[])
                .unwrap()
                .tls
                .is_some()
        );
        let err = vault("https://x", &[("VAULT_CACERT", "/nonexistent/ca.pem")])
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("VAULT_CACERT=\"/nonexistent/ca.pem\": cannot read"),
            "{err}"
        );
    }

    #[test]
    fn tokens() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "hvs.from-file\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let home = dir.path().to_str().unwrap().to_owned();
        let file_s = file.to_str().unwrap().to_owned();
        let env = |vars: Vec<(&'static str, String)>| {
            let vars: HashMap<&str, String> = vars.into_iter().collect();
            Env::from_fn(move |k| vars.get(k).map(Into::into))
        };
        let (t, from) = token(&env(vec![("VAULT_TOKEN_FILE", file_s.clone())])).unwrap();
        assert_eq!(t.expose(), b"hvs.from-file");
        assert_eq!(from, format!("VAULT_TOKEN_FILE ({file_s})"));
        // VAULT_TOKEN wins over the file.
        let (t, _) = token(&env(vec![
            ("VAULT_TOKEN", "hvs.env".into()),
            ("VAULT_TOKEN_FILE", file_s.clone()),
        ]))
        .unwrap();
        assert_eq!(t.expose(), b"hvs.env");
        // ~/.vault-token, when neither is set.
        assert_eq!(
            token(&env(vec![("HOME", home.clone())])).err(),
            Some(VaultError::NoToken)
        );
        std::fs::copy(&file, dir.path().join(".vault-token")).unwrap();
        let (t, from) = token(&env(vec![("HOME", home)])).unwrap();
        assert_eq!(t.expose(), b"hvs.from-file");
        assert!(from.starts_with("~/.vault-token ("), "{from}");
        // A token file others can read is refused, as a secret file would be.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = token(&env(vec![("VAULT_TOKEN_FILE", file_s)]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("has mode 0644"), "{err}");
        assert!(!err.to_string().contains("from-file"));
    }
}
