//! `wasi:http` as the guest sees it: every call recorded, and the one that
//! sends a request (`outgoing-handler.handle`) checked against the task's
//! `[[http]]` rules before anything leaves the host.
//!
//! Building a request (fields, methods, paths, bodies) touches nothing
//! outside the task, so those calls are summed per call name unless the
//! audit level is `full`; `handle` is recorded once per request with the
//! rule that allowed it or the reason it was refused. Header values are
//! checked as they are set, so a CR or LF never gets into a request.

use super::{EgressDenied, check_header};
use crate::audit::Event;
use crate::interpose::{
    CallOutcome, ErrorName, Guarded, HostState, Mode, Recorded, Ret, Size, WardenView, args,
    no_size, passthrough,
};
use serde_json::json;
use std::time::Instant;
use wasmtime::Result;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable};
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler;
use wasmtime_wasi_http::p2::bindings::http::types::{
    self, ErrorCode, Method, Scheme, StatusCode, Trailers,
};
use wasmtime_wasi_http::p2::body::{HostFutureTrailers, HostIncomingBody, HostOutgoingBody};
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostIncomingRequest, HostIncomingResponse, HostOutgoingRequest,
    HostOutgoingResponse, HostResponseOutparam,
};
use wasmtime_wasi_http::p2::{HeaderError, HeaderResult, HttpError, HttpResult};
use wasmtime_wasi_http::{FieldMap, RequestOptions, WasiHttpCtxView};

type View<'a> = WasiHttpCtxView<'a>;
type TrailersResult = Option<Result<Result<Option<Resource<Trailers>>, ErrorCode>, ()>>;

struct HttpData;

impl HasData for HttpData {
    type Data<'a> = Guarded<'a, WasiHttpCtxView<'a>>;
}

fn view<T: WardenView>(t: &mut T) -> Guarded<'_, WasiHttpCtxView<'_>> {
    let (inner, host) = t.split_http();
    Guarded { inner, host }
}

/// Adds `wasi:http/types` and `wasi:http/outgoing-handler` to `linker`.
pub(crate) fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    outgoing_handler::add_to_linker::<T, HttpData>(linker, view::<T>)?;
    types::add_to_linker::<T, HttpData>(linker, &Default::default(), view::<T>)?;
    Ok(())
}

impl ErrorName for ErrorCode {
    fn error_name(&self) -> &'static str {
        error_name(self)
    }
}

/// The WIT case name of an `error-code`, for records.
pub(crate) fn error_name(code: &ErrorCode) -> &'static str {
    match code {
        ErrorCode::DnsTimeout => "DNS-timeout",
        ErrorCode::DnsError(_) => "DNS-error",
        ErrorCode::DestinationNotFound => "destination-not-found",
        ErrorCode::DestinationUnavailable => "destination-unavailable",
        ErrorCode::DestinationIpProhibited => "destination-IP-prohibited",
        ErrorCode::DestinationIpUnroutable => "destination-IP-unroutable",
        ErrorCode::ConnectionRefused => "connection-refused",
        ErrorCode::ConnectionTerminated => "connection-terminated",
        ErrorCode::ConnectionTimeout => "connection-timeout",
        ErrorCode::ConnectionReadTimeout => "connection-read-timeout",
        ErrorCode::ConnectionWriteTimeout => "connection-write-timeout",
        ErrorCode::ConnectionLimitReached => "connection-limit-reached",
        ErrorCode::TlsProtocolError => "TLS-protocol-error",
        ErrorCode::TlsCertificateError => "TLS-certificate-error",
        ErrorCode::TlsAlertReceived(_) => "TLS-alert-received",
        ErrorCode::HttpRequestDenied => "HTTP-request-denied",
        ErrorCode::HttpRequestLengthRequired => "HTTP-request-length-required",
        ErrorCode::HttpRequestBodySize(_) => "HTTP-request-body-size",
        ErrorCode::HttpRequestMethodInvalid => "HTTP-request-method-invalid",
        ErrorCode::HttpRequestUriInvalid => "HTTP-request-URI-invalid",
        ErrorCode::HttpRequestUriTooLong => "HTTP-request-URI-too-long",
        ErrorCode::HttpRequestHeaderSectionSize(_) => "HTTP-request-header-section-size",
        ErrorCode::HttpRequestHeaderSize(_) => "HTTP-request-header-size",
        ErrorCode::HttpRequestTrailerSectionSize(_) => "HTTP-request-trailer-section-size",
        ErrorCode::HttpRequestTrailerSize(_) => "HTTP-request-trailer-size",
        ErrorCode::HttpResponseIncomplete => "HTTP-response-incomplete",
        ErrorCode::HttpResponseHeaderSectionSize(_) => "HTTP-response-header-section-size",
        ErrorCode::HttpResponseHeaderSize(_) => "HTTP-response-header-size",
        ErrorCode::HttpResponseBodySize(_) => "HTTP-response-body-size",
        ErrorCode::HttpResponseTrailerSectionSize(_) => "HTTP-response-trailer-section-size",
        ErrorCode::HttpResponseTrailerSize(_) => "HTTP-response-trailer-size",
        ErrorCode::HttpResponseTransferCoding(_) => "HTTP-response-transfer-coding",
        ErrorCode::HttpResponseContentCoding(_) => "HTTP-response-content-coding",
        ErrorCode::HttpResponseTimeout => "HTTP-response-timeout",
        ErrorCode::HttpUpgradeFailed => "HTTP-upgrade-failed",
        ErrorCode::HttpProtocolError => "HTTP-protocol-error",
        ErrorCode::LoopDetected => "loop-detected",
        ErrorCode::ConfigurationError => "configuration-error",
        ErrorCode::InternalError(_) => "internal-error",
    }
}

fn header_error_name(e: &types::HeaderError) -> &'static str {
    match e {
        types::HeaderError::InvalidSyntax => "invalid-syntax",
        types::HeaderError::Forbidden => "forbidden",
        types::HeaderError::Immutable => "immutable",
    }
}

impl<T: Size> Ret for HttpResult<T> {
    fn outcome(&self) -> CallOutcome {
        match self {
            Ok(v) => CallOutcome::ok(v.size()),
            Err(e) => match e.downcast_ref() {
                Some(code) => CallOutcome::err(format!("error:{}", error_name(code))),
                None => CallOutcome::err(format!("trap:{e}")),
            },
        }
    }
    fn trap(e: wasmtime::Error) -> Self {
        Err(HttpError::trap(e))
    }
}

impl<T: Size> Ret for HeaderResult<T> {
    fn outcome(&self) -> CallOutcome {
        match self {
            Ok(v) => CallOutcome::ok(v.size()),
            Err(e) => match e.downcast_ref() {
                Some(code) => CallOutcome::err(format!("error:{}", header_error_name(code))),
                None => CallOutcome::err(format!("trap:{e}")),
            },
        }
    }
    fn trap(e: wasmtime::Error) -> Self {
        Err(HeaderError::trap(e))
    }
}

crate::interpose::debug_arg!(
    Method,
    Option<Scheme>,
    Option<u64>,
    Result<Resource<HostOutgoingResponse>, ErrorCode>,
    Option<Resource<Trailers>>,
    Option<Resource<types::RequestOptions>>,
);

impl crate::interpose::Arg for Option<String> {
    fn arg(&self) -> crate::interpose::ArgValue {
        crate::interpose::ArgValue::Json(json!(self))
    }
}

impl crate::interpose::Arg for Vec<Vec<u8>> {
    fn arg(&self) -> crate::interpose::ArgValue {
        crate::interpose::ArgValue::Json(json!({ "values": self.len() }))
    }
}

no_size!(
    Method,
    types::ErrorCode,
    types::HeaderError,
    Vec<Vec<u8>>,
    Vec<(String, Vec<u8>)>,
    Result<(), ()>,
);
impl<T> Size for Result<Resource<T>, ()> {}

passthrough! {
    impl types::Host => View<'_> {
        own fn convert_error_code(&mut self, err: HttpError) -> Result<ErrorCode> {
            types::Host::convert_error_code(&mut self.inner, err)
        }
        own fn convert_header_error(&mut self, err: HeaderError) -> Result<types::HeaderError> {
            types::Host::convert_header_error(&mut self.inner, err)
        }
        ["wasi:http/types.http-error-code" Each]
        fn http_error_code(&mut self, err: Resource<types::IoError>) -> Result<Option<ErrorCode>>;
    }
}

impl Guarded<'_, View<'_>> {
    /// Refuses a header the guest tries to set, with a deny record, before
    /// it is stored anywhere.
    fn check_headers<'h>(
        &mut self,
        call: &'static str,
        start: Instant,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Option<HeaderError> {
        for (name, value) in headers {
            if let Err(denied) = check_header(name, value) {
                let ev = Event::call(call)
                    .args(json!({ "name": name.escape_debug().to_string(), "value_len": value.len() }))
                    .deny(denied.to_string())
                    .outcome("error:invalid-syntax")
                    .took(start.elapsed());
                return Some(match self.host.call(Recorded::Event(ev)) {
                    Ok(()) => types::HeaderError::InvalidSyntax.into(),
                    Err(e) => HeaderError::trap(e),
                });
            }
        }
        None
    }
}

passthrough! {
    impl types::HostFields => View<'_> {
        ["wasi:http/types.[constructor]fields" Interface]
        fn new(&mut self) -> Result<Resource<FieldMap>>;
        own fn from_list(&mut self, entries: Vec<(String, Vec<u8>)>) -> HeaderResult<Resource<FieldMap>> {
            const CALL: &str = "wasi:http/types.[static]fields.from-list";
            let start = Instant::now();
            let pairs = entries.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
            if let Some(e) = self.check_headers(CALL, start, pairs) {
                return Err(e);
            }
            let a = vec![("entries", crate::interpose::ArgValue::Json(json!({ "count": entries.len() })))];
            let r = types::HostFields::from_list(&mut self.inner, entries);
            let outcome = r.outcome();
            if let Err(e) = self.finish(CALL, Mode::Interface, start, a, outcome) {
                return Err(HeaderError::trap(e));
            }
            r
        }
        ["wasi:http/types.[resource-drop]fields" Interface]
        fn drop(&mut self, fields: Resource<FieldMap>) -> Result<()>;
        ["wasi:http/types.[method]fields.get" Interface]
        fn get(&mut self, fields: Resource<FieldMap>, name: String) -> Result<Vec<Vec<u8>>>;
        ["wasi:http/types.[method]fields.has" Interface]
        fn has(&mut self, fields: Resource<FieldMap>, name: String) -> Result<bool>;
        own fn set(&mut self, fields: Resource<FieldMap>, name: String, values: Vec<Vec<u8>>) -> HeaderResult<()> {
            const CALL: &str = "wasi:http/types.[method]fields.set";
            let start = Instant::now();
            let pairs = values.iter().map(|v| (name.as_str(), v.as_slice()));
            if let Some(e) = self.check_headers(CALL, start, pairs) {
                return Err(e);
            }
            let a = args!(fields, name, values);
            let r = types::HostFields::set(&mut self.inner, fields, name, values);
            let outcome = r.outcome();
            if let Err(e) = self.finish(CALL, Mode::Interface, start, a, outcome) {
                return Err(HeaderError::trap(e));
            }
            r
        }
        ["wasi:http/types.[method]fields.delete" Interface]
        fn delete(&mut self, fields: Resource<FieldMap>, name: String) -> HeaderResult<()>;
        own fn append(&mut self, fields: Resource<FieldMap>, name: String, value: Vec<u8>) -> HeaderResult<()> {
            const CALL: &str = "wasi:http/types.[method]fields.append";
            let start = Instant::now();
            if let Some(e) = self.check_headers(CALL, start, [(name.as_str(), value.as_slice())]) {
                return Err(e);
            }
            let a = args!(fields, name, value);
            let r = types::HostFields::append(&mut self.inner, fields, name, value);
            let outcome = r.outcome();
            if let Err(e) = self.finish(CALL, Mode::Interface, start, a, outcome) {
                return Err(HeaderError::trap(e));
            }
            r
        }
        ["wasi:http/types.[method]fields.entries" Interface]
        fn entries(&mut self, fields: Resource<FieldMap>) -> Result<Vec<(String, Vec<u8>)>>;
        ["wasi:http/types.[method]fields.clone" Interface]
        fn clone(&mut self, fields: Resource<FieldMap>) -> Result<Resource<FieldMap>>;
    }
}

passthrough! {
    impl types::HostIncomingRequest => View<'_> {
        ["wasi:http/types.[method]incoming-request.method" Interface]
        fn method(&mut self, id: Resource<HostIncomingRequest>) -> Result<Method>;
        ["wasi:http/types.[method]incoming-request.path-with-query" Interface]
        fn path_with_query(&mut self, id: Resource<HostIncomingRequest>) -> Result<Option<String>>;
        ["wasi:http/types.[method]incoming-request.scheme" Interface]
        fn scheme(&mut self, id: Resource<HostIncomingRequest>) -> Result<Option<Scheme>>;
        ["wasi:http/types.[method]incoming-request.authority" Interface]
        fn authority(&mut self, id: Resource<HostIncomingRequest>) -> Result<Option<String>>;
        ["wasi:http/types.[method]incoming-request.headers" Interface]
        fn headers(&mut self, id: Resource<HostIncomingRequest>) -> Result<Resource<FieldMap>>;
        ["wasi:http/types.[method]incoming-request.consume" Interface]
        fn consume(&mut self, id: Resource<HostIncomingRequest>) -> Result<Result<Resource<HostIncomingBody>, ()>>;
        ["wasi:http/types.[resource-drop]incoming-request" Interface]
        fn drop(&mut self, id: Resource<HostIncomingRequest>) -> Result<()>;
    }
}

passthrough! {
    impl types::HostOutgoingRequest => View<'_> {
        ["wasi:http/types.[constructor]outgoing-request" Interface]
        fn new(&mut self, headers: Resource<FieldMap>) -> Result<Resource<HostOutgoingRequest>>;
        ["wasi:http/types.[method]outgoing-request.body" Interface]
        fn body(&mut self, request: Resource<HostOutgoingRequest>) -> Result<Result<Resource<HostOutgoingBody>, ()>>;
        ["wasi:http/types.[resource-drop]outgoing-request" Interface]
        fn drop(&mut self, request: Resource<HostOutgoingRequest>) -> Result<()>;
        ["wasi:http/types.[method]outgoing-request.method" Interface]
        fn method(&mut self, request: Resource<HostOutgoingRequest>) -> Result<Method>;
        ["wasi:http/types.[method]outgoing-request.set-method" Interface]
        fn set_method(&mut self, request: Resource<HostOutgoingRequest>, method: Method) -> Result<Result<(), ()>>;
        ["wasi:http/types.[method]outgoing-request.path-with-query" Interface]
        fn path_with_query(&mut self, request: Resource<HostOutgoingRequest>) -> Result<Option<String>>;
        ["wasi:http/types.[method]outgoing-request.set-path-with-query" Interface]
        fn set_path_with_query(&mut self, request: Resource<HostOutgoingRequest>, path_with_query: Option<String>) -> Result<Result<(), ()>>;
        ["wasi:http/types.[method]outgoing-request.scheme" Interface]
        fn scheme(&mut self, request: Resource<HostOutgoingRequest>) -> Result<Option<Scheme>>;
        ["wasi:http/types.[method]outgoing-request.set-scheme" Interface]
        fn set_scheme(&mut self, request: Resource<HostOutgoingRequest>, scheme: Option<Scheme>) -> Result<Result<(), ()>>;
        ["wasi:http/types.[method]outgoing-request.authority" Interface]
        fn authority(&mut self, request: Resource<HostOutgoingRequest>) -> Result<Option<String>>;
        ["wasi:http/types.[method]outgoing-request.set-authority" Interface]
        fn set_authority(&mut self, request: Resource<HostOutgoingRequest>, authority: Option<String>) -> Result<Result<(), ()>>;
        ["wasi:http/types.[method]outgoing-request.headers" Interface]
        fn headers(&mut self, request: Resource<HostOutgoingRequest>) -> Result<Resource<FieldMap>>;
    }
}

passthrough! {
    impl types::HostResponseOutparam => View<'_> {
        ["wasi:http/types.[resource-drop]response-outparam" Interface]
        fn drop(&mut self, id: Resource<HostResponseOutparam>) -> Result<()>;
        ["wasi:http/types.[static]response-outparam.set" Interface]
        fn set(&mut self, id: Resource<HostResponseOutparam>, resp: Result<Resource<HostOutgoingResponse>, ErrorCode>) -> Result<()>;
        ["wasi:http/types.[method]response-outparam.send-informational" Interface]
        fn send_informational(&mut self, id: Resource<HostResponseOutparam>, status: u16, headers: Resource<FieldMap>) -> HttpResult<()>;
    }
}

passthrough! {
    impl types::HostIncomingResponse => View<'_> {
        ["wasi:http/types.[resource-drop]incoming-response" Interface]
        fn drop(&mut self, response: Resource<HostIncomingResponse>) -> Result<()>;
        ["wasi:http/types.[method]incoming-response.status" Interface]
        fn status(&mut self, response: Resource<HostIncomingResponse>) -> Result<StatusCode>;
        ["wasi:http/types.[method]incoming-response.headers" Interface]
        fn headers(&mut self, response: Resource<HostIncomingResponse>) -> Result<Resource<FieldMap>>;
        own fn consume(&mut self, response: Resource<HostIncomingResponse>) -> Result<Result<Resource<HostIncomingBody>, ()>> {
            let name = self.host.names.get(&response.rep()).cloned();
            let start = Instant::now();
            let a = args!(response);
            let r = types::HostIncomingResponse::consume(&mut self.inner, response);
            if let (Ok(Ok(body)), Some(name)) = (&r, name) {
                self.host.name(body.rep(), name);
            }
            let outcome = r.outcome();
            self.finish("wasi:http/types.[method]incoming-response.consume", Mode::Interface, start, a, outcome)?;
            r
        }
    }
}

passthrough! {
    impl types::HostFutureTrailers => View<'_> {
        ["wasi:http/types.[resource-drop]future-trailers" Interface]
        fn drop(&mut self, id: Resource<HostFutureTrailers>) -> Result<()>;
        ["wasi:http/types.[method]future-trailers.subscribe" Interface]
        fn subscribe(&mut self, id: Resource<HostFutureTrailers>) -> Result<Resource<DynPollable>>;
        ["wasi:http/types.[method]future-trailers.get" Interface]
        fn get(&mut self, id: Resource<HostFutureTrailers>) -> Result<TrailersResult>;
    }
}

passthrough! {
    impl types::HostIncomingBody => View<'_> {
        own fn stream(&mut self, id: Resource<HostIncomingBody>) -> Result<Result<Resource<DynInputStream>, ()>> {
            let name = self.host.names.get(&id.rep()).cloned();
            let start = Instant::now();
            let a = args!(id);
            let r = types::HostIncomingBody::stream(&mut self.inner, id);
            // The stream's reads are summed under the request they belong to.
            if let (Ok(Ok(stream)), Some(name)) = (&r, name) {
                self.host.name(stream.rep(), format!("{name} response body"));
            }
            let outcome = r.outcome();
            self.finish("wasi:http/types.[method]incoming-body.stream", Mode::Interface, start, a, outcome)?;
            r
        }
        ["wasi:http/types.[static]incoming-body.finish" Interface]
        fn finish(&mut self, id: Resource<HostIncomingBody>) -> Result<Resource<HostFutureTrailers>>;
        ["wasi:http/types.[resource-drop]incoming-body" Interface]
        fn drop(&mut self, id: Resource<HostIncomingBody>) -> Result<()>;
    }
}

passthrough! {
    impl types::HostOutgoingResponse => View<'_> {
        ["wasi:http/types.[constructor]outgoing-response" Interface]
        fn new(&mut self, headers: Resource<FieldMap>) -> Result<Resource<HostOutgoingResponse>>;
        ["wasi:http/types.[method]outgoing-response.body" Interface]
        fn body(&mut self, id: Resource<HostOutgoingResponse>) -> Result<Result<Resource<HostOutgoingBody>, ()>>;
        ["wasi:http/types.[method]outgoing-response.status-code" Interface]
        fn status_code(&mut self, id: Resource<HostOutgoingResponse>) -> Result<StatusCode>;
        ["wasi:http/types.[method]outgoing-response.set-status-code" Interface]
        fn set_status_code(&mut self, id: Resource<HostOutgoingResponse>, status: StatusCode) -> Result<Result<(), ()>>;
        ["wasi:http/types.[method]outgoing-response.headers" Interface]
        fn headers(&mut self, id: Resource<HostOutgoingResponse>) -> Result<Resource<FieldMap>>;
        ["wasi:http/types.[resource-drop]outgoing-response" Interface]
        fn drop(&mut self, id: Resource<HostOutgoingResponse>) -> Result<()>;
    }
}

passthrough! {
    impl types::HostFutureIncomingResponse => View<'_> {
        ["wasi:http/types.[resource-drop]future-incoming-response" Interface]
        fn drop(&mut self, id: Resource<HostFutureIncomingResponse>) -> Result<()>;
        own fn get(&mut self, id: Resource<HostFutureIncomingResponse>) -> Result<Option<Result<Result<Resource<HostIncomingResponse>, ErrorCode>, ()>>> {
            let name = self.host.names.get(&id.rep()).cloned();
            let start = Instant::now();
            let a = args!(id);
            let r = types::HostFutureIncomingResponse::get(&mut self.inner, id);
            if let (Ok(Some(Ok(Ok(response)))), Some(name)) = (&r, name) {
                self.host.name(response.rep(), name);
            }
            let outcome = match &r {
                Ok(Some(Ok(Err(code)))) => CallOutcome::err(format!("error:{}", error_name(code))),
                other => other.outcome(),
            };
            self.finish("wasi:http/types.[method]future-incoming-response.get", Mode::Interface, start, a, outcome)?;
            r
        }
        ["wasi:http/types.[method]future-incoming-response.subscribe" Interface]
        fn subscribe(&mut self, id: Resource<HostFutureIncomingResponse>) -> Result<Resource<DynPollable>>;
    }
}

passthrough! {
    impl types::HostOutgoingBody => View<'_> {
        own fn write(&mut self, id: Resource<HostOutgoingBody>) -> Result<Result<Resource<DynOutputStream>, ()>> {
            let name = self.host.names.get(&id.rep()).cloned();
            let start = Instant::now();
            let a = args!(id);
            let r = types::HostOutgoingBody::write(&mut self.inner, id);
            if let Ok(Ok(stream)) = &r {
                let name = name.unwrap_or_else(|| "http".into());
                self.host.name(stream.rep(), format!("{name} request body"));
            }
            let outcome = r.outcome();
            self.finish("wasi:http/types.[method]outgoing-body.write", Mode::Interface, start, a, outcome)?;
            r
        }
        ["wasi:http/types.[static]outgoing-body.finish" Interface]
        fn finish(&mut self, id: Resource<HostOutgoingBody>, ts: Option<Resource<Trailers>>) -> HttpResult<()>;
        ["wasi:http/types.[resource-drop]outgoing-body" Interface]
        fn drop(&mut self, id: Resource<HostOutgoingBody>) -> Result<()>;
    }
}

passthrough! {
    impl types::HostRequestOptions => View<'_> {
        ["wasi:http/types.[constructor]request-options" Interface]
        fn new(&mut self) -> Result<Resource<types::RequestOptions>>;
        ["wasi:http/types.[method]request-options.connect-timeout" Interface]
        fn connect_timeout(&mut self, opts: Resource<types::RequestOptions>) -> Result<Option<u64>>;
        ["wasi:http/types.[method]request-options.set-connect-timeout" Interface]
        fn set_connect_timeout(&mut self, opts: Resource<types::RequestOptions>, duration: Option<u64>) -> Result<Result<(), ()>>;
        ["wasi:http/types.[method]request-options.first-byte-timeout" Interface]
        fn first_byte_timeout(&mut self, opts: Resource<types::RequestOptions>) -> Result<Option<u64>>;
        ["wasi:http/types.[method]request-options.set-first-byte-timeout" Interface]
        fn set_first_byte_timeout(&mut self, opts: Resource<types::RequestOptions>, duration: Option<u64>) -> Result<Result<(), ()>>;
        ["wasi:http/types.[method]request-options.between-bytes-timeout" Interface]
        fn between_bytes_timeout(&mut self, opts: Resource<types::RequestOptions>) -> Result<Option<u64>>;
        ["wasi:http/types.[method]request-options.set-between-bytes-timeout" Interface]
        fn set_between_bytes_timeout(&mut self, opts: Resource<types::RequestOptions>, duration: Option<u64>) -> Result<Result<(), ()>>;
        ["wasi:http/types.[resource-drop]request-options" Interface]
        fn drop(&mut self, opts: Resource<types::RequestOptions>) -> Result<()>;
    }
}

impl outgoing_handler::Host for Guarded<'_, View<'_>> {
    fn handle(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        options: Option<Resource<RequestOptions>>,
    ) -> HttpResult<Resource<HostFutureIncomingResponse>> {
        const CALL: &str = "wasi:http/outgoing-handler.handle";
        let start = Instant::now();
        let req = self.inner.table.get(&request)?;
        let (summary, decision) = self.host.http.decide(req).into_parts();
        let decision = decision.and_then(|plan| {
            summary
                .check_policy(CALL, self.host.cx.task_policy())
                .map(|()| plan)
                .map_err(EgressDenied::Policy)
        });
        let mut plan = match decision {
            Ok(plan) => plan,
            Err(denied) => {
                // The request is the guest's to give away; a refused one is
                // dropped here as `handle` would have.
                self.inner.table.delete(request)?;
                let ev = Event::call(CALL)
                    .args(summary.args())
                    .resource(summary.resource())
                    .deny(denied.to_string())
                    .outcome("error:HTTP-request-denied")
                    .took(start.elapsed());
                call(self.host, ev)?;
                return Err(ErrorCode::HttpRequestDenied.into());
            }
        };
        let rule = plan.rule_text();
        let resource = summary.resource();
        // The send hook, not this synchronous call, waits for an approver.
        plan.approvals = self.host.cx.task_approvals().clone();
        self.host.http.set_pending(plan);
        let r = outgoing_handler::Host::handle(&mut self.inner, request, options);
        // `handle` hands the plan to the send hook; one left over means the
        // request failed before it got that far.
        self.host.http.take_pending();
        if let Ok(future) = &r {
            self.host.name(future.rep(), resource.clone());
        }
        let ev = Event::call(CALL)
            .args(summary.args())
            .resource(resource)
            .allow(rule)
            .outcome(r.outcome().text)
            .took(start.elapsed());
        call(self.host, ev)?;
        r
    }
}

/// Counts and records the call `ev` is the record of.
fn call(host: &mut HostState, ev: Event) -> HttpResult<()> {
    host.call(Recorded::Event(ev)).map_err(HttpError::trap)
}
