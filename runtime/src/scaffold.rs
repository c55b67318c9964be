//! `warden new <name>`: a tool crate that builds for `wasm32-wasip2` and
//! runs with `warden run` as it is.
//!
//! The crate's files are templates under `runtime/templates/new/`, and its
//! `wit/` is a copy of this repository's `wit/`, both compiled into the
//! binary: the new crate never points back into a Warden checkout, and its
//! world is always the one this `warden` runs.
//!
//! Nothing half-written is left behind: the files are written into a hidden
//! staging directory on the same filesystem as the destination and moved
//! into place only once all of them are written; on any error the staging
//! directory is removed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One file of a new crate: its path in the crate, its text, and whether the
/// text is a template (`{{name}}`, `{{crate_name}}`) or copied as it is.
struct File {
    path: &'static str,
    text: &'static str,
    template: bool,
}

macro_rules! template {
    ($path:literal, $source:literal) => {
        File {
            path: $path,
            text: include_str!(concat!("../templates/new/", $source)),
            template: true,
        }
    };
}

macro_rules! wit {
    ($path:literal) => {
        File {
            path: concat!("wit/", $path),
            text: include_str!(concat!("../../wit/", $path)),
            template: false,
        }
    };
}

/// Every file of a new crate. The world includes `wasi:cli/imports` and
/// `wasi:http/outgoing-handler`, so wit-bindgen needs every WASI package
/// those reach.
const FILES: &[File] = &[
    template!("Cargo.toml", "Cargo.toml.tmpl"),
    template!("manifest.toml", "manifest.toml"),
    template!("README.md", "README.md"),
    // Not `.gitignore` in the templates, where git would obey it.
    template!(".gitignore", "gitignore"),
    template!("src/lib.rs", "src/lib.rs"),
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

/// Checks that `name` works as a Cargo package name, a Rust crate name and a
/// Warden tool name: lowercase ASCII letters, digits, `-` and `_`, starting
/// with a letter, and not a name Cargo refuses.
pub fn check_name(name: &str) -> Result<(), NewError> {
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

/// The files of a new crate for the tool `name`: (path in the crate, text).
fn files(name: &str) -> Vec<(&'static str, String)> {
    FILES
        .iter()
        .map(|f| {
            let text = if f.template {
                f.text
                    .replace("{{name}}", name)
                    .replace("{{crate_name}}", &crate_name(name))
            } else {
                f.text.to_owned()
            };
            (f.path, text)
        })
        .collect()
}

/// Creates the crate of tool `name` at `dest`, which must not exist or be an
/// empty directory, inside a directory that exists. On error nothing is left
/// behind (an empty `dest` stays empty).
///
/// # Ambient Authority
///
/// Writes wherever `dest` names, with the user's own rights: this is the
/// CLI, acting for its user.
pub fn create(name: &str, dest: &Path) -> Result<(), NewError> {
    check_name(name)?;
    let existing = check_destination(dest)?;
    // Staged on the destination's filesystem, so that moving it in is a rename.
    let staging = if existing {
        Staging::create(dest)?
    } else {
        Staging::create(parent(dest))?
    };
    for (path, text) in files(name) {
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
        match check_name(name) {
            Err(NewError::Name { reason, .. }) => reason,
            other => panic!("{name:?}: expected a name error, got {other:?}"),
        }
    }

    #[test]
    fn good_names_pass() {
        for name in ["demo", "demo-tool", "repo_search", "a1", "x-2_y"] {
            check_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
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
        let err = check_name("my tool").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid name \"my tool\": ' ' (character 3)"),
            "{err}"
        );
    }

    #[test]
    fn templates_are_filled_and_wit_is_copied_as_is() {
        let files = files("demo-tool");
        for (path, text) in &files {
            assert!(!text.contains("{{"), "{path} has an unfilled placeholder");
        }
        let get = |p: &str| &files.iter().find(|(path, _)| *path == p).unwrap().1;
        assert!(get("Cargo.toml").contains("name = \"demo-tool\""));
        assert!(
            get("manifest.toml")
                .contains("component = \"target/wasm32-wasip2/release/demo_tool.wasm\"")
        );
        assert!(get("src/lib.rs").contains("name: \"demo-tool\".into()"));
        assert_eq!(get("wit/tool.wit"), include_str!("../../wit/tool.wit"));
    }

    /// Every WASI package the world's `use`s and `include`s reach is there.
    #[test]
    fn wit_deps_cover_every_package_the_world_uses() {
        let files = files("demo");
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
        create("demo-tool", &dest).unwrap();
        for f in FILES {
            assert!(dest.join(f.path).is_file(), "{} missing", f.path);
        }
        // Only the crate: no staging directory left beside it.
        let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn fills_an_empty_directory_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        create("demo", tmp.path()).unwrap();
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
        let err = create("demo", &dest).unwrap_err();
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
        let err = create("demo", &dest).unwrap_err();
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
        let err = create("demo", &dest).unwrap_err();
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
        assert!(create("Bad", &tmp.path().join("Bad")).is_err());
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
