//! Components from a real OCI registry: Debian's `docker-registry` (the CNCF distribution
//! server) on 127.0.0.1, components pushed to it with the Bytecode Alliance's `wkg`, and
//! signed with Debian's `minisign`; pulled, pinned, verified and run by the real `warden`.

use crate::openbao::{random_hex, spawn_for_the_run};
use crate::support::{read_records, root, warden, wasm};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A registry server of this test run.
pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// Its filesystem storage, where a test plays a compromised registry.
    pub data: PathBuf,
    log: PathBuf,
    pid: u32,
}

/// The user and password of the registry that wants credentials ([`private_registry`]).
pub const USER: &str = "ci";
pub const PASSWORD: &str = "warden-test-pass";
/// `PASSWORD`, bcrypted for the registry's htpasswd file.
const HTPASSWD: &str = "ci:$2b$05$/EB27jBUjzqYEPKt45z2buTywrv/HOzS.4rFntBHEMF2VsRVJCnjG";

/// The open registry most tests share (each under a repository of its own).
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::start(false))
}

/// A registry that wants a user and password.
pub fn private_registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::start(true))
}

/// How a registry of the tests wants to be authorised.
enum Gate<'a> {
    Open,
    /// A user and password ([`USER`], [`PASSWORD`]).
    Htpasswd,
    /// Bearer tokens (JWTs) issued by the holder of `cert`'s key, over the storage of
    /// `shares`, so that what is pushed there (without a token) can be pulled here.
    Token {
        cert: &'a Path,
        shares: &'a Registry,
    },
}

impl Registry {
    /// Starts `docker-registry serve` on a free port of 127.0.0.1. Fails, never skips, when
    /// it is missing: these tests are not optional.
    pub fn start(htpasswd: bool) -> Registry {
        Registry::start_gated(if htpasswd { Gate::Htpasswd } else { Gate::Open })
    }

    fn start_gated(gate: Gate<'_>) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let state = root().join("target/test-registry");
        std::fs::create_dir_all(&state).expect("target/test-registry");
        let home = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(&state)
            .expect("temp dir")
            .keep();
        let data = match &gate {
            Gate::Token { shares, .. } => shares.data.clone(),
            _ => home.join("data"),
        };
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            data.display()
        );
        match gate {
            Gate::Open => {}
            Gate::Htpasswd => {
                let file = home.join("htpasswd");
                std::fs::write(&file, format!("{HTPASSWD}\n")).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: warden-test\n    path: {}\n",
                    file.display()
                ));
            }
            // No token service runs: the tests hand Warden a token, as a CI system would.
            Gate::Token { cert, .. } => config.push_str(&format!(
                "auth:\n  token:\n    realm: http://127.0.0.1:{port}/no-token-service\n    \
                 service: warden-test\n    issuer: warden-test-issuer\n    rootcertbundle: {}\n",
                cert.display()
            )),
        }
        let config_path = home.join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = home.join("registry.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        let pid = spawn_for_the_run(cmd).unwrap_or_else(|e| {
            panic!(
                "cannot run `docker-registry` ({e}): the registry tests need the CNCF \
                 distribution server; install it with `apt-get install docker-registry`"
            )
        });
        let registry = Registry {
            addr: format!("127.0.0.1:{port}"),
            data,
            log,
            pid,
        };
        registry.wait_until_ready();
        registry
    }

    /// Stops the registry: every later request is refused. Only for a registry of the
    /// test's own ([`Registry::start`]), never a shared one.
    pub fn stop(&self) {
        crate::support::kill(self.pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&self.addr).is_ok() {
            assert!(Instant::now() < deadline, "the registry did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.addr).is_err() {
            if Instant::now() > deadline {
                panic!(
                    "the registry did not listen on {} within 30 s; its log:\n{}",
                    self.addr,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `oci://<addr>/<repository>:<tag>`.
    pub fn reference(&self, repository: &str, tag: &str) -> String {
        format!("oci://{}/{repository}:{tag}", self.addr)
    }

    /// Pushes `file` as `<repository>:<tag>` with `wkg`, as a tool author publishes a
    /// component; the manifest digest it printed.
    pub fn push(&self, repository: &str, tag: &str, file: &Path, credentials: bool) -> String {
        let mut cmd = Command::new("wkg");
        cmd.args(["oci", "push", "--insecure", &self.addr]);
        if credentials {
            cmd.args(["-u", USER, "-p", PASSWORD]);
        }
        cmd.arg(format!("{}/{repository}:{tag}", self.addr))
            .arg(file);
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("cannot run `wkg` ({e}): install it with `cargo install wkg --locked`")
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "wkg oci push: {out:?}");
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("digest: "))
            .unwrap_or_else(|| panic!("wkg printed no digest: {stdout}"))
            .trim()
            .to_owned()
    }

    /// Where the registry keeps the blob `sha256:<hex>`.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.data
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

/// One test's own store, audit log and working directory.
pub struct Host {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
    pub audit: PathBuf,
}

impl Host {
    pub fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        Host {
            store: dir.path().join("store"),
            audit: dir.path().join("audit.jsonl"),
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a manifest `name` for `component`, with more `[tool]` lines.
    pub fn manifest(&self, name: &str, component: &str, more: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(
            &path,
            format!(
                "[tool]\nname = \"echo\"\ncomponent = \"{component}\"\n{more}\n[limits]\nmemory = \"32 MiB\"\ntimeout = \"5s\"\n"
            ),
        )
        .unwrap();
        path
    }

    /// `warden ARGS` with this host's store and log.
    pub fn warden(&self, args: &[&str]) -> Output {
        self.warden_env(args, &[])
    }

    pub fn warden_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let baselines = self.path("baselines");
        let mut all = vec![
            ("WARDEN_STORE", self.store.to_str().unwrap()),
            ("WARDEN_BASELINES", baselines.to_str().unwrap()),
        ];
        all.extend_from_slice(env);
        warden(args, &all, None)
    }

    /// `warden pull --plain-http REFERENCE`.
    pub fn pull(&self, reference: &str) -> Output {
        self.warden(&["pull", "--plain-http", reference])
    }

    /// `warden run MANIFEST` with `--input`, and `more` options.
    pub fn run(&self, manifest: &Path, input: &str, more: &[&str]) -> Output {
        let mut args = vec![
            "run",
            manifest.to_str().unwrap(),
            "--audit",
            self.audit.to_str().unwrap(),
            "--input",
            input,
        ];
        args.extend_from_slice(more);
        self.warden(&args)
    }

    /// The `tool.load` records so far.
    pub fn loads(&self) -> Vec<Value> {
        self.events("tool.load")
    }

    /// The records of `event` so far.
    pub fn events(&self, event: &str) -> Vec<Value> {
        read_records(&self.audit)
            .into_iter()
            .filter(|r| r["event"] == event)
            .collect()
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that `out` is a refusal (exit 2) whose error says `says`.
pub fn refused(out: &Output, says: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr.contains(says), "expected {says:?} in: {stderr}");
}

/// A repository name no other test uses.
pub fn repo(name: &str) -> String {
    format!("{name}-{}", random_hex(4))
}

/// The `digest = "blake3:…"` line `warden pull` printed.
fn pulled_digest(out: &Output) -> String {
    let stdout = text(&out.stdout);
    stdout
        .split('"')
        .find(|s| s.starts_with("blake3:"))
        .unwrap_or_else(|| panic!("no digest in {stdout}"))
        .to_owned()
}

/// A minisign key pair made by Debian's `minisign`, without a password.
pub struct MinisignKey {
    pub public: PathBuf,
    secret: PathBuf,
    pub id: String,
}

impl MinisignKey {
    pub fn new(dir: &Path, name: &str) -> MinisignKey {
        let public = dir.join(format!("{name}.pub"));
        let secret = dir.join(format!("{name}.sec"));
        let out = Command::new("minisign")
            .args(["-G", "-W", "-p"])
            .arg(&public)
            .arg("-s")
            .arg(&secret)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run `minisign` ({e}): install it with `apt-get install minisign`")
            });
        assert!(out.status.success(), "minisign -G: {out:?}");
        let comment = std::fs::read_to_string(&public).unwrap();
        let id = comment
            .lines()
            .next()
            .and_then(|l| l.rsplit(' ').next())
            .unwrap()
            .to_owned();
        MinisignKey { public, secret, id }
    }

    /// Signs `file` into `FILE.minisig`.
    pub fn sign(&self, file: &Path) -> PathBuf {
        let out = Command::new("minisign")
            .arg("-S")
            .arg("-s")
            .arg(&self.secret)
            .arg("-m")
            .arg(file)
            .output()
            .unwrap();
        assert!(out.status.success(), "minisign -S: {out:?}");
        let mut sig = file.as_os_str().to_owned();
        sig.push(".minisig");
        PathBuf::from(sig)
    }
}

#[test]
fn a_pulled_component_runs_and_keeps_running_with_the_registry_down() {
    let registry = Registry::start(false);
    let host = Host::new();
    let repo = repo("echo");
    let digest = registry.push(&repo, "1", &wasm("echo"), false);
    let reference = registry.reference(&repo, "1");
    let manifest = host.manifest("echo.toml", &reference, "");

    // Not pulled yet: the first run pulls it, and says so.
    let out = host.run(&manifest, r#"{"n":1}"#, &["--plain-http"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), r#"{"n":1}"#);
    assert!(text(&out.stderr).contains("pulling"), "{out:?}");
    let load = host.loads().pop().unwrap();
    assert_eq!(load["decision"], "allow");
    assert_eq!(load["resource"], reference.as_str());
    assert_eq!(load["args"]["oci"]["manifest"], digest.as_str());
    assert_eq!(load["args"]["signature"]["checked"], false);

    registry.stop();
    // Offline: the store has it, so the run needs no registry (and no --plain-http), for
    // the manifest that names the tag and for one pinned to the digest.
    let out = host.run(&manifest, r#"{"n":2}"#, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), r#"{"n":2}"#);
    let pinned = host.manifest("pinned.toml", &format!("{reference}@{digest}"), "");
    let out = host.run(&pinned, r#"{"n":3}"#, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), r#"{"n":3}"#);
    // A pull with the registry down says so, and what it tried.
    let out = host.pull(&reference);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the registry {}", registry.addr)),
        "{stderr}"
    );
    // A tool never pulled cannot run offline, and the error says what to do.
    let other = host.manifest("other.toml", &registry.reference(&repo, "2"), "");
    let out = host.run(&other, "{}", &["--plain-http"]);
    refused(&out, "cannot reach the registry");
}

#[test]
fn a_moved_tag_does_not_change_what_a_pinned_manifest_runs() {
    let registry = registry();
    let host = Host::new();
    let repo = repo("moving");
    let first = registry.push(&repo, "stable", &wasm("echo"), false);
    let reference = registry.reference(&repo, "stable");
    let out = host.pull(&reference);
    assert!(out.status.success(), "{out:?}");
    let echo_digest = pulled_digest(&out);
    assert!(
        text(&out.stdout).contains(&format!("{reference}@{first}")),
        "{out:?}"
    );

    let pinned = host.manifest("pinned.toml", &format!("{reference}@{first}"), "");
    let floating = host.manifest("floating.toml", &reference, "");

    // The publisher moves the tag to another component, and the host pulls it.
    let second = registry.push(&repo, "stable", &wasm("wc"), false);
    assert_ne!(first, second);
    let out = host.pull(&reference);
    assert!(out.status.success(), "{out:?}");
    let wc_digest = pulled_digest(&out);

    // The pinned manifest still runs the first, offline.
    let out = host.run(&pinned, r#"{"still":"echo"}"#, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), r#"{"still":"echo"}"#);
    let load = host.loads().pop().unwrap();
    assert_eq!(load["component"], echo_digest.as_str());
    assert_eq!(load["args"]["pins"][0], first.as_str());
    // The manifest that follows the tag runs what was pulled last.
    let out = host.run(&floating, "{}", &[]);
    let load = host.loads().pop().unwrap();
    assert_eq!(load["component"], wc_digest.as_str(), "{out:?}");
    assert_eq!(load["args"]["oci"]["manifest"], second.as_str());

    // A pin the registry cannot honour is refused, naming both digests.
    let wrong = format!("{reference}@sha256:{}", "0".repeat(64));
    let out = host.pull(&wrong);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn plain_http_only_to_this_machine_and_only_when_asked() {
    let registry = registry();
    let host = Host::new();
    let repo = repo("plain");
    registry.push(&repo, "1", &wasm("echo"), false);
    let reference = registry.reference(&repo, "1");
    // Not asked: https, which the plain-HTTP registry cannot speak; the error says why.
    let out = host.warden(&["pull", &reference]);
    refused(&out, "needs --plain-http");
    // Asked, for a registry elsewhere: refused before anything is sent.
    for remote in [
        "oci://registry.example.com/tools/echo:1",
        "oci://10.1.2.3:5000/echo:1",
    ] {
        let out = host.pull(remote);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("plain HTTP is allowed only to a registry on this machine"),
            "{stderr}"
        );
    }
}

#[test]
fn a_tampered_artifact_is_refused_in_the_registry_and_in_the_store() {
    let registry = registry();
    let host = Host::new();
    let repo = repo("tamper");
    registry.push(&repo, "1", &wasm("echo"), false);
    let reference = registry.reference(&repo, "1");
    let out = host.pull(&reference);
    assert!(out.status.success(), "{out:?}");
    let manifest = host.manifest("echo.toml", &reference, "");

    // A local user rewrites the pulled component in the store.
    let layer = host.loads_layer(&manifest);
    let stored = host
        .store
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&stored).unwrap();
    let good = bytes.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&stored, &bytes).unwrap();
    let out = host.run(&manifest, "{}", &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("changed after it was pulled"), "{stderr}");
    let denied = host.loads().pop().unwrap();
    assert_eq!(denied["decision"], "deny");
    assert!(
        denied["rule"].as_str().unwrap().contains("changed after"),
        "{denied}"
    );
    std::fs::write(&stored, &good).unwrap();

    // A compromised registry serves other bytes under the same digest.
    let other = repo.clone() + "-b";
    let digest = registry.push(&other, "1", &wasm("echo"), false);
    let _ = digest;
    let fresh = Host::new();
    let blob = registry.blob_file(&layer);
    let original = std::fs::read(&blob).unwrap();
    let mut evil = original.clone();
    evil[last] ^= 1;
    std::fs::write(&blob, &evil).unwrap();
    let out = fresh.pull(&registry.reference(&other, "1"));
    std::fs::write(&blob, &original).unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("blob {layer}: expected {layer}")),
        "{stderr}"
    );
    // Nothing of it was kept.
    assert!(
        !fresh
            .store
            .join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:"))
            .exists()
    );
}

impl Host {
    /// The layer digest of the component `manifest` names, as its load records it.
    fn loads_layer(&self, manifest: &Path) -> String {
        let out = self.run(manifest, "{}", &[]);
        assert!(out.status.success(), "{out:?}");
        self.loads().pop().unwrap()["args"]["oci"]["layer"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[test]
fn signed_by_refuses_a_missing_signature_a_wrong_key_and_changed_bytes() {
    let host = Host::new();
    let trusted = MinisignKey::new(host.dir.path(), "trusted");
    let stranger = MinisignKey::new(host.dir.path(), "stranger");
    let component = host.path("echo.wasm");
    std::fs::copy(wasm("echo"), &component).unwrap();
    let manifest = host.manifest("echo.toml", "echo.wasm", "signed-by = [\"trusted.pub\"]");

    // No signature beside it.
    let out = host.run(&manifest, "{}", &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("expected a signature by minisign:{}", trusted.id))
            && stderr.contains("found no signature (looked in")
            && stderr.contains("echo.wasm.minisig"),
        "{stderr} (trusted key {})",
        trusted.id
    );

    // Signed, by a key the manifest does not trust.
    stranger.sign(&component);
    let out = host.run(&manifest, "{}", &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "a minisign signature by minisign:{}, which signed-by does not name",
            stranger.id
        )),
        "{stderr}"
    );

    // Signed by the trusted key: it runs, and the record names the key.
    trusted.sign(&component);
    let out = host.run(&manifest, r#"{"ok":1}"#, &[]);
    assert!(out.status.success(), "{out:?}");
    let load = host.loads().pop().unwrap();
    assert_eq!(load["args"]["signature"]["scheme"], "minisign");
    assert_eq!(
        load["args"]["signature"]["key"],
        format!("minisign:{}", trusted.id)
    );

    // One byte changed after signing.
    let mut bytes = std::fs::read(&component).unwrap();
    bytes.push(0);
    std::fs::write(&component, &bytes).unwrap();
    let out = host.run(&manifest, "{}", &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("does not verify"),
        "{}",
        text(&out.stderr)
    );
    let denied = host.loads().pop().unwrap();
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["args"]["signature"]["checked"], false);
}

#[test]
fn a_minisign_signature_travels_with_the_component_through_the_registry() {
    let registry = registry();
    let host = Host::new();
    let key = MinisignKey::new(host.dir.path(), "release");
    let repo = repo("signed");
    let component = host.path("echo.wasm");
    std::fs::copy(wasm("echo"), &component).unwrap();
    let digest = registry.push(&repo, "1", &component, false);
    let reference = registry.reference(&repo, "1");
    let manifest = host.manifest("echo.toml", &reference, "signed-by = [\"release.pub\"]");

    // Unsigned in the registry: refused, naming where the signature was looked for.
    let out = host.run(&manifest, "{}", &["--plain-http"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let hex = digest.trim_start_matches("sha256:");
    assert!(
        text(&out.stderr).contains(&format!("sha256-{hex}.minisig")),
        "{}",
        text(&out.stderr)
    );

    // The author signs the file and attaches the signature.
    let sig = key.sign(&component);
    let out = host.warden(&[
        "sign",
        "--plain-http",
        &reference,
        "--minisig",
        sig.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains(&format!("minisign:{}", key.id)),
        "{out:?}"
    );

    // Another host pulls component and signature together, and runs it offline.
    let other = Host::new();
    std::fs::copy(&key.public, other.path("release.pub")).unwrap();
    let manifest = other.manifest("echo.toml", &reference, "signed-by = [\"release.pub\"]");
    let out = other.pull(&reference);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains(&format!("sha256-{hex}.minisig")),
        "{out:?}"
    );
    let out = other.run(&manifest, r#"{"signed":true}"#, &["--require-signed"]);
    assert!(out.status.success(), "{out:?}");
    let load = other.loads().pop().unwrap();
    assert_eq!(
        load["args"]["signature"]["key"],
        format!("minisign:{}", key.id)
    );
    assert_eq!(load["args"]["require_signed"], true);

    // A signature of other bytes does not make this component signed.
    let mut changed = std::fs::read(&component).unwrap();
    changed.push(0);
    let changed_file = host.path("changed.wasm");
    std::fs::write(&changed_file, &changed).unwrap();
    let wrong = key.sign(&changed_file);
    let repo2 = repo.clone() + "-2";
    registry.push(&repo2, "1", &component, false);
    let reference2 = registry.reference(&repo2, "1");
    let out = host.warden(&[
        "sign",
        "--plain-http",
        &reference2,
        "--minisig",
        wrong.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let manifest2 = other.manifest("echo2.toml", &reference2, "signed-by = [\"release.pub\"]");
    let out = other.run(&manifest2, "{}", &["--plain-http"]);
    refused(&out, "does not verify");
}

#[test]
fn require_signed_refuses_every_tool_without_keys() {
    let host = Host::new();
    let manifest = host.manifest("echo.toml", wasm("echo").to_str().unwrap(), "");
    let out = host.run(&manifest, "{}", &[]);
    assert!(out.status.success(), "{out:?}");
    let out = host.run(&manifest, "{}", &["--require-signed"]);
    refused(&out, "requires signed tools");
    let out = host.warden_env(
        &[
            "run",
            manifest.to_str().unwrap(),
            "--audit",
            host.audit.to_str().unwrap(),
        ],
        &[("WARDEN_REQUIRE_SIGNED", "true")],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let loads = host.loads();
    let denied: Vec<_> = loads.iter().filter(|l| l["decision"] == "deny").collect();
    assert_eq!(denied.len(), 2, "{loads:#?}");
    assert_eq!(denied[0]["args"]["require_signed"], true);
}

#[test]
fn registry_credentials_come_from_docker_config_never_the_manifest() {
    let registry = private_registry();
    let host = Host::new();
    let repo = repo("private");
    registry.push(&repo, "1", &wasm("echo"), true);
    let reference = registry.reference(&repo, "1");

    let out = host.pull(&reference);
    refused(&out, "it wants credentials");

    use base64::Engine as _;
    let config = host.path("docker/config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let auth = |pass: &str| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{pass}"));
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{token}"}}}}}}"#,
            registry.addr
        )
    };
    std::fs::write(&config, auth("wrong")).unwrap();
    let docker = host.path("docker");
    let env = [("DOCKER_CONFIG", docker.to_str().unwrap())];
    let out = host.warden_env(&["pull", "--plain-http", &reference], &env);
    refused(&out, "credentials found for it were refused");

    std::fs::write(&config, auth(PASSWORD)).unwrap();
    let out = host.warden_env(&["pull", "--plain-http", &reference], &env);
    assert!(out.status.success(), "{out:?}");
    // The password is nowhere in what Warden wrote.
    let manifest = host.manifest("echo.toml", &reference, "");
    let out = host.run(&manifest, "{}", &[]);
    assert!(out.status.success(), "{out:?}");
    let log = std::fs::read_to_string(&host.audit).unwrap();
    assert!(!log.contains(PASSWORD));
}

#[test]
fn a_docker_credential_helper_is_asked_as_docker_asks_it() {
    let registry = private_registry();
    let host = Host::new();
    let repo = repo("helped");
    registry.push(&repo, "1", &wasm("echo"), true);
    let reference = registry.reference(&repo, "1");
    // A credential helper is a program on PATH that reads the registry on stdin and answers
    // JSON; this one also notes what it was asked.
    let bin = host.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-wardentest");
    let asked = host.path("asked");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread registry\necho \"$1 $registry\" >> {}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$registry\"\n",
            asked.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let docker = host.path("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"wardentest"}}}}"#, registry.addr),
    )
    .unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let env = [
        ("DOCKER_CONFIG", docker.to_str().unwrap()),
        ("PATH", path.as_str()),
    ];
    let out = host.warden_env(&["pull", "--plain-http", &reference], &env);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap().trim(),
        format!("get {}", registry.addr)
    );
}

#[test]
fn a_manifest_names_a_registry_component_by_a_well_formed_reference() {
    let host = Host::new();
    for (component, says) in [
        ("oci://127.0.0.1:5000/echo", "name a tag"),
        ("oci://127.0.0.1:5000/Echo:1", "not a repository"),
        ("oci://127.0.0.1:5000/echo@sha256:abc", "64 lowercase hex"),
    ] {
        let manifest = host.manifest("bad.toml", component, "");
        let out = host.run(&manifest, "{}", &[]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("bad.toml:3: tool.component:") && stderr.contains(says),
            "{stderr}"
        );
    }
    let manifest = host.manifest("bad.toml", "echo.wasm", "signed-by = [\"missing.pub\"]");
    let out = host.run(&manifest, "{}", &[]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("tool.signed-by[0]: cannot read the key file"),
        "{stderr}"
    );
}

/// One plain HTTP/1.1 request to the registry, as an attacker with write access to it
/// would send: the status and the body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, response[split + 4..].to_vec())
}

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A cosign key pair made by `warden sign --new-key`, with `password`.
fn cosign_key(host: &Host, name: &str, password: &str) -> (PathBuf, PathBuf, String) {
    let prefix = host.path(name);
    let out = host.warden_env(
        &["sign", "--new-key", prefix.to_str().unwrap()],
        &[("COSIGN_PASSWORD", password)],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    let id = stdout
        .split_whitespace()
        .find(|w| w.starts_with("cosign:sha256:"))
        .unwrap()
        .to_owned();
    let key = host.path(&format!("{name}.key"));
    assert_eq!(mode(&key) & 0o077, 0, "the private key is private");
    // Never over an existing key.
    let again = host.warden(&["sign", "--new-key", prefix.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    (key, host.path(&format!("{name}.pub")), id)
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode()
}

#[test]
fn a_cosign_signature_verifies_offline_against_its_key_and_no_other() {
    let registry = registry();
    let host = Host::new();
    let (key, public, id) = cosign_key(&host, "release", "s3cret");
    let (_, stranger, stranger_id) = cosign_key(&host, "stranger", "");
    let repo = repo("cosigned");
    let digest = registry.push(&repo, "1", &wasm("echo"), false);
    let reference = registry.reference(&repo, "1");

    // A wrong password opens nothing.
    let out = host.warden_env(
        &[
            "sign",
            "--plain-http",
            &reference,
            "--key",
            key.to_str().unwrap(),
        ],
        &[("COSIGN_PASSWORD", "guess")],
    );
    refused(&out, "cannot open the private key");

    let out = host.warden_env(
        &[
            "sign",
            "--plain-http",
            &reference,
            "--key",
            key.to_str().unwrap(),
        ],
        &[("COSIGN_PASSWORD", "s3cret")],
    );
    assert!(out.status.success(), "{out:?}");
    let hex = digest.trim_start_matches("sha256:");
    assert!(
        text(&out.stdout).contains(&format!("sha256-{hex}.sig")),
        "{out:?}"
    );
    // Published as cosign publishes it: a simple-signing layer naming the manifest.
    let (status, sig) = http(
        &registry.addr,
        "GET",
        &format!("/v2/{repo}/manifests/sha256-{hex}.sig"),
        &[("Accept", MANIFEST_TYPE)],
        b"",
    );
    assert_eq!(status, 200);
    let sig: Value = serde_json::from_slice(&sig).unwrap();
    let layer = &sig["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(layer["annotations"]["dev.cosignproject.cosign/signature"].is_string());

    // Another host trusts the key: it pulls and runs the tool, checking offline.
    let other = Host::new();
    std::fs::copy(&public, other.path("release.pub")).unwrap();
    std::fs::copy(&stranger, other.path("stranger.pub")).unwrap();
    let trusted = other.manifest("echo.toml", &reference, "signed-by = [\"release.pub\"]");
    let out = other.run(
        &trusted,
        r#"{"cosign":1}"#,
        &["--plain-http", "--require-signed"],
    );
    assert!(out.status.success(), "{out:?}");
    let load = other.loads().pop().unwrap();
    assert_eq!(load["args"]["signature"]["scheme"], "cosign");
    assert_eq!(load["args"]["signature"]["key"], id.as_str());

    // A manifest that trusts only another key refuses it, naming the key it expected.
    let wrong = other.manifest("wrong.toml", &reference, "signed-by = [\"stranger.pub\"]");
    let out = other.run(&wrong, "{}", &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("expected a signature by {stranger_id}"))
            && stderr.contains("a cosign signature by none of the cosign keys signed-by names"),
        "{stderr}"
    );
    let denied = other.loads().pop().unwrap();
    assert_eq!(denied["decision"], "deny");
}

#[test]
fn a_cosign_signature_copied_beside_another_component_does_not_sign_it() {
    let registry = registry();
    let host = Host::new();
    let (key, _public, id) = cosign_key(&host, "release", "");
    let repo = repo("replay");
    let signed = registry.push(&repo, "good", &wasm("echo"), false);
    let unsigned = registry.push(&repo, "evil", &wasm("wc"), false);
    let out = host.warden(&[
        "sign",
        "--plain-http",
        &registry.reference(&repo, "good"),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    // The attacker, who can write to the registry, puts the good one's signature beside
    // the evil one.
    let hex = |d: &str| d.trim_start_matches("sha256:").to_owned();
    let (status, sig) = http(
        &registry.addr,
        "GET",
        &format!("/v2/{repo}/manifests/sha256-{}.sig", hex(&signed)),
        &[("Accept", MANIFEST_TYPE)],
        b"",
    );
    assert_eq!(status, 200);
    let (status, _) = http(
        &registry.addr,
        "PUT",
        &format!("/v2/{repo}/manifests/sha256-{}.sig", hex(&unsigned)),
        &[("Content-Type", MANIFEST_TYPE)],
        &sig,
    );
    assert_eq!(status, 201);
    let manifest = host.manifest(
        "evil.toml",
        &registry.reference(&repo, "evil"),
        "signed-by = [\"release.pub\"]",
    );
    let out = host.run(&manifest, "{}", &["--plain-http"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "a cosign signature by {id} of another manifest ({signed})"
        )),
        "{stderr}"
    );
}

/// An RSA key and self-signed certificate made by `openssl`, whose holder issues the
/// registry's tokens.
struct Issuer {
    key: PathBuf,
    cert: PathBuf,
}

impl Issuer {
    fn new(dir: &Path) -> Issuer {
        let (key, cert) = (dir.join("issuer.key"), dir.join("issuer.pem"));
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=warden-test-issuer", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "{out:?}");
        Issuer { key, cert }
    }

    /// A JWT letting its bearer pull and push `repository`, for an hour.
    fn token(&self, repository: &str) -> String {
        use base64::Engine as _;
        let b64u = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&self.cert)
            .output()
            .unwrap()
            .stdout;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({
            "alg": "RS256", "typ": "JWT",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)],
        });
        let claims = serde_json::json!({
            "iss": "warden-test-issuer", "sub": "ci", "aud": "warden-test",
            "exp": now + 3600, "nbf": now - 60, "iat": now, "jti": random_hex(8),
            "access": [{ "type": "repository", "name": repository, "actions": ["pull", "push"] }],
        });
        let signed = format!(
            "{}.{}",
            b64u(header.to_string().as_bytes()),
            b64u(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(signed.as_bytes())
            .unwrap();
        let sig = child.wait_with_output().unwrap().stdout;
        format!("{signed}.{}", b64u(&sig))
    }
}

#[test]
fn a_token_file_authorises_pulls_from_a_registry_that_wants_tokens() {
    let open = registry();
    let host = Host::new();
    let issuer = Issuer::new(host.dir.path());
    let gated = Registry::start_gated(Gate::Token {
        cert: &issuer.cert,
        shares: open,
    });
    let repo = repo("tokened");
    open.push(&repo, "1", &wasm("echo"), false);
    let reference = gated.reference(&repo, "1");

    let out = host.pull(&reference);
    refused(&out, "pass --registry-token-file");

    // A token for another repository is refused.
    let token = host.path("token");
    std::fs::write(&token, issuer.token("someone-else")).unwrap();
    let args = [
        "pull",
        "--plain-http",
        "--registry-token-file",
        token.to_str().unwrap(),
    ];
    let out = host.warden(&[&args[..], &[reference.as_str()]].concat());
    refused(&out, "credentials found for it were refused");

    std::fs::write(&token, issuer.token(&repo)).unwrap();
    let out = host.warden(&[&args[..], &[reference.as_str()]].concat());
    assert!(out.status.success(), "{out:?}");
    let manifest = host.manifest("echo.toml", &reference, "");
    let out = host.run(&manifest, r#"{"t":1}"#, &[]);
    assert!(out.status.success(), "{out:?}");
    let log = std::fs::read_to_string(&host.audit).unwrap();
    assert!(!log.contains(&issuer.token(&repo)[..40]));
}

#[test]
fn a_key_made_by_cosign_itself_signs_and_verifies() {
    let registry = registry();
    let host = Host::new();
    let key = crate::support::root()
        .join("tests/testdata/cosign/cosign_generated_encrypted_empty_private.key");
    let key = key.to_str().unwrap();
    let out = host.warden_env(&["sign", "--public-key", key], &[("COSIGN_PASSWORD", "")]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("-----BEGIN PUBLIC KEY-----"),
        "{out:?}"
    );
    std::fs::write(host.path("cosign.pub"), &out.stdout).unwrap();

    let repo = repo("cosign-made");
    registry.push(&repo, "1", &wasm("echo"), false);
    let reference = registry.reference(&repo, "1");
    let out = host.warden_env(
        &["sign", "--plain-http", &reference, "--key", key],
        &[("COSIGN_PASSWORD", "")],
    );
    assert!(out.status.success(), "{out:?}");
    let manifest = host.manifest("echo.toml", &reference, "signed-by = [\"cosign.pub\"]");
    let out = host.run(&manifest, r#"{"made":"by cosign"}"#, &["--require-signed"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        host.loads().pop().unwrap()["args"]["signature"]["scheme"],
        "cosign"
    );
}
