//! Inclusion proofs: show an auditor that one record is in the log, with
//! nothing but that record, the proof and the host's verifier key.
//!
//! `warden audit prove <LOG> <SEQ>` verifies the log, then prints an
//! [`InclusionProof`] of record `SEQ` against the last checkpoint (which
//! covers it) as JSON:
//!
//! ```json
//! {
//!   "v": 1,
//!   "seq": 17,
//!   "leaf_hash": "<64 hex: BLAKE3 of 0x00 ‖ the record's line>",
//!   "hasher": "blake3",
//!   "tree_size": 64,
//!   "root": "<base64 root, as in the checkpoint>",
//!   "proof": ["<64 hex>", "..."],
//!   "checkpoint": "<the signed note, verbatim>"
//! }
//! ```
//!
//! `warden audit check-proof` ([`InclusionProof::check`]) needs no log: it
//! checks the note's signature with the key, that the proof's size and root
//! are the note's, that the proof leads from the leaf hash to that root,
//! and, given the record's line, that the leaf hash is of those bytes.
//! Size and root are taken from the signed note, never from the proof alone:
//! an inclusion proof does not bind a root to a size (see
//! [`super::merkle`]).

use super::checkpoint::{Checkpoint, CheckpointError, VerifierKey};
use super::merkle::{
    Blake3, Hasher, ProofError, Range, Subtrees, inclusion_ranges, leaf_hash, verify_inclusion,
};
use super::verify::{Hash, Report, hex, parse_hash};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use std::io::{BufRead, BufReader, Read};

/// A proof that record `seq` is leaf `seq` of the tree a signed checkpoint
/// commits to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// Format version: 1.
    pub v: u32,
    /// The record's seq, which is its leaf index.
    pub seq: u64,
    /// The record's leaf hash, 64 lowercase hex digits.
    pub leaf_hash: String,
    /// The tree's hasher: `blake3`.
    pub hasher: String,
    /// The size of the tree: the checkpoint's size.
    pub tree_size: u64,
    /// The tree's root in base64: the checkpoint's root.
    pub root: String,
    /// Sibling hashes from the leaf up (RFC 9162 §2.1.3), hex.
    pub proof: Vec<String>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

/// Why no proof could be made from a verified log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    /// The log could not be read.
    #[error("reading the log: {0}")]
    Read(#[from] std::io::Error),
    /// The log no longer holds what was verified: it was cut or changed
    /// since.
    #[error("the log changed after it was verified: {0}")]
    Changed(String),
    /// The log has no record `seq`.
    #[error("seq {seq} is not in the log, which has {records} records")]
    NoSuchRecord {
        /// The seq asked for.
        seq: u64,
        /// Records in the log.
        records: u64,
    },
    /// Record `seq` exists but no checkpoint signs it yet.
    #[error("seq {seq} is not covered by a checkpoint yet: the last one covers {covered} records")]
    NotCovered {
        /// The seq asked for.
        seq: u64,
        /// Records the last checkpoint covers.
        covered: u64,
    },
}

/// Why a proof was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofCheckError {
    /// A field does not hold what the format says (version, hasher, hex).
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// The proof's checkpoint does not verify with the key.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint is signed by the key but names another log.
    #[error("checkpoint: origin {origin:?} is not the key's name {name:?}")]
    Origin {
        /// The checkpoint's origin.
        origin: String,
        /// The key's name.
        name: String,
    },
    /// The proof's size or root is not the one its checkpoint signs.
    #[error("the proof's {what} {found} is not its checkpoint's {signed}")]
    NotTheCheckpoint {
        /// `tree_size` or `root`.
        what: &'static str,
        /// The value in the proof.
        found: String,
        /// The value in the checkpoint.
        signed: String,
    },
    /// The proof's hashes do not lead from the leaf to the signed root.
    #[error("seq {seq} is not in the tree of checkpoint size {size}: {source}")]
    Inclusion {
        /// The record.
        seq: u64,
        /// The checkpoint's size.
        size: u64,
        /// What the RFC 9162 check found.
        source: ProofError,
    },
    /// The record given is not the one the proof is for.
    #[error("the record's leaf hash {found} is not the proof's {expected}")]
    Record {
        /// The leaf hash of the record given.
        found: String,
        /// The leaf hash in the proof.
        expected: String,
    },
}

impl InclusionProof {
    /// The proof of record `seq` against the last checkpoint of a verified
    /// log.
    ///
    /// # Errors
    ///
    /// [`ProveError::NoSuchRecord`] past the end of the log,
    /// [`ProveError::NotCovered`] past the last checkpoint.
    pub fn new(log: impl Read, report: &Report, seq: u64) -> Result<Self, ProveError> {
        if seq >= report.records {
            return Err(ProveError::NoSuchRecord {
                seq,
                records: report.records,
            });
        }
        let Some(last) = report.last_checkpoint().filter(|s| seq < s.checkpoint.size) else {
            return Err(ProveError::NotCovered {
                seq,
                covered: report.covered,
            });
        };
        let cp = &last.checkpoint;
        // The proof's hashes and the record's own, in one pass.
        let mut ranges = inclusion_ranges(seq, cp.size);
        ranges.push(Range { start: seq, len: 1 });
        let mut hashes = subtrees(log, ranges)?;
        let leaf = hashes.pop().expect("one hash per range");
        verify_inclusion::<Blake3>(&leaf, seq, cp.size, &hashes, &cp.root)
            .map_err(|e| ProveError::Changed(e.to_string()))?;
        Ok(InclusionProof {
            v: 1,
            seq,
            leaf_hash: hex(&leaf),
            hasher: Blake3::NAME.into(),
            tree_size: cp.size,
            root: B64.encode(&cp.root),
            proof: hashes.iter().map(|h| hex(h)).collect(),
            checkpoint: last.note.clone(),
        })
    }

    /// Checks the proof with `key`, and, given `record` (the line's bytes,
    /// with or without its `\n`), that it is the record proven. Returns the
    /// checkpoint it proves against.
    ///
    /// # Errors
    ///
    /// Any [`ProofCheckError`]: the first check that failed, in the order
    /// format, signature, checkpoint match, inclusion, record.
    pub fn check(
        &self,
        key: &VerifierKey,
        record: Option<&[u8]>,
    ) -> Result<Checkpoint, ProofCheckError> {
        let malformed = |m: String| ProofCheckError::Malformed(m);
        if self.v != 1 {
            return Err(malformed(format!("version {} is not 1", self.v)));
        }
        if self.hasher != Blake3::NAME {
            return Err(malformed(format!(
                "hasher {:?} is not {:?}",
                self.hasher,
                Blake3::NAME
            )));
        }
        let leaf = parse_hash(&self.leaf_hash).ok_or_else(|| {
            malformed(format!(
                "leaf_hash {:?} is not 64 lowercase hex digits",
                self.leaf_hash
            ))
        })?;
        let proof = self
            .proof
            .iter()
            .enumerate()
            .map(|(i, h)| {
                parse_hash(h).ok_or_else(|| {
                    malformed(format!("proof[{i}] {h:?} is not 64 lowercase hex digits"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cp = Checkpoint::verify(&self.checkpoint, key)?;
        if cp.origin != key.name() {
            return Err(ProofCheckError::Origin {
                origin: cp.origin,
                name: key.name().to_string(),
            });
        }
        if cp.size != self.tree_size {
            return Err(ProofCheckError::NotTheCheckpoint {
                what: "tree_size",
                found: self.tree_size.to_string(),
                signed: cp.size.to_string(),
            });
        }
        let signed_root = B64.encode(&cp.root);
        if signed_root != self.root {
            return Err(ProofCheckError::NotTheCheckpoint {
                what: "root",
                found: self.root.clone(),
                signed: signed_root,
            });
        }
        verify_inclusion::<Blake3>(&leaf, self.seq, cp.size, &proof, &cp.root).map_err(
            |source| ProofCheckError::Inclusion {
                seq: self.seq,
                size: cp.size,
                source,
            },
        )?;
        if let Some(line) = record {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let found = hex(&leaf_hash::<Blake3>(line));
            if found != self.leaf_hash {
                return Err(ProofCheckError::Record {
                    found,
                    expected: self.leaf_hash.clone(),
                });
            }
        }
        Ok(cp)
    }
}

/// The hashes of disjoint subtrees of a log's tree (see
/// [`super::merkle::inclusion_ranges`]), read from the log in one pass that
/// keeps one right edge per range: proofs come from the log on disk, not
/// from a tree held in memory.
///
/// # Errors
///
/// [`ProveError::Read`] when the log cannot be read,
/// [`ProveError::Changed`] when it has fewer records than a range needs.
pub fn subtrees(log: impl Read, ranges: Vec<Range>) -> Result<Vec<Hash>, ProveError> {
    let mut sub = Subtrees::<Blake3>::new(ranges);
    let needs = sub.needs();
    let mut reader = BufReader::with_capacity(1 << 16, log);
    let mut line = Vec::new();
    let mut read = 0;
    while read < needs {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 || line.pop() != Some(b'\n') {
            break;
        }
        sub.push_hash(leaf_hash::<Blake3>(&line));
        read += 1;
    }
    sub.finish().map_err(|e| ProveError::Changed(e.to_string()))
}
