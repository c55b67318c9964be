//! A collector's verified copy of one host's audit log.
//!
//! The copy is a log in the host's own format: `<DIR>/<HOST>.jsonl` holds the host's record
//! lines byte for byte, in seq order, and `<DIR>/<HOST>.jsonl.checkpoints` the host's
//! checkpoints that the copy verified, each with the witness's cosignature added. So
//! `warden audit verify <DIR>/<HOST>.jsonl --key <HOST KEY>` checks a copy as it checks the
//! host's own log.
//!
//! A record joins the copy only in seq order and only if its `prev` is the hash of the
//! record before it; one that arrives early waits. A checkpoint is accepted only if the
//! host's key signed it and the copy's tree has its root at its size. Because the copy holds
//! every leaf, that one check is also the consistency of each checkpoint with every earlier
//! one: two roots computed from one sequence of leaves are consistent by construction, which
//! is what an RFC 9162 consistency proof shows to someone holding only the two roots.
//!
//! What the host sends that cannot be true of one append-only log is an [`Alert`]: a record
//! it sent before with other bytes, a record that does not link to the one before it, a
//! checkpoint that signs another root than the copy's at its size (a fork, or a rollback
//! when smaller than a checkpoint already verified), a bad signature, or a checkpoint past
//! records that never came (a gap). After any but the last two the copy is *halted*: it
//! keeps what it verified and takes nothing more from that host, since the host's log and
//! the copy no longer agree; the alert names where.

use super::HostId;
use crate::audit::checkpoint::{Checkpoint, VerifierKey};
use crate::audit::merkle::{Blake3, Frontier, Range, leaf_hash};
use crate::audit::verify::{Hash, Head, hex, parse_head};
use crate::audit::witness::WitnessKey;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

/// What is wrong, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// Records the host's checkpoint covers never arrived, or too many records wait for
    /// one that did not.
    Gap,
    /// A record the copy holds arrived again with other bytes.
    Rewritten,
    /// A record does not link to the one before it in the copy.
    Chain,
    /// A checkpoint signs another root than the copy's at its size.
    Fork,
    /// As [`Fork`](Self::Fork), at a size below a checkpoint already verified: the host went
    /// back on what it signed.
    Rollback,
    /// A checkpoint that the host's registered key did not sign.
    BadSignature,
    /// A message that is not a record or a checkpoint.
    Malformed,
    /// Records from a host the hosts file does not name.
    UnknownHost,
}

impl AlertKind {
    /// The kind as alerts name it.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Gap => "gap",
            AlertKind::Rewritten => "rewritten",
            AlertKind::Chain => "chain",
            AlertKind::Fork => "fork",
            AlertKind::Rollback => "rollback",
            AlertKind::BadSignature => "bad-signature",
            AlertKind::Malformed => "malformed",
            AlertKind::UnknownHost => "unknown-host",
        }
    }
}

/// Something a host sent that one append-only log cannot have produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The host.
    pub host: HostId,
    /// The first record concerned, when there is one.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: AlertKind,
    /// In words, with what the copy holds and what arrived.
    pub detail: String,
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host {}", self.host)?;
        if let Some(seq) = self.seq {
            write!(f, " seq {seq}")?;
        }
        write!(f, ": {}: {}", self.kind.as_str(), self.detail)
    }
}

/// What a message did to the copy.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Taken in (records: with any that waited for it).
    Taken,
    /// Already held, with the same bytes; or an older checkpoint that still matches.
    Duplicate,
    /// A record or checkpoint that arrived before records it follows: it waits.
    Waiting,
    /// A checkpoint verified and cosigned: the cosigned note, to publish.
    Cosigned(String),
    /// Dropped: the copy is halted.
    Halted,
    /// Something is wrong.
    Alert(Alert),
}

/// Records that may wait for an earlier one before the copy calls it a gap.
const MAX_AHEAD: usize = 1 << 16;

/// Checkpoints whose roots are kept to recognise them when they arrive again.
const RECENT: usize = 64;

/// One host's verified copy.
pub struct HostCopy {
    host: HostId,
    key: VerifierKey,
    path: PathBuf,
    log: BufWriter<File>,
    notes: File,
    /// Records held: the next seq.
    next: u64,
    last_hash: Option<Hash>,
    /// The tree's right edge at `base`, and the leaf hashes from `base` to `next`.
    base: Frontier<Blake3>,
    tail: Vec<Hash>,
    /// The largest verified checkpoint's size, and a few recent ones' roots.
    largest: Option<u64>,
    recent: VecDeque<(u64, Hash)>,
    /// Records past `next`, waiting for the ones before them.
    ahead: BTreeMap<u64, Vec<u8>>,
    /// A signed checkpoint past `next`, waiting for its records.
    waiting: Option<String>,
    /// The `next` at which a gap was last alerted: one alert per gap, not one per
    /// checkpoint past it.
    gap_alerted: Option<u64>,
    halted: Option<String>,
    /// A reader of the copy positioned at a line start, for duplicates older than `base`:
    /// its seq and reader.
    cursor: Option<(u64, BufReader<File>)>,
    /// Cosigned notes to write once the records they cover are synced.
    notes_due: Vec<String>,
    unsynced: bool,
}

/// Why a copy could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The copy on disk does not verify: someone changed it, or another log is there.
    #[error(
        "{}: the copy does not verify against the host's key: {error}; move it aside to \
         take the host's log afresh",
        path.display()
    )]
    Damaged {
        /// The copy.
        path: PathBuf,
        /// What the verifier found.
        error: String,
    },
    /// Reading or writing failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
}

impl HostCopy {
    /// Opens (or starts) the copy of `host`'s log in `dir`, checking what it holds against
    /// `key`. A torn last line or note, from a collector stopped while writing, is cut.
    pub fn open(dir: &Path, host: HostId, key: VerifierKey) -> Result<HostCopy, CopyError> {
        let path = dir.join(format!("{host}.jsonl"));
        let notes_path = crate::audit::verify::checkpoints_path(&path);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| CopyError::Io {
                path: path.clone(),
                error,
            }
        };
        let mut copy = HostCopy {
            host,
            key,
            log: BufWriter::new(append(&path).map_err(io(&path))?),
            notes: append(&notes_path).map_err(io(&notes_path))?,
            path: path.clone(),
            next: 0,
            last_hash: None,
            base: Frontier::new(),
            tail: Vec::new(),
            largest: None,
            recent: VecDeque::new(),
            ahead: BTreeMap::new(),
            waiting: None,
            gap_alerted: None,
            halted: None,
            cursor: None,
            notes_due: Vec::new(),
            unsynced: false,
        };
        let report =
            crate::audit::verify::verify(&path, &copy.key).map_err(|e| CopyError::Damaged {
                path: path.clone(),
                error: e.to_string(),
            })?;
        if let Some(torn) = report.torn_tail {
            copy.log.get_ref().set_len(torn.offset).map_err(io(&path))?;
        }
        if report.torn_checkpoint {
            copy.notes
                .set_len(report.notes_end())
                .map_err(io(&notes_path))?;
        }
        copy.next = report.records;
        copy.last_hash = report.last_hash;
        if let Some(cp) = report.last_checkpoint() {
            copy.largest = Some(cp.checkpoint.size);
            if let Ok(root) = cp.checkpoint.root[..].try_into() {
                copy.recent.push_back((cp.checkpoint.size, root));
            }
        }
        copy.base = report.into_frontier();
        Ok(copy)
    }

    /// Where the copy's records are.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many records the copy holds.
    pub fn records(&self) -> u64 {
        self.next
    }

    /// The size of the largest checkpoint verified.
    pub fn verified(&self) -> Option<u64> {
        self.largest
    }

    /// Why the copy takes nothing more, if it does not.
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    fn alert(&self, seq: Option<u64>, kind: AlertKind, detail: String) -> Step {
        Step::Alert(Alert {
            host: self.host.clone(),
            seq,
            kind,
            detail,
        })
    }

    fn halt(&mut self, seq: Option<u64>, kind: AlertKind, detail: String) -> Step {
        self.halted = Some(format!(
            "{} at seq {}; the copy keeps records 0 to {} and takes nothing more from this \
             host until the collector restarts",
            kind.as_str(),
            seq.map_or_else(|| "-".into(), |s| s.to_string()),
            self.next.saturating_sub(1)
        ));
        self.ahead.clear();
        self.alert(seq, kind, detail)
    }

    /// Takes one record line, as the host shipped it.
    pub fn record(&mut self, line: &[u8]) -> Result<Step, CopyError> {
        if self.halted.is_some() {
            return Ok(Step::Halted);
        }
        let (seq, prev) = match parse_head(line) {
            Head::Record { seq, prev } => (seq, prev),
            Head::Malformed(why) => {
                return Ok(self.alert(None, AlertKind::Malformed, format!("a record {why}")));
            }
        };
        if seq < self.next {
            let held = self.hash_at(seq)?;
            if held == leaf_hash::<Blake3>(line) {
                return Ok(Step::Duplicate);
            }
            return Ok(self.halt(
                Some(seq),
                AlertKind::Rewritten,
                format!(
                    "the host sent seq {seq} again with other bytes (hash {}, the copy holds \
                     {}): its log no longer holds what it shipped",
                    hex(&leaf_hash::<Blake3>(line)),
                    hex(&held)
                ),
            ));
        }
        if seq > self.next {
            if self.ahead.len() >= MAX_AHEAD {
                return Ok(self.halt(
                    Some(self.next),
                    AlertKind::Gap,
                    format!(
                        "{MAX_AHEAD} later records arrived but seq {} never did",
                        self.next
                    ),
                ));
            }
            self.ahead.entry(seq).or_insert_with(|| line.to_vec());
            return Ok(Step::Waiting);
        }
        if let Some(step) = self.append(seq, prev, line)? {
            return Ok(step);
        }
        while let Some(line) = self.ahead.remove(&self.next) {
            let Head::Record { seq, prev } = parse_head(&line) else {
                unreachable!("only records wait");
            };
            if let Some(step) = self.append(seq, prev, &line)? {
                return Ok(step);
            }
        }
        Ok(Step::Taken)
    }

    /// Appends the record at `next` if it links to the one before; an alert if not.
    fn append(
        &mut self,
        seq: u64,
        prev: Option<Hash>,
        line: &[u8],
    ) -> Result<Option<Step>, CopyError> {
        if prev != self.last_hash {
            let detail = match (prev, self.last_hash) {
                (Some(p), Some(h)) => format!(
                    "its prev is {} but the copy's seq {} hashes to {}: the host's seq {} is \
                     not the one it shipped",
                    hex(&p),
                    seq - 1,
                    hex(&h),
                    seq - 1
                ),
                _ => "a record other than seq 0 without a prev, or seq 0 with one".into(),
            };
            return Ok(Some(self.halt(Some(seq), AlertKind::Chain, detail)));
        }
        self.log
            .write_all(line)
            .and_then(|()| self.log.write_all(b"\n"))
            .map_err(|error| CopyError::Io {
                path: self.path.clone(),
                error,
            })?;
        let hash = leaf_hash::<Blake3>(line);
        self.tail.push(hash);
        self.last_hash = Some(hash);
        self.next += 1;
        self.unsynced = true;
        Ok(None)
    }

    /// Takes one checkpoint note, as the host signed it; a verified one is cosigned by
    /// `witness` at `now` (seconds since the epoch) and added to the copy.
    pub fn checkpoint(
        &mut self,
        note: &str,
        witness: &WitnessKey,
        now: u64,
    ) -> Result<Step, CopyError> {
        if self.halted.is_some() {
            return Ok(Step::Halted);
        }
        let cp = match Checkpoint::verify(note, &self.key) {
            Ok(cp) => cp,
            Err(e) => {
                return Ok(self.alert(
                    None,
                    AlertKind::BadSignature,
                    format!("a checkpoint that does not verify with the host's key: {e}"),
                ));
            }
        };
        if cp.origin != self.key.name() {
            return Ok(self.alert(
                Some(cp.size),
                AlertKind::BadSignature,
                format!(
                    "a checkpoint of origin {:?}, not the host key's {:?}",
                    cp.origin,
                    self.key.name()
                ),
            ));
        }
        if cp.size > self.next {
            let gap = format!(
                "a checkpoint of {} records arrived, but records {} to {} never did",
                cp.size,
                self.next,
                cp.size - 1
            );
            let older = self.waiting.as_deref().map(checkpoint_size);
            if older.is_none_or(|s| s < Some(cp.size)) {
                self.waiting = Some(note.to_string());
            }
            if self.gap_alerted == Some(self.next) {
                return Ok(Step::Waiting);
            }
            self.gap_alerted = Some(self.next);
            return Ok(self.alert(Some(self.next), AlertKind::Gap, gap));
        }
        let root = self.root_at(cp.size)?;
        if root[..] != cp.root[..] {
            let (kind, what) = match self.largest {
                Some(l) if cp.size < l => (
                    AlertKind::Rollback,
                    format!("below the checkpoint of {l} records it signed before"),
                ),
                _ => (AlertKind::Fork, "at a size the copy holds".to_string()),
            };
            let detail = format!(
                "the host signed root {} for {} records, {what}; the copy's root there is {}",
                hex(&cp.root),
                cp.size,
                hex(&root)
            );
            return Ok(self.halt(Some(cp.size.saturating_sub(1)), kind, detail));
        }
        if self.largest.is_some_and(|l| cp.size <= l) {
            return Ok(Step::Duplicate);
        }
        let cosigned = witness.cosign(note, now).map_err(|e| CopyError::Io {
            path: self.path.clone(),
            error: std::io::Error::other(e.to_string()),
        })?;
        // Written only once its records are synced: a note on disk ahead of its records
        // would make the copy read as truncated after a crash.
        self.notes_due.push(format!("{cosigned}\n"));
        self.unsynced = true;
        self.largest = Some(cp.size);
        self.advance(cp.size, root);
        Ok(Step::Cosigned(cosigned))
    }

    /// The checkpoint that waited for its records, once they are all here.
    pub fn take_waiting(&mut self) -> Option<String> {
        let size = checkpoint_size(self.waiting.as_deref()?)?;
        if size <= self.next {
            return self.waiting.take();
        }
        None
    }

    /// Moves the tree's kept edge to `size`, a verified checkpoint's.
    fn advance(&mut self, size: u64, root: Hash) {
        let base = self.base.len();
        if size > base {
            let n = (size - base) as usize;
            for h in self.tail.drain(..n) {
                self.base.push_hash(h);
            }
        }
        self.recent.push_back((size, root));
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }

    /// The tree's root at `size` (at most `next`): from the kept edge and the hashes after
    /// it, or a recent checkpoint's, or else read from the copy on disk.
    fn root_at(&mut self, size: u64) -> Result<Hash, CopyError> {
        if let Some((_, root)) = self.recent.iter().find(|(s, _)| *s == size) {
            return Ok(*root);
        }
        let base = self.base.len();
        if size >= base {
            let mut edge = self.base.clone();
            for h in &self.tail[..(size - base) as usize] {
                edge.push_hash(*h);
            }
            return Ok(edge.root());
        }
        self.flush_writer()?;
        let file = File::open(&self.path).map_err(|error| self.io(error))?;
        let roots = crate::audit::proof::subtrees(
            file,
            vec![Range {
                start: 0,
                len: size,
            }],
        )
        .map_err(|e| self.io(std::io::Error::other(e.to_string())))?;
        Ok(roots[0])
    }

    /// The leaf hash of record `seq` (below `next`).
    fn hash_at(&mut self, seq: u64) -> Result<Hash, CopyError> {
        let base = self.base.len();
        if seq >= base {
            return Ok(self.tail[(seq - base) as usize]);
        }
        self.flush_writer()?;
        // Duplicates come in runs (a host that lost its LOG.shipped sends its log again from
        // the start): a reader kept at the next line makes each one line's read.
        let mut cursor = match self.cursor.take() {
            Some((at, reader)) if at <= seq => (at, reader),
            _ => {
                let mut file = File::open(&self.path).map_err(|error| self.io(error))?;
                file.rewind().map_err(|error| self.io(error))?;
                (0, BufReader::with_capacity(1 << 16, file))
            }
        };
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = cursor
                .1
                .read_until(b'\n', &mut line)
                .map_err(|error| self.io(error))?;
            if n == 0 || line.pop() != Some(b'\n') {
                return Err(self.io(std::io::Error::other(format!(
                    "the copy ends before seq {seq}"
                ))));
            }
            cursor.0 += 1;
            if cursor.0 == seq + 1 {
                self.cursor = Some(cursor);
                return Ok(leaf_hash::<Blake3>(&line));
            }
        }
    }

    fn flush_writer(&mut self) -> Result<(), CopyError> {
        self.log.flush().map_err(|error| CopyError::Io {
            path: self.path.clone(),
            error,
        })
    }

    fn io(&self, error: std::io::Error) -> CopyError {
        CopyError::Io {
            path: self.path.clone(),
            error,
        }
    }

    /// Makes what was taken durable: records first, then the checkpoints that cover them.
    pub fn sync(&mut self) -> Result<(), CopyError> {
        if !self.unsynced {
            return Ok(());
        }
        self.flush_writer()?;
        self.log
            .get_ref()
            .sync_data()
            .map_err(|error| self.io(error))?;
        if !self.notes_due.is_empty() {
            let notes = std::mem::take(&mut self.notes_due).concat();
            self.notes
                .write_all(notes.as_bytes())
                .and_then(|()| self.notes.sync_data())
                .map_err(|error| CopyError::Io {
                    path: crate::audit::verify::checkpoints_path(&self.path),
                    error,
                })?;
        }
        self.unsynced = false;
        Ok(())
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// The size a note's second line gives, if it has one.
fn checkpoint_size(note: &str) -> Option<u64> {
    note.lines().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::HostKey;
    use crate::audit::merkle::MerkleTree;

    /// A host's log written by hand: lines chained as the writer chains them, and signed
    /// checkpoints of any size.
    struct Host {
        key: std::rc::Rc<HostKey>,
        lines: Vec<Vec<u8>>,
        tree: MerkleTree<Blake3>,
    }

    impl Host {
        fn new() -> Host {
            Host {
                key: std::rc::Rc::new(HostKey::generate("h1/warden-audit").unwrap()),
                lines: Vec::new(),
                tree: MerkleTree::new(),
            }
        }

        fn push(&mut self, what: &str) -> Vec<u8> {
            let seq = self.lines.len();
            let line = match self.lines.last() {
                None => format!(r#"{{"v":1,"seq":0,"event":"{what}"}}"#),
                Some(l) => format!(
                    r#"{{"v":1,"seq":{seq},"prev":"{}","event":"{what}"}}"#,
                    hex(&leaf_hash::<Blake3>(l))
                ),
            }
            .into_bytes();
            self.tree.push(&line);
            self.lines.push(line.clone());
            line
        }

        fn note(&self, size: u64) -> String {
            Checkpoint {
                origin: "h1/warden-audit".into(),
                size,
                root: self.tree.root_at(size).unwrap().to_vec(),
            }
            .sign(&self.key)
        }
    }

    fn open(dir: &Path, host: &Host) -> HostCopy {
        HostCopy::open(dir, "h1".parse().unwrap(), host.key.verifier().clone()).unwrap()
    }

    fn witness() -> WitnessKey {
        WitnessKey::generate("collector.test/witness").unwrap()
    }

    fn kind(step: Step) -> AlertKind {
        match step {
            Step::Alert(a) => a.kind,
            other => panic!("expected an alert, got {other:?}"),
        }
    }

    #[test]
    fn records_in_any_order_make_a_copy_that_verifies_and_is_cosigned() {
        let dir = tempfile::tempdir().unwrap();
        let (mut host, w) = (Host::new(), witness());
        let lines: Vec<_> = (0..10).map(|i| host.push(&format!("e{i}"))).collect();
        let mut copy = open(dir.path(), &host);
        // 0..3, then 5..9 early, then 4 fills the gap.
        for l in &lines[..4] {
            assert_eq!(copy.record(l).unwrap(), Step::Taken);
        }
        for l in &lines[5..] {
            assert_eq!(copy.record(l).unwrap(), Step::Waiting);
        }
        assert_eq!(copy.record(&lines[4]).unwrap(), Step::Taken);
        assert_eq!(copy.records(), 10);
        // A checkpoint below what the copy holds: its root comes from the kept hashes.
        let Step::Cosigned(note) = copy.checkpoint(&host.note(7), &w, 1000).unwrap() else {
            panic!()
        };
        crate::audit::witness::verify_cosignature(&note, w.verifier()).unwrap();
        assert_eq!(copy.record(&lines[2]).unwrap(), Step::Duplicate);
        assert_eq!(copy.record(&lines[8]).unwrap(), Step::Duplicate);
        assert_eq!(
            copy.checkpoint(&host.note(7), &w, 1001).unwrap(),
            Step::Duplicate
        );
        assert!(matches!(
            copy.checkpoint(&host.note(10), &w, 1002).unwrap(),
            Step::Cosigned(_)
        ));
        copy.sync().unwrap();
        let report = crate::audit::verify::verify(copy.path(), host.key.verifier()).unwrap();
        assert_eq!((report.records, report.covered), (10, 10));

        // Reopened, it carries on; an old duplicate is read from disk.
        drop(copy);
        let mut copy = open(dir.path(), &host);
        assert_eq!(copy.record(&lines[3]).unwrap(), Step::Duplicate);
        assert_eq!(copy.record(&lines[4]).unwrap(), Step::Duplicate);
        assert_eq!(
            copy.checkpoint(&host.note(7), &w, 1003).unwrap(),
            Step::Duplicate
        );
        let next = host.push("e10");
        assert_eq!(copy.record(&next).unwrap(), Step::Taken);
    }

    #[test]
    fn a_rewritten_record_is_caught_and_halts_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = Host::new();
        let lines: Vec<_> = (0..4).map(|i| host.push(&format!("e{i}"))).collect();
        let mut copy = open(dir.path(), &host);
        for l in &lines {
            copy.record(l).unwrap();
        }
        let forged = String::from_utf8(lines[1].clone())
            .unwrap()
            .replace("e1", "e9");
        let Step::Alert(alert) = copy.record(forged.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!((alert.kind, alert.seq), (AlertKind::Rewritten, Some(1)));
        assert!(copy.halted().is_some());
        assert_eq!(copy.record(&host.push("e4")).unwrap(), Step::Halted);
    }

    #[test]
    fn a_record_that_does_not_link_is_a_chain_alert() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = Host::new();
        let mut other = Host::new();
        let mut copy = open(dir.path(), &host);
        copy.record(&host.push("a")).unwrap();
        other.push("b");
        let Step::Alert(alert) = copy.record(&other.push("c")).unwrap() else {
            panic!()
        };
        assert_eq!((alert.kind, alert.seq), (AlertKind::Chain, Some(1)));
    }

    #[test]
    fn forks_rollbacks_gaps_and_bad_signatures_are_named() {
        let w = witness();
        let dir = tempfile::tempdir().unwrap();
        let mut host = Host::new();
        let lines: Vec<_> = (0..6).map(|i| host.push(&format!("e{i}"))).collect();
        let mut copy = open(dir.path(), &host);
        for l in &lines[..4] {
            copy.record(l).unwrap();
        }
        // Past the records held: a gap, and the note waits for them.
        assert_eq!(
            kind(copy.checkpoint(&host.note(6), &w, 1).unwrap()),
            AlertKind::Gap
        );
        assert!(copy.take_waiting().is_none());
        // One alert per gap, however many checkpoints arrive past it.
        assert_eq!(
            copy.checkpoint(&host.note(6), &w, 1).unwrap(),
            Step::Waiting
        );
        for l in &lines[4..] {
            copy.record(l).unwrap();
        }
        let waited = copy.take_waiting().unwrap();
        assert!(matches!(
            copy.checkpoint(&waited, &w, 2).unwrap(),
            Step::Cosigned(_)
        ));
        // Signed by another key.
        let stranger = HostKey::generate("h1/warden-audit").unwrap();
        let forged = Checkpoint {
            origin: "h1/warden-audit".into(),
            size: 6,
            root: vec![0; 32],
        }
        .sign(&stranger);
        assert_eq!(
            kind(copy.checkpoint(&forged, &w, 3).unwrap()),
            AlertKind::BadSignature
        );
        // The host's key, another history, below what it signed before: a rollback.
        let mut rewritten = Host {
            key: host.key.clone(),
            lines: Vec::new(),
            tree: MerkleTree::new(),
        };
        for i in 0..4 {
            rewritten.push(&format!("x{i}"));
        }
        assert_eq!(
            kind(copy.checkpoint(&rewritten.note(4), &w, 4).unwrap()),
            AlertKind::Rollback
        );
        // At the size it signed: a fork.
        let dir = tempfile::tempdir().unwrap();
        let mut copy = open(dir.path(), &host);
        for l in &lines[..4] {
            copy.record(l).unwrap();
        }
        assert_eq!(
            kind(copy.checkpoint(&rewritten.note(4), &w, 5).unwrap()),
            AlertKind::Fork
        );
    }

    #[test]
    fn a_damaged_copy_is_refused_and_a_torn_one_is_cut() {
        let w = witness();
        let dir = tempfile::tempdir().unwrap();
        let mut host = Host::new();
        let lines: Vec<_> = (0..3).map(|i| host.push(&format!("e{i}"))).collect();
        let mut copy = open(dir.path(), &host);
        for l in &lines {
            copy.record(l).unwrap();
        }
        copy.checkpoint(&host.note(3), &w, 1).unwrap();
        copy.sync().unwrap();
        let path = copy.path().to_path_buf();
        drop(copy);
        // A torn tail past the checkpoint is cut on open.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"v\":1,\"seq\":3").unwrap();
        drop(f);
        let mut copy = open(dir.path(), &host);
        assert_eq!(copy.record(&host.push("e3")).unwrap(), Step::Taken);
        copy.sync().unwrap();
        drop(copy);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("e1", "e7", 1)).unwrap();
        let err = HostCopy::open(
            dir.path(),
            "h1".parse().unwrap(),
            host.key.verifier().clone(),
        )
        .err()
        .unwrap();
        assert!(matches!(err, CopyError::Damaged { .. }), "{err}");
    }
}
