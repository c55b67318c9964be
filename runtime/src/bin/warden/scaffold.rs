//! `warden new <name> [--lang rust|python|js]`: a tool that builds into a
//! `wasm32-wasip2` component with its language's public toolchain and runs
//! with `warden run` as it is.
//!
//! The tool's files are templates under `runtime/templates/new/` (one
//! directory per language, plus the manifest and sample data they share),
//! and its `wit/` is a copy of this repository's `wit/`, all compiled into
//! the binary: the new tool never points back into a Warden checkout, and
//! its world is always the one this `warden` runs.
//!
//! Nothing half-written is left behind: the files are written into a hidden
//! staging directory on the same filesystem as the destination and moved
//! into place only once all of them are written; on any error the staging
//! directory is removed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The language of a new tool, and so its toolchain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// A Rust crate built by `cargo` with `wit-bindgen`.
    #[default]
    Rust,
    /// A Python module built by `componentize-py` (PyPI).
    Python,
    /// An ES module built by `componentize-js` (npm).
    Js,
}

impl Lang {
    /// Every language, in the order `--lang` lists them.
    pub const ALL: [Lang; 3] = [Lang::Rust, Lang::Python, Lang::Js];

    /// The name `--lang` takes.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// The commands that build the tool in its directory, as its README
    /// gives them: the toolchain's setup (once per machine for Rust and
    /// Python, once per tool for the packages of JavaScript), then the build.
    pub fn build_commands(self, name: &str) -> [String; 2] {
        match self {
            Lang::Rust => [
                "rustup target add wasm32-wasip2".into(),
                "cargo build --release --target wasm32-wasip2".into(),
            ],
            Lang::Python => [
                format!("pip install componentize-py=={COMPONENTIZE_PY}"),
                format!("componentize-py -d wit -w tool componentize app -o {name}.wasm"),
            ],
            Lang::Js => ["npm install".into(), "npm run build".into()],
        }
    }

    /// Whether the first of [`build_commands`](Self::build_commands) is done once per
    /// machine (a toolchain) rather than once per tool (JavaScript's `node_modules`).
    pub fn setup_per_machine(self) -> bool {
        self != Lang::Js
    }

    /// Where the build puts the component, relative to the tool's directory.
    pub fn component(self, name: &str) -> String {
        match self {
            Lang::Rust => format!("target/wasm32-wasip2/release/{}.wasm", crate_name(name)),
            Lang::Python | Lang::Js => format!("{name}.wasm"),
        }
    }

    /// The manifest's `memory` limit: an interpreter's heap starts at tens
    /// of MiB before the tool's own code runs.
    fn memory(self) -> &'static str {
        match self {
            Lang::Rust => "32 MiB",
            Lang::Python | Lang::Js => "64 MiB",
        }
    }

    fn files(self) -> &'static [File] {
        match self {
            Lang::Rust => RUST,
            Lang::Python => PYTHON,
            Lang::Js => JS,
        }
    }
}

impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Lang, String> {
        Lang::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| format!("unknown language {s:?}; expected rust, python or js"))
    }
}

/// The componentize-py release the Python template is written for and its
/// README installs.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The componentize-js release the JavaScript template pins in its
/// `package.json`.
pub const COMPONENTIZE_JS: &str = "0.23.0";

/// One file of a new tool: its path in the tool, its text, and whether the
/// text is a template (`{{name}}` and the like) or copied as it is.
struct File {
    path: &'static str,
    text: &'static str,
    template: bool,
}

macro_rules! template {
    ($path:literal, $source:literal) => {
        File {
            path: $path,
            text: include_str!(concat!("../../../templates/new/", $source)),
            template: true,
        }
    };
}

macro_rules! wit {
    ($path:literal) => {
        File {
            path: concat!("wit/", $path),
            text: include_str!(concat!("../../../../wit/", $path)),
            template: false,
        }
    };
}

/// The files every language's tool has: the manifest, its sample data, and
/// the world with every WASI package its `include`s reach (the bindings
/// generators need them all).
const COMMON: &[File] = &[
    template!("manifest.toml", "manifest.toml"),
    template!("data/hello.txt", "data/hello.txt"),
    wit!("tool.wit"),
    wit!("deps/cli/cli.wit"),
    wit!("deps/clocks/clocks.wit"),
    wit!("deps/filesystem/filesystem.wit"),
    wit!("deps/http/http.wit"),
    wit!("deps/io/io.wit"),
    wit!("deps/random/random.wit"),
    wit!("deps/sockets/sockets.wit"),
];

const RUST: &[File] = &[
    template!("Cargo.toml", "rust/Cargo.toml.tmpl"),
    template!("README.md", "rust/README.md"),
    // Not `.gitignore` in the templates, where git would obey it.
    template!(".gitignore", "rust/gitignore"),
    template!("src/lib.rs", "rust/src/lib.rs"),
];

const PYTHON: &[File] = &[
    template!("app.py", "python/app.py"),
    template!("README.md", "python/README.md"),
    template!(".gitignore", "python/gitignore"),
];

const JS: &[File] = &[
    template!("app.js", "js/app.js"),
    template!("fs.js", "js/fs.js"),
    template!("package.json", "js/package.json"),
    template!("README.md", "js/README.md"),
    template!(".gitignore", "js/gitignore"),
];

/// The input the README and the next steps show for the sample tool.
pub const SAMPLE_INPUT: &str = r#"{"path":"hello.txt"}"#;

/// Why `warden new` made nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NewError {
    /// The name is not usable as both a crate name and a tool name.
    #[error("invalid name {name:?}: {reason}")]
    Name {
        /// The name given.
        name: String,
        /// The rule it breaks, and how.
        reason: String,
    },
    /// The destination exists and holds something, or is not a directory.
    #[error(
        "{}: already exists{}; choose another name or --path, or move it away",
        path.display(),
        if *not_dir { " and is not a directory" } else { " and is not empty" }
    )]
    Exists {
        /// The destination.
        path: PathBuf,
        /// It is a file (or a symlink) rather than a non-empty directory.
        not_dir: bool,
    },
    /// The directory the destination would go in does not exist.
    #[error("{}: no such directory; create it first, or choose another --path", path.display())]
    NoParent {
        /// The missing parent directory.
        path: PathBuf,
    },
    /// Reading or writing the filesystem failed; nothing was left behind.
    #[error("{}: cannot {action}: {error}", path.display())]
    Io {
        /// The path the operation was on.
        path: PathBuf,
        /// What was being done, e.g. `write`.
        action: &'static str,
        /// The OS error.
        error: io::Error,
    },
}

fn io_error(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> NewError {
    let path = path.to_path_buf();
    move |error| NewError::Io {
        path,
        action,
        error,
    }
}

/// Checks that `name` works as a Warden tool name and a file name, an npm
/// package name, and for Rust a Cargo package and crate name: lowercase
/// ASCII letters, digits, `-` and `_`, starting with a letter, and for Rust
/// not a name Cargo refuses.
pub fn check_name(name: &str, lang: Lang) -> Result<(), NewError> {
    let bad = |reason: String| NewError::Name {
        name: name.into(),
        reason,
    };
    let Some(first) = name.chars().next() else {
        return Err(bad("must not be empty".into()));
    };
    if !first.is_ascii_lowercase() {
        return Err(bad(format!(
            "must start with a lowercase letter (a-z), not {first:?}"
        )));
    }
    if let Some((i, c)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
    {
        return Err(bad(format!(
            "{c:?} (character {}) is not allowed: use lowercase letters (a-z), digits, '-' and '_'",
            i + 1
        )));
    }
    if lang != Lang::Rust {
        return Ok(());
    }
    // Cargo compares these with `-` read as `_`, as in the library's name.
    let crate_name = crate_name(name);
    if KEYWORDS.contains(&crate_name.as_str()) {
        return Err(bad(
            "is a Rust keyword, which Cargo refuses as a package name".into(),
        ));
    }
    if let Some(taken) = TAKEN.iter().find(|(n, _)| *n == crate_name) {
        return Err(bad(format!("is the name of {}", taken.1)));
    }
    Ok(())
}

/// Rust's keywords, strict and reserved (2024 edition), that pass the
/// character rules.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Crate names the new crate cannot have: it could not depend on, or link
/// beside, the crate of that name.
const TAKEN: &[(&str, &str)] = &[
    ("std", "a Rust built-in crate"),
    ("core", "a Rust built-in crate"),
    ("alloc", "a Rust built-in crate"),
    ("proc_macro", "a Rust built-in crate"),
    ("test", "a Rust built-in crate"),
    ("wit_bindgen", "a dependency of the new crate"),
    ("serde_json", "a dependency of the new crate"),
];

/// The crate's library name, which names the built `.wasm`: `-` becomes `_`.
pub fn crate_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The files of a new `lang` tool `name`: (path in the tool, text).
fn files(name: &str, lang: Lang) -> Vec<(&'static str, String)> {
    let build = lang.build_commands(name);
    COMMON
        .iter()
        .chain(lang.files())
        .map(|f| {
            let text = if f.template {
                f.text
                    .replace("{{name}}", name)
                    .replace("{{crate_name}}", &crate_name(name))
                    .replace("{{build}}", &build[1])
                    .replace("{{component}}", &lang.component(name))
                    .replace("{{memory}}", lang.memory())
                    .replace("{{componentize_py}}", COMPONENTIZE_PY)
                    .replace("{{componentize_js}}", COMPONENTIZE_JS)
            } else {
                f.text.to_owned()
            };
            (f.path, text)
        })
        .collect()
}

/// Creates the `lang` tool `name` at `dest`, which must not exist or be an
/// empty directory, inside a directory that exists. On error nothing is left
/// behind (an empty `dest` stays empty).
///
/// # Ambient Authority
///
/// Writes wherever `dest` names, with the user's own rights: this is the
/// CLI, acting for its user.
pub fn create(name: &str, lang: Lang, dest: &Path) -> Result<(), NewError> {
    check_name(name, lang)?;
    let existing = check_destination(dest)?;
    // Staged on the destination's filesystem, so that moving it in is a rename.
    let staging = if existing {
        Staging::create(dest)?
    } else {
        Staging::create(parent(dest))?
    };
    for (path, text) in files(name, lang) {
        staging.write(path, &text)?;
    }
    if existing {
        staging.move_into(dest)
    } else {
        staging.rename_to(dest)
    }
}

/// Whether `dest` is an existing empty directory (`true`) or free to
/// create (`false`); an error for anything else.
fn check_destination(dest: &Path) -> Result<bool, NewError> {
    match fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(dest).map_err(io_error(dest, "read"))?;
            match entries.next() {
                None => Ok(true),
                Some(_) => Err(NewError::Exists {
                    path: dest.into(),
                    not_dir: false,
                }),
            }
        }
        Ok(_) => Err(NewError::Exists {
            path: dest.into(),
            not_dir: true,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = parent(dest);
            if parent.is_dir() {
                Ok(false)
            } else {
                Err(NewError::NoParent {
                    path: parent.into(),
                })
            }
        }
        Err(e) => Err(io_error(dest, "read")(e)),
    }
}

/// The directory `dest` goes in; `.` for a bare name.
fn parent(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A hidden directory the new files are written into; removed on drop
/// unless its contents were moved into place.
struct Staging {
    dir: PathBuf,
    done: bool,
}

impl Staging {
    fn create(inside: &Path) -> Result<Staging, NewError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = inside.join(format!(".warden-new-{}-{nanos}", std::process::id()));
        fs::create_dir(&dir).map_err(io_error(&dir, "create directory"))?;
        Ok(Staging { dir, done: false })
    }

    fn write(&self, path: &str, text: &str) -> Result<(), NewError> {
        let path = self.dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_error(parent, "create directory"))?;
        }
        fs::write(&path, text).map_err(io_error(&path, "write"))
    }

    /// Renames the staging directory to `dest`, which does not exist.
    fn rename_to(mut self, dest: &Path) -> Result<(), NewError> {
        match fs::rename(&self.dir, dest) {
            Ok(()) => {
                self.done = true;
                Ok(())
            }
            // Someone made it since the check.
            Err(e) if dest.exists() => Err(NewError::Exists {
                path: dest.into(),
                not_dir: !dest.is_dir() || e.kind() == io::ErrorKind::NotADirectory,
            }),
            Err(e) => Err(io_error(dest, "create")(e)),
        }
    }

    /// Moves each top-level entry into `dest`, the empty directory the
    /// staging directory is in. The directory itself stays, so a shell
    /// whose working directory it is still sees the new files.
    fn move_into(self, dest: &Path) -> Result<(), NewError> {
        // Listed before moving: a directory read while it changes may skip entries.
        let entries = fs::read_dir(&self.dir)
            .and_then(|entries| entries.collect::<io::Result<Vec<_>>>())
            .map_err(io_error(&self.dir, "read"))?;
        let mut moved = Vec::new();
        for entry in entries {
            let to = dest.join(entry.file_name());
            if let Err(e) = fs::rename(entry.path(), &to) {
                // Put back what moved, so that `dest` is as empty as it was;
                // the staging directory and the rest go on drop.
                for (from, to) in moved.into_iter().rev() {
                    let _ = fs::rename(to, from);
                }
                return Err(io_error(&to, "move into place")(e));
            }
            moved.push((entry.path(), to));
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: an error here would hide the one being reported.
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> String {
        match check_name(name, Lang::Rust) {
            Err(NewError::Name { reason, .. }) => reason,
            other => panic!("{name:?}: expected a name error, got {other:?}"),
        }
    }

    #[test]
    fn good_names_pass() {
        for name in ["demo", "demo-tool", "repo_search", "a1", "x-2_y"] {
            for lang in Lang::ALL {
                check_name(name, lang).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }

    #[test]
    fn bad_names_name_the_rule_and_the_character() {
        assert_eq!(reason(""), "must not be empty");
        assert_eq!(
            reason("1tool"),
            "must start with a lowercase letter (a-z), not '1'"
        );
        assert_eq!(
            reason("-tool"),
            "must start with a lowercase letter (a-z), not '-'"
        );
        assert_eq!(
            reason("Demo"),
            "must start with a lowercase letter (a-z), not 'D'"
        );
        assert_eq!(
            reason("demo.tool"),
            "'.' (character 5) is not allowed: use lowercase letters (a-z), digits, '-' and '_'"
        );
        assert!(reason("demoTool").starts_with("'T' (character 5)"));
        assert!(reason("dé").starts_with("'é' (character 2)"));
        assert!(reason("a/b").starts_with("'/' (character 2)"));
        assert!(reason("fn").contains("Rust keyword"));
        assert!(reason("std").contains("built-in crate"));
        assert!(reason("wit-bindgen").contains("dependency"));
        let err = check_name("my tool", Lang::Python).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid name \"my tool\": ' ' (character 3)"),
            "{err}"
        );
    }

    #[test]
    fn rust_keywords_are_refused_only_for_rust() {
        assert!(check_name("async", Lang::Rust).is_err());
        check_name("async", Lang::Python).unwrap();
        check_name("async", Lang::Js).unwrap();
    }

    fn get<'a>(files: &'a [(&str, String)], path: &str) -> &'a str {
        &files
            .iter()
            .find(|(p, _)| *p == path)
            .unwrap_or_else(|| panic!("{path} missing"))
            .1
    }

    #[test]
    fn templates_are_filled_and_wit_is_copied_as_is() {
        for lang in Lang::ALL {
            let files = files("demo-tool", lang);
            for (path, text) in &files {
                assert!(
                    !text.contains("{{"),
                    "{lang:?} {path} has an unfilled placeholder"
                );
            }
            let component = format!("component = \"{}\"", lang.component("demo-tool"));
            assert!(
                get(&files, "manifest.toml").contains(&component),
                "{lang:?}"
            );
            assert_eq!(
                get(&files, "wit/tool.wit"),
                include_str!("../../../../wit/tool.wit")
            );
            // The README gives the build, which the manifest names as what makes the component.
            let readme = get(&files, "README.md");
            for command in lang.build_commands("demo-tool") {
                let given = readme
                    .lines()
                    .any(|l| l == command || l.starts_with(&format!("{command} ")));
                assert!(given, "{lang:?}: {command}");
            }
            let [_, build] = lang.build_commands("demo-tool");
            assert!(
                get(&files, "manifest.toml").contains(&format!("`{build}`")),
                "{lang:?}"
            );
        }
        let rust = files("demo-tool", Lang::Rust);
        assert!(get(&rust, "Cargo.toml").contains("name = \"demo-tool\""));
        assert!(get(&rust, "src/lib.rs").contains("name: \"demo-tool\".into()"));
        let python = files("demo-tool", Lang::Python);
        assert!(get(&python, "app.py").contains("name=\"demo-tool\""));
        let js = files("demo-tool", Lang::Js);
        assert!(get(&js, "app.js").contains("name: 'demo-tool'"));
        let package: serde_json::Value = serde_json::from_str(get(&js, "package.json")).unwrap();
        assert_eq!(package["name"], "demo-tool");
        assert_eq!(
            package["devDependencies"]["@bytecodealliance/componentize-js"],
            COMPONENTIZE_JS
        );
    }

    /// Every WASI package the world's `use`s and `include`s reach is there.
    #[test]
    fn wit_deps_cover_every_package_the_world_uses() {
        let files = files("demo", Lang::Rust);
        let wit: String = files
            .iter()
            .filter(|(p, _)| p.starts_with("wit/"))
            .map(|(_, t)| t.as_str())
            .collect();
        for package in wit
            .split(|c: char| c.is_whitespace() || c == ';')
            .filter_map(|w| w.strip_prefix("wasi:"))
            .filter_map(|w| w.split(['/', '@']).next())
        {
            assert!(
                files
                    .iter()
                    .any(|(p, _)| p.starts_with(&format!("wit/deps/{package}/"))),
                "wasi:{package} is used but not in wit/deps"
            );
        }
    }

    #[test]
    fn creates_the_crate() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("demo-tool");
        create("demo-tool", Lang::Rust, &dest).unwrap();
        for f in COMMON.iter().chain(RUST) {
            assert!(dest.join(f.path).is_file(), "{} missing", f.path);
        }
        // Only the crate: no staging directory left beside it.
        let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
        for lang in [Lang::Python, Lang::Js] {
            let dest = tmp.path().join(lang.name());
            create("demo-tool", lang, &dest).unwrap();
            for f in COMMON.iter().chain(lang.files()) {
                assert!(dest.join(f.path).is_file(), "{lang:?}: {} missing", f.path);
            }
        }
    }

    #[test]
    fn fills_an_empty_directory_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        create("demo", Lang::Rust, tmp.path()).unwrap();
        assert!(tmp.path().join("Cargo.toml").is_file());
        let hidden: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".warden-new"))
            .collect();
        assert!(hidden.is_empty(), "{hidden:?}");
    }

    #[test]
    fn refuses_a_non_empty_directory_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("demo");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("notes.txt"), "mine").unwrap();
        let err = create("demo", Lang::Rust, &dest).unwrap_err();
        assert!(matches!(err, NewError::Exists { not_dir: false, .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "{}: already exists and is not empty; choose another name or --path, or move it away",
                dest.display()
            )
        );
        let names: Vec<_> = fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["notes.txt"]);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("demo");
        fs::write(&dest, "mine").unwrap();
        let err = create("demo", Lang::Rust, &dest).unwrap_err();
        assert!(
            err.to_string()
                .contains("already exists and is not a directory"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&dest).unwrap(), "mine");
    }

    #[test]
    fn refuses_a_missing_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("no/such/demo");
        let err = create("demo", Lang::Rust, &dest).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: no such directory; create it first, or choose another --path",
                tmp.path().join("no/such").display()
            )
        );
        assert!(!tmp.path().join("no").exists());
    }

    #[test]
    fn a_bad_name_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(create("Bad", Lang::Rust, &tmp.path().join("Bad")).is_err());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_unfinished_staging_directory_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let staging = Staging::create(tmp.path()).unwrap();
            staging.write("src/lib.rs", "half").unwrap();
            // An error between writing and moving returns early, dropping it.
        }
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
