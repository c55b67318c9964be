//! `warden new`: the crate it makes builds with the README's command and runs
//! with `warden run` as it is, under the grant its manifest gives.
//!
//! The crate is built once per test process, with the command its README
//! gives, run literally in the crate. Only where `target/` lives differs from
//! what a tool author gets: here it is a symlink to `target/scaffold` in this
//! repository, so that wit-bindgen compiles once and later runs take seconds.
//! The manifest's `component` path goes through it unchanged.

use crate::support::{Run, read_records, root, warden_command};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

const BUILD: &[&str] = &["build", "--release", "--target", "wasm32-wasip2"];
const RUN_INPUT: &str = r#"{"path":"hello.txt"}"#;

/// A `warden new demo-tool`, built, in a temp dir kept for the process.
struct Scaffolded {
    dir: tempfile::TempDir,
    /// What `warden new` printed.
    stdout: String,
}

impl Scaffolded {
    fn krate(&self) -> PathBuf {
        self.dir.path().join("demo-tool")
    }

    fn manifest(&self) -> PathBuf {
        self.krate().join("manifest.toml")
    }

    /// `warden run demo-tool/manifest.toml --input INPUT`, with its own audit log.
    fn run(&self, input: &str, log: &str) -> Run {
        run_in(self.dir.path(), &self.manifest(), input, log)
    }
}

/// `warden run MANIFEST --input INPUT` in `dir`, with the audit log `dir/log`.
fn run_in(dir: &Path, manifest: &Path, input: &str, log: &str) -> Run {
    let audit = dir.join(log);
    let args = [
        "run",
        manifest.to_str().unwrap(),
        "--input",
        input,
        "--audit",
        audit.to_str().unwrap(),
    ];
    let out = output(warden_command(&args, &[]).current_dir(dir));
    Run::new(out, read_records(&audit))
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("the command starts")
}

fn scaffolded() -> &'static Scaffolded {
    static BUILT: OnceLock<Scaffolded> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let new = output(warden_command(&["new", "demo-tool"], &[]).current_dir(dir.path()));
        let stdout = String::from_utf8_lossy(&new.stdout).into_owned();
        assert!(
            new.status.success(),
            "warden new failed: {}{stdout}",
            String::from_utf8_lossy(&new.stderr)
        );
        let krate = dir.path().join("demo-tool");
        build(&krate);
        Scaffolded { dir, stdout }
    })
}

/// `cargo build --release --target wasm32-wasip2` in `krate`, as its README
/// says, with `target/` shared across runs (see the module doc).
fn build(krate: &Path) {
    let shared = root().join("target/scaffold");
    std::fs::create_dir_all(&shared).expect("target/scaffold");
    std::os::unix::fs::symlink(&shared, krate.join("target")).expect("target symlink");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let out = output(
        Command::new(cargo)
            .args(BUILD)
            .current_dir(krate)
            // The crate's own target/, as for a tool author; and the outer
            // build's flags are for the host, not the component.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS"),
    );
    assert!(
        out.status.success(),
        "building the new crate failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("scaffold: demo-tool built in {:.1?}", started.elapsed());
}

#[test]
fn new_prints_the_commands_its_readme_gives() {
    let s = scaffolded();
    let readme = std::fs::read_to_string(s.krate().join("README.md")).unwrap();
    let build = format!("cargo {}", BUILD.join(" "));
    let run = format!("warden run manifest.toml --input '{RUN_INPUT}'");
    for line in ["cd demo-tool", &build, &run] {
        assert!(
            s.stdout.contains(&format!("  {line}\n")),
            "{line}: {}",
            s.stdout
        );
    }
    assert!(readme.contains(&format!("\n{build}\n")), "{readme}");
    assert!(readme.contains(&format!("\n{run}\n")), "{readme}");
    // The result the README promises is the one the run gives (next test).
    assert!(
        readme.contains(&format!("\n{}\n", expected_result())),
        "{readme}"
    );
}

fn expected_result() -> serde_json::Value {
    json!({"bytes": 103, "lines": 2, "path": "/data/hello.txt", "words": 17})
}

#[test]
fn the_new_crate_builds_and_runs_under_its_grant() {
    let s = scaffolded();
    assert_counted_the_sample(&s.run(RUN_INPUT, "read.jsonl"), "demo-tool");
}

/// The sample run of a new tool: the counts of `data/hello.txt`, read through the one grant
/// and recorded, and one log line.
fn assert_counted_the_sample(run: &Run, tool: &str) {
    assert_eq!(run.code, 0, "{tool}: {run:#?}");
    assert_eq!(run.json(), expected_result(), "{tool}");
    run.assert_recorded();
    assert_eq!(run.records[0]["tool"], tool);
    let open = run
        .records
        .iter()
        .find(|r| r["call"] == "wasi:filesystem/types.[method]descriptor.open-at")
        .unwrap_or_else(|| panic!("{tool}: open-at is recorded: {run:#?}"));
    assert_eq!(open["resource"], "/data/hello.txt");
    assert_eq!(open["decision"], "allow");
    assert_eq!(open["rule"], "fs[0] /data read");
    assert_eq!(run.events("log").len(), 1, "{tool}: {run:#?}");
}

/// A new tool asked for `../manifest.toml`: refused by Warden, not by the tool, and recorded.
fn assert_refused_outside(run: &Run, tool: &str) {
    assert_eq!(run.code, 1, "{tool}: {run:#?}");
    assert!(run.stdout.is_empty(), "{tool}: {run:#?}");
    assert!(
        run.stderr.contains(&format!("{tool} failed (denied)")),
        "{run:#?}"
    );
    let d = run.denial("open-at");
    assert_eq!(d["resource"], "/manifest.toml");
    let rule = d["rule"].as_str().unwrap();
    assert!(rule.contains("leaves fs[0] /data"), "{rule}");
    run.assert_recorded();
}

#[test]
fn the_new_tool_is_refused_outside_its_grant() {
    let s = scaffolded();
    let run = s.run(r#"{"path":"../manifest.toml"}"#, "escape.jsonl");
    assert_refused_outside(&run, "demo-tool");
}

#[test]
fn the_new_tool_describes_its_input() {
    let s = scaffolded();
    let wasm = s
        .krate()
        .join("target/wasm32-wasip2/release/demo_tool.wasm");
    let out = output(&mut warden_command(
        &["inspect", wasm.to_str().unwrap()],
        &[],
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("kind: tool (warden:tool/tool)"), "{stdout}");
}

/// The manifest's commented-out grants are valid once uncommented: in the
/// block that starts at the first `##` line, prose lines start `##` and
/// disabled TOML lines `# `.
#[test]
fn the_manifest_examples_are_valid() {
    let s = scaffolded();
    let text = std::fs::read_to_string(s.manifest()).unwrap();
    let (active, examples) = text.split_at(text.find("\n##").expect("an examples block") + 1);
    let enabled: String = examples
        .lines()
        .filter(|l| !l.starts_with("##"))
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let enabled = format!("{active}{enabled}");
    assert!(enabled.contains("\n[[http]]\n"), "{enabled}");
    let manifest = s.dir.path().join("demo-tool/examples.toml");
    std::fs::write(&manifest, enabled).unwrap();
    let out = output(&mut warden_command(
        &["check", manifest.to_str().unwrap()],
        &[],
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for granted in ["/data", "https://api.example.com/v1/", "LANG", "example"] {
        assert!(stdout.contains(granted), "{granted}: {stdout}");
    }
}

#[test]
fn new_refuses_a_bad_name_and_an_occupied_directory() {
    let dir = tempfile::tempdir().unwrap();
    let new = |args: &[&str]| output(warden_command(args, &[]).current_dir(dir.path()));

    let out = new(&["new", "Demo"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "warden: invalid name \"Demo\": must start with a lowercase letter (a-z), not 'D'\n"
    );

    std::fs::create_dir(dir.path().join("taken")).unwrap();
    std::fs::write(dir.path().join("taken/notes.txt"), "mine").unwrap();
    let out = new(&["new", "demo", "--path", "taken"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("taken: already exists and is not empty"),
        "{out:?}"
    );
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["taken"]);
    assert_eq!(
        std::fs::read_dir(dir.path().join("taken")).unwrap().count(),
        1
    );
}

/// A tool made by `warden new <name> --lang <lang>` for Python or JavaScript and built
/// with the commands its README gives, once per test process.
struct Interpreted {
    dir: tempfile::TempDir,
    name: &'static str,
    /// What `warden new` printed.
    stdout: String,
}

impl Interpreted {
    fn tool(&self) -> PathBuf {
        self.dir.path().join(self.name)
    }

    fn run(&self, input: &str, log: &str) -> Run {
        run_in(&self.tool(), &self.tool().join("manifest.toml"), input, log)
    }
}

/// The build commands the Python template's README gives, run as they are.
const PYTHON_BUILD: &[&str] = &["componentize-py -d wit -w tool componentize app -o demo-py.wasm"];

/// The JavaScript template's: `npm install` is the one step not run as it is; the tool's
/// `node_modules` is the JavaScript guest example's, installed once by `npm ci` from the
/// same pinned componentize-js, instead of 400 MB fetched again per test run.
const JS_BUILD: &[&str] = &["npm install", "npm run build"];

fn interpreted(lang: &'static str) -> &'static Interpreted {
    static PYTHON: OnceLock<Interpreted> = OnceLock::new();
    static JS: OnceLock<Interpreted> = OnceLock::new();
    let (cell, name, build) = match lang {
        "python" => (&PYTHON, "demo-py", PYTHON_BUILD),
        _ => (&JS, "demo-js", JS_BUILD),
    };
    cell.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let new =
            output(warden_command(&["new", name, "--lang", lang], &[]).current_dir(dir.path()));
        let stdout = String::from_utf8_lossy(&new.stdout).into_owned();
        assert!(
            new.status.success(),
            "warden new --lang {lang} failed: {}{stdout}",
            String::from_utf8_lossy(&new.stderr)
        );
        let tool = dir.path().join(name);
        let started = Instant::now();
        for command in build {
            if *command == "npm install" {
                link_node_modules(&tool);
                continue;
            }
            let out = output(Command::new("sh").args(["-c", command]).current_dir(&tool));
            assert!(
                out.status.success(),
                "{command} in the new {lang} tool failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        eprintln!("scaffold: {name} built in {:.1?}", started.elapsed());
        Interpreted { dir, name, stdout }
    })
}

/// The JavaScript guest example's `node_modules`, for a tool whose `package.json` pins the
/// same componentize-js.
fn link_node_modules(tool: &Path) {
    let example = root().join("guest-examples/issue-tracker");
    let pinned = |dir: &Path| {
        let text = std::fs::read_to_string(dir.join("package.json")).unwrap();
        let package: serde_json::Value = serde_json::from_str(&text).unwrap();
        package["devDependencies"].clone()
    };
    assert_eq!(
        pinned(tool),
        pinned(&example),
        "the template and the example pin one componentize-js"
    );
    crate::guests::npm_ci(&example);
    std::os::unix::fs::symlink(example.join("node_modules"), tool.join("node_modules"))
        .expect("node_modules symlink");
}

#[test]
fn new_python_and_js_tools_print_the_commands_their_readme_gives() {
    for (lang, build) in [("python", PYTHON_BUILD), ("js", JS_BUILD)] {
        let t = interpreted(lang);
        let readme = std::fs::read_to_string(t.tool().join("README.md")).unwrap();
        let run = format!("warden run manifest.toml --input '{RUN_INPUT}'");
        for line in build.iter().copied().chain([run.as_str()]) {
            let in_readme = readme
                .lines()
                .any(|l| l == line || l.starts_with(&format!("{line} ")));
            assert!(in_readme, "{lang}: {line}: {readme}");
        }
        let printed = format!("cd {}", t.name);
        assert!(t.stdout.contains(&format!("  {printed}\n")), "{}", t.stdout);
        let last = build.last().unwrap();
        assert!(t.stdout.contains(&format!("  {last}\n")), "{}", t.stdout);
        assert!(t.stdout.contains(&format!("  {run}\n")), "{}", t.stdout);
        assert!(
            readme.contains(&format!("\n{}\n", expected_result())),
            "{lang}: {readme}"
        );
    }
}

#[test]
fn new_python_and_js_tools_run_under_their_grant_and_not_outside_it() {
    for lang in ["python", "js"] {
        let t = interpreted(lang);
        assert_counted_the_sample(&t.run(RUN_INPUT, "read.jsonl"), t.name);
        let run = t.run(r#"{"path":"../manifest.toml"}"#, "escape.jsonl");
        assert_refused_outside(&run, t.name);

        let run = t.run(r#"{"path":"missing.txt"}"#, "missing.jsonl");
        assert_eq!(run.code, 1, "{lang}: {run:#?}");
        assert!(
            run.stderr.contains(&format!("{} failed (failed)", t.name)),
            "{lang}: {run:#?}"
        );
        let run = t.run(r#"{"paths":"x"}"#, "invalid.jsonl");
        assert!(
            run.stderr.contains(&format!(
                "{} failed (invalid-input): paths: unknown field",
                t.name
            )),
            "{lang}: {run:#?}"
        );
    }
}
