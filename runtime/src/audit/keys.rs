//! Key files: where Warden keeps its secrets, and how they are created and read.
//!
//! Three secrets live in [`keys_dir`](super::keys_dir), a directory of their own
//! (mode 0700) apart from the audit log's: the host key that signs checkpoints, the issuer key
//! that signs grant tokens, and the secret that authenticates compiled components in the cache.
//! Each file is created on first use with mode 0600, written aside and linked into place, so
//! that it appears whole or not at all and a key another process created first is never
//! replaced; one that its group or others may read is refused.
//!
//! Why apart from the log: whoever can write the log's directory can delete and create files
//! there. A key beside the log could be deleted, and Warden would make a new one and sign
//! whatever the log then holds with it.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Why a key file or its directory was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The key file's group or others may read it.
    #[error("{} is readable by others (mode {mode:o})", path.display())]
    Readable {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The directory holding keys is open to others.
    #[error(
        "{} holds keys but is {what} by others (mode {mode:o}): chmod 700 it",
        path.display()
    )]
    OpenDir {
        /// The directory.
        path: PathBuf,
        /// `readable` or `writable`.
        what: &'static str,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading or writing failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> KeyFileError + '_ {
    move |error| KeyFileError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Creates `dir` and what leads to it, each with mode 0700 if missing, and returns the mode
/// `dir` has (an existing one keeps its own).
fn create_dir_0700(dir: &Path) -> Result<u32, KeyFileError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    Ok(std::fs::metadata(dir)
        .map_err(io(dir))?
        .permissions()
        .mode()
        & 0o7777)
}

/// Creates `dir` (and what leads to it) with mode 0700, and refuses it if its group or others
/// may do anything in it: Warden's own keys directory.
pub fn private_dir(dir: &Path) -> Result<(), KeyFileError> {
    let mode = create_dir_0700(dir)?;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::OpenDir {
            path: dir.to_path_buf(),
            what: if mode & 0o022 != 0 {
                "writable"
            } else {
                "readable"
            },
            mode,
        });
    }
    Ok(())
}

/// Creates the directory of a key file named by the user (`--key`, `--grant-key`) with mode
/// 0700 if it is missing, and refuses one that others may write without the sticky bit:
/// anyone who can write it could delete the key and have Warden make another.
fn key_parent(path: &Path) -> Result<(), KeyFileError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mode = create_dir_0700(dir)?;
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(KeyFileError::OpenDir {
            path: dir.to_path_buf(),
            what: "writable",
            mode,
        });
    }
    Ok(())
}

/// The text of the key file at `path`, or, if there is none, `create()` written there (mode
/// 0600). A file others may read is refused; what the text means is the caller's to check,
/// and a file that does not parse is never replaced.
pub fn load_or_create(
    path: &Path,
    create: impl Fn() -> Result<Zeroizing<String>, KeyFileError>,
) -> Result<Zeroizing<String>, KeyFileError> {
    loop {
        match std::fs::read_to_string(path).map(Zeroizing::new) {
            Ok(text) => {
                let mode = std::fs::metadata(path)
                    .map_err(io(path))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(KeyFileError::Readable {
                        path: path.to_path_buf(),
                        mode: mode & 0o777,
                    });
                }
                return Ok(text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(path)(e)),
        }
        key_parent(path)?;
        let text = create()?;
        // Written aside, then linked into place: the key appears whole or not at all, and a
        // key another process created first is never replaced (then that one is read).
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut file| {
                file.write_all(text.as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => return Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(path)(e)),
        }
    }
}

/// A 32-byte secret kept as 64 hex digits in the key file at `path`, created at random on
/// first use (see [`load_or_create`]).
pub fn secret(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let text = load_or_create(path, || {
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *raw).map_err(|e| KeyFileError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::other(format!("no randomness: {e}")),
        })?;
        let mut text = Zeroizing::new(warden_host_api::hex::encode(&*raw));
        text.push('\n');
        Ok(text)
    })?;
    let digits = text.trim();
    let mut out = Zeroizing::new([0u8; 32]);
    let valid = digits.len() == 64
        && digits
            .as_bytes()
            .chunks(2)
            .zip(out.iter_mut())
            .all(|(pair, byte)| {
                let pair = std::str::from_utf8(pair).unwrap_or("");
                u8::from_str_radix(pair, 16).map(|b| *byte = b).is_ok()
            });
    if !valid {
        return Err(KeyFileError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::other("not a secret: it should hold 64 hex digits"),
        });
    }
    Ok(out)
}

/// Moves what an older Warden kept beside the audit log into today's places, and says what
/// it moved: `host.key` and `grant.key` from the state directory into `keys/`, and the
/// default log (`audit.jsonl` and its checkpoints) into `audit/`. Nothing is moved onto a
/// file that exists already.
///
/// # Ambient Authority
///
/// Renames files under the [state directory](super::state_dir) by path.
pub fn migrate_legacy_layout() -> Result<Vec<String>, KeyFileError> {
    let state = super::state_dir();
    let mut moved = Vec::new();
    let keys = [
        ("host.key", super::default_key_path()),
        ("grant.key", super::default_grant_key_path()),
    ];
    for (name, new) in keys {
        let old = state.join(name);
        if old.is_file() && !new.exists() {
            private_dir(&super::keys_dir())?;
            if move_file(&old, &new)? {
                moved.push(format!("moved {} to {}", old.display(), new.display()));
            }
        }
    }
    let (old, new) = (state.join("audit.jsonl"), super::default_path());
    let (old_cps, new_cps) = (
        super::log::checkpoints_path(&old),
        super::log::checkpoints_path(&new),
    );
    if old.is_file() && !new.exists() && !new_cps.exists() {
        if let Some(dir) = new.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        // The checkpoints first: a log without them would be refused until adopted.
        if old_cps.exists() {
            move_file(&old_cps, &new_cps)?;
        }
        if move_file(&old, &new)? {
            moved.push(format!("moved {} to {}", old.display(), new.display()));
        }
    }
    Ok(moved)
}

/// Moves `old` to `new` unless something is at `new` already (then both stay): linked, then
/// unlinked, so that a file another process put there first is never replaced. `false` when
/// there was nothing to move, or it was in the way.
fn move_file(old: &Path, new: &Path) -> Result<bool, KeyFileError> {
    match std::fs::hard_link(old, new) {
        Ok(()) => match std::fs::remove_file(old) {
            Ok(()) => Ok(true),
            // Another process moved it at the same time.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(io(old)(e)),
        },
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::AlreadyExists
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(io(old)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_private_stable_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/cache.key");
        let first = secret(&path).unwrap();
        assert_eq!(*first, *secret(&path).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = secret(&path).unwrap_err().to_string();
        assert!(err.contains("readable by others (mode 640)"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "junk\n").unwrap();
        assert!(secret(&path).unwrap_err().to_string().contains("64 hex"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "junk\n");
    }

    #[test]
    fn key_directories_open_to_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        private_dir(&keys).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = private_dir(&keys).unwrap_err().to_string();
        assert!(
            err.contains("readable by others (mode 755): chmod 700"),
            "{err}"
        );
        // A directory named by the user may be readable, not writable by others.
        assert!(key_parent(&keys.join("host.key")).is_ok());
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = secret(&keys.join("cache.key")).unwrap_err().to_string();
        assert!(err.contains("writable by others (mode 777)"), "{err}");
    }
}
