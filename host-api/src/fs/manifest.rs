//! The `[[fs]]` manifest section: which host directories a tool sees, where, and how.
//!
//! ```toml
//! [[fs]]
//! host = "./workspace"     # relative to the manifest's directory, or absolute
//! guest = "/workspace"     # where the tool sees it
//! access = "read"          # "read" (the default) or "read-write"
//!
//! [[fs]]
//! host = "/var/cache/tool"
//! guest = "/cache"
//! access = "read-write"
//! approval = "required"    # optional: each change asks an approver (see crate::approval)
//!
//! [[fs]]
//! host = "/run/tool"
//! guest = "/run"
//! special = true           # optional: FIFOs, sockets and devices may be opened here
//! ```
//!
//! Without an `[[fs]]` entry a tool sees no files at all. Each entry becomes one preopened
//! directory; nothing outside it is reachable, whatever the guest does with `..`, absolute
//! paths or symlinks, because the capability is enforced by the kernel-backed directory
//! handle, not by string checks on paths.
//!
//! Validation, done once at load time ([`resolve_grants`]):
//! - `host` must exist and be a directory; it is canonicalized so that the grant names the
//!   real directory, not a symlink that could be swapped later, and the directory it names
//!   (device and inode) is kept, so that a task opening it can tell that it is still the
//!   same one ([`super::dirs`]);
//! - no two host directories may be the same or nested: a `read` or gated grant on
//!   `ws/config` beside a `read-write` one on `ws` would be writable, ungated, through the
//!   other, so neither would mean what it says;
//! - `guest` must be absolute, must not contain `..` and must not be `/` (a mount at the
//!   root would shadow every other mount);
//! - no two guest paths may be equal or nested: which grant applies to `/data/sub/x` would
//!   otherwise depend on lookup order;
//! - `approval = "required"` only on a `read-write` grant: reads never ask, so on a `read`
//!   grant it would never apply.
//!
//! # Example
//!
//! ```
//! use warden_host_api::fs::manifest::{resolve_grants, Access, RawFsGrant};
//!
//! #[derive(serde::Deserialize)]
//! struct Doc {
//!     fs: Vec<RawFsGrant>,
//! }
//!
//! let dir = std::env::temp_dir();
//! let doc: Doc = toml::from_str(r#"
//!     [[fs]]
//!     host = "."
//!     guest = "/tmp/"
//! "#).unwrap();
//! let roots = resolve_grants(&doc.fs, &dir, cap_std::ambient_authority()).unwrap();
//! assert_eq!(roots[0].grant.guest, "/tmp");
//! assert_eq!(roots[0].grant.access, Access::Read);
//! assert_eq!(roots[0].grant.host, dir.canonicalize().unwrap());
//! ```

use crate::capability::FieldError;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::approval::Approval;
use cap_std::AmbientAuthority;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;

/// One validated directory grant.
///
/// ```toml
/// [[fs]]
/// host = "./workspace"
/// guest = "/workspace"
/// access = "read-write"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsGrant {
    /// The host directory: absolute, canonicalized (no symlinks, no `.` or `..`).
    pub host: PathBuf,
    /// Where the guest sees it: absolute, normalized (no trailing `/`, no empty or `.`
    /// components), never `/`, e.g. `/workspace`.
    pub guest: String,
    /// What the guest may do there.
    pub access: Access,
}

/// Which directory a host path named when it was looked at: its device and inode.
///
/// A path can be made to name another directory (renamed, replaced by a symlink); the
/// device and inode of what an open found cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirId {
    /// `st_dev`: the filesystem the directory is on.
    pub dev: u64,
    /// `st_ino`: the directory on that filesystem.
    pub ino: u64,
}

impl DirId {
    /// The identity `meta` describes.
    pub fn of(meta: &std::fs::Metadata) -> DirId {
        use std::os::unix::fs::MetadataExt;
        DirId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

impl fmt::Display for DirId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device {} inode {}", self.dev, self.ino)
    }
}

/// A manifest's `[[fs]]` grant as it was resolved at load: the grant, and the directory its
/// canonical host path named then.
///
/// A task's directories are opened from these ([`super::dirs::open`]): a manifest grant's by
/// its host path, refused unless it is still this directory; a narrowed grant's through
/// its manifest grant's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootGrant {
    /// The grant, as the manifest's ceiling holds it.
    pub grant: FsGrant,
    /// The directory `grant.host` named at load.
    pub id: DirId,
}

/// What a guest may do inside a granted directory.
///
/// Written `access = "read"` or `access = "read-write"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Access {
    /// List, stat and read files; no creation, writes, renames or deletes.
    #[default]
    Read,
    /// Everything [`Access::Read`] allows, plus creating, writing, renaming and deleting
    /// files and directories inside the grant.
    ReadWrite,
}

impl Access {
    /// The manifest spelling: `"read"` or `"read-write"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::ReadWrite => "read-write",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `access` was neither `"read"` nor `"read-write"`; carries the value as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected \"read\" or \"read-write\", found {0:?}")]
pub struct AccessError(pub String);

impl FromStr for Access {
    type Err = AccessError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Access::Read),
            "read-write" => Ok(Access::ReadWrite),
            other => Err(AccessError(other.to_owned())),
        }
    }
}

impl Serialize for Access {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Access {
    // By hand rather than derived so that the error reads like every other manifest error.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One `[[fs]]` entry as written, before validation.
///
/// Each value keeps its span in the manifest source so that an error can name its line.
///
/// ```toml
/// [[fs]]
/// host = "data"
/// guest = "/data"
/// access = "read"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFsGrant {
    /// `host = "./workspace"`: a directory, relative to the manifest's directory or absolute.
    pub host: Spanned<PathBuf>,
    /// `guest = "/workspace"`: the absolute path the guest sees.
    pub guest: Spanned<String>,
    /// `access = "read"`: optional, `read` unless it says `read-write`.
    #[serde(default)]
    pub access: Option<Spanned<Access>>,
    /// `approval = "required"`: optional, `none` unless it says so; only on a `read-write`
    /// grant, where each change asks an approver ([`crate::approval`]).
    #[serde(default)]
    pub approval: Option<Spanned<Approval>>,
    /// `special = true`: optional, `false` unless it says so. FIFOs, sockets and devices
    /// under the grant may be opened (they are refused otherwise), and every call of the
    /// grant runs off the task's thread, so that one that blocks stalls no other task and
    /// not the task's timeout.
    #[serde(default)]
    pub special: Option<Spanned<bool>>,
}

impl RawFsGrant {
    /// The entry's `approval`, `none` when it has none.
    pub fn approval(&self) -> Approval {
        self.approval
            .as_ref()
            .map(|a| *a.get_ref())
            .unwrap_or_default()
    }

    /// The entry's `special`, `false` when it has none.
    pub fn special(&self) -> bool {
        self.special.as_ref().is_some_and(|s| *s.get_ref())
    }
}

/// Validates `[[fs]]` entries and resolves their host paths against `base_dir` (the
/// manifest's directory).
///
/// Stops at the first invalid entry. Each grant comes with the directory its host path
/// named ([`RootGrant`]).
///
/// # Ambient Authority
///
/// Reads the host filesystem (canonicalize and stat each `host`) by path, with the
/// authority of the process: this is where a grant's host directory is chosen, before
/// anything is opened as a capability.
pub fn resolve_grants(
    raw: &[RawFsGrant],
    base_dir: &Path,
    _ambient: AmbientAuthority,
) -> Result<Vec<RootGrant>, FsError> {
    let mut grants: Vec<RootGrant> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        let (host, id) =
            resolve_host(entry.host.get_ref(), base_dir).map_err(|reason| FsError::Host {
                index,
                span: entry.host.span(),
                reason,
            })?;
        let guest = normalize_guest(entry.guest.get_ref()).map_err(|reason| FsError::Guest {
            index,
            span: entry.guest.span(),
            reason,
        })?;
        if let Some((other_index, other)) = grants
            .iter()
            .enumerate()
            .find(|(_, g)| guest_paths_overlap(&g.grant.guest, &guest))
        {
            return Err(FsError::Overlap {
                index,
                span: entry.guest.span(),
                guest,
                other_index,
                other_guest: other.grant.guest.clone(),
            });
        }
        // Checked after the guest paths, so that two mounts of one directory at nested
        // guest paths are named for the guest paths first.
        if let Some((other_index, other, nesting)) = grants
            .iter()
            .enumerate()
            .find_map(|(i, g)| HostNesting::of(&host, id, &g.grant.host, g.id).map(|n| (i, g, n)))
        {
            return Err(FsError::HostOverlap {
                index,
                span: entry.host.span(),
                host,
                nesting,
                other_index,
                other_host: other.grant.host.clone(),
            });
        }
        let access = entry
            .access
            .as_ref()
            .map(|a| *a.get_ref())
            .unwrap_or_default();
        if let Some(approval) = &entry.approval
            && approval.get_ref().is_required()
            && access == Access::Read
        {
            return Err(FsError::ApprovalOnRead {
                index,
                span: approval.span(),
            });
        }
        grants.push(RootGrant {
            grant: FsGrant {
                host,
                guest,
                access,
            },
            id,
        });
    }
    Ok(grants)
}

/// How one granted host directory relates to another that it overlaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostNesting {
    /// The same directory: the same canonical path, or the same device and inode (a bind
    /// mount).
    Same,
    /// Inside the other.
    Inside,
    /// Holds the other.
    Holds,
}

impl HostNesting {
    /// How the canonical `host` (directory `id`) relates to `other` (directory
    /// `other_id`), if they overlap; paths are compared by whole components.
    fn of(host: &Path, id: DirId, other: &Path, other_id: DirId) -> Option<HostNesting> {
        if host == other || id == other_id {
            Some(HostNesting::Same)
        } else if host.starts_with(other) {
            Some(HostNesting::Inside)
        } else if other.starts_with(host) {
            Some(HostNesting::Holds)
        } else {
            None
        }
    }
}

impl fmt::Display for HostNesting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostNesting::Same => "is the same directory as",
            HostNesting::Inside => "lies inside",
            HostNesting::Holds => "holds",
        })
    }
}

/// An `[[fs]]` entry that failed validation.
///
/// [`field`](Self::field) and [`span`](Self::span) say where; `Display` says what, in
/// lowercase and without the field name, so the caller can prefix file, line and field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// `fs[index].host` is missing, not a directory or not accessible.
    #[error("{reason}")]
    Host {
        /// Position of the entry among the `[[fs]]` entries.
        index: usize,
        /// Byte range of the value in the manifest source.
        span: Range<usize>,
        /// What is wrong with the directory.
        reason: HostPathError,
    },
    /// `fs[index].guest` is not an acceptable guest path.
    #[error("{reason}")]
    Guest {
        /// Position of the entry among the `[[fs]]` entries.
        index: usize,
        /// Byte range of the value in the manifest source.
        span: Range<usize>,
        /// What is wrong with the path.
        reason: GuestPathError,
    },
    /// `fs[index].guest` equals or nests with an earlier entry's guest path.
    #[error("{guest:?} overlaps fs[{other_index}].guest {other_guest:?}")]
    Overlap {
        /// Position of the later entry among the `[[fs]]` entries.
        index: usize,
        /// Byte range of the later entry's guest value in the manifest source.
        span: Range<usize>,
        /// The later entry's guest path, normalized.
        guest: String,
        /// Position of the earlier entry.
        other_index: usize,
        /// The earlier entry's guest path, normalized.
        other_guest: String,
    },
    /// `fs[index].host` is, lies inside or holds an earlier entry's host directory. One
    /// directory reachable through two grants has the access and gates of the wider one,
    /// whatever the narrower one says, so overlapping grants are refused rather than
    /// resolved.
    #[error(
        "{host:?} {nesting} fs[{other_index}].host {other_host:?}: a directory reachable \
         through two grants has the access and approval of the wider one; grant disjoint \
         directories (move one out of the other) or keep one grant"
    )]
    HostOverlap {
        /// Position of the later entry among the `[[fs]]` entries.
        index: usize,
        /// Byte range of the later entry's host value in the manifest source.
        span: Range<usize>,
        /// The later entry's host directory, canonical.
        host: PathBuf,
        /// How it relates to the earlier one.
        nesting: HostNesting,
        /// Position of the earlier entry.
        other_index: usize,
        /// The earlier entry's host directory, canonical.
        other_host: PathBuf,
    },
    /// `fs[index].approval` is `"required"` on a `read` grant, where it would never apply.
    #[error(
        "\"required\" would never apply: the grant is access = \"read\" and reads never ask; \
         set access = \"read-write\" or remove approval"
    )]
    ApprovalOnRead {
        /// Position of the entry among the `[[fs]]` entries.
        index: usize,
        /// Byte range of the value in the manifest source.
        span: Range<usize>,
    },
}

impl FieldError for FsError {
    /// The dotted manifest field the error is about, e.g. `fs[1].guest`.
    fn field(&self) -> String {
        match self {
            FsError::Host { index, .. } | FsError::HostOverlap { index, .. } => {
                format!("fs[{index}].host")
            }
            FsError::Guest { index, .. } | FsError::Overlap { index, .. } => {
                format!("fs[{index}].guest")
            }
            FsError::ApprovalOnRead { index, .. } => format!("fs[{index}].approval"),
        }
    }

    /// Byte range of the offending value in the manifest source.
    fn span(&self) -> Range<usize> {
        match self {
            FsError::Host { span, .. }
            | FsError::Guest { span, .. }
            | FsError::Overlap { span, .. }
            | FsError::HostOverlap { span, .. }
            | FsError::ApprovalOnRead { span, .. } => span.clone(),
        }
    }
}

/// Why a host directory cannot be granted. Paths are the resolved, absolute ones, so the
/// user sees which directory was looked for even when the manifest said `./data`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostPathError {
    /// Nothing exists at the path (or a component of it is a dangling symlink).
    #[error("{0:?} does not exist")]
    NotFound(PathBuf),
    /// The path exists but is a file or something else that is not a directory.
    #[error("{0:?} is not a directory")]
    NotADirectory(PathBuf),
    /// Any other failure to resolve the path, such as a permission error.
    #[error("cannot access {path:?}: {error}")]
    Io {
        /// The path that could not be resolved.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
}

/// Resolves `host` against `base_dir` and canonicalizes it; it must be a directory. Returns
/// the canonical path and the directory it names.
///
/// # Ambient Authority
///
/// Looks the path up in the host filesystem with the authority of the process.
fn resolve_host(host: &Path, base_dir: &Path) -> Result<(PathBuf, DirId), HostPathError> {
    let joined = base_dir.join(host);
    // The absolute form, without following symlinks, is what errors show: it names the
    // place that was looked for even when canonicalization cannot succeed.
    let shown = std::path::absolute(&joined).unwrap_or_else(|_| joined.clone());
    let canonical = match joined.canonicalize() {
        Ok(path) => path,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(HostPathError::NotFound(shown));
        }
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            return Err(HostPathError::NotADirectory(shown));
        }
        Err(error) => return Err(HostPathError::Io { path: shown, error }),
    };
    // Not following a symlink: the canonical path has none, unless one was swapped in
    // since, and then this is not the directory that was resolved.
    match canonical.symlink_metadata() {
        Ok(meta) if meta.is_dir() => Ok((canonical, DirId::of(&meta))),
        Ok(_) => Err(HostPathError::NotADirectory(shown)),
        Err(error) => Err(HostPathError::Io { path: shown, error }),
    }
}

/// Why a guest path cannot be a mount point; each variant carries the path as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuestPathError {
    /// The path does not start with `/`.
    #[error("{0:?} is not absolute, expected a path such as \"/workspace\"")]
    NotAbsolute(String),
    /// The path has a `..` component.
    #[error("{0:?} must not contain \"..\"")]
    ParentComponent(String),
    /// The path is `/` (or only slashes and `.`).
    #[error("{0:?} is the guest root, expected a directory such as \"/workspace\"")]
    Root(String),
    /// The path contains a NUL byte.
    #[error("{0:?} must not contain NUL")]
    Nul(String),
}

/// Checks a guest path and puts it in normal form: leading `/`, components joined by a
/// single `/`, no `.` components, no trailing `/`.
///
/// ```
/// use warden_host_api::fs::manifest::normalize_guest;
///
/// assert_eq!(normalize_guest("/data//sub/./").unwrap(), "/data/sub");
/// assert!(normalize_guest("data").is_err());
/// assert!(normalize_guest("/a/../b").is_err());
/// assert!(normalize_guest("/").is_err());
/// ```
pub fn normalize_guest(guest: &str) -> Result<String, GuestPathError> {
    if guest.contains('\0') {
        return Err(GuestPathError::Nul(guest.to_owned()));
    }
    if !guest.starts_with('/') {
        return Err(GuestPathError::NotAbsolute(guest.to_owned()));
    }
    let mut normalized = String::with_capacity(guest.len());
    for component in guest.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(GuestPathError::ParentComponent(guest.to_owned())),
            name => {
                normalized.push('/');
                normalized.push_str(name);
            }
        }
    }
    if normalized.is_empty() {
        return Err(GuestPathError::Root(guest.to_owned()));
    }
    Ok(normalized)
}

/// Whether two normalized guest paths are equal or one contains the other.
///
/// ```
/// use warden_host_api::fs::manifest::guest_paths_overlap;
///
/// assert!(guest_paths_overlap("/data", "/data/sub"));
/// assert!(!guest_paths_overlap("/data", "/database"));
/// ```
pub fn guest_paths_overlap(a: &str, b: &str) -> bool {
    let nested = |outer: &str, inner: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    a == b || nested(a, b) || nested(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_parses_and_displays() {
        assert_eq!("read".parse::<Access>().unwrap(), Access::Read);
        assert_eq!("read-write".parse::<Access>().unwrap(), Access::ReadWrite);
        assert_eq!(Access::ReadWrite.to_string(), "read-write");
        assert_eq!(
            "rw".parse::<Access>().unwrap_err().to_string(),
            "expected \"read\" or \"read-write\", found \"rw\""
        );
    }

    #[test]
    fn guest_paths() {
        assert_eq!(normalize_guest("/workspace").unwrap(), "/workspace");
        assert_eq!(normalize_guest("//a/./b/").unwrap(), "/a/b");
        assert_eq!(
            normalize_guest("workspace").unwrap_err().to_string(),
            "\"workspace\" is not absolute, expected a path such as \"/workspace\""
        );
        assert_eq!(
            normalize_guest("/a/..").unwrap_err(),
            GuestPathError::ParentComponent("/a/..".into())
        );
        assert_eq!(
            normalize_guest("/./").unwrap_err(),
            GuestPathError::Root("/./".into())
        );
        assert_eq!(
            normalize_guest("").unwrap_err(),
            GuestPathError::NotAbsolute("".into())
        );
    }

    fn resolve(dir: &Path, hosts: &[&str]) -> Result<Vec<RootGrant>, FsError> {
        #[derive(Deserialize)]
        struct Doc {
            fs: Vec<RawFsGrant>,
        }
        let text: String = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| format!("[[fs]]\nhost = {h:?}\nguest = \"/g{i}\"\n"))
            .collect();
        let doc: Doc = toml::from_str(&text).unwrap();
        resolve_grants(&doc.fs, dir, cap_std::ambient_authority())
    }

    #[test]
    fn overlapping_host_directories_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("ws/config")).unwrap();
        std::fs::create_dir_all(base.join("wsx")).unwrap();
        std::os::unix::fs::symlink(base.join("ws"), base.join("alias")).unwrap();
        // Disjoint, and a name that only shares a prefix.
        let roots = resolve(&base, &["ws", "wsx"]).unwrap();
        assert_eq!(
            roots[0].id,
            DirId::of(&std::fs::metadata(base.join("ws")).unwrap())
        );

        let err = resolve(&base, &["ws", "wsx", "ws/config"]).unwrap_err();
        assert_eq!(err.field(), "fs[2].host");
        assert_eq!(
            err.to_string(),
            format!(
                "{:?} lies inside fs[0].host {:?}: a directory reachable through two grants has \
                 the access and approval of the wider one; grant disjoint directories (move one \
                 out of the other) or keep one grant",
                base.join("ws/config"),
                base.join("ws")
            )
        );
        let err = resolve(&base, &["ws/config", "ws"]).unwrap_err();
        assert!(err.to_string().contains("ws\" holds fs[0].host"), "{err}");
        // By another name, through a symlink: the canonical paths are compared.
        let err = resolve(&base, &["ws", "alias/."]).unwrap_err();
        assert!(
            err.to_string()
                .contains("is the same directory as fs[0].host"),
            "{err}"
        );
        assert!(matches!(
            err,
            FsError::HostOverlap {
                index: 1,
                other_index: 0,
                ..
            }
        ));
    }

    #[test]
    fn overlap() {
        assert!(guest_paths_overlap("/a", "/a"));
        assert!(guest_paths_overlap("/a/b", "/a"));
        assert!(!guest_paths_overlap("/a/b", "/a/c"));
        assert!(!guest_paths_overlap("/ab", "/a"));
    }
}
