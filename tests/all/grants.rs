//! Grants end tasks: an expired or revoked grant refuses the next host call
//! with a deny record and interrupts the task; revoking a grant reaches
//! every descendant, while it runs and before it starts.

use crate::support::{Capture, Sandbox};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use warden::manifest::Manifest;
use warden::{EngineConfig, Runtime, TaskError, TaskGrant, TaskRequest, Tool};
use warden_host_api::grant::live::{Ended, Revocations};

fn probe(runtime: &Runtime) -> (Sandbox, Arc<Tool>) {
    let sb = Sandbox::new("probe", "probe");
    // Long enough that only the grant can end these tasks.
    let text = std::fs::read_to_string(&sb.manifest)
        .unwrap()
        .replace("timeout = \"2s\"", "timeout = \"20s\"");
    std::fs::write(&sb.manifest, text).unwrap();
    let tool = Arc::new(runtime.load(Manifest::load(&sb.manifest).unwrap()).unwrap());
    (sb, tool)
}

fn request(input: &str, sink: Arc<Capture>, grant: Option<TaskGrant>) -> TaskRequest {
    let mut req = TaskRequest::new(input, sink).agent("grant-test");
    req.grant = grant;
    req
}

fn chain(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Many host calls in a row: the task is busy calling when its grant ends.
const CALLING: &str = r#"{"op":"stat_loop","path":"/ro/hello.txt","n":100000000}"#;

/// The deny record of the grant's end and the task's end record.
fn assert_stopped_by_grant(records: &[Value], why: &str) {
    let deny: Vec<&Value> = records
        .iter()
        .filter(|r| r["decision"] == "deny" && r["outcome"] == "trap:grant-ended")
        .collect();
    assert_eq!(deny.len(), 1, "one deny record: {records:#?}");
    let rule = deny[0]["rule"].as_str().unwrap();
    assert!(rule.contains(why), "{rule:?} should say {why:?}");
    let end = records.iter().find(|r| r["event"] == "task.end").unwrap();
    assert!(
        end["outcome"].as_str().unwrap().starts_with("trap"),
        "{end}"
    );
    assert_eq!(end["args"]["unrecorded_host_calls"], 0, "{end}");
}

#[tokio::test(flavor = "current_thread")]
async fn an_expiring_grant_stops_its_task_mid_run() {
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let (_sb, tool) = probe(&runtime);
    let sink = Arc::new(Capture::default());
    let grant = TaskGrant {
        chain: chain(&["root", "short"]),
        expires: Some(SystemTime::now() + Duration::from_millis(300)),
        caps: None,
    };
    let err = tool
        .run(request(CALLING, sink.clone(), Some(grant)))
        .await
        .unwrap_err();
    match &err {
        TaskError::Grant { ended, .. } => assert!(matches!(ended, Ended::Expired { .. })),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("grant short expired"), "{err}");
    assert_stopped_by_grant(&sink.records(), "grant short expired");
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_task_is_stopped_when_its_grant_expires() {
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let (_sb, tool) = probe(&runtime);
    let sink = Arc::new(Capture::default());
    let grant = TaskGrant {
        chain: chain(&["spin"]),
        expires: Some(SystemTime::now() + Duration::from_millis(200)),
        caps: None,
    };
    let err = tool
        .run(request(r#"{"op":"spin"}"#, sink.clone(), Some(grant)))
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::Grant { .. }), "{err}");
    assert_stopped_by_grant(&sink.records(), "grant spin expired");
}

#[tokio::test(flavor = "current_thread")]
async fn an_expired_grant_never_starts_a_task() {
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let (_sb, tool) = probe(&runtime);
    let sink = Arc::new(Capture::default());
    let grant = TaskGrant {
        chain: chain(&["old"]),
        expires: Some(SystemTime::now() - Duration::from_secs(1)),
        caps: None,
    };
    let err = tool
        .run(request(r#"{"op":"time"}"#, sink.clone(), Some(grant)))
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::Grant { .. }), "{err}");
    let records = sink.records();
    assert_eq!(records.len(), 2, "start and end only: {records:#?}");
    assert_eq!(records[1]["outcome"], "error:grant-ended");
}

#[tokio::test(flavor = "current_thread")]
async fn revoking_the_root_stops_running_grandchildren_and_spares_others() {
    let revocations = Arc::new(Revocations::new(None));
    let runtime = Runtime::new(&EngineConfig::default())
        .unwrap()
        .with_revocations(revocations.clone());
    let (_sb, tool) = probe(&runtime);
    let sink = Arc::new(Capture::default());
    let far = Some(SystemTime::now() + Duration::from_secs(60));
    let under = |ids: &[&str]| {
        Some(TaskGrant {
            chain: chain(ids),
            expires: far,
            caps: None,
        })
    };
    let grandchild = tokio::spawn({
        let tool = tool.clone();
        let req = request(
            CALLING,
            sink.clone(),
            under(&["root", "child", "grandchild"]),
        );
        async move { tool.run(req).await }
    });
    let spinner = tokio::spawn({
        let tool = tool.clone();
        let req = request(
            r#"{"op":"spin"}"#,
            sink.clone(),
            under(&["root", "child", "spinner"]),
        );
        async move { tool.run(req).await }
    });
    let other = tokio::spawn({
        let tool = tool.clone();
        let req = request(r#"{"op":"time"}"#, sink.clone(), under(&["other-root"]));
        async move { tool.run(req).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    revocations.revoke("root").unwrap();

    for task in [grandchild, spinner] {
        let err = task.await.unwrap().unwrap_err();
        match &err {
            TaskError::Grant { ended, .. } => {
                assert!(ended.to_string().contains("(root was revoked)"), "{ended}");
            }
            other => panic!("{other}"),
        }
    }
    other
        .await
        .unwrap()
        .expect("a grant outside the chain runs on");

    // After the revocation, nothing under it starts.
    let err = tool
        .run(request(
            r#"{"op":"time"}"#,
            sink.clone(),
            under(&["root", "child", "new"]),
        ))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("grant new was revoked (root was revoked)"),
        "{err}"
    );
    let denials: Vec<Value> = sink
        .records()
        .into_iter()
        .filter(|r| r["outcome"] == "trap:grant-ended")
        .collect();
    assert_eq!(denials.len(), 2, "{denials:#?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_revocation_written_by_another_process_is_seen_at_task_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("revoked");
    let runtime = Runtime::new(&EngineConfig::default())
        .unwrap()
        .with_revocations(Arc::new(Revocations::new(Some(file.clone()))));
    let (_sb, tool) = probe(&runtime);
    let sink = Arc::new(Capture::default());
    // Another process (here: another list on the same file) revokes.
    Revocations::new(Some(file)).revoke("team-grant").unwrap();
    let grant = TaskGrant {
        chain: chain(&["team-grant", "agent-7"]),
        expires: None,
        caps: None,
    };
    let err = tool
        .run(request(r#"{"op":"time"}"#, sink, Some(grant)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("(team-grant was revoked)"),
        "{err}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_revocation_by_another_process_stops_a_running_task() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("revoked");
    let runtime = Runtime::new(&EngineConfig::default())
        .unwrap()
        .with_revocations(Arc::new(Revocations::new(Some(file.clone()))));
    let (_sb, tool) = probe(&runtime);
    let sink = Arc::new(Capture::default());
    let grant = TaskGrant {
        chain: chain(&["ops-grant", "worker"]),
        expires: None,
        caps: None,
    };
    let task = tokio::spawn({
        let tool = tool.clone();
        let req = request(CALLING, sink.clone(), Some(grant));
        async move { tool.run(req).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // `warden grant revoke` in another process appends to the same file.
    Revocations::new(Some(file)).revoke("ops-grant").unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("(ops-grant was revoked)"), "{err}");
    assert_stopped_by_grant(&sink.records(), "grant worker was revoked");
}
