//! MCP over Streamable HTTP, on a loopback address, behind a bearer token.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;

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

/// Serves `server` over Streamable HTTP at `addr` (a loopback address), at the path
/// `/mcp`, answering only requests whose `Authorization` header is `Bearer <token>`.
/// `ready` gets the bound address (useful with port 0) once it accepts connections.
/// Runs until the process ends.
pub async fn serve_http(
    server: WardenMcp,
    addr: SocketAddr,
    token: String,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), HttpError> {
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
    let mut config = StreamableHttpServerConfig::default();
    // rmcp checks the Host header against these (DNS rebinding): the bound port too.
    config.allowed_hosts = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
        "[::1]".into(),
        format!("localhost:{}", bound.port()),
        bound.to_string(),
    ];
    let service = Arc::new(StreamableHttpService::new(
        move || Ok(server.connection()),
        Arc::new(LocalSessionManager::default()),
        config,
    ));
    let expected = Arc::new(format!("Bearer {token}"));
    ready(bound);
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let service = service.clone();
        let expected = expected.clone();
        tokio::spawn(async move {
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
                .serve_connection(TokioIo::new(stream), handle)
                .await;
        });
    }
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
