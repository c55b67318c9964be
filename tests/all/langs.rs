//! Tools in Python and JavaScript, built by the public toolchains (componentize-py from PyPI,
//! componentize-js from npm, as `.ci/run` installs them) from `guest-examples/`, and run
//! through the CLI and through `warden mcp` with the official MCP SDK, doing real work under
//! their grants; each also tries to step outside them.
//!
//! - `csv-query` (Python, `warden:tool`) reads CSV files under a read-only grant;
//! - `py-text` (Python, plain functions) exports an interface, and componentize-py's own
//!   `exports#init` beside it;
//! - `issue-tracker` (JavaScript, `warden:tool`) lists and opens issues with `fetch` through
//!   an `[[http]]` rule, with a token injected by the host.

use crate::guests::{js_guest, python_guest, root};
use crate::http_server::Server;
use crate::mcp::{call, client, task_records, warden_bin};
use crate::support::{Run, Sandbox, warden, warden_command};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::OnceLock;

const TOKEN: &str = "tok-7d1c2e9a41f0";

/// Builds a guest and compiles it into the tests' shared cache once, so that the tests
/// using it do not each compile it cold at the same time.
fn warmed(built: &'static Path) -> &'static Path {
    let out = warden_command(&["compile", built.to_str().unwrap()], &[])
        .output()
        .expect("warden runs");
    assert!(
        out.status.success(),
        "warden compile {}: {}",
        built.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    built
}

fn csv_query() -> &'static Path {
    static WARM: OnceLock<&'static Path> = OnceLock::new();
    WARM.get_or_init(|| warmed(python_guest("csv-query", "../../wit", "tool")))
}

fn py_text() -> &'static Path {
    static WARM: OnceLock<&'static Path> = OnceLock::new();
    WARM.get_or_init(|| warmed(python_guest("py-text", "wit", "text-tools")))
}

fn issue_tracker() -> &'static Path {
    static WARM: OnceLock<&'static Path> = OnceLock::new();
    WARM.get_or_init(|| warmed(js_guest("issue-tracker")))
}

/// `issue-tracker`'s manifest pointed at `server` instead of api.github.com, with only
/// `methods` allowed.
fn tracker(server: &Server, methods: &str) -> Sandbox {
    let sb = Sandbox::of("issue-tracker", issue_tracker());
    let text = std::fs::read_to_string(root().join("guest-examples/issue-tracker/manifest.toml"))
        .unwrap()
        .replace("https://api.github.com", &server.base())
        .replace(
            r#"methods = ["GET", "POST"]"#,
            &format!("methods = {methods}"),
        );
    sb.write_manifest_for(&text, issue_tracker());
    sb
}

fn tracker_run(sb: &Sandbox, input: Value) -> Run {
    sb.run_with(&input.to_string(), &[("ISSUES_TOKEN", TOKEN)])
}

/// Asserts that `run` ended with exit status `code`, saying `says` on stderr.
fn fails(run: &Run, code: i32, says: &str) {
    assert_eq!(run.code, code, "{run:#?}");
    assert!(run.stderr.contains(says), "expected {says:?}: {run:#?}");
}

fn no_token_in(run: &Run) {
    assert!(
        !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
        "{run:#?}"
    );
    let log = serde_json::to_string(&run.records).unwrap();
    assert!(!log.contains(TOKEN), "the token is in the audit log");
}

#[test]
fn a_python_tool_answers_from_its_read_grant() {
    let sb = Sandbox::of("csv-query", csv_query());
    let run = sb.run(
        r#"{"file":"sales.csv","aggregate":{"op":"sum","column":"amount"},"group_by":"region"}"#,
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.json(),
        json!({
            "matched": 10,
            "groups": { "APAC": 580.0, "EU": 625.0, "US": 1120.0 },
            "file": "/data/sales.csv",
        })
    );
    run.assert_recorded();
    let opened: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["call"].as_str().is_some_and(|c| c.ends_with("open-at")))
        .collect();
    assert_eq!(opened.len(), 1, "{run:#?}");
    assert_eq!(opened[0]["resource"], "/data/sales.csv");
    assert_eq!(opened[0]["decision"], "allow");

    let run = sb.run(
        r#"{"file":"customers.csv","where":[{"column":"since","op":"<","value":2020}],"select":["name"]}"#,
    );
    assert_eq!(
        run.json()["rows"],
        json!([{ "name": "Acme Ltd" }, { "name": "Initech" }])
    );

    // The tool's own errors name the field, and reach the caller as invalid-input.
    let run = sb.run(r#"{"file":"sales.csv","where":[{"column":"price","op":"=","value":1}]}"#);
    fails(
        &run,
        1,
        "csv-query failed (invalid-input): price: no such column; the file has date, region, product, units, amount",
    );
}

#[test]
fn a_python_tool_cannot_read_outside_its_grant() {
    let sb = Sandbox::of("csv-query", csv_query());
    std::fs::write(sb.path("secret.csv"), "key\nhunter2\n").unwrap();
    std::os::unix::fs::symlink(sb.path("secret.csv"), sb.path("data/link.csv")).unwrap();

    // Up and out of /data: refused by Warden, recorded, and the tool says denied.
    let run = sb.run(r#"{"file":"../secret.csv"}"#);
    fails(&run, 1, "csv-query failed (denied)");
    let denied = run.denial("open-at");
    assert_eq!(denied["resource"], "/secret.csv");

    // A symlink inside the grant that points out of it.
    let run = sb.run(r#"{"file":"link.csv"}"#);
    fails(&run, 1, "csv-query failed (denied)");
    assert_eq!(run.denial("open-at")["decision"], "deny");

    // A path no grant covers does not exist for the tool at all.
    let run = sb.run(r#"{"file":"/etc/passwd"}"#);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("csv-query failed (failed): /etc/passwd: No such file or directory"),
        "{run:#?}"
    );
    assert!(!run.stdout.contains("root:"), "{run:#?}");
}

#[test]
fn componentize_py_s_init_export_is_neither_listed_nor_served() {
    let wasm = py_text();
    let out = warden(&["inspect", wasm.to_str().unwrap()], &[], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("  local:text/text@0.1.0\n"), "{text}");
    assert!(
        !text.contains("exports") || !text.contains("init"),
        "{text}"
    );
    assert!(!text.contains("app-name"), "{text}");

    let sb = Sandbox::of("py-text", wasm);
    let run = sb.run_args(
        r#"{"text":"the cat and the hat and the bat","top":2}"#,
        &["--call", "text.word-frequencies"],
        &[],
    );
    assert_eq!(
        run.json(),
        json!([{ "word": "the", "count": 3 }, { "word": "and", "count": 2 }]),
        "{run:#?}"
    );
    let run = sb.run_args(r#"{"app-name":"x"}"#, &["--call", "exports#init"], &[]);
    fails(
        &run,
        2,
        "exports no function \"exports#init\"; it exports text.slugify, text.word-frequencies",
    );
}

#[test]
fn a_javascript_tool_calls_its_api_with_a_token_it_never_sees() {
    let server = Server::start(TOKEN);
    let sb = tracker(&server, r#"["GET", "POST"]"#);
    let run = tracker_run(&sb, json!({ "action": "list", "repo": "acme/app" }));
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.json(),
        json!([
            { "number": 1, "title": "first issue", "state": "open" },
            { "number": 2, "title": "second issue", "state": "closed" },
        ])
    );
    run.assert_recorded();
    assert_eq!(run.events("secret.use").len(), 1, "{run:#?}");
    no_token_in(&run);

    let run = tracker_run(
        &sb,
        json!({ "action": "open", "repo": "acme/app", "title": "crash on start" }),
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.json()["number"], 3);
    no_token_in(&run);
    let posted = server.received();
    let post = posted
        .iter()
        .find(|r| r.method == "POST")
        .expect("the POST arrived");
    assert_eq!(post.target, "/repos/acme/app/issues");
    assert_eq!(
        post.header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(body["title"], "crash on start");
}

#[test]
fn a_javascript_tool_cannot_reach_past_its_http_rule() {
    let server = Server::start(TOKEN);
    let sb = tracker(&server, r#"["GET"]"#);

    // `fetch` resolves the dot segments: /repos/../../admin/issues is /admin/issues, outside
    // the rule's /repos/ prefix. Refused before anything is sent, and recorded.
    let run = tracker_run(&sb, json!({ "action": "list", "repo": "../../admin" }));
    fails(&run, 1, "issue-tracker failed (denied)");
    let denied = run.denial("outgoing-handler.handle");
    assert!(
        denied["resource"]
            .as_str()
            .unwrap()
            .ends_with("/admin/issues?state=open"),
        "{denied:#}"
    );

    // The rule allows GET only: opening an issue is a POST.
    let run = tracker_run(
        &sb,
        json!({ "action": "open", "repo": "acme/app", "title": "x" }),
    );
    fails(&run, 1, "issue-tracker failed (denied)");
    assert!(
        run.denial("outgoing-handler.handle")["resource"]
            .as_str()
            .unwrap()
            .starts_with("POST "),
        "{run:#?}"
    );
    no_token_in(&run);
    assert!(
        server.received().is_empty(),
        "nothing reached the server: {:?}",
        server.received()
    );
}

#[test]
fn python_and_javascript_tools_over_mcp() {
    let server = Server::start(TOKEN);
    let csv = Sandbox::of("csv-query", csv_query());
    std::fs::write(csv.path("secret.csv"), "key\nhunter2\n").unwrap();
    let text = Sandbox::of("py-text", py_text());
    let issues = tracker(&server, r#"["GET"]"#);
    let audit = csv.path("mcp-audit.jsonl");
    let mut args = vec!["mcp".to_owned()];
    for sb in [&csv, &text, &issues] {
        args.push(sb.manifest.display().to_string());
    }
    args.extend(["--audit".to_owned(), audit.display().to_string()]);
    // The tests' shared state and compile cache, so that the components compiled above load
    // from it; and the token the tracker's secret reads.
    let env = json!({
        "XDG_STATE_HOME": root().join("target/test-state").display().to_string(),
        "XDG_CACHE_HOME": root().join("target/test-cache").display().to_string(),
        "ISSUES_TOKEN": TOKEN,
    });
    let out = client(json!({
        "server": { "stdio": { "command": warden_bin(), "args": args, "env": env } },
        "steps": [
            { "list": true },
            call("csv-query", json!({ "file": "sales.csv", "aggregate": { "op": "count" } })),
            call("csv-query", json!({ "file": "../secret.csv" })),
            call("py-text.text.slugify", json!({ "text": "Héllo, Wörld! 2026" })),
            call("py-text.exports.init", json!({ "app-name": "x" })),
            call("issue-tracker", json!({ "action": "list", "repo": "acme/app" })),
            call("issue-tracker", json!({ "action": "list", "repo": "../../admin" })),
        ],
    }));
    let steps = out["steps"].as_array().unwrap();
    let mut listed: Vec<&str> = steps[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "csv-query",
            "issue-tracker",
            "py-text.text.slugify",
            "py-text.text.word-frequencies"
        ],
        "{out:#}"
    );

    assert_eq!(steps[1]["is_error"], false, "{out:#}");
    assert_eq!(steps[1]["structured"]["count"], 10, "{out:#}");

    let outside = &steps[2];
    assert_eq!(outside["is_error"], true, "{out:#}");
    assert!(
        outside["text"].as_str().unwrap().contains("denied"),
        "{out:#}"
    );
    assert!(!outside["text"].as_str().unwrap().contains("hunter2"));
    let records = crate::support::read_records(&audit);
    let denied: Vec<&Value> = task_records(&records, outside)
        .into_iter()
        .filter(|r| r["decision"] == "deny")
        .collect();
    assert_eq!(denied.len(), 1, "{records:#?}");
    assert_eq!(denied[0]["resource"], "/secret.csv");

    assert_eq!(
        steps[3]["structured"],
        json!({ "result": "hello-world-2026" }),
        "{out:#}"
    );
    // Not a tool: the call is refused as it is for any name the server does not list.
    let init = &steps[4];
    assert!(
        init["error"]
            .as_str()
            .is_some_and(|e| e.contains("no tool is named \"py-text.exports.init\"")),
        "exports.init was served: {out:#}"
    );

    assert_eq!(steps[5]["is_error"], false, "{out:#}");
    // A list is a result MCP cannot carry as structured content; the text holds it.
    let issues: Value = serde_json::from_str(steps[5]["text"].as_str().unwrap()).unwrap();
    assert_eq!(issues.as_array().map(Vec::len), Some(2), "{out:#}");
    let past = &steps[6];
    assert_eq!(past["is_error"], true, "{out:#}");
    let denied: Vec<&Value> = task_records(&records, past)
        .into_iter()
        .filter(|r| r["decision"] == "deny")
        .collect();
    assert_eq!(denied.len(), 1, "{records:#?}");
    assert!(!std::fs::read_to_string(&audit).unwrap().contains(TOKEN));
    assert!(
        server
            .received()
            .iter()
            .all(|r| r.target.starts_with("/repos/")),
        "{:?}",
        server.received()
    );
}

#[test]
fn a_component_larger_than_a_task_slot_is_refused_with_the_setting_that_fits_it() {
    let wasm = csv_query().to_str().unwrap();
    let out = warden(&["--slot-instances", "8", "inspect", wasm], &[], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.ends_with(&format!(
            "warden: {wasm}: needs 14 core instances per task, more than the 8 a task slot \
             holds; raise it with `--slot-instances 14` (or WARDEN_SLOT_INSTANCES=14; a library \
             host sets EngineConfig::slot.core_instances)\n"
        )),
        "{stderr}"
    );
    // The setting it names is the one that lets it in, as an option or from the environment.
    let out = warden(&["inspect", wasm], &[("WARDEN_SLOT_INSTANCES", "14")], None);
    assert!(out.status.success(), "{out:?}");
    let out = warden(&["run", "--slot-tables", "1", "x.toml"], &[], None);
    assert_eq!(out.status.code(), Some(2));

    let out = warden(&["inspect", wasm, "--slot-tables", "1"], &[], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("needs 2 tables per task, more than the 1 a task slot holds; raise it with `--slot-tables 2`"),
        "{stderr}"
    );
}

/// A JavaScript bug (reading a field of `null`) is an uncaught exception: the task traps, and
/// what the engine wrote to stderr reaches the user, who could not tell what happened without it.
#[test]
fn a_javascript_tool_s_uncaught_exception_is_shown_with_its_trap() {
    let server = Server::start(TOKEN);
    let sb = tracker(&server, r#"["GET"]"#);
    let run = tracker_run(&sb, Value::Null);
    fails(&run, 1, "TypeError");
    assert!(run.stderr.contains("trapped"), "{run:#?}");
    assert_eq!(run.end()["outcome"], "trap", "{run:#?}");
}
