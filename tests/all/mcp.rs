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
fn warden_bin() -> &'static str {
    env!("CARGO_BIN_EXE_warden")
}

/// Runs tests/mcp/client.py with `plan` and returns what it printed.
fn client(plan: Value) -> Value {
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

fn call(name: &str, arguments: Value) -> Value {
    json!({ "call": name, "arguments": arguments })
}

/// The records of the task a result names.
fn task_records<'a>(records: &'a [Value], result: &Value) -> Vec<&'a Value> {
    let task = &result["meta"]["dev.warden/task"];
    assert!(task.is_string(), "the result names its task: {result}");
    records.iter().filter(|r| &r["task"] == task).collect()
}

fn lists_and_calls(mode: &str, protocol: &str) {
    let tools = Tools::new();
    let out = client(json!({
        "server": tools.stdio(&[]),
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

    // The log: each call is a task whose every record carries the MCP ids.
    let records = tools.records();
    let echo_task = task_records(&records, echo);
    assert_eq!(echo_task[0]["event"], "task.start");
    assert!(
        echo_task.iter().all(|r| r["agent"] == "mcp:mcp"),
        "{echo_task:#?}"
    );
    let session = &echo_task[0]["mcp"]["session"];
    assert!(session.is_string(), "{:#}", echo_task[0]);
    assert!(echo_task.iter().all(|r| &r["mcp"]["session"] == session));
    let write_task = task_records(&records, write);
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
    lists_and_calls("auto", "2026-07-28");
}

#[test]
fn stdio_with_the_initialize_handshake() {
    lists_and_calls("legacy", "2025-11-25");
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
fn approval_gates_ask_the_client_by_elicitation() {
    let (sb, audit) = gated();
    let write = |name: &str| {
        call(
            "probe",
            json!({ "op": "write", "path": format!("/rw/{name}"), "data": "x" }),
        )
    };
    for (answer, name, written) in [("accept", "yes.txt", true), ("refuse", "no.txt", false)] {
        let out = client(json!({
            "server": gated_server(&sb, &audit, &[]),
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
            "server": gated_server(&sb, &audit, &[]),
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
        "server": gated_server(&sb, &audit, &[]),
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

    // A client that cannot be asked gets the server's own approver: by default, refusal.
    let out = client(json!({
        "server": gated_server(&sb, &audit, &[]),
        "mode": "auto",
        "steps": [write("unasked.txt")],
    }));
    assert_eq!(out["elicitations"], json!([]), "{out:#}");
    assert!(!sb.path("root/rw/unasked.txt").exists());
    let text = out["steps"][0]["text"].as_str().unwrap();
    assert!(text.contains("warden denied"), "{text}");
}

#[test]
fn policy_context_comes_from_the_request_meta() {
    let tools = Tools::new();
    let policy = root().join("guest-examples/policies/no-writes-unless-low-risk.rego");
    let policy = policy.display().to_string();
    let write = |meta: Value| {
        json!({
            "call": "fs-tools.write-file",
            "arguments": { "path": "/rw/out.txt", "contents": "x" },
            "meta": meta,
        })
    };
    let out = client(json!({
        "server": tools.stdio(&["--policy", &policy]),
        "steps": [
            write(json!({})),
            write(json!({ "dev.warden/context": { "risk": 0.1 } })),
        ],
    }));
    let steps = &out["steps"];
    assert_eq!(steps[0]["is_error"], true, "{out:#}");
    let text = steps[0]["text"].as_str().unwrap();
    assert!(
        text.contains("writes need context.risk below 0.3; no context.risk was given"),
        "{text}"
    );
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
        let mut child = Command::new(warden_bin())
            .arg("mcp")
            .arg(tools.dir.path())
            .arg("--audit")
            .arg(&tools.audit)
            .env("XDG_STATE_HOME", tools.dir.path().join("state"))
            .args(["--http", "127.0.0.1:0", "--token-file"])
            .arg(token_file)
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

#[test]
fn streamable_http_needs_the_bearer_token() {
    let tools = Tools::new();
    let token = "t".repeat(8) + &crate::openbao::random_hex(16);
    let token_file = tools.dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
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
