//! The local content-addressed store of pulled components: what makes a pulled tool load
//! offline, and a pinned one load the same bytes forever.
//!
//! ```text
//! store/                      mode 0700
//!   blobs/sha256/<hex>        manifests, configs, components and signatures, by digest
//!   refs/<registry>/<repository>/<tag>
//!                             "sha256:<hex>": what the tag named when it was last pulled
//!   tmp/                      downloads in progress
//! ```
//!
//! Every read checks the content against its digest, so a blob changed after it was
//! pulled is an error naming it, never a different tool. A ref file is only a hint: a
//! manifest pinned by digest never reads one, and a tool under `signed-by` is checked
//! against its signature whatever the ref says.

use super::spec::{Descriptor, ImageManifest};
use super::{OciError, Reference, Sha256};
use sha2::Digest as _;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An artifact published beside a component (a signature): its manifest, and each of its
/// layers with its bytes.
pub type Attached = (ImageManifest, Vec<(Descriptor, Vec<u8>)>);

/// A component as the store holds it, checked against its digests.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The reference, pinned to the manifest digest it was found at.
    pub reference: Reference,
    /// The component's manifest.
    pub manifest: ImageManifest,
    /// Its component layer.
    pub layer: Descriptor,
    /// The component's bytes.
    pub bytes: Vec<u8>,
}

/// The store at one directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// `$WARDEN_STORE`, or `store/` under Warden's [state directory](crate::audit::state_dir).
    pub fn default_dir() -> PathBuf {
        std::env::var_os("WARDEN_STORE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::audit::state_dir().join("store"))
    }

    /// The store at `dir`, created (mode 0700) if missing.
    pub fn open(dir: &Path) -> Result<Store, OciError> {
        for sub in ["blobs/sha256", "refs", "tmp"] {
            let path = dir.join(sub);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(|error| OciError::Store { path, error })?;
        }
        Ok(Store {
            root: dir.to_owned(),
        })
    }

    /// The store at [`Store::default_dir`], created if missing.
    pub fn open_default() -> Result<Store, OciError> {
        Store::open(&Store::default_dir())
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` is kept.
    pub fn blob_path(&self, digest: &Sha256) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    fn ref_path(&self, registry: &str, repository: &str, tag: &str) -> PathBuf {
        self.root
            .join("refs")
            .join(registry)
            .join(repository)
            .join(tag)
    }

    /// Whether the store holds an intact copy of `digest`.
    pub fn has(&self, digest: &Sha256) -> bool {
        self.blob(digest).is_ok()
    }

    /// The blob `digest`, checked.
    pub fn blob(&self, digest: &Sha256) -> Result<Vec<u8>, OciError> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).map_err(|error| OciError::Store {
            path: path.clone(),
            error,
        })?;
        let actual = Sha256::of(&bytes);
        if actual != *digest {
            return Err(OciError::Corrupt {
                path,
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Stores `bytes` under their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Sha256, OciError> {
        let digest = Sha256::of(bytes);
        let mut w = self.writer(digest)?;
        w.write(bytes)?;
        w.finish()?;
        Ok(digest)
    }

    /// A writer that stores a blob expected to have `digest` once all of it is written
    /// and checked ([`BlobWriter::finish`]); nothing is stored if it is dropped or wrong.
    pub fn writer(&self, digest: Sha256) -> Result<BlobWriter, OciError> {
        let tmp = self.root.join("tmp");
        let file = tempfile::NamedTempFile::new_in(&tmp)
            .map_err(|error| OciError::Store { path: tmp, error })?;
        Ok(BlobWriter {
            file,
            hash: sha2::Sha256::new(),
            expected: digest,
            dest: self.blob_path(&digest),
            written: 0,
        })
    }

    /// Records that `tag` of `reference`'s repository named `digest` when it was pulled.
    pub fn set_tag(
        &self,
        reference: &Reference,
        tag: &str,
        digest: Sha256,
    ) -> Result<(), OciError> {
        let path = self.ref_path(reference.registry(), reference.repository(), tag);
        let store = |error| OciError::Store {
            path: path.clone(),
            error,
        };
        let dir = path.parent().expect("a ref path has a parent");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(store)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(store)?;
        writeln!(tmp, "{digest}").map_err(store)?;
        tmp.persist(&path).map_err(|e| store(e.error))?;
        Ok(())
    }

    /// What `tag` of `reference`'s repository named when it was last pulled, if it was.
    pub fn tag(&self, reference: &Reference, tag: &str) -> Result<Option<Sha256>, OciError> {
        let path = self.ref_path(reference.registry(), reference.repository(), tag);
        match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|reason| OciError::Store {
                    path,
                    error: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(OciError::Store { path, error }),
        }
    }

    /// Forgets what `tag` named, if anything.
    pub fn forget_tag(&self, reference: &Reference, tag: &str) -> Result<(), OciError> {
        let path = self.ref_path(reference.registry(), reference.repository(), tag);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(OciError::Store { path, error: e })
            }
            _ => Ok(()),
        }
    }

    /// The artifact published beside `pinned` under `sha256-<hex>.<suffix>` when it was
    /// pulled, with its layers' bytes, each checked; `None` if there was none.
    pub fn attached(&self, pinned: &Reference, suffix: &str) -> Result<Option<Attached>, OciError> {
        let digest = pinned.digest().expect("a pinned reference");
        let tag = digest.tag(suffix);
        let Some(at) = self.tag(pinned, &tag)? else {
            return Ok(None);
        };
        let at_ref = pinned.tagged(&tag).at(at);
        let manifest = ImageManifest::parse(&at_ref, &self.blob(&at)?)?;
        let mut layers = Vec::new();
        for layer in &manifest.layers {
            layers.push((layer.clone(), self.blob(&layer.digest)?));
        }
        Ok(Some((manifest, layers)))
    }

    /// The manifest digest `reference` names here: its pin, else what its tag named when
    /// it was last pulled.
    pub fn resolve(&self, reference: &Reference) -> Result<Sha256, OciError> {
        if let Some(d) = reference.digest() {
            return Ok(d);
        }
        let tag = reference.tag().expect("a reference has a tag or a digest");
        self.tag(reference, tag)?
            .ok_or_else(|| OciError::NotPulled {
                reference: reference.to_string(),
                store: self.root.clone(),
            })
    }

    /// The component `reference` names, from the store alone, every digest checked.
    pub fn component(&self, reference: &Reference) -> Result<Stored, OciError> {
        let digest = self.resolve(reference)?;
        let pinned = reference.at(digest);
        let manifest_bytes = match self.blob(&digest) {
            Err(OciError::Store { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(OciError::NotPulled {
                    reference: pinned.to_string(),
                    store: self.root.clone(),
                });
            }
            other => other?,
        };
        let manifest = ImageManifest::parse(&pinned, &manifest_bytes)?;
        let layer = manifest.component_layer(&pinned)?.clone();
        let bytes = match self.blob(&layer.digest) {
            Err(OciError::Store { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(OciError::NotPulled {
                    reference: pinned.to_string(),
                    store: self.root.clone(),
                });
            }
            other => other?,
        };
        if bytes.len() as u64 != layer.size {
            return Err(OciError::BadManifest {
                reference: pinned.to_string(),
                reason: format!(
                    "its layer {} is {} bytes, but the manifest says {}",
                    layer.digest,
                    bytes.len(),
                    layer.size
                ),
            });
        }
        Ok(Stored {
            reference: pinned,
            manifest,
            layer,
            bytes,
        })
    }
}

use std::os::unix::fs::DirBuilderExt as _;

/// A blob being stored ([`Store::writer`]).
pub struct BlobWriter {
    file: tempfile::NamedTempFile,
    hash: sha2::Sha256,
    expected: Sha256,
    dest: PathBuf,
    written: u64,
}

impl BlobWriter {
    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), OciError> {
        self.hash.update(bytes);
        self.written += bytes.len() as u64;
        self.file.write_all(bytes).map_err(|error| OciError::Store {
            path: self.file.path().to_owned(),
            error,
        })
    }

    /// How many bytes were written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Checks the digest of what was written and stores it; a blob whose digest differs
    /// is discarded with [`OciError::DigestMismatch`].
    pub fn finish(self) -> Result<(), OciError> {
        let actual = Sha256::from_bytes(self.hash.finalize().into());
        if actual != self.expected {
            return Err(OciError::DigestMismatch {
                what: format!("blob {}", self.expected),
                expected: self.expected,
                actual,
            });
        }
        let path = self.file.path().to_owned();
        let store = |error| OciError::Store {
            path: path.clone(),
            error,
        };
        self.file.as_file().sync_data().map_err(store)?;
        self.file.persist(&self.dest).map_err(|e| store(e.error))?;
        Ok(())
    }
}
