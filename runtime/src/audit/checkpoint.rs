//! Signed checkpoints: the C2SP signed-note and tlog-checkpoint formats.
//!
//! A checkpoint commits to the first `size` records of a log by their Merkle
//! root. It is plain text, so that an auditor can read it and any C2SP tool
//! can check it:
//!
//! ```text
//! warden.example/audit        <- origin: which log
//! 1024                        <- size: how many records
//! 2sCkk2m8hKS8…=              <- base64 root hash
//!                             <- blank line ends the note body
//! — warden.example/audit Az3grl…   <- signature line: key name, base64(key id ‖ sig)
//! ```
//!
//! The key id is the first four bytes of SHA-256(name ‖ `\n` ‖ 0x01 ‖ public
//! key), as signed notes define it for Ed25519. The verifier key is written
//! `<name>+<hex key id>+<base64(0x01 ‖ public key)>`; the host key file holds
//! `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>` and is created
//! with mode 0600.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use warden_host_api::hex::encode as hex;

/// Signature algorithm byte of Ed25519 in signed notes.
pub(crate) const ED25519: u8 = 0x01;

/// Why a checkpoint, a key or a key file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The text is not a well-formed checkpoint note.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// No signature line is by the expected key.
    #[error("checkpoint is not signed by {0}")]
    NotSigned(String),
    /// A signature line by the expected key does not verify.
    #[error("bad signature by {0}")]
    BadSignature(String),
    /// A verifier or private key string is malformed.
    #[error("malformed key: {0}")]
    Key(String),
    /// The key file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The key file.
        path: String,
        /// What went wrong.
        error: std::io::Error,
    },
}

/// The signed content of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log, e.g. `warden/<host>/audit`.
    pub origin: String,
    /// Number of records committed to.
    pub size: u64,
    /// Merkle root of those records.
    pub root: Vec<u8>,
}

impl Checkpoint {
    /// The note body: origin, size and root, each on its own line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(&self.root)
        )
    }

    /// The signed note: body, blank line, one signature line.
    pub fn sign(&self, key: &HostKey) -> String {
        key.sign_note(&self.body())
    }

    /// Parses a signed note and checks that `key` signed it. Signature lines
    /// by other keys are ignored, as signed notes allow.
    pub fn verify(text: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
        let note = Note::parse(text)?;
        key.check_signatures(&note.body, note.signatures())?;
        Ok(note.checkpoint)
    }
}

impl HostKey {
    /// `body` (non-empty lines, each ending in a newline) as a signed note by this key: what
    /// Warden signs besides checkpoints, such as an approved baseline.
    pub fn sign_note(&self, body: &str) -> String {
        debug_assert!(body.ends_with('\n') && !body.contains("\n\n"));
        let sig = self.signing.sign(body.as_bytes());
        let mut blob = self.verifier.id.to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        format!(
            "{body}\n\u{2014} {} {}\n",
            self.verifier.name,
            B64.encode(blob)
        )
    }
}

impl VerifierKey {
    /// The body of the signed note `text`, once a signature by this key verifies.
    pub fn verify_note(&self, text: &str) -> Result<String, CheckpointError> {
        let (body, signatures) = split_note(text)?;
        self.check_signatures(&body, signature_lines(signatures))?;
        Ok(body)
    }

    /// Checks that a signature line by this key signs `body`.
    fn check_signatures<'a>(
        &self,
        body: &str,
        signatures: impl Iterator<Item = (&'a str, Result<Vec<u8>, CheckpointError>)>,
    ) -> Result<(), CheckpointError> {
        let key = self;
        let mut found = false;
        for (name, blob) in signatures {
            let blob = blob?;
            if name != key.name || blob.len() < 4 || blob[..4] != key.id {
                continue;
            }
            found = true;
            let sig = ed25519_dalek::Signature::from_slice(&blob[4..])
                .map_err(|_| CheckpointError::BadSignature(key.name.clone()))?;
            key.key
                .verify_strict(body.as_bytes(), &sig)
                .map_err(|_| CheckpointError::BadSignature(key.name.clone()))?;
        }
        if !found {
            return Err(CheckpointError::NotSigned(key.to_string()));
        }
        Ok(())
    }
}

/// A signed note taken apart, its signatures not yet checked.
pub(crate) struct Note<'a> {
    /// The body with its final newline: what every signature signs.
    pub body: String,
    /// What the body says.
    pub checkpoint: Checkpoint,
    signatures: &'a str,
}

impl<'a> Note<'a> {
    /// Splits a note into its body and signature lines, and reads the body as a checkpoint.
    pub fn parse(text: &'a str) -> Result<Self, CheckpointError> {
        let malformed = |m: &str| CheckpointError::Malformed(m.to_string());
        let (body, signatures) = split_note(text)?;
        let mut lines = body.lines();
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| malformed("no origin line"))?;
        let size = lines
            .next()
            .ok_or_else(|| malformed("no size line"))?
            .parse::<u64>()
            .map_err(|e| CheckpointError::Malformed(format!("size: {e}")))?;
        let root = B64
            .decode(lines.next().ok_or_else(|| malformed("no root line"))?)
            .map_err(|e| CheckpointError::Malformed(format!("root: {e}")))?;
        let checkpoint = Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        };
        Ok(Note {
            body,
            checkpoint,
            signatures,
        })
    }

    /// Each signature line's key name and decoded blob (key id ‖ signature).
    pub fn signatures(
        &self,
    ) -> impl Iterator<Item = (&'a str, Result<Vec<u8>, CheckpointError>)> + 'a {
        signature_lines(self.signatures)
    }
}

/// A signed note's body, with its final newline (what every signature signs), and its
/// signature lines.
fn split_note(text: &str) -> Result<(String, &str), CheckpointError> {
    let (body, signatures) = text.split_once("\n\n").ok_or_else(|| {
        CheckpointError::Malformed("no blank line between body and signatures".into())
    })?;
    Ok((format!("{body}\n"), signatures))
}

/// Each signature line's key name and decoded blob (key id ‖ signature).
fn signature_lines(
    signatures: &str,
) -> impl Iterator<Item = (&str, Result<Vec<u8>, CheckpointError>)> {
    signatures.lines().filter(|l| !l.is_empty()).map(|line| {
        let not_a_line = || CheckpointError::Malformed(format!("not a signature line: {line:?}"));
        let Some((name, blob)) = line
            .strip_prefix("\u{2014} ")
            .and_then(|rest| rest.split_once(' '))
        else {
            return ("", Err(not_a_line()));
        };
        let blob = B64
            .decode(blob)
            .map_err(|e| CheckpointError::Malformed(format!("signature of {name}: {e}")));
        (name, blob)
    })
}

/// The public half of a host key: what an auditor needs to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl VerifierKey {
    fn new(name: &str, key: VerifyingKey) -> Self {
        VerifierKey {
            name: name.to_string(),
            id: key_id(name, ED25519, &key),
            key,
        }
    }

    /// The key name, which is also the checkpoint origin.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parses `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let (name, key) = parse_public(text, ED25519)?;
        Ok(VerifierKey::new(name, key))
    }
}

/// Parses a verifier key of signature type `alg`: `<name>+<hex key id>+<base64(alg ‖ public
/// key)>`, and checks the key id.
pub(crate) fn parse_public(text: &str, alg: u8) -> Result<(&str, VerifyingKey), CheckpointError> {
    let bad = |m: String| CheckpointError::Key(m);
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected <name>+<key id>+<key>".into()));
    };
    let raw = B64.decode(key).map_err(|e| bad(format!("key: {e}")))?;
    let pk: [u8; 32] = match raw.split_first() {
        Some((&a, pk)) if a == alg => pk.try_into().map_err(|_| bad("key: not 32 bytes".into()))?,
        Some((&a, _)) => {
            return Err(bad(format!(
                "key: signature type {a:#04x}, expected {alg:#04x} ({})",
                alg_name(alg)
            )));
        }
        None => return Err(bad("key: empty".into())),
    };
    let pk = VerifyingKey::from_bytes(&pk).map_err(|e| bad(format!("key: {e}")))?;
    let want = hex(&key_id(name, alg, &pk));
    if want != id {
        return Err(bad(format!("key id {id} does not match the key ({want})")));
    }
    Ok((name, pk))
}

/// The verifier key text of signature type `alg`.
pub(crate) fn public_text(name: &str, alg: u8, key: &VerifyingKey) -> String {
    let mut raw = vec![alg];
    raw.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        hex(&key_id(name, alg, key)),
        B64.encode(raw)
    )
}

fn alg_name(alg: u8) -> &'static str {
    match alg {
        ED25519 => "an Ed25519 checkpoint key",
        super::witness::COSIGNATURE_V1 => "an Ed25519 cosignature/v1 witness key",
        _ => "unknown",
    }
}

/// Why `--key` named no verifier key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierKeyArgError {
    /// No key was given and this host has none: verifying never creates one.
    #[error("no --key given and no host key at {}", .0.display())]
    NoHostKey(std::path::PathBuf),
    /// This host's key does not load.
    #[error(transparent)]
    HostKey(CheckpointError),
    /// A file that holds no key, or a host key that does not load.
    #[error("--key {}: {error}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        error: String,
    },
    /// Neither a key nor a file.
    #[error("--key {text:?} is neither a verifier key nor a file holding one: {error}")]
    Neither {
        /// What was given.
        text: String,
        /// Why it does not parse as a key.
        error: CheckpointError,
    },
}

impl VerifierKey {
    /// The key a verifier names with `--key`: a key, or a file holding one (or a host key,
    /// whose public half is used); without one, the public half of the host key at
    /// `host_key`, which is never created just to verify.
    pub fn from_arg(arg: Option<&str>, host_key: &Path) -> Result<Self, VerifierKeyArgError> {
        let file = |path: &Path, error: &dyn fmt::Display| VerifierKeyArgError::File {
            path: path.to_path_buf(),
            error: error.to_string(),
        };
        let Some(text) = arg else {
            if !host_key.exists() {
                return Err(VerifierKeyArgError::NoHostKey(host_key.to_path_buf()));
            }
            let host = HostKey::load_or_create(host_key, &super::key_name())
                .map_err(VerifierKeyArgError::HostKey)?;
            return Ok(host.verifier().clone());
        };
        let parsed = VerifierKey::parse(text);
        if let Ok(key) = parsed {
            return Ok(key);
        }
        let path = Path::new(text);
        if path.is_file() {
            let contents = std::fs::read_to_string(path).map_err(|e| file(path, &e))?;
            if contents.trim_start().starts_with("PRIVATE+KEY+") {
                return HostKey::parse(&contents)
                    .map(|k| k.verifier().clone())
                    .map_err(|e| file(path, &e));
            }
            return VerifierKey::parse(&contents).map_err(|e| file(path, &e));
        }
        Err(VerifierKeyArgError::Neither {
            text: text.to_owned(),
            error: parsed.unwrap_err(),
        })
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&public_text(&self.name, ED25519, &self.key))
    }
}

/// The host's signing key. The secret half never leaves this value, and is
/// zeroized when it is dropped.
pub struct HostKey {
    signing: SigningKey,
    verifier: VerifierKey,
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostKey")
            .field("verifier", &self.verifier.to_string())
            .finish_non_exhaustive()
    }
}

impl HostKey {
    /// A new random key named `name` (no spaces or `+`: it appears in
    /// signature lines and key strings).
    pub fn generate(name: &str) -> Result<Self, CheckpointError> {
        let seed = random_seed(name)?;
        Ok(Self::from_seed(name, &seed))
    }

    fn from_seed(name: &str, seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let verifier = VerifierKey::new(name, signing.verifying_key());
        HostKey { signing, verifier }
    }

    /// The public half.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// Loads the key at `path`, or creates it (mode 0600, never replacing an
    /// existing file) with the given name. See [`super::keys`] for where keys
    /// live and why.
    pub fn load_or_create(path: &Path, name: &str) -> Result<Self, CheckpointError> {
        let text = load_or_create_private(path, name, ED25519)?;
        Self::parse(&text)
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>`.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let (name, seed) = parse_private(text, ED25519)?;
        Ok(Self::from_seed(&name, &seed))
    }
}

/// 32 random bytes for a new key named `name`, once the name is known to fit in signature
/// lines and key strings.
pub(crate) fn random_seed(name: &str) -> Result<zeroize::Zeroizing<[u8; 32]>, CheckpointError> {
    if name.is_empty() || name.contains(['+', ' ', '\n']) {
        return Err(CheckpointError::Key(format!(
            "key name {name:?} must be non-empty without spaces or '+'"
        )));
    }
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *seed).map_err(|e| CheckpointError::Key(format!("no randomness: {e}")))?;
    Ok(seed)
}

/// `PRIVATE+KEY+<name>+<hex key id>+<base64(alg ‖ seed)>`.
pub(crate) fn private_text(name: &str, alg: u8, seed: &[u8; 32]) -> zeroize::Zeroizing<String> {
    let public = SigningKey::from_bytes(seed).verifying_key();
    let mut raw = zeroize::Zeroizing::new(vec![alg]);
    raw.extend_from_slice(seed);
    zeroize::Zeroizing::new(format!(
        "PRIVATE+KEY+{name}+{}+{}\n",
        hex(&key_id(name, alg, &public)),
        B64.encode(&*raw)
    ))
}

/// Parses a private key of signature type `alg` and checks its key id.
pub(crate) fn parse_private(
    text: &str,
    alg: u8,
) -> Result<(String, zeroize::Zeroizing<[u8; 32]>), CheckpointError> {
    let bad = |m: &str| CheckpointError::Key(m.to_string());
    let rest = text
        .trim()
        .strip_prefix("PRIVATE+KEY+")
        .ok_or_else(|| bad("a private key starts with PRIVATE+KEY+"))?;
    let mut parts = rest.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected PRIVATE+KEY+<name>+<key id>+<key>"));
    };
    let raw = zeroize::Zeroizing::new(B64.decode(key).map_err(|_| bad("key is not base64"))?);
    let seed: zeroize::Zeroizing<[u8; 32]> = match raw.split_first() {
        Some((&a, seed)) if a == alg => {
            zeroize::Zeroizing::new(seed.try_into().map_err(|_| bad("key is not 32 bytes"))?)
        }
        Some((&a, _)) => {
            return Err(CheckpointError::Key(format!(
                "signature type {a:#04x}, expected {alg:#04x} ({})",
                alg_name(alg)
            )));
        }
        None => return Err(bad("key is empty")),
    };
    let public = SigningKey::from_bytes(&seed).verifying_key();
    if hex(&key_id(name, alg, &public)) != id {
        return Err(bad("key id does not match the key"));
    }
    Ok((name.to_string(), seed))
}

/// The private key text at `path`, created (mode 0600) as a new key of type `alg` named
/// `name` if there is none.
pub(crate) fn load_or_create_private(
    path: &Path,
    name: &str,
    alg: u8,
) -> Result<zeroize::Zeroizing<String>, CheckpointError> {
    use super::keys::{KeyFileError, load_or_create};
    load_or_create(path, || {
        random_seed(name)
            .map(|seed| private_text(name, alg, &seed))
            .map_err(|e| KeyFileError::Io {
                path: path.to_path_buf(),
                error: std::io::Error::other(e.to_string()),
            })
    })
    .map_err(|e| match e {
        KeyFileError::Readable { path, mode } => CheckpointError::Key(format!(
            "{} is readable by others (mode {mode:o}); anyone who can read it can forge \
             signatures: chmod 600 it, or rotate the key",
            path.display()
        )),
        KeyFileError::Io { path, error } => CheckpointError::Io {
            path: path.display().to_string(),
            error,
        },
        other => CheckpointError::Key(other.to_string()),
    })
}

/// The first four bytes of SHA-256(name ‖ `\n` ‖ alg ‖ public key): a signed note's key id.
pub(crate) fn key_id(name: &str, alg: u8, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> HostKey {
        HostKey::from_seed("warden.test/audit", &[7; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "warden.test/audit".into(),
            size: 42,
            root: vec![0xab; 32],
        }
    }

    #[test]
    fn signs_and_verifies_in_the_c2sp_shape() {
        let key = key();
        let note = checkpoint().sign(&key);
        let lines: Vec<&str> = note.lines().collect();
        assert_eq!(lines[0], "warden.test/audit");
        assert_eq!(lines[1], "42");
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("\u{2014} warden.test/audit "));
        assert_eq!(
            Checkpoint::verify(&note, key.verifier()).unwrap(),
            checkpoint()
        );
    }

    #[test]
    fn any_change_to_the_note_is_caught() {
        let key = key();
        let note = checkpoint().sign(&key);
        let changed = note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            Checkpoint::verify(&changed, key.verifier()),
            Err(CheckpointError::BadSignature(_))
        ));
        let other = HostKey::from_seed("warden.test/audit", &[8; 32]);
        assert!(matches!(
            Checkpoint::verify(&note, other.verifier()),
            Err(CheckpointError::NotSigned(_))
        ));
        // A signature of the right key id over a different body.
        let forged = checkpoint()
            .sign(&key)
            .replace("warden.test/audit\n42", "warden.test/audit\n41");
        assert!(Checkpoint::verify(&forged, key.verifier()).is_err());
        assert!(Checkpoint::verify("garbage", key.verifier()).is_err());
    }

    #[test]
    fn verifier_key_round_trips() {
        let key = key();
        let text = key.verifier().to_string();
        assert!(text.starts_with("warden.test/audit+"));
        assert_eq!(&VerifierKey::parse(&text).unwrap(), key.verifier());
        let wrong_id = text.replacen('+', "+0", 1);
        assert!(VerifierKey::parse(&wrong_id).is_err());
    }

    #[test]
    fn key_file_is_private_and_reloads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/host.key");
        let a = HostKey::load_or_create(&path, "warden.test/audit").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = HostKey::load_or_create(&path, "ignored").unwrap();
        assert_eq!(a.verifier(), b.verifier());
        assert!(!format!("{a:?}").contains("PRIVATE"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = HostKey::load_or_create(&path, "x").unwrap_err();
        assert!(err.to_string().contains("readable by others"), "{err}");
    }
}
