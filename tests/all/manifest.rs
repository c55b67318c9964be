//! Manifest parsing and validation, through the public API only.
//!
//! Invalid manifests are snapshot tests in the Spin style: each `tests/ui/invalid/NAME.toml`
//! sits beside `NAME.err`, the one-line error `Manifest::load` must give for it. Run with
//! `WARDEN_BLESS=1` to rewrite the `.err` files after an intended change, then review the
//! diff.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use warden::manifest::{AuditLevel, Digest, Manifest, ManifestError};
use warden_host_api::fs::manifest::Access;
use warden_host_api::http::HostPattern;
use warden_host_api::limits::manifest::Limits;

fn ui_dir() -> PathBuf {
    // Canonical, so that the absolute paths in error messages can be replaced by `$DIR`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/ui/invalid")
        .canonicalize()
        .expect("tests/ui/invalid exists")
}

/// The error as a user who ran `warden check NAME.toml` inside `dir` would see it, with the
/// directory (which differs per checkout) shown as `$DIR`.
fn normalize(message: &str, dir: &Path) -> String {
    let dir = dir.display().to_string();
    let message = message.strip_prefix(&format!("{dir}/")).unwrap_or(message);
    message.replace(&dir, "$DIR")
}

#[test]
fn invalid_manifests_match_snapshots() {
    let dir = ui_dir();
    let bless = std::env::var_os("WARDEN_BLESS").is_some_and(|v| v == "1");
    let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();

    let mut failures = Vec::new();
    let mut cases = 0;
    for path in &entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => {}
            Some("err") => {
                if !path.with_extension("toml").exists() {
                    failures.push(format!("{name}: no {name:?} beside it, remove it"));
                }
                continue;
            }
            _ => continue,
        }
        cases += 1;
        let actual = match Manifest::load(path) {
            Ok(_) => {
                failures.push(format!("{name}: loaded without an error"));
                continue;
            }
            Err(e) => normalize(&e.to_string(), &dir),
        };
        assert!(!actual.contains('\n'), "{name}: multi-line error: {actual}");
        let err_path = path.with_extension("err");
        if bless {
            fs::write(&err_path, format!("{actual}\n")).unwrap();
            continue;
        }
        match fs::read_to_string(&err_path) {
            Ok(expected) if expected.trim_end() == actual => {}
            Ok(expected) => failures.push(format!(
                "{name}:\n    expected: {}\n    actual:   {actual}",
                expected.trim_end()
            )),
            Err(e) => failures.push(format!(
                "{name}: cannot read {err_path:?}: {e}\n    actual: {actual}"
            )),
        }
    }
    assert!(cases >= 15, "only {cases} invalid manifests in {dir:?}");
    assert!(
        failures.is_empty(),
        "{} of {cases} invalid manifests failed (WARDEN_BLESS=1 rewrites the .err files):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "warden-manifest-test-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path.canonicalize().unwrap())
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn minimal_manifest_gets_defaults() {
    let dir = TempDir::new("minimal");
    let path = dir.write(
        "warden.toml",
        "[tool]\nname = \"hello\"\ncomponent = \"hello.wasm\"\n",
    );
    let m = Manifest::load(&path).unwrap();
    assert_eq!(m.path, path);
    assert_eq!(m.tool.name, "hello");
    assert_eq!(m.tool.component, dir.path().join("hello.wasm"));
    assert_eq!(m.tool.digest, None);
    assert_eq!(m.declared.limits, Limits::default());
    assert_eq!(m.declared.limits.memory, 64 << 20);
    assert_eq!(m.declared.limits.timeout, Duration::from_secs(10));
    assert_eq!(m.declared.limits.fuel, None);
    assert_eq!(m.declared.limits.output, 1 << 20);
    assert!(m.ceiling().fs().is_empty());
    assert!(m.declared.env.vars.is_empty() && m.declared.env.pass.is_empty());
    assert!(m.declared.tcp.is_empty(), "no sockets unless granted");
    assert!(m.policy.is_none(), "no policy unless named");
    assert_eq!(m.audit.level, AuditLevel::Calls);
}

#[test]
fn policy_is_resolved_against_the_manifest_and_compiled() {
    let dir = TempDir::new("policy");
    fs::create_dir_all(dir.path().join("tools/policies")).unwrap();
    dir.write(
        "tools/policies/env.rego",
        "package warden\ndeny contains \"no env\" if input.call.kind == \"env\"\n",
    );
    let path = dir.write(
        "tools/warden.toml",
        "[tool]\nname = \"t\"\ncomponent = \"t.wasm\"\n\n[policy]\nfile = \"policies/env.rego\"\n",
    );
    let m = Manifest::load(&path).unwrap();
    let section = m.policy.as_ref().expect("a policy");
    assert_eq!(section.file, dir.path().join("tools/policies/env.rego"));
    assert_eq!(section.policy.name(), section.file.display().to_string());
    assert!(!section.policy.has_allow() && !section.policy.has_cacheable());
    let grants = m.effective_grants();
    assert!(
        grants.contains(&format!("policy: {} (compiled)", section.file.display())),
        "{grants}"
    );

    let none = dir.write(
        "none.toml",
        "[tool]\nname = \"t\"\ncomponent = \"t.wasm\"\n",
    );
    let grants = Manifest::load(&none).unwrap().effective_grants();
    assert!(grants.contains("policy: none"), "{grants}");
}

#[test]
fn full_manifest_resolves_paths_and_values() {
    let dir = TempDir::new("full");
    fs::create_dir_all(dir.path().join("tools/workspace")).unwrap();
    fs::create_dir_all(dir.path().join("cache")).unwrap();
    let cache = dir.path().join("cache");
    let src = format!(
        r#"
[tool]
name = "repo-search"
component = "../bin/repo_search.wasm"

[limits]
memory = "256 MiB"
timeout = "1.5s"
fuel = 5_000_000_000
output = 65536

[[fs]]
host = "./workspace"
guest = "/workspace/"

[[fs]]
host = "{}"
guest = "/cache"
access = "read-write"

[env]
vars = {{ LANG = "C.UTF-8" }}
pass = ["TZ"]

[audit]
level = "full"
"#,
        cache.display()
    );
    let path = dir.write("tools/warden.toml", &src);
    let m = Manifest::load(&path).unwrap();
    // Relative to the manifest's directory, not to the current one; not canonicalized,
    // since the component need not exist yet.
    assert_eq!(
        m.tool.component,
        dir.path().join("tools/../bin/repo_search.wasm")
    );
    assert_eq!(
        m.declared.limits,
        Limits {
            memory: 256 << 20,
            timeout: Duration::from_millis(1500),
            fuel: Some(5_000_000_000),
            output: 65536,
        }
    );
    assert_eq!(m.ceiling().fs().len(), 2);
    assert_eq!(m.ceiling().fs()[0].host, dir.path().join("tools/workspace"));
    assert_eq!(m.ceiling().fs()[0].guest, "/workspace");
    assert_eq!(m.ceiling().fs()[0].access, Access::Read);
    assert_eq!(m.ceiling().fs()[1].host, cache);
    assert_eq!(m.ceiling().fs()[1].guest, "/cache");
    assert_eq!(m.ceiling().fs()[1].access, Access::ReadWrite);
    assert_eq!(m.declared.env.vars["LANG"], "C.UTF-8");
    assert_eq!(m.declared.env.pass, ["TZ"]);
    assert_eq!(m.audit.level, AuditLevel::Full);
}

#[cfg(unix)]
#[test]
fn host_symlink_is_resolved_to_its_target() {
    // The grant must name the real directory: a symlink could be repointed between check
    // and use.
    let dir = TempDir::new("symlink");
    fs::create_dir_all(dir.path().join("real")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
    let path = dir.write(
        "warden.toml",
        "[tool]\nname = \"t\"\ncomponent = \"t.wasm\"\n[[fs]]\nhost = \"link\"\nguest = \"/w\"\n",
    );
    let m = Manifest::load(&path).unwrap();
    assert_eq!(m.ceiling().fs()[0].host, dir.path().join("real"));
}

#[test]
fn relative_manifest_path_resolves_against_current_dir() {
    let m = Manifest::parse(
        "[tool]\nname = \"t\"\ncomponent = \"t.wasm\"\n",
        Path::new("warden.toml"),
        cap_std::ambient_authority(),
    )
    .unwrap();
    assert_eq!(m.path, Path::new("warden.toml"));
    assert_eq!(
        m.tool.component,
        std::env::current_dir().unwrap().join("t.wasm")
    );
    assert!(m.tool.component.file().unwrap().is_absolute());
}

#[test]
fn digest_verification() {
    let component = b"\0asm pretend component bytes";
    let digest = Digest::of(component);
    let src =
        format!("# pinned\n[tool]\nname = \"t\"\ndigest = \"{digest}\"\ncomponent = \"t.wasm\"\n");
    let m = Manifest::parse(&src, Path::new("pinned.toml"), cap_std::ambient_authority()).unwrap();
    assert_eq!(m.tool.digest, Some(digest));
    m.verify_digest(component).unwrap();

    let other = b"something else";
    let err = m.verify_digest(other).unwrap_err();
    assert!(matches!(err, ManifestError::DigestMismatch { line: 4, .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "pinned.toml:4: tool.digest: component digest mismatch: expected {digest}, found {}",
            Digest::of(other)
        )
    );

    // Uppercase hex is the same digest; it is shown in lowercase.
    let upper = format!("{digest}")
        .to_uppercase()
        .replace("BLAKE3:", "blake3:");
    let m = Manifest::parse(
        &format!("[tool]\nname = \"t\"\ncomponent = \"t.wasm\"\ndigest = \"{upper}\"\n"),
        Path::new("upper.toml"),
        cap_std::ambient_authority(),
    )
    .unwrap();
    assert_eq!(m.tool.digest, Some(digest));

    // Without a pin anything goes: the digest is an opt-in check.
    let m = Manifest::parse(
        "[tool]\nname = \"t\"\ncomponent = \"t.wasm\"\n",
        Path::new("unpinned.toml"),
        cap_std::ambient_authority(),
    )
    .unwrap();
    m.verify_digest(other).unwrap();
}

#[test]
fn missing_file_names_path_and_os_error() {
    let err = Manifest::load(Path::new("no/such/warden.toml")).unwrap_err();
    assert!(matches!(err, ManifestError::Read { .. }));
    let message = err.to_string();
    assert!(
        message.starts_with("no/such/warden.toml: cannot read manifest: "),
        "{message}"
    );
    assert!(message.contains("os error 2"), "{message}");
}

#[test]
fn error_accessors() {
    let err = Manifest::parse(
        "[tool]\nname = \"t\"\ncomponent = \"t.wasm\"\n[audit]\nlevel = \"all\"\n",
        Path::new("a.toml"),
        cap_std::ambient_authority(),
    )
    .unwrap_err();
    assert_eq!(err.path(), Path::new("a.toml"));
    assert_eq!(err.line(), Some(5));
    assert_eq!(err.field(), Some("audit.level"));
}

#[test]
fn effective_grants_lists_everything_and_what_is_denied() {
    let dir = TempDir::new("grants");
    fs::create_dir_all(dir.path().join("ws")).unwrap();
    // PATH is set in any test environment; the other name is made up to be unset.
    let path = dir.write(
        "warden.toml",
        r#"
[tool]
name = "repo-search"
component = "repo_search.wasm"
digest = "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"

[limits]
timeout = "5s"

[[fs]]
host = "ws"
guest = "/workspace"
access = "read-write"

[env]
vars = { LANG = "C.UTF-8" }
pass = ["PATH", "WARDEN_TEST_SURELY_UNSET_VARIABLE"]
"#,
    );
    let m = Manifest::load(&path).unwrap();
    let text = m.effective_grants();
    let expected = [
        "tool: repo-search".to_owned(),
        format!("component: {}", dir.path().join("repo_search.wasm").display()),
        "digest: blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
            .to_owned(),
        "limits: memory 64 MiB, timeout 5s, fuel unmetered, output 1 MiB".to_owned(),
        format!(
            "  guest /workspace = host {} (read-write)",
            dir.path().join("ws").display()
        ),
        "  LANG = \"C.UTF-8\"".to_owned(),
        "  PATH passed from the host environment (set here)".to_owned(),
        "  WARDEN_TEST_SURELY_UNSET_VARIABLE passed from the host environment (not set here".to_owned(),
        "audit: calls, at most 100000 records per task".to_owned(),
        "everything else is denied: no other files, no http, no sockets, no DNS, no host environment".to_owned(),
    ];
    for line in &expected {
        assert!(text.contains(line.as_str()), "missing {line:?} in:\n{text}");
    }
    assert!(
        !text.contains(&std::env::var("PATH").unwrap()),
        "pass-through values are never shown:\n{text}"
    );
}

#[test]
fn tcp_rules_are_parsed_and_listed_in_the_grants() {
    let dir = TempDir::new("tcp");
    let path = dir.write(
        "warden.toml",
        r#"
[tool]
name = "db-tool"
component = "db.wasm"

[[tcp]]
connect = "DB.Example.com:5432"

[[tcp]]
connect = "127.0.0.1:6379"
"#,
    );
    let m = Manifest::load(&path).unwrap();
    assert_eq!(m.declared.tcp.len(), 2);
    assert_eq!(
        m.declared.tcp[0].host(),
        &HostPattern::Exact("db.example.com".to_owned())
    );
    assert_eq!(m.declared.tcp[0].port(), 5432);
    assert_eq!(
        m.declared.tcp[1].host(),
        &HostPattern::Ip([127, 0, 0, 1].into())
    );
    let text = m.effective_grants();
    for line in [
        "tcp[0] connect to DB.Example.com:5432 (by name; loopback, private and metadata addresses only if a rule names them)",
        "tcp[1] connect to 127.0.0.1:6379 (by address)",
        "no other files, no http, no other tcp connections (no UDP, no bind or listen, DNS for the tcp names above only), no host environment",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("no sockets"), "{text}");

    let none = dir.write(
        "none.toml",
        "[tool]\nname = \"x\"\ncomponent = \"x.wasm\"\n",
    );
    let text = Manifest::load(&none).unwrap().effective_grants();
    assert!(text.contains("tcp: none (no sockets, no DNS)"), "{text}");
}

/// Issue 11, item 6: an `[[fs]]` grant on Warden's own state would let a tool read the host
/// key, rewrite its audit trail or plant machine code. Grants that hold, are, or lie inside
/// any of Warden's places are refused at load, through the real CLI, naming the field, what
/// they would expose and where; symlinks lead nowhere else.
#[test]
fn grants_that_expose_warden_itself_are_refused() {
    use crate::support::{example, warden, wasm};
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().canonicalize().unwrap();
    let state = dir_path.join("state");
    let cache = dir_path.join("cache");
    let env_of = |extra: &[(&'static str, String)]| {
        let mut env = vec![
            ("XDG_STATE_HOME", state.display().to_string()),
            ("XDG_CACHE_HOME", cache.display().to_string()),
        ];
        env.extend_from_slice(extra);
        env
    };
    let run = |manifest: &Path, args: &[&str], extra: &[(&'static str, String)]| {
        let env = env_of(extra);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut all = vec!["run", manifest.to_str().unwrap(), "--input", "{}"];
        all.extend_from_slice(args);
        warden(&all, &env, None)
    };
    // Warden's places exist once it has run.
    let out = run(&example("echo"), &[], &[]);
    assert!(out.status.success(), "{out:?}");

    let logs = dir_path.join("logs");
    fs::create_dir_all(logs.join("data")).unwrap();
    let audit = logs.join("audit.jsonl");
    let elsewhere = dir_path.join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let key = elsewhere.join("host.key");
    std::os::unix::fs::symlink(state.join("warden/keys"), dir_path.join("link")).unwrap();
    let mdir = dir_path.join("m");
    fs::create_dir_all(&mdir).unwrap();
    let manifest = mdir.join("manifest.toml");
    let grant = |host: &Path| {
        let text = format!(
            "[tool]\nname = \"echo\"\ncomponent = {:?}\n\n[[fs]]\nhost = {:?}\nguest = \"/x\"\n",
            wasm("echo").display().to_string(),
            host.display().to_string(),
        );
        fs::write(&manifest, text).unwrap();
    };
    let audit_arg = ["--audit", audit.to_str().unwrap()];
    let key_arg = ["--key", key.to_str().unwrap()];
    let cases: Vec<(PathBuf, &[&str], String)> = vec![
        (
            state.join("warden"),
            &[],
            format!(
                "is Warden's state directory (audit log, keys, revocation list), {}",
                state.join("warden").display()
            ),
        ),
        (
            state.join("warden/keys"),
            &[],
            format!(
                "is Warden's keys directory, {}",
                state.join("warden/keys").display()
            ),
        ),
        (
            dir_path.join("link"),
            &[],
            format!(
                "is Warden's keys directory, {}",
                state.join("warden/keys").display()
            ),
        ),
        (
            state.join("warden/audit"),
            &[],
            "is the default audit log's directory".into(),
        ),
        (
            state.clone(),
            &[],
            format!(
                "{} holds Warden's state directory (audit log, keys, revocation list)",
                state.display()
            ),
        ),
        (
            cache.join("warden/compiled"),
            &[],
            "is the compiled-component cache".into(),
        ),
        (
            logs.clone(),
            &audit_arg,
            format!("holds the audit log in use, {}", audit.display()),
        ),
        (
            elsewhere.clone(),
            &key_arg,
            format!("holds the host key, {}", key.display()),
        ),
    ];
    for (host, args, want) in &cases {
        grant(host);
        let out = run(&manifest, args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", host.display());
        let field = format!("{}:6: fs[0].host: ", manifest.display());
        assert!(stderr.contains(&field), "{field:?} not in {stderr}");
        assert!(stderr.contains(want.as_str()), "{want:?} not in {stderr}");
        assert!(!audit.exists(), "nothing ran");
    }
    // The same through WARDEN_AUDIT, and at `warden check`.
    grant(&logs);
    let out = run(
        &manifest,
        &[],
        &[("WARDEN_AUDIT", audit.display().to_string())],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    grant(&state.join("warden/keys"));
    let env = env_of(&[]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = warden(&["check", manifest.to_str().unwrap()], &env, None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Warden's keys directory"));

    // A directory beside the log is out of its reach, and may be granted.
    grant(&logs.join("data"));
    let out = run(&manifest, &audit_arg, &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(audit.exists());
}
