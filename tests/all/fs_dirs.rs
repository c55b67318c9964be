//! How a task's directories are opened, attacked by swapping them on the host: a
//! narrowed directory is reached through its manifest grant's directory without following
//! a symlink, a manifest grant's directory must still be the one resolved at load, and
//! one host directory is never granted twice.

use crate::support::{Capture, Sandbox, warden};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use warden::manifest::Manifest;
use warden::{EngineConfig, Runtime, TaskError, TaskGrant, TaskRequest, Tool};
use warden_host_api::audit::{EventSink, Record};
use warden_host_api::grant::Narrowing;

/// What the probe finds in the directory outside every grant.
const OUTSIDE: &str = "outside every grant";

/// A directory outside the sandbox with `secret.txt` and `hello.txt` in it.
fn outside() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), OUTSIDE).unwrap();
    std::fs::write(dir.path().join("hello.txt"), OUTSIDE).unwrap();
    dir
}

/// Replaces the directory `path` with a symlink to `target`, keeping the directory beside
/// it as `<path>.real`, the way a local user or another process on the host would.
fn swap_for_symlink(path: &Path, target: &Path) {
    let mut real = path.as_os_str().to_owned();
    real.push(".real");
    std::fs::rename(path, PathBuf::from(real)).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

fn load(runtime: &Runtime, sb: &Sandbox) -> Tool {
    runtime.load(Manifest::load(&sb.manifest).unwrap()).unwrap()
}

/// An audit sink that records like [`Capture`] and runs `swap` once, when the task's
/// `task.start` record arrives: after its grant was checked against the manifest and
/// before its directories are opened, the moment a sibling task or a local user racing
/// it would aim for. Before the fix, the grant check looked at the host path
/// (`canonicalize`) and the task then opened the host path again, following whatever
/// was there by then.
struct SwapOnStart {
    records: Capture,
    swap: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl EventSink for SwapOnStart {
    fn emit(&self, record: &Record<'_>) -> anyhow::Result<()> {
        self.records.emit(record)?;
        if serde_json::to_value(record)?["event"] == "task.start"
            && let Some(swap) = self.swap.lock().unwrap().take()
        {
            swap();
        }
        Ok(())
    }
}

const READ_SUB: &str = r#"{"op":"read","path":"/rw/sub/secret.txt"}"#;

/// The attack of issue 11 item 7: a grant narrowed to `/rw/sub` (a real directory when
/// the grant was made and when it is checked) whose `sub` is swapped for a symlink to a
/// directory outside every grant while the task starts. The task is refused, naming the
/// grant and the symlink, and nothing outside is read.
#[tokio::test(flavor = "current_thread")]
async fn a_narrowed_directory_swapped_for_a_symlink_as_the_task_starts_is_refused() {
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let sb = Sandbox::new("probe", "probe");
    let sub = sb.path("root/rw").canonicalize().unwrap().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("secret.txt"), "inside").unwrap();
    let outside = outside();
    let tool = load(&runtime, &sb);
    let narrowing = Narrowing::parse(["fs=/rw/sub:read"]).unwrap();
    let caps = tool.manifest().ceiling().narrow(&narrowing).unwrap();
    let run = |input: &'static str, swap: Option<Box<dyn FnOnce() + Send>>| {
        let sink = Arc::new(SwapOnStart {
            records: Capture::default(),
            swap: Mutex::new(swap),
        });
        let mut req = TaskRequest::new(input, sink.clone());
        req.grant = Some(TaskGrant {
            chain: vec!["narrowed".into()],
            expires: None,
            caps: Some(caps.clone()),
        });
        let tool = &tool;
        async move { (tool.run(req).await, sink.records.records()) }
    };

    // Untouched, the narrowed grant lists and reads its own directory.
    for (input, expected) in [
        (r#"{"op":"list","path":"/rw/sub"}"#, r#"["secret.txt"]"#),
        (READ_SUB, "inside"),
    ] {
        let (ok, _) = run(input, None).await;
        let ok = ok.unwrap();
        assert!(
            matches!(&ok.outcome, warden::Outcome::Result(r) if r.contains(expected)),
            "{ok:?}"
        );
    }

    let (target, link) = (outside.path().to_owned(), sub.clone());
    let swap = Box::new(move || swap_for_symlink(&link, &target));
    let (err, records) = run(READ_SUB, Some(swap)).await;
    let err = match err {
        Err(err) => err,
        Ok(out) => panic!("the swapped directory was opened: {:?}", out.outcome),
    };
    assert!(matches!(err, TaskError::Directory { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("fs grant /rw/sub: ")
            && message.contains(&format!(
                "{} is a symlink (to {})",
                sub.display(),
                outside.path().display()
            )),
        "{message}"
    );
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains(OUTSIDE), "{text}");
    let end = records.iter().find(|r| r["event"] == "task.end").unwrap();
    assert_eq!(end["outcome"], "error:fs-grant", "{end}");
    assert!(
        !records
            .iter()
            .any(|r| r["call"].as_str().is_some_and(|c| c.contains("filesystem"))),
        "the tool never started: {records:#?}"
    );
}

/// A manifest grant's directory replaced after the manifest was loaded (a long-running
/// `warden mcp`, an embedding host) by a symlink to a directory outside it: the next task
/// is refused, naming the grant and what the directory is now, and never reads outside.
/// Replaced by another real directory, it is refused too; put back, it runs again.
#[tokio::test(flavor = "current_thread")]
async fn a_manifest_directory_replaced_after_load_is_refused() {
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let sb = Sandbox::new("probe", "probe");
    let outside = outside();
    let tool = load(&runtime, &sb);
    let ro = sb.path("root/ro").canonicalize().unwrap();
    let read = || {
        let sink = Arc::new(Capture::default());
        let req = TaskRequest::new(r#"{"op":"read","path":"/ro/hello.txt"}"#, sink.clone());
        let tool = &tool;
        async move { (tool.run(req).await, sink.records()) }
    };
    let refused = |(r, records): (Result<warden::TaskOutput, TaskError>, Vec<Value>)| {
        let err = match r {
            Err(err) => err,
            Ok(out) => panic!("the replaced directory was opened: {:?}", out.outcome),
        };
        assert!(matches!(err, TaskError::Directory { .. }), "{err:?}");
        let text = serde_json::to_string(&records).unwrap();
        assert!(!text.contains(OUTSIDE), "{text}");
        let end = records.iter().find(|r| r["event"] == "task.end").unwrap();
        assert_eq!(end["outcome"], "error:fs-grant", "{end}");
        err.to_string()
    };

    assert!(read().await.0.is_ok());

    swap_for_symlink(&ro, outside.path());
    let message = refused(read().await);
    assert!(
        message.contains(&format!(
            "fs grant /ro: {} is no longer the directory the manifest granted at load",
            ro.display()
        )) && message.contains(&format!(
            "it is now a symlink to {}",
            outside.path().display()
        )),
        "{message}"
    );

    std::fs::remove_file(&ro).unwrap();
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(ro.join("hello.txt"), OUTSIDE).unwrap();
    let message = refused(read().await);
    assert!(
        message.contains("it is now another directory (device "),
        "{message}"
    );

    std::fs::remove_dir_all(&ro).unwrap();
    std::fs::rename(sb.path("root/ro.real"), &ro).unwrap();
    let (ok, _) = read().await;
    assert!(
        matches!(ok.unwrap().outcome, warden::Outcome::Result(r) if r.contains("hello from /ro")),
    );
}

/// A read-write grant on a directory and a read-only one on a directory inside it: the
/// second would be writable through the first, so `warden check` and `warden run` refuse
/// the manifest (exit 2), naming both grants and what to do. Before the fix both loaded.
#[test]
fn overlapping_host_directories_are_refused_by_check_and_run() {
    let sb = Sandbox::new("probe", "probe");
    std::fs::create_dir(sb.path("root/rw/config")).unwrap();
    let text = std::fs::read_to_string(&sb.manifest).unwrap()
        + "\n[[fs]]\nhost = \"./root/rw/config\"\nguest = \"/config\"\naccess = \"read\"\n";
    std::fs::write(&sb.manifest, text).unwrap();
    let rw = sb.path("root/rw").canonicalize().unwrap();
    let expected = format!(
        "fs[2].host: {:?} lies inside fs[1].host {:?}: a directory reachable through two \
         grants has the access and approval of the wider one; grant disjoint directories \
         (move one out of the other) or keep one grant",
        rw.join("config"),
        rw
    );
    let m = sb.manifest.to_str().unwrap();
    for args in [
        vec!["check", m],
        vec![
            "run",
            m,
            "--audit",
            sb.audit.to_str().unwrap(),
            "--input",
            r#"{"op":"read","path":"/config/x"}"#,
        ],
    ] {
        let out = warden(&args, &[], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
    }
}
