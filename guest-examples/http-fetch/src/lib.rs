//! `http-fetch`: one HTTP request through `wasi:http/outgoing-handler`,
//! answered with the status, headers and body the guest received.
//!
//! Input: `{"url": "https://host/path", "method": "GET", "headers": {"k": "v"},
//! "body": "text"}`; only `url` is required. For tests that probe the host,
//! `scheme`, `authority` and `path` may be given instead of `url` and are
//! passed to `wasi:http` exactly as written. A refused or failed request is
//! a `failed` (or `denied`) tool error naming the `wasi:http` error code.
//!
//! With `"raw": true` the result also has `body_hex`: every byte the guest
//! received, so that a test can do with a binary body (a compressed one, say)
//! whatever a hostile tool would.

wit_bindgen::generate!({
    path: "../../wit",
    world: "warden:tool/tool",
    generate_all,
});

use serde_json::{Map, Value, json};
use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "url": {"type": "string"},
    "method": {"type": "string"},
    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
    "body": {"type": "string"},
    "scheme": {"type": "string"},
    "authority": {"type": "string"},
    "path": {"type": "string"},
    "raw": {"type": "boolean"}
  }
}"#;

struct Fetch;

impl Guest for Fetch {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "http-fetch".into(),
            description: "Sends one HTTP request and returns the status, headers and body.".into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let input: Map<String, Value> = serde_json::from_str(&input)
            .map_err(|e| ToolError::InvalidInput(format!("input: {e}")))?;
        let text = |field: &str| -> Result<Option<String>, ToolError> {
            match input.get(field) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(ToolError::InvalidInput(format!(
                    "{field}: expected a string, found {other}"
                ))),
            }
        };
        let (scheme, authority, path) = match text("url")? {
            Some(url) => split_url(&url)?,
            None => (
                text("scheme")?.unwrap_or_else(|| "https".into()),
                text("authority")?.unwrap_or_default(),
                text("path")?.unwrap_or_else(|| "/".into()),
            ),
        };
        let method = text("method")?.unwrap_or_else(|| "GET".into());

        let headers = Fields::new();
        if let Some(map) = input.get("headers") {
            let map = map.as_object().ok_or_else(|| {
                ToolError::InvalidInput("headers: expected an object of strings".into())
            })?;
            for (name, value) in map {
                let value = value.as_str().ok_or_else(|| {
                    ToolError::InvalidInput(format!("headers.{name}: expected a string"))
                })?;
                headers
                    .append(name, value.as_bytes())
                    .map_err(|e| ToolError::Denied(format!("header {name:?}: {e:?}")))?;
            }
        }
        let request = OutgoingRequest::new(headers);
        request
            .set_method(&method_of(&method))
            .map_err(|()| ToolError::InvalidInput(format!("method: {method:?} is not valid")))?;
        request
            .set_scheme(Some(&scheme_of(&scheme)))
            .map_err(|()| ToolError::InvalidInput(format!("scheme: {scheme:?} is not valid")))?;
        request
            .set_authority(Some(&authority))
            .map_err(|()| ToolError::InvalidInput(format!("authority: {authority:?} is not valid")))?;
        request
            .set_path_with_query(Some(&path))
            .map_err(|()| ToolError::InvalidInput(format!("path: {path:?} is not valid")))?;

        let body = request.body().expect("a new request has a body");
        let future = outgoing_handler::handle(request, None).map_err(refused)?;
        if let Some(text) = text("body")? {
            let stream = body.write().expect("a new body has a stream");
            for chunk in text.as_bytes().chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| ToolError::Failed(format!("writing the body: {e:?}")))?;
            }
            drop(stream);
        }
        OutgoingBody::finish(body, None).map_err(refused)?;

        future.subscribe().block();
        let response = future
            .get()
            .expect("the response is ready after block")
            .expect("the response is taken once")
            .map_err(refused)?;
        let status = response.status();
        let headers: Vec<Value> = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| json!([k, String::from_utf8_lossy(&v)]))
            .collect();
        let incoming = response.consume().expect("the body is taken once");
        let stream = incoming.stream().expect("the stream is taken once");
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    let code = wasi::http::types::http_error_code(&e);
                    return Err(ToolError::Failed(format!(
                        "reading the body after {} bytes: {}",
                        bytes.len(),
                        code.map_or_else(|| e.to_debug_string(), |c| describe(&c))
                    )));
                }
            }
        }
        drop(stream);
        let mut result = json!({
            "status": status,
            "headers": headers,
            "body": String::from_utf8_lossy(&bytes),
        });
        if input.get("raw") == Some(&Value::Bool(true)) {
            result["body_hex"] = bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into();
        }
        Ok(result.to_string())
    }
}

fn split_url(url: &str) -> Result<(String, String, String), ToolError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| ToolError::InvalidInput(format!("url: {url:?} has no scheme")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((scheme.into(), authority.into(), path.into()))
}

fn method_of(m: &str) -> Method {
    match m {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.into()),
    }
}

fn scheme_of(s: &str) -> Scheme {
    match s {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.into()),
    }
}

fn describe(code: &ErrorCode) -> String {
    format!("{code:?}")
}

/// A request the host refused or could not complete: `denied` when the
/// host's rules said no, `failed` for everything else.
fn refused(code: ErrorCode) -> ToolError {
    match code {
        ErrorCode::HttpRequestDenied => ToolError::Denied(format!("{code:?}")),
        other => ToolError::Failed(describe(&other)),
    }
}

export!(Fetch);
