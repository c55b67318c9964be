//! Approval gates through the real CLI: `approval = "required"` on `[[fs]]`,
//! `[[http]]` and `[[secrets]]`, answered by `--approve-cmd`, `--approve tty`
//! (in a real pseudo-terminal, through `script`), nobody, or a library
//! callback. Every refusal is checked twice: what the guest saw, and the
//! deny record; every answer once more: the `approval` record.
//!
//! Approval commands keep evidence in the sandbox: the request they were
//! given, or a marker that says they were asked at all.

use crate::http_server::Server;
use crate::support::{Run, Sandbox, example, read_records, warden};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `sh` finds `cat`, `touch` and `sleep` with this; warden runs with an
/// empty environment otherwise.
const PATH: (&str, &str) = ("PATH", "/usr/local/bin:/usr/bin:/bin");

/// The probe with `/rw` gated (and `/ro` read-only, as always).
fn gated_probe() -> Sandbox {
    gated_probe_with("")
}

/// The probe with `/rw` gated and `extra` appended to its manifest.
fn gated_probe_with(extra: &str) -> Sandbox {
    let sb = Sandbox::new("probe", "probe");
    let text = std::fs::read_to_string(example("probe")).unwrap();
    let needle = "access = \"read-write\"";
    assert!(text.contains(needle));
    let text = text.replace(needle, &format!("{needle}\napproval = \"required\""));
    sb.write_manifest(&format!("{text}\n\n{extra}\n"), "probe");
    sb
}

/// `warden run` on the sandbox's manifest with `input` and `flags`.
fn run_flags(sb: &Sandbox, input: &str, flags: &[&str], env: &[(&str, &str)]) -> Run {
    let before = sb.records().len();
    let mut args = vec![
        "run",
        sb.manifest.to_str().unwrap(),
        "--audit",
        sb.audit.to_str().unwrap(),
        "--agent",
        "approval-test",
        "--input",
        input,
    ];
    args.extend_from_slice(flags);
    let mut env = env.to_vec();
    env.push(PATH);
    let out = warden(&args, &env, None);
    let records = sb.records().split_off(before);
    Run::new(out, records)
}

/// A command that saves its request to `saved` and answers with `status`.
fn saving(saved: &Path, status: i32) -> String {
    format!("cat > '{}'; exit {status}", saved.display())
}

/// A command that appends each request to `log`, one per line, and approves.
fn logging(log: &Path) -> String {
    format!("cat >> '{}'; exit 0", log.display())
}

/// A command that must never run: it leaves `marker` behind, and refuses.
fn tripwire(marker: &Path) -> String {
    format!("touch '{}'; exit 1", marker.display())
}

fn approvals(run: &Run) -> Vec<&Value> {
    run.records
        .iter()
        .filter(|r| r["event"] == "approval")
        .collect()
}

/// The run's one `approval` record.
fn approval(run: &Run) -> &Value {
    let found = approvals(run);
    assert_eq!(found.len(), 1, "one approval record: {run:#?}");
    found[0]
}

/// The one deny record of a call whose name ends with `call`, other than
/// its `approval` record (which is a deny too when the answer is no).
fn refused<'a>(run: &'a Run, call: &str) -> &'a Value {
    let found: Vec<&Value> = run
        .denials()
        .into_iter()
        .filter(|r| r["event"] != "approval")
        .filter(|r| r["call"].as_str().is_some_and(|c| c.ends_with(call)))
        .collect();
    assert_eq!(found.len(), 1, "expected one {call} denial: {run:#?}");
    found[0]
}

fn write(path: &str) -> String {
    json!({"op": "write", "path": path, "data": "approved text"}).to_string()
}

fn task_id(run: &Run) -> &str {
    run.records[0]["task"].as_str().unwrap()
}

#[test]
fn an_approving_command_lets_the_write_through_and_sees_the_request() {
    let sb = gated_probe();
    let saved = sb.path("request.json");
    let cmd = saving(&saved, 0);
    let run = run_flags(&sb, &write("/rw/report.md"), &["--approve-cmd", &cmd], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.json(), json!({"ok": true, "bytes": 13}));
    assert_eq!(
        std::fs::read_to_string(sb.path("root/rw/report.md")).unwrap(),
        "approved text"
    );
    run.assert_recorded();

    // What the command read on stdin: one line of JSON, about this task.
    let text = std::fs::read_to_string(&saved).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let req: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        req,
        json!({
            "agent": "approval-test",
            "tool": "probe",
            "task": task_id(&run),
            "grant": null,
            "call": "wasi:filesystem/types.[method]descriptor.open-at",
            "kind": "fs-write",
            "resource": "/rw/report.md",
            "rule": "fs[1] /rw read-write",
            "summary": "probe wants to open /rw/report.md for writing",
        })
    );

    let a = approval(&run);
    assert_eq!(a["decision"], "allow");
    assert_eq!(
        a["call"],
        "wasi:filesystem/types.[method]descriptor.open-at"
    );
    assert_eq!(a["resource"], "/rw/report.md");
    assert_eq!(a["args"]["approver"], format!("command:{cmd}"));
    assert_eq!(a["args"]["answer"], "yes");
    assert_eq!(a["args"]["reason"], "exit status 0");
    assert_eq!(
        a["args"]["summary"],
        "probe wants to open /rw/report.md for writing"
    );
    assert!(a["dur_ns"].as_u64().unwrap() > 0, "{a}");
    // The open's own records say it was approved, and come after the answer.
    let open: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| {
            r["call"] == "wasi:filesystem/types.[method]descriptor.open-at"
                && r["event"] != "approval"
        })
        .collect();
    assert_eq!(open.len(), 2, "the intent and the call: {run:#?}");
    assert_eq!(open[0]["event"], "call.intent");
    assert!(open[0]["seq"].as_u64() > a["seq"].as_u64());
    for r in open {
        assert_eq!(r["decision"], "allow");
        let rule = r["rule"].as_str().unwrap();
        assert!(
            rule.starts_with("fs[1] /rw read-write; approved by command:"),
            "{rule}"
        );
    }
}

#[test]
fn a_refusing_command_writes_nothing() {
    let sb = gated_probe();
    let run = run_flags(
        &sb,
        &write("/rw/refused.md"),
        &["--approve-cmd", "exit 1"],
        &[],
    );
    assert_eq!(run.code, 0, "the probe reports, it does not fail: {run:#?}");
    let out = run.json();
    assert_eq!(out["ok"], false, "{run:#?}");
    assert_eq!(out["kind"], "PermissionDenied", "{run:#?}");
    assert!(!sb.path("root/rw/refused.md").exists());
    run.assert_recorded();

    let a = approval(&run);
    assert_eq!(a["decision"], "deny");
    assert_eq!(a["args"]["approver"], "command:exit 1");
    assert_eq!(a["args"]["answer"], "no");
    assert_eq!(a["outcome"], "error:refused");
    let d = refused(&run, "open-at");
    assert_eq!(d["resource"], "/rw/refused.md");
    assert_eq!(d["outcome"], "error:access");
    assert_eq!(
        d["rule"],
        "fs[1] /rw read-write requires approval: refused by command:exit 1: exit status 1"
    );
    assert!(
        !run.records.iter().any(|r| r["event"] == "call.intent"),
        "nothing refused is announced as about to happen: {run:#?}"
    );
}

#[test]
fn a_command_that_hangs_past_the_timeout_is_a_refusal_and_the_task_goes_on() {
    let sb = gated_probe();
    let started = Instant::now();
    let run = run_flags(
        &sb,
        &write("/rw/late.md"),
        &["--approve-cmd", "sleep 30", "--approve-timeout", "300ms"],
        &[],
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "the task waited for the command: {took:?}"
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    assert!(!sb.path("root/rw/late.md").exists());
    run.assert_recorded();

    let a = approval(&run);
    assert_eq!(a["decision"], "deny");
    assert_eq!(a["args"]["answer"], "timeout");
    assert_eq!(a["args"]["approver"], "command:sleep 30");
    assert_eq!(a["outcome"], "error:timeout");
    let waited = a["dur_ns"].as_u64().unwrap();
    assert!(
        waited >= 300_000_000,
        "answered before the timeout: {waited}"
    );
    assert_eq!(
        refused(&run, "open-at")["rule"],
        "fs[1] /rw read-write requires approval: no answer within 300ms from command:sleep 30"
    );
}

#[test]
fn without_an_approver_gated_calls_are_refused_and_the_record_says_how_to_add_one() {
    let sb = gated_probe();
    let run = run_flags(&sb, &write("/rw/nobody.md"), &[], &[]);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    assert!(!sb.path("root/rw/nobody.md").exists());
    run.assert_recorded();
    let a = approval(&run);
    assert_eq!(a["args"]["approver"], "deny");
    let rule = refused(&run, "open-at")["rule"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        rule.starts_with(
            "fs[1] /rw read-write requires approval: refused by deny: no approver is configured"
        ),
        "{rule}"
    );
    for flag in ["--approve tty", "--approve-cmd CMD"] {
        assert!(rule.contains(flag), "{rule} should name {flag}");
    }

    // --approve deny says it was asked to refuse.
    let run = run_flags(&sb, &write("/rw/nobody.md"), &["--approve", "deny"], &[]);
    let rule = refused(&run, "open-at")["rule"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        rule.contains("--approve deny refuses every gated call"),
        "{rule}"
    );
}

#[test]
fn reads_and_ungated_grants_never_ask() {
    let sb = gated_probe_with(
        "[[fs]]\nhost = \"./root/free\"\nguest = \"/free\"\naccess = \"read-write\"\n",
    );
    std::fs::create_dir_all(sb.path("root/free")).unwrap();
    std::fs::write(sb.path("root/rw/existing.txt"), "already here").unwrap();
    let marker = sb.path("asked");
    let cmd = tripwire(&marker);
    for input in [
        json!({"op": "read", "path": "/rw/existing.txt"}),
        json!({"op": "list", "path": "/rw"}),
        json!({"op": "metadata", "path": "/rw/existing.txt"}),
        json!({"op": "read", "path": "/ro/hello.txt"}),
        json!({"op": "write", "path": "/free/x.txt", "data": "ungated"}),
    ] {
        let run = run_flags(&sb, &input.to_string(), &["--approve-cmd", &cmd], &[]);
        assert_eq!(run.json()["ok"], true, "{input}: {run:#?}");
        assert!(approvals(&run).is_empty(), "{input}: {run:#?}");
        run.assert_recorded();
    }
    assert!(!marker.exists(), "the approver was asked about a read");
    assert_eq!(
        std::fs::read_to_string(sb.path("root/free/x.txt")).unwrap(),
        "ungated"
    );
}

#[test]
fn every_kind_of_change_asks_once() {
    let sb = gated_probe();
    let log = sb.path("requests.jsonl");
    let cmd = logging(&log);
    std::fs::write(sb.path("root/rw/old.txt"), "x").unwrap();
    let cases = [
        (
            json!({"op": "create_dir", "path": "/rw/d"}),
            "/rw/d",
            "create the directory /rw/d",
        ),
        (
            json!({"op": "rename", "from": "/rw/old.txt", "to": "/rw/new.txt"}),
            "/rw/old.txt -> /rw/new.txt",
            "rename /rw/old.txt to /rw/new.txt",
        ),
        (
            json!({"op": "hard_link", "src": "/rw/new.txt", "dst": "/rw/linked.txt"}),
            "/rw/new.txt -> /rw/linked.txt",
            "hard-link /rw/new.txt as /rw/linked.txt",
        ),
        (
            json!({"op": "symlink", "target": "new.txt", "link": "/rw/sym"}),
            "/rw/sym",
            "create the symlink /rw/sym",
        ),
        (
            json!({"op": "remove", "path": "/rw/new.txt"}),
            "/rw/new.txt",
            "delete /rw/new.txt",
        ),
    ];
    for (input, resource, action) in cases {
        let before = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count();
        let run = run_flags(&sb, &input.to_string(), &["--approve-cmd", &cmd], &[]);
        assert_eq!(run.json()["ok"], true, "{input}: {run:#?}");
        run.assert_recorded();
        let a = approval(&run);
        assert_eq!(a["resource"], resource, "{a}");
        assert_eq!(a["args"]["summary"], format!("probe wants to {action}"));
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), before + 1, "{input}: asked once");
        let req: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(req["resource"], resource);
    }
    assert!(sb.path("root/rw/d").is_dir());
    assert!(!sb.path("root/rw/old.txt").exists() && !sb.path("root/rw/new.txt").exists());
    assert!(sb.path("root/rw/linked.txt").is_file());
    assert!(sb.path("root/rw/sym").is_symlink());
}

/// `http-fetch` may GET and POST anywhere on `server`; the rule is gated.
fn gated_fetch(server: &Server) -> Sandbox {
    let sb = Sandbox::new("http-fetch", "http_fetch");
    sb.write_manifest(
        &format!(
            "[tool]\nname = \"http-fetch\"\ncomponent = \"\"\n\n[limits]\ntimeout = \"10s\"\n\n\
             [[http]]\nurl = \"{}/\"\nmethods = [\"GET\", \"POST\"]\napproval = \"required\"\n",
            server.base()
        ),
        "http_fetch",
    );
    sb
}

#[test]
fn a_gated_post_waits_for_its_answer_and_a_get_does_not() {
    let server = Server::start("unused");
    let sb = gated_fetch(&server);
    let url = format!("{}/echo", server.base());
    let marker = sb.path("asked");

    // GET only reads: the approver is never asked.
    let get = json!({"url": url}).to_string();
    let run = run_flags(&sb, &get, &["--approve-cmd", &tripwire(&marker)], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(approvals(&run).is_empty() && !marker.exists(), "{run:#?}");
    assert_eq!(server.received().len(), 1);

    // A refused POST never leaves the host.
    let post = json!({"url": url, "method": "POST", "body": "change"}).to_string();
    let run = run_flags(&sb, &post, &["--approve-cmd", "exit 1"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("HttpRequestDenied"), "{run:#?}");
    assert_eq!(
        server.received().len(),
        1,
        "the refused POST reached the server"
    );
    run.assert_recorded();
    let a = approval(&run);
    assert_eq!(a["decision"], "deny");
    assert_eq!(a["call"], "wasi:http/outgoing-handler.handle");
    assert_eq!(a["resource"], format!("POST {url}"));
    assert_eq!(a["args"]["kind"], "http-request");
    assert_eq!(
        a["args"]["summary"],
        format!("http-fetch wants to send POST {url}")
    );
    let end: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["event"] == "http.end")
        .collect();
    assert_eq!(end.len(), 1, "{run:#?}");
    assert_eq!(end[0]["decision"], "deny");
    assert_eq!(end[0]["outcome"], "error:HTTP-request-denied");
    assert_eq!(
        end[0]["rule"],
        format!(
            "http[0] {}/ GET,POST requires approval: refused by command:exit 1: exit status 1",
            server.base()
        )
    );

    // An approved POST goes out, once.
    let saved = sb.path("request.json");
    let run = run_flags(&sb, &post, &["--approve-cmd", &saving(&saved, 0)], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].method, "POST");
    assert_eq!(got[1].body, b"change");
    run.assert_recorded();
    assert_eq!(approval(&run)["decision"], "allow");
    let req: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(req["kind"], "http-request");
    assert_eq!(req["resource"], format!("POST {url}"));
    assert_eq!(req["rule"], format!("http[0] {}/ GET,POST", server.base()));
}

/// The probe with a gated secret `signer` bound to `WARDEN_TEST_SIGNER`.
fn gated_signer() -> Sandbox {
    let sb = Sandbox::new("probe", "probe");
    let base = std::fs::read_to_string(example("probe")).unwrap();
    sb.write_manifest(
        &format!(
            "{base}\n\n[[secrets]]\nname = \"signer\"\nsource = \"env:WARDEN_TEST_SIGNER\"\n\
             purpose = \"sign release notes\"\nhmac = true\napproval = \"required\"\n"
        ),
        "probe",
    );
    sb
}

#[test]
fn each_use_of_a_gated_secret_asks() {
    let sb = gated_signer();
    let env = [("WARDEN_TEST_SIGNER", "k3y-for-the-test")];
    let input =
        json!({"op": "secret_hmac", "name": "signer", "data": "v1.2", "times": 2}).to_string();
    let log = sb.path("requests.jsonl");
    let run = run_flags(&sb, &input, &["--approve-cmd", &logging(&log)], &env);
    assert_eq!(run.code, 0, "{run:#?}");
    let out = run.json();
    assert_eq!(out["ok"], true, "{run:#?}");
    assert_eq!(out["hexes"].as_array().unwrap().len(), 2);
    run.assert_recorded();
    let asked = approvals(&run);
    assert_eq!(asked.len(), 2, "one approval per use: {run:#?}");
    let req: Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(req["kind"], "secret-use");
    assert_eq!(req["resource"], "secret signer");
    assert_eq!(
        req["call"],
        "warden:tool/secrets.[method]secret.hmac-sha256"
    );
    assert_eq!(
        req["summary"],
        "probe wants to use secret \"signer\" (hmac-sha256) to sign release notes"
    );
    let uses: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["event"] == "secret.use")
        .collect();
    assert_eq!(uses.len(), 2);
    assert!(
        uses[0]["rule"]
            .as_str()
            .unwrap()
            .starts_with("secrets[0] signer: hmac = true; approved by command:"),
        "{}",
        uses[0]
    );
    // Opening it and asking its name are not uses.
    assert!(
        !std::fs::read_to_string(&sb.audit)
            .unwrap()
            .contains("k3y-for-the-test")
    );

    let run = run_flags(&sb, &input, &["--approve-cmd", "exit 1"], &env);
    let out = run.json();
    assert_eq!(out["ok"], false, "{run:#?}");
    assert_eq!(out["kind"], "denied");
    assert_eq!(
        out["error"],
        "use of secret \"signer\" needs approval each time, and its approver refused"
    );
    run.assert_recorded();
    let d = refused(&run, "hmac-sha256");
    assert_eq!(d["event"], "secret.use");
    assert_eq!(d["outcome"], "error:denied");
    assert!(
        d["rule"]
            .as_str()
            .unwrap()
            .contains("requires approval: refused by command:exit 1"),
        "{d}"
    );
}

#[test]
fn a_gated_secret_is_injected_only_with_a_yes() {
    let server = Server::start("unused");
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
methods = ["GET"]

[[secrets]]
name = "api"
source = "env:WARDEN_TEST_API"
purpose = "call the test api"
inject = {{ url = "{base}/echo", header = "authorization", format = "Bearer {{}}" }}
approval = "required"
"#
        ),
        "http_fetch",
    );
    let env = [("WARDEN_TEST_API", "t0ken-under-approval")];
    let get = json!({"url": format!("{base}/echo")}).to_string();

    // Even a GET: the secret, not the method, is gated.
    let run = run_flags(&sb, &get, &["--approve-cmd", "exit 1"], &env);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(server.received().is_empty(), "sent without its approval");
    run.assert_recorded();
    let a = approval(&run);
    assert_eq!(a["args"]["kind"], "secret-use");
    assert_eq!(a["resource"], "secret api");
    let d: Vec<&Value> = run.denials();
    assert!(
        d.iter()
            .any(|r| r["event"] == "secret.use" && r["outcome"] == "error:denied"),
        "{run:#?}"
    );
    assert!(d.iter().any(|r| r["event"] == "http.end"), "{run:#?}");

    let run = run_flags(&sb, &get, &["--approve-cmd", "exit 0"], &env);
    assert_eq!(run.code, 0, "{run:#?}");
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer t0ken-under-approval")
    );
    let uses: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["event"] == "secret.use")
        .collect();
    assert_eq!(uses.len(), 1);
    assert!(
        uses[0]["rule"]
            .as_str()
            .unwrap()
            .contains("; approved by command:exit 0"),
        "{}",
        uses[0]
    );
}

#[test]
fn check_shows_the_gates() {
    let sb = gated_probe();
    let out = warden(&["check", sb.manifest.to_str().unwrap()], &[], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for line in [
        "(read-write, each change asks an approver)",
        "approval: required for changes under /rw",
        "without one, or without an answer in time, the call is refused",
        "waiting counts toward limits.timeout (2s)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let plain = Sandbox::new("probe", "probe");
    let out = warden(&["check", plain.manifest.to_str().unwrap()], &[], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("approval: none (no call waits for an approver)"),
        "{text}"
    );
}

#[test]
fn bad_approval_flags_are_usage_errors() {
    let sb = gated_probe();
    for (flags, says) in [
        (&["--approve", "maybe"][..], "invalid value 'maybe'"),
        (&["--approve-timeout", "soon"][..], "--approve-timeout"),
        (&["--approve-timeout", "0s"][..], "must be more than zero"),
        (
            &["--approve", "deny", "--approve-cmd", "true"][..],
            "--approve deny refuses every gated call: give it alone",
        ),
        // The MCP client is an approver only where there is one.
        (&["--approve", "mcp"][..], "warden run has none"),
    ] {
        let run = run_flags(&sb, &write("/rw/x"), flags, &[]);
        assert_eq!(run.code, 2, "{flags:?}: {run:#?}");
        assert!(run.stderr.contains(says), "{flags:?}: {}", run.stderr);
        assert!(run.records.is_empty(), "{flags:?}: nothing ran");
    }
}

/// `script` gives warden a real terminal: the test reads its screen and
/// types at it, as a person would.
#[test]
fn a_person_answers_at_the_terminal() {
    assert!(
        std::process::Command::new("script")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "this test needs `script` (util-linux, or bsdutils on Debian) to give warden a terminal"
    );
    let sb = gated_probe();
    let screen = at_terminal(&sb, &write("/rw/typed.md"), "y\n");
    assert!(screen.contains("warden: approval needed"), "{screen}");
    assert!(
        screen.contains("probe wants to open /rw/typed.md for writing"),
        "{screen}"
    );
    assert!(screen.contains("Approve? [y/N] "), "{screen}");
    assert!(screen.contains("approved"), "{screen}");
    assert_eq!(
        std::fs::read_to_string(sb.path("root/rw/typed.md")).unwrap(),
        "approved text"
    );
    let records = read_records(&sb.audit);
    let a: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "approval")
        .collect();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["args"]["approver"], "tty");
    assert_eq!(a[0]["args"]["reason"], "answered \"y\"");
    assert_eq!(a[0]["decision"], "allow");

    let screen = at_terminal(&sb, &write("/rw/not-typed.md"), "\n");
    assert!(screen.contains("refused"), "{screen}");
    assert!(!sb.path("root/rw/not-typed.md").exists());
}

/// Runs `warden run --approve tty` in a pseudo-terminal, types `answer` once
/// the prompt shows, and returns everything the terminal showed.
fn at_terminal(sb: &Sandbox, input: &str, answer: &str) -> String {
    use std::io::{Read, Write};
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let command = [
        env!("CARGO_BIN_EXE_warden"),
        "run",
        sb.manifest.to_str().unwrap(),
        "--audit",
        sb.audit.to_str().unwrap(),
        "--approve",
        "tty",
        "--input",
        input,
    ]
    .map(quote)
    .join(" ");
    let root = crate::support::root();
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-f", "-c", &command, "/dev/null"])
        .env_clear()
        .env("PATH", PATH.1)
        .env("XDG_CACHE_HOME", root.join("target/test-cache"))
        .env("XDG_STATE_HOME", root.join("target/test-state"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script starts");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let mut stdin = child.stdin.take();
    // Kept open until warden ends: the end of script's input would end the
    // session.
    let mut typed = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => screen.extend(chunk),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(e) => {
                let _ = child.kill();
                panic!("{e}: {}", String::from_utf8_lossy(&screen));
            }
        }
        if String::from_utf8_lossy(&screen).contains("[y/N] ")
            && let Some(mut typing) = stdin.take()
        {
            typing.write_all(answer.as_bytes()).unwrap();
            typed = Some(typing);
        }
    }
    child.wait().unwrap();
    drop(typed);
    String::from_utf8_lossy(&screen).into_owned()
}

#[tokio::test(flavor = "current_thread")]
async fn a_library_callback_decides_each_change() {
    use warden::manifest::Manifest;
    use warden::{EngineConfig, Outcome, Runtime, TaskRequest};
    use warden_host_api::approval::{Answer, ApprovalKind, ApprovalRequest, CallbackApprover};

    let sb = gated_probe();
    let asked = Arc::new(Mutex::new(Vec::<ApprovalRequest>::new()));
    let approver = CallbackApprover::new("test-ui", {
        let asked = asked.clone();
        move |req: ApprovalRequest| {
            asked.lock().unwrap().push(req.clone());
            async move {
                if req.resource.starts_with("/rw/ok") {
                    Answer::approve("alice", "fine by me")
                } else if req.resource.starts_with("/rw/slow") {
                    std::future::pending::<Answer>().await
                } else {
                    Answer::refuse("alice", format!("not {}", req.resource))
                }
            }
        }
    });
    let runtime = Runtime::new(&EngineConfig::default())
        .unwrap()
        .with_approver(Arc::new(approver))
        .with_approval_timeout(Duration::from_millis(200));
    let tool = runtime.load(Manifest::load(&sb.manifest).unwrap()).unwrap();
    let sink = Arc::new(crate::support::Capture::default());
    let task = |input: String| TaskRequest::new(input, sink.clone()).agent("library-test");
    let result = |out: warden::TaskOutput| match out.outcome {
        Outcome::Result(json) => serde_json::from_str::<Value>(&json).unwrap(),
        other => panic!("{other:?}"),
    };

    let out = tool.run(task(write("/rw/ok.txt"))).await.unwrap();
    let id = out.task.clone();
    assert_eq!(result(out)["ok"], true);
    assert!(sb.path("root/rw/ok.txt").exists());
    let no = result(tool.run(task(write("/rw/no.txt"))).await.unwrap());
    assert_eq!(no["ok"], false);
    assert!(!sb.path("root/rw/no.txt").exists());
    let slow = result(tool.run(task(write("/rw/slow.txt"))).await.unwrap());
    assert_eq!(slow["ok"], false);
    // Reads are not the callback's business.
    let read = result(
        tool.run(task(
            json!({"op": "read", "path": "/rw/ok.txt"}).to_string(),
        ))
        .await
        .unwrap(),
    );
    assert_eq!(read["data"], "approved text");

    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 3, "{asked:#?}");
    assert_eq!(asked[0].task, id);
    assert_eq!(asked[0].agent.as_deref(), Some("library-test"));
    assert_eq!(asked[0].kind, ApprovalKind::FsWrite);
    let records = sink.records();
    let answers: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r["event"] == "approval")
        .map(|r| {
            (
                r["args"]["approver"].as_str().unwrap(),
                r["args"]["answer"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        [("alice", "yes"), ("alice", "no"), ("test-ui", "timeout")]
    );
    let ends: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "task.end")
        .collect();
    assert_eq!(ends.len(), 4);
    assert!(
        ends.iter().all(|e| e["args"]["unrecorded_host_calls"] == 0),
        "{ends:#?}"
    );
}
