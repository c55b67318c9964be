//! Reading a log as it grows, from any seq on: what a shipper needs to send every record
//! once, in order, across rotations and compression, after a restart.
//!
//! A [`Follower`] addresses records by seq, not by file and offset: a segment may be
//! renamed, compressed or retired between two reads. It keeps the file it reads open, so a
//! rename or a compression behind it changes nothing until it has read that file to its
//! end; only then does it look for the part that holds the next seq.

use super::segments::{Segment, open_records, segments};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Why a follower cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// Reading a part of the log failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        error: std::io::Error,
    },
    /// The next record is gone: its segment was retired (or removed) before it was read.
    #[error(
        "{}: seq {seq} is no longer in the log (it starts at seq {first}): its segment was \
         retired before it was read",
        log.display()
    )]
    Gone {
        /// The log.
        log: PathBuf,
        /// The record wanted.
        seq: u64,
        /// The first record the log still holds.
        first: u64,
    },
    /// A line does not hold the seq it should.
    #[error(
        "{}: expected seq {expected}, found {}",
        path.display(),
        found.map_or("a line without one".to_string(), |s| format!("seq {s}"))
    )]
    OutOfOrder {
        /// The file.
        path: PathBuf,
        /// The seq the follower was at.
        expected: u64,
        /// What the line said (`None`: no seq at all).
        found: Option<u64>,
    },
}

/// The part of the log being read.
struct Part {
    /// Where it is read from, for errors.
    path: PathBuf,
    /// The seq of its first record, once a line said it.
    first: Option<u64>,
    /// Whether it is the open log, which may still grow.
    open: bool,
    reader: BufReader<Box<dyn Read + Send>>,
}

/// Reads the records of a log from a given seq on, as the log grows.
pub struct Follower {
    log: PathBuf,
    next: u64,
    part: Option<Part>,
    /// A line read only in part from the open log: the writer is still on it.
    partial: Vec<u8>,
}

impl Follower {
    /// A follower of the log at `log` whose first record will be seq `from`.
    pub fn new(log: &Path, from: u64) -> Self {
        Follower {
            log: log.to_path_buf(),
            next: from,
            part: None,
            partial: Vec::new(),
        }
    }

    /// The seq of the next record [`Follower::read`] returns.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Up to `max` complete records from the next seq on, each with its seq and its line
    /// (without the `\n`); none when the log holds no newer complete record yet.
    ///
    /// # Errors
    ///
    /// [`FollowError::Gone`] when the next record was retired; I/O errors; a line out of
    /// order.
    pub fn read(&mut self, max: usize) -> Result<Vec<(u64, Vec<u8>)>, FollowError> {
        let mut out = Vec::new();
        while out.len() < max {
            if self.part.is_none() && !self.locate()? {
                break;
            }
            let part = self.part.as_mut().expect("located");
            let mut line = std::mem::take(&mut self.partial);
            part.reader
                .read_until(b'\n', &mut line)
                .map_err(|error| FollowError::Io {
                    path: part.path.clone(),
                    error,
                })?;
            if line.last() != Some(&b'\n') {
                // The end of what is written. The open log may grow, unless it was
                // closed since: then it is read once more to its end.
                if part.open {
                    self.partial = line;
                    if self.closed_behind()? {
                        continue;
                    }
                    break;
                }
                // A closed part ends in a complete line (a torn one is cut before
                // the log is closed): what is left is in the next part.
                self.part = None;
                continue;
            }
            line.pop();
            let seq = self.next;
            let found = seq_of(&line);
            let first = *part.first.get_or_insert(found.unwrap_or(seq));
            if first > seq {
                if part.open {
                    // The file opened as the open log is a newer one: the log was
                    // closed in between, and the record is in the segment now.
                    self.part = None;
                    continue;
                }
                return Err(FollowError::OutOfOrder {
                    path: part.path.clone(),
                    expected: seq,
                    found,
                });
            }
            match found {
                // Lines before the one wanted, in the part that holds it.
                Some(s) if s < seq => continue,
                Some(s) if s == seq => {}
                _ => {
                    return Err(FollowError::OutOfOrder {
                        path: part.path.clone(),
                        expected: seq,
                        found,
                    });
                }
            }
            out.push((seq, line));
            self.next += 1;
        }
        Ok(out)
    }

    /// Whether the open log being read was closed (renamed into a segment) since it was
    /// opened; if so, it is marked closed, to be read to its end and left.
    fn closed_behind(&mut self) -> Result<bool, FollowError> {
        let Some(first) = self.part.as_ref().and_then(|p| p.first) else {
            // Nothing read from it yet: it is looked for again.
            self.part = None;
            self.partial.clear();
            return Ok(false);
        };
        let closed = segments(&self.log)
            .map_err(|e| self.io(e))?
            .iter()
            .any(|s| s.first == first);
        if closed && let Some(p) = &mut self.part {
            p.open = false;
        }
        Ok(closed)
    }

    fn io(&self, error: std::io::Error) -> FollowError {
        FollowError::Io {
            path: self.log.clone(),
            error,
        }
    }

    /// Opens the part that holds the next seq: the newest closed segment that starts at
    /// or before it, or else the open log. `false` when the log has no such part.
    fn locate(&mut self) -> Result<bool, FollowError> {
        let closed = segments(&self.log).map_err(|e| self.io(e))?;
        if let Some(oldest) = closed.first()
            && self.next < oldest.first
        {
            return Err(FollowError::Gone {
                log: self.log.clone(),
                seq: self.next,
                first: oldest.first,
            });
        }
        // A closed segment holds the seq if the one after it starts past it; the last
        // one holds it if the open log does not (the open log says so by its first
        // line, read when the part is).
        let holder = closed
            .iter()
            .enumerate()
            .rev()
            .find(|(_, s)| s.first <= self.next)
            .filter(|(i, _)| match closed.get(i + 1) {
                Some(after) => after.first > self.next,
                None => false,
            })
            .map(|(_, s)| s);
        if let Some(s) = holder {
            self.part = Some(open_segment(s)?);
            return Ok(true);
        }
        let file = match File::open(&self.log) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.io(e)),
        };
        // The newest segment may still hold it: then the open log starts past it,
        // which its first line shows, and the segment is read instead.
        if let Some(last) = closed.last()
            && last.first <= self.next
            && first_line_seq(&file)
                .map_err(|e| self.io(e))?
                .is_some_and(|f| f > self.next)
        {
            self.part = Some(open_segment(last)?);
            return Ok(true);
        }
        self.part = Some(Part {
            path: self.log.clone(),
            first: None,
            open: true,
            reader: BufReader::new(Box::new(file)),
        });
        Ok(true)
    }
}

fn open_segment(s: &Segment) -> Result<Part, FollowError> {
    let reader = open_records(&s.records, s.compressed).map_err(|error| FollowError::Io {
        path: s.records.clone(),
        error,
    })?;
    Ok(Part {
        path: s.records.clone(),
        first: Some(s.first),
        open: false,
        reader: BufReader::new(reader),
    })
}

/// The seq of the first record of the open file `file`, read at its start without
/// moving its offset; `None` while it has no complete line.
fn first_line_seq(file: &File) -> std::io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 256];
    let mut line = Vec::new();
    loop {
        let n = file.read_at(&mut buf, line.len() as u64)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..end]);
            return Ok(seq_of(&line));
        }
        line.extend_from_slice(&buf[..n]);
    }
}

/// The `seq` of a record line: the writer puts it second, after `"v":1`.
fn seq_of(line: &[u8]) -> Option<u64> {
    if let Some(rest) = line.strip_prefix(br#"{"v":1,"seq":"#) {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 && matches!(rest.get(digits), Some(b',' | b'}')) {
            return std::str::from_utf8(&rest[..digits]).ok()?.parse().ok();
        }
    }
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(line).ok().map(|s| s.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::HostKey;
    use crate::audit::log::{AuditLog, Fsync, LogOptions};
    use std::io::Read;
    use std::time::SystemTime;
    use warden_host_api::audit::{Event, EventSink, Record, TaskMeta};

    fn meta() -> TaskMeta {
        TaskMeta {
            attempt: None,
            host: "test".into(),
            agent: None,
            task: "t".into(),
            parent: None,
            tool: "follow".into(),
            component: "blake3:00".into(),
            mcp: None,
        }
    }

    fn emit(log: &AuditLog, meta: &TaskMeta, n: u64) {
        let ev = Event::call("wasi:test/follow.call")
            .args(serde_json::json!({ "n": n, "pad": "x".repeat(100) }));
        log.emit(&Record {
            meta,
            time: SystemTime::now(),
            event: &ev,
        })
        .unwrap();
    }

    fn options(retain: Option<usize>) -> LogOptions {
        LogOptions {
            fsync: Fsync::None,
            segment_bytes: Some(2048),
            compress: Some(3),
            retain_segments: retain,
            ..LogOptions::default()
        }
    }

    /// Followed while it is written, rotated and compressed, the log reads as the
    /// verifier reads it afterwards: every record once, in order.
    #[test]
    fn follows_a_log_across_rotation_and_compression() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let key = HostKey::generate("follow/warden-audit").unwrap();
        let log = AuditLog::open(&path, key, options(None)).unwrap();
        let mut follower = Follower::new(&path, 0);
        let mut got = Vec::new();
        let m = meta();
        for n in 0..400 {
            emit(&log, &m, n);
            if n % 7 == 6 {
                log.checkpoint().unwrap();
                got.extend(follower.read(5).unwrap());
            }
        }
        drop(log);
        loop {
            let batch = follower.read(64).unwrap();
            if batch.is_empty() {
                break;
            }
            got.extend(batch);
        }
        assert!(segments(&path).unwrap().len() > 3, "the log was rotated");
        let mut whole = Vec::new();
        crate::audit::segments::read_records(&path)
            .unwrap()
            .read_to_end(&mut whole)
            .unwrap();
        let lines: Vec<&[u8]> = whole
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(got.len(), lines.len());
        for (i, (seq, line)) in got.iter().enumerate() {
            assert_eq!(*seq, i as u64);
            assert_eq!(line.as_slice(), lines[i], "seq {seq}");
        }

        // From the middle, as a restarted follower starts.
        let mut again = Follower::new(&path, 123);
        let batch = again.read(3).unwrap();
        assert_eq!(batch[0].0, 123);
        assert_eq!(batch[0].1.as_slice(), lines[123]);
        assert_eq!(again.next_seq(), 126);
    }

    #[test]
    fn a_retired_record_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let key = HostKey::generate("follow/warden-audit").unwrap();
        let log = AuditLog::open(&path, key, options(Some(2))).unwrap();
        let m = meta();
        for n in 0..300 {
            emit(&log, &m, n);
            if n % 5 == 4 {
                log.checkpoint().unwrap();
            }
        }
        drop(log);
        let first = segments(&path).unwrap()[0].first;
        assert!(first > 0);
        let err = Follower::new(&path, 0).read(1).unwrap_err();
        assert!(
            matches!(err, FollowError::Gone { seq: 0, first: f, .. } if f == first),
            "{err}"
        );
        assert_eq!(Follower::new(&path, first).read(1).unwrap()[0].0, first);
    }
}
