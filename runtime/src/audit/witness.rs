//! Witness cosignatures: the C2SP tlog-cosignature format, `cosignature/v1` with Ed25519.
//!
//! A host signs its own checkpoints, so on its own a checkpoint proves only what the host's
//! operator says. A witness (`warden audit collect`) keeps its own copy of the host's log,
//! checks each checkpoint against it, and adds its signature line:
//!
//! ```text
//! warden.example/warden-audit
//! 1024
//! 2sCkk2m8hKS8…=
//!
//! — warden.example/warden-audit Az3grl…      <- the host
//! — collector.example/warden-witness jWbPPw…  <- the witness
//! ```
//!
//! The witness line's blob is key id ‖ timestamp (u64, big-endian, seconds) ‖ Ed25519
//! signature over `cosignature/v1\ntime <timestamp>\n` followed by the note body. Its key id
//! is the first four bytes of SHA-256(name ‖ `\n` ‖ 0x04 ‖ public key), and its verifier key
//! is written `<name>+<hex key id>+<base64(0x04 ‖ public key)>`. By that format a
//! cosignature says: as of that time, this is the largest checkpoint of the log the witness
//! has seen, consistent with every earlier one. Warden's witness says one thing more: it
//! holds every record the checkpoint covers, chained, as the host shipped them.

use super::checkpoint::{
    Checkpoint, CheckpointError, Note, key_id, load_or_create_private, parse_private, parse_public,
    public_text,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::fmt;
use std::path::{Path, PathBuf};

/// The signature type of `cosignature/v1` in signed notes.
pub const COSIGNATURE_V1: u8 = 0x04;

/// The public half of a witness key: what a verifier needs to check cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl WitnessVerifier {
    fn new(name: &str, key: VerifyingKey) -> Self {
        WitnessVerifier {
            name: name.to_string(),
            id: key_id(name, COSIGNATURE_V1, &key),
            key,
        }
    }

    /// The witness's name, as its signature lines give it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parses `<name>+<hex key id>+<base64(0x04 ‖ public key)>`.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let (name, key) = parse_public(text, COSIGNATURE_V1)?;
        Ok(WitnessVerifier::new(name, key))
    }

    /// A verifier key, or a file holding one (or a witness key, whose public half is used).
    pub fn from_arg(arg: &str) -> Result<Self, CheckpointError> {
        let parsed = WitnessVerifier::parse(arg);
        if parsed.is_ok() || !Path::new(arg).is_file() {
            return parsed;
        }
        let text = std::fs::read_to_string(arg).map_err(|error| CheckpointError::Io {
            path: arg.to_string(),
            error,
        })?;
        if text.trim_start().starts_with("PRIVATE+KEY+") {
            return WitnessKey::parse(&text).map(|k| k.verifier().clone());
        }
        WitnessVerifier::parse(&text)
    }
}

impl fmt::Display for WitnessVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&public_text(&self.name, COSIGNATURE_V1, &self.key))
    }
}

/// A witness's signing key. The secret half never leaves this value.
pub struct WitnessKey {
    signing: SigningKey,
    verifier: WitnessVerifier,
}

impl fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WitnessKey")
            .field("verifier", &self.verifier.to_string())
            .finish_non_exhaustive()
    }
}

impl WitnessKey {
    fn from_seed(name: &str, seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let verifier = WitnessVerifier::new(name, signing.verifying_key());
        WitnessKey { signing, verifier }
    }

    /// A new random key named `name`.
    pub fn generate(name: &str) -> Result<Self, CheckpointError> {
        let seed = super::checkpoint::random_seed(name)?;
        Ok(Self::from_seed(name, &seed))
    }

    /// Loads the key at `path`, or creates it (mode 0600) named `name`.
    pub fn load_or_create(path: &Path, name: &str) -> Result<Self, CheckpointError> {
        let text = load_or_create_private(path, name, COSIGNATURE_V1)?;
        Self::parse(&text)
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key id>+<base64(0x04 ‖ seed)>`.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let (name, seed) = parse_private(text, COSIGNATURE_V1)?;
        Ok(Self::from_seed(&name, &seed))
    }

    /// The public half.
    pub fn verifier(&self) -> &WitnessVerifier {
        &self.verifier
    }

    /// `note` with this witness's cosignature, made at `time` (seconds since the epoch),
    /// added as its last signature line. The caller has checked the note: this only
    /// signs.
    pub fn cosign(&self, note: &str, time: u64) -> Result<String, CheckpointError> {
        let parsed = Note::parse(note)?;
        let sig = self.signing.sign(&signed_message(&parsed.body, time));
        let mut blob = self.verifier.id.to_vec();
        blob.extend_from_slice(&time.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        let mut out = note.trim_end_matches('\n').to_string();
        out.push_str(&format!(
            "\n\u{2014} {} {}\n",
            self.verifier.name,
            B64.encode(blob)
        ));
        Ok(out)
    }
}

fn signed_message(body: &str, time: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{body}").into_bytes()
}

/// A checkpoint a witness cosigned, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// What the note says (its host signature is not checked here).
    pub checkpoint: Checkpoint,
    /// When the witness cosigned it, in seconds since the epoch.
    pub time: u64,
}

/// Checks that `witness` cosigned `note`. Signature lines by other keys are ignored.
pub fn verify_cosignature(
    note: &str,
    witness: &WitnessVerifier,
) -> Result<Cosigned, CheckpointError> {
    let parsed = Note::parse(note)?;
    let bad = || CheckpointError::BadSignature(witness.name.clone());
    let mut found = None;
    for (name, blob) in parsed.signatures() {
        let blob = blob?;
        if name != witness.name || blob.len() < 4 || blob[..4] != witness.id {
            continue;
        }
        let (time, sig) = blob[4..].split_at_checked(8).ok_or_else(bad)?;
        let time = u64::from_be_bytes(time.try_into().map_err(|_| bad())?);
        if time > i64::MAX as u64 {
            return Err(bad());
        }
        let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| bad())?;
        witness
            .key
            .verify_strict(&signed_message(&parsed.body, time), &sig)
            .map_err(|_| bad())?;
        found = Some(time);
    }
    match found {
        Some(time) => Ok(Cosigned {
            checkpoint: parsed.checkpoint,
            time,
        }),
        None => Err(CheckpointError::NotSigned(witness.to_string())),
    }
}

/// `<LOG>.cosigned`: the checkpoints of the log at `log` that a witness cosigned, each
/// note followed by a blank line, as `<LOG>.checkpoints` holds them.
pub fn cosigned_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".cosigned");
    PathBuf::from(name)
}

/// The name a witness key gets on this machine: `<host name>/warden-witness`.
pub fn default_name() -> String {
    format!("{}/warden-witness", crate::task::hostname())
}

/// Where this machine's witness key lives: `witness.key` in Warden's keys directory.
pub fn default_key_path() -> PathBuf {
    super::keys_dir().join("witness.key")
}

/// What a log's cosigned checkpoints say of it, for one witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witnessing {
    /// The largest checkpoint the witness cosigned matches the log's first `size` records.
    Witnessed {
        /// Records the cosigned checkpoint covers.
        size: u64,
        /// When the witness cosigned it.
        time: u64,
    },
    /// No checkpoint the witness cosigned (and the host signed) is beside the log.
    NotWitnessed,
    /// The witness cosigned more records than the log holds: records were removed.
    Truncated {
        /// Records the cosigned checkpoint covers.
        size: u64,
        /// When the witness cosigned it.
        time: u64,
    },
    /// The log's first `size` records are not what the witness cosigned.
    Differs {
        /// Records the cosigned checkpoint covers.
        size: u64,
        /// When the witness cosigned it.
        time: u64,
    },
}

/// Checks the log at `log`, already verified into `report` with the host key `key`,
/// against the largest checkpoint that `witness` cosigned among those kept in
/// [`cosigned_path`] and in the log's checkpoints file (a collector's copy keeps them
/// there). Notes the host did not sign are ignored.
pub fn check_witness(
    log: &Path,
    report: &super::verify::Report,
    key: &super::checkpoint::VerifierKey,
    witness: &WitnessVerifier,
) -> std::io::Result<Witnessing> {
    let mut cosigned: Vec<Cosigned> = Vec::new();
    for path in [cosigned_path(log), super::verify::checkpoints_path(log)] {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                ));
            }
        };
        let (notes, _, _) = super::verify::split_notes(&bytes);
        for note in notes {
            let Ok(text) = String::from_utf8(note) else {
                continue;
            };
            if let Ok(c) = verify_cosignature(&text, witness)
                && Checkpoint::verify(&text, key).is_ok()
            {
                cosigned.push(c);
            }
        }
    }
    cosigned.sort_by_key(|c| std::cmp::Reverse(c.checkpoint.size));
    let Some(largest) = cosigned.first() else {
        return Ok(Witnessing::NotWitnessed);
    };
    if largest.checkpoint.size > report.records {
        return Ok(Witnessing::Truncated {
            size: largest.checkpoint.size,
            time: largest.time,
        });
    }
    // The roots the log's own checkpoints sign: `report` says they match the log.
    let mut signed = std::collections::HashMap::new();
    let mut notes = Vec::new();
    std::io::Read::read_to_end(
        &mut super::segments::LogFiles::of(log)?.read_notes(),
        &mut notes,
    )?;
    for note in super::verify::split_notes(&notes).0 {
        if let Ok(text) = std::str::from_utf8(&note)
            && let Ok(cp) = Checkpoint::verify(text, key)
        {
            signed.insert(cp.size, cp.root);
        }
    }
    signed.insert(report.records, report.root().to_vec());
    for c in &cosigned {
        let size = c.checkpoint.size;
        let root = match signed.get(&size) {
            Some(root) => root.clone(),
            // Records retired from the front: no root from seq 0 can be computed.
            None if report.retired > 0 => continue,
            None => {
                let records = super::segments::read_records(log)?;
                super::proof::subtrees(
                    records,
                    vec![super::merkle::Range {
                        start: 0,
                        len: size,
                    }],
                )
                .map_err(|e| std::io::Error::other(e.to_string()))?[0]
                    .to_vec()
            }
        };
        return Ok(if root == c.checkpoint.root {
            Witnessing::Witnessed { size, time: c.time }
        } else {
            Witnessing::Differs { size, time: c.time }
        });
    }
    Ok(Witnessing::NotWitnessed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::HostKey;

    fn note() -> (HostKey, String) {
        let host = HostKey::generate("warden.test/audit").unwrap();
        let cp = Checkpoint {
            origin: "warden.test/audit".into(),
            size: 42,
            root: vec![0xab; 32],
        };
        let note = cp.sign(&host);
        (host, note)
    }

    #[test]
    fn cosigns_in_the_c2sp_shape_and_keeps_the_host_signature() {
        let (host, note) = note();
        let witness = WitnessKey::from_seed("witness.test/w1", &[9; 32]);
        let cosigned = witness.cosign(&note, 1_679_315_147).unwrap();
        let lines: Vec<&str> = cosigned.lines().collect();
        assert_eq!(lines.len(), 6, "{cosigned}");
        assert!(lines[5].starts_with("\u{2014} witness.test/w1 "));
        let blob = B64.decode(lines[5].rsplit(' ').next().unwrap()).unwrap();
        assert_eq!(blob.len(), 4 + 8 + 64);
        assert_eq!(&blob[4..12], &1_679_315_147u64.to_be_bytes());
        assert_eq!(
            verify_cosignature(&cosigned, witness.verifier()).unwrap(),
            Cosigned {
                checkpoint: Checkpoint::verify(&note, host.verifier()).unwrap(),
                time: 1_679_315_147,
            }
        );
        // The host's own signature still verifies: a cosigned note is still its checkpoint.
        Checkpoint::verify(&cosigned, host.verifier()).unwrap();
        // The key id is of type 0x04, as the format defines it.
        let vkey = witness.verifier().to_string();
        let raw = B64.decode(vkey.rsplit('+').next().unwrap()).unwrap();
        assert_eq!(raw[0], COSIGNATURE_V1);
        assert_eq!(&WitnessVerifier::parse(&vkey).unwrap(), witness.verifier());
    }

    #[test]
    fn a_changed_note_time_or_key_is_refused() {
        let (_, note) = note();
        let witness = WitnessKey::from_seed("witness.test/w1", &[9; 32]);
        let cosigned = witness.cosign(&note, 100).unwrap();
        let other_size = cosigned.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            verify_cosignature(&other_size, witness.verifier()),
            Err(CheckpointError::BadSignature(_))
        ));
        // The timestamp is signed: moving it breaks the signature.
        let line = cosigned.lines().last().unwrap();
        let mut blob = B64.decode(line.rsplit(' ').next().unwrap()).unwrap();
        blob[11] ^= 1;
        let moved = cosigned.replace(line.rsplit(' ').next().unwrap(), &B64.encode(&blob));
        assert!(verify_cosignature(&moved, witness.verifier()).is_err());
        let stranger = WitnessKey::from_seed("witness.test/w1", &[10; 32]);
        assert!(matches!(
            verify_cosignature(&cosigned, stranger.verifier()),
            Err(CheckpointError::NotSigned(_))
        ));
        // Not cosigned at all.
        assert!(matches!(
            verify_cosignature(&note, witness.verifier()),
            Err(CheckpointError::NotSigned(_))
        ));
    }

    #[test]
    fn host_and_witness_keys_are_not_interchangeable() {
        let (host, _) = note();
        let err = WitnessVerifier::parse(&host.verifier().to_string()).unwrap_err();
        assert!(err.to_string().contains("expected 0x04"), "{err}");
        let witness = WitnessKey::from_seed("witness.test/w1", &[9; 32]);
        let err = crate::audit::checkpoint::VerifierKey::parse(&witness.verifier().to_string())
            .unwrap_err();
        assert!(err.to_string().contains("expected 0x01"), "{err}");
    }
}
