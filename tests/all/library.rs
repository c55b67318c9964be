//! The library API: tasks of one runtime are independent; a task that hits
//! a limit ends alone.

use crate::support::{Sandbox, read_records};
use std::path::PathBuf;
use std::sync::Arc;
use warden::audit::checkpoint::HostKey;
use warden::audit::log::{AuditLog, Fsync, LogOptions};
use warden::engine::{SlotLimit, TaskSlot};
use warden::manifest::Manifest;
use warden::{EngineConfig, Outcome, Runtime, TaskError, TaskRequest};
use warden_host_api::approval::{Answer, ApprovalRequest, CallbackApprover};

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
    let request = |input: &str| TaskRequest::new(input, sink.clone()).agent("library-test");

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
    let run = |input: &str| TaskRequest::new(input, sink.clone());
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

/// Counts the tasks between their `task.start` and `task.end` records: how many a
/// runtime let run at once, as its own records show it.
#[derive(Default)]
struct Overlap(std::sync::Mutex<OverlapState>);

#[derive(Default)]
struct OverlapState {
    open: usize,
    most: usize,
    started: usize,
    ended: usize,
}

impl warden_host_api::audit::EventSink for Overlap {
    fn emit(&self, record: &warden_host_api::audit::Record<'_>) -> anyhow::Result<()> {
        let mut s = self.0.lock().unwrap();
        match record.event.event {
            "task.start" => {
                s.open += 1;
                s.started += 1;
                s.most = s.most.max(s.open);
            }
            "task.end" => {
                s.open -= 1;
                s.ended += 1;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A line of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line[field.len() + 1..]
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap()
}

const THOUSAND_CHILD: &str = "WARDEN_TEST_THOUSAND_TASKS";

/// Runs in a process of its own (this test binary, again, with only this test): the
/// memory it measures is then the tasks', not that of tests running beside it.
#[test]
fn a_thousand_tasks_on_one_runtime_complete_in_bounded_memory() {
    if std::env::var_os(THOUSAND_CHILD).is_some() {
        return thousand_tasks();
    }
    crate::support::guests();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "library::a_thousand_tasks_on_one_runtime_complete_in_bounded_memory",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(THOUSAND_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(" tasks: RSS "),
        "the child ran no tasks:\n{stdout}"
    );
}

/// The probe with `/rw` writes gated by an approval, and time enough to wait for one.
fn gated_probe() -> Sandbox {
    let sb = Sandbox::new("probe", "probe");
    let text = std::fs::read_to_string(crate::support::example("probe")).unwrap();
    let (gate, timeout) = ("access = \"read-write\"", "timeout = \"2s\"");
    assert!(text.contains(gate) && text.contains(timeout), "{text}");
    let text = text
        .replace(gate, &format!("{gate}\napproval = \"required\""))
        .replace(timeout, "timeout = \"120s\"");
    sb.write_manifest(&text, "probe");
    sb
}

fn write_input(n: usize) -> String {
    format!(r#"{{"op":"write","path":"/rw/{n}.txt","data":"{n}"}}"#)
}

fn thousand_tasks() {
    const TASKS: usize = 1000;
    let cfg = EngineConfig::default();
    let slots = cfg.max_tasks as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Opens once every task slot holds a task waiting for its approval: the moment the
    // most instances are alive at once. A runtime that admitted fewer never opens it, and
    // the approvals time out (60 s) into failed writes.
    let (open, _) = tokio::sync::watch::channel(false);
    let open = Arc::new(open);
    let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let approver = CallbackApprover::new("gate", {
        let (open, waiting) = (open.clone(), waiting.clone());
        move |_req: ApprovalRequest| {
            let (open, waiting) = (open.clone(), waiting.clone());
            async move {
                let mut rx = open.subscribe();
                if waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == slots {
                    open.send_replace(true);
                }
                let _ = rx.wait_for(|open| *open).await;
                Answer::approve("gate", "every slot was taken")
            }
        }
    });
    let runtime = Runtime::new(&cfg)
        .unwrap()
        .with_approver(Arc::new(approver));
    let load = |m: &std::path::Path| Arc::new(runtime.load(Manifest::load(m).unwrap()).unwrap());
    let echo = load(&crate::support::example("echo"));
    let sb = gated_probe();
    let probe = load(&sb.manifest);
    let sink = Arc::new(Overlap::default());
    // One task of each first, so that what is made once per process (the epoch thread,
    // tokio's workers, wasmtime's lazily built state) is in the baseline.
    rt.block_on(async {
        echo.run(TaskRequest::new("{}", sink.clone()))
            .await
            .unwrap();
        let read = r#"{"op":"read","path":"/ro/hello.txt"}"#;
        probe
            .run(TaskRequest::new(read, sink.clone()))
            .await
            .unwrap();
    });
    let before = status_kib("VmRSS");
    // Compiling the components peaked higher than the tasks will: start the peak afresh.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();

    // 1,000 echo tasks at once: each is so short that few overlap.
    let echoes = rt.block_on(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|n| {
                let req = TaskRequest::new(format!(r#"{{"n":{n}}}"#), sink.clone());
                let echo = echo.clone();
                tokio::spawn(async move { echo.run(req).await })
            })
            .collect();
        let mut outputs = Vec::new();
        for h in handles {
            outputs.push(h.await.unwrap());
        }
        outputs
    });
    for (n, out) in echoes.into_iter().enumerate() {
        let out = out.unwrap_or_else(|e| panic!("echo task {n}: {e}"));
        assert_eq!(out.outcome, Outcome::Result(format!(r#"{{"n":{n}}}"#)));
    }
    // 1,000 writing tasks at once: the first `slots` hold their instances until all of
    // them are alive together; the rest wait for a slot.
    let writes = rt.block_on(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|n| {
                let req = TaskRequest::new(write_input(n), sink.clone());
                let probe = probe.clone();
                tokio::spawn(async move { probe.run(req).await })
            })
            .collect();
        let mut outputs = Vec::new();
        for h in handles {
            outputs.push(h.await.unwrap());
        }
        outputs
    });
    let peak = status_kib("VmHWM");
    for (n, out) in writes.into_iter().enumerate() {
        let out = out.unwrap_or_else(|e| panic!("write task {n}: {e}"));
        let Outcome::Result(json) = &out.outcome else {
            panic!("write task {n}: {:?}", out.outcome)
        };
        assert!(json.contains(r#""ok":true"#), "write task {n}: {json}");
        let written = std::fs::read_to_string(sb.path(&format!("root/rw/{n}.txt"))).unwrap();
        assert_eq!(written, n.to_string());
    }
    drop((echo, probe, runtime));
    let after = status_kib("VmRSS");
    let s = sink.0.lock().unwrap();
    assert_eq!((s.started, s.ended), (2 * TASKS + 2, 2 * TASKS + 2));
    assert_eq!(
        s.most, slots,
        "every slot was taken at once, and never more than max_tasks"
    );
    println!(
        "{} tasks: RSS {before} KiB before, {after} KiB after, peak {peak} KiB; \
         at most {} at once",
        2 * TASKS,
        s.most
    );
    // What a live task holds resident: the pages of its linear memory it touched (data
    // copied in, since copy-on-write is off, and the part of its 1 MiB shadow stack and
    // heap it used), its store and WASI context, the used part of its async stack. That
    // came to about 200 KiB per task here (100 alive at once: the peak grew ~20 MiB). The
    // bound allows 1 MiB for each of the 100 slots, five times that, and is still half
    // of what a thousand such tasks alive at once would take.
    let peak_growth = peak.saturating_sub(before);
    assert!(
        peak_growth < 100 * 1024,
        "the peak grew by {peak_growth} KiB for {TASKS} tasks"
    );
    // Once they have ended the pool has given their memory back (it keeps no pages
    // resident), and what stays is the allocator's caches.
    let left = after.saturating_sub(before);
    assert!(
        left < 32 * 1024,
        "{left} KiB stayed resident after the tasks"
    );
}

/// With four slots, ten tasks that each wait for an approval: four are admitted and
/// wait, the others have not started (no `task.start`), and each approval lets exactly
/// one more in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_admits_max_tasks_at_once_and_queues_the_rest() {
    type Ask = (String, tokio::sync::oneshot::Sender<Answer>);
    let (asks, mut asked) = tokio::sync::mpsc::unbounded_channel::<Ask>();
    let approver = CallbackApprover::new("test", move |req: ApprovalRequest| {
        let (answer, decision) = tokio::sync::oneshot::channel();
        let sent = asks.send((req.task.clone(), answer));
        async move {
            match (sent, decision.await) {
                (Ok(()), Ok(decision)) => decision,
                _ => Answer::refuse("test", "the test went away"),
            }
        }
    });
    let cfg = EngineConfig {
        max_tasks: 4,
        ..EngineConfig::default()
    };
    let runtime = Runtime::new(&cfg)
        .unwrap()
        .with_approver(Arc::new(approver));
    let sb = gated_probe();
    let tool = Arc::new(runtime.load(Manifest::load(&sb.manifest).unwrap()).unwrap());
    let sink = Arc::new(Overlap::default());
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let req = TaskRequest::new(write_input(n), sink.clone());
            let tool = tool.clone();
            tokio::spawn(async move { tool.run(req).await })
        })
        .collect();
    let counts = |sink: &Overlap| {
        let s = sink.0.lock().unwrap();
        (s.started, s.ended)
    };
    let mut waiting = Vec::new();
    for _ in 0..4 {
        waiting.push(asked.recv().await.unwrap());
    }
    // Give a fifth task every chance to start, were it admitted (this can only make the
    // test pass less often, never fail a correct runtime).
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(counts(&sink), (4, 0), "only four tasks start");
    assert!(asked.try_recv().is_err(), "a fifth task asked for approval");

    let mut answered = 0;
    while answered < 10 {
        let (_, answer) = waiting.remove(0);
        answer.send(Answer::approve("test", "go")).unwrap();
        answered += 1;
        if answered <= 6 {
            // The answered task ends, and only then does the next start and ask.
            waiting.push(asked.recv().await.unwrap());
            assert_eq!(counts(&sink), (4 + answered, answered));
        }
    }
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        assert!(matches!(out.outcome, Outcome::Result(ref s) if s.contains(r#""ok":true"#)));
    }
    let s = sink.0.lock().unwrap();
    assert_eq!((s.started, s.ended, s.most), (10, 10, 4));
}

/// A subscriber sees each task's records in order, from `task.start` to `task.end`; one
/// that does not keep up misses records but holds up nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_stream_shows_each_task_from_start_to_end() {
    use warden::audit::stream::{AuditStream, Update};

    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let tool = Arc::new(
        runtime
            .load(Manifest::load(&crate::support::example("file-search")).unwrap())
            .unwrap(),
    );
    let log = Arc::new(crate::support::Capture::default());
    let stream = Arc::new(AuditStream::new(log.clone()));
    let mut watch = stream.subscribe();
    // Room for four records, and never read until the end.
    let slow_stream = Arc::new(AuditStream::with_capacity(
        Arc::new(warden_host_api::audit::NullSink),
        4,
    ));
    let mut slow = slow_stream.subscribe();

    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let sink: Arc<dyn warden_host_api::audit::EventSink> = if n % 2 == 0 {
                stream.clone()
            } else {
                slow_stream.clone()
            };
            let req = TaskRequest::new(r#"{"query":"needle"}"#, sink).agent(format!("agent-{n}"));
            let tool = tool.clone();
            tokio::spawn(async move { tool.run(req).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap().task);
    }
    drop((stream, slow_stream));

    let mut seen: Vec<serde_json::Value> = Vec::new();
    while let Some(update) = watch.recv().await {
        match update {
            Update::Record(r) => seen.push((*r).clone()),
            Update::Missed(n) => panic!("a reading subscriber missed {n} records"),
        }
    }
    // Exactly what the log holds, with the log line's fields.
    let logged = log.records();
    assert_eq!(seen.len(), logged.len());
    for id in ids.iter().step_by(2) {
        let mine: Vec<&serde_json::Value> = seen.iter().filter(|r| r["task"] == **id).collect();
        let events: Vec<&str> = mine.iter().map(|r| r["event"].as_str().unwrap()).collect();
        assert_eq!(events.first(), Some(&"task.start"), "{events:?}");
        assert_eq!(events.last(), Some(&"task.end"), "{events:?}");
        assert!(events.len() > 2, "{events:?}");
        let logged: Vec<&str> = (logged.iter())
            .filter(|r| r["task"] == **id)
            .map(|r| r["event"].as_str().unwrap())
            .collect();
        assert_eq!(events, logged, "in the order the task made them");
        assert_eq!(mine[0]["v"], 1);
        assert!(mine[0]["time"].as_str().unwrap().ends_with('Z'));
    }
    // The slow subscriber is told what it missed, then reads the last four records.
    assert!(matches!(slow.recv().await, Some(Update::Missed(n)) if n > 0));
    let mut rest = 0;
    while let Some(Update::Record(_)) = slow.recv().await {
        rest += 1;
    }
    assert_eq!(rest, 4);
}

#[path = "../../runtime/examples/agent_loop.rs"]
mod agent_loop;

/// `cargo run --example agent_loop`, as a test: its plan runs, the narrowed step is
/// refused, the retry within the grant succeeds, and the log it wrote verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_loop_example_runs() {
    crate::support::guests();
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    agent_loop::run(
        &crate::support::root().join("guest-examples"),
        &dir.path().join("audit.jsonl"),
        &mut |line| lines.push(line),
    )
    .await
    .unwrap();
    let text = lines.join("\n");
    println!("{text}");
    for expected in [
        "step 1: planner searched /workspace: 4 matches (ok, task ",
        "to fs /workspace/notes read for searcher",
        "step 2.1: searcher searched /workspace/notes/..: tool error denied",
        "decision=deny rule=.. from /workspace/notes leaves fs[0] /workspace/notes",
        "step 2.2: searcher searched /workspace/notes: ok",
        r#"step 3: planner reported {"notes_matches":["/workspace/notes/todo.txt:2"],"workspace_matches":4}"#,
        "intact",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
}

/// An engine whose compiled components are cached in `dir/compiled`, keyed by `dir/cache.key`.
fn cached(dir: &std::path::Path) -> EngineConfig {
    EngineConfig {
        cache_dir: Some(dir.join("compiled")),
        cache_key: Some(dir.join("cache.key")),
        ..EngineConfig::default()
    }
}

/// A pinned manifest refuses other bytes before anything compiles them: whoever swaps the
/// component file gets neither a compile nor a cache entry out of the host.
#[test]
fn a_pinned_component_is_checked_before_it_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let runtime = Runtime::new(&cached(dir.path())).unwrap();
    let echo = std::fs::read(crate::support::guests().join("echo.wasm")).unwrap();
    let component = dir.path().join("t.wasm");
    std::fs::write(&component, wat::parse_str("(component)").unwrap()).unwrap();
    let manifest = dir.path().join("t.toml");
    std::fs::write(
        &manifest,
        format!(
            "[tool]\nname = \"t\"\ncomponent = \"t.wasm\"\ndigest = \"{}\"\n",
            warden::manifest::Digest::of(&echo)
        ),
    )
    .unwrap();
    let entries = || std::fs::read_dir(&cache).unwrap().count();

    let Err(err) = runtime.load(Manifest::load(&manifest).unwrap()) else {
        panic!("the swapped component loaded");
    };
    assert!(
        matches!(
            &err,
            warden::LoadError::Manifest(warden::manifest::ManifestError::DigestMismatch { .. })
        ),
        "{err:?}"
    );
    assert_eq!(entries(), 0, "the swapped bytes were compiled");

    std::fs::write(&component, &echo).unwrap();
    runtime.load(Manifest::load(&manifest).unwrap()).unwrap();
    assert_eq!(entries(), 1);
}

/// A local user who owns the cache file rewrites it in place (same inode) after Warden
/// checked its tag: what runs is still what was checked. Had the artifact been mapped from
/// the cache file, the rewritten pages would be the code that runs.
#[tokio::test(flavor = "current_thread")]
async fn a_cached_artifact_rewritten_after_its_check_changes_nothing_that_runs() {
    use std::io::{Seek, Write};
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        max_tasks: 2,
        ..cached(dir.path())
    };
    let manifest = || Manifest::load(&crate::support::example("echo")).unwrap();
    // The first runtime compiles and stores the entry; the second loads it from the cache.
    Runtime::new(&cfg).unwrap().load(manifest()).unwrap();
    let runtime = Runtime::new(&cfg).unwrap();
    let echo = runtime.load(manifest()).unwrap();
    let entries: Vec<PathBuf> = std::fs::read_dir(dir.path().join("compiled"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        maps.contains("memfd:warden-cached-component"),
        "the entry was not loaded from a sealed copy:\n{maps}"
    );

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&entries[0])
        .unwrap();
    let len = file.metadata().unwrap().len();
    file.seek(std::io::SeekFrom::Start(0)).unwrap();
    file.write_all(&vec![0xcc; len as usize]).unwrap();
    file.sync_all().unwrap();

    let sink = Arc::new(warden_host_api::audit::NullSink);
    let input = r#"{"after":"the rewrite"}"#;
    let out = echo.run(TaskRequest::new(input, sink)).await.unwrap();
    assert_eq!(out.outcome, Outcome::Result(input.into()));
}

/// Every example guest, in Rust, Python and JavaScript, fits the pool's per-task budget, so
/// `max_tasks` of any of them fit at once; a component over the budget is refused when
/// loaded, naming the limit, its need and the setting.
#[test]
fn every_guest_fits_one_task_slot() {
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let mut guests: Vec<PathBuf> = std::fs::read_dir(crate::support::guests())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "wasm"))
        .collect();
    guests.extend([
        crate::guests::python_guest("csv-query", "../../wit", "tool").to_path_buf(),
        crate::guests::js_guest("issue-tracker").to_path_buf(),
    ]);
    for path in &guests {
        runtime
            .compile(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    // One core instance more than a slot holds: a component that instantiates one module
    // that many times.
    let need = TaskSlot::DEFAULT.core_instances + 1;
    let over = format!(
        "(component (core module $m) {})",
        (0..need)
            .map(|i| format!("(core instance $i{i} (instantiate $m))"))
            .collect::<String>()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("over.wasm");
    std::fs::write(&path, wat::parse_str(&over).unwrap()).unwrap();
    let err = runtime.compile(&path).unwrap_err();
    assert!(
        matches!(
            err,
            warden::LoadError::TooLarge { limit: SlotLimit::CoreInstances, need: n, holds, .. }
                if n == need && holds == TaskSlot::DEFAULT.core_instances
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("raise it with `--slot-instances {need}`")),
        "{text}"
    );

    // The setting it names lets it in.
    let roomier = Runtime::new(&EngineConfig {
        slot: TaskSlot {
            core_instances: need,
            ..TaskSlot::DEFAULT
        },
        ..EngineConfig::default()
    })
    .unwrap();
    roomier.compile(&path).unwrap();
}

/// A hostile tool looks for what the task before it left in the slot it now holds: with
/// one slot, every task gets the memory the last one filled, kept resident or handed back.
#[tokio::test]
async fn a_task_finds_nothing_the_last_task_left_in_its_slot() {
    use warden_host_api::audit::NullSink;
    let sb = Sandbox::new("probe", "probe");
    for keep_resident in [warden::engine::DEFAULT_KEEP_RESIDENT, 0] {
        let runtime = Runtime::new(&EngineConfig {
            max_tasks: 1,
            keep_resident,
            ..EngineConfig::default()
        })
        .unwrap();
        let tool = runtime.load(Manifest::load(&sb.manifest).unwrap()).unwrap();
        let run = |input: &'static str| {
            let tool = &tool;
            async move {
                let out = tool
                    .run(TaskRequest::new(input, Arc::new(NullSink)))
                    .await
                    .unwrap();
                let Outcome::Result(json) = out.outcome else {
                    panic!("{input}: {:?}", out.outcome)
                };
                serde_json::from_str::<serde_json::Value>(&json).unwrap()
            }
        };
        // More than is kept resident: part is zeroed in place, part handed back.
        let filled = run(r#"{"op":"membomb","mib":6}"#).await;
        assert_eq!(filled["ok"], true, "{filled}");
        let found = run(r#"{"op":"leftover","mib":8}"#).await;
        assert_eq!(found["ok"], true, "{found}");
        assert_eq!(
            found["nonzero_words"], 0,
            "keep_resident {keep_resident}: the next task read what the last one wrote: {found}"
        );
    }
}
