//! Network egress through `wasi:http`: the `http-fetch` guest against a real
//! server on 127.0.0.1. Every attack here fails with a deny record, and the
//! server's own log shows that nothing reached it.

use crate::http_server::Server;
use crate::support::{Run, Sandbox};
use serde_json::{Value, json};

/// A sandbox running `http-fetch` under a manifest with these sections.
fn fetch(sections: &str) -> Sandbox {
    let sb = Sandbox::new("http-fetch", "http_fetch");
    sb.write_manifest(
        &format!(
            "[tool]\nname = \"http-fetch\"\ncomponent = \"\"\n\n[limits]\ntimeout = \"10s\"\n\n{sections}\n"
        ),
        "http_fetch",
    );
    sb
}

fn rule(url: &str) -> String {
    format!("[[http]]\nurl = {url:?}\n")
}

/// The `handle` record of the run's one request.
fn handle(run: &Run) -> &Value {
    let found: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["call"] == "wasi:http/outgoing-handler.handle")
        .collect();
    assert_eq!(found.len(), 1, "one handle record: {run:#?}");
    found[0]
}

/// The `http.end` record of the run's one request.
fn http_end(run: &Run) -> &Value {
    let found: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["event"] == "http.end")
        .collect();
    assert_eq!(found.len(), 1, "one http.end record: {run:#?}");
    found[0]
}

/// Asserts that the request was refused at `handle`, before any connection,
/// with a deny record whose rule mentions `why`.
fn assert_refused(run: &Run, why: &str) {
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("HttpRequestDenied"), "{run:#?}");
    let h = handle(run);
    assert_eq!(h["decision"], "deny", "{run:#?}");
    assert_eq!(h["outcome"], "error:HTTP-request-denied");
    let rule = h["rule"].as_str().unwrap();
    assert!(rule.contains(why), "rule {rule:?} should say {why:?}");
    assert!(
        !run.records.iter().any(|r| r["event"] == "http.end"),
        "a refused request never starts: {run:#?}"
    );
    run.assert_recorded();
}

fn input(v: Value) -> String {
    v.to_string()
}

#[test]
fn an_allowed_request_reaches_the_server_and_is_recorded() {
    let server = Server::start("unused");
    let sb = fetch(&rule(&format!("{}/", server.base())));
    let url = format!("{}/echo/hello?x=1", server.base());
    let run = sb.run(&input(json!({ "url": url, "headers": {"x-trace": "abc"} })));
    assert_eq!(run.code, 0, "{run:#?}");
    let out = run.json();
    assert_eq!(out["status"], 200);
    let echoed: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["path"], "/echo/hello?x=1");

    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("host"),
        Some(server.addr.to_string().as_str())
    );
    assert_eq!(got[0].header("x-trace"), Some("abc"));

    let h = handle(&run);
    assert_eq!(h["decision"], "allow");
    assert_eq!(h["rule"], format!("http[0] {}/", server.base()));
    assert_eq!(h["args"]["method"], "GET");
    assert_eq!(h["args"]["url"], url);
    let end = http_end(&run);
    assert_eq!(end["outcome"], "ok");
    assert_eq!(end["args"]["addr"], server.addr.to_string());
    assert_eq!(end["args"]["status"], 200);
    assert_eq!(end["args"]["complete"], true);
    assert!(end["args"]["response_bytes"].as_u64().unwrap() > 0);
    assert!(end["dur_ns"].as_u64().is_some());
    run.assert_recorded();
}

#[test]
fn a_post_body_is_sent_and_counted() {
    let server = Server::start("unused");
    let sb = fetch(&rule(&format!("{}/echo", server.base())));
    let run = sb.run(&input(json!({
        "url": format!("{}/echo", server.base()),
        "method": "POST",
        "body": "x".repeat(10_000),
    })));
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(server.received()[0].body.len(), 10_000);
    assert_eq!(http_end(&run)["args"]["request_bytes"], 10_000);
    run.assert_recorded();
}

#[test]
fn without_http_rules_nothing_is_sent() {
    let server = Server::start("unused");
    let sb = fetch("");
    let run = sb.run(&input(json!({ "url": format!("{}/echo", server.base()) })));
    assert_refused(&run, "the manifest has no [[http]] rules");
    assert!(server.received().is_empty());
}

#[test]
fn a_host_outside_the_rules_is_refused() {
    let server = Server::start("unused");
    let sb = fetch(&rule(&format!("{}/", server.base())));
    let run = sb.run(&input(json!({ "url": "http://evil.example:80/steal" })));
    assert_refused(&run, "no rule names http://evil.example");
    // The message says how to allow it, for the manifest's author.
    assert!(
        handle(&run)["rule"]
            .as_str()
            .unwrap()
            .contains("add an [[http]] entry")
    );
}

#[test]
fn a_wildcard_does_not_match_a_suffix_of_another_domain() {
    let sb = fetch(&rule("http://*.example.com/"));
    let run = sb.run(&input(json!({ "url": "http://example.com.evil.net/" })));
    assert_refused(&run, "no rule names http://example.com.evil.net");
    let run = sb.run(&input(json!({ "url": "http://example.com/" })));
    assert_refused(&run, "no rule names http://example.com");
}

#[test]
fn a_path_outside_the_prefix_is_refused() {
    let server = Server::start("unused");
    let sb = fetch(&rule(&format!("{}/echo/", server.base())));
    for path in ["/admin", "/echo/../admin", "/echo/%2e%2e/admin", "/echoes"] {
        let run = sb.run(&input(json!({ "url": format!("{}{path}", server.base()) })));
        assert_refused(&run, "is outside the prefix of http[0]");
    }
    assert!(server.received().is_empty());
}

#[test]
fn a_method_not_listed_is_refused() {
    let server = Server::start("unused");
    let sb = fetch(&format!(
        "{}methods = [\"GET\"]\n",
        rule(&format!("{}/", server.base()))
    ));
    let run = sb.run(&input(json!({
        "url": format!("{}/echo", server.base()),
        "method": "DELETE",
    })));
    assert_refused(&run, "method DELETE is not among the methods of http[0]");
    assert!(server.received().is_empty());
}

#[test]
fn userinfo_in_the_authority_is_refused() {
    let server = Server::start("unused");
    let sb = fetch(&rule(&format!("{}/", server.base())));
    let run = sb.run(&input(json!({
        "scheme": "http",
        "authority": format!("{}@evil.example", server.addr),
        "path": "/",
    })));
    assert_refused(&run, "carries userinfo");
    assert!(server.received().is_empty());
}

#[test]
fn loopback_in_any_spelling_needs_a_rule_that_names_it() {
    let server = Server::start("unused");
    let port = server.addr.port();
    // A rule for a public name does not reach loopback, however it is written.
    let sb = fetch(&rule("http://api.example.com/"));
    for host in [
        "2130706433".to_owned(),
        "0x7f.1".to_owned(),
        "0177.0.0.1".to_owned(),
        "[::ffff:127.0.0.1]".to_owned(),
        "127.1".to_owned(),
    ] {
        let run = sb.run(&input(
            json!({ "url": format!("http://{host}:{port}/echo") }),
        ));
        assert_refused(&run, "no rule names http://");
    }
    assert!(server.received().is_empty());
}

#[test]
fn a_name_that_resolves_to_loopback_is_refused_after_dns() {
    let server = Server::start("unused");
    let port = server.addr.port();
    let sb = fetch(&rule(&format!("http://localhost:{port}/")));
    let run = sb.run(&input(
        json!({ "url": format!("http://localhost:{port}/echo") }),
    ));
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(
        handle(&run)["decision"],
        "allow",
        "the name itself is allowed"
    );
    let end = http_end(&run);
    assert_eq!(end["decision"], "deny", "{run:#?}");
    assert_eq!(end["outcome"], "error:HTTP-request-denied");
    let why = end["rule"].as_str().unwrap();
    assert!(why.contains("loopback address"), "{why}");
    assert!(
        why.contains(&format!("http[0] http://localhost:{port}/")),
        "{why}"
    );
    assert!(server.received().is_empty(), "nothing was connected to");
    run.assert_recorded();
}

#[test]
fn an_ip_spelled_in_decimal_reaches_the_address_its_rule_names() {
    // WHATWG reads `2130706433` as 127.0.0.1: the rule for 127.0.0.1 decides.
    let server = Server::start("unused");
    let port = server.addr.port();
    let sb = fetch(&rule(&format!("{}/", server.base())));
    let run = sb.run(&input(
        json!({ "url": format!("http://2130706433:{port}/echo") }),
    ));
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        handle(&run)["args"]["url"],
        format!("{}/echo", server.base())
    );
    assert_eq!(
        server.received()[0].header("host"),
        Some(server.addr.to_string().as_str())
    );
    run.assert_recorded();
}

#[test]
fn crlf_in_a_header_is_refused_before_it_is_set() {
    let server = Server::start("unused");
    let sb = fetch(&rule(&format!("{}/", server.base())));
    let run = sb.run(&input(json!({
        "url": format!("{}/echo", server.base()),
        "headers": {"x-a": "v\r\nx-injected: 1"},
    })));
    assert_eq!(run.code, 1, "{run:#?}");
    let d = run.denial("fields.append");
    assert!(d["rule"].as_str().unwrap().contains("CR, LF or NUL"), "{d}");
    assert!(server.received().is_empty());
    run.assert_recorded();
}

#[test]
fn redirects_come_back_to_the_guest_and_are_not_followed() {
    let server = Server::start("unused");
    let sb = fetch(&rule(&format!("{}/", server.base())));
    let run = sb.run(&input(json!({
        "url": format!("{}/redirect?to=http://evil.example/steal", server.base()),
    })));
    assert_eq!(run.code, 0, "{run:#?}");
    let out = run.json();
    assert_eq!(out["status"], 302);
    assert!(
        out["headers"]
            .to_string()
            .contains("http://evil.example/steal")
    );
    assert_eq!(server.received().len(), 1, "the host followed nothing");
    assert_eq!(http_end(&run)["args"]["status"], 302);
    run.assert_recorded();

    // A guest that follows the redirect itself meets the rules again.
    let run = sb.run(&input(json!({ "url": "http://evil.example/steal" })));
    assert_refused(&run, "no rule names http://evil.example");
}

#[test]
fn a_response_larger_than_the_rule_allows_is_cut_off() {
    let server = Server::start("unused");
    let sb = fetch(&format!(
        "{}response_body = \"1 KiB\"\n",
        rule(&format!("{}/", server.base()))
    ));
    let run = sb.run(&input(
        json!({ "url": format!("{}/big?n=100000", server.base()) }),
    ));
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("response body size"), "{run:#?}");
    let end = http_end(&run);
    assert_eq!(end["outcome"], "error:HTTP-response-body-size");
    assert!(end["args"]["response_bytes"].as_u64().unwrap() > 1024);
    run.assert_recorded();

    let run = sb.run(&input(
        json!({ "url": format!("{}/big?n=1000", server.base()) }),
    ));
    assert_eq!(run.code, 0, "a response within the limit passes: {run:#?}");
}

#[test]
fn a_request_body_larger_than_the_rule_allows_is_not_sent() {
    let server = Server::start("unused");
    let sb = fetch(&format!(
        "{}request_body = \"1 KiB\"\n",
        rule(&format!("{}/", server.base()))
    ));
    let run = sb.run(&input(json!({
        "url": format!("{}/echo", server.base()),
        "method": "POST",
        "body": "x".repeat(100_000),
    })));
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        server.received().iter().all(|r| r.body.len() <= 1024),
        "the server never got the whole body"
    );
    let end = http_end(&run);
    assert!(
        end["outcome"].as_str().unwrap().starts_with("error:"),
        "{end}"
    );
    run.assert_recorded();
}

#[test]
fn a_slow_server_runs_into_the_rule_timeout() {
    let server = Server::start("unused");
    let sb = fetch(&format!(
        "{}timeout = \"300ms\"\n",
        rule(&format!("{}/", server.base()))
    ));
    let run = sb.run(&input(
        json!({ "url": format!("{}/slow?ms=5000", server.base()) }),
    ));
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(http_end(&run)["outcome"], "error:connection-read-timeout");
    run.assert_recorded();
}

#[test]
fn a_request_never_outlives_its_task() {
    let server = Server::start("unused");
    let sb = Sandbox::new("http-fetch", "http_fetch");
    sb.write_manifest(
        &format!(
            "[tool]\nname = \"http-fetch\"\ncomponent = \"\"\n\n[limits]\ntimeout = \"500ms\"\n\n{}",
            rule(&format!("{}/", server.base()))
        ),
        "http_fetch",
    );
    let run = sb.run(&input(
        json!({ "url": format!("{}/slow?ms=5000", server.base()) }),
    ));
    assert_eq!(run.code, 1, "{run:#?}");
    let end = http_end(&run);
    let outcome = end["outcome"].as_str().unwrap();
    assert!(
        outcome == "error:connection-read-timeout" || outcome == "error:task-ended",
        "{run:#?}"
    );
    run.assert_recorded();
}

#[test]
fn check_lists_the_http_rules() {
    let sb = fetch(&format!(
        "{}methods = [\"GET\", \"HEAD\"]\ntimeout = \"5s\"\n",
        rule("https://api.github.com/repos/")
    ));
    let out = crate::support::warden(&["check", sb.manifest.to_str().unwrap()], &[], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("http[0] https://api.github.com/repos/ GET,HEAD (timeout 5s, request body 10 MiB, response body 10 MiB)"),
        "{text}"
    );
    assert!(text.contains("no other urls"), "{text}");
}

#[test]
fn inspect_says_when_no_rule_allows_requests() {
    let wasm = crate::support::wasm("http_fetch");
    let bare = fetch("");
    let out = crate::support::warden(
        &[
            "inspect",
            wasm.to_str().unwrap(),
            "--manifest",
            bare.manifest.to_str().unwrap(),
        ],
        &[],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "wasi:http/outgoing-handler@0.2.12: no [[http]] rules: every request is refused"
        ),
        "{text}"
    );
    let granted = fetch(&rule("https://api.github.com/"));
    let out = crate::support::warden(
        &[
            "inspect",
            wasm.to_str().unwrap(),
            "--manifest",
            granted.manifest.to_str().unwrap(),
        ],
        &[],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("wasi:http/outgoing-handler@0.2.12:"),
        "{text}"
    );
}

/// A sink that cannot take `http.end` records (as a log whose disk was full for a moment)
/// and keeps every other record.
#[derive(Default)]
struct LosesHttpEnd(crate::support::Capture);

impl warden_host_api::audit::EventSink for LosesHttpEnd {
    fn emit(&self, record: &warden_host_api::audit::Record<'_>) -> anyhow::Result<()> {
        if record.event.event == "http.end" {
            anyhow::bail!("no space left on device");
        }
        self.0.emit(record)
    }
}

#[tokio::test]
async fn a_response_whose_end_cannot_be_recorded_stops_the_task() {
    use std::sync::Arc;
    use warden::manifest::Manifest;
    use warden::{EngineConfig, Runtime, TaskRequest};
    let server = Server::start("unused");
    let sb = fetch(&rule(&format!("{}/", server.base())));
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let tool = runtime.load(Manifest::load(&sb.manifest).unwrap()).unwrap();
    let sink = Arc::new(LosesHttpEnd::default());
    // The body's end is written from outside any host call, while the guest streams it;
    // the guest goes on making calls (it drops the body and the response, and returns).
    let url = format!("{}/echo/x", server.base());
    let err = tool
        .run(TaskRequest::new(input(json!({ "url": url })), sink.clone()))
        .await
        .expect_err("a task with an unrecorded request must not end ok");
    // The guest's next host call traps, or, if the body ended after its last one, the
    // task's end fails: which of the two depends on when the body's last frame arrives.
    let message = err.to_string();
    assert!(
        message.contains("the http.end record of a request could not be written")
            && message.contains("no space left on device"),
        "{message}"
    );
    assert_eq!(server.received().len(), 1, "the request itself was sent");
    let records = sink.0.records();
    let end = records.last().unwrap();
    assert_eq!(end["event"], "task.end", "{records:#?}");
    assert_ne!(end["outcome"], "ok", "{end}");
}
