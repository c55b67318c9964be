//! `warden mcp` driven by a real MCP client: the official Python SDK (`pip install mcp`,
//! tests/mcp/client.py), over stdio in both protocol generations (the 2026-07-28
//! handshake-free one and the initialize handshake before it) and over Streamable HTTP
//! with a bearer token. Each test checks what the client got and what the audit log holds.

use crate::guests::root;
use crate::support::{Sandbox, read_records};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `warden` binary the tests run.
pub(crate) fn warden_bin() -> &'static str {
    env!("CARGO_BIN_EXE_warden")
}

/// Runs tests/mcp/client.py with `plan` and returns what it printed.
pub(crate) fn client(plan: Value) -> Value {
    let mut child = Command::new("python3")
        .arg(root().join("tests/mcp/client.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plan.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the MCP client failed (is the SDK installed? pip install mcp):\n{stderr}"
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("client output is not JSON ({e}):\n{stderr}"))
}

/// Like [`client`], but a client still going after `limit` is killed (its server, in a
/// session of its own, is left to see its stdin close) and `None` is returned.
fn client_within(plan: Value, limit: std::time::Duration) -> Option<Value> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("python3")
        .arg(root().join("tests/mcp/client.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plan.to_string().as_bytes())
        .unwrap();
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let Ok(out) = finished.recv_timeout(limit) else {
        crate::support::kill_group(pid);
        return None;
    };
    let out = out.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the MCP client failed:\n{stderr}");
    Some(
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("client output is not JSON ({e}):\n{stderr}")),
    )
}

/// A directory of manifests for `warden mcp DIR`: echo (a warden:tool), fs-tools (a
/// function component, with the directories of its example) and wc (a command).
struct Tools {
    dir: tempfile::TempDir,
    fs: Sandbox,
    audit: PathBuf,
}

impl Tools {
    fn new() -> Tools {
        let dir = tempfile::tempdir().unwrap();
        let fs = Sandbox::new("fs-tools", "fs_tools");
        let echo = Sandbox::new("echo", "echo");
        let wc = Sandbox::new("wc", "wc");
        std::fs::copy(&echo.manifest, dir.path().join("echo.toml")).unwrap();
        std::fs::copy(&wc.manifest, dir.path().join("wc.toml")).unwrap();
        // fs-tools' grants are relative to its own manifest: it stays in its sandbox,
        // named as DIR/fs-tools/manifest.toml through a symlink to that directory.
        std::os::unix::fs::symlink(fs.dir.path(), dir.path().join("fs-tools")).unwrap();
        let audit = dir.path().join("audit.jsonl");
        Tools { dir, fs, audit }
    }

    fn stdio(&self, extra: &[&str]) -> Value {
        let mut args = vec![
            "mcp".to_owned(),
            self.dir.path().display().to_string(),
            "--audit".to_owned(),
            self.audit.display().to_string(),
            "--key".to_owned(),
            self.key().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        json!({ "stdio": { "command": warden_bin(), "args": args, "env": state_env(self.dir.path()) } })
    }

    /// The host key that signs the log's checkpoints.
    fn key(&self) -> PathBuf {
        self.dir.path().join("host.key")
    }

    fn records(&self) -> Vec<Value> {
        read_records(&self.audit)
    }
}

pub(crate) fn call(name: &str, arguments: Value) -> Value {
    json!({ "call": name, "arguments": arguments })
}

/// The records of the task a result names.
pub(crate) fn task_records<'a>(records: &'a [Value], result: &Value) -> Vec<&'a Value> {
    let task = &result["meta"]["dev.warden/task"];
    assert!(task.is_string(), "the result names its task: {result}");
    records.iter().filter(|r| &r["task"] == task).collect()
}

fn lists_and_calls(mode: &str, protocol: &str, threads: &str) {
    let tools = Tools::new();
    let out = client(json!({
        "server": tools.stdio(&["--threads", threads]),
        "mode": mode,
        "steps": [
            { "list": true },
            call("echo", json!({ "hello": [1, 2] })),
            call("fs-tools.read-file", json!({ "path": "/ro/hello.txt" })),
            call("fs-tools.write-file", json!({ "path": "/ro/new.txt", "contents": "x" })),
            call("fs-tools.read-file", json!({ "path": 7 })),
            call("wc", json!({ "stdin": "one two\nthree\n" })),
            call("grant-revoke", json!({ "id": "anything" })),
        ],
    }));
    assert_eq!(out["protocol"], protocol, "{out:#}");
    let steps = out["steps"].as_array().unwrap();

    // Exactly the tools of the manifests: nothing that manages grants or the log.
    let listed: Vec<&str> = steps[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "echo",
            "fs-tools.file-size",
            "fs-tools.list-dir",
            "fs-tools.read-file",
            "fs-tools.write-file",
            "wc"
        ],
        "{out:#}"
    );
    let read_file = steps[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "fs-tools.read-file")
        .unwrap();
    assert_eq!(read_file["inputSchema"]["type"], "object");
    assert_eq!(read_file["inputSchema"]["required"], json!(["path"]));
    assert_eq!(
        read_file["inputSchema"]["properties"]["path"]["type"],
        "string"
    );

    let echo = &steps[1];
    assert_eq!(echo["is_error"], false, "{echo:#}");
    assert_eq!(echo["structured"], json!({ "hello": [1, 2] }));

    let read = &steps[2];
    assert_eq!(read["is_error"], false, "{read:#}");
    let hello = std::fs::read_to_string(tools.fs.path("root/ro/hello.txt")).unwrap();
    assert_eq!(read["structured"], json!({ "result": hello }));

    // Refused by the grant: a tool error that says what Warden denied, and why.
    let write = &steps[3];
    assert_eq!(write["is_error"], true, "{write:#}");
    let text = write["text"].as_str().unwrap();
    assert!(
        text.contains(
            "warden denied wasi:filesystem/types.[method]descriptor.open-at on /ro/new.txt"
        ),
        "{text}"
    );
    assert!(text.contains("fs[0] /ro read"), "names the grant: {text}");
    assert!(!tools.fs.path("root/ro/new.txt").exists());

    let wrong = &steps[4];
    assert_eq!(wrong["is_error"], true, "{wrong:#}");
    assert!(
        wrong["text"]
            .as_str()
            .unwrap()
            .contains("argument path: expected string"),
        "{wrong:#}"
    );

    let wc = &steps[5];
    assert_eq!(wc["is_error"], false, "{wc:#}");
    assert!(wc["text"].as_str().unwrap().contains('3'), "{wc:#}");

    assert!(
        steps[6]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no tool is named \"grant-revoke\"")),
        "{out:#}"
    );

    // The log: each call is a task whose start and end carry the MCP ids and the agent;
    // the records between name the task only.
    let records = tools.records();
    let echo_task = task_records(&records, echo);
    assert_eq!(echo_task[0]["event"], "task.start");
    let (start, end) = (&echo_task[0], echo_task.last().unwrap());
    assert_eq!(end["event"], "task.end");
    assert!(
        [start, end].iter().all(|r| r["agent"] == "mcp:mcp"),
        "{echo_task:#?}"
    );
    let session = &start["mcp"]["session"];
    assert!(session.is_string(), "{start:#}");
    assert_eq!(&end["mcp"], &start["mcp"]);
    let write_task = task_records(&records, write);
    let between = &write_task[1..write_task.len() - 1];
    assert!(!between.is_empty(), "{write_task:#?}");
    assert!(
        between.iter().all(|r| r.get("mcp").is_none()
            && r.get("agent").is_none()
            && r["task"] == write_task[0]["task"]),
        "{write_task:#?}"
    );
    assert_ne!(
        write_task[0]["mcp"]["request"], echo_task[0]["mcp"]["request"],
        "each call has its own request id"
    );
    assert_eq!(
        &write_task[0]["mcp"]["session"], session,
        "one connection, one session"
    );
    let deny: Vec<_> = write_task
        .iter()
        .filter(|r| r["decision"] == "deny")
        .collect();
    assert_eq!(deny.len(), 1, "{write_task:#?}");
    assert_eq!(deny[0]["resource"], "/ro/new.txt");
    let end = write_task
        .iter()
        .find(|r| r["event"] == "task.end")
        .unwrap();
    assert_eq!(end["args"]["unrecorded_host_calls"], 0);

    let verify = Command::new(warden_bin())
        .args(["audit", "verify"])
        .arg(&tools.audit)
        .env("WARDEN_KEY", tools.key())
        .env("XDG_STATE_HOME", tools.dir.path())
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
}

#[test]
fn stdio_with_the_2026_protocol() {
    // Both kinds of runtime, whatever the cores of the machine running the test.
    lists_and_calls("auto", "2026-07-28", "2");
}

#[test]
fn stdio_with_the_initialize_handshake() {
    lists_and_calls("legacy", "2025-11-25", "1");
}

#[test]
fn stdio_answers_a_client_that_already_closed_its_end_on_one_pipe_with_stderr() {
    // `printf REQUESTS | warden mcp 2>&1 | ...`: the requests are all written and the
    // writer gone before the server starts, and stdout and stderr are one pipe, which
    // the server reopens to read and write on its own reactor.
    let tools = Tools::new();
    let requests = [
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "printf", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"hello": "pipe"}}}),
    ];
    let (out_read, out_write) = std::io::pipe().unwrap();
    let mut child = Command::new(warden_bin())
        .args(["mcp"])
        .arg(tools.dir.path())
        .arg("--audit")
        .arg(&tools.audit)
        .arg("--key")
        .arg(tools.key())
        .env("XDG_STATE_HOME", tools.dir.path())
        .stdin(Stdio::piped())
        .stdout(out_write.try_clone().unwrap())
        .stderr(out_write)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for request in &requests {
        writeln!(stdin, "{request}").unwrap();
    }
    drop(stdin);
    let lines: Vec<String> = BufReader::new(out_read)
        .lines()
        .map(Result::unwrap)
        .collect();
    assert!(child.wait().unwrap().success(), "{lines:#?}");
    let answers: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("jsonrpc").is_some())
        .collect();
    assert_eq!(answers.len(), 2, "{lines:#?}");
    assert_eq!(answers[0]["id"], 0);
    assert_eq!(answers[1]["id"], 1);
    assert_eq!(answers[1]["result"]["isError"], false, "{lines:#?}");
    let echoed = answers[1]["result"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(echoed).unwrap(),
        json!({"hello": "pipe"})
    );
    assert!(
        tools.records().iter().any(|r| r["event"] == "task.end"),
        "the call was recorded"
    );
}

/// A probe whose read-write directory needs approval for every change.
fn gated() -> (Sandbox, PathBuf) {
    let sb = Sandbox::new("probe", "probe");
    let text = std::fs::read_to_string(&sb.manifest).unwrap();
    let needle = "access = \"read-write\"";
    let text = text.replace(needle, &format!("{needle}\napproval = \"required\""));
    std::fs::write(&sb.manifest, text).unwrap();
    let audit = sb.path("mcp-audit.jsonl");
    (sb, audit)
}

fn gated_server(sb: &Sandbox, audit: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "mcp".to_owned(),
        sb.manifest.display().to_string(),
        "--audit".to_owned(),
        audit.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    json!({ "stdio": { "command": warden_bin(), "args": args, "env": state_env(sb.dir.path()) } })
}

/// The server's state directory (its key, revocation list, compile cache) inside the
/// test's own: the SDK starts it with a minimal environment otherwise.
fn state_env(dir: &Path) -> Value {
    json!({ "XDG_STATE_HOME": dir.join("state").display().to_string() })
}

#[test]
fn approval_gates_ask_the_client_by_elicitation_when_the_operator_says_so() {
    let (sb, audit) = gated();
    let ask_client = ["--approve", "mcp"];
    let write = |name: &str| {
        call(
            "probe",
            json!({ "op": "write", "path": format!("/rw/{name}"), "data": "x" }),
        )
    };
    for (answer, name, written) in [("accept", "yes.txt", true), ("refuse", "no.txt", false)] {
        let out = client(json!({
            "server": gated_server(&sb, &audit, &ask_client),
            "mode": "legacy",
            "elicit": answer,
            "steps": [write(name)],
        }));
        let asked = out["elicitations"].as_array().unwrap();
        assert_eq!(asked.len(), 1, "{out:#}");
        let question = asked[0].as_str().unwrap();
        assert!(question.contains(&format!("/rw/{name}")), "{question}");
        assert!(question.contains("fs[1] /rw read-write"), "{question}");
        let result = &out["steps"][0];
        assert_eq!(
            sb.path(&format!("root/rw/{name}")).exists(),
            written,
            "{result:#}"
        );
        let records = read_records(&audit);
        let task = task_records(&records, result);
        let approval: Vec<_> = task.iter().filter(|r| r["event"] == "approval").collect();
        assert_eq!(approval.len(), 1, "{task:#?}");
        assert_eq!(
            approval[0]["args"]["approver"], "mcp-elicitation",
            "{:#}",
            approval[0]
        );
        if !written {
            assert_eq!(result["structured"]["ok"], false, "{result:#}");
            let text = result["text"].as_str().unwrap();
            assert!(text.contains("warden denied"), "{text}");
            assert!(text.contains("answered no"), "{text}");
        }
    }

    // On the 2026 protocol the server cannot ask mid-request: the call returns an
    // input-required result with the question, and the client's retry carries the answer.
    for (answer, name, written) in [
        ("accept", "modern-yes.txt", true),
        ("refuse", "modern-no.txt", false),
    ] {
        let out = client(json!({
            "server": gated_server(&sb, &audit, &ask_client),
            "mode": "auto",
            "elicit": answer,
            "steps": [write(name)],
        }));
        assert_eq!(out["protocol"], "2026-07-28", "{out:#}");
        assert_eq!(out["elicitations"].as_array().unwrap().len(), 1, "{out:#}");
        assert_eq!(
            sb.path(&format!("root/rw/{name}")).exists(),
            written,
            "{out:#}"
        );
        let records = read_records(&audit);
        let task = task_records(&records, &out["steps"][0]);
        let approval: Vec<_> = task.iter().filter(|r| r["event"] == "approval").collect();
        assert_eq!(approval.len(), 1, "{task:#?}");
        assert_eq!(approval[0]["args"]["approver"], "mcp-elicitation");
    }

    // A retry naming a state the server never gave answers nothing.
    let forged = json!({
        "call": "probe",
        "arguments": { "op": "write", "path": "/rw/forged.txt", "data": "x" },
        "request_state": "00112233445566778899aabbccddeeff",
        "input_responses": { "dev.warden/approval": { "action": "accept", "content": { "approve": true } } },
    });
    let out = client(json!({
        "server": gated_server(&sb, &audit, &ask_client),
        "mode": "auto",
        "elicit": "accept",
        "steps": [forged],
    }));
    let error = out["steps"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("names no call of \"probe\" waiting for an answer"),
        "{out:#}"
    );
    assert!(!sb.path("root/rw/forged.txt").exists());

    // A client that cannot be asked when the operator wants its answer: refused.
    let out = client(json!({
        "server": gated_server(&sb, &audit, &ask_client),
        "mode": "auto",
        "steps": [write("unasked.txt")],
    }));
    assert_eq!(out["elicitations"], json!([]), "{out:#}");
    assert!(!sb.path("root/rw/unasked.txt").exists());
    let text = out["steps"][0]["text"].as_str().unwrap();
    assert!(text.contains("warden denied"), "{text}");
    assert!(text.contains("cannot be asked"), "{text}");
}

/// The attack: the operator's approver says no (`--approve-cmd false`), and a client that
/// declares elicitation answers yes to everything. The client is the party being gated:
/// it is never asked in the operator's place, and asked after the operator only when the
/// operator chose so, with both having to agree.
#[test]
fn an_mcp_client_never_answers_in_place_of_the_operator() {
    let (sb, audit) = gated();
    let write = |name: &str| {
        call(
            "probe",
            json!({ "op": "write", "path": format!("/rw/{name}"), "data": "x" }),
        )
    };
    let approvals = |out: &Value| -> Vec<Value> {
        let records = read_records(&audit);
        task_records(&records, &out["steps"][0])
            .into_iter()
            .filter(|r| r["event"] == "approval")
            .cloned()
            .collect()
    };
    for mode in ["legacy", "auto"] {
        // The operator refuses; the eager client is not even asked.
        let name = format!("{mode}-operator-no.txt");
        let out = client(json!({
            "server": gated_server(&sb, &audit, &["--approve-cmd", "false"]),
            "mode": mode,
            "elicit": "accept",
            "steps": [write(&name)],
        }));
        assert_eq!(out["elicitations"], json!([]), "{out:#}");
        assert!(!sb.path(&format!("root/rw/{name}")).exists(), "{out:#}");
        let approval = approvals(&out);
        assert_eq!(approval.len(), 1, "{approval:#?}");
        assert_eq!(approval[0]["args"]["approver"], "command:false");
        assert_eq!(approval[0]["args"]["answer"], "no", "{:#}", approval[0]);

        // Both asked: the operator says no, so the client's yes changes nothing.
        let name = format!("{mode}-both-operator-no.txt");
        let out = client(json!({
            "server": gated_server(&sb, &audit, &["--approve-cmd", "false", "--approve", "mcp"]),
            "mode": mode,
            "elicit": "accept",
            "steps": [write(&name)],
        }));
        assert_eq!(out["elicitations"], json!([]), "{out:#}");
        assert!(!sb.path(&format!("root/rw/{name}")).exists(), "{out:#}");

        // The operator says yes and the client no: refused, and the record names both.
        let name = format!("{mode}-both-client-no.txt");
        let out = client(json!({
            "server": gated_server(&sb, &audit, &["--approve-cmd", "true", "--approve", "mcp"]),
            "mode": mode,
            "elicit": "refuse",
            "steps": [write(&name)],
        }));
        assert_eq!(out["elicitations"].as_array().unwrap().len(), 1, "{out:#}");
        assert!(!sb.path(&format!("root/rw/{name}")).exists(), "{out:#}");
        let approval = approvals(&out);
        assert_eq!(
            approval[0]["args"]["approver"],
            "command:true+mcp-elicitation"
        );
        assert_eq!(approval[0]["args"]["answer"], "no", "{:#}", approval[0]);

        // Both say yes: written, and the record says who answered.
        let name = format!("{mode}-both-yes.txt");
        let out = client(json!({
            "server": gated_server(&sb, &audit, &["--approve-cmd", "true", "--approve", "mcp"]),
            "mode": mode,
            "elicit": "accept",
            "steps": [write(&name)],
        }));
        assert!(sb.path(&format!("root/rw/{name}")).exists(), "{out:#}");
        let approval = approvals(&out);
        assert_eq!(
            approval[0]["args"]["approver"],
            "command:true+mcp-elicitation"
        );
        assert_eq!(approval[0]["args"]["answer"], "yes", "{:#}", approval[0]);
    }
}

/// The attack: a client sends `risk: 0` in `_meta` to pass a policy that allows writes of
/// low risk. What the client claims reaches policies as `input.client`, never as the
/// operator's `input.context`, so the write is refused whatever it claims.
/// A call of `fs-tools.write-file` to `/rw/out.txt` whose `_meta` is `meta`.
fn write(meta: Value) -> Value {
    json!({
        "call": "fs-tools.write-file",
        "arguments": { "path": "/rw/out.txt", "contents": "x" },
        "meta": meta,
    })
}

#[test]
fn a_clients_claims_are_not_policy_context() {
    let tools = Tools::new();
    let policy = root().join("guest-examples/policies/no-writes-unless-low-risk.rego");
    let policy = policy.display().to_string();
    let out = client(json!({
        "server": tools.stdio(&["--policy", &policy]),
        "steps": [
            write(json!({})),
            write(json!({ "dev.warden/context": { "risk": 0 } })),
        ],
    }));
    for step in out["steps"].as_array().unwrap() {
        assert_eq!(step["is_error"], true, "{out:#}");
        let text = step["text"].as_str().unwrap();
        assert!(
            text.contains("writes need context.risk below 0.3; no context.risk was given"),
            "{text}"
        );
    }
    assert!(!tools.fs.path("root/rw/out.txt").exists());
}

/// A policy can still read what the client claims, as `input.client`: here to refuse.
#[test]
fn a_policy_reads_client_claims_as_input_client() {
    let tools = Tools::new();
    let policy = tools.dir.path().join("client-claims.rego");
    std::fs::write(
        &policy,
        "package warden\n\
         deny contains \"the client calls this risky\" if input.client.risk >= 0.3\n",
    )
    .unwrap();
    let policy = policy.display().to_string();
    let out = client(json!({
        "server": tools.stdio(&["--policy", &policy]),
        "steps": [
            write(json!({ "dev.warden/context": { "risk": 0.9 } })),
            write(json!({ "dev.warden/context": { "risk": 0.1 } })),
        ],
    }));
    let steps = &out["steps"];
    assert_eq!(steps[0]["is_error"], true, "{out:#}");
    let text = steps[0]["text"].as_str().unwrap();
    assert!(text.contains("the client calls this risky"), "{text}");
    assert_eq!(steps[1]["is_error"], false, "{out:#}");
    assert_eq!(
        std::fs::read_to_string(tools.fs.path("root/rw/out.txt")).unwrap(),
        "x"
    );
}

/// `warden mcp --http` as a child process, killed on drop.
struct HttpServer {
    child: std::process::Child,
    url: String,
}

impl HttpServer {
    fn start(tools: &Tools, token_file: &Path) -> HttpServer {
        HttpServer::start_with(tools, token_file, &[])
    }

    fn start_with(tools: &Tools, token_file: &Path, extra: &[&str]) -> HttpServer {
        let mut child = Command::new(warden_bin())
            .arg("mcp")
            .arg(tools.dir.path())
            .arg("--audit")
            .arg(&tools.audit)
            .env("XDG_STATE_HOME", tools.dir.path().join("state"))
            .args(["--http", "127.0.0.1:0", "--token-file"])
            .arg(token_file)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("warden mcp says where it serves")
                .unwrap();
            if let Some(url) = line.strip_prefix("warden mcp: serving ") {
                break url.to_owned();
            }
        };
        HttpServer { child, url }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh bearer token in a file only its owner may read.
fn token_file(tools: &Tools) -> (String, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let token = "t".repeat(8) + &crate::openbao::random_hex(16);
    let file = tools.dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    (token, file)
}

/// One raw HTTP/1.1 exchange: `head` (request line and headers, without the blank line)
/// and `body`; returns the status code, or `None` when the server closed without one.
fn raw_post(url: &str, head: &[String], body: &str) -> Option<u16> {
    use std::io::Read;
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut req = format!("POST /mcp HTTP/1.1\r\nHost: {addr}\r\n");
    for line in head {
        req.push_str(line);
        req.push_str("\r\n");
    }
    req.push_str(&format!(
        "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    conn.write_all(req.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;

/// DNS rebinding: a page on another origin that reaches the loopback server (through a
/// name that resolves to 127.0.0.1, with the token leaked or guessed) is refused by its
/// `Origin`, as the MCP specification requires; the server's own origin and one the
/// operator allowed pass, and so does a client that sends none.
#[test]
fn streamable_http_refuses_other_origins() {
    let tools = Tools::new();
    let (token, file) = token_file(&tools);
    let server = HttpServer::start_with(
        &tools,
        &file,
        &["--allow-origin", "https://app.example.com"],
    );
    let port = server
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/mcp")
        .to_owned();
    let auth = format!("Authorization: Bearer {token}");
    let with_origin = |origin: Option<&str>| {
        let mut head = vec![auth.clone()];
        if let Some(origin) = origin {
            head.push(format!("Origin: {origin}"));
        }
        raw_post(&server.url, &head, INITIALIZE)
    };
    assert_eq!(with_origin(Some("http://evil.example")), Some(403));
    assert_eq!(
        with_origin(Some(&format!("http://evil.example:{port}"))),
        Some(403)
    );
    // Another port on loopback is another origin: a page served there is refused too.
    assert_eq!(with_origin(Some("http://127.0.0.1:1")), Some(403));
    assert_eq!(with_origin(Some("null")), Some(403));
    assert_eq!(
        with_origin(Some(&format!("http://127.0.0.1:{port}"))),
        Some(200)
    );
    assert_eq!(
        with_origin(Some(&format!("http://localhost:{port}"))),
        Some(200)
    );
    assert_eq!(with_origin(Some("https://app.example.com")), Some(200));
    assert_eq!(with_origin(None), Some(200));
}

/// A client that opens connections and never finishes its headers cannot hold the
/// server: the connection cap answers one too many with 503, and a stalled connection is
/// closed after --header-timeout, which frees its slot.
#[test]
fn streamable_http_caps_connections_and_slow_headers() {
    use std::io::Read;
    let tools = Tools::new();
    let (token, file) = token_file(&tools);
    let server = HttpServer::start_with(
        &tools,
        &file,
        &["--max-connections", "2", "--header-timeout", "1s"],
    );
    let addr = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let stall = || {
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        conn.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        conn
    };
    let (mut first, mut second) = (stall(), stall());
    // Let the server take both before the third arrives.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    third
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    let _ = third.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("too many connections"), "{answer:?}");

    // The stalled ones are closed by the server (a 408 or a bare close), not by us.
    for conn in [&mut first, &mut second] {
        let mut rest = Vec::new();
        let read = conn.read_to_end(&mut rest);
        assert!(
            read.is_ok(),
            "the server kept a stalled connection open: {read:?}"
        );
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
            "{rest:?}"
        );
    }
    // Their slots are free again: a real request is served.
    let auth = format!("Authorization: Bearer {token}");
    assert_eq!(raw_post(&server.url, &[auth], INITIALIZE), Some(200));
}

#[test]
fn a_token_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tools = Tools::new();
    let (_, file) = token_file(&tools);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(warden_bin())
        .arg("mcp")
        .arg(tools.dir.path())
        .arg("--audit")
        .arg(&tools.audit)
        .env("XDG_STATE_HOME", tools.dir.path().join("state"))
        .args(["--http", "127.0.0.1:0", "--token-file"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("others can read it (mode 644)"), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
}

#[test]
fn streamable_http_needs_the_bearer_token() {
    let tools = Tools::new();
    let (token, token_file) = token_file(&tools);
    let server = HttpServer::start(&tools, &token_file);

    let out = client(json!({
        "server": { "http": { "url": server.url, "token": token } },
        "steps": [{ "list": true }, call("echo", json!({ "over": "http" }))],
    }));
    assert_eq!(
        out["steps"][1]["structured"],
        json!({ "over": "http" }),
        "{out:#}"
    );
    let records = tools.records();
    let task = task_records(&records, &out["steps"][1]);
    assert!(task[0]["mcp"]["request"].is_string(), "{:#}", task[0]);

    // Without the token, or with another, nothing is served.
    let plain = |auth: Option<&str>| {
        let mut req = Command::new("python3");
        req.args([
            "-c",
            r#"
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], data=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
    headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
if len(sys.argv) > 2:
    req.add_header("Authorization", sys.argv[2])
try:
    print(urllib.request.urlopen(req).status)
except urllib.error.HTTPError as e:
    print(e.code)
"#,
            &server.url,
        ]);
        if let Some(auth) = auth {
            req.arg(auth);
        }
        let out = req.output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(plain(None), "401");
    assert_eq!(plain(Some("Bearer wrong")), "401");
    assert_eq!(plain(Some(&format!("Bearer {token}x"))), "401");
    assert_eq!(plain(Some(&token)), "401", "the scheme is part of it");
}

#[test]
fn http_is_for_loopback_only_and_needs_a_strong_token() {
    let tools = Tools::new();
    let token_file = tools.dir.path().join("token");
    std::fs::write(&token_file, "short").unwrap();
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let run = |addr: &str| {
        Command::new(warden_bin())
            .arg("mcp")
            .arg(tools.dir.path())
            .arg("--audit")
            .arg(&tools.audit)
            .args(["--http", addr, "--token-file"])
            .arg(&token_file)
            .output()
            .unwrap()
    };
    let out = run("0.0.0.0:0");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only a loopback address"));
    let out = run("127.0.0.1:0");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 characters"));
}

#[test]
fn interface_functions_are_tools_with_their_types() {
    let records = Sandbox::new("records", "records");
    let audit = records.path("mcp-audit.jsonl");
    let server = json!({
        "stdio": {
            "command": warden_bin(),
            "args": ["mcp", records.manifest.display().to_string(), "--audit", audit.display().to_string()],
            "env": state_env(records.dir.path()),
        }
    });
    let out = client(json!({
        "server": server,
        "steps": [
            { "list": true },
            call("records.local_records_people_0.1.0_make-user",
                 json!({ "name": "Ada", "age": 36, "tags": ["math"], "email": null })),
            call("records.people.next-color", json!({ "c": "blue" })),
            call("records.people.echo-bytes", json!({ "data": "AAEC/w==" })),
            call("records.people.checked-div", json!({ "a": 1, "b": 0 })),
            call("records.local_records_people_0.1.0_make-user",
                 json!({ "name": "Ada", "age": 300, "tags": [], "email": null })),
        ],
    }));
    let steps = &out["steps"];
    let names: Vec<&str> = steps[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // Two interfaces export make-user, so each goes by its full name, made a valid MCP name.
    assert!(
        names.contains(&"records.local_records_people_0.1.0_make-user"),
        "{names:?}"
    );
    assert!(
        names.contains(&"records.local_legacy_people_0.1.0_make-user"),
        "{names:?}"
    );
    assert!(names.contains(&"records.people.area"), "{names:?}");
    assert_eq!(
        steps[1]["structured"],
        json!({ "result": { "name": "Ada", "age": 36, "tags": ["math"], "email": null } }),
        "{out:#}"
    );
    assert_eq!(
        steps[2]["structured"],
        json!({ "result": "red" }),
        "{out:#}"
    );
    // echo-bytes hands the bytes back reversed: [0, 1, 2, 255] -> [255, 2, 1, 0].
    assert_eq!(
        steps[3]["structured"],
        json!({ "result": "/wIBAA==" }),
        "{out:#}"
    );
    // A function's `err` is the call's error, with the error's JSON as its text.
    assert_eq!(steps[4]["is_error"], true, "{out:#}");
    assert!(
        steps[4]["text"].as_str().unwrap().contains("failed: "),
        "{out:#}"
    );
    // Out of range for u8: the message names the argument and the type.
    assert_eq!(steps[5]["is_error"], true, "{out:#}");
    assert!(
        steps[5]["text"]
            .as_str()
            .unwrap()
            .contains("argument age: expected u8 (0..=255), found 300"),
        "{out:#}"
    );
}

#[test]
fn a_fifo_read_in_one_call_stops_no_other_call() {
    // One call reads a FIFO nobody writes to while another is made at once. Opening it
    // used to wait for a writer on the server's only thread: neither call was answered,
    // nor any after them.
    for special in [false, true] {
        let tools = Tools::new();
        let fifo = tools.fs.path("root/ro/pipe");
        crate::support::mkfifo(&fifo);
        if special {
            let text = std::fs::read_to_string(&tools.fs.manifest).unwrap();
            let text = text.replace(
                "guest = \"/ro\"\naccess = \"read\"",
                "guest = \"/ro\"\naccess = \"read\"\nspecial = true",
            );
            assert!(text.contains("special = true"));
            tools.fs.write_manifest(&text, "fs_tools");
        }
        let plan = json!({
            "server": tools.stdio(&[]),
            "steps": [{ "together": [
                call("fs-tools.read-file", json!({ "path": "/ro/pipe" })),
                call("echo", json!({ "hello": "world" })),
            ]}],
        });
        let limit = std::time::Duration::from_secs(60);
        let Some(out) = client_within(plan, limit) else {
            // Lets a server stuck in the open go on, see its stdin closed, and exit.
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::File::options()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo);
            panic!("special = {special}: no answer within {limit:?}: the server hangs");
        };
        let answers = out["steps"][0]["together"].as_array().unwrap();
        let (fifo_read, echo) = (&answers[0], &answers[1]);
        assert_eq!(echo["is_error"], false, "special = {special}: {out:#}");
        assert_eq!(echo["structured"], json!({ "hello": "world" }));
        assert_eq!(fifo_read["is_error"], true, "special = {special}: {out:#}");
        for answer in answers {
            assert!(answer["seconds"].as_f64().unwrap() < 20.0, "{out:#}");
        }
        let records = tools.records();
        let task = task_records(&records, fifo_read);
        let open = task
            .iter()
            .find(|r| r["call"] == "wasi:filesystem/types.[method]descriptor.open-at")
            .unwrap_or_else(|| panic!("the open is recorded: {task:#?}"));
        assert_eq!(open["resource"], "/ro/pipe");
        if special {
            // Opened without waiting; reading a FIFO at an offset fails.
            assert_eq!(open["decision"], "allow", "{open:#}");
        } else {
            assert_eq!(open["decision"], "deny", "{open:#}");
            assert!(
                open["rule"].as_str().unwrap().contains("is a FIFO"),
                "{open:#}"
            );
        }
    }
}

/// A hostile client calls a tool whose secret cannot be fetched from Vault, to learn what
/// Vault says: the fields the secret has, its path. It learns which secret failed and
/// how; what Vault said is in the audit log only.
#[test]
fn vault_details_reach_the_audit_log_not_the_client() {
    let bao = crate::openbao::bao();
    let path = crate::openbao::unique_path("mcp-details");
    let value = format!("wdn-{}", crate::openbao::random_hex(16));
    bao.put(
        &path,
        json!({ "api_key": value, "owner": "team-payments-owner" }),
    );
    // A function component: `warden mcp` starts without running it, so the fetch fails in
    // the client's call, not at startup.
    let sb = Sandbox::new("fs-tools", "fs_tools");
    let text = std::fs::read_to_string(&sb.manifest).unwrap();
    std::fs::write(
        &sb.manifest,
        format!(
            "{text}\n[[secrets]]\nname = \"payments\"\nsource = \"vault:secret/{path}#apikey\"\npurpose = \"sign\"\nhmac = true\n"
        ),
    )
    .unwrap();
    let audit = sb.path("mcp-audit.jsonl");
    let mut server = gated_server(&sb, &audit, &[]);
    let env = &mut server["stdio"]["env"];
    env["VAULT_ADDR"] = bao.addr.clone().into();
    env["VAULT_TOKEN"] = bao.token.clone().into();
    let out = client(json!({
        "server": server,
        "steps": [ call("fs-tools.write-file", json!({ "path": "/rw/out.txt", "contents": "x" })) ],
    }));
    let step = &out["steps"][0];
    assert_eq!(step["is_error"], true, "{out:#}");
    let said = step["text"].as_str().unwrap();
    assert!(
        said.contains(
            "could not start: secret \"payments\" could not be fetched (vault-missing-field)"
        ),
        "{said}"
    );
    for detail in ["api_key", "owner", &path, &bao.addr, "VAULT_TOKEN", &value] {
        assert!(
            !said.contains(detail),
            "the client was told {detail:?}: {said}"
        );
    }
    assert!(!sb.path("root/rw/out.txt").exists(), "the tool never ran");
    let records = read_records(&audit);
    let fetch = records
        .iter()
        .find(|r| r["event"] == "secret.fetch")
        .expect("a secret.fetch record");
    let why = fetch["args"]["error"].as_str().unwrap();
    assert!(
        why.contains("has no field \"apikey\"; its fields are \"api_key\", \"owner\""),
        "{fetch}"
    );
}
