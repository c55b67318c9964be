//! The log writer under stress: killed mid-write, and many tasks at once.

use crate::support::read_records;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use warden::audit::checkpoint::{HostKey, VerifierKey};
use warden::audit::log::{AuditLog, Fsync, LogError, LogOptions, checkpoints_path};
use warden::audit::verify::verify;
use warden_host_api::audit::{Event, EventSink, Record, TaskMeta};

fn meta(task: &str) -> TaskMeta {
    TaskMeta {
        attempt: None,
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

/// A log opened with `options` in a directory of its own: the directory (kept while the
/// test runs), the log's path, the key that verifies it, and the log.
fn log_in_tempdir(
    origin: &str,
    options: LogOptions,
) -> (tempfile::TempDir, std::path::PathBuf, VerifierKey, AuditLog) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let key = HostKey::generate(origin).unwrap();
    let verifier = key.verifier().clone();
    let log = AuditLog::open(&path, key, options).unwrap();
    (dir, path, verifier, log)
}

/// Emits records `seqs` of task `m` with a checkpoint after every fifth: a segment
/// closes only after a checkpoint.
fn emit_checkpointed(log: &AuditLog, m: &TaskMeta, seqs: std::ops::Range<u64>) {
    for n in seqs {
        emit(log, m, n);
        if n % 5 == 4 {
            log.checkpoint().unwrap();
        }
    }
}

const CHILD: &str = "WARDEN_TEST_WRITER_LOG";
/// Set for the child: close a segment every this many bytes, and compress.
const CHILD_SEGMENT: &str = "WARDEN_TEST_WRITER_SEGMENT";
/// Set for the child: keep this many closed segments, retiring older ones.
const CHILD_RETAIN: &str = "WARDEN_TEST_WRITER_RETAIN";

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
        segment_bytes: std::env::var(CHILD_SEGMENT)
            .ok()
            .map(|n| n.parse().unwrap()),
        compress: std::env::var_os(CHILD_SEGMENT).map(|_| 3),
        retain_segments: std::env::var(CHILD_RETAIN).ok().map(|n| n.parse().unwrap()),
        ..LogOptions::default()
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
    let child = spawn_writer(&path, None);
    let cps = checkpoints_path(&path);
    let signatures = |text: String| text.matches("\n\u{2014} ").count();
    kill_when(child, || {
        signatures(std::fs::read_to_string(&cps).unwrap_or_default()) >= 20
    });
    recovers(&path);
}

/// A writer that closes and compresses a segment every 4 KiB, killed at
/// moments that fall anywhere in its cycle: between records, checkpoints,
/// renames and compressions. Every time the log verifies, reopens, and
/// keeps every checkpointed record.
#[test]
fn sigkill_mid_rotation_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    for round in 1..=4 {
        let child = spawn_writer(&path, Some(4096));
        let segments = || warden::audit::segments::segments(&path).unwrap().len();
        let before = segments();
        kill_when(child, || segments() >= before + 3 * round);
        recovers(&path);
    }
    let segments = warden::audit::segments::segments(&path).unwrap();
    assert!(segments.len() >= 10, "{} segments", segments.len());
    // Reopened with compression on, a writer finishes what a killed one
    // did not: every closed segment ends up compressed.
    let key = HostKey::load_or_create(&path.with_extension("key"), "unused").unwrap();
    let options = LogOptions {
        compress: Some(3),
        ..LogOptions::default()
    };
    drop(AuditLog::open(&path, key, options).unwrap());
    for s in warden::audit::segments::segments(&path).unwrap() {
        assert!(s.compressed, "segment {} left plain", s.first);
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// As above, with a writer that keeps two closed segments and retires the
/// rest: killed anywhere between queueing a retire record and deleting
/// the last file it names, the log still verifies from its anchor.
#[test]
fn sigkill_mid_retirement_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let key = || HostKey::load_or_create(&path.with_extension("key"), "unused").unwrap();
    for round in 1..=4 {
        let child = spawn_writer(&path, Some(4096));
        let oldest = || {
            warden::audit::segments::segments(&path)
                .ok()
                .and_then(|s| s.first().map(|s| s.first))
        };
        let before = oldest();
        // A retirement has deleted segments: the kill lands somewhere in
        // the next cycles.
        kill_when(child, || oldest() != before && oldest().is_some());
        let _ = round;
        recovers(&path);
    }
    let report = verify(&path, key().verifier()).unwrap();
    assert!(report.retired > 0, "nothing was retired: {report:?}");
    let first = warden::audit::segments::segments(&path).unwrap()[0].first;
    assert_eq!(report.retired, first);
    assert!(warden::audit::segments::segments(&path).unwrap().len() <= 4);
}

fn spawn_writer(path: &std::path::Path, segment: Option<u64>) -> std::process::Child {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "audit_log::writer_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, path)
    .stdout(std::process::Stdio::null());
    if let Some(bytes) = segment {
        cmd.env(CHILD_SEGMENT, bytes.to_string());
    }
    if std::thread::current()
        .name()
        .is_some_and(|n| n.contains("retirement"))
    {
        cmd.env(CHILD_RETAIN, "2");
    }
    cmd.spawn().unwrap()
}

fn kill_when(mut child: std::process::Child, ready: impl Fn() -> bool) {
    let started = Instant::now();
    while !ready() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(7));
    }
    // Killed either way: a writer left running would outlive the test.
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(ready(), "the writer never got there");
}

/// A killed writer's log verifies; reopened (adopting what no checkpoint
/// covers, as an operator would) it keeps every checkpointed record, says
/// what it recovered, and is whole and signed.
fn recovers(path: &std::path::Path) {
    let path = path.to_path_buf();

    let load_key = || HostKey::load_or_create(&path.with_extension("key"), "unused").unwrap();
    let verifier = load_key().verifier().clone();
    let found = verify(&path, &verifier).expect("a killed writer's log verifies");
    let last = found.last_checkpoint().unwrap().checkpoint.clone();
    // A writer killed mid-rotation may leave no active file yet.
    let before = std::fs::read(&path).unwrap_or_default();
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
            assert_eq!(
                std::fs::read(&path).unwrap_or_default(),
                before,
                "refused as found"
            );
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
    // Records retired with their segments are gone; the rest run on.
    let retired = found.retired;
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r["seq"],
            retired + i as u64,
            "sequence numbers are contiguous"
        );
    }
    assert!(
        retired + records.len() as u64 >= last.size,
        "every checkpointed record survived: {} records, checkpoint of {}",
        records.len(),
        last.size,
    );
    let torn = !before.is_empty() && !before.ends_with(b"\n");
    // Only what this reopening wrote: an earlier round may have recovered too.
    let new = &records[(found.records - retired) as usize..];
    let recovered = new.iter().any(|r| r["event"] == "recovery");
    assert_eq!(
        torn || found.uncovered > 0,
        recovered,
        "a torn tail is cut and uncovered records adopted, each said, and only then"
    );
    let report = verify(&path, &verifier).expect("the recovered log verifies");
    assert_eq!(
        report.covered,
        retired + records.len() as u64,
        "and is all signed"
    );
    let adopted_now = report
        .adopted
        .iter()
        .filter(|a| a.record >= found.records)
        .count();
    assert_eq!(adopted_now, usize::from(found.uncovered > 0));
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

/// A log in compressed segments reads as one: it verifies, a record in a
/// closed segment has a proof, and an edit or a missing segment is caught.
#[test]
fn segments_verify_prove_and_catch_tampering() {
    use warden::audit::proof::InclusionProof;
    use warden::audit::segments::{read_records as all, segments};
    let options = LogOptions {
        fsync: Fsync::None,
        checkpoint_every: 5,
        segment_bytes: Some(2048),
        compress: Some(3),
        ..LogOptions::default()
    };
    let (_dir, path, verifier, log) = log_in_tempdir("segments/warden-audit", options);
    emit_checkpointed(&log, &meta("segmented"), 0..200);
    drop(log);
    let segs = segments(&path).unwrap();
    assert!(segs.len() >= 5, "{} segments", segs.len());
    assert!(segs.iter().all(|s| s.compressed && s.checkpoints.is_some()));
    assert_eq!(segs[0].first, 0);
    let report = verify(&path, &verifier).unwrap();
    assert_eq!((report.records, report.covered), (200, 200));
    let lines = read_records(&path);
    assert_eq!(lines.len(), 200);

    // Record 7 sits in a closed, compressed segment.
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut all(&path).unwrap(), &mut text).unwrap();
    let line = text.split(|&b| b == b'\n').nth(7).unwrap();
    let proof = InclusionProof::new(all(&path).unwrap(), &report, 7).unwrap();
    proof.check(&verifier, Some(line)).unwrap();

    // An edit inside a compressed segment.
    let second = &segs[1];
    let original = std::fs::read(&second.records).unwrap();
    let text = zstd::decode_all(&original[..]).unwrap();
    let mut edited = text.clone();
    let at = edited.windows(7).position(|w| w == b"\"n\":").unwrap_or(0);
    let at = edited[at..].iter().position(u8::is_ascii_digit).unwrap() + at;
    edited[at] = if edited[at] == b'9' {
        b'8'
    } else {
        edited[at] + 1
    };
    std::fs::write(&second.records, zstd::encode_all(&edited[..], 3).unwrap()).unwrap();
    let err = verify(&path, &verifier).unwrap_err();
    assert!(err.is_damage(), "{err}");
    let seq = err.seq().unwrap();
    assert!(
        (second.first..segs[2].first).contains(&seq),
        "{err} names a record of the edited segment"
    );
    std::fs::write(&second.records, &original).unwrap();
    verify(&path, &verifier).unwrap();

    // A segment gone from the middle, and from the start.
    for gone in [&segs[2], &segs[0]] {
        let saved = std::fs::read(&gone.records).unwrap();
        std::fs::remove_file(&gone.records).unwrap();
        let err = verify(&path, &verifier).unwrap_err();
        assert!(err.is_damage(), "{err}");
        assert_eq!(err.seq(), Some(gone.first), "{err}");
        std::fs::write(&gone.records, saved).unwrap();
    }
    verify(&path, &verifier).unwrap();
}

/// Retention deletes the oldest segments only behind a signed
/// `audit.retire` record, and the log then verifies from the anchor of the
/// first segment kept. Deleting one more segment by hand, or touching the
/// anchor, is damage.
#[test]
fn retention_retires_behind_a_record_and_an_anchor() {
    use warden::audit::segments::{anchor_path, segment_path, segments};
    use warden::audit::verify::VerifyError;
    let options = LogOptions {
        fsync: Fsync::None,
        segment_bytes: Some(2048),
        compress: Some(3),
        retain_segments: Some(3),
        ..LogOptions::default()
    };
    let (_dir, path, verifier, log) = log_in_tempdir("retention/warden-audit", options);
    emit_checkpointed(&log, &meta("retained"), 0..300);
    drop(log);
    let segs = segments(&path).unwrap();
    assert_eq!(segs.len(), 3, "{segs:?}");
    let report = verify(&path, &verifier).unwrap();
    assert_eq!(report.retired, segs[0].first);
    assert!(report.retired > 0);
    let records = read_records(&path);
    assert_eq!(records[0]["seq"], report.retired);
    assert_eq!(report.records, report.retired + records.len() as u64);
    let retire = records
        .iter()
        .rev()
        .find(|r| r["event"] == "audit.retire")
        .expect("the retirement is a record");
    assert!(retire["args"]["through_seq"].as_u64().unwrap() + 1 >= report.retired);

    // The anchor edited or gone.
    let anchor = anchor_path(&segment_path(&path, segs[0].first));
    let original = std::fs::read_to_string(&anchor).unwrap();
    // One hex digit of the edge changed: still well formed, another root.
    let at = original.find("\"frontier\":[\"").unwrap() + 13;
    let mut edited = original.clone().into_bytes();
    edited[at] = if edited[at] == b'0' { b'1' } else { b'0' };
    let edited = String::from_utf8(edited).unwrap();
    for (what, text) in [("edited", Some(edited)), ("gone", None)] {
        match &text {
            Some(t) => std::fs::write(&anchor, t).unwrap(),
            None => std::fs::remove_file(&anchor).unwrap(),
        }
        let err = verify(&path, &verifier).unwrap_err();
        assert!(
            matches!(err, VerifyError::BadAnchor { .. }),
            "anchor {what}: {err}"
        );
        std::fs::write(&anchor, &original).unwrap();
    }
    verify(&path, &verifier).unwrap();

    // One more segment deleted by hand: its successor has an anchor, but no
    // retire record reaches that far.
    std::fs::remove_file(&segs[0].records).unwrap();
    let err = verify(&path, &verifier).unwrap_err();
    assert!(
        matches!(err, VerifyError::Removed { seq: 0, next } if next == segs[1].first),
        "{err}"
    );
}

/// The task's identity is written in its `task.start` and `task.end`, and the records
/// between name only the task: even a task whose start was retired is found by its end.
#[test]
fn identity_is_written_at_a_tasks_two_ends() {
    let options = LogOptions {
        fsync: Fsync::None,
        segment_bytes: Some(2048),
        retain_segments: Some(2),
        ..LogOptions::default()
    };
    let (_dir, path, verifier, log) = log_in_tempdir("identity/warden-audit", options);
    let mut m = meta("long");
    m.agent = Some("planner".into());
    let at_end = |event| {
        log.emit(&Record {
            meta: &m,
            time: SystemTime::now(),
            event: &Event::new(event),
        })
        .unwrap()
    };
    at_end("task.start");
    emit_checkpointed(&log, &m, 0..200);
    at_end("task.end");
    drop(log);
    verify(&path, &verifier).unwrap();

    let records = read_records(&path);
    assert!(
        records.iter().all(|r| r["event"] != "task.start"),
        "the start was retired"
    );
    let identity = ["host", "agent", "parent", "tool", "component"];
    for r in &records {
        let carried = identity.iter().filter(|f| r.get(**f).is_some()).count();
        match r["event"].as_str().unwrap() {
            "call" => {
                assert_eq!(carried, 0, "{r}");
                assert_eq!(r["task"], "long");
            }
            "task.end" => {
                assert_eq!(carried, identity.len(), "{r}");
                assert_eq!(
                    (&r["tool"], &r["agent"]),
                    (&"stress".into(), &"planner".into())
                );
            }
            "audit.retire" => {
                assert_eq!(carried, identity.len(), "{r}");
                assert_eq!((&r["task"], &r["tool"]), (&"-".into(), &"warden".into()));
            }
            other => panic!("unexpected {other}: {r}"),
        }
    }
    assert!(records.iter().any(|r| r["event"] == "task.end"));
}

/// With a shipper following the log, retention keeps every segment until the fleet has
/// acknowledged its records, however many segments pile up.
#[test]
fn retention_waits_for_the_fleet() {
    use warden::audit::segments::segments;
    let options = LogOptions {
        fsync: Fsync::None,
        segment_bytes: Some(2048),
        retain_segments: Some(2),
        ..LogOptions::default()
    };
    let (_dir, path, _, log) = log_in_tempdir("shipped/warden-audit", options);
    log.ship(0, false);
    let m = meta("shipped");
    emit_checkpointed(&log, &m, 0..150);
    let before = segments(&path).unwrap();
    assert!(before.len() > 4, "{before:?}");
    assert_eq!(before[0].first, 0, "nothing acknowledged, nothing retired");

    // Acknowledged up to the start of the fourth segment: the first three may go.
    let acked = before[3].first;
    log.acknowledge(acked);
    emit_checkpointed(&log, &m, 150..300);
    let after = segments(&path).unwrap();
    assert!(after[0].first > 0, "{after:?}");
    assert!(after[0].first <= acked, "{after:?} retired past {acked}");
}
