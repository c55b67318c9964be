//! Who may have signed a component: `[tool] signed-by`, and the check that refuses a
//! component before it compiles unless one of those keys signed it.
//!
//! Two kinds of signature are understood:
//!
//! - **minisign**, over the component's bytes. Beside a local file it is `FILE.minisig`;
//!   for a component from a registry it is published beside it under the tag
//!   `sha256-<manifest hex>.minisig` (`warden sign REF --minisig FILE.minisig`).
//! - **cosign** (a key pair, not keyless), over cosign's "simple signing" payload naming
//!   the component's manifest digest, published under `sha256-<manifest hex>.sig` as
//!   cosign does (`cosign sign --key`, or `warden sign REF --key`). Checked offline
//!   against the public key: no transparency log is asked.
//!
//! A `signed-by` entry is a minisign public key written inline (`minisign:RW…`), or the
//! path of a key file, relative to the manifest: a minisign `.pub` file, or a PEM public key
//! (`-----BEGIN PUBLIC KEY-----`, as `cosign generate-key-pair` writes `cosign.pub`).

use crate::oci::Sha256;
use std::fmt;
use std::path::Path;

/// A key `[tool] signed-by` trusts.
#[derive(Clone)]
pub struct TrustedKey {
    kind: KeyKind,
    /// How the key is named in records and errors: `minisign:<key id>` or
    /// `cosign:sha256:<hex of the DER public key>`.
    id: String,
}

#[derive(Clone)]
enum KeyKind {
    Minisign(minisign_verify::PublicKey),
    Cosign(sigstore::crypto::CosignVerificationKey),
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl PartialEq for TrustedKey {
    fn eq(&self, other: &TrustedKey) -> bool {
        self.id == other.id
    }
}

impl Eq for TrustedKey {}

impl TrustedKey {
    /// The key of one `signed-by` entry: `minisign:<base64>`, or a key file's path,
    /// relative to `base_dir`.
    pub fn parse(entry: &str, base_dir: &Path) -> Result<TrustedKey, String> {
        if let Some(b64) = entry.strip_prefix("minisign:") {
            return minisign_key(b64.trim());
        }
        if entry.trim().is_empty() {
            return Err("must not be empty".into());
        }
        let path = base_dir.join(entry);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
        if text.contains("-----BEGIN PUBLIC KEY-----") {
            return cosign_key(&text).map_err(|e| format!("{}: {e}", path.display()));
        }
        if text.contains("-----BEGIN") {
            return Err(format!(
                "{}: a PEM file, but not a PUBLIC KEY (a private key does not belong in a \
                 manifest)",
                path.display()
            ));
        }
        // A minisign .pub file: an untrusted comment line, then the key.
        let key = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .ok_or_else(|| format!("{}: holds no key", path.display()))?;
        minisign_key(key).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// `minisign:<key id>` or `cosign:sha256:<hex>`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `minisign` or `cosign`.
    pub fn scheme(&self) -> &'static str {
        match self.kind {
            KeyKind::Minisign(_) => "minisign",
            KeyKind::Cosign(_) => "cosign",
        }
    }
}

/// minisign's key id: bytes 2..10 of the key or signature, a little-endian number that
/// minisign prints in upper-case hex without leading zeros.
fn minisign_id(raw: &[u8]) -> Option<String> {
    let id: [u8; 8] = raw.get(2..10)?.try_into().ok()?;
    Some(format!("{:X}", u64::from_le_bytes(id)))
}

fn minisign_key(b64: &str) -> Result<TrustedKey, String> {
    use base64::Engine as _;
    let key = minisign_verify::PublicKey::from_base64(b64)
        .map_err(|e| format!("not a minisign public key ({e}): {b64:?}"))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| e.to_string())?;
    Ok(TrustedKey {
        kind: KeyKind::Minisign(key),
        id: format!("minisign:{}", minisign_id(&raw).unwrap_or_default()),
    })
}

fn cosign_key(pem: &str) -> Result<TrustedKey, String> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PUBLIC KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|e| format!("the PEM public key is not base64: {e}"))?;
    let key = sigstore::crypto::CosignVerificationKey::try_from_der(&der)
        .map_err(|e| format!("not a public key cosign signs with: {e}"))?;
    Ok(TrustedKey {
        id: cosign_id(&der),
        kind: KeyKind::Cosign(key),
    })
}

/// A cosign key's id: `cosign:` and the SHA-256 of its DER public key.
fn cosign_id(der: &[u8]) -> String {
    format!("cosign:{}", Sha256::of(der))
}

/// A signature that verified: by which kind and which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `minisign` or `cosign`.
    pub scheme: &'static str,
    /// The key's id ([`TrustedKey::id`]).
    pub key: String,
}

/// The signatures that travel with one component, as found where it was loaded from.
#[derive(Debug, Default)]
pub struct Signatures {
    /// Where they were looked for, for the error that says none was found.
    pub looked_in: Vec<String>,
    /// The text of a minisign signature, if one was found.
    pub minisig: Option<String>,
    /// cosign's signature layers: each its payload and its base64 signature.
    pub cosign: Vec<(Vec<u8>, String)>,
    /// The manifest digest cosign's payload must name (a component from a registry).
    pub manifest: Option<Sha256>,
}

/// Checks that a key of `keys` signed `bytes`, by the signatures in `found`; the error
/// says what was expected and what was found, in one line.
pub fn verify(keys: &[TrustedKey], bytes: &[u8], found: &Signatures) -> Result<Verified, String> {
    let mut seen = Vec::new();
    if let Some(text) = &found.minisig {
        match minisign_verify::Signature::decode(text) {
            Err(e) => seen.push(format!("a minisign signature that does not parse ({e})")),
            Ok(sig) => {
                let by = signature_key_id(text);
                let mut matched = false;
                for key in keys {
                    let KeyKind::Minisign(pk) = &key.kind else {
                        continue;
                    };
                    if by.as_deref() != key.id.strip_prefix("minisign:") {
                        continue;
                    }
                    matched = true;
                    match pk.verify(bytes, &sig, false) {
                        Ok(()) => {
                            return Ok(Verified {
                                scheme: "minisign",
                                key: key.id.clone(),
                            });
                        }
                        Err(e) => seen.push(format!(
                            "a minisign signature by {} that does not verify ({e}): the \
                             component is not the one that was signed",
                            key.id
                        )),
                    }
                }
                if !matched {
                    seen.push(format!(
                        "a minisign signature by minisign:{}, which signed-by does not name",
                        by.unwrap_or_else(|| "?".into())
                    ));
                }
            }
        }
    }
    if !found.cosign.is_empty() {
        match cosign::verify(keys, &found.cosign, found.manifest) {
            Ok(v) => return Ok(v),
            Err(why) => seen.push(why),
        }
    }
    let expected: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    seen.dedup();
    let found = if seen.is_empty() {
        format!("no signature (looked in {})", found.looked_in.join(", "))
    } else {
        seen.join("; ")
    };
    Err(format!(
        "not signed by a key of tool.signed-by: expected a signature by {}; found {found}",
        expected.join(" or ")
    ))
}

/// The key a minisign signature says signed it, `minisign:<key id>`; an error if `text` is
/// not a minisign signature.
pub fn minisign_signer(text: &str) -> Result<String, String> {
    minisign_verify::Signature::decode(text)
        .map_err(|e| format!("not a minisign signature: {e}"))?;
    signature_key_id(text)
        .map(|id| format!("minisign:{id}"))
        .ok_or_else(|| "not a minisign signature".into())
}

/// The key id a minisign signature names, as minisign prints it.
fn signature_key_id(text: &str) -> Option<String> {
    use base64::Engine as _;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(line)
        .ok()?;
    minisign_id(&raw)
}

/// cosign's key-pair signatures.
pub mod cosign {
    use super::{KeyKind, TrustedKey, Verified};
    use crate::oci::{Reference, Sha256};
    use sigstore::crypto::{CosignVerificationKey, Signature, SigningScheme};
    use zeroize::Zeroizing;

    /// The media type of a cosign signature layer: its "simple signing" payload.
    pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
    /// The annotation that holds a layer's signature, base64.
    pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
    /// The config media type of cosign's signature manifests.
    pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// What a payload's `critical.type` says.
    const TYPE: &str = "cosign container image signature";

    /// The payload cosign signs for the manifest `digest` of `reference`'s repository.
    pub fn payload(reference: &Reference, digest: Sha256) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "critical": {
                "identity": {
                    "docker-reference": format!("{}/{}", reference.registry(), reference.repository())
                },
                "image": { "docker-manifest-digest": digest.to_string() },
                "type": TYPE,
            },
            "optional": null,
        }))
        .expect("JSON")
    }

    /// The config blob cosign writes beside signature layers (the payloads' digests).
    pub fn config(payloads: &[&[u8]]) -> Vec<u8> {
        let diff_ids: Vec<String> = payloads.iter().map(|p| Sha256::of(p).to_string()).collect();
        serde_json::to_vec(&serde_json::json!({
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{ "created": "0001-01-01T00:00:00Z" }],
            "os": "",
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        }))
        .expect("JSON")
    }

    /// A cosign signing key: cosign's encrypted PEM (`cosign generate-key-pair`, or
    /// [`generate`]), opened with `password`.
    pub struct SigningKey {
        signer: sigstore::crypto::SigStoreSigner,
        public_pem: String,
        /// The public key's id, as `signed-by` shows it.
        pub id: String,
    }

    impl SigningKey {
        /// Opens the encrypted private key `pem`.
        pub fn open(pem: &[u8], password: &[u8]) -> Result<SigningKey, String> {
            let pair =
                sigstore::crypto::signing_key::SigStoreKeyPair::from_encrypted_pem(pem, password)
                    .map_err(|e| {
                    format!("cannot open the private key (wrong COSIGN_PASSWORD?): {e}")
                })?;
            let signer = pair
                .to_sigstore_signer(&SigningScheme::ECDSA_P256_SHA256_ASN1)
                .map_err(|e| {
                    format!("not an ECDSA P-256 key, which cosign's key pairs are: {e}")
                })?;
            let der = pair.public_key_to_der().map_err(|e| e.to_string())?;
            let public_pem = pair.public_key_to_pem().map_err(|e| e.to_string())?;
            Ok(SigningKey {
                signer,
                public_pem,
                id: super::cosign_id(&der),
            })
        }

        /// The public key, PEM: what `signed-by` names.
        pub fn public_pem(&self) -> &str {
            &self.public_pem
        }

        /// Signs `payload`; the signature, base64.
        pub fn sign(&self, payload: &[u8]) -> Result<String, String> {
            use base64::Engine as _;
            let sig = self.signer.sign(payload).map_err(|e| e.to_string())?;
            Ok(base64::engine::general_purpose::STANDARD.encode(sig))
        }
    }

    /// A new ECDSA P-256 key pair, as cosign makes them: the private key encrypted with
    /// `password` (cosign's scrypt and secretbox PEM), and the public key's PEM.
    pub fn generate(password: &[u8]) -> Result<(Zeroizing<String>, String), String> {
        let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
            .create_signer()
            .map_err(|e| e.to_string())?;
        let pair = signer.to_sigstore_keypair().map_err(|e| e.to_string())?;
        let private = pair
            .private_key_to_encrypted_pem(password)
            .map_err(|e| e.to_string())?;
        let public = pair.public_key_to_pem().map_err(|e| e.to_string())?;
        Ok((private, public))
    }

    /// Checks cosign signature layers (payload, base64 signature) against the cosign keys
    /// of `keys`: a layer verifies if a key signed its payload and the payload names
    /// `manifest`.
    pub fn verify(
        keys: &[TrustedKey],
        layers: &[(Vec<u8>, String)],
        manifest: Option<Sha256>,
    ) -> Result<Verified, String> {
        let cosign_keys: Vec<(&TrustedKey, &CosignVerificationKey)> = keys
            .iter()
            .filter_map(|k| match &k.kind {
                KeyKind::Cosign(vk) => Some((k, vk)),
                KeyKind::Minisign(_) => None,
            })
            .collect();
        if cosign_keys.is_empty() {
            return Err(format!(
                "{} cosign signature(s), but signed-by names no cosign key",
                layers.len()
            ));
        }
        let Some(manifest) = manifest else {
            return Err("cosign signatures, for a component that is not from a registry".into());
        };
        let mut seen = Vec::new();
        for (payload, sig) in layers {
            let by = cosign_keys.iter().find(|(_, vk)| {
                vk.verify_signature(Signature::Base64Encoded(sig.as_bytes()), payload)
                    .is_ok()
            });
            let Some((key, _)) = by else {
                seen.push(
                    "a cosign signature by none of the cosign keys signed-by names".to_owned(),
                );
                continue;
            };
            let claims: serde_json::Value = match serde_json::from_slice(payload) {
                Ok(v) => v,
                Err(e) => {
                    seen.push(format!(
                        "a cosign signature by {} of a payload that is not JSON ({e})",
                        key.id
                    ));
                    continue;
                }
            };
            let names = claims["critical"]["image"]["docker-manifest-digest"].as_str();
            if claims["critical"]["type"] != TYPE {
                seen.push(format!(
                    "a cosign signature by {} of a payload of another type",
                    key.id
                ));
            } else if names != Some(&manifest.to_string()) {
                seen.push(format!(
                    "a cosign signature by {} of another manifest ({}), not this one ({manifest})",
                    key.id,
                    names.unwrap_or("none named")
                ));
            } else {
                return Ok(Verified {
                    scheme: "cosign",
                    key: key.id.clone(),
                });
            }
        }
        seen.dedup();
        Err(seen.join("; "))
    }
}
