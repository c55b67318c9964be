//! MCP over Streamable HTTP, on a loopback address, behind a bearer token.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::WardenMcp;

/// Why the HTTP transport could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Only loopback addresses: the server runs tools with a security team's grants, and
    /// the bearer token travels in clear text.
    #[error(
        "--http {0}: only a loopback address (127.0.0.1, [::1]) may serve MCP; put a TLS-terminating proxy in front to reach it from elsewhere"
    )]
    NotLoopback(SocketAddr),
    /// A token too short to resist guessing.
    #[error("the bearer token must have at least 32 characters, found {0}")]
    WeakToken(usize),
    /// The address could not be bound.
    #[error("--http {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

/// How `warden mcp --http` serves: where, to whom, and how much.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// A loopback address; port 0 picks one.
    pub addr: SocketAddr,
    /// The bearer token every request must carry (at least 32 characters).
    pub token: String,
    /// Browser origins allowed besides the server's own (`http://127.0.0.1:PORT`,
    /// `http://localhost:PORT`, `http://[::1]:PORT`), e.g. `https://app.example.com`. A
    /// request with any other `Origin` is refused, as the MCP specification requires
    /// against DNS rebinding; a request without one (not from a browser) passes.
    pub allowed_origins: Vec<String>,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers before its connection is
    /// closed, so that slow clients cannot hold every connection.
    pub header_timeout: Duration,
}

impl HttpOptions {
    /// `addr` and `token` with the default limits: 64 connections, 10 s for headers.
    pub fn new(addr: SocketAddr, token: String) -> HttpOptions {
        HttpOptions {
            addr,
            token,
            allowed_origins: Vec::new(),
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `server` over Streamable HTTP at a loopback address, at the path `/mcp`,
/// answering only requests whose `Authorization` header is `Bearer <token>` and whose
/// `Origin`, if any, is allowed. `ready` gets the bound address (useful with port 0)
/// once it accepts connections. Runs until the process ends.
pub async fn serve_http(
    server: WardenMcp,
    options: HttpOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), HttpError> {
    let HttpOptions {
        addr,
        token,
        allowed_origins,
        max_connections,
        header_timeout,
    } = options;
    if !addr.ip().is_loopback() {
        return Err(HttpError::NotLoopback(addr));
    }
    if token.chars().count() < 32 {
        return Err(HttpError::WeakToken(token.chars().count()));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| HttpError::Bind { addr, error })?;
    let bound = listener
        .local_addr()
        .map_err(|error| HttpError::Bind { addr, error })?;
    let port = bound.port();
    let mut config = StreamableHttpServerConfig::default();
    // rmcp checks the Host header against these (DNS rebinding): the bound port too.
    config.allowed_hosts = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
        "[::1]".into(),
        format!("localhost:{port}"),
        bound.to_string(),
    ];
    // A page elsewhere, even on another loopback port, is another origin.
    let own = [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
    ];
    let config = config
        .with_allowed_origins(own.into_iter().chain(allowed_origins))
        .enforce_origin_validation();
    let service = Arc::new(StreamableHttpService::new(
        move || Ok(server.connection()),
        Arc::new(LocalSessionManager::default()),
        config,
    ));
    let expected = Arc::new(format!("Bearer {token}"));
    let slots = Arc::new(Semaphore::new(max_connections));
    ready(bound);
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        // A response goes out in pieces (headers, then each SSE event, then the end of
        // the chunked body): with Nagle's algorithm each piece after the first waits for
        // the client's delayed ACK, 40 ms a call.
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(too_many(stream));
            continue;
        };
        let service = service.clone();
        let expected = expected.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let handle = service_fn(move |req: Request<Incoming>| {
                let service = service.clone();
                let expected = expected.clone();
                async move {
                    if !authorized(&req, &expected) {
                        return Ok::<_, Infallible>(unauthorized());
                    }
                    Ok(service.handle(req).await)
                }
            });
            // A connection that breaks ends itself; the server goes on.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), handle)
                .await;
        });
    }
}

/// Answers a connection past the cap with 503 and closes it, giving up on a client
/// that does not read within a second.
async fn too_many(mut stream: tokio::net::TcpStream) {
    const BODY: &str = "warden mcp: too many connections; try again later\n";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let write = stream.write_all(response.as_bytes());
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
    let _ = stream.shutdown().await;
}

/// Whether the request carries the token, compared in constant time.
fn authorized(req: &Request<Incoming>, expected: &str) -> bool {
    let Some(given) = req.headers().get(http::header::AUTHORIZATION) else {
        return false;
    };
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn unauthorized() -> Response<BoxBody<Bytes, Infallible>> {
    let body = Full::new(Bytes::from_static(
        b"missing or wrong bearer token: send Authorization: Bearer <the token warden mcp was started with>\n",
    ))
    .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    response
}
