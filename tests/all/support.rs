//! What every test needs: the guest components, built once per test run;
//! the real `warden` binary; sandboxes that copy a guest's manifest and
//! grant directories into a fresh temp dir; and the audit records a run
//! left behind.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use crate::guests::{guests, root};

/// The path of a built guest component, e.g. `wasm("probe")`.
pub fn wasm(name: &str) -> PathBuf {
    let path = guests().join(format!("{name}.wasm"));
    assert!(path.exists(), "no guest component {}", path.display());
    path
}

/// The manifest of an example, as committed.
pub fn example(dir: &str) -> PathBuf {
    guests();
    root()
        .join("guest-examples")
        .join(dir)
        .join("manifest.toml")
}

/// The real `warden` binary with `args`, a clean environment but for `env`
/// (and a compiled-component cache under `target/`), not yet started.
pub fn warden_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.args(args).env_clear();
    // Shared across tests, so each component is compiled once per run.
    cmd.env("XDG_CACHE_HOME", root().join("target/test-cache"));
    // One host key for the run, created by whichever test needs it first.
    cmd.env("XDG_STATE_HOME", root().join("target/test-state"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the real `warden` binary with a clean environment but for `env`
/// (and a compiled-component cache under `target/`).
pub fn warden(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = warden_command(args, env);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("warden starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    if let Some(bytes) = stdin {
        pipe.write_all(bytes).expect("stdin takes the input");
    }
    drop(pipe);
    child.wait_with_output().expect("warden finishes")
}

/// Like [`warden`] without stdin, but gives up after `limit`: the process and
/// its children are killed and `None` is returned, so that a run that hangs
/// fails its test instead of stalling the suite.
pub fn warden_within(args: &[&str], limit: std::time::Duration) -> Option<Output> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut cmd = warden_command(args, &[]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("warden starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("warden can be waited for") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            kill_group(child.id());
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Some(Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    })
}

/// Kills the process group led by `pid` (a child spawned with `process_group(0)`).
pub fn kill_group(pid: u32) {
    #[expect(
        unsafe_code,
        reason = "kill(2) with a negative pid signals a process group; it touches no memory"
    )]
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}

/// Kills the process `pid`.
pub fn kill(pid: u32) {
    #[expect(
        unsafe_code,
        reason = "kill(2) signals a process; it touches no memory"
    )]
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Makes a FIFO at `path`, with no reader or writer.
pub fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    #[expect(
        unsafe_code,
        reason = "mkfifo(3) reads a NUL-terminated path that outlives the call"
    )]
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// A temp dir holding a copy of one example's manifest and grant dirs,
/// with the component path made absolute, and an audit log path.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub manifest: PathBuf,
    pub audit: PathBuf,
}

impl Sandbox {
    /// Copies `guest-examples/<example>` (manifest and data, not sources).
    pub fn new(example: &str, component: &str) -> Sandbox {
        Sandbox::of(example, &wasm(component))
    }

    /// Like [`Sandbox::new`], for the component at `wasm`: one built by another toolchain.
    pub fn of(example: &str, wasm: &Path) -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        let src = root().join("guest-examples").join(example);
        for entry in std::fs::read_dir(&src).expect("example dir") {
            let entry = entry.unwrap();
            let name = entry.file_name();
            let source = ["src", "wit", "node_modules", "__pycache__"].map(std::ffi::OsStr::new);
            if entry.file_type().unwrap().is_dir() && !source.contains(&name.as_os_str()) {
                copy_dir(&entry.path(), &dir.path().join(&name));
            }
        }
        let text = std::fs::read_to_string(src.join("manifest.toml")).unwrap();
        let manifest = dir.path().join("manifest.toml");
        let sandbox = Sandbox {
            audit: dir.path().join("audit.jsonl"),
            manifest,
            dir,
        };
        sandbox.write_manifest_for(&text, wasm);
        sandbox
    }

    /// Rewrites the manifest from `text`, pointing `component` at the built
    /// guest of that name.
    pub fn write_manifest(&self, text: &str, component: &str) {
        self.write_manifest_for(text, &wasm(component));
    }

    /// Rewrites the manifest from `text`, pointing `component` at `wasm`.
    pub fn write_manifest_for(&self, text: &str, wasm: &Path) {
        let text: String = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("component") {
                    format!("component = {:?}", wasm.display().to_string())
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&self.manifest, text).unwrap();
    }

    /// A path inside the sandbox.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `warden run` on this sandbox's manifest with a JSON input.
    pub fn run(&self, input: &str) -> Run {
        self.run_with(input, &[])
    }

    /// Like [`Sandbox::run`], with host environment variables.
    pub fn run_with(&self, input: &str, env: &[(&str, &str)]) -> Run {
        self.run_args(input, &[], env)
    }

    /// Like [`Sandbox::run_with`], with more `warden run` options.
    pub fn run_args(&self, input: &str, options: &[&str], env: &[(&str, &str)]) -> Run {
        let before = self.records().len();
        let mut args = vec![
            "run",
            self.manifest.to_str().unwrap(),
            "--audit",
            self.audit.to_str().unwrap(),
            "--input",
            input,
        ];
        args.extend_from_slice(options);
        let out = warden(&args, env, None);
        let records = self.records().split_off(before);
        Run::new(out, records)
    }

    /// Like [`Sandbox::run`], but a run still going after `limit` is killed
    /// and fails the test: for attacks that used to hang the process.
    pub fn run_within(&self, input: &str, limit: std::time::Duration) -> Run {
        let before = self.records().len();
        let args = [
            "run",
            self.manifest.to_str().unwrap(),
            "--audit",
            self.audit.to_str().unwrap(),
            "--input",
            input,
        ];
        let Some(out) = warden_within(&args, limit) else {
            panic!("warden run {input} still running after {limit:?}: it hangs");
        };
        let records = self.records().split_off(before);
        Run::new(out, records)
    }

    /// Every record in the sandbox's audit log.
    pub fn records(&self) -> Vec<Value> {
        read_records(&self.audit)
    }
}

/// Parses a JSON Lines audit log.
/// The records of the log at `path`, its closed segments first.
pub fn read_records(path: &Path) -> Vec<Value> {
    let mut text = String::new();
    let read = warden::audit::segments::read_records(path)
        .and_then(|mut r| std::io::Read::read_to_string(&mut r, &mut text));
    match read {
        Ok(_) => text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l}: {e}")))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let ty = entry.file_type().unwrap();
        let dest = to.join(entry.file_name());
        if ty.is_dir() {
            copy_dir(&entry.path(), &dest);
        } else if ty.is_file() {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// One finished `warden run`.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The task's records.
    pub records: Vec<Value>,
    /// The `tool.load` records of the run, kept apart from the task's.
    pub loads: Vec<Value>,
}

impl Run {
    /// A finished run and the records it added.
    pub fn new(out: Output, records: Vec<Value>) -> Run {
        let (loads, records) = records.into_iter().partition(|r| r["event"] == "tool.load");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            records,
            loads,
        }
    }

    /// The tool's JSON result; panics with the run's output if it has none.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("no JSON result ({e}): {self:#?}"))
    }

    /// Records of calls that were denied.
    pub fn denials(&self) -> Vec<&Value> {
        self.records
            .iter()
            .filter(|r| r["decision"] == "deny")
            .collect()
    }

    /// The single denial whose `call` ends with `call`; panics otherwise.
    pub fn denial(&self, call: &str) -> &Value {
        let found: Vec<_> = self
            .denials()
            .into_iter()
            .filter(|r| r["call"].as_str().is_some_and(|c| c.ends_with(call)))
            .collect();
        assert_eq!(found.len(), 1, "expected one {call} denial: {self:#?}");
        found[0]
    }

    /// The records of one event kind, e.g. `secret.use`.
    pub fn events(&self, event: &str) -> Vec<&Value> {
        self.records
            .iter()
            .filter(|r| r["event"] == event)
            .collect()
    }

    /// The `task.end` record.
    pub fn end(&self) -> &Value {
        self.records
            .iter()
            .find(|r| r["event"] == "task.end")
            .unwrap_or_else(|| panic!("no task.end record: {self:#?}"))
    }

    /// Asserts that the run succeeded and wrote a consistent log: a start,
    /// an end, one task id, and no host call that escaped recording.
    pub fn assert_recorded(&self) {
        assert_eq!(self.records[0]["event"], "task.start", "{self:#?}");
        let task = &self.records[0]["task"];
        assert!(self.records.iter().all(|r| &r["task"] == task));
        assert_eq!(self.end()["args"]["unrecorded_host_calls"], 0, "{self:#?}");
    }
}

/// An audit sink that keeps every record in memory, as JSON, for library tests.
#[derive(Default)]
pub struct Capture(std::sync::Mutex<Vec<Value>>);

impl warden_host_api::audit::EventSink for Capture {
    fn emit(&self, record: &warden_host_api::audit::Record<'_>) -> anyhow::Result<()> {
        self.0.lock().unwrap().push(serde_json::to_value(record)?);
        Ok(())
    }
}

impl Capture {
    /// Every record so far.
    pub fn records(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}
