//! The library API: tasks of one runtime are independent; a task that hits
//! a limit ends alone.

use crate::support::{Sandbox, read_records};
use std::sync::Arc;
use warden::audit::checkpoint::HostKey;
use warden::audit::log::{AuditLog, Fsync, LogOptions};
use warden::manifest::Manifest;
use warden::{EngineConfig, Outcome, Runtime, TaskError, TaskRequest};

// One thread: the spinning guest must yield for the others to finish.
#[tokio::test(flavor = "current_thread")]
async fn a_runaway_task_does_not_stop_the_others() {
    let sb = Sandbox::new("probe", "probe");
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let tool = Arc::new(runtime.load(Manifest::load(&sb.manifest).unwrap()).unwrap());
    let key = HostKey::generate("library-test/warden-audit").unwrap();
    let verifier = key.verifier().clone();
    let options = LogOptions {
        fsync: Fsync::Batch,
        ..LogOptions::default()
    };
    let sink = Arc::new(AuditLog::open(&sb.audit, key, options).unwrap());
    let request = |input: &str| TaskRequest {
        input: input.into(),
        args: vec![],
        stdin: vec![],
        agent: Some("library-test".into()),
        sink: sink.clone(),
        grant: None,
        context: Default::default(),
        call: None,
        approver: None,
        mcp: None,
    };

    let spin = tokio::spawn({
        let tool = tool.clone();
        let req = request(r#"{"op":"spin"}"#);
        async move { tool.run(req).await }
    });
    let bomb = tokio::spawn({
        let tool = tool.clone();
        let req = request(r#"{"op":"membomb","mib":100}"#);
        async move { tool.run(req).await }
    });
    let mut reads = Vec::new();
    for _ in 0..20 {
        let tool = tool.clone();
        let req = request(r#"{"op":"read","path":"/ro/hello.txt"}"#);
        reads.push(tokio::spawn(async move { tool.run(req).await }));
    }
    for r in reads {
        let out = r
            .await
            .unwrap()
            .expect("reads finish while another task spins");
        match out.outcome {
            Outcome::Result(json) => assert!(json.contains("hello from /ro"), "{json}"),
            other => panic!("{other:?}"),
        }
    }
    let err = spin.await.unwrap().unwrap_err();
    assert!(matches!(err, TaskError::Limit { .. }), "{err}");
    assert!(err.to_string().contains("timeout"), "{err}");
    let err = bomb.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("memory limit"), "{err}");

    // One log, 22 tasks, each started and ended, sequence numbers gapless,
    // and a checkpoint for every task end.
    drop(sink);
    let records = read_records(&sb.audit);
    let report = warden::audit::verify::verify(&sb.audit, &verifier).expect("the log verifies");
    let last = &report.last_checkpoint().expect("a checkpoint").checkpoint;
    assert_eq!(
        last.size,
        records.len() as u64,
        "the last task end is covered"
    );
    let starts = records
        .iter()
        .filter(|r| r["event"] == "task.start")
        .count();
    let ends = records.iter().filter(|r| r["event"] == "task.end").count();
    assert_eq!((starts, ends), (22, 22));
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], i as u64);
    }
}

/// Keeps records in memory and refuses `call.intent` ones, as a log that
/// fails just before a change would.
#[derive(Default)]
struct RefuseIntents(std::sync::Mutex<Vec<String>>);

impl warden_host_api::audit::EventSink for RefuseIntents {
    fn emit(&self, record: &warden_host_api::audit::Record<'_>) -> anyhow::Result<()> {
        if record.event.event == "call.intent" {
            anyhow::bail!("disk full");
        }
        self.0.lock().unwrap().push(record.event.event.to_string());
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_change_that_cannot_be_recorded_first_is_not_made() {
    let sb = Sandbox::new("probe", "probe");
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let tool = runtime.load(Manifest::load(&sb.manifest).unwrap()).unwrap();
    let sink = Arc::new(RefuseIntents::default());
    let run = |input: &str| TaskRequest {
        input: input.into(),
        args: vec![],
        stdin: vec![],
        agent: None,
        sink: sink.clone(),
        grant: None,
        context: Default::default(),
        call: None,
        approver: None,
        mcp: None,
    };
    // Reads need no intent and go through.
    let out = tool
        .run(run(r#"{"op":"read","path":"/ro/hello.txt"}"#))
        .await
        .unwrap();
    assert!(matches!(out.outcome, Outcome::Result(ref s) if s.contains("hello from /ro")));
    // A write's intent cannot be recorded: the task stops before the file
    // exists.
    let err = tool
        .run(run(r#"{"op":"write","path":"/rw/made.txt","data":"x"}"#))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(
        !sb.path("root/rw/made.txt").exists(),
        "the change was made unrecorded"
    );
}
