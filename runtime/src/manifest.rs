//! The tool manifest: one TOML file per tool, the ceiling of what it may ever touch.
//!
//! ```toml
//! [tool]
//! name = "repo-search"
//! component = "repo_search.wasm"     # relative to this file, or absolute
//! digest = "blake3:…"                # optional pin: load refuses a mismatch
//!
//! [limits]
//! memory = "64 MiB"
//! timeout = "5s"
//! fuel = 5_000_000_000               # optional
//! output = "1 MiB"
//!
//! [[fs]]
//! host = "./workspace"               # relative to this file, or absolute
//! guest = "/workspace"
//! access = "read"                    # read | read-write
//! approval = "none"                  # none | required (read-write only): each change asks
//!
//! [env]
//! vars = { LANG = "C.UTF-8" }        # literal values
//! pass = ["TZ"]                      # copied from the host env by name, if set
//!
//! [[http]]
//! url = "https://api.example.com/v1/" # scheme://host[:port][/path-prefix]
//! methods = ["GET", "POST"]
//! approval = "required"              # none | required: requests other than GET, HEAD, OPTIONS ask
//!
//! [[tcp]]
//! connect = "db.example.com:5432"    # host:port; host may be *.suffix, an IP or a network
//!
//! [[secrets]]
//! name = "github"
//! source = "env:GITHUB_TOKEN"        # env:NAME | file:PATH | vault:MOUNT/PATH#FIELD
//! purpose = "read issues"
//! inject = { url = "https://api.github.com/", header = "authorization", format = "Bearer {}" }
//! approval = "none"                  # none | required: each use asks
//!
//! [policy]
//! file = "policy.rego"               # optional Rego policy, relative to this file
//!
//! [audit]
//! level = "calls"                    # calls | full
//! ```
//!
//! Only `[tool]` is required. What a section does not grant is denied: no `[[fs]]` means no
//! files, no `[env]` means an empty environment, no `[[http]]` means no HTTP requests, no
//! `[[tcp]]` means no sockets and no DNS, and no `[[secrets]]` means no secrets; no `[policy]`
//! leaves every decision to the grant. Clocks and random numbers are always available. Each
//! section is defined, documented and validated next to its capability in
//! `warden_host_api` ([`fs::manifest`](warden_host_api::fs::manifest),
//! [`env::manifest`](warden_host_api::env::manifest),
//! [`http::manifest`](warden_host_api::http::manifest),
//! [`sockets::manifest`](warden_host_api::sockets::manifest),
//! [`secrets::manifest`](warden_host_api::secrets::manifest),
//! [`policy::manifest`](warden_host_api::policy::manifest),
//! [`limits::manifest`](warden_host_api::limits::manifest)); this module puts them together,
//! and collects the `approval = "required"` keys of all sections into one set of
//! [`Gates`] ([`approval`](warden_host_api::approval)).
//!
//! # Errors
//!
//! Every key is checked, unknown keys included, and the first problem is reported as one
//! line naming the file as it was given, the 1-based line, and the dotted field:
//!
//! ```text
//! warden.toml:14: fs[1].access: expected "read" or "read-write", found "rw"
//! ```
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use warden::manifest::{AuditLevel, Manifest};
//!
//! let manifest = Manifest::parse(
//!     r#"
//!     [tool]
//!     name = "hello"
//!     component = "hello.wasm"
//!     "#,
//!     Path::new("/etc/warden/hello.toml"),
//! )
//! .unwrap();
//! assert_eq!(manifest.tool.component, Path::new("/etc/warden/hello.wasm"));
//! assert!(manifest.fs.is_empty());
//! assert_eq!(manifest.audit.level, AuditLevel::Calls);
//!
//! let err = Manifest::parse("[tool]\nname = \"hello\"\n", Path::new("hello.toml")).unwrap_err();
//! assert_eq!(err.to_string(), "hello.toml:1: tool.component: missing required field");
//! ```

use std::fmt::{self, Write as _};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};
use warden_host_api::approval::Gates;
use warden_host_api::env::manifest::{EnvSection, RawEnvSection};
use warden_host_api::fs::manifest::{FsGrant, RawFsGrant, RootGrant, resolve_grants};
use warden_host_api::grant::Capabilities;
use warden_host_api::http::manifest::{HttpGrant, RawHttpRule, resolve_rules};
use warden_host_api::limits::manifest::{Limits, RawLimits, format_duration};
use warden_host_api::policy::manifest::{PolicySection, RawPolicySection};
use warden_host_api::secrets::manifest::{RawSecret, SecretSpec, Source, resolve_secrets};
use warden_host_api::sockets::manifest::{RawTcpRule, TcpRule, resolve_rules as resolve_tcp_rules};

/// A loaded and validated tool manifest.
///
/// Built by [`Manifest::load`] or [`Manifest::parse`]; every path in it is absolute and
/// every value is within bounds.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest's path as given by the user; errors and `warden check` show it as is.
    pub path: PathBuf,
    /// `[tool]`: what to run.
    pub tool: ToolSection,
    /// `[limits]`, with defaults for whatever the manifest leaves out.
    pub limits: Limits,
    /// `[[fs]]`: the directories the tool sees, in manifest order.
    pub fs: Vec<FsGrant>,
    /// `[env]`: the environment the tool sees.
    pub env: EnvSection,
    /// `[[http]]`: the URLs the tool may request, in manifest order.
    pub http: Vec<HttpGrant>,
    /// `[[tcp]]`: where the tool may open TCP connections, in manifest order; none means
    /// no sockets and no name lookup.
    pub tcp: Vec<TcpRule>,
    /// `[[secrets]]`: the credentials the host holds for the tool, in manifest order.
    pub secrets: Vec<SecretSpec>,
    /// `[policy]`: the Rego policy, compiled, if the manifest names one.
    pub policy: Option<PolicySection>,
    /// `[audit]`: how much the audit log records.
    pub audit: AuditSection,
    /// Every `approval = "required"` of `[[fs]]`, `[[http]]` and `[[secrets]]`: where calls
    /// wait for an approver. Empty unless the manifest says so.
    pub approval: Gates,
    /// Guest paths of the `[[fs]]` grants with `special = true`: FIFOs, sockets and devices
    /// at or below one may be opened, and its calls run off the task's thread. Kept by
    /// guest path, like the approval gates, so it holds for grants narrowed from them.
    pub fs_special: Vec<String>,
    /// Line of `tool.digest`, for the mismatch error of [`Manifest::verify_digest`].
    digest_line: usize,
    /// Line of each `fs[N].host`, for [`Manifest::check_exposure`].
    fs_lines: Vec<usize>,
    /// The `[[fs]]` grants as resolved at load, with the directory each host path named:
    /// what a task's directories are opened from, whatever grant it runs under.
    fs_roots: Vec<RootGrant>,
}

/// The `[tool]` section: what to run.
///
/// ```toml
/// [tool]
/// name = "repo-search"
/// component = "repo_search.wasm"
/// digest = "blake3:4f1c…"   # 64 hex digits
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSection {
    /// The tool's name, as agents and the audit log see it; never empty.
    pub name: String,
    /// The component file, resolved against the manifest's directory and made absolute
    /// (symlinks are not resolved). Whether it exists is checked when it is loaded.
    pub component: PathBuf,
    /// The pinned digest of the component's bytes, if any; see [`Manifest::verify_digest`].
    pub digest: Option<Digest>,
}

/// The `[audit]` section.
///
/// ```toml
/// [audit]
/// level = "full"
/// max-records = 1_000_000    # per task, besides its task.end; default 100000
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSection {
    /// How much is recorded; `calls` unless the manifest says otherwise.
    pub level: AuditLevel,
    /// How many records one task may write besides its `task.end`; a task that wants
    /// more ends, so that no tool can fill the disk every other tool logs to.
    pub max_records: u64,
}

impl Default for AuditSection {
    fn default() -> AuditSection {
        AuditSection {
            level: AuditLevel::default(),
            max_records: warden_host_api::audit::DEFAULT_RECORD_BUDGET,
        }
    }
}

/// How much the audit log records for a tool: `level = "calls"` or `level = "full"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuditLevel {
    /// One record per capability-relevant call (path operations, opens, env, HTTP, secrets
    /// ...); high-frequency stream reads, writes and polls are summed per handle.
    #[default]
    Calls,
    /// One record for every host call, stream reads and polls included.
    Full,
}

impl AuditLevel {
    /// The manifest spelling: `"calls"` or `"full"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditLevel::Calls => "calls",
            AuditLevel::Full => "full",
        }
    }
}

impl fmt::Display for AuditLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditLevel {
    type Err = String;

    /// Fails with a message naming the value, e.g. `expected "calls" or "full", found "all"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "calls" => Ok(AuditLevel::Calls),
            "full" => Ok(AuditLevel::Full),
            other => Err(format!("expected \"calls\" or \"full\", found {other:?}")),
        }
    }
}

impl<'de> Deserialize<'de> for AuditLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A BLAKE3 digest of a component's bytes, written `blake3:` and 64 lowercase hex digits.
///
/// ```
/// use warden::manifest::Digest;
///
/// let d = Digest::of(b"");
/// assert_eq!(
///     d.to_string(),
///     "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
/// );
/// assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(blake3::Hash);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(blake3::hash(bytes))
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{}", self.0.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not `blake3:` followed by 64 hex digits; carries it as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected \"blake3:\" followed by 64 hex digits, found {0:?}")]
pub struct DigestError(pub String);

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix("blake3:")
            .filter(|hex| hex.len() == 64)
            .and_then(|hex| blake3::Hash::from_hex(hex).ok())
            .map(Digest)
            .ok_or_else(|| DigestError(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

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
/// let m = Manifest::parse(text, &dir.path().join("t.toml"))?;
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

/// Why a manifest was refused.
///
/// `Display` is one line, `FILE:LINE: FIELD: MESSAGE` (or `FILE:LINE: MESSAGE` for a TOML
/// syntax error), with the file as the user gave it, a 1-based line and a dotted field
/// path with array indices, e.g.
/// `warden.toml:14: fs[1].access: expected "read" or "read-write", found "rw"`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The manifest file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read manifest: {error}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The path as given.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// What the TOML parser expected, lowercase.
        message: String,
    },
    /// A field is missing, unknown, of the wrong type or has a value that is not allowed.
    #[error("{}:{line}: {field}: {message}", path.display())]
    Invalid {
        /// The path as given.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// Dotted path of the field, e.g. `fs[1].access`.
        field: String,
        /// What is wrong, lowercase, carrying the offending value.
        message: String,
    },
    /// The component's bytes do not match the manifest's `tool.digest`.
    #[error("{}:{line}: tool.digest: component digest mismatch: expected {expected}, found {actual}", path.display())]
    DigestMismatch {
        /// The path as given.
        path: PathBuf,
        /// 1-based line of `tool.digest`.
        line: usize,
        /// The digest the manifest pins.
        expected: Digest,
        /// The digest of the bytes that were offered.
        actual: Digest,
    },
}

impl ManifestError {
    /// The manifest path, as given.
    pub fn path(&self) -> &Path {
        match self {
            ManifestError::Read { path, .. }
            | ManifestError::Syntax { path, .. }
            | ManifestError::Invalid { path, .. }
            | ManifestError::DigestMismatch { path, .. } => path,
        }
    }

    /// The 1-based line the error is about, if it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ManifestError::Read { .. } => None,
            ManifestError::Syntax { line, .. }
            | ManifestError::Invalid { line, .. }
            | ManifestError::DigestMismatch { line, .. } => Some(*line),
        }
    }

    /// The dotted field the error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ManifestError::Invalid { field, .. } => Some(field),
            ManifestError::DigestMismatch { .. } => Some("tool.digest"),
            ManifestError::Read { .. } | ManifestError::Syntax { .. } => None,
        }
    }
}

/// The whole file as written. Sections that belong to a capability are defined in
/// `warden_host_api`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    tool: Option<RawTool>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    fs: Vec<RawFsGrant>,
    #[serde(default)]
    env: RawEnvSection,
    #[serde(default)]
    http: Vec<RawHttpRule>,
    #[serde(default)]
    tcp: Vec<RawTcpRule>,
    #[serde(default)]
    secrets: Vec<RawSecret>,
    #[serde(default)]
    policy: Option<RawPolicySection>,
    #[serde(default)]
    audit: RawAudit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: Spanned<String>,
    component: Spanned<PathBuf>,
    #[serde(default)]
    digest: Option<Spanned<Digest>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    #[serde(default)]
    level: AuditLevel,
    #[serde(default, rename = "max-records")]
    max_records: Option<Spanned<u64>>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    ///
    /// Relative paths inside it are resolved against its directory.
    ///
    /// # Ambient Authority
    ///
    /// Reads the manifest and the `[policy]` file, and checks each `[[fs]]` host directory
    /// by path, with the authority of the process.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let src = std::fs::read_to_string(path).map_err(|error| ManifestError::Read {
            path: path.to_owned(),
            error,
        })?;
        Manifest::parse(&src, path)
    }

    /// Validates the manifest text `src` as if it had been read from `path`.
    ///
    /// `path` prefixes every error, and relative paths in the manifest are resolved against
    /// its directory (against the current directory if it has none).
    ///
    /// # Ambient Authority
    ///
    /// Reads and compiles the `[policy]` file and checks each `[[fs]]` host directory by
    /// path, with the authority of the process.
    pub fn parse(src: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let cx = Context { src, path };
        let doc = DeTable::parse(src).map_err(|e| cx.syntax(&e))?;
        let raw: RawManifest = toml::from_str(src).map_err(|e| cx.serde(&e, doc.get_ref()))?;

        let base_dir = path.parent().unwrap_or(Path::new(""));
        let tool = raw
            .tool
            .ok_or_else(|| cx.invalid(0, "tool", "missing required section"))?;
        if tool.name.get_ref().trim().is_empty() {
            return Err(cx.invalid(tool.name.span().start, "tool.name", "must not be empty"));
        }
        if tool.component.get_ref().as_os_str().is_empty() {
            return Err(cx.invalid(
                tool.component.span().start,
                "tool.component",
                "must not be empty",
            ));
        }
        let component = base_dir.join(tool.component.get_ref());
        let component = std::path::absolute(&component).unwrap_or(component);
        let digest_line = tool.digest.as_ref().map_or(0, |d| cx.line(d.span().start));

        let limits = raw
            .limits
            .resolve()
            .map_err(|e| cx.invalid(e.span().start, e.field(), e))?;
        let fs_roots = resolve_grants(&raw.fs, base_dir, cap_std::ambient_authority())
            .map_err(|e| cx.invalid(e.span().start, e.field(), e))?;
        let fs: Vec<FsGrant> = fs_roots.iter().map(|r| r.grant.clone()).collect();
        let fs_lines = raw
            .fs
            .iter()
            .map(|r| cx.line(r.host.span().start))
            .collect();
        let env = raw
            .env
            .resolve()
            .map_err(|e| cx.invalid(e.span().start, e.field(), e))?;
        let http =
            resolve_rules(&raw.http).map_err(|e| cx.invalid(e.span().start, e.field(), &e))?;
        let tcp =
            resolve_tcp_rules(&raw.tcp).map_err(|e| cx.invalid(e.span().start, e.field(), e))?;
        let secrets = resolve_secrets(&raw.secrets, base_dir)
            .map_err(|e| cx.invalid(e.span().start, e.field(), e))?;
        // A variable a secret is read from is the secret: passing it to the tool would hand
        // the tool the value that `[[secrets]]` keeps on the host.
        for (i, name) in raw.env.pass.iter().enumerate() {
            let source = secrets
                .iter()
                .find(|s| matches!(&s.source, Source::Env { var } if var == name.get_ref()));
            if let Some(s) = source {
                return Err(cx.invalid(
                    name.span().start,
                    format!("env.pass[{i}]"),
                    format_args!(
                        "{:?} is where {} is read from (source = \"env:{}\"); passing it would give the tool the secret's value: remove it from env.pass",
                        name.get_ref(),
                        s.label(),
                        name.get_ref()
                    ),
                ));
            }
        }
        let policy = raw
            .policy
            .as_ref()
            .map(|p| p.resolve(base_dir, cap_std::ambient_authority()))
            .transpose()
            .map_err(|e| cx.invalid(e.span().start, e.field(), e))?;
        // Each entry resolved to one of the same index, in order.
        let approval = Gates {
            fs: (raw.fs.iter().zip(&fs))
                .filter(|(r, _)| r.approval().is_required())
                .map(|(_, g)| g.guest.clone())
                .collect(),
            http: (raw.http.iter().zip(&http))
                .filter(|(r, _)| r.approval().is_required())
                .map(|(_, g)| g.rule.clone())
                .collect(),
            secrets: (raw.secrets.iter().zip(&secrets))
                .filter(|(r, _)| r.approval().is_required())
                .map(|(_, s)| s.name.clone())
                .collect(),
        };

        let fs_special = (raw.fs.iter().zip(&fs))
            .filter(|(r, _)| r.special())
            .map(|(_, g)| g.guest.clone())
            .collect();

        Manifest {
            path: path.to_owned(),
            tool: ToolSection {
                name: tool.name.into_inner(),
                component,
                digest: tool.digest.map(Spanned::into_inner),
            },
            limits,
            fs,
            env,
            http,
            tcp,
            secrets,
            policy,
            audit: AuditSection {
                level: raw.audit.level,
                max_records: match &raw.audit.max_records {
                    Some(n) if *n.get_ref() == 0 => {
                        return Err(cx.invalid(
                            n.span().start,
                            "audit.max-records",
                            "must be at least 1: every task writes records",
                        ));
                    }
                    Some(n) => *n.get_ref(),
                    None => AuditSection::default().max_records,
                },
            },
            approval,
            fs_special,
            digest_line,
            fs_lines,
            fs_roots,
        }
        .exposing_nothing(&Protected::defaults())
    }

    /// This manifest, if none of its `[[fs]]` grants overlaps what `protected` names.
    fn exposing_nothing(self, protected: &Protected) -> Result<Manifest, ManifestError> {
        self.check_exposure(protected)?;
        Ok(self)
    }

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
        for (index, grant) in self.fs.iter().enumerate() {
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

    /// Checks `component_bytes` against `tool.digest`; without a pin, anything passes.
    ///
    /// The mismatch error names the line of `tool.digest` and both digests, so the user
    /// can tell a stale pin from a swapped component.
    pub fn verify_digest(&self, component_bytes: &[u8]) -> Result<(), ManifestError> {
        let Some(expected) = self.tool.digest else {
            return Ok(());
        };
        let actual = Digest::of(component_bytes);
        // blake3::Hash compares in constant time; not that the digest is secret, but it
        // costs nothing.
        if actual == expected {
            Ok(())
        } else {
            Err(ManifestError::DigestMismatch {
                path: self.path.clone(),
                line: self.digest_line,
                expected,
                actual,
            })
        }
    }

    /// The `[[fs]]` grants as resolved at load, each with the directory (device and inode)
    /// its host path named then. A task's directories are opened from these, under the
    /// manifest or a narrowed grant alike
    /// ([`FsState::open`](warden_host_api::fs::FsState::open)): a manifest grant's
    /// directory must still be the one resolved at load, and a narrowed one is reached from
    /// it without following symlinks.
    pub fn fs_roots(&self) -> &[RootGrant] {
        &self.fs_roots
    }

    /// The manifest's sections as its ceiling: everything a grant for this tool may hold.
    pub fn ceiling(&self) -> Capabilities {
        Capabilities::new(
            self.fs.clone(),
            self.http.clone(),
            self.tcp.clone(),
            &self.secrets,
            self.env.clone(),
            self.limits,
        )
    }

    /// This manifest with its sections replaced by `caps`, a grant's capabilities, which
    /// must be within [`ceiling`](Self::ceiling): the tool runs with no more than the grant.
    ///
    /// A narrowed directory is a sub-directory of a manifest grant, found by name; nothing
    /// is looked up on disk here. A task opens it through its manifest grant's directory
    /// and refuses a symlink on the way ([`fs_roots`](Self::fs_roots)).
    pub fn narrowed(&self, caps: &Capabilities) -> Result<Manifest, String> {
        self.ceiling().covers(caps).map_err(|w| w.to_string())?;
        let mut m = self.clone();
        m.fs = caps.fs().to_vec();
        m.http = caps.http().to_vec();
        m.tcp = caps.tcp().to_vec();
        m.env = caps.env().clone();
        m.limits = *caps.limits();
        m.secrets = self
            .secrets
            .iter()
            .filter_map(|spec| {
                let held = caps.secret(&spec.name)?;
                let mut spec = spec.clone();
                spec.reveal = spec.reveal && held.reveal;
                spec.hmac = spec.hmac && held.hmac;
                if !held.inject {
                    spec.inject = None;
                }
                Some(spec)
            })
            .collect();
        Ok(m)
    }

    /// A human-readable summary of everything the manifest grants, for `warden check`.
    ///
    /// Lists the tool, component, digest, limits, each directory with its access, the
    /// environment (literal values shown; pass-through names with whether the current
    /// environment sets them, never their values), each secret (name, provider and source,
    /// purpose, injection, TTL and whether it may sign or be revealed; never a value, and nothing is
    /// fetched), the policy and how it decides, and the audit level, and ends with what is
    /// denied.
    ///
    /// # Ambient Authority
    ///
    /// Reads the current process environment to tell whether each `pass` name is set.
    pub fn effective_grants(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_grants(&mut out);
        out
    }

    fn write_grants(&self, out: &mut String) -> fmt::Result {
        writeln!(out, "manifest: {}", self.path.display())?;
        writeln!(out, "tool: {}", self.tool.name)?;
        writeln!(out, "component: {}", self.tool.component.display())?;
        match &self.tool.digest {
            Some(digest) => writeln!(out, "digest: {digest} (the component must match)")?,
            None => writeln!(out, "digest: none (the component is not pinned)")?,
        }
        writeln!(out, "limits: {}", self.limits)?;
        if self.fs.is_empty() {
            writeln!(out, "fs: none")?;
        } else {
            writeln!(out, "fs:")?;
            for grant in &self.fs {
                let asks = if self.approval.fs.contains(&grant.guest) {
                    ", each change asks an approver"
                } else {
                    ""
                };
                let special = if self.fs_special.contains(&grant.guest) {
                    ", FIFOs, sockets and devices may be opened"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "  guest {} = host {} ({}{asks}{special})",
                    grant.guest,
                    grant.host.display(),
                    grant.access
                )?;
            }
        }
        if self.env.vars.is_empty() && self.env.pass.is_empty() {
            writeln!(out, "env: none")?;
        } else {
            writeln!(out, "env:")?;
            for (name, value) in &self.env.vars {
                writeln!(out, "  {name} = {value:?}")?;
            }
            for name in &self.env.pass {
                let state = if std::env::var_os(name).is_some() {
                    "set here"
                } else {
                    "not set here, so the tool would not see it"
                };
                writeln!(out, "  {name} passed from the host environment ({state})")?;
            }
        }
        if self.http.is_empty() {
            writeln!(out, "http: none")?;
        } else {
            writeln!(out, "http:")?;
            for (i, grant) in self.http.iter().enumerate() {
                let asks = if self.approval.http.contains(&grant.rule) {
                    "; requests other than GET, HEAD and OPTIONS ask an approver"
                } else {
                    ""
                };
                writeln!(out, "  http[{i}] {} ({}){asks}", grant.rule, grant.limits)?;
            }
        }
        self.write_tcp(out)?;
        self.write_secrets(out)?;
        self.write_policy(out)?;
        self.write_approval(out)?;
        writeln!(
            out,
            "audit: {}, at most {} records per task",
            self.audit.level, self.audit.max_records
        )?;
        writeln!(
            out,
            "always allowed: clocks, random numbers, stdio the runtime passes"
        )?;
        let network = match (self.http.is_empty(), self.tcp.is_empty()) {
            (true, true) => "no network",
            (true, false) => "no http",
            (false, _) => "no other urls",
        };
        let sockets = if self.tcp.is_empty() {
            "no sockets, no DNS"
        } else {
            "no other tcp connections (no UDP, no bind or listen, DNS for the tcp names above only)"
        };
        writeln!(
            out,
            "everything else is denied: no other files, {network}, {sockets}, no host environment"
        )
    }

    fn write_tcp(&self, out: &mut String) -> fmt::Result {
        if self.tcp.is_empty() {
            return writeln!(out, "tcp: none (no sockets, no DNS)");
        }
        writeln!(out, "tcp:")?;
        for (index, rule) in self.tcp.iter().enumerate() {
            let how = if rule.names_hosts() {
                "by name; loopback, private and metadata addresses only if a rule names them"
            } else {
                "by address"
            };
            writeln!(out, "  tcp[{index}] connect to {} ({how})", rule.connect())?;
        }
        Ok(())
    }
}

impl Manifest {
    fn write_policy(&self, out: &mut String) -> fmt::Result {
        let Some(section) = &self.policy else {
            return writeln!(out, "policy: none (the grants above decide alone)");
        };
        let policy = &section.policy;
        writeln!(out, "policy: {} (compiled)", section.file.display())?;
        let kind = if policy.has_allow() {
            "deny wins; otherwise only calls its allow rule allows"
        } else {
            "deny rules; calls they do not deny are left to the grants"
        };
        writeln!(out, "  {kind}")?;
        if policy.has_cacheable() {
            writeln!(
                out,
                "  verdicts it marks cacheable are reused per grant, call and resource"
            )
        } else {
            writeln!(
                out,
                "  asked on every capability-relevant call (no cacheable rule)"
            )
        }
    }

    fn write_secrets(&self, out: &mut String) -> fmt::Result {
        if self.secrets.is_empty() {
            return writeln!(out, "secrets: none");
        }
        writeln!(out, "secrets (fetched for each task, never shown):")?;
        for s in &self.secrets {
            writeln!(
                out,
                "  {} from {} (provider {})",
                s.name,
                s.source,
                s.source.provider()
            )?;
            writeln!(out, "    purpose: {}", s.purpose)?;
            match &s.inject {
                Some(i) => writeln!(
                    out,
                    "    inject: header {} = {:?} into requests matching {}",
                    i.header, i.format, i.url
                )?,
                None => writeln!(out, "    inject: none")?,
            }
            match s.ttl {
                Some(ttl) => {
                    writeln!(out, "    ttl: {}, then fetched again", format_duration(ttl))?
                }
                None => writeln!(
                    out,
                    "    ttl: none (kept for the task, unless a vault lease is shorter)"
                )?,
            }
            if self.approval.secrets.contains(&s.name) {
                writeln!(out, "    approval: required, each use asks an approver")?;
            }
            if s.hmac {
                writeln!(out, "    hmac: yes, the tool may sign with it")?;
            } else {
                writeln!(out, "    hmac: no")?;
            }
            if s.reveal {
                writeln!(out, "    reveal: yes, the tool may read the value itself")?;
            } else {
                writeln!(out, "    reveal: no, the tool never sees the value")?;
            }
        }
        Ok(())
    }
}

impl Manifest {
    fn write_approval(&self, out: &mut String) -> fmt::Result {
        let gates = &self.approval;
        if gates.is_empty() {
            return writeln!(out, "approval: none (no call waits for an approver)");
        }
        let mut gated = Vec::new();
        gated.extend(gates.fs.iter().map(|g| format!("changes under {g}")));
        gated.extend(
            gates
                .http
                .iter()
                .map(|r| format!("requests to {r} (but GET, HEAD, OPTIONS)")),
        );
        gated.extend(
            gates
                .secrets
                .iter()
                .map(|n| format!("each use of secret {n}")),
        );
        writeln!(out, "approval: required for {}", gated.join("; "))?;
        writeln!(
            out,
            "  asked of the approver warden run is given (--approve tty, --approve-cmd CMD); \
             without one, or without an answer in time, the call is refused; \
             waiting counts toward limits.timeout ({})",
            format_duration(self.limits.timeout)
        )
    }
}

/// What every error needs: the source for line numbers and the path for the prefix.
struct Context<'a> {
    src: &'a str,
    path: &'a Path,
}

impl Context<'_> {
    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        let offset = offset.min(self.src.len());
        self.src.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn invalid(
        &self,
        offset: usize,
        field: impl Into<String>,
        message: impl fmt::Display,
    ) -> ManifestError {
        ManifestError::Invalid {
            path: self.path.to_owned(),
            line: self.line(offset),
            field: field.into(),
            message: message.to_string(),
        }
    }

    fn syntax(&self, error: &toml::de::Error) -> ManifestError {
        let span = error.span().unwrap_or(0..0);
        let mut message = tomlish(error.message());
        if message == "duplicate key"
            && let Some(key) = self.src.get(span.clone())
        {
            message = format!("duplicate key {:?}", key.trim());
        }
        ManifestError::Syntax {
            path: self.path.to_owned(),
            line: self.line(span.start),
            message,
        }
    }

    /// Turns a deserialization error into `FIELD: MESSAGE` by finding the key or value its
    /// span points at: serde errors do not say where in the document they happened.
    fn serde(&self, error: &toml::de::Error, doc: &DeTable<'_>) -> ManifestError {
        let span = error.span().unwrap_or(0..0);
        let mut field = field_at(doc, &span).unwrap_or_default();
        let raw = error.message();
        let message = if let Some(rest) = raw.strip_prefix("missing field `") {
            // The span is that of the table missing the field: name the field itself.
            let name = rest.split('`').next().unwrap_or_default();
            field = join_key(&field, name);
            "missing required field".to_owned()
        } else if let Some(rest) = raw.strip_prefix("unknown field `") {
            // The span is the unknown key's, so `field` already ends with it.
            match rest.split_once("`, ") {
                Some((_, expected)) => format!("unknown field, {}", tomlish(expected)),
                None => "unknown field".to_owned(),
            }
        } else if raw == "invalid type: map, expected a sequence" && !field.contains(['.', '[']) {
            // `[fs]` where `[[fs]]` was meant: the most likely way to get this at the top.
            format!("expected an array of tables [[{field}]], found a table [{field}]")
        } else {
            tomlish(raw)
        };
        if field.is_empty() {
            return ManifestError::Syntax {
                path: self.path.to_owned(),
                line: self.line(span.start),
                message,
            };
        }
        ManifestError::Invalid {
            path: self.path.to_owned(),
            line: self.line(span.start),
            field,
            message,
        }
    }
}

/// Rewrites serde and parser wording into manifest wording: TOML's names for types,
/// double quotes instead of backticks, lowercase first letter, no trailing period.
fn tomlish(message: &str) -> String {
    let mut message = requote(message.trim().trim_end_matches('.'))
        .replace("invalid type: map,", "invalid type: table,")
        .replace("invalid type: sequence,", "invalid type: array,")
        .replace("expected a map", "expected a table")
        .replace("expected a sequence", "expected an array")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected i64", "expected an integer");
    // serde names the Rust type of a struct ("expected struct RawTool"): meaningless here.
    if let Some(at) = message.find("expected struct ") {
        message.truncate(at);
        message.push_str("expected a table");
    }
    // Lowercase a capitalized first word, but leave acronyms such as "TOML" alone.
    if let Some(first) = message.chars().next()
        && first.is_uppercase()
        && !message.chars().nth(1).is_some_and(char::is_uppercase)
    {
        message = first
            .to_lowercase()
            .chain(message.chars().skip(1))
            .collect();
    }
    message
}

/// serde and the TOML parser quote with backticks; manifest errors use double quotes for
/// strings and names, and nothing for numbers and booleans (`found 42`, as TOML writes it).
fn requote(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find('`') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('`') else {
            out.push('"');
            rest = after;
            continue;
        };
        let inner = &after[..close];
        if inner == "true" || inner == "false" || inner.parse::<f64>().is_ok() {
            out.push_str(inner);
        } else {
            out.push('"');
            out.push_str(inner);
            out.push('"');
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The dotted path of the innermost key or value whose span contains `span`.
fn field_at(doc: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    if span.is_empty() {
        return None;
    }
    let mut best: Option<(usize, String)> = None;
    walk_table(doc, "", span, &mut best);
    best.map(|(_, path)| path)
}

fn walk_table(
    table: &DeTable<'_>,
    prefix: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    for (key, value) in table {
        let path = join_key(prefix, key.get_ref());
        consider(key.span(), &path, target, best);
        walk_value(value, &path, target, best);
    }
}

fn walk_value(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    consider(value.span(), path, target, best);
    match value.get_ref() {
        DeValue::Table(table) => walk_table(table, path, target, best),
        DeValue::Array(array) => {
            for (index, element) in array.iter().enumerate() {
                walk_value(element, &format!("{path}[{index}]"), target, best);
            }
        }
        _ => {}
    }
}

fn consider(
    span: Range<usize>,
    path: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    if span.start <= target.start && target.end <= span.end {
        let len = span.len();
        // `<=`: on a tie the later, deeper candidate wins. An `[[fs]]` element and the `fs`
        // array share the header's span, and the element is the more useful answer.
        if best.as_ref().is_none_or(|(best_len, _)| len <= *best_len) {
            *best = Some((len, path.to_owned()));
        }
    }
}

/// `prefix.key`, with the key quoted when it is not a bare TOML key.
fn join_key(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tomlish_rewrites() {
        assert_eq!(
            tomlish("invalid type: integer `5`, expected struct RawTool"),
            "invalid type: integer 5, expected a table"
        );
        assert_eq!(
            tomlish("invalid type: string \"x\", expected a sequence"),
            "invalid type: string \"x\", expected an array"
        );
        assert_eq!(
            tomlish("unknown field `x`, expected `a` or `b`"),
            "unknown field \"x\", expected \"a\" or \"b\""
        );
        assert_eq!(
            tomlish("extra `=`, expected nothing"),
            "extra \"=\", expected nothing"
        );
        assert_eq!(tomlish("Unexpected thing."), "unexpected thing");
        assert_eq!(tomlish("TOML thing"), "TOML thing");
    }
}
