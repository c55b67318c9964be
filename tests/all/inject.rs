//! Secrets injected into outgoing requests: the host adds the header after
//! the egress check, only on requests its `inject.url` matches, and scrubs
//! every value from what comes back. Each secret is a fresh random value, so
//! finding it anywhere the tool or the log can see is a leak.

use crate::http_server::Server;
use crate::openbao::{bao, random_hex, unique_path};
use crate::support::{Run, Sandbox};
use serde_json::json;

fn fresh_token() -> String {
    format!("ghp_{}", random_hex(16))
}

/// `github-issues` pointed at `server`, with its token injected from `source`.
fn issues(server: &Server, source: &str) -> Sandbox {
    let sb = Sandbox::new("github-issues", "github_issues");
    let base = server.base();
    sb.write_manifest(
        &format!(
            r#"[tool]
name = "github-issues"
component = ""

[limits]
timeout = "10s"

[env]
vars = {{ GITHUB_API = "{base}" }}

[[http]]
url = "{base}/repos/"
methods = ["GET"]

[[secrets]]
name = "github"
source = "{source}"
purpose = "read issues"
inject = {{ url = "{base}/repos/", header = "authorization", format = "Bearer {{}}" }}
"#
        ),
        "github_issues",
    );
    sb
}

/// `http-fetch` allowed everywhere on `server`, with `GITHUB_TOKEN` injected
/// on requests under `inject_path`.
fn fetch(server: &Server, inject_path: &str) -> Sandbox {
    let sb = Sandbox::new("http-fetch", "http_fetch");
    let base = server.base();
    sb.write_manifest(
        &format!(
            r#"[tool]
name = "http-fetch"
component = ""

[limits]
timeout = "10s"

[[http]]
url = "{base}/"

[[secrets]]
name = "github"
source = "env:GITHUB_TOKEN"
purpose = "call the test api"
inject = {{ url = "{base}{inject_path}", header = "authorization", format = "Bearer {{}}" }}
"#
        ),
        "http_fetch",
    );
    sb
}

/// The value is nowhere the tool, the agent or the log can see it.
fn assert_nowhere(sb: &Sandbox, run: &Run, value: &str) {
    let log = std::fs::read_to_string(&sb.audit).unwrap_or_default();
    let tail = &value[value.len() - 12..];
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("audit log", &log),
    ] {
        assert!(
            !text.contains(tail),
            "the secret leaked into {what}: {text}"
        );
    }
}

#[test]
fn a_tool_calls_an_authenticated_api_with_a_token_it_never_sees() {
    let token = fresh_token();
    let server = Server::start(&token);
    let sb = issues(&server, "env:GITHUB_TOKEN");
    let run = sb.run_with(r#"{"repo":"octo/hello"}"#, &[("GITHUB_TOKEN", &token)]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.json(),
        json!([
            {"number": 1, "title": "first issue", "state": "open"},
            {"number": 2, "title": "second issue", "state": "closed"},
        ])
    );
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].target, "/repos/octo/hello/issues?state=open");
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );

    let handle = run
        .records
        .iter()
        .find(|r| r["call"] == "wasi:http/outgoing-handler.handle")
        .unwrap();
    assert_eq!(handle["args"]["secrets"], json!(["github"]));
    let uses = run.events("secret.use");
    assert_eq!(uses.len(), 1, "{run:#?}");
    let used = uses[0];
    assert_eq!(used["decision"], "allow");
    assert_eq!(used["args"]["operation"], "inject");
    assert_eq!(used["args"]["name"], "github");
    assert_eq!(used["args"]["purpose"], "read issues");
    assert_eq!(used["args"]["provider"], "env");
    assert_eq!(used["args"]["header"], "authorization");
    assert_eq!(
        used["args"]["destination"],
        format!("{}/repos/octo/hello/issues?state=open", server.base())
    );
    assert_eq!(
        used["rule"],
        format!("secrets[0] github.inject {}/repos/", server.base())
    );
    run.assert_recorded();
    assert_nowhere(&sb, &run, &token);
}

#[test]
fn a_wrong_token_is_the_api_s_refusal_not_a_leak() {
    let server = Server::start(&fresh_token());
    let sb = issues(&server, "env:GITHUB_TOKEN");
    let wrong = fresh_token();
    let run = sb.run_with(r#"{"repo":"octo/hello"}"#, &[("GITHUB_TOKEN", &wrong)]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("refused the credentials (401)"),
        "{run:#?}"
    );
    run.assert_recorded();
    assert_nowhere(&sb, &run, &wrong);
}

#[test]
fn the_injected_token_can_come_from_openbao() {
    let token = fresh_token();
    let server = Server::start(&token);
    let bao = bao();
    let path = unique_path("github");
    bao.put(&path, json!({ "token": token }));
    let sb = issues(&server, &format!("vault:secret/{path}#token"));
    let run = sb.run_with(
        r#"{"repo":"octo/hello"}"#,
        &[("VAULT_ADDR", &bao.addr), ("VAULT_TOKEN", &bao.token)],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.json().as_array().map(Vec::len), Some(2));
    assert_eq!(
        server.received()[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    let used = run.events("secret.use")[0];
    assert_eq!(used["args"]["provider"], "vault");
    assert_eq!(used["args"]["version"], 1);
    run.assert_recorded();
    assert_nowhere(&sb, &run, &token);
}

#[test]
fn an_echoing_server_gives_back_only_the_redaction() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/echo");
    let run = sb.run_with(
        &json!({ "url": format!("{}/echo/me", server.base()) }).to_string(),
        &[("GITHUB_TOKEN", &token)],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    // The server got the real header ...
    assert_eq!(
        server.received()[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    // ... and everything it echoed, in its headers and its body, is scrubbed.
    let out = run.json();
    let echoed = out["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "x-echo-authorization")
        .expect("the echo header");
    assert_eq!(echoed[1], "Bearer [REDACTED:github]");
    assert!(
        out["body"]
            .as_str()
            .unwrap()
            .contains(r#"["authorization","Bearer [REDACTED:github]"]"#),
        "{out}"
    );
    let end = run.events("http.end")[0];
    assert_eq!(end["args"]["redacted"], 2, "{end}");
    run.assert_recorded();
    assert_nowhere(&sb, &run, &token);
}

#[test]
fn a_value_split_across_body_chunks_is_still_redacted() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/chunks");
    for size in [1, 3, 7, 16] {
        let run = sb.run_with(
            &json!({ "url": format!("{}/chunks?size={size}", server.base()) }).to_string(),
            &[("GITHUB_TOKEN", &token)],
        );
        assert_eq!(run.code, 0, "{run:#?}");
        assert_eq!(
            run.json()["body"],
            "before Bearer [REDACTED:github] after",
            "chunks of {size}"
        );
        run.assert_recorded();
        assert_nowhere(&sb, &run, &token);
    }
}

#[test]
fn a_tool_that_sets_the_secret_header_itself_is_refused() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/echo");
    let run = sb.run_with(
        &json!({
            "url": format!("{}/echo", server.base()),
            "headers": {"authorization": "Bearer mine"},
        })
        .to_string(),
        &[("GITHUB_TOKEN", &token)],
    );
    assert_eq!(run.code, 1, "{run:#?}");
    let d = run.denial("outgoing-handler.handle");
    let why = d["rule"].as_str().unwrap();
    assert!(
        why.contains("sets header `authorization`, which the host sets on this url for secret \"github\" (secrets[0].inject)"),
        "{why}"
    );
    assert!(server.received().is_empty());
    assert!(run.events("secret.use").is_empty());
    run.assert_recorded();
}

#[test]
fn placeholders_elsewhere_get_no_secret() {
    let token = fresh_token();
    let server = Server::start("unused");
    // The secret is bound to /api/ only; the guest tries every other place.
    let sb = fetch(&server, "/api/");
    let run = sb.run_with(
        &json!({
            "url": format!("{}/echo/%7B%7Bgithub%7D%7D?t=${{GITHUB_TOKEN}}&s={{{{secret:github}}}}", server.base()),
            "method": "POST",
            "headers": {"x-token": "{{secret:github}}", "x-auth": "Bearer {}"},
            "body": "{{github}} ${GITHUB_TOKEN} [REDACTED:github]",
        })
        .to_string(),
        &[("GITHUB_TOKEN", &token)],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let got = &server.received()[0];
    assert_eq!(got.header("authorization"), None);
    assert_eq!(got.header("x-token"), Some("{{secret:github}}"));
    assert_eq!(
        String::from_utf8_lossy(&got.body),
        "{{github}} ${GITHUB_TOKEN} [REDACTED:github]"
    );
    let wire = format!("{got:?}");
    assert!(!wire.contains(&token[token.len() - 12..]), "{wire}");
    assert!(run.events("secret.use").is_empty(), "{run:#?}");
    run.assert_recorded();
    assert_nowhere(&sb, &run, &token);
}

#[test]
fn a_request_outside_the_inject_url_carries_no_secret() {
    let token = fresh_token();
    let server = Server::start("unused");
    let sb = fetch(&server, "/api/");
    let run = sb.run_with(
        &json!({ "url": format!("{}/echo/api/", server.base()) }).to_string(),
        &[("GITHUB_TOKEN", &token)],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(server.received()[0].header("authorization"), None);
    let handle = run
        .records
        .iter()
        .find(|r| r["call"] == "wasi:http/outgoing-handler.handle")
        .unwrap();
    assert_eq!(handle["args"]["secrets"], json!([]));
    run.assert_recorded();
}
