//! Builds the guest components of `guest-examples/` once per process, the
//! way wasmtime's test-programs do: a nested `cargo build` with its own
//! target directory; and the Python and JavaScript guests with their own
//! toolchains (componentize-py, componentize-js), each only when its inputs
//! changed. Shared by the integration tests and the benches.

// The benches include this file, and each uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("runtime/ has a parent")
            .to_path_buf()
    })
}

/// Builds every guest in `guest-examples/` for wasm32-wasip2, once per test
/// process, and returns the directory holding the `.wasm` files.
pub fn guests() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = root().join("target/guests");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(root().join("guest-examples"))
            .env("CARGO_TARGET_DIR", &target)
            // The outer build's flags are for the host, not the guests.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cargo runs");
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let hint = if stderr.contains("wasm32-wasip2") && stderr.contains("target") {
                "\nhint: install the target with `rustup target add wasm32-wasip2`"
            } else {
                ""
            };
            panic!("building guest-examples failed:\n{stderr}{hint}");
        }
        target.join("wasm32-wasip2/release")
    })
}

/// The componentize-py release the tests build with, as `.ci/run` installs it.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// A Python guest of `guest-examples/<name>` (its `app.py`, on the WIT in `wit`, world
/// `world`), built by componentize-py into `target/guests/<name>.wasm` as its manifest says.
/// Built once per test process, and only when its inputs changed since the last build.
pub fn python_guest(name: &'static str, wit: &str, world: &str) -> &'static Path {
    static BUILT: Mutex<Vec<(&'static str, &'static Path)>> = Mutex::new(Vec::new());
    let dir = root().join("guest-examples").join(name);
    let wit = dir.join(wit);
    once(&BUILT, name, || {
        let version = tool_version("componentize-py", &["--version"], || {
            format!("pip install componentize-py=={COMPONENTIZE_PY}")
        });
        assert!(
            version.contains(COMPONENTIZE_PY),
            "{version}: the tests are written for componentize-py {COMPONENTIZE_PY}"
        );
        let out = built_path(name);
        fresh_or_build(&out, &[&dir.join("app.py"), &wit], &version, || {
            Command::new("componentize-py")
                .arg("-d")
                .arg(&wit)
                .args(["-w", world, "componentize", "app", "-o"])
                .arg(&out)
                .current_dir(&dir)
                .output()
                .expect("componentize-py runs")
        });
        out
    })
}

/// The JavaScript guest of `guest-examples/<name>`, built by its `npm run build`
/// (componentize-js, as its `package.json` pins it) into `target/guests/<name>.wasm`, after an
/// `npm ci` when its `node_modules` is missing or older than its lock file. Built once per
/// test process, and only when its inputs changed since the last build.
pub fn js_guest(name: &'static str) -> &'static Path {
    static BUILT: Mutex<Vec<(&'static str, &'static Path)>> = Mutex::new(Vec::new());
    let dir = root().join("guest-examples").join(name);
    once(&BUILT, name, || {
        npm_ci(&dir);
        let package = dir.join("node_modules/@bytecodealliance/componentize-js/package.json");
        let version = std::fs::read_to_string(&package).expect("componentize-js is installed");
        let out = built_path(name);
        let inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "js"))
            .chain([root().join("wit")])
            .collect();
        let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
        fresh_or_build(&out, &inputs, &version, || {
            Command::new("npm")
                .args(["run", "--silent", "build"])
                .current_dir(&dir)
                .output()
                .expect("npm runs")
        });
        out
    })
}

/// `npm ci` in `dir` unless its `node_modules` is as new as its lock file; so that a
/// test may share that `node_modules` (see [`js_guest`]).
pub fn npm_ci(dir: &Path) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    if installed.is_some() && installed >= modified(&dir.join("package-lock.json")) {
        return;
    }
    tool_version("npm", &["--version"], || "install Node.js and npm".into());
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .expect("npm runs");
    assert!(
        out.status.success(),
        "npm ci in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where a guest from another toolchain is built: `target/guests/<name>.wasm`.
fn built_path(name: &str) -> PathBuf {
    let dir = root().join("target/guests");
    std::fs::create_dir_all(&dir).expect("target/guests");
    dir.join(format!("{name}.wasm"))
}

/// The value `init` gives for `name`, made once per process even when many tests ask at once.
fn once(
    built: &Mutex<Vec<(&'static str, &'static Path)>>,
    name: &'static str,
    init: impl FnOnce() -> PathBuf,
) -> &'static Path {
    // Held while building, so that a second test waits for the first build instead of
    // starting its own.
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(n, _)| *n == name) {
        return path;
    }
    let path: &'static Path = Box::leak(init().into_boxed_path());
    built.push((name, path));
    path
}

/// What `command --version` (or `args`) prints, or a panic that says how to install it.
fn tool_version(command: &str, args: &[&str], install: impl FnOnce() -> String) -> String {
    match Command::new(command).args(args).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => panic!("{command} is needed to build a guest: {}", install()),
    }
}

/// Runs `build` unless `out` was built from the same inputs (files, or directories read
/// whole) and toolchain before, as a fingerprint beside it records.
fn fresh_or_build(out: &Path, inputs: &[&Path], toolchain: &str, build: impl FnOnce() -> Output) {
    let mut hash = blake3::Hasher::new();
    hash.update(toolchain.as_bytes());
    for input in inputs {
        hash_tree(&mut hash, input);
    }
    let fingerprint = hash.finalize().to_hex().to_string();
    let stamp = out.with_extension("wasm.inputs");
    if out.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&fingerprint) {
        return;
    }
    let started = std::time::Instant::now();
    let result = build();
    assert!(
        result.status.success() && out.exists(),
        "building {} failed:\n{}{}",
        out.display(),
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    eprintln!(
        "guests: built {} in {:.1?}",
        out.display(),
        started.elapsed()
    );
    std::fs::write(&stamp, fingerprint).expect("fingerprint");
}

fn hash_tree(hash: &mut blake3::Hasher, path: &Path) {
    hash.update(path.as_os_str().as_encoded_bytes());
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for entry in entries {
            hash_tree(hash, &entry);
        }
    } else {
        hash.update(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    }
}
