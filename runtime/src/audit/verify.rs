//! Verifying an audit log: is every record still what was written, and does
//! every checkpoint still sign it?
//!
//! A log is a file of JSON Lines. Line `i` is record `seq` `i`; every record
//! but seq 0 carries `prev`, the BLAKE3 leaf hash of the line before it, and
//! line `i` is leaf `i` of an RFC 9162 Merkle tree ([`super::merkle`]).
//! Beside the log, `<LOG>.checkpoints` holds signed notes
//! ([`super::checkpoint`]), each followed by a blank line, with strictly
//! growing sizes. [`verify`] reads both and checks, in this order:
//!
//! 1. every complete checkpoint: its signature by the given key, its origin
//!    (the key's name), and that sizes grow;
//! 2. every complete line: UTF-8 JSON object, an integer `seq`, and a `prev`
//!    of 64 lowercase hex digits unless `seq` is 0;
//! 3. the chain: line `i` says `seq` `i` and its `prev` is the hash of line
//!    `i - 1`;
//! 4. each checkpoint's root against the tree of the log at its size, and
//!    that the log has at least that many records;
//! 5. each checkpoint against the next: with both roots computed from the
//!    same leaves they are consistent (an auditor holding only two notes
//!    checks that with a consistency proof:
//!    [`super::merkle::consistency_ranges`],
//!    [`super::merkle::verify_consistency`]);
//! 6. each `recovery` record that adopts records (`warden audit adopt`):
//!    that the range it names comes before it and has the digest it says
//!    ([`range_digest`]). The report lists them ([`Report::adopted`]):
//!    records that were taken on without a checkpoint covering them.
//!
//! An intact log is checked in one pass over its lines and its notes
//! together, holding the tree's right edge ([`Frontier`]) and the hashes of
//! the records since the last checkpoint, never the whole tree: memory does
//! not grow with the log. At the first line or note that is not as an
//! intact log has it, both files are read again whole to name the damage
//! precisely; that costs memory in proportion to the log, and only a
//! damaged log pays it.
//!
//! The result is a [`Report`], or the first thing wrong as a
//! [`VerifyError`] that names the first bad `seq` and says what happened
//! to it. Checkpoint errors come first: without trustworthy checkpoints
//! nothing else is worth reporting. Then the earliest record the chain or a
//! checkpoint root shows to be wrong.
//!
//! # What counts as damage
//!
//! The writer appends a whole line at a time and signs a checkpoint only
//! after the records it covers are durable. So a last line without its
//! `\n` *past the last checkpoint* is a write cut short, not tampering: the
//! report says so ([`Report::torn_tail`]) and the writer drops it when it
//! next opens the log. The same holds for an incomplete last note in the
//! checkpoints file ([`Report::torn_checkpoint`]): it is ignored. Anything
//! missing or wrong at or before the last checkpoint is damage.
//!
//! # How tampering is named
//!
//! The scan stops at the first line `p` that is not well formed, does not
//! say seq `p`, or does not link to line `p - 1`. What is around it decides
//! the kind; `seq` in the error is the first record that is not as written:
//!
//! | kind | how it shows | seq named |
//! | --- | --- | --- |
//! | `malformed` | line `p` is not a JSON object with a seq (and a prev) | line `p + 1`, seq `p` |
//! | `inserted` | line `p` repeats another line byte for byte | `p` |
//! | `reordered` | line `p` is a record that links to another record of the log (seq `s - 1`), and the record that belongs at `p` (seq `p`, linking to line `p - 1`) comes later | `p` |
//! | `inserted` | line `p + 1` links past line `p` to line `p - 1` | `p` |
//! | `inserted` | line `p` says seq `p - 1` and links to line `p - 2`: line `p - 1` is the extra one | `p - 1` |
//! | `changed` | line `p` links to line `p - 1` but says another seq: its seq was edited | `p` |
//! | `removed` | line `p` says seq `s > p` | `p` (seqs `p..s` are gone) |
//! | `inserted` | line `p` says seq `s < p` | `p` |
//! | `changed` | line `p` says seq `p`, does not link to line `p - 1`, and line `p + 1` links to it: line `p - 1` is not what line `p` committed to | `p - 1` |
//! | `changed` | as above, but line `p + 1` does not link to line `p` either: line `p`'s own prev was edited | `p` |
//! | `changed` | the chain holds but a checkpoint of size `m` signs another root: its last record was edited (nothing after it commits to it), or records were edited and the links after them rewritten | `m - 1`, or the previous checkpoint's size |
//! | `truncated` | a checkpoint covers more records than the log has | the log's length |
//! | `bad signature` | a checkpoint does not verify with the key, or is signed by another key | checkpoint index and size |
//! | `bad checkpoint` | a signed checkpoint is malformed, names another origin, does not grow, or is not consistent with the one before | checkpoint index and size |
//!
//! # Limits
//!
//! These rules name a *single* tampering right: one record changed,
//! removed (or a run of them), inserted (a copy or a fabricated one), two
//! records swapped or one moved, or the log cut short. A combination is
//! called by the first rule that fits its first bad line, which may not be
//! the whole story: a removal followed by a renumbering of every later seq
//! reads as `changed`, and an insertion whose neighbours were also edited
//! may read as `changed` or `removed`. It is still not intact, unless every
//! part of it is one of the edits below.
//!
//! Some edits cannot be seen without a copy of the checkpoints kept
//! elsewhere: records after the last checkpoint are chained but not signed,
//! so changing the content of the very last record, dropping records from
//! the end, or appending well-formed records leaves a log that verifies; so
//! does
//! removing the last checkpoints (or cutting the last one short) together
//! with the records only they covered. Rewriting a record and every `prev`
//! after it is caught by the first checkpoint that covers it, which can
//! only say which range of records it was.
//!
//! One case is ambiguous on its face: when the *last* line does not link to
//! the one before it, either the one before was edited or the last line's
//! `prev` was. Unless a checkpoint of exactly the shorter size settles it,
//! the earlier seq is named and the message says so.
//!
//! # Example
//!
//! ```
//! use warden::audit::checkpoint::{Checkpoint, HostKey};
//! use warden::audit::merkle::{Blake3, MerkleTree, leaf_hash};
//! use warden::audit::verify::{VerifyError, hex, verify_bytes};
//!
//! let key = HostKey::generate("example/warden-audit")?;
//! let (mut log, mut tree) = (Vec::new(), MerkleTree::<Blake3>::new());
//! let mut prev: Option<[u8; 32]> = None;
//! for seq in 0..4 {
//!     let line = match prev {
//!         None => format!(r#"{{"v":1,"seq":{seq},"event":"task.start"}}"#),
//!         Some(p) => format!(r#"{{"v":1,"seq":{seq},"prev":"{}","event":"call"}}"#, hex(&p)),
//!     };
//!     prev = Some(leaf_hash::<Blake3>(line.as_bytes()));
//!     tree.push(line.as_bytes());
//!     log.extend_from_slice(line.as_bytes());
//!     log.push(b'\n');
//! }
//! let note = Checkpoint { origin: "example/warden-audit".into(), size: 4, root: tree.root().to_vec() }
//!     .sign(&key) + "\n";
//!
//! let report = verify_bytes(&log, note.as_bytes(), key.verifier())?;
//! assert_eq!((report.records, report.checkpoints, report.covered), (4, 1, 4));
//!
//! // `call` becomes `cail` in seq 1: seq 2's prev no longer matches it.
//! let at = log.windows(4).position(|w| w == b"call").unwrap();
//! log[at + 2] = b'i';
//! let err = verify_bytes(&log, note.as_bytes(), key.verifier()).unwrap_err();
//! assert!(matches!(err, VerifyError::Changed { seq: 1, .. }), "{err}");
//! assert_eq!(err.to_string(), "seq 1: changed: its bytes differ from what seq 2's prev commits to");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::checkpoint::{Checkpoint, CheckpointError, VerifierKey};
use super::merkle::{Blake3, Frontier, leaf_hash};
use super::segments::LogFiles;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A BLAKE3 leaf hash: what a record's `prev` holds.
pub type Hash = [u8; 32];

/// Where the checkpoints of a log are, as the writer puts them.
pub use super::log::checkpoints_path;

/// Lowercase hex, as `prev` and proofs write hashes.
pub use warden_host_api::hex::encode as hex;

/// Parses 64 lowercase hex digits into a hash; anything else is `None`.
pub fn parse_hash(text: &str) -> Option<Hash> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Why a log did not verify. Every variant but [`VerifyError::Io`] means
/// the log is not intact (`warden audit verify` exits 1); `Io` means it
/// could not be read (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The log or its checkpoints file could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// A line is not a record: not UTF-8 JSON, not an object, no integer
    /// `seq`, or no well-formed `prev` where one belongs.
    #[error("line {line}: malformed: {reason}")]
    Malformed {
        /// The line, counted from 1 as editors do (record seq `line - 1`).
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A record's bytes differ from what the log committed to.
    #[error("seq {seq}: changed: {evidence}")]
    Changed {
        /// The first record that differs.
        seq: u64,
        /// What shows it.
        evidence: String,
    },
    /// A line that the writer did not write sits where record `seq` belongs.
    #[error("seq {seq}: inserted: {evidence}")]
    Inserted {
        /// The position of the extra line (line `seq + 1`).
        seq: u64,
        /// What shows it.
        evidence: String,
    },
    /// Records `seq..next` are missing: the line where `seq` belongs is
    /// record `next`.
    #[error("seq {seq}: removed: {}", removed(*.seq, *.next))]
    Removed {
        /// The first missing record.
        seq: u64,
        /// The seq of the line found in its place.
        next: u64,
    },
    /// Record `seq` is not in its place: line `seq + 1` holds record
    /// `holds`, and record `seq` is on line `found + 1`.
    #[error("seq {seq}: reordered: {}", reordered(*.seq, *.holds, *.found))]
    Reordered {
        /// The first record out of place.
        seq: u64,
        /// The record found in its place.
        holds: u64,
        /// Where record `seq` is (0-based line index).
        found: u64,
    },
    /// The log ends before the records a checkpoint covers.
    #[error(
        "seq {seq}: truncated: checkpoint {checkpoint} covers {size} records, the log has {seq}"
    )]
    Truncated {
        /// The first missing record: the number of records in the log.
        seq: u64,
        /// The first checkpoint (counted from 0) that covers more.
        checkpoint: usize,
        /// Its size.
        size: u64,
    },
    /// A checkpoint's signature does not verify with the key, or it is
    /// signed by another key only.
    #[error("checkpoint {}: bad signature: {reason}", label(*.index, *.size))]
    BadSignature {
        /// The checkpoint, counted from 0 in the checkpoints file.
        index: usize,
        /// Its size, if its body says one.
        size: Option<u64>,
        /// What failed.
        reason: String,
    },
    /// A `recovery` record that adopts records (`warden audit adopt`) does
    /// not describe records of this log: a range that is not before it, or
    /// a digest they do not have.
    #[error("seq {seq}: bad recovery record: {reason}")]
    BadRecovery {
        /// The recovery record.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The oldest segments were retired, and the anchor the log now starts
    /// from (`<SEGMENT>.anchor`: the tree's edge there and the checkpoint
    /// that signs it) is missing or wrong.
    #[error("{}: bad anchor: {reason}", path.display())]
    BadAnchor {
        /// The anchor file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint is signed but unusable: malformed, of another origin,
    /// not larger than the one before it, or inconsistent with it.
    #[error("checkpoint {}: {reason}", label(*.index, *.size))]
    BadCheckpoint {
        /// The checkpoint, counted from 0 in the checkpoints file.
        index: usize,
        /// Its size, if its body says one.
        size: Option<u64>,
        /// What is wrong.
        reason: String,
    },
}

fn removed(seq: u64, next: u64) -> String {
    if next == seq + 1 {
        format!("the line where it belongs is seq {next}")
    } else {
        format!(
            "seq {seq} to {} are missing: the line where seq {seq} belongs is seq {next}",
            next - 1
        )
    }
}

fn reordered(seq: u64, holds: u64, found: u64) -> String {
    if holds == seq + 1 && found == seq + 1 {
        format!("it comes after seq {holds}, on line {}", found + 1)
    } else {
        format!(
            "line {} holds seq {holds}, and seq {seq} is on line {}",
            seq + 1,
            found + 1
        )
    }
}

fn label(index: usize, size: Option<u64>) -> String {
    match size {
        Some(size) => format!("{index} (size {size})"),
        None => index.to_string(),
    }
}

impl VerifyError {
    /// The first bad record, where there is one: the seq of a record error,
    /// `line - 1` of a malformed line. `None` for checkpoint and I/O errors.
    pub fn seq(&self) -> Option<u64> {
        match self {
            VerifyError::Malformed { line, .. } => Some(line - 1),
            VerifyError::Changed { seq, .. }
            | VerifyError::Inserted { seq, .. }
            | VerifyError::Removed { seq, .. }
            | VerifyError::Reordered { seq, .. }
            | VerifyError::Truncated { seq, .. }
            | VerifyError::BadRecovery { seq, .. } => Some(*seq),
            VerifyError::Io { .. }
            | VerifyError::BadSignature { .. }
            | VerifyError::BadCheckpoint { .. }
            | VerifyError::BadAnchor { .. } => None,
        }
    }

    /// The kind in one word or two, as messages write it: `changed`,
    /// `inserted`, `removed`, `reordered`, `truncated`, `bad signature`,
    /// `bad checkpoint`, `bad recovery`, `bad anchor`, `malformed` or
    /// `unreadable`.
    pub fn kind(&self) -> &'static str {
        match self {
            VerifyError::Io { .. } => "unreadable",
            VerifyError::Malformed { .. } => "malformed",
            VerifyError::Changed { .. } => "changed",
            VerifyError::Inserted { .. } => "inserted",
            VerifyError::Removed { .. } => "removed",
            VerifyError::Reordered { .. } => "reordered",
            VerifyError::Truncated { .. } => "truncated",
            VerifyError::BadSignature { .. } => "bad signature",
            VerifyError::BadCheckpoint { .. } => "bad checkpoint",
            VerifyError::BadRecovery { .. } => "bad recovery",
            VerifyError::BadAnchor { .. } => "bad anchor",
        }
    }

    /// Whether the log is not intact (rather than unreadable).
    pub fn is_damage(&self) -> bool {
        !matches!(self, VerifyError::Io { .. })
    }
}

/// A last line without its `\n`: a write cut short after the last
/// checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Where it starts: the length of the complete records, counting those
    /// of closed segments ([`super::segments`]) before the open one.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// A checkpoint whose signature verified, with the note it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// Its position in the checkpoints file, from 0.
    pub index: usize,
    /// The note, exactly as in the file (without the blank line after it).
    pub note: String,
    /// What it signs.
    pub checkpoint: Checkpoint,
}

/// Records that `warden audit adopt` took on without checkpoint cover, as
/// its `recovery` record names them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Adopted {
    /// The `recovery` record that adopted them.
    pub record: u64,
    /// The first adopted record.
    pub from_seq: u64,
    /// The last adopted record.
    pub to_seq: u64,
    /// `blake3:<hex>` of their leaf hashes ([`range_digest`]); checked
    /// against the log.
    pub digest: String,
}

/// The digest a `recovery` record gives of the records it adopts:
/// `blake3:` and the hex BLAKE3 hash of their leaf hashes, in order.
pub fn range_digest(leaves: &[Hash]) -> String {
    let mut h = blake3::Hasher::new();
    for leaf in leaves {
        h.update(leaf);
    }
    format!("blake3:{}", h.finalize().to_hex())
}

/// What an intact log holds.
#[derive(Clone)]
#[non_exhaustive]
pub struct Report {
    /// Complete records: lines that end in `\n`, counting retired ones;
    /// the next record's seq.
    pub records: u64,
    /// Records retired with the oldest segments (`audit.retire`): seqs
    /// `0..retired` are gone, and the log starts at `retired`.
    pub retired: u64,
    /// Complete checkpoints, all verified (those of retired segments are
    /// gone with them).
    pub checkpoints: usize,
    /// Records the last checkpoint covers (its size); 0 without one.
    pub covered: u64,
    /// Records after the last checkpoint: chained, but not signed yet.
    pub uncovered: u64,
    /// A torn last line, past the last checkpoint.
    pub torn_tail: Option<TornTail>,
    /// Whether an incomplete last note in the checkpoints file was ignored.
    pub torn_checkpoint: bool,
    /// The leaf hash of the last complete record: the `prev` of the next.
    pub last_hash: Option<Hash>,
    /// Ranges of records adopted without checkpoint cover (`warden audit
    /// adopt`), in log order: nothing but the operator's decision vouches
    /// for them.
    pub adopted: Vec<Adopted>,
    last: Option<SignedCheckpoint>,
    /// Bytes of the checkpoints file up to the end of its last complete
    /// note, with the blank line after it.
    notes_end: u64,
    /// [`range_digest`] of the records after the last checkpoint.
    uncovered_digest: String,
    frontier: Frontier<Blake3>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("records", &self.records)
            .field("retired", &self.retired)
            .field("checkpoints", &self.checkpoints)
            .field("covered", &self.covered)
            .field("uncovered", &self.uncovered)
            .field("torn_tail", &self.torn_tail)
            .field("torn_checkpoint", &self.torn_checkpoint)
            .field("last_hash", &self.last_hash.map(|h| hex(&h)))
            .field("adopted", &self.adopted)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Report {
    fn eq(&self, other: &Self) -> bool {
        let key = |r: &Report| {
            (
                (r.records, r.retired, r.checkpoints, r.covered, r.uncovered),
                (r.torn_tail, r.torn_checkpoint, r.last_hash),
                (r.adopted.clone(), r.last.clone(), r.notes_end),
                (r.uncovered_digest.clone(), r.frontier.root()),
            )
        };
        key(self) == key(other)
    }
}

impl Report {
    /// The last verified checkpoint.
    pub fn last_checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.last.as_ref()
    }

    /// The root of the tree of every complete record.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// [`range_digest`] of the records after the last checkpoint: what
    /// `warden audit adopt` names when it takes them on.
    pub fn uncovered_digest(&self) -> &str {
        &self.uncovered_digest
    }

    /// The right edge of the tree of the complete records, for a writer
    /// that carries on appending. Proofs are made from the log itself
    /// ([`super::proof`]), so no report holds the whole tree.
    pub fn into_frontier(self) -> Frontier<Blake3> {
        self.frontier
    }

    /// Where the last complete note of the checkpoints file ends.
    pub(crate) fn notes_end(&self) -> u64 {
        self.notes_end
    }
}

/// Verifies the log at `log` and its checkpoints at
/// [`checkpoints_path`]`(log)` against `key`. A missing checkpoints file is
/// a log with no checkpoints yet.
///
/// Only the checkpoints file's length at the start is read, so that a
/// writer appending at the same time cannot make a checkpoint look ahead
/// of the log: a line it is in the middle of writing reads as a torn tail.
///
/// An intact log is verified in one pass that keeps O(log n) hashes
/// (plus the hashes of the records after the last checkpoint), however long
/// it is. A damaged one is read again, whole, to name the damage.
///
/// # Errors
///
/// [`VerifyError::Io`] when a file cannot be read; any other variant for
/// the first damage found (see the module docs).
pub fn verify(log: &Path, key: &VerifierKey) -> Result<Report, VerifyError> {
    let io = |error| VerifyError::Io {
        path: log.to_path_buf(),
        error,
    };
    let files = LogFiles::of(log).map_err(io)?;
    match std::fs::metadata(log) {
        Ok(m) if m.is_dir() => return Err(io(std::io::Error::other("is a directory"))),
        Ok(_) => {}
        // A writer killed between closing a segment and opening the next.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && files.segmented() => {}
        Err(e) => return Err(io(e)),
    }
    verify_log(&files, key)
}

/// [`verify`] on the files of a log, as listed when the writer opens it.
pub(crate) fn verify_log(files: &LogFiles, key: &VerifierKey) -> Result<Report, VerifyError> {
    let anchor = match files.anchor() {
        None => None,
        Some((first, path)) => Some(read_anchor(first, path, key)?),
    };
    verify_with(
        || files.read_records(),
        || files.read_notes(),
        key,
        (files.log_path(), files.notes_path()),
        anchor.as_ref(),
    )
}

/// Where a log whose oldest segments were retired starts: the tree's right
/// edge at its first kept record, as `<SEGMENT>.anchor` holds it, checked
/// against the checkpoint of that size it carries.
#[derive(Debug, Clone)]
pub(crate) struct Anchor {
    pub frontier: Frontier<Blake3>,
}

/// `<SEGMENT>.anchor` as JSON.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnchorFile {
    pub v: u32,
    /// Records before the segment: its first seq.
    pub size: u64,
    /// The hashes of the tree's full subtrees at `size`, largest first, hex.
    pub frontier: Vec<String>,
    /// The signed checkpoint of exactly `size` records, verbatim.
    pub checkpoint: String,
}

/// Reads and checks the anchor at `path` of a log whose first kept segment
/// starts at seq `first`: signed by `key`, of that size, and its edge has
/// the root the checkpoint signs.
fn read_anchor(first: u64, path: &Path, key: &VerifierKey) -> Result<Anchor, VerifyError> {
    let bad = |reason: String| VerifyError::BadAnchor {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(format!(
            "the oldest segment starts at seq {first}, and its anchor cannot be read ({e})"
        ))
    })?;
    let file: AnchorFile =
        serde_json::from_str(&text).map_err(|e| bad(format!("not an anchor: {e}")))?;
    if file.v != 1 || file.size != first {
        return Err(bad(format!(
            "it is for seq {}, and the oldest segment starts at seq {first}",
            file.size
        )));
    }
    let checkpoint = check_note(0, file.checkpoint.as_bytes(), key, None)
        .map_err(|e| bad(format!("its checkpoint: {e}")))?;
    if checkpoint.checkpoint.size != first {
        return Err(bad(format!(
            "its checkpoint has size {}, not {first}",
            checkpoint.checkpoint.size
        )));
    }
    let nodes = file
        .frontier
        .iter()
        .map(|h| parse_hash(h))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("a frontier hash is not 64 lowercase hex digits".into()))?;
    let frontier = Frontier::<Blake3>::from_parts(first, nodes).ok_or_else(|| {
        bad(format!(
            "its frontier does not have one hash per bit of {first}"
        ))
    })?;
    if frontier.root()[..] != checkpoint.checkpoint.root[..] {
        return Err(bad(
            "its frontier's root is not the root its checkpoint signs".into(),
        ));
    }
    Ok(Anchor { frontier })
}

/// [`verify`] on the bytes of a log and of its checkpoints file.
///
/// # Errors
///
/// As [`verify`], never [`VerifyError::Io`].
pub fn verify_bytes(
    log: &[u8],
    checkpoints: &[u8],
    key: &VerifierKey,
) -> Result<Report, VerifyError> {
    let none = Path::new("");
    verify_with(|| log, || checkpoints, key, (none, none), None)
}

/// Verifies the log whose lines and notes `lines()` and `notes()` read from
/// the start, each time they are called: once for the single pass, and
/// once more, whole, if it finds something to name.
fn verify_with<L: Read, C: Read>(
    lines: impl Fn() -> L,
    notes: impl Fn() -> C,
    key: &VerifierKey,
    (log_path, cp_path): (&Path, &Path),
    start: Option<&Anchor>,
) -> Result<Report, VerifyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| VerifyError::Io {
            path: path.clone(),
            error,
        }
    };
    match single_pass(
        BufReader::with_capacity(1 << 16, lines()),
        BufReader::new(notes()),
        key,
        start,
    ) {
        Ok(Some(report)) => return Ok(report),
        Ok(None) => {}
        Err(Pass::Log(e)) => return Err(io(log_path)(e)),
        Err(Pass::Checkpoints(e)) => return Err(io(cp_path)(e)),
    }
    // Damage, or something one pass cannot vouch for: read both whole and
    // name it with every line at hand.
    let mut cp_bytes = Vec::new();
    notes().read_to_end(&mut cp_bytes).map_err(io(cp_path))?;
    let mut bytes = Vec::new();
    lines().read_to_end(&mut bytes).map_err(io(log_path))?;
    in_full(&bytes, &cp_bytes, key, start)
}

/// Which file a read failed on.
enum Pass {
    Log(std::io::Error),
    Checkpoints(std::io::Error),
}

/// The most record hashes the single pass keeps for checking an adoption
/// (a `recovery` record's digest of the records before it, which no
/// checkpoint covered): a writer checkpoints every few hundred records, so
/// only a log that went long without one comes near it, and its adoptions
/// are then checked by the full pass.
const WINDOW: usize = 1 << 16;

/// Verifies an intact log in one pass over its lines and its notes
/// together, keeping the tree's right edge and the hashes of the records
/// since the last checkpoint. `None` at the first thing that is not as an
/// intact log has it: the full pass ([`in_full`]) then names it.
fn single_pass(
    mut lines: impl BufRead,
    checkpoints: impl BufRead,
    key: &VerifierKey,
    start: Option<&Anchor>,
) -> Result<Option<Report>, Pass> {
    let mut notes = NoteReader::new(checkpoints);
    // The next note, verified; `Err(None)` for one the full pass must name.
    let mut next_note = |last: Option<&SignedCheckpoint>| -> Result<Option<_>, Option<Pass>> {
        let index = notes.count;
        match notes.next().map_err(|e| Some(Pass::Checkpoints(e)))? {
            None => Ok(None),
            Some(note) => check_note(index, &note, key, last)
                .map(Some)
                .map_err(|_| None),
        }
    };
    let mut frontier = start.map_or_else(Frontier::<Blake3>::new, |a| a.frontier.clone());
    let retired = frontier.len();
    let mut retired_through: Option<u64> = None;
    let mut last_hash: Option<Hash> = None;
    let mut last: Option<SignedCheckpoint> = None;
    let mut pending = match next_note(None) {
        Ok(cp) => cp,
        Err(e) => return e.map_or(Ok(None), Err),
    };
    // Hashes of the records since the last checkpoint, while few enough.
    let mut window: Vec<Hash> = Vec::new();
    let mut window_full = false;
    let mut uncovered = blake3::Hasher::new();
    let mut adopted = Vec::new();
    let mut end = 0u64;
    let mut torn_tail = None;
    let mut buf = Vec::new();
    loop {
        // Every checkpoint of exactly this size must sign this root.
        while let Some(cp) = pending.take_if(|cp| cp.checkpoint.size == frontier.len()) {
            if cp.checkpoint.root[..] != frontier.root()[..] {
                return Ok(None);
            }
            window.clear();
            window_full = false;
            uncovered = blake3::Hasher::new();
            pending = match next_note(Some(&cp)) {
                Ok(next) => next,
                Err(e) => return e.map_or(Ok(None), Err),
            };
            last = Some(cp);
        }
        buf.clear();
        let n = lines.read_until(b'\n', &mut buf).map_err(Pass::Log)?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') {
            torn_tail = Some(TornTail {
                offset: end,
                len: n as u64,
            });
            break;
        }
        buf.pop();
        let seq = frontier.len();
        match parse_head(&buf) {
            Head::Record { seq: said, prev } if said == seq && prev == last_hash => {}
            // The first record kept: the one before it was retired.
            Head::Record {
                seq: said,
                prev: Some(_),
            } if said == seq && seq == retired && retired > 0 => {}
            _ => return Ok(None),
        }
        if let Some(through) = retirement(&buf) {
            retired_through = retired_through.max(Some(through));
        }
        if let Some(claim) = adoption(&buf) {
            let Ok((from, to, digest)) = claim else {
                return Ok(None);
            };
            let first = seq - window.len() as u64;
            if window_full || from < first || from > to || to >= seq {
                return Ok(None);
            }
            let range = &window[(from - first) as usize..=(to - first) as usize];
            if range_digest(range) != digest {
                return Ok(None);
            }
            adopted.push(Adopted {
                record: seq,
                from_seq: from,
                to_seq: to,
                digest,
            });
        }
        let hash = leaf_hash::<Blake3>(&buf);
        frontier.push_hash(hash);
        uncovered.update(&hash);
        if window.len() < WINDOW {
            window.push(hash);
        } else {
            window_full = true;
        }
        last_hash = Some(hash);
        end += n as u64;
    }
    if pending.is_some() {
        // A checkpoint covers more than the log has: truncated.
        return Ok(None);
    }
    if retired > 0 && retired_through.is_none_or(|t| t + 1 < retired) {
        // Records gone without a retire record that says so.
        return Ok(None);
    }
    let records = frontier.len();
    let covered = last.as_ref().map_or(retired, |c| c.checkpoint.size);
    Ok(Some(Report {
        records,
        retired,
        checkpoints: notes.count,
        covered,
        uncovered: records - covered,
        torn_tail,
        torn_checkpoint: notes.torn,
        last_hash,
        adopted,
        last,
        notes_end: notes.end,
        uncovered_digest: format!("blake3:{}", uncovered.finalize().to_hex()),
        frontier,
    }))
}

/// What the verifier keeps of a line.
struct Line {
    hash: Hash,
    head: Head,
}

pub(crate) enum Head {
    /// `prev` is `None` exactly when `seq` is 0.
    Record {
        seq: u64,
        prev: Option<Hash>,
    },
    Malformed(Box<str>),
}

#[derive(serde::Deserialize)]
struct RawHead<'a> {
    seq: Option<u64>,
    #[serde(borrow)]
    prev: Option<std::borrow::Cow<'a, str>>,
}

pub(crate) fn parse_head(line: &[u8]) -> Head {
    let malformed = |m: String| Head::Malformed(m.into_boxed_str());
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(e) => return malformed(format!("not UTF-8 at byte {}", e.valid_up_to())),
    };
    // serde would read a JSON array as the struct's fields in order.
    if !text.trim_start().starts_with('{') {
        return malformed("not a JSON object".into());
    }
    let raw: RawHead = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            // serde_json says "at line 1 column N": the line is always 1
            // here, and would be confused with the log's line number.
            let msg = e.to_string();
            let msg = msg.rsplit_once(" at line ").map_or(&msg[..], |(m, _)| m);
            return malformed(match e.classify() {
                serde_json::error::Category::Data => format!("{msg} at column {}", e.column()),
                _ => format!("not JSON: {msg} at column {}", e.column()),
            });
        }
    };
    let Some(seq) = raw.seq else {
        return malformed("no seq".into());
    };
    let prev = match (seq, raw.prev) {
        (0, None) => None,
        (0, Some(_)) => return malformed("seq 0 has a prev; the first record has none".into()),
        (_, None) => {
            return malformed(format!(
                "seq {seq} has no prev; every record but seq 0 carries the hash of the one before"
            ));
        }
        (_, Some(p)) => match parse_hash(&p) {
            Some(h) => Some(h),
            None => {
                return malformed(format!("prev {p:?} is not 64 lowercase hex digits"));
            }
        },
    };
    Head::Record { seq, prev }
}

#[derive(Default)]
struct Scan {
    /// The seq of the first line: records before it were retired.
    offset: u64,
    lines: Vec<Line>,
    /// Bytes of the complete lines.
    end: u64,
    torn: Option<TornTail>,
    /// Recovery records that adopt records: (line, what they say).
    adoptions: Vec<(usize, Claim)>,
    /// The highest `through_seq` of the `audit.retire` records.
    retired_through: Option<u64>,
}

/// What a recovery record says it adopted: the first and last seq and their
/// digest, or why its `args.adopted` cannot be read.
type Claim = Result<(u64, u64, String), String>;

/// The `event` of a record line as the writer writes it (no space after the
/// colon, before `args`), found without parsing the line: every record but a
/// few stops at this test, so it runs once per line. A line it names is then
/// parsed in full, and its top-level `event` checked again.
fn event_of(line: &[u8]) -> Option<&[u8]> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(br#""event":""#));
    let at = FINDER.find(line)? + br#""event":""#.len();
    let rest = &line[at..];
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

/// What a `recovery` record's `args.adopted` says, if it has one: the
/// range and its digest, or why that cannot be read.
fn adoption(line: &[u8]) -> Option<Claim> {
    if event_of(line) != Some(b"recovery") {
        return None;
    }
    let record: serde_json::Value = serde_json::from_slice(line).ok()?;
    if record.get("event")?.as_str()? != "recovery" {
        return None;
    }
    let adopted = record.get("args")?.get("adopted")?;
    let field = |name: &str| adopted.get(name).and_then(|v| v.as_u64());
    Some(
        match (
            field("from_seq"),
            field("to_seq"),
            adopted.get("digest").and_then(|d| d.as_str()),
        ) {
            (Some(from), Some(to), Some(digest)) => Ok((from, to, digest.to_owned())),
            _ => Err("args.adopted needs from_seq, to_seq and digest".into()),
        },
    )
}

/// What an `audit.retire` record says: the last seq of the segments it
/// retires (`args.through_seq`).
fn retirement(line: &[u8]) -> Option<u64> {
    if event_of(line) != Some(b"audit.retire") {
        return None;
    }
    let record: serde_json::Value = serde_json::from_slice(line).ok()?;
    if record.get("event")?.as_str()? != "audit.retire" {
        return None;
    }
    record.get("args")?.get("through_seq")?.as_u64()
}

impl Scan {
    fn push(&mut self, line: &[u8]) {
        let hash = leaf_hash::<Blake3>(line);
        if let Some(said) = adoption(line) {
            self.adoptions.push((self.lines.len(), said));
        }
        if let Some(through) = retirement(line) {
            self.retired_through = self.retired_through.max(Some(through));
        }
        self.lines.push(Line {
            hash,
            head: parse_head(line),
        });
        self.end += line.len() as u64 + 1;
    }

    fn torn(&mut self, len: u64) {
        self.torn = Some(TornTail {
            offset: self.end,
            len,
        });
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    fn seq(&self, i: usize) -> Option<u64> {
        match self.lines[i].head {
            Head::Record { seq, .. } => Some(seq),
            Head::Malformed(_) => None,
        }
    }

    /// Whether line `k` was written right after line `q`: its prev is the
    /// hash of line `q`, or, for `q = None`, it is a first record (no prev).
    fn follows(&self, k: usize, q: Option<usize>) -> bool {
        match (&self.lines[k].head, q) {
            (Head::Record { prev: None, .. }, None) => self.offset == 0,
            // The record before the first one kept was retired with its
            // segment: only the checkpoints vouch for the link.
            (Head::Record { prev: Some(_), .. }, None) => self.offset > 0 && k == 0,
            (Head::Record { prev: Some(h), .. }, Some(q)) => *h == self.lines[q].hash,
            _ => false,
        }
    }

    /// Whether line `k` links to a line of the log that says seq `seq`.
    fn follows_seq(&self, k: usize, seq: u64) -> bool {
        (0..self.len()).any(|q| self.seq(q) == Some(seq) && self.follows(k, Some(q)))
    }

    fn in_place(&self, i: usize) -> bool {
        self.seq(i) == Some(self.offset + i as u64) && self.follows(i, i.checked_sub(1))
    }

    /// Names what is wrong at `p`, the first line not in place. `intact`
    /// gives the index of a verified checkpoint of exactly a size whose
    /// root matches the log.
    fn classify(&self, p: usize, intact: impl Fn(u64) -> Option<usize>) -> VerifyError {
        let n = self.len();
        // Lines are numbered as if no retired record were missing: line
        // `seq + 1` holds record `seq`.
        let at = self.offset + p as u64;
        let line = |i: usize| self.offset + i as u64 + 1;
        let before = p.checked_sub(1);
        let s = match &self.lines[p].head {
            Head::Malformed(reason) => {
                return VerifyError::Malformed {
                    line: at + 1,
                    reason: reason.to_string(),
                };
            }
            Head::Record { seq, .. } => *seq,
        };
        // The writer never writes one line twice (seq and prev differ), and
        // every line before `p` is in place, so the copy is this one.
        if let Some(q) = (0..n).find(|&q| q != p && self.lines[q].hash == self.lines[p].hash) {
            return VerifyError::Inserted {
                seq: at,
                evidence: format!(
                    "line {} is an extra record, a copy of line {}",
                    line(p),
                    line(q)
                ),
            };
        }
        // A genuine record out of place: it links to the record before it
        // (found elsewhere in the log), and the record that belongs here,
        // linking to line p - 1, comes later.
        if s > at
            && (0..n).filter(|&q| self.seq(q) == Some(s)).count() == 1
            && self.follows_seq(p, s - 1)
            && let Some(k) =
                (p + 1..n).find(|&k| self.seq(k) == Some(at) && self.follows(k, before))
        {
            return VerifyError::Reordered {
                seq: at,
                holds: s,
                found: self.offset + k as u64,
            };
        }
        if p + 1 < n && self.follows(p + 1, before) {
            return VerifyError::Inserted {
                seq: at,
                evidence: format!(
                    "line {} is an extra record (it says seq {s}): the next line's prev links past it{}",
                    line(p),
                    match before {
                        Some(b) => format!(" to seq {}", self.offset + b as u64),
                        None => String::new(),
                    }
                ),
            };
        }
        if s + 1 == at && self.follows(p, p.checked_sub(2)) {
            return VerifyError::Inserted {
                seq: at - 1,
                evidence: format!(
                    "line {} is an extra record: seq {s}, on line {}, links past it",
                    line(p) - 1,
                    line(p)
                ),
            };
        }
        if self.follows(p, before) {
            return VerifyError::Changed {
                seq: at,
                evidence: match before {
                    Some(b) => format!(
                        "it says seq {s}, but its prev puts it after seq {}",
                        self.offset + b as u64
                    ),
                    None => format!("it says seq {s}, but it has no prev, as only seq 0 does"),
                },
            };
        }
        if s > at {
            return VerifyError::Removed { seq: at, next: s };
        }
        if s < at {
            return VerifyError::Inserted {
                seq: at,
                evidence: format!(
                    "line {} says seq {s}, which belongs on line {}",
                    line(p),
                    s + 1
                ),
            };
        }
        // In its place by seq, but not linked to line p - 1. Line 0 is in
        // place whenever it says seq 0 (then it has no prev), so p >= 1.
        let b = at - 1;
        if p + 1 < n {
            if self.follows(p + 1, Some(p)) {
                return VerifyError::Changed {
                    seq: b,
                    evidence: format!("its bytes differ from what seq {at}'s prev commits to"),
                };
            }
            return VerifyError::Changed {
                seq: at,
                evidence: format!(
                    "its prev does not match seq {b}, and seq {}'s prev does not match it",
                    at + 1
                ),
            };
        }
        if let Some(k) = intact(at) {
            return VerifyError::Changed {
                seq: at,
                evidence: format!(
                    "its prev does not match seq {b}, which checkpoint {k} covers intact"
                ),
            };
        }
        VerifyError::Changed {
            seq: b,
            evidence: format!(
                "its bytes differ from what seq {at}'s prev commits to, or seq {at}'s prev was \
                 changed: seq {at} is the last line, so nothing tells the two apart"
            ),
        }
    }
}

/// Reads the notes of a checkpoints file one at a time: each is its body,
/// a blank line, its signature lines, and a blank line after them.
struct NoteReader<R> {
    reader: R,
    /// Complete notes read.
    count: usize,
    /// Bytes up to the end of the last complete note and its blank line.
    end: u64,
    /// Whether the file ended inside a note.
    torn: bool,
    line: Vec<u8>,
}

impl<R: BufRead> NoteReader<R> {
    fn new(reader: R) -> Self {
        NoteReader {
            reader,
            count: 0,
            end: 0,
            torn: false,
            line: Vec::new(),
        }
    }

    /// The next line, with its `\n`; `None` at the end of the file, and at
    /// a last line without `\n` (the file was cut short there).
    fn line(&mut self) -> std::io::Result<Option<&[u8]>> {
        self.line.clear();
        let n = self.reader.read_until(b'\n', &mut self.line)?;
        if n == 0 {
            return Ok(None);
        }
        if self.line.last() != Some(&b'\n') {
            self.torn = true;
            return Ok(None);
        }
        Ok(Some(&self.line))
    }

    /// Appends lines to `note` up to a blank line (which it appends too
    /// when `keep_blank`); `false` when the file ends first.
    fn through_blank(
        &mut self,
        note: &mut Vec<u8>,
        read: &mut u64,
        keep_blank: bool,
    ) -> std::io::Result<bool> {
        while let Some(line) = self.line()? {
            *read += line.len() as u64;
            let blank = line == b"\n";
            if !blank || keep_blank {
                note.extend_from_slice(line);
            }
            if blank {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The next complete note, exactly as in the file, without the blank
    /// line after it; `None` at the end of the file or at a note cut short
    /// (then `torn` is set).
    fn next(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut note = Vec::new();
        let mut read = 0u64;
        // Stray blank lines between notes change no signature.
        loop {
            match self.line()? {
                None => return Ok(None),
                Some(b"\n") => read += 1,
                Some(line) => {
                    read += line.len() as u64;
                    note.extend_from_slice(line);
                    break;
                }
            }
        }
        // The body, up to and with its blank line; then the signature
        // lines, up to the blank line after them (a note with none is kept
        // for verifying to refuse).
        if !self.through_blank(&mut note, &mut read, true)?
            || !self.through_blank(&mut note, &mut read, false)?
        {
            self.torn = true;
            return Ok(None);
        }
        self.count += 1;
        self.end += read;
        Ok(Some(note))
    }
}

/// The complete notes of a checkpoints file, whether an incomplete one
/// follows them, and where the last complete one ends.
pub(crate) fn split_notes(bytes: &[u8]) -> (Vec<Vec<u8>>, bool, u64) {
    let mut reader = NoteReader::new(bytes);
    let mut notes = Vec::new();
    // Reading a byte slice cannot fail.
    while let Ok(Some(note)) = reader.next() {
        notes.push(note);
    }
    (notes, reader.torn, reader.end)
}

/// `name+keyid` of the signature lines of a note, for saying who signed it.
fn signers(text: &str) -> String {
    let Some((_, sigs)) = text.split_once("\n\n") else {
        return String::new();
    };
    let names: Vec<String> = sigs
        .lines()
        .filter_map(|l| l.strip_prefix("\u{2014} "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, blob)| match B64.decode(blob) {
            Ok(raw) if raw.len() >= 4 => format!("{name}+{}", hex(&raw[..4])),
            _ => name.to_string(),
        })
        .collect();
    if names.is_empty() {
        "it has no signature lines".into()
    } else {
        format!("it is signed by {}", names.join(", "))
    }
}

/// `name+keyid`: the key string without the key, which is long and whose
/// base64 may hold `+` itself.
fn key_label(key: &VerifierKey) -> String {
    let text = key.to_string();
    let mut parts = text.splitn(3, '+');
    match (parts.next(), parts.next()) {
        (Some(name), Some(id)) => format!("{name}+{id}"),
        _ => text,
    }
}

fn check_notes(notes: &[Vec<u8>], key: &VerifierKey) -> Result<Vec<SignedCheckpoint>, VerifyError> {
    let mut signed: Vec<SignedCheckpoint> = Vec::with_capacity(notes.len());
    for (index, note) in notes.iter().enumerate() {
        let checkpoint = check_note(index, note, key, signed.last())?;
        signed.push(checkpoint);
    }
    Ok(signed)
}

/// Checkpoint `index` of a file, whose note is `note`: signed by `key`,
/// of its origin, and larger than `last`, the one before it.
fn check_note(
    index: usize,
    note: &[u8],
    key: &VerifierKey,
    last: Option<&SignedCheckpoint>,
) -> Result<SignedCheckpoint, VerifyError> {
    let bad = |size, reason: String| VerifyError::BadCheckpoint {
        index,
        size,
        reason,
    };
    let text = std::str::from_utf8(note).map_err(|e| {
        bad(
            None,
            format!("malformed: not UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    // For messages only, until the signature vouches for it.
    let size = text.lines().nth(1).and_then(|s| s.parse::<u64>().ok());
    let checkpoint = Checkpoint::verify(text, key).map_err(|e| match e {
        CheckpointError::NotSigned(_) => VerifyError::BadSignature {
            index,
            size,
            reason: format!("not signed by {} ({})", key_label(key), signers(text)),
        },
        CheckpointError::BadSignature(_) => VerifyError::BadSignature {
            index,
            size,
            reason: format!("the signature by {} does not verify", key_label(key)),
        },
        CheckpointError::Malformed(m) => bad(size, format!("malformed: {m}")),
        other => bad(size, other.to_string()),
    })?;
    let size = Some(checkpoint.size);
    if checkpoint.origin != key.name() {
        return Err(bad(
            size,
            format!(
                "origin {:?} is not the key's name {:?}",
                checkpoint.origin,
                key.name()
            ),
        ));
    }
    if checkpoint.root.len() != 32 {
        return Err(bad(
            size,
            format!(
                "root has {} bytes, a blake3 hash has 32",
                checkpoint.root.len()
            ),
        ));
    }
    if let Some(last) = last
        && checkpoint.size <= last.checkpoint.size
    {
        return Err(bad(
            size,
            format!(
                "sizes must grow, and checkpoint {} before it has size {}",
                last.index, last.checkpoint.size
            ),
        ));
    }
    Ok(SignedCheckpoint {
        index,
        note: text.to_string(),
        checkpoint,
    })
}

/// Verifies a log with every line's hash and head at hand: slower and as
/// long as the log, but able to say what happened at the first bad line
/// (see the module docs). [`single_pass`] hands over to it.
fn in_full(
    log: &[u8],
    checkpoints: &[u8],
    key: &VerifierKey,
    start: Option<&Anchor>,
) -> Result<Report, VerifyError> {
    let mut scan = Scan {
        offset: start.map_or(0, |a| a.frontier.len()),
        ..Scan::default()
    };
    let mut rest = log;
    while !rest.is_empty() {
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                scan.push(&rest[..end]);
                rest = &rest[end + 1..];
            }
            None => {
                scan.torn(rest.len() as u64);
                break;
            }
        }
    }
    let (notes, torn_checkpoint, notes_end) = split_notes(checkpoints);
    let signed = check_notes(&notes, key)?;
    let n = scan.offset + scan.len() as u64;
    // The root at every size a checkpoint signs, in one pass from the edge
    // the log starts from.
    let mut frontier = start.map_or_else(Frontier::new, |a| a.frontier.clone());
    let sizes: std::collections::HashSet<u64> = signed.iter().map(|s| s.checkpoint.size).collect();
    let mut roots = std::collections::HashMap::new();
    if sizes.contains(&frontier.len()) {
        roots.insert(frontier.len(), frontier.root());
    }
    for line in &scan.lines {
        frontier.push_hash(line.hash);
        if sizes.contains(&frontier.len()) {
            roots.insert(frontier.len(), frontier.root());
        }
    }
    let root_matches = |cp: &Checkpoint| {
        roots
            .get(&cp.size)
            .is_some_and(|root| root[..] == cp.root[..])
    };
    let chain = (0..scan.len()).find(|&i| !scan.in_place(i)).map(|p| {
        scan.classify(p, |size| {
            signed
                .iter()
                .find(|s| s.checkpoint.size == size && root_matches(&s.checkpoint))
                .map(|s| s.index)
        })
    });
    // The chain names a record more precisely than a root can, so it wins
    // whenever its record is one the failing checkpoint covers.
    for (k, s) in signed.iter().enumerate() {
        let cp = &s.checkpoint;
        if let Some(e) = &chain
            && e.seq().is_some_and(|seq| seq < cp.size)
        {
            break;
        }
        if cp.size > n {
            return Err(VerifyError::Truncated {
                seq: n,
                checkpoint: s.index,
                size: cp.size,
            });
        }
        if !root_matches(cp) {
            let from = k
                .checked_sub(1)
                .map_or(scan.offset, |j| signed[j].checkpoint.size);
            let last = cp.size.saturating_sub(1);
            return Err(if cp.size == n {
                VerifyError::Changed {
                    seq: last,
                    evidence: format!(
                        "checkpoint {} (size {}) signs another root, and seq {last} is the last \
                         record it covers, which no later prev commits to",
                        s.index, cp.size
                    ),
                }
            } else {
                VerifyError::Changed {
                    seq: from,
                    evidence: format!(
                        "checkpoint {} (size {}) signs another root though every prev link \
                         holds: a record from seq {from} to {last} was changed and the prev \
                         links after it rewritten",
                        s.index, cp.size
                    ),
                }
            });
        }
    }
    if let Some(e) = chain {
        return Err(e);
    }
    // Records before the first one kept are gone: only a retire record the
    // checkpoints sign may say so.
    if scan.offset > 0 && scan.retired_through.is_none_or(|t| t + 1 < scan.offset) {
        return Err(VerifyError::Removed {
            seq: 0,
            next: scan.offset,
        });
    }
    let adopted = check_adoptions(&scan)?;
    // Every root was computed from the same leaves, so each checkpoint is
    // consistent with the next; an auditor holding only two notes checks
    // that with a consistency proof (`merkle::consistency_ranges`).
    let covered = signed.last().map_or(scan.offset, |s| s.checkpoint.size);
    let uncovered: Vec<Hash> = scan.lines[(covered.saturating_sub(scan.offset) as usize)..]
        .iter()
        .map(|l| l.hash)
        .collect();
    Ok(Report {
        records: n,
        retired: scan.offset,
        checkpoints: signed.len(),
        covered,
        uncovered: n - covered,
        torn_tail: scan.torn,
        torn_checkpoint,
        last_hash: scan.lines.last().map(|l| l.hash),
        adopted,
        last: signed.last().cloned(),
        notes_end,
        uncovered_digest: range_digest(&uncovered),
        frontier,
    })
}

/// Each adopting recovery record against the records it names: a range
/// before it, and their digest.
fn check_adoptions(scan: &Scan) -> Result<Vec<Adopted>, VerifyError> {
    let mut adopted = Vec::with_capacity(scan.adoptions.len());
    for (line, said) in &scan.adoptions {
        let seq = scan.offset + *line as u64;
        let bad = |reason: String| VerifyError::BadRecovery { seq, reason };
        let (from, to, digest) = said.clone().map_err(bad)?;
        if from > to || to >= seq {
            return Err(bad(format!(
                "it adopts seq {from} to {to}, which is not a range before it"
            )));
        }
        // Records retired since they were adopted cannot be checked again;
        // the checkpoints that signed the adoption still vouch for it.
        let Some(first) = from.checked_sub(scan.offset) else {
            adopted.push(Adopted {
                record: seq,
                from_seq: from,
                to_seq: to,
                digest,
            });
            continue;
        };
        let last = to - scan.offset;
        let leaves: Vec<Hash> = scan.lines[first as usize..=last as usize]
            .iter()
            .map(|l| l.hash)
            .collect();
        let actual = range_digest(&leaves);
        if actual != digest {
            return Err(bad(format!(
                "it adopts seq {from} to {to} with digest {digest}, and they have {actual}"
            )));
        }
        adopted.push(Adopted {
            record: seq,
            from_seq: from,
            to_seq: to,
            digest,
        });
    }
    Ok(adopted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_split_on_the_blank_line_after_their_signatures() {
        let split = |bytes: &[u8]| {
            let (notes, torn, end) = split_notes(bytes);
            let notes: Vec<String> = notes
                .into_iter()
                .map(|n| String::from_utf8(n).unwrap())
                .collect();
            (notes, torn, end)
        };
        let a = "o\n1\nr\n\n\u{2014} o sig\n";
        let b = "o\n2\nr\n\n\u{2014} o sig\n\u{2014} w other\n";
        let file = format!("{a}\n{b}\n");
        assert_eq!(
            split(file.as_bytes()),
            (vec![a.into(), b.into()], false, file.len() as u64)
        );
        // Cut short anywhere in the last note, or before its blank line.
        for cut in a.len() + 1..file.len() {
            assert_eq!(
                split(&file.as_bytes()[..cut]),
                (vec![a.into()], cut > a.len() + 1, a.len() as u64 + 1),
                "{cut}"
            );
        }
        // Stray blank lines change nothing; a note without signatures is
        // kept, for verifying to refuse.
        let stray = format!("\n\n{a}\n\n\n{b}\n\n");
        let (notes, torn, end) = split(stray.as_bytes());
        assert_eq!((notes.len(), torn), (2, false));
        assert_eq!(end as usize, stray.len() - 1);
        let unsigned = format!("o\n1\nr\n\n\n{a}\n");
        let (notes, torn, _) = split(unsigned.as_bytes());
        assert_eq!(
            (notes[0].as_str(), notes[1].as_str(), torn),
            ("o\n1\nr\n\n", a, false)
        );
        assert_eq!(split(b""), (vec![], false, 0));
    }

    /// Logs as the writer leaves them, with checkpoints here and there, an
    /// adoption, torn tails and notes, stray blank lines, the oldest records
    /// retired: the single pass vouches for every one of them, and says what
    /// the full pass says.
    #[test]
    fn the_single_pass_agrees_with_the_full_pass() {
        use super::super::checkpoint::HostKey;
        let key = HostKey::generate("test/warden-audit").unwrap();
        for (len, every, adopt, torn, torn_note, retired) in [
            (0, 1, None, false, false, 0),
            (1, 1, None, false, false, 0),
            (7, 3, None, true, false, 0),
            (40, 5, None, false, true, 0),
            (40, 7, Some(30), true, true, 0),
            (33, 1, None, false, false, 0),
            (64, 64, Some(60), false, false, 0),
            (40, 5, None, false, false, 10),
            (40, 7, Some(35), true, true, 21),
            (12, 3, None, false, false, 9),
        ] {
            let (mut log, mut notes) = (Vec::new(), String::new());
            let mut edge = Frontier::<Blake3>::new();
            let mut prev: Option<Hash> = None;
            let mut leaves = Vec::new();
            let mut anchor = None;
            for seq in 0..len {
                if seq == retired && retired > 0 {
                    anchor = Some(Anchor {
                        frontier: edge.clone(),
                    });
                }
                let adopts = match adopt {
                    Some(at) if at == seq => format!(
                        r#","event":"recovery","args":{{"adopted":{{"from_seq":{},"to_seq":{},"digest":"{}"}}}}"#,
                        at - 3,
                        at - 1,
                        range_digest(&leaves[at as usize - 3..at as usize])
                    ),
                    // The first record kept says how far the retired ones went.
                    _ if retired > 0 && seq == retired => format!(
                        r#","event":"audit.retire","args":{{"through_seq":{}}}"#,
                        retired - 1
                    ),
                    _ => String::new(),
                };
                let line = match prev {
                    None => format!(r#"{{"seq":{seq}{adopts}}}"#),
                    Some(p) => format!(r#"{{"seq":{seq},"prev":"{}"{adopts}}}"#, hex(&p)),
                };
                let hash = leaf_hash::<Blake3>(line.as_bytes());
                edge.push_hash(hash);
                leaves.push(hash);
                prev = Some(hash);
                if seq < retired {
                    continue;
                }
                log.extend_from_slice(line.as_bytes());
                log.push(b'\n');
                // An adoption is checkpointed at once; the records before
                // it were not.
                let adopted = adopt.is_some_and(|at| seq + 4 > at && seq < at);
                if ((seq + 1) % every == 0 && !adopted) || adopt == Some(seq) {
                    let note = Checkpoint {
                        origin: "test/warden-audit".into(),
                        size: seq + 1,
                        root: edge.root().to_vec(),
                    }
                    .sign(&key);
                    notes.push_str(&format!("{note}\n\n"));
                }
            }
            if torn {
                log.extend_from_slice(br#"{"seq":"#);
            }
            if torn_note {
                notes.push_str("test/warden-audit\n99");
            }
            let what = format!("{len} records, every {every}, adopt {adopt:?}, retired {retired}");
            let start = anchor.as_ref();
            let one = single_pass(&log[..], notes.as_bytes(), key.verifier(), start)
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("the single pass did not vouch for {what}"));
            let full = in_full(&log, notes.as_bytes(), key.verifier(), start).unwrap();
            assert!(one == full, "{what}: {one:?} vs {full:?}");
            assert_eq!(one.retired, retired, "{what}");
            assert_eq!(one.root(), edge.root(), "{what}");
            assert_eq!(one.adopted.len(), usize::from(adopt.is_some()), "{what}");
            assert_eq!(
                (one.torn_tail.is_some(), one.torn_checkpoint),
                (torn, torn_note)
            );
        }
    }

    #[test]
    fn heads_are_read_strictly() {
        let h = hex(&[0xab; 32]);
        assert!(matches!(
            parse_head(format!(r#"{{"seq":3,"prev":"{h}","x":[1,{{}}]}}"#).as_bytes()),
            Head::Record { seq: 3, prev: Some(p) } if p == [0xab; 32]
        ));
        assert!(matches!(
            parse_head(br#"{"v":1,"seq":0}"#),
            Head::Record { seq: 0, prev: None }
        ));
        for (line, says) in [
            (&br#"{"seq":1,"seq":1,"prev":"x"}"#[..], "duplicate field"),
            (br#"{"seq":-1}"#, "expected u64 at column"),
            (
                br#"{"seq":1} {}"#,
                "not JSON: trailing characters at column",
            ),
            (br#"{"seq":1,"prev":null}"#, "seq 1 has no prev"),
        ] {
            match parse_head(line) {
                Head::Malformed(m) => assert!(m.contains(says), "{m}"),
                Head::Record { .. } => panic!("{line:?} read as a record"),
            }
        }
        assert_eq!(parse_hash(&h), Some([0xab; 32]));
        assert_eq!(parse_hash(&h.to_uppercase()), None);
        assert_eq!(parse_hash(&h[..62]), None);
        assert_eq!(
            checkpoints_path(Path::new("/var/log/audit.jsonl")),
            Path::new("/var/log/audit.jsonl.checkpoints")
        );
    }
}
