//! Providers: where a secret's value is read from, each time a task needs it.
//!
//! - `env:NAME` reads warden's own environment. The tool's environment (`[env]`) is a
//!   different one, built from the manifest; a secret never appears in it.
//! - `file:PATH` opens the file and refuses it unless it is a regular file that neither
//!   group nor others may access (`mode & 0o077 == 0`): a credential anyone on the machine
//!   can read is already leaked, and warden should not make its use look controlled. One
//!   trailing newline (`\n` or `\r\n`) is dropped, as editors and `echo` add one.
//! - `vault:MOUNT/PATH#FIELD` reads a KV version 2 secret from HashiCorp Vault or OpenBao;
//!   see [`vault`].
//!
//! An empty value is refused whatever the provider: it is a misconfiguration, and an empty
//! string cannot be redacted.

pub mod vault;

use super::SecretValue;
use super::manifest::Source;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use vault::{Lease, Vault, VaultError};
use zeroize::Zeroizing;

/// Largest secret file read: anything bigger is not a credential.
pub const MAX_FILE: u64 = 1 << 20;

/// What a provider returned.
pub(crate) struct Fetched {
    pub value: SecretValue,
    /// The Vault lease of the response (empty for KV v2); `None` for other providers.
    pub lease: Option<Lease>,
    /// The KV version read, for Vault.
    pub version: Option<u64>,
}

/// Looks a variable up by name.
type Lookup = dyn Fn(&str) -> Option<OsString> + Send + Sync;

/// How providers read warden's environment: the process's, or a stand-in for tests.
#[derive(Clone)]
pub(crate) struct Env {
    lookup: Arc<Lookup>,
}

impl Env {
    /// The process environment.
    ///
    /// # Ambient Authority
    ///
    /// Reads the environment of the warden process, which is what `env:` sources and the
    /// `VAULT_*` variables name.
    pub fn process() -> Env {
        Env::from_fn(|name| std::env::var_os(name))
    }

    pub fn from_fn(lookup: impl Fn(&str) -> Option<OsString> + Send + Sync + 'static) -> Env {
        Env {
            lookup: Arc::new(lookup),
        }
    }

    pub fn get(&self, name: &str) -> Option<OsString> {
        (self.lookup)(name).filter(|v| !v.is_empty())
    }
}

/// The providers of one task: the environment, and a Vault client made on first use and
/// kept for renewals.
#[derive(Clone)]
pub(crate) struct Providers {
    env: Env,
    vault: Arc<Mutex<Option<Arc<Vault>>>>,
}

impl Providers {
    pub fn new(env: Env) -> Providers {
        Providers {
            env,
            vault: Arc::default(),
        }
    }

    /// Reads the current value of `source`.
    pub async fn fetch(&self, source: &Source) -> Result<Fetched, FetchError> {
        let fetched = match source {
            Source::Env { var } => Fetched {
                value: read_env(&self.env, var)?,
                lease: None,
                version: None,
            },
            Source::File { path } => Fetched {
                value: read_file(path)?,
                lease: None,
                version: None,
            },
            Source::Vault { mount, path, field } => self.vault()?.read(mount, path, field).await?,
        };
        if fetched.value.is_empty() {
            return Err(FetchError::Empty);
        }
        Ok(fetched)
    }

    /// Renews a Vault lease; the value stays what it was.
    pub async fn renew(&self, lease: &Lease) -> Result<Lease, FetchError> {
        Ok(self.vault()?.renew(lease).await?)
    }

    fn vault(&self) -> Result<Arc<Vault>, FetchError> {
        let mut slot = self.vault.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = &*slot {
            return Ok(v.clone());
        }
        let v = Arc::new(Vault::from_env(&self.env)?);
        *slot = Some(v.clone());
        Ok(v)
    }
}

fn read_env(env: &Env, var: &str) -> Result<SecretValue, FetchError> {
    let value = env.get(var).ok_or_else(|| FetchError::EnvUnset {
        var: var.to_owned(),
    })?;
    Ok(SecretValue::new(os_bytes(value)))
}

#[cfg(unix)]
fn os_bytes(s: OsString) -> Vec<u8> {
    std::os::unix::ffi::OsStringExt::into_vec(s)
}

#[cfg(not(unix))]
fn os_bytes(s: OsString) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

/// Reads a secret file that only its owner may access.
///
/// # Ambient Authority
///
/// Opens `path` with the authority of the process.
pub(crate) fn read_file(path: &Path) -> Result<SecretValue, FetchError> {
    let io = |error: std::io::Error| FetchError::File {
        path: path.to_owned(),
        error,
    };
    // Looked at before opening so that a FIFO is refused rather than blocked on; the
    // checks that decide are made again on the opened file below, so that a file swapped
    // in between is judged by what was actually opened.
    let before = std::fs::metadata(path).map_err(io)?;
    if !before.is_file() {
        return Err(FetchError::NotRegular {
            path: path.to_owned(),
        });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(FetchError::NotRegular {
            path: path.to_owned(),
        });
    }
    check_mode(path, &meta)?;
    if meta.len() > MAX_FILE {
        return Err(FetchError::TooLarge {
            path: path.to_owned(),
            len: meta.len(),
        });
    }
    // Sized up front: a Vec that grows leaves copies of what it held behind, unwiped.
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(FetchError::TooLarge {
            path: path.to_owned(),
            len: bytes.len() as u64,
        });
    }
    let newline = if bytes.ends_with(b"\r\n") {
        2
    } else {
        usize::from(bytes.ends_with(b"\n"))
    };
    let len = bytes.len() - newline;
    // Truncating leaves the bytes in the buffer; Zeroizing wipes all of it on drop.
    bytes.truncate(len);
    Ok(SecretValue::from_zeroizing(bytes))
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), FetchError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FetchError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), FetchError> {
    Ok(())
}

/// Why a provider could not supply a value. Never carries the value, nor any part of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// `env:NAME` and `NAME` is unset or empty in warden's environment.
    #[error("{var} is not set in warden's environment (the tool's [env] is separate)")]
    EnvUnset {
        /// The variable.
        var: String,
    },
    /// The secret file could not be opened or read.
    #[error("cannot read {}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The secret file is a directory, device, FIFO or socket.
    #[error("{} is not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// Group or others may access the secret file.
    #[error(
        "{} has mode {mode:04o}, which lets group or others access it: run `chmod 600 {}` (and check who could have read it)",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The secret file is larger than [`MAX_FILE`].
    #[error("{} is {len} bytes, more than a secret can be ({MAX_FILE} bytes at most)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
    /// The provider returned an empty value.
    #[error("the value is empty")]
    Empty,
    /// Vault or OpenBao could not supply the value.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl FetchError {
    /// A short code for records: `error:<code>`.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::EnvUnset { .. } => "env-unset",
            FetchError::File { .. } => "file-unreadable",
            FetchError::NotRegular { .. } => "file-not-regular",
            FetchError::Permissions { .. } => "file-permissions",
            FetchError::TooLarge { .. } => "file-too-large",
            FetchError::Empty => "empty",
            FetchError::Vault(e) => e.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn files() {
        let dir = tempfile::tempdir().unwrap();
        let ok = write(dir.path(), "ok", b"s3cret\n", 0o600);
        assert_eq!(read_file(&ok).unwrap().expose(), b"s3cret");
        let crlf = write(dir.path(), "crlf", b"s3cret\r\n", 0o400);
        assert_eq!(read_file(&crlf).unwrap().expose(), b"s3cret");
        let two = write(dir.path(), "two", b"s3cret\n\n", 0o600);
        assert_eq!(read_file(&two).unwrap().expose(), b"s3cret\n");

        let open = write(dir.path(), "open", b"s3cret", 0o644);
        let err = read_file(&open).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("has mode 0644"), "{message}");
        assert!(
            message.contains(&format!("chmod 600 {}", open.display())),
            "{message}"
        );
        assert!(!message.contains("s3cret"));
        assert_eq!(err.code(), "file-permissions");
        let group = write(dir.path(), "group", b"x", 0o640);
        assert!(matches!(
            read_file(&group),
            Err(FetchError::Permissions { mode: 0o640, .. })
        ));

        assert!(matches!(
            read_file(dir.path()),
            Err(FetchError::NotRegular { .. })
        ));
        assert!(matches!(
            read_file(&dir.path().join("missing")),
            Err(FetchError::File { .. })
        ));
    }

    #[tokio::test]
    async fn env_and_empty_values() {
        let env = Env::from_fn(|name| match name {
            "TOKEN" => Some("t0k".into()),
            "EMPTY" => Some("".into()),
            _ => None,
        });
        let p = Providers::new(env);
        let v = p
            .fetch(&Source::Env {
                var: "TOKEN".into(),
            })
            .await
            .unwrap();
        assert_eq!(v.value.expose(), b"t0k");
        let err = p
            .fetch(&Source::Env {
                var: "EMPTY".into(),
            })
            .await
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "EMPTY is not set in warden's environment (the tool's [env] is separate)"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty", b"\n", 0o600);
        let err = p.fetch(&Source::File { path: empty }).await.err().unwrap();
        assert_eq!(err.to_string(), "the value is empty");
    }
}
