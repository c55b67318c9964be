//! When a task's result is returned, against what the audit log has done with its records:
//! synced first with fsync `always`, signed within the checkpoint delay, signed at once
//! for a caller who asks, and syncs and signatures shared by tasks that end together.

use crate::support::read_records;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden::audit::checkpoint::HostKey;
use warden::audit::log::{AuditLog, Fsync, LogOptions};
use warden::audit::verify::verify;
use warden::manifest::Manifest;
use warden::{EngineConfig, Outcome, Runtime, TaskOutput, TaskRequest, Tool};
use warden_host_api::audit::EventSink;

const INPUT: &str = r#"{"hello":"receipts"}"#;

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    verifier: warden::audit::checkpoint::VerifierKey,
    log: Arc<AuditLog>,
    tool: Arc<Tool>,
}

/// The echo tool and a log written with `fsync`, signing a finished task's records
/// `delay` after it ends and otherwise not for ten minutes.
fn setup(fsync: Fsync, delay: Duration) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let key = HostKey::generate("receipts/warden-audit").unwrap();
    let verifier = key.verifier().clone();
    let options = LogOptions {
        fsync,
        checkpoint_delay: delay,
        checkpoint_interval: Duration::from_secs(600),
        ..LogOptions::default()
    };
    let log = Arc::new(AuditLog::open(&path, key, options).unwrap());
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let manifest = crate::guests::root().join("guest-examples/echo/manifest.toml");
    let tool = Arc::new(runtime.load(Manifest::load(&manifest).unwrap()).unwrap());
    Setup {
        _dir: dir,
        path,
        verifier,
        log,
        tool,
    }
}

impl Setup {
    async fn run(&self, wait_covered: bool) -> TaskOutput {
        let sink: Arc<dyn EventSink> = self.log.clone();
        let out = self
            .tool
            .run(TaskRequest::new(INPUT, sink).wait_covered(wait_covered))
            .await
            .unwrap();
        assert_eq!(out.outcome, Outcome::Result(INPUT.into()));
        out
    }

    /// How many records the newest checkpoint signs.
    fn signed(&self) -> u64 {
        self.log.latest_checkpoint().map_or(0, |(size, _)| size)
    }

    /// Waits, asking for nothing, until a checkpoint signs record `seq`; fails after 20 s.
    async fn wait_signed(&self, seq: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.signed() <= seq {
            assert!(
                Instant::now() < deadline,
                "seq {seq} not signed after 20 s; the newest checkpoint signs {}",
                self.signed()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The seq of the task's `task.end`, which its receipt names.
fn end_seq(out: &TaskOutput) -> u64 {
    out.receipt
        .seq()
        .expect("the audit log numbers a task's end")
}

#[tokio::test]
async fn a_finished_task_is_signed_within_the_checkpoint_delay_without_more_records() {
    let s = setup(Fsync::Batch, Duration::from_millis(50));
    let out = s.run(false).await;
    let end = end_seq(&out);
    // Nothing else is written: the writer signs on its own when the delay is up.
    s.wait_signed(end).await;
    let report = verify(&s.path, &s.verifier).unwrap();
    assert_eq!((report.records, report.uncovered), (end + 1, 0));
}

#[tokio::test]
async fn asking_for_the_proof_signs_at_once() {
    // A delay no test waits out: what gets signed here is signed because it was asked.
    let s = setup(Fsync::Batch, Duration::from_secs(3600));
    let out = s.run(false).await;
    let end = end_seq(&out);
    assert!(
        s.signed() <= end,
        "nothing asked for a checkpoint yet, but one signs {} records",
        s.signed()
    );
    tokio::time::timeout(Duration::from_secs(20), out.receipt.covered())
        .await
        .expect("covered() waited for the hour's delay")
        .unwrap();
    assert!(s.signed() > end, "covered() returned before a checkpoint");

    // The request's flag: the result comes back signed.
    let out = tokio::time::timeout(Duration::from_secs(20), s.run(true))
        .await
        .expect("wait_covered waited for the hour's delay");
    let end = end_seq(&out);
    assert!(
        s.signed() > end,
        "a wait_covered result came back before its checkpoint: task.end seq {end}, signed {}",
        s.signed()
    );
    let report = verify(&s.path, &s.verifier).unwrap();
    assert_eq!((report.records, report.uncovered), (end + 1, 0));
}

#[tokio::test]
async fn with_fsync_always_a_result_waits_for_its_records_to_be_synced() {
    let s = setup(Fsync::Always, Duration::from_secs(3600));
    let out = s.run(false).await;
    assert!(
        s.log.stats().syncs >= 1,
        "a result came back with nothing synced: {:?}",
        s.log.stats()
    );
    let ends: Vec<_> = read_records(&s.path)
        .into_iter()
        .filter(|r| r["event"] == "task.end" && r["task"] == out.task.as_str())
        .collect();
    assert_eq!(
        ends.len(),
        1,
        "the task's end is in the file when it returns"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_end_together_share_a_sync_and_a_signature() {
    const TASKS: usize = 48;
    let s = setup(Fsync::Always, Duration::from_millis(10));
    let s = Arc::new(s);
    let before = s.log.stats();
    let mut running = Vec::new();
    for _ in 0..TASKS {
        let s = s.clone();
        running.push(tokio::spawn(async move { s.run(false).await }));
    }
    let mut last = 0;
    for r in running {
        last = last.max(end_seq(&r.await.unwrap()));
    }
    let after = s.log.stats();
    let syncs = after.syncs - before.syncs;
    let checkpoints = after.checkpoints - before.checkpoints;
    assert!(
        syncs < TASKS as u64,
        "{TASKS} tasks at once took {syncs} fdatasyncs: none was shared"
    );
    assert!(
        checkpoints < TASKS as u64,
        "{TASKS} tasks at once took {checkpoints} signatures: none was shared"
    );
    // And every one of them is signed in the end.
    s.wait_signed(last).await;
}

#[tokio::test]
async fn a_receipt_outlives_its_log() {
    let s = setup(Fsync::Always, Duration::from_secs(3600));
    let out = s.run(false).await;
    let Setup {
        path,
        verifier,
        log,
        ..
    } = s;
    // The last holder closes the log, which signs everything written.
    drop(log);
    tokio::time::timeout(Duration::from_secs(20), out.receipt.covered())
        .await
        .expect("a receipt of a closed log never resolved")
        .unwrap();
    let report = verify(&path, &verifier).unwrap();
    assert_eq!(report.uncovered, 0);
}

/// Set for the child of `a_host_killed_before_its_checkpoint_leaves_the_records_to_the_operator`:
/// the log it writes.
const CHILD: &str = "WARDEN_TEST_RECEIPT_CHILD";

/// Not a test on its own: a host that returns one task's result, says so in a file beside
/// its log, and waits to be killed before its checkpoint delay is up.
#[tokio::test]
async fn receipt_child() {
    let Some(path) = std::env::var_os(CHILD).map(std::path::PathBuf::from) else {
        return;
    };
    let key =
        HostKey::load_or_create(&path.with_extension("key"), "receipts/warden-audit").unwrap();
    let options = LogOptions {
        fsync: Fsync::Always,
        checkpoint_delay: Duration::from_secs(3600),
        checkpoint_interval: Duration::from_secs(3600),
        ..LogOptions::default()
    };
    let log: Arc<dyn EventSink> = Arc::new(AuditLog::open(&path, key, options).unwrap());
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let manifest = crate::guests::root().join("guest-examples/echo/manifest.toml");
    let tool = runtime.load(Manifest::load(&manifest).unwrap()).unwrap();
    let out = tool
        .run(TaskRequest::new(INPUT, log.clone()))
        .await
        .unwrap();
    std::fs::write(path.with_extension("returned"), &out.task).unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

#[test]
fn a_host_killed_before_its_checkpoint_leaves_the_records_to_the_operator() {
    use warden::audit::log::LogError;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "receipts::receipt_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let returned = path.with_extension("returned");
    let started = Instant::now();
    while !returned.exists() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let task = std::fs::read_to_string(&returned).expect("the child never returned a result");

    // The result was out with its records synced (fsync always), and nothing signed them:
    // no writer takes them on silently.
    let records = read_records(&path);
    assert!(
        records
            .iter()
            .any(|r| r["event"] == "task.end" && r["task"] == task.as_str()),
        "a returned task's end is on disk"
    );
    let key = || HostKey::load_or_create(&path.with_extension("key"), "unused").unwrap();
    let verifier = key().verifier().clone();
    match AuditLog::open(&path, key(), LogOptions::default()) {
        Err(LogError::Uncovered { from, last, .. }) => {
            assert_eq!((from, last), (0, records.len() as u64 - 1))
        }
        other => panic!("expected the records to be refused as uncovered, got {other:?}"),
    }
    // The operator adopts them, and every later verify says so.
    let (log, adoption) = AuditLog::adopt(&path, key(), LogOptions::default()).unwrap();
    let adoption = adoption.expect("something to adopt");
    assert_eq!((adoption.from_seq, adoption.to_seq), (0, 1));
    drop(log);
    let report = verify(&path, &verifier).unwrap();
    assert_eq!(report.adopted.len(), 1);
    assert_eq!(report.uncovered, 0);
}
