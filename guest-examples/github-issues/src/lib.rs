//! `github-issues`: lists the issues of a repository from a GitHub-style
//! API that wants `authorization: Bearer <token>`.
//!
//! The tool holds no token and never asks for one. Its manifest binds a
//! secret to the API's URL, and the host adds the header to each matching
//! request on its way out; whatever the API echoes back of it is redacted
//! before the tool can read it. The API's base URL comes from `GITHUB_API`
//! in the tool's environment (`https://api.github.com` when unset), so the
//! same component runs against a test server.
//!
//! Input: `{"repo": "owner/name", "state": "open"}`; output: a list of
//! `{number, title, state}`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "warden:tool/tool",
    generate_all,
});

use serde_json::{Value, json};
use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "repo": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"},
    "state": {"enum": ["open", "closed", "all"]}
  },
  "required": ["repo"]
}"#;

struct Issues;

impl Guest for Issues {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "github-issues".into(),
            description: "Lists the issues of a GitHub repository (number, title, state).".into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let input: Value = serde_json::from_str(&input)
            .map_err(|e| ToolError::InvalidInput(format!("input: {e}")))?;
        let repo = input["repo"]
            .as_str()
            .ok_or_else(|| ToolError::InvalidInput("repo: missing, expected \"owner/name\"".into()))?;
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        };
        match repo.split_once('/') {
            Some((owner, name)) if valid(owner) && valid(name) => {}
            _ => {
                return Err(ToolError::InvalidInput(format!(
                    "repo: {repo:?} is not of the form \"owner/name\""
                )));
            }
        }
        let state = input["state"].as_str().unwrap_or("open");
        if !matches!(state, "open" | "closed" | "all") {
            return Err(ToolError::InvalidInput(format!(
                "state: {state:?} is not one of open, closed, all"
            )));
        }

        let base = std::env::var("GITHUB_API").unwrap_or_else(|_| "https://api.github.com".into());
        let (scheme, authority) = base
            .split_once("://")
            .ok_or_else(|| ToolError::Failed(format!("GITHUB_API {base:?} is not a URL")))?;
        let authority = authority.trim_end_matches('/');

        let headers = Fields::new();
        headers
            .append("accept", b"application/vnd.github+json")
            .map_err(|e| ToolError::Failed(format!("accept header: {e:?}")))?;
        headers
            .append("user-agent", b"warden-github-issues")
            .map_err(|e| ToolError::Failed(format!("user-agent header: {e:?}")))?;
        let request = OutgoingRequest::new(headers);
        request.set_method(&Method::Get).expect("GET is a method");
        let scheme = if scheme == "http" { Scheme::Http } else { Scheme::Https };
        request.set_scheme(Some(&scheme)).expect("a known scheme");
        request
            .set_authority(Some(authority))
            .map_err(|()| ToolError::Failed(format!("GITHUB_API authority {authority:?} is not valid")))?;
        request
            .set_path_with_query(Some(&format!("/repos/{repo}/issues?state={state}")))
            .expect("a checked repo makes a valid path");

        let future = outgoing_handler::handle(request, None).map_err(refused)?;
        future.subscribe().block();
        let response = future
            .get()
            .expect("ready after block")
            .expect("taken once")
            .map_err(refused)?;
        let status = response.status();
        let body = response.consume().expect("taken once");
        let stream = body.stream().expect("taken once");
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(ToolError::Failed(format!(
                        "reading the response: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
        drop(stream);
        match status {
            200 => {}
            401 | 403 => {
                return Err(ToolError::Denied(format!(
                    "the API refused the credentials ({status}): check the secret bound to it"
                )));
            }
            other => {
                return Err(ToolError::Failed(format!(
                    "the API answered {other}: {}",
                    String::from_utf8_lossy(&bytes)
                )));
            }
        }
        let list: Vec<Value> = serde_json::from_slice(&bytes)
            .map_err(|e| ToolError::Failed(format!("the API's answer is not a JSON list: {e}")))?;
        let issues: Vec<Value> = list
            .iter()
            .map(|i| json!({ "number": i["number"], "title": i["title"], "state": i["state"] }))
            .collect();
        Ok(Value::Array(issues).to_string())
    }
}

fn refused(code: ErrorCode) -> ToolError {
    match code {
        ErrorCode::HttpRequestDenied => ToolError::Denied(format!("{code:?}")),
        other => ToolError::Failed(format!("{other:?}")),
    }
}

export!(Issues);
