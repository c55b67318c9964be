//! What no `[[fs]]` grant may expose: Warden's own state, keys, cache and log.

use super::{Manifest, ManifestError};
use std::path::{Path, PathBuf};

/// Warden's own files and directories, which no `[[fs]]` grant may overlap.
///
/// A tool granted Warden's state could read the host key and forge checkpoints, read the
/// issuer key and grant itself anything, rewrite its own audit trail, drop its grant from
/// the revocation list, or plant machine code in the compiled-component cache. So a grant
/// is refused when it holds one of these paths, or lies inside a protected directory.
/// Paths are compared canonical (symlinks resolved; a path that does not exist yet by its
/// nearest existing ancestor), so a symlink to the state directory is no way around it.
///
/// A grant *beside* a file such as the audit log in use (a sibling directory) is allowed:
/// the tool's directory capability cannot reach out of it.
///
/// ```
/// use std::path::Path;
/// use warden::manifest::{Manifest, Protected};
///
/// let dir = tempfile::tempdir()?;
/// std::fs::create_dir(dir.path().join("logs"))?;
/// let text = "[tool]\nname = \"t\"\ncomponent = \"t.wasm\"\n\n[[fs]]\nhost = \"logs\"\nguest = \"/logs\"\n";
/// let m = Manifest::parse(text, &dir.path().join("t.toml"), cap_std::ambient_authority())?;
/// let log = Protected::new().audit_log(&dir.path().join("logs/audit.jsonl"));
/// let err = m.check_exposure(&log).unwrap_err().to_string();
/// assert!(err.contains("t.toml:6: fs[0].host: "), "{err}");
/// assert!(err.contains("holds the audit log in use"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Protected {
    /// Each path, canonical, with what it is.
    entries: Vec<(PathBuf, String)>,
}

impl Protected {
    /// Nothing protected.
    pub fn new() -> Protected {
        Protected::default()
    }

    /// Protects `path`, described as `what` (e.g. `the host key`) in errors.
    ///
    /// # Ambient Authority
    ///
    /// Canonicalizes `path`, or its nearest existing ancestor, by path.
    pub fn with(mut self, path: impl AsRef<Path>, what: impl Into<String>) -> Protected {
        self.entries
            .push((canonical_lenient(path.as_ref()), what.into()));
        self
    }

    /// Protects the audit log at `log` and its checkpoints.
    pub fn audit_log(self, log: &Path) -> Protected {
        self.with(log, "the audit log in use").with(
            crate::audit::log::checkpoints_path(log),
            "the audit log's checkpoints",
        )
    }

    /// Where Warden keeps its state for this user: the state directory, with the default
    /// audit log, the keys and the revocation list in it, and the compiled-component cache.
    ///
    /// # Ambient Authority
    ///
    /// Reads `XDG_STATE_HOME`, `XDG_CACHE_HOME` and `HOME` to find them.
    pub fn defaults() -> Protected {
        use crate::audit;
        let log = audit::default_path();
        let mut protected = Protected::new()
            .with(
                audit::state_dir(),
                "Warden's state directory (audit log, keys, revocation list)",
            )
            .with(audit::keys_dir(), "Warden's keys directory")
            .with(
                log.parent().unwrap_or(&log),
                "the default audit log's directory",
            )
            .with(audit::default_revocation_path(), "the revocation list");
        if let Some(cache) = crate::engine::default_cache_dir() {
            protected = protected.with(cache, "the compiled-component cache");
        }
        protected
    }

    /// Why a grant of the canonical directory `host` would expose a protected path, if it
    /// would. Inside a protected directory, the innermost one is named; holding protected
    /// paths, the outermost.
    fn exposed_by(&self, host: &Path) -> Option<String> {
        let inside = self
            .entries
            .iter()
            .filter(|(p, _)| host.starts_with(p))
            .max_by_key(|(p, _)| p.components().count());
        if let Some((p, what)) = inside {
            let relation = if host == p {
                "is".to_owned()
            } else {
                "lies inside".to_owned()
            };
            return Some(format!(
                "{} {relation} {what}, {}: a tool granted it could read or change what Warden \
                 keeps there; grant a directory outside it",
                host.display(),
                p.display()
            ));
        }
        let (p, what) = self
            .entries
            .iter()
            .filter(|(p, _)| p.starts_with(host))
            .min_by_key(|(p, _)| p.components().count())?;
        Some(format!(
            "{} holds {what}, {}: a tool granted it could read or replace it; grant a directory \
             that does not hold it",
            host.display(),
            p.display()
        ))
    }
}

/// `path` made absolute with symlinks resolved as far as it exists; what does not exist yet
/// is appended to the canonical form of its nearest existing ancestor.
fn canonical_lenient(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut missing = Vec::new();
    let mut at = absolute.as_path();
    loop {
        if let Ok(real) = at.canonicalize() {
            return missing.iter().rev().fold(real, |p, name| p.join(name));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                at = parent;
            }
            _ => return absolute,
        }
    }
}

impl Manifest {
    /// Refuses an `[[fs]]` grant that overlaps one of Warden's own files or directories
    /// (see [`Protected`]): the error names the grant's `fs[N].host`, what it would expose and
    /// where. [`Manifest::parse`] checks against [`Protected::defaults`]; a host that keeps
    /// its log or keys elsewhere checks those too, as `warden run` does for `--audit` and
    /// `--key`.
    ///
    /// # Ambient Authority
    ///
    /// Canonicalizes the protected paths (or their nearest existing ancestors) by path.
    pub fn check_exposure(&self, protected: &Protected) -> Result<(), ManifestError> {
        for (index, root) in self.fs_roots().iter().enumerate() {
            let grant = &root.grant;
            let Some(message) = protected.exposed_by(&grant.host) else {
                continue;
            };
            return Err(ManifestError::Invalid {
                path: self.path.clone(),
                line: self.fs_lines.get(index).copied().unwrap_or(0),
                field: format!("fs[{index}].host"),
                message,
            });
        }
        Ok(())
    }
}
