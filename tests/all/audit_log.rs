//! The log writer under stress: killed mid-write, and many tasks at once.

use crate::support::read_records;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use warden::audit::checkpoint::HostKey;
use warden::audit::log::{AuditLog, Fsync, LogError, LogOptions, checkpoints_path};
use warden::audit::verify::verify;
use warden_host_api::audit::{Event, EventSink, Record, TaskMeta};

fn meta(task: &str) -> TaskMeta {
    TaskMeta {
        host: "test".into(),
        agent: None,
        task: task.into(),
        parent: None,
        tool: "stress".into(),
        component: "blake3:00".into(),
        mcp: None,
    }
}

fn emit(log: &AuditLog, meta: &TaskMeta, n: u64) {
    let ev = Event::call("wasi:test/stress.call")
        .args(serde_json::json!({ "n": n, "pad": "x".repeat(200) }));
    log.emit(&Record {
        meta,
        time: SystemTime::now(),
        event: &ev,
    })
    .unwrap();
}

const CHILD: &str = "WARDEN_TEST_WRITER_LOG";

/// Not a test on its own: the child process of `sigkill_mid_write_recovers`,
/// which writes records until it is killed.
#[test]
fn writer_child() {
    let Some(path) = std::env::var_os(CHILD) else {
        return;
    };
    let key = HostKey::load_or_create(
        &std::path::PathBuf::from(&path).with_extension("key"),
        "stress/warden-audit",
    )
    .unwrap();
    let options = LogOptions {
        fsync: Fsync::Batch,
        checkpoint_every: 50,
        checkpoint_interval: Duration::from_millis(5),
    };
    let log = AuditLog::open(path.as_ref(), key, options).unwrap();
    let m = meta("child");
    for n in 0.. {
        emit(&log, &m, n);
    }
}

#[test]
fn sigkill_mid_write_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "audit_log::writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cps = checkpoints_path(&path);
    let started = Instant::now();
    let signatures = |text: String| text.matches("\n\u{2014} ").count();
    while signatures(std::fs::read_to_string(&cps).unwrap_or_default()) < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the writer never checkpointed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let load_key = || HostKey::load_or_create(&path.with_extension("key"), "unused").unwrap();
    let verifier = load_key().verifier().clone();
    let found = verify(&path, &verifier).expect("a killed writer's log verifies");
    let last = found.last_checkpoint().unwrap().checkpoint.clone();
    let before = std::fs::read(&path).unwrap();
    // Records written after the last checkpoint are not taken on silently:
    // the operator adopts them, and a recovery record says which.
    let log = match AuditLog::open(&path, load_key(), LogOptions::default()) {
        Ok(log) => {
            assert_eq!(
                found.uncovered, 0,
                "uncovered records were taken on silently"
            );
            log
        }
        Err(LogError::Uncovered { from, last, .. }) => {
            assert_eq!((from, last), (found.covered, found.records - 1));
            assert_eq!(std::fs::read(&path).unwrap(), before, "refused as found");
            let (log, adopted) = AuditLog::adopt(&path, load_key(), LogOptions::default())
                .expect("the operator adopts them");
            let adopted = adopted.expect("something to adopt");
            assert_eq!((adopted.from_seq, adopted.to_seq), (from, last));
            log
        }
        Err(e) => panic!("a killed writer's log reopens: {e}"),
    };
    log.checkpoint().unwrap();
    drop(log);

    let records = read_records(&path);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], i as u64, "sequence numbers are contiguous");
    }
    assert!(
        records.len() as u64 >= last.size,
        "every checkpointed record survived: {} records, checkpoint of {}",
        records.len(),
        last.size,
    );
    let torn = !before.ends_with(b"\n");
    let recovered = records.iter().any(|r| r["event"] == "recovery");
    assert_eq!(
        torn || found.uncovered > 0,
        recovered,
        "a torn tail is cut and uncovered records adopted, each said, and only then"
    );
    let report = verify(&path, &verifier).expect("the recovered log verifies");
    assert_eq!(report.covered, records.len() as u64, "and is all signed");
    assert_eq!(report.adopted.len(), usize::from(found.uncovered > 0));
    // Reopening again finds nothing to recover.
    drop(AuditLog::open(&path, load_key(), LogOptions::default()).unwrap());
    assert_eq!(read_records(&path).len(), records.len());
}

#[test]
fn many_concurrent_tasks_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let key = HostKey::generate("concurrent/warden-audit").unwrap();
    let log = Arc::new(
        AuditLog::open(
            &path,
            key,
            LogOptions {
                fsync: Fsync::Batch,
                ..LogOptions::default()
            },
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let m = meta(&format!("task-{t}"));
                for n in 0..250 {
                    emit(&log, &m, n);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(log);
    let records = read_records(&path);
    assert_eq!(records.len(), 2000);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], i as u64);
    }
    for t in 0..8 {
        let mine: Vec<u64> = records
            .iter()
            .filter(|r| r["task"] == format!("task-{t}"))
            .map(|r| r["args"]["n"].as_u64().unwrap())
            .collect();
        assert_eq!(
            mine,
            (0..250).collect::<Vec<_>>(),
            "task-{t} in order, none lost"
        );
    }
}
