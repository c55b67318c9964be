//! The compiled-component cache: machine code is loaded from it only if this host wrote it.
//!
//! Compiling a component takes tens of milliseconds to seconds; loading a precompiled one,
//! about a hundred microseconds. But a precompiled artifact is native code that wasmtime maps
//! and runs as it is, so a file in the cache decides what tasks execute. Whoever can replace
//! one (another local user with write access, a tool whose grant reached the cache, a restored
//! backup) would run code of their choosing under every grant of that tool.
//!
//! So each entry is authenticated: the file is a 32-byte BLAKE3 keyed hash followed by the
//! artifact, keyed with a secret from a key file kept apart from the cache
//! ([`crate::audit::keys`]), over the entry's identity (the component's bytes and the
//! engine's compilation settings) and the artifact. An entry whose tag does not verify, for
//! another component's artifact as much as for altered bytes, is compiled again from the
//! component and written over; it is never loaded. The file is copied once into a private
//! memfd, hashed as it is copied, and sealed against every write before wasmtime maps it, so
//! what runs is what was checked: neither the cache file's owner nor anyone else can change
//! it between the check and the last use. (Where memfds are not available, the file is read
//! into memory, checked and deserialized from there, at the cost of a second copy.)
//!
//! Entries are named by a keyed hash of their identity too, so that runtimes with different
//! secrets sharing one directory keep apart instead of overwriting each other.

use crate::audit::keys::{self, KeyFileError};
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;
use zeroize::Zeroizing;

/// Length of the tag in front of each artifact.
const TAG: usize = 32;

/// A directory of compiled components, authenticated with a host secret.
pub struct CodeCache {
    dir: PathBuf,
    /// Keys entry names.
    name_key: Zeroizing<[u8; 32]>,
    /// Keys the tag of each entry.
    tag_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for CodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Why the cache cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The cache directory is open to others, or cannot be created.
    #[error("compiled-component cache {}: {why}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The key file cannot be read or made.
    #[error("compiled-component cache key: {0}")]
    Key(#[from] KeyFileError),
}

impl CodeCache {
    /// The cache in `dir` (created with mode 0700, refused if others may write it), its
    /// entries authenticated with the secret in `key_file` (created on first use, mode 0600).
    ///
    /// # Ambient Authority
    ///
    /// Creates and reads `dir` and `key_file` by path, with the authority of the process.
    pub fn open(dir: &Path, key_file: &Path) -> Result<CodeCache, CacheError> {
        private_dir(dir).map_err(|why| CacheError::Dir {
            dir: dir.to_path_buf(),
            why,
        })?;
        let secret = keys::secret(key_file)?;
        let derive = |context: &str| Zeroizing::new(blake3::derive_key(context, &*secret));
        Ok(CodeCache {
            dir: dir.to_path_buf(),
            name_key: derive("warden 2026 compiled-component cache entry name"),
            tag_key: derive("warden 2026 compiled-component cache entry tag"),
        })
    }

    /// The component of `wasm`, compiled for `engine`: loaded from the cache if an entry for
    /// exactly these bytes and settings carries a valid tag, else compiled and stored.
    ///
    /// A cache that cannot be read or written only costs a compilation.
    pub fn component(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Component> {
        self.component_compiling(engine, wasm, &hash(wasm), || ())
    }

    /// Like [`component`](Self::component), for `wasm` whose BLAKE3 hash the caller already
    /// has (`digest`, trusted to be of `wasm`), with `compiling` called when there is no
    /// valid entry and the component must be compiled, and what it returns held until that
    /// ends: how a host watches only the slow path ([`super::slow`]).
    pub fn component_compiling<G>(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &blake3::Hash,
        compiling: impl FnOnce() -> G,
    ) -> wasmtime::Result<Component> {
        let id = entry_id(engine, digest);
        let path = self.path_of(&id);
        if let Some(component) = self.load(engine, &id, &path) {
            return Ok(component);
        }
        let watch = compiling();
        let component = Component::new(engine, wasm);
        drop(watch);
        let component = component?;
        if let Ok(artifact) = component.serialize() {
            // Best effort: the next run compiles again if this fails.
            let _ = self.store(&id, &path, &artifact);
        }
        Ok(component)
    }

    /// Where the entry `id` is: `<keyed hash>.cwasm`.
    pub fn path_of(&self, id: &[u8; 32]) -> PathBuf {
        let name = blake3::keyed_hash(&self.name_key, id);
        self.dir.join(format!("{}.cwasm", name.to_hex()))
    }

    /// The file of the entry for `wasm` compiled by `engine`, whether or not it exists.
    pub fn entry_path(&self, engine: &Engine, wasm: &[u8]) -> PathBuf {
        self.path_of(&entry_id(engine, &hash(wasm)))
    }

    fn tag(&self, id: &[u8; 32], artifact: &[u8]) -> blake3::Hash {
        let mut h = self.tagging(id);
        update(&mut h, artifact);
        h.finalize()
    }

    /// The hasher of the tag of entry `id`, before the artifact.
    fn tagging(&self, id: &[u8; 32]) -> blake3::Hasher {
        let mut h = blake3::Hasher::new_keyed(&self.tag_key);
        h.update(id);
        h
    }

    fn load(&self, engine: &Engine, id: &[u8; 32], path: &Path) -> Option<Component> {
        #[cfg(target_os = "linux")]
        if let Some(sealed) = self.load_sealed(engine, id, path) {
            return sealed.ok();
        }
        let bytes = std::fs::read(path).ok()?;
        if bytes.len() <= TAG {
            return None;
        }
        let (tag, artifact) = bytes.split_at(TAG);
        let tag: [u8; TAG] = tag.try_into().ok()?;
        // blake3::Hash compares in constant time.
        if blake3::Hash::from_bytes(tag) != self.tag(id, artifact) {
            return None;
        }
        #[expect(
            unsafe_code,
            reason = "deserializing runs the artifact as native code; it is the one this host \
                      compiled for exactly these component bytes and engine settings, as its \
                      keyed tag shows, and is read from memory that nothing else can change"
        )]
        // SAFETY: `artifact` was produced by `Component::serialize` of this host for an engine
        // with the same compilation settings (both are in `id`, which the tag covers), and it
        // is an owned copy of the file, checked after it was read.
        let component = unsafe { Component::deserialize(engine, artifact) };
        component.ok()
    }

    /// Loads the entry at `path` from a sealed memfd copy: `Some(Err)` for an entry that is
    /// missing or does not verify, `None` where a memfd cannot be made or reopened (no
    /// `/proc`), for the caller to read the file instead.
    ///
    /// Reading the file into memory and deserializing from there costs two copies of the
    /// artifact, each into freshly faulted pages (for a Python tool's ~35 MB, most of a
    /// first task's time). Here the one copy goes into the memfd through a reused buffer,
    /// the tag is computed over the bytes as they are written, and wasmtime maps the sealed
    /// file instead of copying it again.
    #[cfg(target_os = "linux")]
    fn load_sealed(
        &self,
        engine: &Engine,
        id: &[u8; 32],
        path: &Path,
    ) -> Option<std::io::Result<Component>> {
        use rustix::fs::{MemfdFlags, SealFlags};
        use std::io::Read as _;
        use std::os::fd::AsRawFd as _;

        let memfd = match rustix::fs::memfd_create(
            "warden-cached-component",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        ) {
            Ok(fd) => std::fs::File::from(fd),
            Err(_) => return None,
        };
        // wasmtime opens the path it is given; this one names the memfd.
        let proc = PathBuf::from(format!("/proc/self/fd/{}", memfd.as_raw_fd()));
        if std::fs::metadata(&proc).is_err() {
            return None;
        }
        let copied = (|| {
            let mut file = std::fs::File::open(path)?;
            let mut tag = [0u8; TAG];
            file.read_exact(&mut tag)?;
            let mut h = self.tagging(id);
            let mut copy = &memfd;
            let mut buf = vec![0u8; PARALLEL_FROM];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                update(&mut h, &buf[..n]);
                copy.write_all(&buf[..n])?;
            }
            // From here the memfd holds exactly the bytes hashed, and nothing can change them.
            rustix::fs::fcntl_add_seals(
                &memfd,
                SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL,
            )?;
            // blake3::Hash compares in constant time.
            if blake3::Hash::from_bytes(tag) != h.finalize() {
                return Err(std::io::Error::other("the entry's tag does not verify"));
            }
            Ok(())
        })();
        if let Err(e) = copied {
            return Some(Err(e));
        }
        #[expect(
            unsafe_code,
            reason = "deserializing runs the artifact as native code; it is the one this host \
                      compiled for exactly these component bytes and engine settings, as its \
                      keyed tag shows, and is mapped from a sealed file nothing can change"
        )]
        // SAFETY: the memfd holds what `Component::serialize` of this host produced for an
        // engine with the same compilation settings (both are in `id`, which the tag covers,
        // and the tag was computed over exactly the bytes written to it); it is sealed against
        // writes, growing and shrinking, so the mapping wasmtime makes cannot change under it.
        let component = unsafe { Component::deserialize_file(engine, &proc) };
        Some(component.map_err(|e| std::io::Error::other(format!("{e:#}"))))
    }

    fn store(&self, id: &[u8; 32], path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.dir.join(format!(
            ".{}.tmp.{}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut file| {
                file.write_all(self.tag(id, artifact).as_bytes())?;
                file.write_all(artifact)
            })
            // Over whatever is there: an entry that did not verify is replaced.
            .and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

/// What an entry is of: the component's bytes and everything about the engine that decides
/// the machine code (wasmtime's own compatibility hash of its settings and version).
fn entry_id(engine: &Engine, digest: &blake3::Hash) -> [u8; 32] {
    struct Feed(blake3::Hasher);
    impl Hasher for Feed {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut feed = Feed(blake3::Hasher::new());
    feed.0.update(b"warden compiled component\0");
    feed.0.update(digest.as_bytes());
    engine.precompile_compatibility_hash().hash(&mut feed);
    *feed.0.finalize().as_bytes()
}

/// Inputs from this size on are hashed on every core: below it, handing chunks to other
/// threads costs more than it saves (blake3's guidance is about 128 KiB).
const PARALLEL_FROM: usize = 1 << 20;

/// BLAKE3 of `bytes`, on every core when they are large (a component, an artifact).
pub fn hash(bytes: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    update(&mut h, bytes);
    h.finalize()
}

fn update(h: &mut blake3::Hasher, bytes: &[u8]) {
    if bytes.len() >= PARALLEL_FROM {
        h.update_rayon(bytes);
    } else {
        h.update(bytes);
    }
}

/// Creates `dir` readable by its owner only, and refuses one others may write: whoever can
/// write the cache can at least make every run compile again.
fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| e.to_string())?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        return Err(format!(
            "writable by others (mode {:o}); make it private with chmod 700",
            mode & 0o777
        ));
    }
    Ok(())
}
