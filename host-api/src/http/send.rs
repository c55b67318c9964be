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
//!
//! On a request that carries a secret, Warden owns content negotiation
//! ([`super::coding`]): it asks for the codings it decodes, decodes the body
//! before the redactor reads it, and refuses any other coding.

use super::EgressDenied;
use super::coding::{self, Decoder};
use super::state::{Exchange, HttpState, Plan, Shared, lock};
use crate::approval::{ApprovalKind, Question};
use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, HOST, HeaderValue, TE};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use serde_json::json;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
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
    denied: Option<EgressDenied>,
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
                denied: Some(EgressDenied::NotApproved { rule: asked.rule }),
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
                denied: Some(EgressDenied::NotApproved { rule: asked.rule }),
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
        .remaining(&plan.limits, shared.cx.deadline(), approved.waited);
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
    // What the tool asked for would come back in codings Warden may not
    // read; a transfer coding (`te`) would too.
    let negotiated = !plan.inject.is_empty();
    if negotiated {
        parts
            .headers
            .insert(ACCEPT_ENCODING, HeaderValue::from_static(coding::ACCEPT));
        parts.headers.remove(TE);
    }
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
    lock(&plan.exchange.state).status = Some(status);
    let mut response = response;
    let decoder = match negotiated {
        true => decoder_for(shared, plan, response.headers_mut()).map_err(|f| *f)?,
        false => None,
    };
    // Every value the task holds is scrubbed from what comes back, whether
    // or not this request carried it: a server may echo a secret it got
    // some other way.
    let redactor = shared.secrets.redactor();
    if !redactor.is_empty() {
        for value in response.headers_mut().values_mut() {
            if let std::borrow::Cow::Owned(clean) = redactor.redact(value.as_bytes()) {
                *value = HeaderValue::from_bytes(&clean).map_err(|_| Error::HttpProtocolError)?;
            }
        }
    }
    // The body the tool reads is not the one the server measured.
    let transformed = decoder.is_some() || !redactor.is_empty();
    if transformed {
        response.headers_mut().remove(CONTENT_LENGTH);
    }
    lock(&plan.exchange.state).redacted = redactor.count();
    let redactor = (!redactor.is_empty()).then_some(redactor);
    let between = opts.between_bytes_timeout;
    let response = response.map(|incoming| {
        ResponseBody {
            inner: incoming,
            redactor,
            decoder,
            transformed,
            trailers: None,
            input_done: false,
            done: false,
            received: 0,
            decoded: 0,
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

/// The decoder for the response to a request that carried a secret, with
/// `content-encoding` taken off the headers the tool gets; or the refusal of
/// a coding Warden does not decode.
fn decoder_for(
    shared: &Shared,
    plan: &Plan,
    headers: &mut http::HeaderMap,
) -> Result<Option<Decoder>, Box<Failure>> {
    let refuse = |header: &str, value: String| {
        let secrets = plan
            .inject
            .iter()
            .map(|&i| format!("secret {:?}", shared.secrets.specs()[i].name))
            .collect::<Vec<_>>()
            .join(", ");
        let error = match header {
            "transfer-encoding" => Error::HttpResponseTransferCoding(Some(value.clone())),
            _ => Error::HttpResponseContentCoding(Some(value.clone())),
        };
        Box::new(Failure {
            error,
            denied: Some(EgressDenied::Coding {
                header: header.to_owned(),
                value,
                secrets,
                accept: coding::ACCEPT,
            }),
        })
    };
    let found = coding::of(headers).map_err(|r| refuse(r.header, r.value))?;
    headers.remove(CONTENT_ENCODING);
    let Some(found) = found else {
        return Ok(None);
    };
    let decoder = Decoder::new(found)
        .map_err(|e| Failure::from(Error::InternalError(Some(e.to_string()))))?;
    lock(&plan.exchange.state).decoded = Some((found.name(), 0));
    Ok(Some(decoder))
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
    let connector = tokio_rustls::TlsConnector::from(crate::tls::web_client_config());
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
        Error::HttpResponseContentCoding(_) => "HTTP-response-content-coding",
        Error::HttpResponseTransferCoding(_) => "HTTP-response-transfer-coding",
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

/// The response body on its way to the guest: decoded where Warden
/// negotiated its coding, scrubbed of the task's secret values even where one
/// is split across frames, counted against the rule's limit (as received and
/// as decoded), cut at the deadline, and recorded when it ends.
struct ResponseBody {
    inner: hyper::body::Incoming,
    redactor: Option<crate::secrets::Redactor>,
    /// Decodes the body first, where the request carried a secret and the
    /// response came in a coding.
    decoder: Option<Decoder>,
    /// Decoded or redacted: the server's length is not this body's.
    transformed: bool,
    /// The response's trailers, once every byte before them is out.
    trailers: Option<Frame<Bytes>>,
    /// The server's body has ended (the decoder may still hold some of it).
    input_done: bool,
    /// Everything has been handed out.
    done: bool,
    received: u64,
    decoded: u64,
    limit: u64,
    deadline: Pin<Box<Sleep>>,
    between: Option<Duration>,
    idle: Option<Pin<Box<Sleep>>>,
    exchange: Arc<Exchange>,
    shared: Arc<Shared>,
}

type Polled = Poll<Option<Result<Frame<Bytes>, Error>>>;

/// What one step of the decoder gave.
enum Decoded {
    /// Something to return from `poll_frame`.
    Ready(Polled),
    /// Bytes that all went into the redactor's hold-back: step again.
    Again,
    /// No step to take: the decoder waits for the server's body, or is done.
    Idle,
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

    fn fail(&mut self, error: Error, why: Option<String>) -> Polled {
        self.done = true;
        if why.is_some() {
            lock(&self.exchange.state).error = why;
        }
        // The guest gets the error either way; a record that could not be written
        // stops the task at its next call (see `HttpState::unrecorded`).
        let _ = self
            .exchange
            .end(&self.shared, &format!("error:{}", error_code(&error)));
        Poll::Ready(Some(Err(error)))
    }

    /// Plain bytes of the body, redacted: what the guest may see of them now.
    fn deliver(&mut self, data: Bytes) -> Option<Bytes> {
        let data = match self.redactor.as_mut() {
            Some(r) => Bytes::from(r.push(&data)),
            None => data,
        };
        self.count_redactions();
        // Empty: all of it may still be the start of a value; wait for more
        // before the guest sees any of it.
        (!data.is_empty()).then_some(data)
    }

    fn end_input(&mut self) {
        self.input_done = true;
        if let Some(d) = self.decoder.as_mut() {
            d.end();
        }
    }

    /// The next step of the decoder, if it has one to take.
    fn decode(&mut self) -> Decoded {
        let input_done = self.input_done;
        let Some(decoder) = self.decoder.as_mut() else {
            return Decoded::Idle;
        };
        if decoder.wants_input() && !input_done {
            return Decoded::Idle;
        }
        match decoder.next() {
            Ok(Some(plain)) => {
                self.decoded += plain.len() as u64;
                let name = decoder.coding().name();
                lock(&self.exchange.state).decoded = Some((name, self.decoded));
                if self.decoded > self.limit {
                    let why = format!(
                        "the {name} body decodes to more than the rule's response_body limit"
                    );
                    let limit = Error::HttpResponseBodySize(Some(self.limit));
                    return Decoded::Ready(self.fail(limit, Some(why)));
                }
                match self.deliver(Bytes::from(plain)) {
                    Some(data) => Decoded::Ready(Poll::Ready(Some(Ok(Frame::data(data))))),
                    None => Decoded::Again,
                }
            }
            Ok(None) => {
                if input_done {
                    self.decoder = None;
                }
                Decoded::Idle
            }
            Err(e) => {
                let code = Error::HttpResponseContentCoding(Some(e.coding.to_owned()));
                Decoded::Ready(self.fail(code, Some(e.to_string())))
            }
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            // Decoded bytes first, one bounded step at a time.
            match this.decode() {
                Decoded::Ready(polled) => return polled,
                Decoded::Again => continue,
                Decoded::Idle => {}
            }
            if this.input_done {
                // All decoded: the redactor's tail, then the trailers, then
                // the end.
                if let Some(tail) = this.flush() {
                    return Poll::Ready(Some(Ok(Frame::data(tail))));
                }
                if let Some(trailers) = this.trailers.take() {
                    return Poll::Ready(Some(Ok(trailers)));
                }
                this.done = true;
                lock(&this.exchange.state).complete = true;
                // A body whose end is not on record does not end cleanly for the guest;
                // the task's next host call traps (see `HttpState::unrecorded`).
                if let Err(e) = this.exchange.end(&this.shared, "ok") {
                    let why = format!("audit log write failed: {e:#}");
                    return Poll::Ready(Some(Err(Error::InternalError(Some(why)))));
                }
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(d) = this.between {
                        this.idle = Some(Box::pin(tokio::time::sleep(d)));
                    }
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(trailers) => {
                            this.trailers = Some(this.scrub_trailers(trailers));
                            this.end_input();
                            continue;
                        }
                    };
                    this.received += data.len() as u64;
                    lock(&this.exchange.state).response_bytes = this.received;
                    if this.received > this.limit {
                        let limit = this.limit;
                        return this.fail(Error::HttpResponseBodySize(Some(limit)), None);
                    }
                    if let Some(decoder) = this.decoder.as_mut() {
                        decoder.feed(data);
                        continue;
                    }
                    if let Some(data) = this.deliver(data) {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Poll::Ready(Some(Err(e))) => return this.fail(Error::from(e), None),
                Poll::Ready(None) => this.end_input(),
                Poll::Pending => {
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        return this.fail(Error::ConnectionReadTimeout, None);
                    }
                    if let Some(idle) = this.idle.as_mut()
                        && idle.as_mut().poll(cx).is_ready()
                    {
                        return this.fail(Error::ConnectionReadTimeout, None);
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        if self.transformed {
            return SizeHint::default();
        }
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    /// A guest that stops reading early still gets its request recorded; if it cannot be,
    /// the task's next host call traps (see `HttpState::unrecorded`).
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
        denied: &EgressDenied,
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
