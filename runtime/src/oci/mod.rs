//! Components from OCI registries: `component = "oci://HOST/REPOSITORY:TAG"` in a
//! manifest, `warden pull`, and the local store that loads them offline.
//!
//! A component is published as the Wasm OCI artifact `wkg oci push` and Wassette use: an
//! image manifest with the config [`spec::WASM_CONFIG`] and one [`spec::WASM_LAYER`]
//! layer holding the component's bytes. [`pull`] fetches it, with any signatures published
//! beside it (tags `sha256-<manifest hex>.sig` for cosign, `.minisig` for minisign), into a
//! [`Store`]; loading reads the store only, so a pulled tool runs with the registry down,
//! and a manifest pinned by digest runs the same bytes whatever its tag points to later.

mod auth;
#[cfg(feature = "registry")]
mod client;
mod reference;
pub mod spec;
mod store;

pub use auth::{Auth, Credentials};
#[cfg(feature = "registry")]
pub use client::{Registry, RegistryOptions};
pub use reference::{Reference, Sha256};
pub use store::{Attached, BlobWriter, Store, Stored};

use std::path::PathBuf;

/// The tag suffixes of the signatures [`pull`] fetches beside a component: cosign's
/// `sig`, and Warden's `minisig`.
pub const SIGNATURE_SUFFIXES: [&str; 2] = ["sig", "minisig"];

/// The most one blob of a signature artifact may take.
pub const MAX_SIGNATURE_BLOB: u64 = 1 << 20;

/// Why a component could not be pulled or found in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The store has no copy of the reference.
    #[error(
        "{reference} is not in the store ({}): pull it first with `warden pull {reference}`",
        store.display()
    )]
    NotPulled {
        /// The reference.
        reference: String,
        /// The store's directory.
        store: PathBuf,
    },
    /// A file of the store could not be read or written.
    #[error("{}: {error}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A blob in the store no longer has its digest.
    #[error(
        "{}: holds {actual}, not the {expected} it was stored as: it was changed after it was \
         pulled; delete it and pull again",
        path.display()
    )]
    Corrupt {
        /// The blob's file.
        path: PathBuf,
        /// The digest it was stored under.
        expected: Sha256,
        /// The digest of what is there.
        actual: Sha256,
    },
    /// Content from the registry is not what its digest says.
    #[error("{what}: expected {expected}, the registry sent {actual}")]
    DigestMismatch {
        /// What was fetched.
        what: String,
        /// The digest it should have.
        expected: Sha256,
        /// The digest of what arrived.
        actual: Sha256,
    },
    /// The manifest is not a Wasm component artifact Warden can load.
    #[error("{reference}: {reason}")]
    BadManifest {
        /// The reference.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry has no manifest by that name.
    #[error("{reference}: the registry has no such manifest (check the repository and tag)")]
    NotFound {
        /// The reference.
        reference: String,
    },
    /// The registry could not be reached.
    #[error("cannot reach the registry {registry}: {reason}")]
    Unreachable {
        /// `host[:port]`.
        registry: String,
        /// Why.
        reason: String,
    },
    /// Plain HTTP to a registry that is not on this machine.
    #[error(
        "{url}: plain HTTP is allowed only to a registry on this machine (localhost, \
         127.0.0.0/8, ::1), and only with --plain-http; use https"
    )]
    PlainHttp {
        /// The URL that would have been plain HTTP.
        url: String,
    },
    /// The registry refused the credentials, or wants some and none were found.
    #[error("{registry} refused access{}", if *had_credentials {
        ": the credentials found for it were refused"
    } else {
        "; it wants credentials: log in with `docker login`, or pass --registry-token-file"
    })]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// Whether credentials were sent.
        had_credentials: bool,
    },
    /// A credentials or CA file could not be used.
    #[error("{}: {reason}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The registry answered with an error.
    #[error("{url}: the registry answered {status}: {said}")]
    Status {
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What its error body said.
        said: String,
    },
    /// The registry broke the protocol.
    #[error("{url}: {reason}")]
    Protocol {
        /// The request's URL.
        url: String,
        /// What it did.
        reason: String,
    },
}

/// What [`pull`] brought into the store.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference, pinned to the manifest digest it resolved to.
    pub reference: Reference,
    /// The component layer.
    pub layer: spec::Descriptor,
    /// Whether the component's bytes had to be downloaded (not already in the store).
    pub downloaded: bool,
    /// The signature tags found beside it (`sha256-<hex>.sig`, `.minisig`).
    pub signatures: Vec<String>,
}

/// Fetches the component `reference` names, and the signatures published beside it, into
/// `store`, checking every digest. A tag is recorded as naming what it named now; a
/// reference pinned by digest is fetched by digest, and its tag is left as it was.
#[cfg(feature = "registry")]
pub async fn pull(
    store: &Store,
    reference: &Reference,
    options: &RegistryOptions,
) -> Result<Pulled, OciError> {
    let mut registry = Registry::new(reference, options)?;
    let (bytes, pinned, manifest) = resolve(&mut registry, reference).await?;
    let digest = pinned.digest().expect("resolved");
    let layer = manifest.component_layer(&pinned)?.clone();
    let downloaded = !store.has(&layer.digest);
    if downloaded {
        let mut writer = store.writer(layer.digest)?;
        registry.blob(&layer, &mut writer).await?;
        writer.finish()?;
    }
    store.put(&bytes)?;
    let mut signatures = Vec::new();
    for suffix in SIGNATURE_SUFFIXES {
        if pull_attached(store, &mut registry, &pinned, suffix).await? {
            signatures.push(digest.tag(suffix));
        }
    }
    if reference.digest().is_none()
        && let Some(tag) = reference.tag()
    {
        store.set_tag(reference, tag, digest)?;
    }
    Ok(Pulled {
        reference: pinned,
        layer,
        downloaded,
        signatures,
    })
}

/// The manifest `reference` names in `registry` now: its bytes, the reference pinned to its
/// digest (which must be the reference's own pin, if it has one), and the manifest parsed.
#[cfg(feature = "registry")]
async fn resolve(
    registry: &mut Registry,
    reference: &Reference,
) -> Result<(Vec<u8>, Reference, spec::ImageManifest), OciError> {
    let (bytes, digest) = registry
        .manifest(&reference.version())
        .await?
        .ok_or_else(|| OciError::NotFound {
            reference: reference.to_string(),
        })?;
    if let Some(pin) = reference.digest()
        && pin != digest
    {
        return Err(OciError::DigestMismatch {
            what: format!("the manifest of {reference}"),
            expected: pin,
            actual: digest,
        });
    }
    let pinned = reference.at(digest);
    let manifest = spec::ImageManifest::parse(&pinned, &bytes)?;
    Ok((bytes, pinned, manifest))
}

/// Fetches the artifact tagged `sha256-<digest>.<suffix>` beside `pinned` and its blobs;
/// whether there is one. One that is gone from the registry is forgotten here too.
#[cfg(feature = "registry")]
async fn pull_attached(
    store: &Store,
    registry: &mut Registry,
    pinned: &Reference,
    suffix: &str,
) -> Result<bool, OciError> {
    let digest = pinned.digest().expect("pinned");
    let tag = digest.tag(suffix);
    let Some((bytes, sig_digest)) = registry.manifest(&tag).await? else {
        store.forget_tag(pinned, &tag)?;
        return Ok(false);
    };
    let at = pinned.tagged(&tag).at(sig_digest);
    let manifest = spec::ImageManifest::parse(&at, &bytes)?;
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if blob.size > MAX_SIGNATURE_BLOB {
            return Err(OciError::BadManifest {
                reference: at.to_string(),
                reason: format!(
                    "a signature's blob {} claims {} bytes, more than the {MAX_SIGNATURE_BLOB} a \
                     signature may take",
                    blob.digest, blob.size
                ),
            });
        }
        if store.has(&blob.digest) {
            continue;
        }
        let mut writer = store.writer(blob.digest)?;
        registry.blob(blob, &mut writer).await?;
        writer.finish()?;
    }
    store.put(&bytes)?;
    store.set_tag(pinned, &tag, sig_digest)?;
    Ok(true)
}

/// `artifactType` of the artifact that carries a minisign signature beside a component.
pub const MINISIGN_ARTIFACT: &str = "application/vnd.warden.minisign.v1";
/// The media type of its one layer: the `.minisig` file as minisign wrote it.
pub const MINISIGN_LAYER: &str = "application/vnd.warden.minisign.signature.v1";

/// One layer of an artifact [`attach`] publishes.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// The layers of an [`Attachment`], given the component's pinned reference.
pub type LayersOf<'a> = Box<dyn FnOnce(&Reference) -> Result<Vec<Layer>, String> + 'a>;
/// The config of an [`Attachment`] (its media type and bytes), given its layers and their
/// bytes.
pub type ConfigOf<'a> = Box<dyn FnOnce(&[spec::Descriptor], &[Vec<u8>]) -> (String, Vec<u8>) + 'a>;

/// What [`attach`] publishes beside a component.
pub struct Attachment<'a> {
    /// The tag suffix: `sha256-<manifest hex>.<suffix>`.
    pub suffix: &'a str,
    /// The artifact's `artifactType`, if it has one (cosign's signatures have none).
    pub artifact_type: Option<&'a str>,
    /// Its layers, given the component's pinned reference.
    pub layers: LayersOf<'a>,
    /// Its config blob and the config's media type, given all its layers.
    pub config: ConfigOf<'a>,
    /// Whether the layers of an artifact already under the tag are kept (cosign adds a
    /// signature to those there), or replaced.
    pub keep_existing: bool,
}

/// Publishes an artifact about the component `reference` names now in its registry
/// (resolved there, not in the store), under the tag `sha256-<manifest hex>.<suffix>`
/// beside it, its `subject` the component's manifest. Returns the component's pinned
/// reference.
#[cfg(feature = "registry")]
pub async fn attach(
    reference: &Reference,
    options: &RegistryOptions,
    attachment: Attachment<'_>,
) -> Result<Reference, OciError> {
    let mut registry = Registry::new(reference, options)?;
    let (bytes, pinned, manifest) = resolve(&mut registry, reference).await?;
    let digest = pinned.digest().expect("resolved");
    // Only a component is signed here: the artifact must be one Warden would load.
    manifest.component_layer(&pinned)?;
    let tag = digest.tag(attachment.suffix);
    let layers = (attachment.layers)(&pinned).map_err(|reason| OciError::BadManifest {
        reference: pinned.to_string(),
        reason,
    })?;
    let mut descriptors = Vec::new();
    let mut contents = Vec::new();
    if attachment.keep_existing
        && let Some((existing, at)) = registry.manifest(&tag).await?
    {
        let existing = spec::ImageManifest::parse(&pinned.tagged(&tag).at(at), &existing)?;
        for layer in existing.layers {
            if layer.size > MAX_SIGNATURE_BLOB {
                continue;
            }
            contents.push(registry.small_blob(&layer).await?);
            descriptors.push(layer);
        }
    }
    for layer in layers {
        let mut d = spec::Descriptor::of(&layer.media_type, &layer.bytes);
        d.annotations = layer.annotations;
        if descriptors.contains(&d) {
            continue;
        }
        registry.push_blob(&layer.bytes).await?;
        descriptors.push(d);
        contents.push(layer.bytes);
    }
    let (config_type, config) = (attachment.config)(&descriptors, &contents);
    registry.push_blob(&config).await?;
    let manifest = spec::ImageManifest {
        schema_version: 2,
        media_type: Some(spec::MANIFEST.into()),
        artifact_type: attachment.artifact_type.map(str::to_owned),
        config: spec::Descriptor::of(&config_type, &config),
        layers: descriptors,
        subject: Some(spec::Descriptor::of(spec::MANIFEST, &bytes)),
        annotations: Default::default(),
    };
    let manifest = serde_json::to_vec(&manifest).expect("a manifest serializes");
    registry
        .push_manifest(&tag, &manifest, spec::MANIFEST)
        .await?;
    Ok(pinned)
}
