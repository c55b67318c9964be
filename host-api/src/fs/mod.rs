//! Filesystem: `[[fs]]` grants of host directories, `read` or `read-write`.
//!
//! Each grant becomes a preopened cap-std directory, so the kernel refuses
//! any path that leaves it (`..`, absolute paths, symlinks). Warden checks
//! first as well, lexically, so that a denial is recorded with the grant and
//! the path that decided it, and refuses what cap-std cannot see:
//!
//! - writes, creates, renames, deletes and `set-times` under a `read` grant
//!   fail with `read-only` before they reach the host filesystem;
//! - a regular file with more than one hard link is never opened, stat-ed,
//!   linked or given new times, because a hard link may alias a file outside
//!   every grant;
//! - a FIFO, socket or device is never opened, stat-ed, linked or given new
//!   times unless its grant says `special = true`, because opening one may
//!   block (a FIFO waits for its writer) or act on a device;
//! - symlinks whose target leaves the grant cannot be created.
//!
//! Both rules are checked before anything is done ([`open`]): the path is
//! looked at through the directory's capability, the open that follows never
//! truncates and never waits, and what it opened must be what was looked at
//! before it is truncated or handed to the guest.
//!
//! A task's directories are opened for it by [`dirs::open`]: a manifest
//! grant's by its host path, refused unless it is still the directory the
//! manifest named at load; a narrowed grant's through its manifest grant's
//! directory, never following a symlink. No host path below a manifest
//! grant is opened with the process's authority.
//!
//! Every call of an ordinary grant runs on the task's thread, which is the
//! fast way for local files. A `special` grant's calls run on tokio's
//! blocking pool instead, so that one that blocks (a device, a hung network
//! mount) stalls neither the other tasks nor the task's timeout.
//!
//! A call that changes the filesystem (a create, a write open, a rename, a
//! delete, ...) is recorded twice: a `call.intent` record before it is
//! performed, so that with `fsync = always` the record is on disk before the
//! change is, and the usual `call` record with its outcome after. Bytes
//! written through a stream opened for writing are covered by that open's
//! intent and summed per stream.
//!
//! A grant with `approval = "required"` ([`crate::approval`]) asks the task's
//! approver before each such change, after the check and before the intent
//! record; a refusal fails the call with `access`. Writes through a
//! descriptor whose open for writing was approved are covered by that
//! answer; reads never ask.
//!
//! ```toml
//! [[fs]]
//! host = "./workspace"    # relative to the manifest, or absolute
//! guest = "/workspace"
//! access = "read"         # read | read-write
//! approval = "none"       # "required": each change asks an approver (read-write only)
//! special = false         # true: FIFOs, sockets and devices may be opened
//! ```

pub mod dirs;
mod grant;
mod host;
pub mod manifest;
mod open;

pub use grant::{DeclaredFs, Fs, FsNarrowing, FsWire};

use crate::interpose::{Guarded, WardenView, guarded};
use cap_std::AmbientAuthority;
use dirs::DirError;
use manifest::{Access, FsGrant, RootGrant};
use std::collections::HashMap;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::filesystem::{self as wfs, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types};
use wasmtime_wasi::{FsPerms, OpenMode};

/// The filesystem grants of one task and the descriptors opened under them.
#[derive(Debug, Default)]
pub struct FsState {
    grants: Vec<FsGrant>,
    /// Per grant: it says `special = true`.
    special: Vec<bool>,
    /// Per grant once [`FsState::open`] has run: its directory, what
    /// `wasi:filesystem/preopens` hands the guest.
    dirs: Preopens,
    handles: HashMap<u32, Handle>,
}

/// The task's preopened directories (wasmtime-wasi's `Dir` is not `Debug`).
#[derive(Default)]
struct Preopens(Vec<wfs::Dir>);

impl std::fmt::Debug for Preopens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} preopened directories", self.0.len())
    }
}

/// What Warden knows of an open descriptor.
#[derive(Debug, Clone)]
struct Handle {
    /// Index of the grant it was opened under.
    grant: usize,
    /// Normalized absolute guest path.
    path: String,
    /// Opened for writing: changes through it are covered by its open.
    writable: bool,
}

/// A path that passed the lexical check.
#[derive(Debug)]
pub(crate) struct Resolved {
    grant: usize,
    path: String,
    /// The operation changes the filesystem: it is recorded before it is
    /// performed.
    writes: bool,
    /// The change goes through a descriptor opened for writing, whose open
    /// was approved if a gate asked: it does not ask again.
    through_writable: bool,
    /// The other path of a rename or link: the change touches it too.
    other: Option<String>,
    /// The approver's yes, as the change's records state its rule.
    approved: Option<String>,
}

impl Resolved {
    fn new(grant: usize, path: String, writes: bool) -> Resolved {
        Resolved {
            grant,
            path,
            writes,
            through_writable: false,
            other: None,
            approved: None,
        }
    }
}

/// Whether an operation reads or changes the filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    Write,
}

/// A refusal: the record's rule, and the error the guest gets.
#[derive(Debug)]
pub(crate) struct Denial {
    pub(crate) rule: String,
    pub(crate) resource: String,
    pub(crate) code: types::ErrorCode,
}

impl FsState {
    /// State for a task holding `grants`.
    pub fn new(grants: Vec<FsGrant>) -> Self {
        FsState {
            special: vec![false; grants.len()],
            grants,
            dirs: Preopens::default(),
            handles: HashMap::new(),
        }
    }

    /// Marks as `special` each grant at or below one of the guest paths in `special`
    /// (the manifest's grants that say `special = true`; a grant narrowed from one is
    /// below it).
    pub fn with_special(mut self, special: &[String]) -> Self {
        for (grant, flag) in self.grants.iter().zip(&mut self.special) {
            *flag = special.iter().any(|s| within(&grant.guest, s));
        }
        self
    }

    /// Opens the directory of each grant from `roots`, the manifest's grants as
    /// resolved at load ([`dirs::open`]): these are the directories the guest gets
    /// from `wasi:filesystem/preopens`, and nothing else is. Until this has run
    /// the guest gets none.
    ///
    /// An ordinary grant's calls will run on the task's thread (the fast way for
    /// local files), a `special` grant's on tokio's blocking pool: call
    /// [`FsState::with_special`] first.
    ///
    /// # Ambient Authority
    ///
    /// Opens each manifest grant's host directory by its path (see [`dirs::open`]).
    pub fn open(
        mut self,
        roots: &[RootGrant],
        ambient: AmbientAuthority,
    ) -> Result<Self, DirError> {
        let opened = dirs::open(&self.grants, roots, ambient)?;
        self.dirs = Preopens(
            opened
                .into_iter()
                .zip(self.grants.iter().zip(&self.special))
                .map(|(dir, (g, &special))| {
                    let (perms, mode) = match g.access {
                        Access::Read => (FsPerms::ReadOnly, OpenMode::READ),
                        Access::ReadWrite => (FsPerms::ReadWrite, OpenMode::READ | OpenMode::WRITE),
                    };
                    wfs::Dir::new(dir, perms, mode, !special)
                })
                .collect(),
        );
        Ok(self)
    }

    /// Pushes a descriptor for each opened directory into `table`, with the
    /// guest path it is mounted at, as wasmtime-wasi's `get-directories` does.
    fn push_preopens(
        &self,
        table: &mut ResourceTable,
    ) -> wasmtime::Result<Vec<(Resource<types::Descriptor>, String)>> {
        let mut pushed = Vec::with_capacity(self.dirs.0.len());
        for (dir, g) in self.dirs.0.iter().zip(&self.grants) {
            let fd = table.push(wfs::Descriptor::Dir(dir.clone())).map_err(|e| {
                wasmtime::Error::msg(format!("cannot hand over fs grant {}: {e}", g.guest))
            })?;
            pushed.push((fd, g.guest.clone()));
        }
        Ok(pushed)
    }

    /// The grants of this task.
    pub fn grants(&self) -> &[FsGrant] {
        &self.grants
    }

    /// Whether the grant of descriptor `fd` says `special = true`.
    fn special_of(&self, fd: u32) -> bool {
        self.handles.get(&fd).is_some_and(|h| self.special[h.grant])
    }

    fn rule(&self, grant: usize) -> String {
        let g = &self.grants[grant];
        format!("fs[{grant}] {} {}", g.guest, g.access)
    }

    fn covering(&self, path: &str) -> Option<usize> {
        self.grants.iter().position(|g| within(path, &g.guest))
    }

    /// Resolves `path` relative to the descriptor `fd` and checks it against
    /// the descriptor's grant for `op`.
    pub(crate) fn check(&self, fd: u32, path: &str, op: Op) -> Result<Resolved, Denial> {
        let Some(h) = self.handles.get(&fd) else {
            return Err(Denial {
                rule: format!("descriptor #{fd} was not opened under a filesystem grant"),
                resource: path.to_string(),
                code: types::ErrorCode::BadDescriptor,
            });
        };
        if path.starts_with('/') {
            return Err(Denial {
                rule: self.uncovered(path, "an absolute path is not relative to its descriptor"),
                resource: path.to_string(),
                code: types::ErrorCode::NotPermitted,
            });
        }
        let grant = &self.grants[h.grant];
        let joined = normalize(&format!("{}/{}", h.path, path));
        if !within(&joined, &grant.guest) {
            return Err(Denial {
                rule: format!(
                    "{path} from {} leaves fs[{}] {}; {}",
                    h.path,
                    h.grant,
                    grant.guest,
                    self.uncovered(
                        &joined,
                        "paths are checked against the grant they start from"
                    )
                ),
                resource: joined,
                code: types::ErrorCode::NotPermitted,
            });
        }
        self.check_access(h.grant, joined, op)
    }

    /// Checks `op` on a descriptor itself (write, set-size, set-times, ...).
    pub(crate) fn check_fd(&self, fd: u32, op: Op) -> Result<Resolved, Denial> {
        match self.handles.get(&fd) {
            Some(h) => self.check_access(h.grant, h.path.clone(), op).map(|mut r| {
                r.through_writable = h.writable;
                r
            }),
            None => Err(Denial {
                rule: format!("descriptor #{fd} was not opened under a filesystem grant"),
                resource: format!("#{fd}"),
                code: types::ErrorCode::BadDescriptor,
            }),
        }
    }

    fn check_access(&self, grant: usize, path: String, op: Op) -> Result<Resolved, Denial> {
        if op == Op::Write && self.grants[grant].access == Access::Read {
            return Err(Denial {
                rule: format!(
                    "{} is read-only; to allow writes set access = \"read-write\"",
                    self.rule(grant)
                ),
                resource: path,
                code: types::ErrorCode::ReadOnly,
            });
        }
        Ok(Resolved::new(grant, path, op == Op::Write))
    }

    fn uncovered(&self, path: &str, why: &str) -> String {
        let path = normalize(path);
        match self.covering(&path) {
            Some(i) => format!("{why} ({path} is under {})", self.rule(i)),
            None => format!("no fs grant covers {path}"),
        }
    }

    pub(crate) fn rule_for(&self, r: &Resolved) -> String {
        match &r.approved {
            Some(approved) => approved.clone(),
            None => self.rule(r.grant),
        }
    }

    pub(crate) fn insert(&mut self, rep: u32, r: &Resolved) {
        self.handles.insert(
            rep,
            Handle {
                grant: r.grant,
                path: r.path.clone(),
                writable: r.writes,
            },
        );
    }

    pub(crate) fn remove(&mut self, rep: u32) {
        self.handles.remove(&rep);
    }
}

/// Whether the normalized guest path `path` is `root` or below it, by whole
/// components: `/ro/x` is within `/ro`, `/rox` is not.
pub fn within(path: &str, root: &str) -> bool {
    path == root
        || root == "/"
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Lexically normalizes an absolute guest path: `.` and empty parts are
/// dropped, `..` removes the previous part and stops at the root.
pub(crate) fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

struct FsData;

impl HasData for FsData {
    type Data<'a> = Guarded<'a, WasiFilesystemCtxView<'a>>;
}

fn view<T: WardenView>(t: &mut T) -> Guarded<'_, WasiFilesystemCtxView<'_>> {
    guarded(t, |w| WasiFilesystemCtxView {
        ctx: w.ctx.filesystem(),
        table: w.table,
    })
}

/// Adds `wasi:filesystem/types` and `wasi:filesystem/preopens` to `linker`,
/// guarded by the task's grants.
pub(crate) fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    types::add_to_linker::<T, FsData>(linker, view::<T>)?;
    preopens::add_to_linker::<T, FsData>(linker, view::<T>)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> FsState {
        let mut s = FsState::new(vec![
            FsGrant {
                host: "/tmp".into(),
                guest: "/ro".into(),
                access: Access::Read,
            },
            FsGrant {
                host: "/tmp".into(),
                guest: "/rw".into(),
                access: Access::ReadWrite,
            },
        ]);
        s.insert(1, &Resolved::new(0, "/ro".into(), false));
        s.insert(2, &Resolved::new(1, "/rw".into(), false));
        s
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize("/a/./b//c/../d"), "/a/b/d");
        assert_eq!(normalize("/a/../../.."), "/");
        assert_eq!(normalize("/"), "/");
    }

    #[test]
    fn within_is_by_component() {
        assert!(within("/ro", "/ro"));
        assert!(within("/ro/x", "/ro"));
        assert!(!within("/rox", "/ro"));
        assert!(!within("/", "/ro"));
    }

    #[test]
    fn dotdot_out_of_a_grant_is_denied_and_named() {
        let s = state();
        let d = s.check(1, "../../etc/passwd", Op::Read).unwrap_err();
        assert_eq!(d.resource, "/etc/passwd");
        assert!(
            d.rule.contains("no fs grant covers /etc/passwd"),
            "{}",
            d.rule
        );
        let d = s.check(1, "../rw/x", Op::Read).unwrap_err();
        assert!(d.rule.contains("under fs[1] /rw read-write"), "{}", d.rule);
    }

    #[test]
    fn dotdot_inside_a_grant_is_allowed() {
        let s = state();
        let r = s.check(1, "a/../b", Op::Read).unwrap();
        assert_eq!(r.path, "/ro/b");
    }

    #[test]
    fn absolute_paths_are_denied() {
        let s = state();
        let d = s.check(2, "/etc/passwd", Op::Read).unwrap_err();
        assert!(
            d.rule.contains("no fs grant covers /etc/passwd"),
            "{}",
            d.rule
        );
    }

    #[test]
    fn writes_under_read_grant_are_denied() {
        let s = state();
        let d = s.check(1, "new.txt", Op::Write).unwrap_err();
        assert_eq!(d.code, types::ErrorCode::ReadOnly);
        assert!(
            d.rule.starts_with("fs[0] /ro read is read-only"),
            "{}",
            d.rule
        );
        assert!(s.check(2, "new.txt", Op::Write).is_ok());
    }

    #[test]
    fn unknown_descriptors_are_denied() {
        let s = state();
        assert!(s.check(9, "x", Op::Read).is_err());
        assert!(s.check_fd(9, Op::Read).is_err());
    }
}
