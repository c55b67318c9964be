//! `[[fs]]` grants: what the probe may read and write, and every way out of a
//! grant it tries. Each refusal is checked twice: the guest saw an error, and
//! the audit log holds a `deny` record naming the path and the rule.

use crate::support::Sandbox;
use serde_json::json;

fn probe() -> Sandbox {
    Sandbox::new("probe", "probe")
}

#[test]
fn granted_read_works_and_is_recorded() {
    let sb = probe();
    let run = sb.run(r#"{"op":"read","path":"/ro/hello.txt"}"#);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.json(), json!({"ok": true, "data": "hello from /ro\n"}));
    run.assert_recorded();
    let open = run
        .records
        .iter()
        .find(|r| r["call"] == "wasi:filesystem/types.[method]descriptor.open-at")
        .expect("open-at is recorded");
    assert_eq!(open["decision"], "allow");
    assert_eq!(open["resource"], "/ro/hello.txt");
    assert_eq!(open["rule"], "fs[0] /ro read");
    // The bytes read are summed on the stream, never recorded themselves.
    let summary = run
        .records
        .iter()
        .find(|r| r["event"] == "call.summary" && r["resource"] == "read /ro/hello.txt")
        .expect("a stream summary for the file");
    assert_eq!(summary["args"]["bytes"], 15);
    assert!(
        !serde_json::to_string(&run.records)
            .unwrap()
            .contains("hello from")
    );
}

#[test]
fn file_search_finds_text_under_its_grant() {
    let sb = Sandbox::new("file-search", "file_search");
    let run = sb.run(r#"{"query":"needle"}"#);
    assert_eq!(run.code, 0, "{run:#?}");
    let result = run.json();
    assert!(result["files_scanned"].as_u64().unwrap() >= 1, "{result}");
    assert_eq!(result["files_scanned"], 3, "{result}");
    assert_eq!(result["matches"].as_array().unwrap().len(), 4, "{result}");
    run.assert_recorded();
    assert!(run.records.iter().any(|r| r["event"] == "log"));
}

#[test]
fn dotdot_out_of_every_grant_is_denied() {
    let sb = probe();
    let run = sb.run(r#"{"op":"read","path":"/ro/../../etc/passwd"}"#);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("open-at");
    assert_eq!(d["resource"], "/etc/passwd");
    assert!(
        d["rule"]
            .as_str()
            .unwrap()
            .contains("no fs grant covers /etc/passwd"),
        "{d}"
    );
    run.assert_recorded();
}

#[test]
fn dotdot_into_another_grant_is_denied() {
    // /ro/../rw/.keep exists and /rw is granted, but not through /ro's
    // descriptor: a path is checked against the grant it starts from.
    let sb = probe();
    let run = sb.run(r#"{"op":"raw_open","preopen":"/ro","path":"../rw/.keep"}"#);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("open-at");
    assert_eq!(d["resource"], "/rw/.keep");
    assert!(
        d["rule"].as_str().unwrap().contains("leaves fs[0] /ro"),
        "{d}"
    );
}

#[test]
fn absolute_path_sent_to_the_host_is_denied() {
    let sb = probe();
    let run = sb.run(r#"{"op":"raw_open","preopen":"/ro","path":"/etc/passwd"}"#);
    assert_eq!(run.json()["kind"], "not-permitted", "{run:#?}");
    let d = run.denial("open-at");
    assert_eq!(d["resource"], "/etc/passwd");
    assert!(
        d["rule"]
            .as_str()
            .unwrap()
            .contains("no fs grant covers /etc/passwd"),
        "{d}"
    );
}

#[test]
fn absolute_path_outside_every_preopen_never_reaches_the_host() {
    // wasi-libc finds no preopen for /etc/passwd and fails in the guest;
    // the task's records show no open at all.
    let sb = probe();
    let run = sb.run(r#"{"op":"read","path":"/etc/passwd"}"#);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    assert!(
        !run.records
            .iter()
            .any(|r| r["resource"] == "/etc/passwd" && r["decision"] == "allow"),
        "{run:#?}"
    );
    run.assert_recorded();
}

#[test]
fn symlink_out_of_a_grant_is_refused() {
    let sb = probe();
    let secret = sb.path("secret.txt");
    std::fs::write(&secret, "outside").unwrap();
    std::os::unix::fs::symlink(&secret, sb.path("root/ro/abs-link")).unwrap();
    std::os::unix::fs::symlink("../../secret.txt", sb.path("root/ro/rel-link")).unwrap();
    for link in ["abs-link", "rel-link"] {
        let run = sb.run(&format!(r#"{{"op":"read","path":"/ro/{link}"}}"#));
        let seen = run.json();
        assert_eq!(seen["ok"], false, "{link}: {run:#?}");
        assert!(!run.stdout.contains("outside"), "{link}: {run:#?}");
        let d = run.denial("open-at");
        assert_eq!(d["resource"], format!("/ro/{link}"));
        assert!(d["rule"].as_str().unwrap().contains("symlink"), "{d}");
    }
}

#[test]
fn hard_link_to_a_file_outside_is_refused() {
    let sb = probe();
    let secret = sb.path("secret.txt");
    std::fs::write(&secret, "outside").unwrap();
    std::fs::hard_link(&secret, sb.path("root/ro/hard")).unwrap();
    let run = sb.run(r#"{"op":"read","path":"/ro/hard"}"#);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    assert!(!run.stdout.contains("outside"));
    let d = run.denial("open-at");
    assert!(d["rule"].as_str().unwrap().contains("2 hard links"), "{d}");
    run.assert_recorded();
}

#[test]
fn guest_cannot_plant_a_symlink_out_of_its_grant() {
    let sb = probe();
    for target in ["/etc/passwd", "../../secret.txt", "../ro/hello.txt"] {
        let run = sb.run(&format!(
            r#"{{"op":"symlink","target":"{target}","link":"/rw/planted"}}"#
        ));
        assert_eq!(run.json()["kind"], "not-permitted", "{target}: {run:#?}");
        let d = run.denial("symlink-at");
        assert!(
            d["rule"].as_str().unwrap().contains("leaves fs[1] /rw"),
            "{d}"
        );
        assert!(!sb.path("root/rw/planted").exists());
    }
    // A link inside the grant is fine.
    let run = sb.run(r#"{"op":"symlink","target":"data.txt","link":"/rw/inside"}"#);
    assert_eq!(run.json()["ok"], true, "{run:#?}");
}

#[test]
fn read_only_grant_refuses_every_change() {
    let sb = probe();
    let attempts = [
        (
            r#"{"op":"write","path":"/ro/new.txt","data":"x"}"#,
            "open-at",
        ),
        (
            r#"{"op":"write","path":"/ro/hello.txt","data":"x"}"#,
            "open-at",
        ),
        (
            r#"{"op":"create_dir","path":"/ro/d"}"#,
            "create-directory-at",
        ),
        (
            r#"{"op":"remove","path":"/ro/hello.txt"}"#,
            "unlink-file-at",
        ),
        (
            r#"{"op":"rename","from":"/ro/hello.txt","to":"/ro/moved.txt"}"#,
            "rename-at",
        ),
        (
            r#"{"op":"rename","from":"/ro/hello.txt","to":"/rw/moved.txt"}"#,
            "rename-at",
        ),
        (
            r#"{"op":"hard_link","src":"/ro/hello.txt","dst":"/rw/alias.txt"}"#,
            "link-at",
        ),
        (r#"{"op":"set_times","path":"/ro/hello.txt"}"#, "set-times"),
        (
            r#"{"op":"set_times","path":"/ro/hello.txt","write":true}"#,
            "open-at",
        ),
    ];
    for (input, call) in attempts {
        let run = sb.run(input);
        assert_eq!(run.json()["ok"], false, "{input}: {run:#?}");
        let d = run.denial(call);
        let rule = d["rule"].as_str().unwrap();
        assert!(
            rule.contains("fs[0] /ro read is read-only"),
            "{input}: {rule}"
        );
        run.assert_recorded();
    }
    assert_eq!(
        std::fs::read_to_string(sb.path("root/ro/hello.txt")).unwrap(),
        "hello from /ro\n"
    );
    assert!(!sb.path("root/rw/moved.txt").exists());
    assert!(!sb.path("root/rw/alias.txt").exists());
}

#[test]
fn read_write_grant_allows_changes() {
    let sb = probe();
    for input in [
        r#"{"op":"write","path":"/rw/data.txt","data":"zq-unique-contents"}"#,
        r#"{"op":"create_dir","path":"/rw/d"}"#,
        r#"{"op":"rename","from":"/rw/data.txt","to":"/rw/d/moved.txt"}"#,
        r#"{"op":"set_times","path":"/rw/d/moved.txt","write":true}"#,
    ] {
        let run = sb.run(input);
        assert_eq!(run.json()["ok"], true, "{input}: {run:#?}");
        assert!(run.denials().is_empty(), "{input}: {run:#?}");
        run.assert_recorded();
        let log = serde_json::to_string(&run.records).unwrap();
        assert!(
            !log.contains("zq-unique-contents"),
            "contents leaked into the log"
        );
    }
    assert_eq!(
        std::fs::read_to_string(sb.path("root/rw/d/moved.txt")).unwrap(),
        "zq-unique-contents"
    );
}

#[test]
fn full_audit_level_records_every_stream_call() {
    let sb = probe();
    let text = std::fs::read_to_string(&sb.manifest).unwrap();
    sb.write_manifest(&format!("{text}\n[audit]\nlevel = \"full\"\n"), "probe");
    let run = sb.run(r#"{"op":"read","path":"/ro/hello.txt"}"#);
    assert_eq!(run.json()["ok"], true, "{run:#?}");
    assert!(
        !run.records.iter().any(|r| r["event"] == "call.summary"),
        "{run:#?}"
    );
    let reads: Vec<_> = run
        .records
        .iter()
        .filter(|r| r["call"] == "wasi:io/streams.[method]input-stream.blocking-read")
        .collect();
    assert!(reads.len() >= 2, "each read is its own record: {run:#?}");
    assert!(reads.iter().all(|r| r["resource"] == "read /ro/hello.txt"));
    run.assert_recorded();
}

#[test]
fn changes_are_recorded_before_they_are_made() {
    let sb = probe();
    let run = sb.run(r#"{"op":"create_dir","path":"/rw/new"}"#);
    assert_eq!(run.json()["ok"], true, "{run:#?}");
    let call = "wasi:filesystem/types.[method]descriptor.create-directory-at";
    let pos = |event: &str| {
        run.records
            .iter()
            .position(|r| r["event"] == event && r["call"] == call)
            .unwrap_or_else(|| panic!("no {event} record: {run:#?}"))
    };
    let (intent, done) = (pos("call.intent"), pos("call"));
    assert!(intent < done, "the intent comes first");
    assert_eq!(run.records[intent]["resource"], "/rw/new");
    assert_eq!(run.records[intent]["rule"], "fs[1] /rw read-write");
    assert!(run.records[intent].get("outcome").is_none());
    assert_eq!(run.records[done]["outcome"], "ok");
    // Reads have no intent.
    let run = sb.run(r#"{"op":"read","path":"/ro/hello.txt"}"#);
    assert!(
        !run.records.iter().any(|r| r["event"] == "call.intent"),
        "{run:#?}"
    );
}

/// A file outside every grant, and a hard link to it inside `/rw`.
fn outside_file_linked_into_rw(sb: &Sandbox) -> std::path::PathBuf {
    let outside = sb.path("outside.txt");
    std::fs::write(&outside, "outside contents").unwrap();
    std::fs::hard_link(&outside, sb.path("root/rw/hard")).unwrap();
    outside
}

#[test]
fn a_truncating_open_of_a_hard_link_is_refused_before_it_truncates() {
    // `fs::write` opens with create and truncate: the refusal must come before
    // the open, or the outside file is empty by the time Warden says no.
    let sb = probe();
    let outside = outside_file_linked_into_rw(&sb);
    let run = sb.run(r#"{"op":"write","path":"/rw/hard","data":"x"}"#);
    let seen = run.json();
    assert_eq!(seen["ok"], false, "{run:#?}");
    assert_eq!(seen["kind"], "PermissionDenied", "{run:#?}");
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "outside contents"
    );
    let d = run.denial("open-at");
    assert_eq!(d["resource"], "/rw/hard");
    assert_eq!(
        d["rule"],
        "/rw/hard has 2 hard links and may alias a file outside every fs grant"
    );
    // Refused before it was about to happen: no intent was recorded.
    assert!(run.events("call.intent").is_empty(), "{run:#?}");
    run.assert_recorded();
}

#[test]
fn set_times_stat_and_link_of_a_hard_link_are_refused_before_they_act() {
    let sb = probe();
    let outside = outside_file_linked_into_rw(&sb);
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(&outside)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let attempts = [
        (r#"{"op":"set_times_at","path":"/rw/hard"}"#, "set-times-at"),
        (
            r#"{"op":"set_times_at","path":"/rw/hard","follow":false}"#,
            "set-times-at",
        ),
        // wasi-libc's stat asks for the inode (metadata-hash-at) first.
        (r#"{"op":"metadata","path":"/rw/hard"}"#, "metadata-hash-at"),
        (
            r#"{"op":"hard_link","src":"/rw/hard","dst":"/rw/again"}"#,
            "link-at",
        ),
    ];
    for (input, call) in attempts {
        let run = sb.run(input);
        assert_eq!(run.json()["ok"], false, "{input}: {run:#?}");
        let d = run.denial(call);
        assert!(
            d["rule"].as_str().unwrap().contains("2 hard links"),
            "{input}: {d}"
        );
        assert_eq!(d["outcome"], "error:not-permitted", "{input}: {d}");
        run.assert_recorded();
    }
    let meta = std::fs::metadata(&outside).unwrap();
    assert_eq!(
        meta.modified().unwrap(),
        old,
        "the outside file's time is kept"
    );
    assert_eq!(
        std::os::unix::fs::MetadataExt::nlink(&meta),
        2,
        "no third name"
    );
    assert!(!sb.path("root/rw/again").exists());
    // A file with one link is as before.
    let run = sb.run(r#"{"op":"set_times_at","path":"/rw/.keep"}"#);
    assert_eq!(run.json()["ok"], true, "{run:#?}");
}

/// The probe, with a FIFO nobody writes to at `/ro/pipe`.
fn probe_with_fifo() -> Sandbox {
    let sb = probe();
    crate::support::mkfifo(&sb.path("root/ro/pipe"));
    sb
}

/// Long enough never to flake, far short of forever.
const HANG: std::time::Duration = std::time::Duration::from_secs(20);

#[test]
fn a_fifo_is_refused_without_special_and_nothing_waits_for_it() {
    // Opening a FIFO for reading waits for a writer; on the task's thread that
    // froze the process past every timeout.
    let sb = probe_with_fifo();
    let socket = std::os::unix::net::UnixListener::bind(sb.path("root/ro/sock")).unwrap();
    for (name, kind) in [("pipe", "a FIFO"), ("sock", "a socket")] {
        let run = sb.run_within(&format!(r#"{{"op":"read","path":"/ro/{name}"}}"#), HANG);
        assert_eq!(run.code, 0, "{name}: {run:#?}");
        assert_eq!(run.json()["kind"], "PermissionDenied", "{name}: {run:#?}");
        let d = run.denial("open-at");
        assert_eq!(d["resource"], format!("/ro/{name}"));
        assert_eq!(
            d["rule"],
            format!(
                "/ro/{name} is {kind}; non-regular files are refused unless the grant sets special = true"
            )
        );
        run.assert_recorded();
    }
    // Its metadata is refused the same way (wasi-libc asks for the inode first).
    let run = sb.run_within(r#"{"op":"metadata","path":"/ro/pipe"}"#, HANG);
    assert!(
        run.denial("metadata-hash-at")["rule"]
            .as_str()
            .unwrap()
            .contains("is a FIFO"),
        "{run:#?}"
    );
    drop(socket);
}

#[test]
fn a_special_grant_opens_a_fifo_without_waiting_and_the_task_ends_in_time() {
    let sb = probe_with_fifo();
    let text = std::fs::read_to_string(&sb.manifest).unwrap();
    let text = text
        .replace("timeout = \"2s\"", "timeout = \"1s\"")
        .replace(
            "guest = \"/ro\"\naccess = \"read\"",
            "guest = \"/ro\"\naccess = \"read\"\nspecial = true",
        );
    assert!(text.contains("special = true"));
    sb.write_manifest(&text, "probe");
    let read = r#"{"op":"read","path":"/ro/pipe"}"#;
    // Nobody writes, then a writer that holds it open and never writes: the
    // open returns at once either way, and reading a FIFO fails (wasmtime-wasi
    // reads files at an offset), so the task ends well within its timeout.
    let started = std::time::Instant::now();
    let run = sb.run_within(read, HANG);
    let writer = std::fs::File::options()
        .read(true)
        .write(true)
        .open(sb.path("root/ro/pipe"))
        .unwrap();
    let again = sb.run_within(read, HANG);
    drop(writer);
    for run in [&run, &again] {
        assert_eq!(run.code, 0, "{run:#?}");
        assert_eq!(run.json()["ok"], false, "{run:#?}");
        let open = run
            .records
            .iter()
            .find(|r| r["call"] == "wasi:filesystem/types.[method]descriptor.open-at")
            .expect("the open is recorded");
        assert_eq!(open["decision"], "allow", "{run:#?}");
        assert_eq!(open["outcome"], "ok", "{run:#?}");
        // The read failed at once rather than waiting.
        const READ: &str = "wasi:io/streams.[method]input-stream.blocking-read";
        let read = run
            .records
            .iter()
            .find(|r| r["event"] == "call.summary" && r["args"]["calls"][READ] == 1)
            .expect("the read is recorded");
        assert_eq!(read["args"]["failed"][READ], 1, "{run:#?}");
        assert_eq!(run.end()["outcome"], "ok", "{run:#?}");
        run.assert_recorded();
    }
    assert!(started.elapsed() < HANG, "{:?}", started.elapsed());
    // The grant says so where a person looks: `warden check` and the task's start.
    let check = crate::support::warden(&["check", sb.manifest.to_str().unwrap()], &[], None);
    let listed = String::from_utf8_lossy(&check.stdout);
    assert!(
        listed.contains("(read, FIFOs, sockets and devices may be opened)"),
        "{listed}"
    );
    assert_eq!(
        run.records[0]["args"]["fs"],
        serde_json::json!(["/ro read special", "/rw read-write"])
    );
}

#[test]
fn stat_at_answers_what_it_vetted_and_refuses_what_it_must() {
    use std::os::unix::fs::MetadataExt;
    let sb = probe();
    std::fs::create_dir(sb.path("root/rw/dir")).unwrap();
    std::os::unix::fs::symlink("../ro/hello.txt", sb.path("root/rw/link")).unwrap();
    let stat = |preopen: &str, path: &str, follow: bool| {
        sb.run(
            &json!({"op": "raw_stat", "preopen": preopen, "path": path, "follow": follow})
                .to_string(),
        )
    };

    // Every field is the host's own, and the record is as it always was.
    let run = stat("/ro", "hello.txt", true);
    let meta = std::fs::metadata(sb.path("root/ro/hello.txt")).unwrap();
    let when = |t: std::io::Result<std::time::SystemTime>| {
        t.ok().map_or(serde_json::Value::Null, |t| {
            let d = t.duration_since(std::time::UNIX_EPOCH).unwrap();
            json!([d.as_secs(), d.subsec_nanos()])
        })
    };
    assert_eq!(
        run.json(),
        json!({
            "ok": true,
            "type": "DescriptorType::RegularFile",
            "link_count": meta.nlink(),
            "size": meta.len(),
            "accessed": when(meta.accessed()),
            "modified": when(meta.modified()),
            "changed": when(meta.created()),
        }),
        "{run:#?}"
    );
    let call = run
        .records
        .iter()
        .find(|r| r["call"] == "wasi:filesystem/types.[method]descriptor.stat-at")
        .expect("stat-at is recorded");
    assert_eq!(call["decision"], "allow");
    assert_eq!(call["resource"], "/ro/hello.txt");
    assert_eq!(call["rule"], "fs[0] /ro read");
    assert_eq!(
        call["args"],
        json!({"path": "hello.txt", "flags": "(SYMLINK_FOLLOW)"})
    );
    run.assert_recorded();

    let dir = stat("/rw", "dir", true).json();
    assert_eq!(dir["type"], "DescriptorType::Directory", "{dir}");
    let link = stat("/rw", "link", false).json();
    assert_eq!(link["type"], "DescriptorType::SymbolicLink", "{link}");
    assert_eq!(link["size"], "../ro/hello.txt".len(), "{link}");
    let missing = stat("/rw", "missing", true);
    assert_eq!(missing.json(), json!({"ok": false, "kind": "no-entry"}));
    missing.assert_recorded();

    // Followed, the link leaves /rw's descriptor, and the capability refuses it.
    let out = stat("/rw", "link", true);
    assert_eq!(out.json(), json!({"ok": false, "kind": "not-permitted"}));
    assert_eq!(out.denial("stat-at")["resource"], "/rw/link");
    // Through /ro's descriptor, /rw is outside the grant the path starts from.
    let across = stat("/ro", "../rw/dir", true);
    assert_eq!(across.json()["ok"], false, "{across:#?}");
    assert_eq!(across.denial("stat-at")["resource"], "/rw/dir");
    // A hard link to a file outside every grant is refused, not described.
    outside_file_linked_into_rw(&sb);
    let hard = stat("/rw", "hard", true);
    assert_eq!(hard.json(), json!({"ok": false, "kind": "not-permitted"}));
    assert!(
        hard.denial("stat-at")["rule"]
            .as_str()
            .unwrap()
            .contains("2 hard links")
    );
}
