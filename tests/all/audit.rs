//! The audit log verifier: synthetic logs in the writer's format, tampered
//! every way the issue names, through the library (the exhaustive
//! matrices) and through the real `warden` binary (the CLI contract).

use crate::support::warden;
use std::path::{Path, PathBuf};
use warden::audit::checkpoint::{Checkpoint, HostKey};
use warden::audit::merkle::{Blake3, MerkleTree, leaf_hash};
use warden::audit::proof::InclusionProof;
use warden::audit::verify::{Report, VerifyError, checkpoints_path, hex, verify, verify_bytes};

const NAME: &str = "test.host/warden-audit";

/// A log as the writer leaves it: its lines (without `\n`) and its signed
/// notes (without the blank line that follows each in the file).
#[derive(Clone)]
struct Log {
    lines: Vec<Vec<u8>>,
    notes: Vec<String>,
}

/// Record `seq` of a synthetic log: ten records a task, a start, calls
/// (every seventh denied), an end.
fn record(seq: usize, prev: Option<&[u8; 32]>) -> Vec<u8> {
    let task = format!("{:08x}{}", seq / 10 + 1, "5a".repeat(8));
    let prev = prev.map_or(String::new(), |p| format!(r#","prev":"{}""#, hex(p)));
    let body = match seq % 10 {
        0 => r#""event":"task.start","args":{"kind":"tool"}"#.to_string(),
        9 => r#""event":"task.end","outcome":"ok","dur_ns":52000"#.to_string(),
        _ if seq % 7 == 3 => format!(
            r#""event":"call","call":"wasi:filesystem/types.[method]descriptor.open-at","args":{{"path":"../etc/f{seq}"}},"resource":"/etc/f{seq}","decision":"deny","rule":"no fs grant covers /etc/f{seq}","outcome":"error:access","dur_ns":{}"#,
            1000 + seq
        ),
        _ => format!(
            r#""event":"call","call":"wasi:filesystem/types.[method]descriptor.open-at","args":{{"path":"f{seq}"}},"resource":"/workspace/f{seq}","decision":"allow","rule":"fs[0] /workspace read","outcome":"ok","dur_ns":{}"#,
            1000 + seq
        ),
    };
    format!(
        r#"{{"v":1,"seq":{seq}{prev},"time":"2026-11-25T20:36:{:02}.{:09}Z","host":"test","agent":null,"task":"{task}","parent":null,"tool":"probe","component":"blake3:{}",{body}}}"#,
        seq / 60,
        seq * 1_000_000 + 7,
        "c0".repeat(32),
    )
    .into_bytes()
}

/// `n` records with a checkpoint after every `every` of them.
fn build(n: usize, every: usize, key: &HostKey) -> Log {
    let mut tree = MerkleTree::<Blake3>::new();
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut notes = Vec::new();
    for seq in 0..n {
        let prev = lines.last().map(|l| leaf_hash::<Blake3>(l));
        let line = record(seq, prev.as_ref());
        tree.push(&line);
        lines.push(line);
        if (seq + 1) % every == 0 {
            notes.push(sign(key, seq as u64 + 1, &tree));
        }
    }
    Log { lines, notes }
}

fn sign(key: &HostKey, size: u64, tree: &MerkleTree<Blake3>) -> String {
    Checkpoint {
        origin: key.verifier().name().to_string(),
        size,
        root: tree.root_at(size).unwrap().to_vec(),
    }
    .sign(key)
}

impl Log {
    fn log_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.lines {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out
    }

    fn checkpoint_bytes(&self) -> Vec<u8> {
        self.notes
            .iter()
            .flat_map(|n| format!("{n}\n").into_bytes())
            .collect()
    }

    fn verify(&self, key: &HostKey) -> Result<Report, VerifyError> {
        verify_bytes(&self.log_bytes(), &self.checkpoint_bytes(), key.verifier())
    }

    /// Writes `audit.jsonl` and its checkpoints into `dir`.
    fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("audit.jsonl");
        std::fs::write(&path, self.log_bytes()).unwrap();
        std::fs::write(checkpoints_path(&path), self.checkpoint_bytes()).unwrap();
        path
    }

    /// Replaces every `prev` from line `from` on, as an attacker who edits
    /// a record and repairs the chain after it would.
    fn relink(&mut self, from: usize) {
        for i in from.max(1)..self.lines.len() {
            let text = String::from_utf8(self.lines[i].clone()).unwrap();
            let at = text.find(r#""prev":""#).unwrap() + 8;
            let want = hex(&leaf_hash::<Blake3>(&self.lines[i - 1]));
            self.lines[i] = format!("{}{want}{}", &text[..at], &text[at + 64..]).into_bytes();
        }
    }
}

fn key() -> HostKey {
    HostKey::generate(NAME).unwrap()
}

/// 30 records, checkpoints at 8, 16 and 24; 6 records not yet covered.
fn partly_covered(key: &HostKey) -> Log {
    build(30, 8, key)
}

/// 32 records, checkpoints at 8, 16, 24 and 32: everything covered.
fn fully_covered(key: &HostKey) -> Log {
    build(32, 8, key)
}

#[track_caller]
fn damage(log: &Log, key: &HostKey) -> VerifyError {
    match log.verify(key) {
        Ok(r) => panic!("tampering not caught: {r:?}"),
        Err(e) => e,
    }
}

// ---- intact logs --------------------------------------------------------

#[test]
fn intact_logs_verify() {
    let key = key();
    let r = partly_covered(&key).verify(&key).unwrap();
    assert_eq!(
        (r.records, r.checkpoints, r.covered, r.uncovered),
        (30, 3, 24, 6)
    );
    assert_eq!((r.torn_tail, r.torn_checkpoint), (None, false));
    let full = fully_covered(&key);
    let r = full.verify(&key).unwrap();
    assert_eq!(
        (r.records, r.checkpoints, r.covered, r.uncovered),
        (32, 4, 32, 0)
    );
    assert_eq!(r.last_hash, Some(leaf_hash::<Blake3>(&full.lines[31])));
    assert_eq!(r.last_checkpoint().unwrap().note, full.notes[3]);

    // Empty, and records with no checkpoint yet.
    let r = verify_bytes(b"", b"", key.verifier()).unwrap();
    assert_eq!((r.records, r.checkpoints, r.last_hash), (0, 0, None));
    let mut unsigned = build(5, 100, &key);
    assert!(unsigned.notes.is_empty());
    assert_eq!(unsigned.verify(&key).unwrap().uncovered, 5);
    // A checkpoint of the empty log is allowed.
    unsigned.notes.push(sign(&key, 0, &MerkleTree::new()));
    assert_eq!(unsigned.verify(&key).unwrap().checkpoints, 1);

    // From files; a missing checkpoints file is a log not signed yet.
    let dir = tempfile::tempdir().unwrap();
    let path = full.write(dir.path());
    assert_eq!(verify(&path, key.verifier()).unwrap().covered, 32);
    std::fs::remove_file(checkpoints_path(&path)).unwrap();
    assert_eq!(verify(&path, key.verifier()).unwrap().checkpoints, 0);
    let err = verify(&dir.path().join("missing.jsonl"), key.verifier()).unwrap_err();
    assert!(
        !err.is_damage() && err.to_string().contains("missing.jsonl"),
        "{err}"
    );
}

// ---- changed ------------------------------------------------------------

/// Where the `"prev":"…"` member of a line is.
fn prev_span(line: &[u8]) -> std::ops::Range<usize> {
    let text = std::str::from_utf8(line).unwrap();
    match text.find(r#","prev":""#) {
        Some(at) => at..at + 9 + 64 + 1,
        None => 0..0,
    }
}

#[test]
fn every_flipped_byte_is_caught_and_named() {
    let key = key();
    let cases = [
        (partly_covered(&key), vec![0, 1, 7, 8, 15, 16, 23, 24, 28]),
        (fully_covered(&key), vec![0, 30, 31]),
    ];
    for (log, seqs) in cases {
        let last = log.lines.len() - 1;
        for j in seqs {
            for at in 0..log.lines[j].len() {
                for mask in [0x01, 0x10, 0x80] {
                    let mut bad = log.clone();
                    bad.lines[j][at] ^= mask;
                    let err = damage(&bad, &key);
                    let want = if j == last && prev_span(&log.lines[j]).contains(&at) {
                        // The last line's prev, or the line before it:
                        // nothing tells them apart (see verify's docs).
                        vec![j as u64 - 1, j as u64]
                    } else {
                        vec![j as u64]
                    };
                    assert!(
                        want.contains(&err.seq().unwrap())
                            && ["changed", "malformed"].contains(&err.kind()),
                        "flipped byte {at} of seq {j} with {mask:#x}: {err}"
                    );
                }
            }
        }
    }
}

#[test]
fn changes_read_as_people_expect() {
    let key = key();
    let log = partly_covered(&key);
    let edit = |j: usize, from: &str, to: &str| {
        let mut bad = log.clone();
        let text = String::from_utf8(bad.lines[j].clone()).unwrap();
        assert!(text.contains(from));
        bad.lines[j] = text.replacen(from, to, 1).into_bytes();
        damage(&bad, &key).to_string()
    };
    assert_eq!(
        edit(17, r#""decision":"deny""#, r#""decision":"allow""#),
        "seq 17: changed: its bytes differ from what seq 18's prev commits to"
    );
    assert_eq!(
        edit(12, r#""seq":12"#, r#""seq":13"#),
        "seq 12: changed: it says seq 13, but its prev puts it after seq 11"
    );
    // Seq 12's own prev: neither neighbour links up with it.
    let mut bad = log.clone();
    let at = prev_span(&bad.lines[12]).start + 9;
    bad.lines[12][at] = if bad.lines[12][at] == b'0' {
        b'1'
    } else {
        b'0'
    };
    assert_eq!(
        damage(&bad, &key).to_string(),
        "seq 12: changed: its prev does not match seq 11, and seq 13's prev does not match it"
    );
    assert_eq!(
        edit(3, r#""outcome":"error:access""#, r#""outcome":"ok""#),
        "seq 3: changed: its bytes differ from what seq 4's prev commits to"
    );

    // The last covered line of a fully covered log: only the root shows it.
    let full = fully_covered(&key);
    let mut bad = full.clone();
    let text = String::from_utf8(bad.lines[31].clone()).unwrap();
    bad.lines[31] = text.replace("f31", "f13").into_bytes();
    assert_eq!(
        damage(&bad, &key).to_string(),
        "seq 31: changed: checkpoint 3 (size 32) signs another root, and seq 31 is the last \
         record it covers, which no later prev commits to"
    );

    // The last line's prev, with a checkpoint of exactly the size before
    // it: that checkpoint shows seq 23 intact, so seq 24 is the changed one.
    let mut log = build(25, 8, &key);
    let at = prev_span(&log.lines[24]).start + 20;
    log.lines[24][at] = if log.lines[24][at] == b'0' {
        b'1'
    } else {
        b'0'
    };
    assert_eq!(
        damage(&log, &key).to_string(),
        "seq 24: changed: its prev does not match seq 23, which checkpoint 2 covers intact"
    );
    // Without one, the earlier seq is named, and the doubt said.
    let mut log = build(25, 5, &key);
    log.notes.truncate(4);
    log.lines[24][at] = if log.lines[24][at] == b'0' {
        b'1'
    } else {
        b'0'
    };
    let err = damage(&log, &key);
    assert!(
        matches!(err, VerifyError::Changed { seq: 23, .. })
            && err.to_string().contains("nothing tells the two apart"),
        "{err}"
    );
}

#[test]
fn a_rewritten_chain_is_caught_by_the_checkpoint_that_covers_it() {
    let key = key();
    let mut log = partly_covered(&key);
    let text = String::from_utf8(log.lines[11].clone()).unwrap();
    log.lines[11] = text.replace("f11", "f99").into_bytes();
    log.relink(12);
    let err = damage(&log, &key);
    assert!(matches!(err, VerifyError::Changed { seq: 8, .. }), "{err}");
    assert!(err.to_string().contains("rewritten"), "{err}");
}

// ---- removed ------------------------------------------------------------

#[test]
fn removed_records_are_named() {
    let key = key();
    let log = partly_covered(&key);
    // Every record but the last, which no signature covers yet.
    for j in 0..29 {
        let mut bad = log.clone();
        bad.lines.remove(j);
        let err = damage(&bad, &key);
        let j = j as u64;
        assert!(
            matches!(err, VerifyError::Removed { seq, next } if seq == j && next == j + 1),
            "removed seq {j}: {err}"
        );
    }
    let mut bad = log.clone();
    bad.lines.drain(3..6);
    assert_eq!(
        damage(&bad, &key).to_string(),
        "seq 3: removed: seq 3 to 5 are missing: the line where seq 3 belongs is seq 6"
    );
    let mut bad = log.clone();
    bad.lines.remove(0);
    assert_eq!(
        damage(&bad, &key).to_string(),
        "seq 0: removed: the line where it belongs is seq 1"
    );
    // The last record is not signed yet: dropping it leaves a log that
    // verifies (the documented limit).
    let mut bad = log.clone();
    bad.lines.pop();
    assert_eq!(bad.verify(&key).unwrap().records, 29);
    // Once signed, it is missing.
    let mut bad = fully_covered(&key);
    bad.lines.pop();
    assert_eq!(
        damage(&bad, &key).to_string(),
        "seq 31: truncated: checkpoint 3 covers 32 records, the log has 31"
    );
}

// ---- inserted -----------------------------------------------------------

#[test]
fn inserted_copies_are_named() {
    let key = key();
    let log = partly_covered(&key);
    // A copy of every record before every line, and after the last. Of
    // two equal neighbours the second is the extra one.
    for k in 0..30 {
        for j in 0..=30 {
            let want = if k == j { j + 1 } else { j } as u64;
            let mut bad = log.clone();
            bad.lines.insert(j, log.lines[k].clone());
            let err = damage(&bad, &key);
            assert!(
                matches!(err, VerifyError::Inserted { seq, .. } if seq == want),
                "copy of seq {k} at line {}: {err}",
                j + 1
            );
        }
    }
}

#[test]
fn inserted_fabrications_are_named() {
    let key = key();
    let log = partly_covered(&key);
    let forged = |seq: u64, prev: Option<[u8; 32]>| {
        let prev = prev.map_or(String::new(), |p| format!(r#","prev":"{}""#, hex(&p)));
        format!(r#"{{"v":1,"seq":{seq}{prev},"event":"call","decision":"allow"}}"#).into_bytes()
    };
    let hash = |i: usize| leaf_hash::<Blake3>(&log.lines[i]);
    // Before every record (after the last, see below).
    for j in 0..30usize {
        let good_prev = j.checked_sub(1).map(hash);
        let cases = [
            // Well forged: the right seq and prev; the record it displaces
            // links past it.
            ("forged", forged(j as u64, good_prev)),
            // A wrong prev (the hash of another record).
            ("wrong prev", forged(j as u64, Some(hash((j + 2) % 30)))),
            // A seq from nowhere.
            ("seq 999", forged(999, Some(good_prev.unwrap_or(hash(5))))),
            // As if it were the record after.
            (
                "next seq",
                forged(j as u64 + 1, Some(good_prev.unwrap_or(hash(0)))),
            ),
        ];
        for (what, line) in cases {
            if j == 0 && what == "wrong prev" {
                continue; // seq 0 with a prev is malformed, tested below
            }
            let mut bad = log.clone();
            bad.lines.insert(j, line);
            let err = damage(&bad, &key);
            assert!(
                matches!(err, VerifyError::Inserted { seq, .. } if seq == j as u64),
                "{what} record at line {}: {err}",
                j + 1
            );
        }
        let mut bad = log.clone();
        bad.lines.insert(j, b"not a record".to_vec());
        let err = damage(&bad, &key);
        assert!(
            matches!(err, VerifyError::Malformed { line, .. } if line == j as u64 + 1),
            "{err}"
        );
    }
    // Appended after the last checkpoint with the right seq and prev: no
    // signature covers it yet (the documented limit).
    let mut bad = log.clone();
    bad.lines.push(forged(30, Some(hash(29))));
    assert_eq!(bad.verify(&key).unwrap().records, 31);
}

#[test]
fn swapped_and_moved_records_are_named() {
    let key = key();
    let log = partly_covered(&key);
    // Every pair.
    for a in 0..30 {
        for b in a + 1..30 {
            let mut bad = log.clone();
            bad.lines.swap(a, b);
            let err = damage(&bad, &key);
            let (a, b) = (a as u64, b as u64);
            assert!(
                matches!(err, VerifyError::Reordered { seq, holds, found } if seq == a && holds == b && found == b),
                "swapped {a} and {b}: {err}"
            );
        }
    }
    let mut bad = log.clone();
    bad.lines.swap(12, 13);
    assert_eq!(
        damage(&bad, &key).to_string(),
        "seq 12: reordered: it comes after seq 13, on line 14"
    );
    // Every record moved to every other place: the first record out of
    // place is the moved one (moved later) or the one it now stands on
    // (moved earlier).
    for from in 0..30 {
        for to in (0..30).filter(|&to| to != from) {
            let mut bad = log.clone();
            let moved = bad.lines.remove(from);
            bad.lines.insert(to, moved);
            let err = damage(&bad, &key);
            let (seq, holds, found) = if to > from {
                (from, from + 1, to)
            } else {
                (to, from, to + 1)
            };
            let (seq, holds, found) = (seq as u64, holds as u64, found as u64);
            assert!(
                matches!(err, VerifyError::Reordered { seq: s, holds: h, found: f } if (s, h, f) == (seq, holds, found)),
                "moved seq {from} to line {}: {err}",
                to + 1
            );
        }
    }
    let mut bad = log.clone();
    let moved = bad.lines.remove(10);
    bad.lines.insert(3, moved);
    let err = damage(&bad, &key);
    assert_eq!(
        err.to_string(),
        "seq 3: reordered: line 4 holds seq 10, and seq 3 is on line 5"
    );
}

// ---- truncated and torn -------------------------------------------------

#[test]
fn truncation_at_every_byte_offset() {
    let key = key();
    for (log, from) in [(partly_covered(&key), 20), (fully_covered(&key), 28)] {
        let bytes = log.log_bytes();
        let notes = log.checkpoint_bytes();
        let covered = log.verify(&key).unwrap().covered;
        let start: usize = log.lines[..from].iter().map(|l| l.len() + 1).sum();
        for cut in start..=bytes.len() {
            let prefix = &bytes[..cut];
            let complete = prefix.iter().filter(|&&b| b == b'\n').count() as u64;
            let torn = prefix.last().is_some_and(|&b| b != b'\n');
            let got = verify_bytes(prefix, &notes, key.verifier());
            if complete >= covered {
                let r = got.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
                assert_eq!(r.records, complete);
                assert_eq!(r.torn_tail.is_some(), torn, "cut at {cut}");
                if let Some(t) = r.torn_tail {
                    assert_eq!(t.offset + t.len, cut as u64);
                    assert_eq!(bytes[t.offset as usize - 1], b'\n');
                }
            } else {
                let err = got.expect_err("a cut into signed records is caught");
                assert!(
                    matches!(err, VerifyError::Truncated { seq, size, .. } if seq == complete && size > complete),
                    "cut at {cut}: {err}"
                );
            }
        }
    }
}

#[test]
fn a_torn_last_checkpoint_is_ignored_and_reported() {
    let key = key();
    let log = partly_covered(&key);
    let bytes = log.log_bytes();
    let notes = log.checkpoint_bytes();
    let mut ends = vec![0];
    for n in &log.notes {
        ends.push(ends.last().unwrap() + n.len() + 1);
    }
    for cut in 0..=notes.len() {
        let r = verify_bytes(&bytes, &notes[..cut], key.verifier())
            .unwrap_or_else(|e| panic!("checkpoints cut at {cut}: {e}"));
        let complete = ends[1..].iter().filter(|&&e| e <= cut).count();
        assert_eq!(r.checkpoints, complete, "cut at {cut}");
        assert_eq!(r.torn_checkpoint, !ends.contains(&cut), "cut at {cut}");
    }
    let mut cut = notes.clone();
    cut.pop(); // the blank line that ends the last note
    let r = verify_bytes(&bytes, &cut, key.verifier()).unwrap();
    assert_eq!((r.checkpoints, r.covered, r.torn_checkpoint), (2, 16, true));
}

// ---- checkpoints --------------------------------------------------------

/// Replaces the base64 signature of a note.
fn resign(note: &str, blob: &[u8]) -> String {
    use base64::Engine as _;
    let (body, sig) = note.split_once("\n\n").unwrap();
    let name = sig.trim_end().rsplit_once(' ').unwrap().0;
    let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
    format!("{body}\n\n{name} {b64}\n")
}

fn sig_blob(note: &str) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = note.trim_end().rsplit_once(' ').unwrap().1;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[test]
fn bad_checkpoint_signatures_are_named() {
    let key = key();
    let log = partly_covered(&key);

    // A replaced signature (right key id, wrong bytes).
    let mut blob = sig_blob(&log.notes[1]);
    blob[10] ^= 0x40;
    let mut bad = log.clone();
    bad.notes[1] = resign(&log.notes[1], &blob);
    let err = damage(&bad, &key);
    assert!(
        matches!(
            err,
            VerifyError::BadSignature {
                index: 1,
                size: Some(16),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(
            "checkpoint 1 (size 16): bad signature: the signature by test.host/warden-audit+"
        ),
        "{err}"
    );

    // An all-zero signature.
    let mut blob = sig_blob(&log.notes[2]);
    blob[4..].fill(0);
    let mut bad = log.clone();
    bad.notes[2] = resign(&log.notes[2], &blob);
    let err = damage(&bad, &key);
    assert!(
        matches!(err, VerifyError::BadSignature { index: 2, .. }),
        "{err}"
    );

    // Signed by another key of the same name, and a whole file of them.
    let other = HostKey::generate(NAME).unwrap();
    let signed_by_other = partly_covered(&other);
    let mut bad = log.clone();
    bad.notes[2] = signed_by_other.notes[2].clone();
    let err = damage(&bad, &key);
    assert!(
        matches!(
            err,
            VerifyError::BadSignature {
                index: 2,
                size: Some(24),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("not signed by"), "{err}");
    let err = damage(&signed_by_other, &key);
    assert!(
        matches!(err, VerifyError::BadSignature { index: 0, .. }),
        "{err}"
    );

    // An edited body: size, or root.
    for (from, to) in [("\n16\n", "\n17\n"), ("\n16\n", "\n15\n")] {
        let mut bad = log.clone();
        bad.notes[1] = log.notes[1].replace(from, to);
        let err = damage(&bad, &key);
        assert!(
            matches!(err, VerifyError::BadSignature { index: 1, .. }),
            "{err}"
        );
    }
    let mut bad = log.clone();
    let root_line = log.notes[0].lines().nth(2).unwrap().to_string();
    let other_root = log.notes[1].lines().nth(2).unwrap();
    bad.notes[0] = log.notes[0].replace(&root_line, other_root);
    let err = damage(&bad, &key);
    assert!(
        matches!(err, VerifyError::BadSignature { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn unusable_checkpoints_are_named() {
    let key = key();
    let log = partly_covered(&key);
    let mut bad = log.clone();
    bad.notes.swap(0, 1);
    let err = damage(&bad, &key);
    assert!(
        matches!(
            err,
            VerifyError::BadCheckpoint {
                index: 1,
                size: Some(8),
                ..
            }
        ),
        "{err}"
    );
    let mut bad = log.clone();
    bad.notes.insert(1, "garbage\n\n\u{2014} x AAAA\n".into());
    let err = damage(&bad, &key);
    assert!(
        matches!(err, VerifyError::BadCheckpoint { index: 1, .. }),
        "{err}"
    );
    let mut bad = log.clone();
    bad.notes[0] = Checkpoint {
        origin: "elsewhere/warden-audit".into(),
        size: 8,
        root: vec![0; 32],
    }
    .sign(&key);
    let err = damage(&bad, &key);
    assert!(err.to_string().contains("is not the key's name"), "{err}");
    // A signed checkpoint whose root is not the log's: what a host key
    // thief or a forked log produces.
    let mut bad = log.clone();
    bad.notes[1] = Checkpoint {
        origin: NAME.into(),
        size: 16,
        root: vec![7; 32],
    }
    .sign(&key);
    let err = damage(&bad, &key);
    assert!(matches!(err, VerifyError::Changed { seq: 8, .. }), "{err}");
}

// ---- malformed ----------------------------------------------------------

#[test]
fn malformed_lines_are_named_by_line_number() {
    let key = key();
    let log = partly_covered(&key);
    let hash4 = hex(&leaf_hash::<Blake3>(&log.lines[4]));
    let cases: [(usize, String, &str); 9] = [
        (5, "{not json".into(), "not JSON"),
        (5, "not json".into(), "not a JSON object"),
        (5, "[5]".into(), "not a JSON object"),
        (5, String::new(), "not a JSON object"),
        (5, r#"{"v":1}"#.into(), "no seq"),
        (5, r#"{"v":1,"seq":"5"}"#.into(), "expected u64 at column"),
        (5, r#"{"v":1,"seq":5}"#.into(), "seq 5 has no prev"),
        (
            5,
            format!(r#"{{"v":1,"seq":5,"prev":"{}"}}"#, hash4.to_uppercase()),
            "hex",
        ),
        (
            0,
            format!(r#"{{"v":1,"seq":0,"prev":"{hash4}"}}"#),
            "seq 0 has a prev",
        ),
    ];
    for (j, line, says) in cases {
        let mut bad = log.clone();
        bad.lines[j] = line.clone().into_bytes();
        let err = damage(&bad, &key);
        assert!(
            matches!(err, VerifyError::Malformed { line, .. } if line == j as u64 + 1)
                && err.to_string().contains(says),
            "{line:?}: {err}"
        );
    }
    let mut bad = log.clone();
    bad.lines[7] = vec![b'{', 0xff, b'}'];
    assert_eq!(
        damage(&bad, &key).to_string(),
        "line 8: malformed: not UTF-8 at byte 1"
    );
    // A log from before the Merkle log: no prev anywhere.
    let old = b"{\"v\":1,\"seq\":0}\n{\"v\":1,\"seq\":1}\n";
    let err = verify_bytes(old, b"", key.verifier()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("line 2: malformed: seq 1 has no prev"),
        "{err}"
    );
}

// ---- proofs -------------------------------------------------------------

#[test]
fn every_covered_record_has_a_proof_that_checks() {
    let key = key();
    let log = partly_covered(&key);
    let report = log.verify(&key).unwrap();
    for seq in 0..24 {
        let proof = InclusionProof::new(log.log_bytes().as_slice(), &report, seq).unwrap();
        assert_eq!(proof.tree_size, 24);
        let cp = proof
            .check(key.verifier(), Some(&log.lines[seq as usize]))
            .unwrap();
        assert_eq!(cp.size, 24);
        // Another record's bytes do not fit it.
        let other = &log.lines[(seq as usize + 1) % 30];
        assert!(proof.check(key.verifier(), Some(other)).is_err());
    }
    let err = InclusionProof::new(log.log_bytes().as_slice(), &report, 24).unwrap_err();
    assert_eq!(
        err.to_string(),
        "seq 24 is not covered by a checkpoint yet: the last one covers 24 records"
    );
    assert!(InclusionProof::new(log.log_bytes().as_slice(), &report, 30).is_err());
}

// ---- the CLI ------------------------------------------------------------

struct Cli {
    dir: tempfile::TempDir,
    key: HostKey,
    log: Log,
    path: PathBuf,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let key = key();
        let log = partly_covered(&key);
        let path = log.write(dir.path());
        Cli {
            dir,
            key,
            log,
            path,
        }
    }

    fn vkey(&self) -> String {
        self.key.verifier().to_string()
    }

    /// Runs `warden audit ARGS` with an empty state directory of its own.
    fn audit(&self, args: &[&str]) -> (i32, String, String) {
        let state = self.dir.path().join("state");
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        let out = warden(&all, &[("XDG_STATE_HOME", state.to_str().unwrap())], None);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn log_arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

#[test]
fn cli_verify_exit_codes() {
    let cli = Cli::new();
    let log = cli.log_arg();
    let vkey = cli.vkey();

    let (code, out, err) = cli.audit(&["verify", log, "--key", &vkey]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(
            "intact: 30 records, 3 checkpoints, 24 covered by the last checkpoint, 6 after it"
        ),
        "{out}"
    );

    // The key from a file.
    let key_file = cli.dir.path().join("verifier.key");
    std::fs::write(&key_file, format!("{vkey}\n")).unwrap();
    let (code, out, _) = cli.audit(&["verify", log, "--key", key_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");

    // This host's key, from the state directory, never created to verify.
    let (code, _, err) = cli.audit(&["verify", log]);
    assert_eq!(code, 2);
    assert!(err.contains("no --key given and no host key at"), "{err}");
    assert!(!cli.dir.path().join("state/warden/host.key").exists());
    let other = cli.dir.path().join("state/warden/host.key");
    let host = HostKey::load_or_create(&other, "somewhere/warden-audit").unwrap();
    let (code, out, _) = cli.audit(&["verify", log]);
    assert_eq!(code, 1, "checkpoints by another host's key: {out}");
    // Keys are named by name and key id, never by the whole key string.
    let id = |v: String| v.splitn(3, '+').take(2).collect::<Vec<_>>().join("+");
    assert_eq!(
        out.trim(),
        format!(
            "not intact: checkpoint 0 (size 8): bad signature: not signed by {} (it is signed by {})",
            id(host.verifier().to_string()),
            id(cli.vkey())
        )
    );
    let hosted = cli.log.clone();
    let resigned = build(30, 8, &host);
    assert_eq!(hosted.lines, resigned.lines);
    resigned.write(cli.dir.path());
    let (code, out, _) = cli.audit(&["verify", log]);
    assert_eq!(code, 0, "{out}");
    cli.log.write(cli.dir.path());

    // Not intact: exit 1, the first bad seq on stdout.
    let mut bad = cli.log.clone();
    bad.lines[5] = String::from_utf8(bad.lines[5].clone())
        .unwrap()
        .replace(r#""decision":"allow""#, r#""decision":"deny""#)
        .into_bytes();
    let tampered = cli.dir.path().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    let tampered = bad.write(&tampered);
    let (code, out, _) = cli.audit(&["verify", tampered.to_str().unwrap(), "--key", &vkey]);
    assert_eq!(code, 1);
    assert_eq!(
        out.trim(),
        "not intact: seq 5: changed: its bytes differ from what seq 6's prev commits to"
    );

    // Torn tail past the last checkpoint: intact, and said.
    let torn = cli.dir.path().join("torn");
    std::fs::create_dir(&torn).unwrap();
    let torn = cli.log.write(&torn);
    let mut bytes = std::fs::read(&torn).unwrap();
    bytes.extend_from_slice(br#"{"v":1,"seq":30,"pre"#);
    std::fs::write(&torn, bytes).unwrap();
    let (code, out, _) = cli.audit(&["verify", torn.to_str().unwrap(), "--key", &vkey]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("torn tail: 20 bytes at offset"), "{out}");

    // Usage and unreadable: exit 2.
    let missing = cli.dir.path().join("missing.jsonl");
    let (code, _, err) = cli.audit(&["verify", missing.to_str().unwrap(), "--key", &vkey]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.jsonl"), "{err}");
    let (code, _, err) = cli.audit(&["verify", log, "--key", "not-a-key"]);
    assert_eq!(code, 2);
    assert!(err.contains("neither a verifier key nor a file"), "{err}");
    let (code, _, _) = cli.audit(&["verify"]);
    assert_eq!(code, 2);
}

#[test]
fn cli_prove_and_check_proof_round_trip() {
    let cli = Cli::new();
    let log = cli.log_arg();
    let vkey = cli.vkey();
    let (code, out, err) = cli.audit(&["prove", log, "17", "--key", &vkey]);
    assert_eq!(code, 0, "{err}");
    let proof: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(proof["seq"], 17);
    assert_eq!(proof["tree_size"], 24);
    assert_eq!(proof["hasher"], "blake3");
    assert_eq!(proof["checkpoint"], cli.log.notes[2].as_str());
    assert_eq!(
        proof["leaf_hash"],
        hex(&leaf_hash::<Blake3>(&cli.log.lines[17])).as_str()
    );
    let write = |name: &str, bytes: &[u8]| {
        let path = cli.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let proof_file = write("proof.json", out.as_bytes());
    let mut line = cli.log.lines[17].clone();
    line.push(b'\n');
    let record = write("record.jsonl", &line);

    let (code, out, _) = cli.audit(&["check-proof", &proof_file, "--key", &vkey]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("valid: seq 17"), "{out}");
    let (code, out, _) = cli.audit(&[
        "check-proof",
        &proof_file,
        "--key",
        &vkey,
        "--record",
        &record,
    ]);
    assert_eq!(code, 0, "{out}");

    // A changed record does not fit the proof.
    let changed = String::from_utf8(line.clone())
        .unwrap()
        .replace("f17", "f71");
    let changed = write("changed.jsonl", changed.as_bytes());
    let (code, out, _) = cli.audit(&[
        "check-proof",
        &proof_file,
        "--key",
        &vkey,
        "--record",
        &changed,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("invalid: the record's leaf hash"), "{out}");

    // A flipped hash, in the path or of the leaf; another seq; another key.
    type Edit = (&'static str, fn(&mut serde_json::Value));
    let edits: [Edit; 5] = [
        ("proof hash", |p| flip_hex(&mut p["proof"][1])),
        ("leaf hash", |p| flip_hex(&mut p["leaf_hash"])),
        ("seq", |p| p["seq"] = 16.into()),
        ("size", |p| p["tree_size"] = 23.into()),
        ("checkpoint", |p| {
            let note = p["checkpoint"]
                .as_str()
                .unwrap()
                .replace("\n24\n", "\n23\n");
            p["checkpoint"] = note.into();
        }),
    ];
    for (what, edit) in edits {
        let mut bad = proof.clone();
        edit(&mut bad);
        let file = write("bad.json", bad.to_string().as_bytes());
        let (code, out, err) = cli.audit(&["check-proof", &file, "--key", &vkey]);
        assert_eq!(code, 1, "{what}: {out}{err}");
        assert!(out.starts_with("invalid: "), "{what}: {out}");
    }
    let other = HostKey::generate(NAME).unwrap().verifier().to_string();
    let (code, out, _) = cli.audit(&["check-proof", &proof_file, "--key", &other]);
    assert_eq!(code, 1, "{out}");

    // Usage: not a proof, no key; and prove past the checkpoint or the log.
    let junk = write("junk.json", b"{\"seq\":1}");
    let (code, _, err) = cli.audit(&["check-proof", &junk, "--key", &vkey]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = cli.audit(&["check-proof", &proof_file]);
    assert_eq!(code, 2);
    let (code, _, err) = cli.audit(&["prove", log, "27", "--key", &vkey]);
    assert_eq!(code, 1);
    assert!(err.contains("not covered by a checkpoint yet"), "{err}");
    let (code, _, err) = cli.audit(&["prove", log, "99", "--key", &vkey]);
    assert_eq!(code, 2, "{err}");

    // No proof from a log that is not intact.
    let mut bad = cli.log.clone();
    bad.lines.swap(3, 4);
    bad.write(cli.dir.path());
    let (code, _, err) = cli.audit(&["prove", log, "17", "--key", &vkey]);
    assert_eq!(code, 1);
    assert!(err.contains("seq 3: reordered"), "{err}");
}

fn flip_hex(v: &mut serde_json::Value) {
    let s = v.as_str().unwrap();
    let first = if s.starts_with('0') { "1" } else { "0" };
    *v = format!("{first}{}", &s[1..]).into();
}

#[test]
fn cli_show_prints_and_filters() {
    let cli = Cli::new();
    let log = cli.log_arg();
    let (code, out, err) = cli.audit(&["show", log]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 30);
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        [
            "3",
            "2026-11-25T20:36:00.003Z",
            "00000001",
            "call",
            "wasi:filesystem/types.[method]descriptor.open-at",
            "/etc/f3",
            "deny",
            "\"no",
            "fs",
            "grant",
            "covers",
            "/etc/f3\"",
            "error:access",
        ]
    );
    assert!(lines[0].contains("task.start"), "{}", lines[0]);

    let (_, out, _) = cli.audit(&["show", log, "--deny"]);
    let denied: Vec<&str> = out.lines().collect();
    let want = (0..30)
        .filter(|s| s % 7 == 3 && s % 10 != 0 && s % 10 != 9)
        .count();
    assert_eq!(denied.len(), want, "{out}");
    assert!(denied.iter().all(|l| l.contains("  deny  ")));

    let (_, out, _) = cli.audit(&["show", log, "--task", "00000002"]);
    assert_eq!(out.lines().count(), 10, "{out}");
    let (_, out, _) = cli.audit(&[
        "show",
        log,
        "--task",
        "000000025a5a5a5a5a5a5a5a",
        "--deny",
        "--json",
    ]);
    let raw: Vec<&[u8]> = out
        .as_bytes()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let want: Vec<&[u8]> = (10..20)
        .filter(|s| s % 7 == 3 && s % 10 != 0 && s % 10 != 9)
        .map(|s| cli.log.lines[s].as_slice())
        .collect();
    assert_eq!(raw, want);

    let (code, _, _) = cli.audit(&["show", cli.dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(code, 2);
}

// ---- the writer's logs --------------------------------------------------

#[test]
fn logs_the_writer_writes_verify_and_their_damage_is_named() {
    use crate::support::Sandbox;
    let sb = Sandbox::new("echo", "echo");
    for n in 0..3 {
        let run = sb.run(&format!(r#"{{"n":{n}}}"#));
        assert_eq!(run.code, 0, "{run:#?}");
    }
    let log = sb.audit.to_str().unwrap();
    // The tests' shared host key signed it; verify finds it the same way.
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify", log];
        args.extend_from_slice(extra);
        let out = warden(&args, &[], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code().unwrap_or(-1), text)
    };
    let (code, out) = verify(&[]);
    assert_eq!(code, 0, "{out}");
    let records = sb.records().len();
    assert!(
        out.starts_with(&format!("intact: {records} records, ")) && out.contains(", 0 after it"),
        "every task end is checkpointed: {out}"
    );

    // A write cut short: still intact, and the writer recovers it.
    let mut bytes = std::fs::read(&sb.audit).unwrap();
    let intact = bytes.clone();
    bytes.extend_from_slice(br#"{"v":1,"seq":"#);
    std::fs::write(&sb.audit, &bytes).unwrap();
    let (code, out) = verify(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("torn tail: 13 bytes"), "{out}");
    // (Not `sb.run`, which reads the log first and would choke on the tail.)
    let manifest = sb.manifest.to_str().unwrap();
    let run = |input: &str| {
        warden(
            &["run", manifest, "--audit", log, "--input", input],
            &[],
            None,
        )
    };
    let recovered = run("{}");
    assert!(recovered.status.success(), "{recovered:?}");
    let (code, out) = verify(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(sb.records().iter().any(|r| r["event"] == "recovery"));

    // A changed record: verify names it, and the writer will not append.
    let mut changed = intact.clone();
    let line1 = changed.iter().position(|&b| b == b'\n').unwrap() + 1;
    let at = line1
        + changed[line1..]
            .windows(6)
            .position(|w| w == b"\"echo\"")
            .unwrap();
    changed[at + 4] = b'0';
    std::fs::write(&sb.audit, &changed).unwrap();
    let (code, out) = verify(&[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.trim(),
        "not intact: seq 1: changed: its bytes differ from what seq 2's prev commits to"
    );
    let refused = run("{}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tampered"), "{stderr}");
}

#[test]
fn a_kept_checkpoint_catches_trailing_records_removed_with_their_checkpoints() {
    let key = key();
    let dir = tempfile::tempdir().unwrap();
    let full = build(30, 10, &key);
    let kept = dir.path().join("kept.note");
    std::fs::write(&kept, full.notes.last().unwrap()).unwrap();
    let vkey = key.verifier().to_string();
    let verify_cli = |log: &Path, extra: &[&str]| {
        let mut args = vec!["audit", "verify", log.to_str().unwrap(), "--key", &vkey];
        args.extend_from_slice(extra);
        warden(&args, &[], None)
    };

    // The whole log matches the kept checkpoint.
    let log = full.write(dir.path());
    let out = verify_cli(&log, &["--checkpoint", kept.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // An attacker drops the last task and the checkpoint that covered it:
    // the log alone still verifies, the kept checkpoint says what is gone.
    let cut = Log {
        lines: full.lines[..20].to_vec(),
        notes: full.notes[..2].to_vec(),
    };
    let log = cut.write(dir.path());
    assert_eq!(verify_cli(&log, &[]).status.code(), Some(0));
    let out = verify_cli(&log, &["--checkpoint", kept.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("seq 20: truncated"), "{stdout}");

    // A kept checkpoint that is not the key's is a usage error, not a verdict.
    let other = HostKey::generate("other/warden-audit").unwrap();
    let forged = dir.path().join("forged.note");
    let note = Checkpoint {
        origin: "other/warden-audit".into(),
        size: 30,
        root: vec![0; 32],
    }
    .sign(&other);
    std::fs::write(&forged, note).unwrap();
    assert_eq!(
        verify_cli(&log, &["--checkpoint", forged.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
}

// ---- history that no checkpoint covers ----------------------------------

/// A sandbox whose log is signed by a key of its own, kept apart from the
/// log's directory, and a way to run `warden` on both.
struct Forgery {
    sb: crate::support::Sandbox,
    key: PathBuf,
}

impl Forgery {
    fn new() -> Forgery {
        let sb = crate::support::Sandbox::new("echo", "echo");
        let key = sb.path("keys/host.key");
        Forgery { sb, key }
    }

    fn log(&self) -> &str {
        self.sb.audit.to_str().unwrap()
    }

    /// `warden run` of echo with `n` as input.
    fn run(&self, n: u32) -> std::process::Output {
        let input = format!(r#"{{"n":{n}}}"#);
        let args = [
            "run",
            self.sb.manifest.to_str().unwrap(),
            "--audit",
            self.log(),
            "--key",
            self.key.to_str().unwrap(),
            "--input",
            &input,
        ];
        warden(&args, &[], None)
    }

    fn vkey(&self) -> String {
        HostKey::load_or_create(&self.key, "unused")
            .unwrap()
            .verifier()
            .to_string()
    }

    /// `warden audit ARGS` on this log, with `--key`: (exit code, stdout, stderr).
    fn audit(&self, args: &[&str], key: &str) -> (i32, String, String) {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[self.log(), "--key", key]);
        let out = warden(&all, &[], None);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn lines(&self) -> Log {
        let bytes = std::fs::read(&self.sb.audit).unwrap();
        Log {
            lines: bytes
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect(),
            notes: Vec::new(),
        }
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Issue 11, item 3: rewrite a record, recompute every `prev` after it,
/// delete `<LOG>.checkpoints`, and run one more task. The writer used to
/// take the forged history on, and its next checkpoint signed it with the
/// real key; now it refuses, and only `warden audit adopt` takes it on, in
/// a record that every later verify reports.
#[test]
fn a_rewritten_history_without_checkpoints_is_refused_until_adopted() {
    let f = Forgery::new();
    for n in 0..2 {
        let out = f.run(n);
        assert!(out.status.success(), "{}", text(&out));
    }
    let vkey = f.vkey();
    let (code, out, _) = f.audit(&["verify"], &vkey);
    assert_eq!(code, 0, "{out}");

    // The attacker rewrites how task 0 ended, and repairs the chain.
    let mut forged = f.lines();
    let n = forged.lines.len();
    let at = (0..n)
        .find(|&i| String::from_utf8_lossy(&forged.lines[i]).contains(r#""event":"task.end""#))
        .expect("task 0's end");
    forged.lines[at] = String::from_utf8(forged.lines[at].clone())
        .unwrap()
        .replace(r#""outcome":"ok""#, r#""outcome":"trap:forged""#)
        .into_bytes();
    forged.relink(at + 1);
    std::fs::write(&f.sb.audit, forged.log_bytes()).unwrap();
    std::fs::remove_file(checkpoints_path(&f.sb.audit)).unwrap();
    // The chain alone holds: without a checkpoint, verify cannot tell.
    let (code, out, _) = f.audit(&["verify"], &vkey);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning: no checkpoints"), "{out}");

    // One more task: refused before anything is written, saying why and what to do.
    let before = std::fs::read(&f.sb.audit).unwrap();
    let refused = f.run(2);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    for want in [
        "refusing to append",
        &format!(
            "seq 0 to {} ({n} records) are not covered by any signed checkpoint",
            n - 1
        ),
        "there are no checkpoints",
        "warden audit verify",
        "warden audit adopt",
    ] {
        assert!(said.contains(want), "{want:?} not in {said}");
    }
    assert_eq!(
        std::fs::read(&f.sb.audit).unwrap(),
        before,
        "the log is as found"
    );
    assert!(
        std::fs::read(checkpoints_path(&f.sb.audit))
            .unwrap_or_default()
            .is_empty(),
        "nothing signed the forgery"
    );

    // The operator adopts it: a recovery record names the range and its digest.
    let key = f.key.to_str().unwrap().to_owned();
    let (code, out, err) = f.audit(&["adopt"], &key);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "adopted seq 0 to {} ({n} records, digest blake3:",
            n - 1
        )),
        "{out}"
    );
    let records = f.sb.records();
    let recovery = &records[n];
    assert_eq!(recovery["event"], "recovery", "{recovery}");
    let adopted = &recovery["args"]["adopted"];
    assert_eq!(
        (
            &adopted["from_seq"],
            &adopted["to_seq"],
            &adopted["records"]
        ),
        (&0.into(), &(n - 1).into(), &n.into()),
        "{recovery}"
    );
    let leaves: Vec<[u8; 32]> = forged
        .lines
        .iter()
        .map(|l| leaf_hash::<Blake3>(l))
        .collect();
    assert_eq!(
        adopted["digest"],
        warden::audit::verify::range_digest(&leaves),
        "{recovery}"
    );

    // From now on the log is appended to, and every verify names the range.
    let out = f.run(3);
    assert!(out.status.success(), "{}", text(&out));
    let (code, out, _) = f.audit(&["verify"], &vkey);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(", 0 after it"), "all signed now: {out}");
    assert!(
        out.contains(&format!(
            "adopted: seq 0 to {} ({n} records) were taken on without checkpoint cover by \
             `warden audit adopt` (recovery record seq {n}, digest {})",
            n - 1,
            adopted["digest"].as_str().unwrap()
        )),
        "{out}"
    );
    let report = verify(
        &f.sb.audit,
        HostKey::load_or_create(&f.key, "x").unwrap().verifier(),
    )
    .unwrap();
    assert_eq!(report.adopted.len(), 1);
    assert_eq!(report.adopted[0].record, n as u64);
    // Adopting again finds nothing to adopt.
    let (code, out, _) = f.audit(&["adopt"], &key);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to adopt"), "{out}");
}

/// Complete lines appended after the last checkpoint, each linking to the
/// one before, are not a torn tail: the writer refuses them too.
#[test]
fn complete_records_appended_after_the_last_checkpoint_are_refused() {
    let f = Forgery::new();
    let out = f.run(0);
    assert!(out.status.success(), "{}", text(&out));
    let mut log = f.lines();
    let n = log.lines.len();
    let last = String::from_utf8(log.lines[n - 1].clone()).unwrap();
    let prev = hex(&leaf_hash::<Blake3>(&log.lines[n - 1]));
    let fake = last
        .replacen(&format!(r#""seq":{}"#, n - 1), &format!(r#""seq":{n}"#), 1)
        .replacen(r#""prev":""#, &format!(r#""prev":"{prev}","old":""#), 1);
    log.lines.push(fake.into_bytes());
    std::fs::write(&f.sb.audit, log.log_bytes()).unwrap();
    let vkey = f.vkey();
    let (code, out, _) = f.audit(&["verify"], &vkey);
    assert_eq!(code, 0, "chained, so it verifies: {out}");
    assert!(out.contains(", 1 after it"), "{out}");

    let refused = f.run(1);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "seq {n} to {n} (1 records) are not covered by any signed checkpoint (the last \
             checkpoint, 0 in"
        )),
        "{said}"
    );
    assert!(said.contains(&format!("covers {n} records")), "{said}");
    assert_eq!(f.lines().lines.len(), n + 1, "nothing appended");

    // A torn last line is still cut on open, as a killed writer leaves it.
    let mut bytes = log.log_bytes();
    bytes.truncate(bytes.len() - 1);
    let torn_at = bytes.len() - log.lines[n].len();
    bytes.truncate(torn_at + 10);
    std::fs::write(&f.sb.audit, &bytes).unwrap();
    let out = f.run(2);
    assert!(out.status.success(), "{}", text(&out));
    let records = f.sb.records();
    assert_eq!(records[n]["event"], "recovery");
    assert_eq!(records[n]["args"]["cut_bytes"], 10);
}

/// What a recovery record says it adopted is checked against the log.
#[test]
fn an_adoption_record_must_describe_records_before_it() {
    let key = key();
    let base = build(3, 100, &key);
    let leaves: Vec<[u8; 32]> = base.lines.iter().map(|l| leaf_hash::<Blake3>(l)).collect();
    let adopting = |from: u64, to: u64, digest: &str| {
        let mut log = base.clone();
        let prev = hex(&leaf_hash::<Blake3>(log.lines.last().unwrap()));
        log.lines.push(
            format!(
                r#"{{"v":1,"seq":3,"prev":"{prev}","time":"2026-11-25T20:37:00.000000000Z","host":"test","agent":null,"task":"-","parent":null,"tool":"warden","component":"-","event":"recovery","args":{{"adopted":{{"from_seq":{from},"to_seq":{to},"records":{},"digest":"{digest}"}}}}}}"#,
                to + 1 - from
            )
            .into_bytes(),
        );
        log
    };
    let right = warden::audit::verify::range_digest(&leaves);
    let report = adopting(0, 2, &right).verify(&key).unwrap();
    assert_eq!(report.adopted.len(), 1);
    assert_eq!(
        (
            report.adopted[0].from_seq,
            report.adopted[0].to_seq,
            report.adopted[0].record
        ),
        (0, 2, 3)
    );
    let wrong = warden::audit::verify::range_digest(&leaves[..2]);
    let err = damage(&adopting(0, 2, &wrong), &key);
    assert!(
        matches!(err, VerifyError::BadRecovery { seq: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("they have blake3:"), "{err}");
    let err = damage(&adopting(1, 3, &right), &key);
    assert!(err.to_string().contains("not a range before it"), "{err}");
}

/// Whoever can write the log's directory can put a link where the log was.
/// Warden would then lock, read and append records, whose strings a tool
/// chooses, to the file it leads to (a shell's startup file, say). A log or
/// checkpoints file reached through a symlink, or with another hard link,
/// is refused, and nothing is created or written through it.
#[test]
fn a_log_replaced_by_a_link_is_not_written_through() {
    let f = Forgery::new();
    let out = f.run(0);
    assert!(out.status.success(), "{}", text(&out));
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("profile");
    std::fs::write(&victim, "# a file the attacker wants written\n").unwrap();
    let original = std::fs::read(&victim).unwrap();
    let log = f.sb.audit.clone();
    let cps = checkpoints_path(&log);
    let aside = f.sb.path("moved-away");
    std::fs::create_dir(&aside).unwrap();

    // The log, then its checkpoints: a symlink to an existing file, a
    // symlink to a file that does not exist yet, a hard link.
    for target in [&log, &cps] {
        let kept = aside.join("kept");
        std::fs::rename(target, &kept).unwrap();
        let missing = elsewhere.path().join("created");
        for (how, link) in [
            ("symlink", &victim as &Path),
            ("dangling symlink", &missing),
        ] {
            std::os::unix::fs::symlink(link, target).unwrap();
            let refused = f.run(1);
            let said = text(&refused);
            assert_eq!(refused.status.code(), Some(2), "{how}: {said}");
            assert!(said.contains("is a symlink"), "{how}: {said}");
            std::fs::remove_file(target).unwrap();
        }
        assert!(!missing.exists(), "nothing created through a symlink");
        std::fs::hard_link(&victim, target).unwrap();
        let refused = f.run(1);
        let said = text(&refused);
        assert_eq!(refused.status.code(), Some(2), "{said}");
        assert!(said.contains("has 2 hard links"), "{said}");
        std::fs::remove_file(target).unwrap();
        std::fs::rename(&kept, target).unwrap();
    }
    assert_eq!(std::fs::read(&victim).unwrap(), original, "nothing written");
    let out = f.run(2);
    assert!(
        out.status.success(),
        "the log, put back, carries on: {}",
        text(&out)
    );
}
