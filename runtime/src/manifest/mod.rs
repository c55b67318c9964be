//! The tool manifest: one TOML file per tool, the ceiling of what it may ever touch.
//!
//! ```toml
//! [tool]
//! name = "repo-search"
//! component = "repo_search.wasm"     # relative to this file, or absolute; or from a
//!                                    # registry: "oci://HOST[:PORT]/REPO:TAG[@sha256:…]"
//! digest = "blake3:…"                # optional pin: load refuses a mismatch
//! signed-by = ["keys/release.pub"]   # optional: only a component one of these keys signed
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
//!     cap_std::ambient_authority(),
//! )
//! .unwrap();
//! assert_eq!(manifest.tool.component, *Path::new("/etc/warden/hello.wasm"));
//! assert!(manifest.declared.fs.roots.is_empty());
//! assert_eq!(manifest.audit.level, AuditLevel::Calls);
//!
//! let text = "[tool]\nname = \"hello\"\n";
//! let err = Manifest::parse(text, Path::new("hello.toml"), cap_std::ambient_authority());
//! let err = err.unwrap_err();
//! assert_eq!(err.to_string(), "hello.toml:1: tool.component: missing required field");
//! ```

mod error;
mod exposure;
mod parse;
mod print;

pub use error::ManifestError;
pub use exposure::Protected;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use warden_host_api::approval::Gates;
use warden_host_api::capability::Declared;
use warden_host_api::fs::manifest::RootGrant;
use warden_host_api::grant::Capabilities;
use warden_host_api::policy::manifest::PolicySection;

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
    /// Every capability as the manifest declares it (`[[fs]]`, `[[http]]`, `[limits]`,
    /// ...), each with defaults for whatever the manifest leaves out: the ceiling of every
    /// grant for this tool.
    pub declared: Declared,
    /// `[policy]`: the Rego policy, compiled, if the manifest names one.
    pub policy: Option<PolicySection>,
    /// `[audit]`: how much the audit log records.
    pub audit: AuditSection,
    /// Line of `tool.digest`, for the mismatch error of [`Manifest::verify_digest`].
    digest_line: usize,
    /// Line of each `fs[N].host`, for [`Manifest::check_exposure`].
    fs_lines: Vec<usize>,
}

/// The `[tool]` section: what to run.
///
/// ```toml
/// [tool]
/// name = "repo-search"
/// component = "repo_search.wasm"
/// digest = "blake3:4f1c…"   # 64 hex digits
/// signed-by = ["minisign:RWQ…", "keys/cosign.pub"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSection {
    /// The tool's name, as agents and the audit log see it; never empty.
    pub name: String,
    /// Where the component comes from.
    pub component: ComponentSource,
    /// The pinned digest of the component's bytes, if any; see [`Manifest::verify_digest`].
    pub digest: Option<Digest>,
    /// The keys of which one must have signed the component (`signed-by`); empty if the
    /// manifest names none. See [`crate::trust`].
    pub signed_by: Vec<crate::trust::TrustedKey>,
    /// Whether running a task twice does no more harm than running it once (`idempotent`,
    /// default true). A worker that finds a task of a tool that is not idempotent
    /// delivered again (its first worker died mid-task) does not run it again; the task
    /// fails with an error saying so.
    pub idempotent: bool,
}

/// Where a component comes from: `tool.component`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A file, resolved against the manifest's directory and made absolute (symlinks are
    /// not resolved). Whether it exists is checked when it is loaded.
    File(PathBuf),
    /// A component published in an OCI registry, loaded from the local
    /// [store](crate::oci::Store) once pulled.
    Oci(crate::oci::Reference),
}

impl ComponentSource {
    /// The file, for a component that is one.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            ComponentSource::File(p) => Some(p),
            ComponentSource::Oci(_) => None,
        }
    }
}

impl ComponentSource {
    /// The component's bytes: its file, or its copy in `store` (default:
    /// [`Store::default_dir`](crate::oci::Store::default_dir)), checked against its digests.
    pub fn bytes(&self, store: Option<&crate::oci::Store>) -> Result<Vec<u8>, crate::LoadError> {
        match self {
            ComponentSource::File(path) => {
                std::fs::read(path).map_err(|error| crate::LoadError::Read {
                    path: path.clone(),
                    error,
                })
            }
            ComponentSource::Oci(reference) => {
                let oci = |error| crate::LoadError::Oci {
                    reference: reference.to_string(),
                    error,
                };
                let store = match store {
                    Some(s) => s.clone(),
                    None => crate::oci::Store::open_default().map_err(oci)?,
                };
                Ok(store.component(reference).map_err(oci)?.bytes)
            }
        }
    }
}

impl fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::File(p) => write!(f, "{}", p.display()),
            ComponentSource::Oci(r) => write!(f, "{r}"),
        }
    }
}

impl PartialEq<std::path::Path> for ComponentSource {
    fn eq(&self, other: &std::path::Path) -> bool {
        self.file() == Some(other)
    }
}

impl PartialEq<PathBuf> for ComponentSource {
    fn eq(&self, other: &PathBuf) -> bool {
        self.file() == Some(other.as_path())
    }
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

/// How much the audit log records for a tool: `level = "calls"` or `level = "full"`; the
/// audit trail's own [`Level`](warden_host_api::audit::Level).
pub use warden_host_api::audit::Level as AuditLevel;

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
        Digest(crate::engine::cache::hash(bytes))
    }

    /// The BLAKE3 hash it holds.
    pub fn hash(&self) -> &blake3::Hash {
        &self.0
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

impl Manifest {
    /// Checks `component_bytes` against `tool.digest`; without a pin, anything passes.
    ///
    /// The mismatch error names the line of `tool.digest` and both digests, so the user
    /// can tell a stale pin from a swapped component.
    pub fn verify_digest(&self, component_bytes: &[u8]) -> Result<(), ManifestError> {
        self.verify_digest_is(Digest::of(component_bytes))
    }

    /// [`verify_digest`](Self::verify_digest) for a component whose digest is `actual`.
    pub fn verify_digest_is(&self, actual: Digest) -> Result<(), ManifestError> {
        let Some(expected) = self.tool.digest else {
            return Ok(());
        };
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
        &self.declared.fs.roots
    }

    /// The manifest's sections as its ceiling: everything a grant for this tool may hold.
    pub fn ceiling(&self) -> Capabilities {
        self.declared.ceiling()
    }

    /// Every `approval = "required"` of `[[fs]]`, `[[http]]` and `[[secrets]]`: where calls
    /// wait for an approver. Empty unless the manifest says so.
    pub fn approval(&self) -> Gates {
        let d = &self.declared;
        Gates {
            fs: d.fs.approval.clone(),
            http: d.http.approval.clone(),
            secrets: d.secrets.approval.clone(),
        }
    }
}
