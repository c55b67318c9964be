//! A hostile tool against the audit log's size: guest-chosen text is capped in every
//! record, a task that makes calls without end runs out of records, not the disk, and
//! tasks that record faster than the log is written wait for it, losing nothing.

use crate::support::Sandbox;

/// The probe with `extra` appended to its manifest.
fn probe(extra: &str) -> Sandbox {
    let sb = Sandbox::new("probe", "probe");
    let text = std::fs::read_to_string(&sb.manifest).unwrap();
    std::fs::write(&sb.manifest, format!("{text}\n{extra}")).unwrap();
    sb
}

#[test]
fn a_huge_guest_path_is_recorded_as_a_prefix_its_length_and_hash() {
    let sb = probe("");
    // Under the 128 KiB a single command-line argument may have.
    let path = format!("/rw/{}", "a".repeat(100_000));
    let input = serde_json::json!({ "op": "read", "path": path }).to_string();
    let run = sb.run(&input);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let hash = blake3::hash(path.as_bytes()).to_hex().to_string();
    let line_len = std::fs::read_to_string(&sb.audit)
        .unwrap()
        .lines()
        .map(str::len)
        .max()
        .unwrap();
    assert!(line_len < 8 * 1024, "a record of {line_len} bytes");
    let mentions: Vec<_> = run
        .records
        .iter()
        .filter(|r| r.to_string().contains(&hash))
        .collect();
    assert!(
        !mentions.is_empty(),
        "no record names the path's hash: {run:#?}"
    );
    for r in mentions {
        let resource = r["resource"].as_str().unwrap_or_default();
        assert!(
            resource.starts_with("/rw/aaaa") && resource.contains("100004 bytes"),
            "{r:#}"
        );
    }
    run.assert_recorded();
    let verify =
        crate::support::warden(&["audit", "verify", sb.audit.to_str().unwrap()], &[], None);
    assert_eq!(verify.status.code(), Some(0), "{verify:?}");
}

#[test]
fn a_task_that_floods_the_log_ends_at_its_record_budget() {
    let sb = probe("[audit]\nmax-records = 40\n");
    let run = sb.run(r#"{"op":"stat_loop","path":"/ro/hello.txt","n":100000}"#);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("budget of 40 audit records"),
        "{}",
        run.stderr
    );
    // 40 records, the one that says the budget is spent, and the end.
    assert_eq!(run.records.len(), 42, "{run:#?}");
    assert_eq!(run.events("audit.budget").len(), 1, "{run:#?}");
    assert!(
        run.end()["outcome"].as_str().unwrap().starts_with("trap"),
        "{:#}",
        run.end()
    );

    // Another tool on the same log carries on.
    let next = sb.run(r#"{"op":"read","path":"/ro/hello.txt"}"#);
    assert_eq!(next.json()["ok"], true, "{next:#?}");
}

// One thread: a task that waits for room in the queue holds the only thread that runs
// tasks, and the writer, a thread of its own, must still drain it.
#[tokio::test(flavor = "current_thread")]
async fn tools_that_flood_a_full_queue_wait_for_the_writer_and_lose_nothing() {
    use std::sync::Arc;
    use warden::audit::checkpoint::HostKey;
    use warden::audit::log::{AuditLog, Fsync, LogOptions};
    use warden::manifest::Manifest;
    use warden::{EngineConfig, Runtime, TaskRequest};

    let sb = probe("");
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let tool = Arc::new(runtime.load(Manifest::load(&sb.manifest).unwrap()).unwrap());
    let key = HostKey::generate("flood/warden-audit").unwrap();
    let verifier = key.verifier().clone();
    // Room for about one record: every call that records waits for the writer.
    let options = LogOptions {
        fsync: Fsync::None,
        queue_bytes: 256,
        ..LogOptions::default()
    };
    let log = Arc::new(AuditLog::open(&sb.audit, key, options).unwrap());
    const CALLS: u64 = 2_000;
    let input = format!(r#"{{"op":"stat_loop","path":"/ro/hello.txt","n":{CALLS}}}"#);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (tool, req) = (tool.clone(), TaskRequest::new(&input, log.clone()));
            tokio::spawn(async move { tool.run(req).await })
        })
        .collect();
    let all = async {
        for task in tasks {
            task.await.unwrap().expect("a flooding task completes");
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), all)
        .await
        .expect("four flooding tasks finish within 120 s");
    log.checkpoint().unwrap();
    drop(log);

    // Every host call each task made has its record: each task's end counts them.
    let records = crate::support::read_records(&sb.audit);
    let ends: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "task.end")
        .collect();
    assert_eq!(ends.len(), 4);
    for end in ends {
        let calls = records
            .iter()
            .filter(|r| r["task"] == end["task"] && r["event"] == "call")
            .count() as u64;
        assert_eq!(end["args"]["host_calls"], calls, "{end:#}");
        // Each metadata call is two host calls.
        assert!(calls >= 2 * CALLS, "{calls} calls recorded");
    }
    let report = warden::audit::verify::verify(&sb.audit, &verifier).expect("the log verifies");
    let last = &report.last_checkpoint().expect("a checkpoint").checkpoint;
    assert_eq!(last.size, records.len() as u64);
}
