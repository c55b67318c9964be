//! Opening a task's directories without trusting a host path twice.
//!
//! A manifest grant's host directory was canonicalized at load, and the directory it named
//! then (device and inode) was kept ([`RootGrant`]). A task opens it by that path once and
//! refuses what it finds unless it is that same directory: a local user who replaced it
//! with a symlink, or with another directory, since the manifest was loaded gets an error
//! naming the grant and what changed, never the other directory.
//!
//! A narrowed grant (a sub-directory of a manifest grant, named by guest path in a grant
//! token) is never opened by its host path. It is reached from its manifest grant's open
//! directory, one component at a time, each opened relative to the last without following
//! a symlink (`openat` with `O_NOFOLLOW`, sandboxed by cap-primitives). A symlink or a file
//! anywhere on the way is refused, whoever put it there and whenever: there is no moment
//! between a check and an open for a sibling task writing in its own grant to swap one in,
//! because the open is the check.
//!
//! ```
//! use warden_host_api::fs::dirs;
//! use warden_host_api::fs::manifest::{resolve_grants, FsGrant, RawFsGrant};
//!
//! #[derive(serde::Deserialize)]
//! struct Doc {
//!     fs: Vec<RawFsGrant>,
//! }
//!
//! let ws = tempfile::tempdir()?;
//! std::fs::create_dir(ws.path().join("src"))?;
//! std::os::unix::fs::symlink("/etc", ws.path().join("etc"))?;
//! let doc: Doc = toml::from_str(r#"
//!     [[fs]]
//!     host = "."
//!     guest = "/ws"
//! "#)?;
//! let roots = resolve_grants(&doc.fs, ws.path(), cap_std::ambient_authority())?;
//! let narrowed = |sub: &str| FsGrant {
//!     host: roots[0].grant.host.join(sub),
//!     guest: format!("/ws/{sub}"),
//!     access: roots[0].grant.access,
//! };
//!
//! let opened = dirs::open(&[narrowed("src")], &roots, cap_std::ambient_authority())?;
//! assert_eq!(opened.len(), 1);
//! let err = dirs::open(&[narrowed("etc")], &roots, cap_std::ambient_authority()).unwrap_err();
//! assert!(err.to_string().starts_with("fs grant /ws/etc: "), "{err}");
//! assert!(err.to_string().contains("is a symlink"), "{err}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::manifest::{DirId, FsGrant, RootGrant};
use super::within;
use cap_primitives::fs::FollowSymlinks;
use cap_std::AmbientAuthority;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// A directory of a task's grant that could not be opened as the grant says. Each names
/// the grant by its guest path (`fs grant /ws/sub: ...`) and the host path concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirError {
    /// A manifest grant's host path no longer names the directory it named at load.
    #[error(
        "fs grant {guest}: {} is no longer the directory the manifest granted at load \
         ({was}): it is now {now}; restore it, or load the manifest again to grant what is \
         there now",
        host.display()
    )]
    Replaced {
        /// The grant's guest path.
        guest: String,
        /// The manifest grant's host directory.
        host: PathBuf,
        /// The directory it named at load.
        was: DirId,
        /// What it names now, in words: `a symlink to /tmp/x`, `another directory (...)`.
        now: String,
    },
    /// A component on the way from the manifest grant's directory to a narrowed one is a
    /// symlink.
    #[error(
        "fs grant {guest}: {} is a symlink{}; a narrowed directory is reached from its \
         manifest grant's directory without following symlinks",
        path.display(),
        target.as_ref().map(|t| format!(" (to {})", t.display())).unwrap_or_default()
    )]
    Symlink {
        /// The narrowed grant's guest path.
        guest: String,
        /// The host path of the symlink.
        path: PathBuf,
        /// Where it points, if it could be read.
        target: Option<PathBuf>,
    },
    /// A component on the way to a narrowed directory is not a directory.
    #[error(
        "fs grant {guest}: {} is not a directory; a narrowed grant names a directory inside \
         its manifest grant",
        path.display()
    )]
    NotADirectory {
        /// The narrowed grant's guest path.
        guest: String,
        /// The host path of what is there.
        path: PathBuf,
    },
    /// The grant's guest path is not within any of the manifest's `[[fs]]` grants, or its
    /// host path is not the one the manifest grant maps that guest path to. A grant that
    /// passed `Capabilities::covers` never is.
    #[error(
        "fs grant {guest}: {} is not the manifest's grant of that guest path",
        host.display()
    )]
    Uncovered {
        /// The grant's guest path.
        guest: String,
        /// Its host path.
        host: PathBuf,
    },
    /// Any other failure to open a directory on the way (missing, no permission).
    #[error("fs grant {guest}: cannot open {}: {error}", path.display())]
    Io {
        /// The grant's guest path.
        guest: String,
        /// The host path that could not be opened.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
}

/// Opens the directory of each of `grants` (a task's grants: the manifest's, or narrowed
/// from them), in order, from `roots`, the manifest's grants as resolved at load.
///
/// A grant at a manifest grant's guest path is that grant's directory, opened by its host
/// path and refused unless it is the directory resolved at load
/// ([`DirError::Replaced`]). A grant below one is reached from there, component by
/// component, never following a symlink ([`DirError::Symlink`],
/// [`DirError::NotADirectory`]).
///
/// # Ambient Authority
///
/// Opens each manifest grant's host directory by its path, with the authority of the
/// process. This is one of the few places where a task's capabilities are made from
/// ambient authority; nothing below a manifest grant is opened by host path.
pub fn open(
    grants: &[FsGrant],
    roots: &[RootGrant],
    _ambient: AmbientAuthority,
) -> Result<Vec<File>, DirError> {
    grants.iter().map(|g| open_one(g, roots)).collect()
}

fn open_one(grant: &FsGrant, roots: &[RootGrant]) -> Result<File, DirError> {
    let uncovered = || DirError::Uncovered {
        guest: grant.guest.clone(),
        host: grant.host.clone(),
    };
    let root = roots
        .iter()
        .find(|r| within(&grant.guest, &r.grant.guest))
        .ok_or_else(uncovered)?;
    let mut dir = open_root(root, &grant.guest)?;
    let mut host = root.grant.host.clone();
    let below = &grant.guest[root.grant.guest.len()..];
    for name in below.split('/').filter(|c| !c.is_empty()) {
        // Guest paths are normalized (no `.` or `..`); a name that is not a plain one would
        // not be the grant's directory anyway.
        if name == "." || name == ".." {
            return Err(uncovered());
        }
        host.push(name);
        dir = open_below(&dir, name, &host, &grant.guest)?;
    }
    // What was opened is derived from the guest path; a grant whose host path says
    // otherwise was not made by narrowing this manifest's grant.
    if host != grant.host {
        return Err(uncovered());
    }
    Ok(dir)
}

/// Opens a manifest grant's host directory by its path and checks that it is the one
/// resolved at load. `guest` is the task grant's guest path, for errors.
fn open_root(root: &RootGrant, guest: &str) -> Result<File, DirError> {
    let host = &root.grant.host;
    let io = |error| DirError::Io {
        guest: guest.to_owned(),
        path: host.clone(),
        error,
    };
    let dir = cap_primitives::fs::open_ambient_dir(host, cap_primitives::ambient_authority())
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => DirError::Replaced {
                guest: guest.to_owned(),
                host: host.clone(),
                was: root.id,
                now: now_at(host),
            },
            _ => io(e),
        })?;
    let id = DirId::of(&dir.metadata().map_err(io)?);
    if id != root.id {
        return Err(DirError::Replaced {
            guest: guest.to_owned(),
            host: host.clone(),
            was: root.id,
            now: match now_at(host) {
                // The path leads to a directory, just not that one.
                now if now.starts_with("a directory") => format!("another directory ({id})"),
                now => now,
            },
        });
    }
    Ok(dir)
}

/// What `host` is now, in words, for [`DirError::Replaced`]; looked up by path only to
/// describe it.
fn now_at(host: &Path) -> String {
    match std::fs::symlink_metadata(host) {
        Ok(meta) if meta.file_type().is_symlink() => match std::fs::read_link(host) {
            Ok(target) => format!("a symlink to {}", target.display()),
            Err(_) => "a symlink".to_owned(),
        },
        Ok(meta) if meta.is_dir() => format!("a directory ({})", DirId::of(&meta)),
        Ok(_) => "not a directory".to_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => "missing".to_owned(),
        Err(e) => format!("unreadable ({e})"),
    }
}

/// Opens the directory `name` in `dir` without following a symlink. `host` is its host
/// path and `guest` the narrowed grant's guest path, for errors.
fn open_below(dir: &File, name: &str, host: &Path, guest: &str) -> Result<File, DirError> {
    let name = Path::new(name);
    let symlink = || DirError::Symlink {
        guest: guest.to_owned(),
        path: host.to_owned(),
        // `readlinkat` of a single name relative to `dir`: it reads the link, follows
        // nothing. (cap-primitives' `read_link` refuses to show an absolute target.)
        target: rustix::fs::readlinkat(dir, name, Vec::new())
            .ok()
            .map(|t| PathBuf::from(std::ffi::OsString::from_vec(t.into_bytes()))),
    };
    let not_a_directory = || DirError::NotADirectory {
        guest: guest.to_owned(),
        path: host.to_owned(),
    };
    let io = |error| DirError::Io {
        guest: guest.to_owned(),
        path: host.to_owned(),
        error,
    };
    // Looked at first only to say what is in the way; the open refuses a symlink or a
    // file by itself, whatever is there by the time it runs.
    match cap_primitives::fs::stat(dir, name, FollowSymlinks::No) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(symlink()),
        Ok(meta) if !meta.is_dir() => return Err(not_a_directory()),
        Ok(_) => {}
        Err(e) => return Err(io(e)),
    }
    cap_primitives::fs::open_dir_nofollow(dir, name).map_err(|e| {
        match cap_primitives::fs::stat(dir, name, FollowSymlinks::No) {
            Ok(meta) if meta.file_type().is_symlink() => symlink(),
            Ok(meta) if !meta.is_dir() => not_a_directory(),
            _ => io(e),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::manifest::Access;

    fn root(dir: &Path, guest: &str) -> RootGrant {
        let host = dir.canonicalize().unwrap();
        let id = DirId::of(&std::fs::metadata(&host).unwrap());
        RootGrant {
            grant: FsGrant {
                host,
                guest: guest.into(),
                access: Access::ReadWrite,
            },
            id,
        }
    }

    fn below(root: &RootGrant, sub: &str) -> FsGrant {
        FsGrant {
            host: root.grant.host.join(sub),
            guest: format!("{}/{sub}", root.grant.guest),
            access: Access::Read,
        }
    }

    fn open_err(grant: &FsGrant, roots: &[RootGrant]) -> String {
        open(
            std::slice::from_ref(grant),
            roots,
            cap_std::ambient_authority(),
        )
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn a_narrowed_directory_is_reached_component_by_component() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        std::fs::write(tmp.path().join("a/b/f"), "x").unwrap();
        let r = root(tmp.path(), "/ws");
        let opened = open(
            &[r.grant.clone(), below(&r, "a/b")],
            std::slice::from_ref(&r),
            cap_std::ambient_authority(),
        )
        .unwrap();
        let meta = cap_primitives::fs::stat(&opened[1], Path::new("f"), FollowSymlinks::No);
        assert!(meta.unwrap().is_file());
    }

    #[test]
    fn a_symlink_or_file_on_the_way_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a")).unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("a/out")).unwrap();
        // A symlink that stays inside the grant is refused as well: nothing is followed.
        std::os::unix::fs::symlink("..", tmp.path().join("a/up")).unwrap();
        std::fs::write(tmp.path().join("a/file"), "x").unwrap();
        let r = root(tmp.path(), "/ws");
        let roots = std::slice::from_ref(&r);
        let err = open_err(&below(&r, "a/out/x"), roots);
        assert!(
            err.starts_with("fs grant /ws/a/out/x: ") && err.contains("a/out is a symlink (to "),
            "{err}"
        );
        let err = open_err(&below(&r, "a/up"), roots);
        assert!(err.contains("a/up is a symlink (to ..)"), "{err}");
        let err = open_err(&below(&r, "a/file"), roots);
        assert!(err.contains("a/file is not a directory"), "{err}");
        let err = open_err(&below(&r, "a/none"), roots);
        assert!(
            err.starts_with("fs grant /ws/a/none: cannot open "),
            "{err}"
        );
    }

    #[test]
    fn a_manifest_directory_replaced_since_load_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("ws")).unwrap();
        let r = root(&tmp.path().join("ws"), "/ws");
        let roots = std::slice::from_ref(&r);
        std::fs::rename(tmp.path().join("ws"), tmp.path().join("ws.old")).unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("ws")).unwrap();
        let err = open_err(&r.grant, roots);
        assert!(
            err.starts_with("fs grant /ws: ")
                && err.contains("is no longer the directory the manifest granted at load")
                && err.contains(&format!("now a symlink to {}", outside.path().display())),
            "{err}"
        );
        // A narrowed grant below it is refused for the same reason.
        let err = open_err(&below(&r, "sub"), roots);
        assert!(err.starts_with("fs grant /ws/sub: "), "{err}");
        assert!(err.contains("now a symlink"), "{err}");

        std::fs::remove_file(tmp.path().join("ws")).unwrap();
        std::fs::create_dir(tmp.path().join("ws")).unwrap();
        let err = open_err(&r.grant, roots);
        assert!(
            err.contains("it is now another directory (device "),
            "{err}"
        );

        std::fs::remove_dir(tmp.path().join("ws")).unwrap();
        std::fs::write(tmp.path().join("ws"), "x").unwrap();
        let err = open_err(&r.grant, roots);
        assert!(err.contains("it is now not a directory"), "{err}");

        std::fs::remove_file(tmp.path().join("ws")).unwrap();
        std::fs::rename(tmp.path().join("ws.old"), tmp.path().join("ws")).unwrap();
        open(
            std::slice::from_ref(&r.grant),
            roots,
            cap_std::ambient_authority(),
        )
        .unwrap();
    }

    #[test]
    fn a_grant_outside_every_root_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let r = root(tmp.path(), "/ws");
        let roots = std::slice::from_ref(&r);
        let other = FsGrant {
            host: r.grant.host.clone(),
            guest: "/other".into(),
            access: Access::Read,
        };
        assert!(open_err(&other, roots).contains("is not the manifest's grant"));
        // Host path not derived from the guest path.
        let mut wrong = below(&r, "a");
        wrong.host = "/etc".into();
        std::fs::create_dir(tmp.path().join("a")).unwrap();
        assert!(open_err(&wrong, roots).contains("/etc is not the manifest's grant"));
    }
}
