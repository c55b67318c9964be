//! Sending an allowed request: Warden's own `send_request` hook.
//!
//! wasmtime-wasi-http hands every outgoing request to
//! [`WasiHttpHooks::send_request`]. Warden's hook takes the plan that
//! `handle` made for the request (the rule that allowed it and the
//! normalized URL), resolves the host itself and checks every address
//! before connecting to exactly that address, so a DNS answer cannot swap
//! the destination after the check. The request goes out with the URL that
//! was checked, not the guest's text. Redirects come back to the guest as
//! they are: the host never follows one. The rule's body limits and timeout
//! hold for the whole exchange, and no request outlives its task.
//!
//! Approval gates ask first, before DNS, so a refused request reaches
//! nobody: the request's own gate, then each gated secret it would carry.
//! The rule's timeout starts again once they have answered; the task's does
//! not.

use super::Denied;
use super::state::{Exchange, HttpState, Plan, Shared, lock};
use crate::approval::{ApprovalKind, Question};
use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use serde_json::json;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Sleep, sleep_until, timeout};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks};

/// What a task's store holds for `wasi:http`: wasmtime-wasi-http's context
/// and Warden's hooks. The runtime keeps it beside the
/// [`HostState`](crate::HostState) and lends both out through
/// [`WardenView::split_http`](crate::WardenView::split_http).
pub struct HttpTask {
    /// wasmtime-wasi-http's per-task context.
    pub ctx: WasiHttpCtx,
    /// The send hook.
    pub hooks: Hooks,
}

impl HttpTask {
    /// The `wasi:http` context of a task with `state`'s grants.
    pub fn new(state: &HttpState) -> HttpTask {
        HttpTask {
            ctx: WasiHttpCtx::new(),
            hooks: Hooks {
                state: state.clone(),
            },
        }
    }
}

/// Warden's [`WasiHttpHooks`]: every request is sent by `send`.
pub struct Hooks {
    state: HttpState,
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Result<(Response<WasiBody>, IoFuture), Error>;

impl WasiHttpHooks for Hooks {
    /// The host sets `host` itself, from the URL that was checked.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let plan = self.state.take_pending();
        let shared = self.state.shared().cloned();
        Box::new(async move {
            match (plan, shared) {
                (Some(plan), Some(shared)) => send(shared, plan, request, options).await,
                // Only `handle` sends, and only with a plan: anything else is
                // a request nobody checked.
                _ => Err(Error::HttpRequestDenied),
            }
        })
    }
}

/// Why an exchange failed before its response head arrived.
struct Failure {
    error: Error,
    denied: Option<Denied>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            denied: None,
        }
    }
}

async fn send(
    shared: Arc<Shared>,
    plan: Plan,
    request: Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Sent {
    let exchange = plan.exchange.clone();
    shared.opened(&exchange);
    let head = match approve(&shared, &plan).await {
        Ok(approved) => {
            exchange_head(
                &shared,
                &plan,
                request,
                options.unwrap_or_default(),
                approved,
            )
            .await
        }
        Err(failure) => Err(failure),
    };
    match head {
        Ok(sent) => Ok(sent),
        Err(failure) => {
            let outcome = format!("error:{}", error_code(&failure.error));
            let recorded = match &failure.denied {
                Some(denied) => exchange.deny(&shared, denied, &outcome),
                None => exchange.end(&shared, &outcome),
            };
            match recorded {
                Ok(()) => Err(failure.error),
                Err(e) => Err(Error::InternalError(Some(format!("audit: {e:#}")))),
            }
        }
    }
}

/// What the approvers said yes to.
#[derive(Default)]
struct Approved {
    /// How long the answers took.
    waited: Duration,
    /// For each gated secret to inject (its index), the rule its `secret.use`
    /// record states.
    secrets: Vec<(usize, String)>,
}

/// Asks the task's approver about the request, if a gate covers it, and
/// about each gated secret it would carry; stops at the first refusal,
/// which fails the request.
async fn approve(shared: &Shared, plan: &Plan) -> Result<Approved, Failure> {
    const CALL: &str = "wasi:http/outgoing-handler.handle";
    let start = Instant::now();
    let mut approved = Approved::default();
    let approvals = &plan.approvals;
    let method = &plan.exchange.method;
    let url = plan.allowed.url();
    let audit_failed = |e: anyhow::Error| Failure {
        error: Error::InternalError(Some(format!("audit: {e:#}"))),
        denied: None,
    };
    if let Some(gate) = approvals.http_gate(method, url) {
        let mut rule = plan.allowed.to_string();
        if plan.allowed.rule != gate {
            rule = format!("{rule} (approval required by [[http]] {gate})");
        }
        let question = Question {
            call: CALL,
            kind: ApprovalKind::HttpRequest,
            resource: format!("{method} {url}"),
            rule,
            action: format!("send {method} {url}"),
        };
        let asked = approvals.ask(question).await;
        shared.emit(&asked.event).map_err(audit_failed)?;
        if !asked.approved {
            return Err(Failure {
                error: Error::HttpRequestDenied,
                denied: Some(Denied::NotApproved { rule: asked.rule }),
            });
        }
    }
    for &index in &plan.inject {
        let spec = &shared.secrets.specs()[index];
        let Some(inject) = spec
            .inject
            .as_ref()
            .filter(|_| approvals.secret_gated(&spec.name))
        else {
            continue;
        };
        let question = Question {
            call: CALL,
            kind: ApprovalKind::SecretUse,
            resource: format!("secret {}", spec.name),
            rule: format!("{}.inject {}", spec.label(), inject.url),
            action: format!(
                "send secret {:?} with {method} {url} to {}",
                spec.name, spec.purpose
            ),
        };
        let asked = approvals.ask(question).await;
        shared.emit(&asked.event).map_err(audit_failed)?;
        if !asked.approved {
            let ev = use_event(shared, plan, index)
                .deny(asked.rule.clone())
                .outcome("error:denied");
            shared.emit(&ev).map_err(audit_failed)?;
            return Err(Failure {
                error: Error::HttpRequestDenied,
                denied: Some(Denied::NotApproved { rule: asked.rule }),
            });
        }
        approved.secrets.push((index, asked.rule));
    }
    if approvals.gates().is_some() {
        approved.waited = start.elapsed();
    }
    Ok(approved)
}

/// Connects, sends and waits for the response head.
async fn exchange_head(
    shared: &Arc<Shared>,
    plan: &Plan,
    request: Request<WasiBody>,
    opts: RequestOptions,
    approved: Approved,
) -> Result<(Response<WasiBody>, IoFuture), Failure> {
    let left = plan
        .exchange
        .remaining(&plan.limits, shared.deadline, approved.waited);
    let deadline = Instant::now() + left;
    let within = |guest: Option<Duration>| {
        let left = deadline.saturating_duration_since(Instant::now());
        guest.map_or(left, |g| g.min(left))
    };
    let allowed = &plan.allowed;

    let addrs = resolve(allowed.host(), allowed.port(), within(opts.connect_timeout)).await?;
    let mut permitted = Vec::new();
    let mut refused = None;
    for addr in addrs {
        match shared.egress.check_addr(allowed, addr.ip()) {
            Ok(()) => permitted.push(addr),
            Err(denied) => {
                refused.get_or_insert(denied);
            }
        }
    }
    if permitted.is_empty() {
        return Err(Failure {
            error: Error::HttpRequestDenied,
            denied: refused,
        });
    }
    let (tcp, addr) = connect(&permitted, within(opts.connect_timeout)).await?;
    lock(&plan.exchange.state).addr = Some(addr);

    let stream: Box<dyn Stream> = if allowed.url().starts_with("https:") {
        Box::new(tls(tcp, allowed.host(), within(opts.connect_timeout)).await?)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = timeout(
        within(opts.connect_timeout),
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)?
    .map_err(Error::from)?;

    let (mut parts, body) = request.into_parts();
    parts.uri = origin_form(allowed.url())?;
    parts.headers.remove(HOST);
    parts.headers.insert(
        HOST,
        HeaderValue::from_str(&host_header(allowed.url())?)
            .map_err(|_| Error::HttpRequestUriInvalid)?,
    );
    inject(shared, plan, &approved.secrets, &mut parts.headers).await?;
    let body = RequestBody {
        inner: body,
        sent: 0,
        limit: plan.limits.request_body,
        exchange: plan.exchange.clone(),
    };
    let request = Request::from_parts(parts, body.boxed_unsync());

    let first_byte = within(opts.first_byte_timeout);
    let send = async move {
        timeout(first_byte, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)
    };
    let mut send = std::pin::pin!(send);
    let mut conn = Some(conn);
    // The connection has to be driven while the response head is awaited.
    let response = std::future::poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => {
            let Some(c) = conn.as_mut() else {
                return Poll::Pending;
            };
            let done = ready!(Pin::new(c).poll(cx));
            conn = None;
            match done {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        }
    })
    .await?;

    let status = response.status().as_u16();
    // Every value the task holds is scrubbed from what comes back, whether
    // or not this request carried it: a server may echo a secret it got
    // some other way.
    let redactor = shared.secrets.redactor();
    let mut response = response;
    if !redactor.is_empty() {
        for value in response.headers_mut().values_mut() {
            if let std::borrow::Cow::Owned(clean) = redactor.redact(value.as_bytes()) {
                *value = HeaderValue::from_bytes(&clean).map_err(|_| Error::HttpProtocolError)?;
            }
        }
    }
    {
        let mut st = lock(&plan.exchange.state);
        st.status = Some(status);
        st.redacted = redactor.count();
    }
    let redactor = (!redactor.is_empty()).then_some(redactor);
    let between = opts.between_bytes_timeout;
    let response = response.map(|incoming| {
        ResponseBody {
            inner: incoming,
            redactor,
            pending: None,
            received: 0,
            limit: plan.limits.response_body,
            deadline: Box::pin(sleep_until(deadline.into())),
            between,
            idle: between.map(|d| Box::pin(tokio::time::sleep(d))),
            exchange: plan.exchange.clone(),
            shared: shared.clone(),
        }
        .boxed_unsync()
    });
    let io: IoFuture = Box::new(async move {
        match conn {
            Some(conn) => conn.await.map_err(Error::from),
            None => Ok(()),
        }
    });
    Ok((response, io))
}

async fn resolve(host: &str, port: u16, within: Duration) -> Result<Vec<SocketAddr>, Failure> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = timeout(within, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|e| Error::DnsError {
            rcode: Some(e.to_string()),
            info_code: None,
        })?;
    Ok(found.collect())
}

async fn connect(addrs: &[SocketAddr], within: Duration) -> Result<(TcpStream, SocketAddr), Error> {
    let mut last = Error::ConnectionRefused;
    for &addr in addrs {
        // A SocketAddr, never a name: the address that was checked is the
        // one connected to.
        match timeout(within, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok((stream, addr)),
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    Err(last)
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

async fn tls(
    tcp: TcpStream,
    host: &str,
    within: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    use rustls::pki_types::ServerName;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = match bare.parse::<IpAddr>() {
        Ok(ip) => ServerName::from(ip),
        Err(_) => ServerName::try_from(bare.to_owned()).map_err(Error::InvalidDnsNameError)?,
    };
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    timeout(within, connector.connect(name, tcp))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Tls)
}

/// The path and query of the checked URL, as sent on the request line.
fn origin_form(url: &str) -> Result<Uri, Error> {
    let parsed = url::Url::parse(url).map_err(|_| Error::HttpRequestUriInvalid)?;
    let mut target = parsed.path().to_owned();
    if let Some(q) = parsed.query() {
        target.push('?');
        target.push_str(q);
    }
    target.parse().map_err(|_| Error::HttpRequestUriInvalid)
}

/// The `host` header of the checked URL: the port only where it is not the
/// scheme's.
fn host_header(url: &str) -> Result<String, Error> {
    let parsed = url::Url::parse(url).map_err(|_| Error::HttpRequestUriInvalid)?;
    let host = parsed.host_str().ok_or(Error::HttpRequestUriInvalid)?;
    Ok(match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The WIT name of the error code the guest will see for `e`.
fn error_code(e: &Error) -> &'static str {
    match e {
        Error::HttpRequestDenied => "HTTP-request-denied",
        Error::DnsTimeout => "DNS-timeout",
        Error::DnsError { .. } | Error::InvalidDnsNameError(_) => "DNS-error",
        Error::Connect(_) | Error::ConnectionRefused => "connection-refused",
        Error::ConnectionTimeout => "connection-timeout",
        Error::ConnectionReadTimeout => "connection-read-timeout",
        Error::Tls(_) | Error::TlsProtocolError => "TLS-protocol-error",
        Error::TlsCertificateError => "TLS-certificate-error",
        Error::HttpRequestBodySize(_) => "HTTP-request-body-size",
        Error::HttpResponseBodySize(_) => "HTTP-response-body-size",
        Error::HttpRequestUriInvalid => "HTTP-request-URI-invalid",
        Error::HttpResponseTimeout => "HTTP-response-timeout",
        Error::Hyper(_) | Error::HttpProtocolError => "HTTP-protocol-error",
        _ => "internal-error",
    }
}

/// The guest's request body, counted against the rule's limit.
struct RequestBody {
    inner: WasiBody,
    sent: u64,
    limit: u64,
    exchange: Arc<Exchange>,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame
            && let Some(data) = f.data_ref()
        {
            self.sent += data.len() as u64;
            lock(&self.exchange.state).request_bytes = self.sent;
            if self.sent > self.limit {
                return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(self.sent)))));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The `secret.use` record of injecting the plan's secret `index`, without
/// its decision.
fn use_event(shared: &Shared, plan: &Plan, index: usize) -> crate::audit::Event {
    let spec = &shared.secrets.specs()[index];
    let mut ev = shared.secrets.use_event(spec, "inject");
    if let Some(args) = ev.args.as_object_mut() {
        args.insert("destination".into(), json!(plan.allowed.url()));
        if let Some(inject) = &spec.inject {
            args.insert("header".into(), json!(inject.header));
        }
        args.insert("method".into(), json!(plan.exchange.method));
    }
    ev
}

/// Adds the header of each secret the plan injects, once the address has
/// been checked and the connection is up, and records each use; `approved`
/// holds the rule for each gated secret an approver let through.
async fn inject(
    shared: &Shared,
    plan: &Plan,
    approved: &[(usize, String)],
    headers: &mut http::HeaderMap,
) -> Result<(), Failure> {
    for &index in &plan.inject {
        let spec = &shared.secrets.specs()[index];
        let Some(inject) = &spec.inject else { continue };
        let unavailable = |why: String| Failure {
            error: Error::InternalError(Some(format!("secret {:?}: {why}", spec.name))),
            denied: None,
        };
        let value = shared
            .secrets
            .value(&spec.name)
            .await
            .map_err(|e| unavailable(e.code().to_owned()))?;
        let line = inject
            .header_value(&value)
            .map_err(|e| unavailable(e.to_string()))?;
        let mut header = HeaderValue::from_bytes(line.expose())
            .map_err(|_| unavailable("not a valid header value".into()))?;
        // hyper and any tracing keep sensitive values out of their output.
        header.set_sensitive(true);
        let name = http::HeaderName::from_bytes(inject.header.as_bytes())
            .map_err(|_| unavailable("not a valid header name".into()))?;
        headers.insert(name, header);
        let rule = match approved.iter().find(|(i, _)| *i == index) {
            Some((_, rule)) => rule.clone(),
            None => format!("{}.inject {}", spec.label(), inject.url),
        };
        let ev = use_event(shared, plan, index).allow(rule).outcome("ok");
        shared
            .emit(&ev)
            .map_err(|e| unavailable(format!("audit log write failed: {e:#}")))?;
    }
    Ok(())
}

/// The response body on its way to the guest: scrubbed of the task's
/// secret values even where one is split across frames, counted against
/// the rule's limit, cut at the deadline, and recorded when it ends.
struct ResponseBody {
    inner: hyper::body::Incoming,
    redactor: Option<crate::secrets::Redactor>,
    /// A frame held while the redactor's tail goes out before it.
    pending: Option<Frame<Bytes>>,
    received: u64,
    limit: u64,
    deadline: Pin<Box<Sleep>>,
    between: Option<Duration>,
    idle: Option<Pin<Box<Sleep>>>,
    exchange: Arc<Exchange>,
    shared: Arc<Shared>,
}

impl ResponseBody {
    /// The redactor's held-back tail at the end of the body, if any.
    fn flush(&mut self) -> Option<Bytes> {
        let tail = self.redactor.as_mut().map(|r| r.finish())?;
        self.count_redactions();
        (!tail.is_empty()).then(|| Bytes::from(tail))
    }

    fn count_redactions(&self) {
        if let Some(r) = &self.redactor {
            lock(&self.exchange.state).redacted = r.count();
        }
    }

    fn scrub_trailers(&mut self, trailers: Frame<Bytes>) -> Frame<Bytes> {
        let (Some(r), Ok(mut map)) = (self.redactor.as_ref(), trailers.into_trailers()) else {
            return Frame::trailers(http::HeaderMap::new());
        };
        for value in map.values_mut() {
            if let std::borrow::Cow::Owned(clean) = r.redact(value.as_bytes()) {
                *value = HeaderValue::from_bytes(&clean)
                    .unwrap_or_else(|_| HeaderValue::from_static("[REDACTED]"));
            }
        }
        Frame::trailers(map)
    }

    fn fail(&self, error: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let _ = self
            .exchange
            .end(&self.shared, &format!("error:{}", error_code(&error)));
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if let Some(frame) = self.pending.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        loop {
            return match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(d) = self.between {
                        self.idle = Some(Box::pin(tokio::time::sleep(d)));
                    }
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(trailers) => {
                            let trailers = self.scrub_trailers(trailers);
                            // What the redactor held back comes before them.
                            return match self.flush() {
                                Some(tail) => {
                                    self.pending = Some(trailers);
                                    Poll::Ready(Some(Ok(Frame::data(tail))))
                                }
                                None => Poll::Ready(Some(Ok(trailers))),
                            };
                        }
                    };
                    self.received += data.len() as u64;
                    lock(&self.exchange.state).response_bytes = self.received;
                    if self.received > self.limit {
                        let limit = self.limit;
                        return self.fail(Error::HttpResponseBodySize(Some(limit)));
                    }
                    let data = match self.redactor.as_mut() {
                        Some(r) => Bytes::from(r.push(&data)),
                        None => data,
                    };
                    if data.is_empty() {
                        // All of it may still be the start of a value: wait
                        // for more before the guest sees any of it.
                        continue;
                    }
                    self.count_redactions();
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Poll::Ready(Some(Err(e))) => self.fail(Error::from(e)),
                Poll::Ready(None) => {
                    if let Some(tail) = self.flush() {
                        return Poll::Ready(Some(Ok(Frame::data(tail))));
                    }
                    lock(&self.exchange.state).complete = true;
                    let _ = self.exchange.end(&self.shared, "ok");
                    Poll::Ready(None)
                }
                Poll::Pending => {
                    if self.deadline.as_mut().poll(cx).is_ready() {
                        return self.fail(Error::ConnectionReadTimeout);
                    }
                    if let Some(idle) = self.idle.as_mut()
                        && idle.as_mut().poll(cx).is_ready()
                    {
                        return self.fail(Error::ConnectionReadTimeout);
                    }
                    Poll::Pending
                }
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    /// A guest that stops reading early still gets its request recorded.
    fn drop(&mut self) {
        let _ = self.exchange.end(&self.shared, "ok");
    }
}

impl Exchange {
    /// Records a request refused after DNS: the name resolved to an address
    /// the rule does not reach.
    pub(crate) fn deny(
        &self,
        shared: &Shared,
        denied: &Denied,
        outcome: &str,
    ) -> anyhow::Result<()> {
        let mut st = lock(&self.state);
        if st.ended {
            return Ok(());
        }
        st.ended = true;
        drop(st);
        let ev = crate::audit::Event::new("http.end")
            .args(json!({ "method": self.method, "url": self.url, "rule": self.rule }))
            .resource(format!("{} {}", self.method, self.url))
            .deny(denied.to_string())
            .outcome(outcome)
            .took(self.started.elapsed());
        shared.emit(&ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_line_and_host_come_from_the_checked_url() {
        let u = "http://127.0.0.1:8080/a/b?x=1&y=%20";
        assert_eq!(origin_form(u).unwrap(), "/a/b?x=1&y=%20");
        assert_eq!(host_header(u).unwrap(), "127.0.0.1:8080");
        // The scheme's own port is left out, as clients do.
        assert_eq!(
            host_header("https://api.github.com:443/").unwrap(),
            "api.github.com"
        );
        assert_eq!(host_header("http://[::1]:9/").unwrap(), "[::1]:9");
        assert_eq!(origin_form("https://api.github.com").unwrap(), "/");
    }

    #[test]
    fn error_codes_are_named_as_in_wit() {
        assert_eq!(error_code(&Error::HttpRequestDenied), "HTTP-request-denied");
        assert_eq!(
            error_code(&Error::HttpResponseBodySize(Some(1))),
            "HTTP-response-body-size"
        );
        assert_eq!(
            error_code(&Error::ConnectionReadTimeout),
            "connection-read-timeout"
        );
    }
}
