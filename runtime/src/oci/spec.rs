//! The parts of the OCI image spec a Wasm component artifact is made of, as `wkg` and
//! Wassette publish it, and what Warden accepts of them.

use super::{OciError, Reference, Sha256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `mediaType` of an image manifest.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `mediaType` of an image index, which Warden does not follow: a component has one
/// platform.
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `artifactType` of a Wasm component (the CNCF TAG Runtime's Wasm artifact layout).
pub const COMPONENT_ARTIFACT: &str = "application/vnd.wasm.component.v1+wasm";
/// The config of a Wasm artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The one layer of a Wasm artifact: the component's bytes.
pub const WASM_LAYER: &str = "application/wasm";
/// The empty config of an artifact that has none.
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// The most a manifest may take: the distribution spec's suggested limit.
pub const MAX_MANIFEST: usize = 4 << 20;

/// A pointer to content: its type, digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the content is.
    pub media_type: String,
    /// `sha256:<hex>` of the content.
    #[serde(with = "as_text")]
    pub digest: Sha256,
    /// Its length in bytes.
    pub size: u64,
    /// Free-form annotations; cosign keeps its signature in one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor of `bytes` as `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: Sha256::of(bytes),
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
        }
    }
}

/// An image manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MANIFEST`], when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// What the artifact is ([`COMPONENT_ARTIFACT`] for a component).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<Descriptor>,
    /// The manifest this one is about (a signature's subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// Parses the manifest `bytes` of `reference`, or says why they are not one.
    pub fn parse(reference: &Reference, bytes: &[u8]) -> Result<ImageManifest, OciError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Kind {
            #[serde(default)]
            media_type: Option<String>,
        }
        let bad = |reason: String| OciError::BadManifest {
            reference: reference.to_string(),
            reason,
        };
        let kind: Kind =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        if kind.media_type.as_deref() == Some(INDEX) {
            return Err(bad(
                "it is an image index (several platforms); a Wasm component is published as \
                 one image manifest (wkg oci push)"
                    .into(),
            ));
        }
        let m: ImageManifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("not an OCI image manifest: {e}")))?;
        if m.schema_version != 2 {
            return Err(bad(format!(
                "schemaVersion {}, expected 2",
                m.schema_version
            )));
        }
        Ok(m)
    }

    /// The component layer of a Wasm artifact: its one `application/wasm` layer.
    pub fn component_layer(&self, reference: &Reference) -> Result<&Descriptor, OciError> {
        let bad = |reason: String| OciError::BadManifest {
            reference: reference.to_string(),
            reason,
        };
        let mut wasm = self.layers.iter().filter(|l| l.media_type == WASM_LAYER);
        match (wasm.next(), wasm.next()) {
            (Some(layer), None) => Ok(layer),
            (None, _) => Err(bad(format!(
                "it holds no {WASM_LAYER} layer (config {}, layers: {}): not a Wasm component",
                self.config.media_type,
                self.layers
                    .iter()
                    .map(|l| l.media_type.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            (Some(_), Some(_)) => Err(bad(format!(
                "it holds more than one {WASM_LAYER} layer; which is the component is not clear"
            ))),
        }
    }
}

/// A digest as its text in JSON.
mod as_text {
    use super::Sha256;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Sha256, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Sha256, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
