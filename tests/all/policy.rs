//! Policy as code: a Rego policy asked about every capability-relevant call after the
//! grant allowed it. Each test runs a real guest through the real CLI (or the library,
//! where the clock must be set) and checks both what the tool got and the deny record,
//! whose `rule` carries the policy's message.

use crate::guests::root;
use crate::http_server::Server;
use crate::net::Silent;
use crate::support::{Capture, Run, Sandbox, warden};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use warden::manifest::Manifest;
use warden::{EngineConfig, Outcome, Runtime, TaskRequest};

/// The probe with its committed manifest plus `sections`, and `policy` (Rego source)
/// as the manifest's `[policy]`.
fn probe(sections: &str, policy: &str) -> Sandbox {
    let sb = Sandbox::new("probe", "probe");
    let text = std::fs::read_to_string(root().join("guest-examples/probe/manifest.toml")).unwrap();
    std::fs::write(sb.path("policy.rego"), policy).unwrap();
    sb.write_manifest(
        &format!("{text}\n{sections}\n\n[policy]\nfile = \"policy.rego\"\n"),
        "probe",
    );
    sb
}

/// One of the example policies in guest-examples/policies/.
fn example_policy(name: &str) -> String {
    std::fs::read_to_string(root().join("guest-examples/policies").join(name)).unwrap()
}

/// The rule a policy's denial puts in the record: `policy <file>: <messages>`.
fn policy_rule(sb: &Sandbox, message: &str) -> String {
    format!("policy {}: {message}", sb.path("policy.rego").display())
}

const READ: &str = r#"{"op":"read","path":"/ro/hello.txt"}"#;

fn write(name: &str) -> String {
    json!({"op": "write", "path": format!("/rw/{name}"), "data": "x"}).to_string()
}

#[test]
fn writes_need_a_low_risk_context() {
    let sb = probe("", &example_policy("no-writes-unless-low-risk.rego"));
    let denied = |run: &Run, risk_note: &str| {
        assert_eq!(run.code, 0, "{run:#?}");
        assert_eq!(run.json()["ok"], false, "{run:#?}");
        let d = run.denial("open-at");
        assert_eq!(d["resource"], "/rw/a.txt");
        assert_eq!(d["outcome"], "error:access");
        let why = format!("writes need context.risk below 0.3; {risk_note}");
        assert_eq!(d["rule"], policy_rule(&sb, &why), "{d}");
        run.assert_recorded();
    };

    denied(&sb.run(&write("a.txt")), "no context.risk was given");
    let run = sb.run_args(&write("a.txt"), &["--context", "risk=0.4"], &[]);
    denied(&run, "context.risk is 0.4");
    // A risk that is not a number is not a low one.
    let run = sb.run_args(&write("a.txt"), &["--context", "risk=low"], &[]);
    denied(&run, "context.risk is low");
    // No write-ahead record either: the change was never about to happen.
    assert!(!run.records.iter().any(|r| r["event"] == "call.intent"));
    assert!(!sb.path("root/rw/a.txt").exists());

    // Reads are left to the grant.
    let run = sb.run(READ);
    assert_eq!(run.json()["ok"], true, "{run:#?}");
    assert!(run.denials().is_empty(), "{run:#?}");

    let run = sb.run_args(&write("a.txt"), &["--context", "risk=0.1"], &[]);
    assert_eq!(run.json()["ok"], true, "{run:#?}");
    assert!(run.denials().is_empty(), "{run:#?}");
    assert_eq!(
        std::fs::read_to_string(sb.path("root/rw/a.txt")).unwrap(),
        "x"
    );
    run.assert_recorded();

    // The grant still decides first: the policy cannot open what the manifest does not.
    let outside = json!({"op": "write", "path": "/ro/b.txt", "data": "x"}).to_string();
    let run = sb.run_args(&outside, &["--context", "risk=0.1"], &[]);
    let d = run.denial("open-at");
    assert!(!d["rule"].as_str().unwrap().starts_with("policy"), "{d}");
}

#[test]
fn context_values_must_be_key_value() {
    let sb = probe("", &example_policy("no-writes-unless-low-risk.rego"));
    let run = sb.run_args(READ, &["--context", "risk"], &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("expected KEY=VALUE, e.g. risk=0.4"),
        "{run:#?}"
    );
    assert!(run.records.is_empty(), "nothing ran: {run:#?}");
}

/// Runs `warden` with a state directory of its own (grant key, revocations).
fn w(state: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec![("XDG_STATE_HOME", state.to_str().unwrap())];
    all.extend_from_slice(env);
    warden(args, &all, None)
}

fn token(state: &Path, args: &[&str]) -> String {
    let out = w(state, args, &[]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn sub_agents_deeper_than_one_use_no_secrets() {
    let sb = probe(
        "[[secrets]]\nname = \"signer\"\nsource = \"env:WARDEN_TEST_SIGNER\"\npurpose = \"sign\"\nhmac = true\n",
        &example_policy("no-secrets-below-depth-1.rego"),
    );
    let state = tempfile::tempdir().unwrap();
    let m = sb.manifest.to_str().unwrap();
    let root_token = token(state.path(), &["grant", "issue", m, "--agent", "planner"]);
    let child = token(
        state.path(),
        &["grant", "attenuate", &root_token, "--agent", "worker"],
    );
    let grandchild = token(
        state.path(),
        &["grant", "attenuate", &child, "--agent", "helper"],
    );
    let ids: Vec<String> = warden::token::unverified_records(&grandchild)
        .unwrap()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(ids.len(), 3);

    let hmac = r#"{"op":"secret_hmac","name":"signer","data":"payload"}"#;
    let run_under = |token: &str| {
        let before = sb.records().len();
        let out = w(
            state.path(),
            &[
                "run",
                m,
                "--audit",
                sb.audit.to_str().unwrap(),
                "--grant",
                token,
                "--input",
                hmac,
            ],
            &[("WARDEN_TEST_SIGNER", "k-e-y")],
        );
        Run::new(out, sb.records().split_off(before))
    };

    for token in [&root_token, &child] {
        let run = run_under(token);
        assert_eq!(run.json()["ok"], true, "{run:#?}");
        assert!(run.denials().is_empty(), "{run:#?}");
    }

    let run = run_under(&grandchild);
    let out = run.json();
    assert_eq!(out["ok"], false, "{run:#?}");
    assert_eq!(out["kind"], "denied", "{run:#?}");
    let d = run.denial("secret.hmac-sha256");
    assert_eq!(d["event"], "secret.use");
    assert_eq!(d["outcome"], "error:denied");
    let why = format!(
        "secrets may be used at grant depth 1 or less; grant {} is at depth 2 ({})",
        ids[2],
        ids.join(" > ")
    );
    assert_eq!(d["rule"], policy_rule(&sb, &why), "{d}");
    // The tool is told why, in the same words.
    assert!(out["error"].as_str().unwrap().contains(&why), "{out}");
    run.assert_recorded();
}

#[tokio::test(flavor = "current_thread")]
async fn business_hours_follow_the_clock() {
    let sb = probe("", &example_policy("business-hours.rego"));
    // 2026-11-25 was a Wednesday; 2026-11-28 a Saturday.
    let wednesday_10 = UNIX_EPOCH + Duration::from_secs(1_795_600_800);
    let saturday_10 = wednesday_10 + Duration::from_secs(3 * 86_400);
    let wednesday_17 = wednesday_10 + Duration::from_secs(7 * 3600);

    let run = |at: SystemTime| {
        let sb = &sb;
        async move {
            let runtime = Runtime::new(&EngineConfig::default())
                .unwrap()
                .with_clock(Arc::new(move || at));
            let tool = runtime.load(Manifest::load(&sb.manifest).unwrap()).unwrap();
            let sink = Arc::new(Capture::default());
            let out = tool
                .run(TaskRequest::new(READ, sink.clone()))
                .await
                .unwrap();
            let Outcome::Result(json) = out.outcome else {
                panic!("{:?}", out.outcome)
            };
            let json: Value = serde_json::from_str(&json).unwrap();
            (json, sink.records())
        }
    };

    let (out, records) = run(wednesday_10).await;
    assert_eq!(out["ok"], true, "{out}");
    assert!(!records.iter().any(|r| r["decision"] == "deny"));

    for (at, day, hour) in [
        (saturday_10, "Saturday", 10),
        (wednesday_17, "Wednesday", 17),
    ] {
        let (out, records) = run(at).await;
        assert_eq!(out["ok"], false, "{out}");
        let deny: Vec<&Value> = records.iter().filter(|r| r["decision"] == "deny").collect();
        assert_eq!(deny.len(), 1, "{records:#?}");
        let why = format!(
            "calls are allowed Monday to Friday, 9:00 to 17:00 UTC; it is {day}, hour {hour} UTC"
        );
        assert_eq!(deny[0]["rule"], policy_rule(&sb, &why));
        assert_eq!(deny[0]["resource"], "/ro/hello.txt");
    }
}

#[test]
fn requests_and_the_secrets_they_carry_ask_the_policy() {
    let server = Server::start("unused");
    let base = server.base();
    let sb = Sandbox::new("http-fetch", "http_fetch");
    std::fs::write(
        sb.path("policy.rego"),
        format!(
            r#"package warden

deny contains msg if {{
    input.call.kind == "http"
    input.method != "GET"
    msg := sprintf("only GET, not %s", [input.method])
}}

deny contains msg if {{
    input.call.kind == "secret"
    not input.context.ticket
    msg := sprintf("secret %s needs a ticket in the context", [input.resource])
}}

deny contains "no context.ticket for this url" if {{
    input.call.kind == "http"
    startswith(input.resource, "{base}/echo/private")
}}

cacheable := true
"#
        ),
    )
    .unwrap();
    sb.write_manifest(
        &format!(
            r#"[tool]
name = "http-fetch"
component = ""

[limits]
timeout = "10s"

[[http]]
url = "{base}/"
methods = ["GET", "POST"]

[[secrets]]
name = "api"
source = "env:WARDEN_TEST_API"
purpose = "call the test api"
inject = {{ url = "{base}/echo/authed", header = "authorization", format = "Bearer {{}}" }}

[policy]
file = "policy.rego"
"#
        ),
        "http_fetch",
    );
    let env = [("WARDEN_TEST_API", "tok-123")];
    let fetch = |url: String, method: &str, options: &[&str]| {
        sb.run_args(
            &json!({ "url": url, "method": method }).to_string(),
            options,
            &env,
        )
    };
    let refused = |run: &Run, why: &str| {
        assert_eq!(run.code, 1, "{run:#?}");
        let d = run.denial("outgoing-handler.handle");
        assert_eq!(d["outcome"], "error:HTTP-request-denied");
        assert_eq!(d["rule"], policy_rule(&sb, why), "{d}");
        assert!(!run.records.iter().any(|r| r["event"] == "http.end"));
        run.assert_recorded();
    };

    let run = fetch(format!("{base}/echo/open"), "GET", &[]);
    assert_eq!(run.json()["status"], 200, "{run:#?}");
    refused(
        &fetch(format!("{base}/echo/open"), "POST", &[]),
        "only GET, not POST",
    );
    refused(
        &fetch(format!("{base}/echo/private/x"), "GET", &[]),
        "no context.ticket for this url",
    );
    // The secret the host would add is a use of it, and the policy wants a ticket.
    refused(
        &fetch(format!("{base}/echo/authed"), "GET", &[]),
        "secret api needs a ticket in the context",
    );
    let run = fetch(
        format!("{base}/echo/authed"),
        "GET",
        &["--context", "ticket=OPS-7"],
    );
    assert_eq!(run.json()["status"], 200, "{run:#?}");
    let paths: Vec<String> = server.received().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        paths,
        ["/echo/open", "/echo/authed"],
        "only allowed requests arrive"
    );
}

#[test]
fn withheld_variables_are_named_and_the_rest_pass() {
    let sb = probe(
        "",
        r#"package warden
deny contains sprintf("%s is not for agent %s", [input.resource, input.agent]) if {
    input.call.kind == "env"
    input.resource == "WARDEN_PROBE_PASS"
}
"#,
    );
    let env = [("WARDEN_PROBE_PASS", "passed")];
    let run = sb.run_args(r#"{"op":"env_all"}"#, &["--agent", "scout"], &env);
    assert_eq!(run.json()["vars"], json!({"GRANTED": "yes"}), "{run:#?}");
    let d = run.denial("get-environment");
    assert_eq!(d["args"]["names"], json!(["GRANTED"]));
    assert_eq!(d["args"]["withheld"], json!(["WARDEN_PROBE_PASS"]));
    let why = policy_rule(&sb, "WARDEN_PROBE_PASS is not for agent scout");
    assert_eq!(d["rule"], format!("WARDEN_PROBE_PASS: {why}"));
    assert!(
        !run.stdout.contains("passed")
            && !serde_json::to_string(&run.records)
                .unwrap()
                .contains("passed")
    );
    run.assert_recorded();
}

#[test]
fn connects_and_lookups_ask_the_policy() {
    let silent = Silent::new();
    let port = silent.port();
    let sb = probe(
        &format!(
            "[[tcp]]\nconnect = \"127.0.0.1:{port}\"\n\n[[tcp]]\nconnect = \"localhost:{port}\"\n"
        ),
        r#"package warden
deny contains sprintf("no %s to %s", [input.call.kind, input.resource]) if {
    input.call.kind in {"tcp", "dns"}
    not input.context.network
}
"#,
    );
    let run = sb.run(&format!(r#"{{"op":"tcp","addr":"127.0.0.1:{port}"}}"#));
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("start-connect");
    assert_eq!(d["outcome"], "error:access-denied");
    assert_eq!(
        d["rule"],
        policy_rule(&sb, &format!("no tcp to 127.0.0.1:{port}"))
    );
    run.assert_recorded();
    silent.assert_untouched();

    let run = sb.run(&format!(r#"{{"op":"tcp","addr":"localhost:{port}"}}"#));
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("resolve-addresses");
    assert_eq!(d["rule"], policy_rule(&sb, "no dns to localhost"));
    silent.assert_untouched();
}

#[test]
fn an_evaluation_error_denies() {
    // `to_number("high")` is an error here, not undefined: undefined would allow.
    let sb = probe(
        "",
        r#"package warden
deny contains "too risky" if to_number(input.context.risk) > 0.5
"#,
    );
    let run = sb.run_args(READ, &["--context", "risk=0.1"], &[]);
    assert_eq!(run.json()["ok"], true, "{run:#?}");
    let run = sb.run_args(READ, &["--context", "risk=high"], &[]);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("open-at");
    let rule = d["rule"].as_str().unwrap();
    let prefix = policy_rule(&sb, "policy error: ");
    assert!(rule.starts_with(&prefix), "{rule}");
    assert!(rule.contains(":2:"), "names the line: {rule}");
    run.assert_recorded();
}

#[test]
fn an_allow_list_refuses_what_it_does_not_list() {
    let sb = probe(
        "",
        r#"package warden
default allow := false
allow if {
    input.call.kind == "fs.read"
    startswith(input.resource, "/ro/")
}
allow if input.call.kind == "env"
"#,
    );
    let run = sb.run(READ);
    assert_eq!(run.json()["ok"], true, "{run:#?}");
    let run = sb.run(&write("c.txt"));
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("open-at");
    assert_eq!(
        d["rule"],
        policy_rule(&sb, "no allow rule matched this call")
    );
    run.assert_recorded();
}

/// A runtime's own policy (`--policy`) applies besides the manifest's: each may deny.
#[test]
fn a_runtime_policy_adds_to_the_manifest_policy() {
    let sb = probe("", &example_policy("no-writes-unless-low-risk.rego"));
    let host_policy: PathBuf = sb.path("host.rego");
    std::fs::write(
        &host_policy,
        r#"package warden
deny contains "agent intruder is blocked by the host" if input.agent == "intruder"
"#,
    )
    .unwrap();
    let host = host_policy.to_str().unwrap();
    let low = ["--context", "risk=0.1", "--policy", host];

    let run = sb.run_args(&write("d.txt"), &low, &[]);
    assert_eq!(run.json()["ok"], true, "{run:#?}");

    let mut options = low.to_vec();
    options.extend(["--agent", "intruder"]);
    let run = sb.run_args(READ, &options, &[]);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("open-at");
    assert_eq!(
        d["rule"],
        format!("policy {host}: agent intruder is blocked by the host")
    );

    // The manifest's policy still holds under --policy.
    let run = sb.run_args(&write("e.txt"), &["--policy", host], &[]);
    assert_eq!(run.json()["ok"], false, "{run:#?}");

    // A broken --policy is a usage error naming the file and line; nothing runs.
    std::fs::write(&host_policy, "package warden\ndeny contains x if { y }\n").unwrap();
    let run = sb.run_args(READ, &["--policy", host], &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains(&format!("--policy: {host}:2:")),
        "{run:#?}"
    );
    assert!(run.records.is_empty());
}
