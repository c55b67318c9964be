//! The `warden` CLI contract: run, check, inspect, exit codes, and where the
//! audit log goes.

use crate::support::{Sandbox, example, read_records, root, warden, wasm};
use serde_json::json;

#[test]
fn echo_runs_end_to_end() {
    let sb = Sandbox::new("echo", "echo");
    let run = sb.run(r#"{"hello":["world",1]}"#);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.json(), json!({"hello": ["world", 1]}));
    run.assert_recorded();
    // The load is recorded before the task: where the component came from, its digest.
    assert_eq!(run.loads.len(), 1, "{run:#?}");
    assert_eq!(run.loads[0]["decision"], "allow");
    assert_eq!(run.loads[0]["component"], run.records[0]["component"]);
    let start = &run.records[0];
    assert_eq!(start["tool"], "echo");
    assert!(start["component"].as_str().unwrap().starts_with("blake3:"));
    assert_eq!(start["v"], 1);
    assert_eq!(run.records.last().unwrap()["outcome"], "ok");
}

#[test]
fn input_file_and_agent_are_used() {
    let sb = Sandbox::new("echo", "echo");
    let input = sb.path("input.json");
    std::fs::write(&input, r#"{"from":"file"}"#).unwrap();
    let out = warden(
        &[
            "run",
            sb.manifest.to_str().unwrap(),
            "--input-file",
            input.to_str().unwrap(),
            "--agent",
            "agent-7",
            "--audit",
            sb.audit.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"from":"file"}"#
    );
    let records = sb.records();
    assert_eq!(records[0]["event"], "tool.load");
    let (start, end) = (&records[1], records.last().unwrap());
    assert_eq!(
        (&start["event"], &end["event"]),
        (&"task.start".into(), &"task.end".into())
    );
    assert_eq!(
        (&start["agent"], &end["agent"]),
        (&"agent-7".into(), &"agent-7".into())
    );
}

#[test]
fn command_component_gets_stdin_and_args() {
    let sb = Sandbox::new("wc", "wc");
    let m = sb.manifest.to_str().unwrap();
    let a = sb.audit.to_str().unwrap();
    let out = warden(&["run", m, "--audit", a], &[], Some(b"one two\nthree\n"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2 3 14");
    let out = warden(
        &["run", m, "--audit", a, "--", "-w"],
        &[],
        Some(b"one two\n"),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
    let out = warden(&["run", m, "--audit", a, "--", "--bogus"], &[], Some(b""));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--bogus"), "{stderr}");
    assert!(stderr.contains("exited with status"), "{stderr}");
}

#[test]
fn tool_error_exits_one_and_says_why() {
    let sb = Sandbox::new("probe", "probe");
    let run = sb.run(r#"{"op":"nope"}"#);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("invalid-input"), "{}", run.stderr);
    assert!(run.stderr.contains("unknown operation"), "{}", run.stderr);
    assert_eq!(run.end()["outcome"], "error:invalid-input");
}

#[test]
fn malformed_manifest_exits_two_with_file_line_field() {
    let sb = Sandbox::new("echo", "echo");
    std::fs::write(
        &sb.manifest,
        "[tool]\nname = \"x\"\ncomponent = \"x.wasm\"\n\n[limits]\nmemory = \"lots\"\n",
    )
    .unwrap();
    let out = warden(
        &["run", sb.manifest.to_str().unwrap(), "--input", "{}"],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("manifest.toml:6: limits.memory:"),
        "{stderr}"
    );
}

#[test]
fn digest_mismatch_is_refused() {
    let sb = Sandbox::new("echo", "echo");
    let text = std::fs::read_to_string(&sb.manifest).unwrap();
    let pinned = text.replacen(
        "[tool]\n",
        &format!("[tool]\ndigest = \"blake3:{}\"\n", "0".repeat(64)),
        1,
    );
    std::fs::write(&sb.manifest, pinned).unwrap();
    let run = sb.run("{}");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("tool.digest"), "{}", run.stderr);
    assert!(run.records.is_empty(), "a refused component runs no task");

    // The right pin loads.
    let digest = blake3::hash(&std::fs::read(wasm("echo")).unwrap()).to_hex();
    let pinned = text.replacen(
        "[tool]\n",
        &format!("[tool]\ndigest = \"blake3:{digest}\"\n"),
        1,
    );
    std::fs::write(&sb.manifest, pinned).unwrap();
    assert_eq!(sb.run("{}").code, 0);
}

#[test]
fn components_of_other_kinds_are_rejected_with_their_exports() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("empty.wasm", "(component)", "exports nothing"),
        // Functions in a wasi: interface a component re-exports are not tools.
        (
            "wasi-only.wasm",
            r#"(component
                (core module $m (func (export "f")))
                (core instance $i (instantiate $m))
                (func $f (canon lift (core func $i "f")))
                (instance $r (export "get-random-u64" (func $f)))
                (export "wasi:random/random@0.2.0" (instance $r)))"#,
            "exports wasi:random/random@0.2.0",
        ),
    ];
    for (file, wat, says) in cases {
        let wasm = dir.path().join(file);
        std::fs::write(&wasm, wat::parse_str(wat).unwrap()).unwrap();
        let manifest = dir.path().join("manifest.toml");
        std::fs::write(
            &manifest,
            format!(
                "[tool]\nname = \"x\"\ncomponent = {:?}\n",
                wasm.display().to_string()
            ),
        )
        .unwrap();
        let out = warden(&["run", manifest.to_str().unwrap()], &[], None);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("neither a warden:tool/tool"), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    // A plain exported function, though, is a tool of its own (see functions.rs).
    let hello = dir.path().join("hello.wasm");
    let wat = r#"(component
        (core module $m (func (export "f")))
        (core instance $i (instantiate $m))
        (func $f (canon lift (core func $i "f")))
        (export "hello" (func $f)))"#;
    std::fs::write(&hello, wat::parse_str(wat).unwrap()).unwrap();
    let manifest = dir.path().join("manifest.toml");
    let text = format!(
        "[tool]\nname = \"x\"\ncomponent = {:?}\n",
        hello.display().to_string()
    );
    std::fs::write(&manifest, text).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let (m, a) = (manifest.to_str().unwrap(), audit.to_str().unwrap());
    let out = warden(&["run", m, "--audit", a, "--call", "hello"], &[], None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "null\n");

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let out = warden(&["inspect", junk.to_str().unwrap()], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid component"));
}

#[test]
fn check_prints_the_effective_grants() {
    let out = warden(&["check", example("probe").to_str().unwrap()], &[], None);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "/ro",
        "/rw",
        "read-write",
        "GRANTED",
        "WARDEN_PROBE_PASS",
        "kind: tool",
        "everything else is denied",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn inspect_shows_kind_imports_and_what_no_grant_allows() {
    let probe = wasm("probe");
    let manifest = example("probe");
    let out = warden(
        &[
            "inspect",
            probe.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kind: tool"), "{text}");
    assert!(text.contains("invoke"), "{text}");
    assert!(text.contains("wasi:filesystem/types"), "{text}");
    assert!(
        text.contains("wasi:sockets/tcp-create-socket@0.2"),
        "{text}"
    );
    assert!(text.contains("no grant allows sockets"), "{text}");

    let out = warden(&["inspect", wasm("wc").to_str().unwrap()], &[], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: command"));
}

#[test]
fn audit_log_defaults_to_the_xdg_state_dir() {
    let state = tempfile::tempdir().unwrap();
    let out = warden(
        &["run", example("echo").to_str().unwrap(), "--input", "{}"],
        &[("XDG_STATE_HOME", state.path().to_str().unwrap())],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let records = read_records(&state.path().join("warden/audit/audit.jsonl"));
    let events: Vec<_> = records
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["tool.load", "task.start", "task.end"]);
    // WARDEN_AUDIT names it too.
    let log = state.path().join("named.jsonl");
    let out = warden(
        &["run", example("echo").to_str().unwrap(), "--input", "{}"],
        &[("WARDEN_AUDIT", log.to_str().unwrap())],
        None,
    );
    assert!(out.status.success());
    assert_eq!(read_records(&log).len(), 3);
    assert!(root().join("guest-examples/echo/manifest.toml").exists());
}

#[test]
fn bad_json_input_is_a_usage_error() {
    let out = warden(
        &[
            "run",
            example("echo").to_str().unwrap(),
            "--input",
            "{not json",
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--input is not valid JSON"));
}

#[test]
fn mcp_refuses_zero_threads() {
    let out = warden(
        &["mcp", example("echo").to_str().unwrap(), "--threads", "0"],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--threads"), "{stderr}");
}

#[test]
fn compiled_cache_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("warden/compiled");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = warden(
        &["run", example("echo").to_str().unwrap(), "--input", "{}"],
        &[("XDG_CACHE_HOME", cache.path().to_str().unwrap())],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("writable by others"), "{stderr}");

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = warden(
        &["run", example("echo").to_str().unwrap(), "--input", "{}"],
        &[("XDG_CACHE_HOME", cache.path().to_str().unwrap())],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_some(),
        "the compiled component is cached"
    );
}

#[test]
fn a_log_that_cannot_be_written_stops_the_task() {
    // RLIMIT_FSIZE makes the log's writes fail part way through the task,
    // as a full disk would: the task must stop, not run on unrecorded.
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new("probe", "probe");
    let state = sb.path("state");
    let env_state = state.to_str().unwrap().to_string();
    let key = warden(&["audit", "key"], &[("XDG_STATE_HOME", &env_state)], None);
    assert!(key.status.success());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.env_clear()
        .env("XDG_STATE_HOME", &state)
        .args([
            "run",
            sb.manifest.to_str().unwrap(),
            "--audit",
            sb.audit.to_str().unwrap(),
        ])
        .args(["--input", r#"{"op":"list","path":"/ro"}"#]);
    #[expect(
        unsafe_code,
        reason = "setrlimit and signal between fork and exec, both async-signal-safe"
    )]
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1500,
                rlim_max: 1500,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("audit log"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("entries"),
        "no result without a record"
    );
}

#[test]
fn an_audit_log_must_be_a_regular_file() {
    let out = warden(
        &[
            "run",
            example("echo").to_str().unwrap(),
            "--audit",
            "/dev/null",
            "--input",
            "{}",
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be a regular file"));
}

#[test]
fn audit_key_is_created_private_and_stable() {
    use std::os::unix::fs::PermissionsExt;
    let state = tempfile::tempdir().unwrap();
    let env = [("XDG_STATE_HOME", state.path().to_str().unwrap())];
    let first = warden(&["audit", "key"], &env, None);
    assert!(first.status.success(), "{first:?}");
    let key = state.path().join("warden/keys/host.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let verifier = String::from_utf8_lossy(&first.stdout).trim().to_string();
    assert!(verifier.contains("/warden-audit+"), "{verifier}");
    assert!(
        !verifier.contains("PRIVATE"),
        "only the public half is printed"
    );
    let again = warden(&["audit", "key"], &env, None);
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), verifier);

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loose = warden(&["audit", "key"], &env, None);
    assert_eq!(loose.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&loose.stderr).contains("readable by others"));
}

#[test]
fn a_policy_is_compiled_at_load_and_shown_by_check() {
    let sb = Sandbox::new("echo", "echo");
    let text = std::fs::read_to_string(&sb.manifest).unwrap();
    let manifest = format!("{text}\n\n[policy]\nfile = \"policy.rego\"\n");
    std::fs::write(&sb.manifest, &manifest).unwrap();
    let policy_line = manifest.lines().count();
    let check = || {
        let out = warden(&["check", sb.manifest.to_str().unwrap()], &[], None);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };

    // A broken policy is an invalid manifest: exit 2, naming both files and lines.
    let rego = sb.path("policy.rego");
    std::fs::write(
        &rego,
        "package warden\n\ndeny contains msg if {\n  input.context.risk > limit\n  msg := \"risky\"\n}\n",
    )
    .unwrap();
    let (code, _, stderr) = check();
    assert_eq!(code, Some(2), "{stderr}");
    let want = format!(
        "manifest.toml:{policy_line}: policy.file: {}:4:24: use of undefined variable `limit` is unsafe",
        rego.display()
    );
    assert!(stderr.contains(&want), "want {want:?} in:\n{stderr}");
    assert!(
        !stderr.contains('^'),
        "the compiler's picture is not shown:\n{stderr}"
    );
    assert_eq!(sb.run("{}").code, 2, "run refuses it as well");

    // The example, as committed, loads; check says what it is and how it decides.
    std::fs::copy(
        root().join("guest-examples/policies/no-writes-unless-low-risk.rego"),
        &rego,
    )
    .unwrap();
    let (code, stdout, stderr) = check();
    assert_eq!(code, Some(0), "{stderr}");
    for want in [
        format!("policy: {} (compiled)", rego.display()),
        "deny rules; calls they do not deny are left to the grants".to_owned(),
        "verdicts it marks cacheable are reused per grant, call and resource".to_owned(),
    ] {
        assert!(stdout.contains(&want), "missing {want:?} in:\n{stdout}");
    }
    assert_eq!(sb.run("{\"x\":1}").code, 0);
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Issue 11, item 3: the keys that sign the log and issue grants live in a
/// directory of their own, not in the log's, where whoever may write the log
/// could delete them and have Warden make new ones.
#[test]
fn keys_live_apart_from_the_audit_log() {
    let state = tempfile::tempdir().unwrap();
    let env = [("XDG_STATE_HOME", state.path().to_str().unwrap())];
    let out = warden(
        &["run", example("echo").to_str().unwrap(), "--input", "{}"],
        &env,
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let out = warden(&["grant", "key"], &env, None);
    assert!(out.status.success(), "{out:?}");
    let warden_dir = state.path().join("warden");
    let keys = warden_dir.join("keys");
    assert_eq!(mode(&keys), 0o700);
    for name in ["host.key", "grant.key", "cache.key"] {
        assert_eq!(mode(&keys.join(name)), 0o600, "{name}");
    }
    // The log's directory holds the log and its checkpoints, and nothing else.
    let mut beside_log: Vec<String> = std::fs::read_dir(warden_dir.join("audit"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside_log.sort();
    assert_eq!(beside_log, ["audit.jsonl", "audit.jsonl.checkpoints"]);

    // A keys directory others may look into is refused, naming the fix.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = warden(
        &["run", example("echo").to_str().unwrap(), "--input", "{}"],
        &env,
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("readable by others (mode 755): chmod 700"),
        "{stderr}"
    );
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();

    // What an older Warden kept beside the default log moves into place, and
    // the log carries on under the same key.
    let verifier = String::from_utf8_lossy(&warden(&["audit", "key"], &env, None).stdout)
        .trim()
        .to_owned();
    for (from, to) in [
        ("keys/host.key", "host.key"),
        ("keys/grant.key", "grant.key"),
        ("audit/audit.jsonl", "audit.jsonl"),
        ("audit/audit.jsonl.checkpoints", "audit.jsonl.checkpoints"),
    ] {
        std::fs::rename(warden_dir.join(from), warden_dir.join(to)).unwrap();
    }
    let out = warden(
        &["run", example("echo").to_str().unwrap(), "--input", "{}"],
        &env,
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warden: moved "), "{stderr}");
    assert!(!warden_dir.join("host.key").exists());
    assert!(!warden_dir.join("audit.jsonl").exists());
    let log = warden_dir.join("audit/audit.jsonl");
    // A tool.load, a task.start and a task.end from each run.
    assert_eq!(read_records(&log).len(), 6, "the old log carried on");
    let out = warden(
        &["audit", "verify", log.to_str().unwrap(), "--key", &verifier],
        &env,
        None,
    );
    assert!(out.status.success(), "{out:?}");
}

/// The built guest's bytes, and the one cached artifact a run left in `cache` that is not
/// in `known`.
fn new_artifact(cache: &std::path::Path, known: &[std::path::PathBuf]) -> std::path::PathBuf {
    let fresh: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm") && !known.contains(p))
        .collect();
    assert_eq!(fresh.len(), 1, "one new artifact: {fresh:?}");
    fresh[0].clone()
}

/// Issue 11, item 6: a compiled component in the cache is native code that runs as it is.
/// One replaced by another component's artifact (a valid artifact, for this very engine) is
/// recompiled, never run; so is one whose bytes were changed.
#[test]
fn a_replaced_compiled_artifact_is_recompiled_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("XDG_CACHE_HOME", dir.path().join("cache")),
        ("XDG_STATE_HOME", dir.path().join("state")),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.to_str().unwrap())).collect();
    let cache = dir.path().join("cache/warden/compiled");
    let echo = |input: &str| {
        warden(
            &["run", example("echo").to_str().unwrap(), "--input", input],
            &env,
            None,
        )
    };
    let out = echo(r#"{"first":1}"#);
    assert!(out.status.success(), "{out:?}");
    let echo_entry = new_artifact(&cache, &[]);
    let cached = std::fs::read(&echo_entry).unwrap();
    let out = warden(
        &["run", example("wc").to_str().unwrap()],
        &env,
        Some(b"a b c\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let wc_entry = new_artifact(&cache, std::slice::from_ref(&echo_entry));
    let wc_artifact = std::fs::read(&wc_entry).unwrap();

    // Unchanged, the entry is used as it is: not compiled and written again.
    use std::os::unix::fs::MetadataExt;
    let inode = |p: &std::path::Path| std::fs::metadata(p).unwrap().ino();
    let before = inode(&echo_entry);
    let out = echo(r#"{"again":2}"#);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&echo_entry).unwrap(), cached);
    assert_eq!(inode(&echo_entry), before, "loaded, not rewritten");

    // wc's artifact in echo's place: echo still runs as echo.
    std::fs::copy(&wc_entry, &echo_entry).unwrap();
    let out = echo(r#"{"swapped":3}"#);
    assert!(out.status.success(), "{out:?}");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("echo's result, not another component's ({e}): {out:?}"));
    assert_eq!(result, json!({"swapped": 3}));
    assert_ne!(
        std::fs::read(&echo_entry).unwrap(),
        wc_artifact,
        "the swapped file was replaced by a fresh compilation"
    );

    // A byte changed in the machine code: recompiled too.
    let mut bytes = std::fs::read(&echo_entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&echo_entry, &bytes).unwrap();
    let out = echo(r#"{"flipped":4}"#);
    assert!(out.status.success(), "{out:?}");
    assert_ne!(std::fs::read(&echo_entry).unwrap(), bytes);
}
