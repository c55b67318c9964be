//! A log in segments: the records and checkpoints a writer closed, beside the
//! ones it is writing.
//!
//! The writer appends to `<LOG>` and `<LOG>.checkpoints`. When the log has
//! grown past a size or an age ([`super::log::LogOptions::segment_bytes`],
//! [`segment_age`](super::log::LogOptions::segment_age)), right after a
//! checkpoint, it closes them: `<LOG>` becomes `<LOG>.seg-<FIRST>` and
//! `<LOG>.checkpoints` becomes `<LOG>.seg-<FIRST>.checkpoints`, where
//! `FIRST` is the seq of the segment's first record in 20 digits, and new
//! empty files take their place. A closed segment may then be compressed:
//! `<LOG>.seg-<FIRST>.zst`, written as `.zst.tmp`, synced, and renamed over
//! before the plain file is removed.
//!
//! Nothing else changes across a boundary: seq, `prev` and the Merkle tree
//! run on, and every checkpoint signs the tree of every record before it. So
//! the log is the concatenation of its segments' lines, oldest first, then
//! `<LOG>`; its checkpoints are the concatenation of their notes. That is
//! how [`super::verify`], [`super::proof`] and [`super::show`] read it, and
//! why a writer killed between the two renames leaves a log that still
//! reads the same: the notes of the segment it was closing are in
//! `<LOG>.checkpoints` instead of beside it, in the same place in the
//! sequence.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Digits of a segment's first seq in its file name: every `u64` fits.
const DIGITS: usize = 20;

/// One closed segment of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The seq of its first record, from its name.
    pub first: u64,
    /// Its records: `<LOG>.seg-<FIRST>`, or the `.zst` of it.
    pub records: PathBuf,
    /// Whether `records` is zstd-compressed.
    pub compressed: bool,
    /// Its checkpoints, `<LOG>.seg-<FIRST>.checkpoints`, if the file exists.
    pub checkpoints: Option<PathBuf>,
}

/// `<LOG>.seg-<FIRST>`, the plain records of a closed segment.
pub fn segment_path(log: &Path, first: u64) -> PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".seg-{first:0DIGITS$}"));
    log.with_file_name(name)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// `<SEGMENT>.zst`: a closed segment's records, compressed.
pub fn compressed_path(segment: &Path) -> PathBuf {
    with_suffix(segment, ".zst")
}

/// `<SEGMENT>.anchor`: where the log starts once every segment before this
/// one was retired ([`super::verify`]).
pub fn anchor_path(segment: &Path) -> PathBuf {
    with_suffix(segment, ".anchor")
}

/// `<SEGMENT>.checkpoints`: the notes written while the segment was open.
pub fn segment_checkpoints_path(segment: &Path) -> PathBuf {
    with_suffix(segment, ".checkpoints")
}

/// The `<LOG>.seg-<FIRST><REST>` files beside the log at `log`: each one's
/// first seq, what follows it in the name, and its path.
fn entries(log: &Path) -> std::io::Result<Vec<(u64, String, PathBuf)>> {
    let dir = match log.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(base) = log.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{base}.seg-");
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in listing {
        let entry = entry?;
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let digits = rest
            .get(..DIGITS)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
        if let Some(first) = digits.and_then(|d| d.parse::<u64>().ok()) {
            found.push((first, rest[DIGITS..].to_owned(), entry.path()));
        }
    }
    Ok(found)
}

/// The closed segments of the log at `log`, oldest first. A segment with
/// both a plain and a compressed file is read from the plain one: the
/// compressed file was complete before it was renamed into place, but the
/// plain one is what the writer closed.
///
/// # Errors
///
/// When the log's directory cannot be listed.
pub fn segments(log: &Path) -> std::io::Result<Vec<Segment>> {
    let mut found: std::collections::BTreeMap<u64, (bool, bool, bool)> = Default::default();
    for (first, rest, _) in entries(log)? {
        let slot = found.entry(first).or_default();
        match rest.as_str() {
            "" => slot.0 = true,
            ".zst" => slot.1 = true,
            ".checkpoints" => slot.2 = true,
            _ => {}
        }
    }
    Ok(found
        .into_iter()
        .filter(|(_, (plain, zst, _))| *plain || *zst)
        .map(|(first, (plain, _, cps))| {
            let path = segment_path(log, first);
            Segment {
                first,
                records: if plain {
                    path.clone()
                } else {
                    compressed_path(&path)
                },
                compressed: !plain,
                checkpoints: cps.then(|| segment_checkpoints_path(&path)),
            }
        })
        .collect())
}

/// Where a part of the log is read from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A file by its path; a missing file reads as empty.
    Path { path: PathBuf, compressed: bool },
    /// A file already open (the writer's, which it holds locked), read from
    /// its start through a duplicate of its descriptor.
    Open {
        file: std::sync::Arc<File>,
        path: PathBuf,
    },
}

impl Source {
    fn path(&self) -> &Path {
        match self {
            Source::Path { path, .. } | Source::Open { path, .. } => path,
        }
    }

    fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        match self {
            Source::Path { path, compressed } => match open_records(path, *compressed) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Ok(Box::new(std::io::empty()))
                }
                opened => opened,
            },
            Source::Open { file, .. } => Ok(Box::new(BufReader::with_capacity(
                1 << 16,
                ReadAt {
                    file: file.clone(),
                    pos: 0,
                },
            ))),
        }
    }
}

/// A reader of the records at `path`, decompressed if `compressed`. A plain segment
/// listed a moment ago may have been compressed since (the compressed file is renamed
/// into place before the plain one is removed): it is then read from its `.zst`.
pub(crate) fn open_records(path: &Path, compressed: bool) -> std::io::Result<Box<dyn Read + Send>> {
    let (file, compressed) = match File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !compressed => {
            (File::open(compressed_path(path))?, true)
        }
        opened => (opened?, compressed),
    };
    Ok(if compressed {
        Box::new(zstd::stream::read::Decoder::new(file)?)
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    })
}

/// Reads a file from its start with positioned reads, leaving alone the
/// offset the writer appends at (which a duplicated descriptor would share).
#[derive(Debug)]
struct ReadAt {
    file: std::sync::Arc<File>,
    pos: u64,
}

impl Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The files of a whole log, oldest first: its records, and its notes with
/// the length of the last notes file when they were listed (a writer may be
/// appending to it; only what was there is read).
#[derive(Debug)]
pub(crate) struct LogFiles {
    pub records: Vec<Source>,
    pub notes: Vec<Source>,
    pub notes_len: u64,
    /// The oldest segment's first seq and its anchor's path, when it is not
    /// seq 0.
    anchor: Option<(u64, PathBuf)>,
}

impl LogFiles {
    /// The files of the log at `log`: its closed segments, then `log` and
    /// its checkpoints, each by path.
    pub fn of(log: &Path) -> std::io::Result<LogFiles> {
        let cps = super::log::checkpoints_path(log);
        let notes_len = match std::fs::metadata(&cps) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let by_path = |path: PathBuf| Source::Path {
            path,
            compressed: false,
        };
        Self::with(log, by_path(log.to_path_buf()), by_path(cps), notes_len)
    }

    /// The files of the log at `log` whose active files are `file` and
    /// `cps`, already open.
    pub fn open(log: &Path, file: &File, cps: &File) -> std::io::Result<LogFiles> {
        let records = Source::Open {
            file: std::sync::Arc::new(file.try_clone()?),
            path: log.to_path_buf(),
        };
        let notes = Source::Open {
            file: std::sync::Arc::new(cps.try_clone()?),
            path: super::log::checkpoints_path(log),
        };
        Self::with(log, records, notes, cps.metadata()?.len())
    }

    fn with(
        log: &Path,
        active_records: Source,
        active_notes: Source,
        notes_len: u64,
    ) -> std::io::Result<LogFiles> {
        let mut records = Vec::new();
        let mut notes = Vec::new();
        let segments = segments(log)?;
        let anchor = segments
            .first()
            .filter(|s| s.first > 0)
            .map(|s| (s.first, anchor_path(&segment_path(log, s.first))));
        for s in segments {
            records.push(Source::Path {
                path: s.records,
                compressed: s.compressed,
            });
            if let Some(path) = s.checkpoints {
                notes.push(Source::Path {
                    path,
                    compressed: false,
                });
            }
        }
        records.push(active_records);
        notes.push(active_notes);
        Ok(LogFiles {
            records,
            notes,
            notes_len,
            anchor,
        })
    }

    /// The oldest segment's first seq and its anchor, when records before it
    /// were retired.
    pub fn anchor(&self) -> Option<(u64, &Path)> {
        self.anchor.as_ref().map(|(first, p)| (*first, p.as_path()))
    }

    /// Whether the log has closed segments.
    pub fn segmented(&self) -> bool {
        self.records.len() > 1
    }

    /// A reader over the records of every part, in order.
    pub fn read_records(&self) -> Chain {
        Chain::new(self.records.clone(), None)
    }

    /// A reader over the notes of every part, in order, the last one only
    /// up to `notes_len`.
    pub fn read_notes(&self) -> Chain {
        Chain::new(self.notes.clone(), Some(self.notes_len))
    }

    /// The active log's path (the last part), for errors.
    pub fn log_path(&self) -> &Path {
        self.records.last().map_or(Path::new(""), Source::path)
    }

    /// The active checkpoints file's path, for errors.
    pub fn notes_path(&self) -> &Path {
        self.notes.last().map_or(Path::new(""), Source::path)
    }
}

/// Reads the parts of a log one after the other, opening each when the one
/// before it is done.
pub struct Chain {
    parts: Vec<Source>,
    next: usize,
    last_limit: Option<u64>,
    current: Option<Box<dyn Read + Send>>,
}

impl Chain {
    fn new(parts: Vec<Source>, last_limit: Option<u64>) -> Self {
        Chain {
            parts,
            next: 0,
            last_limit,
            current: None,
        }
    }

    fn next_part(&mut self) -> std::io::Result<bool> {
        let Some(part) = self.parts.get(self.next) else {
            return Ok(false);
        };
        self.next += 1;
        let reader = part.open().map_err(|e| at(part.path(), e))?;
        self.current = Some(match self.last_limit {
            Some(limit) if self.next == self.parts.len() => Box::new(reader.take(limit)),
            _ => reader,
        });
        Ok(true)
    }
}

fn at(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Read for Chain {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(r) = &mut self.current {
                let n = r.read(buf).map_err(|e| {
                    let path = self.parts[self.next - 1].path();
                    at(path, e)
                })?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            if !self.next_part()? {
                return Ok(0);
            }
        }
    }
}

/// The records of the log at `log`, closed segments first (decompressed),
/// then `log` itself: the log as one stream of lines.
///
/// # Errors
///
/// When the log's directory cannot be listed; reading reports a file that
/// cannot be read.
pub fn read_records(log: &Path) -> std::io::Result<Chain> {
    Ok(LogFiles::of(log)?.read_records())
}

/// Compresses the closed segment at `plain` to `<plain>.zst` and removes
/// `plain`. The compressed file is written beside it as `.zst.tmp`, synced,
/// read back and compared, then renamed into place, so that at every
/// moment one complete copy of the records is under a name the readers
/// know.
///
/// # Errors
///
/// Any I/O error; the plain file is then left as it was.
pub fn compress(plain: &Path, level: i32) -> std::io::Result<u64> {
    let zst = compressed_path(plain);
    let tmp = with_suffix(&zst, ".tmp");
    let mut input = File::open(plain)?;
    let out = create_fresh(&tmp)?;
    let mut enc = zstd::stream::write::Encoder::new(out, level)?;
    std::io::copy(&mut input, &mut enc)?;
    let out = enc.finish()?;
    out.sync_all()?;
    // Read back before the plain copy goes: a bad write must not cost records.
    let same = {
        let mut a = BufReader::new(File::open(plain)?);
        let mut b = zstd::stream::read::Decoder::new(File::open(&tmp)?)?;
        same_bytes(&mut a, &mut b)?
    };
    if !same {
        let _ = std::fs::remove_file(&tmp);
        return Err(std::io::Error::other(format!(
            "{}: the compressed copy does not read back as the segment",
            tmp.display()
        )));
    }
    std::fs::rename(&tmp, &zst)?;
    sync_dir(plain)?;
    std::fs::remove_file(plain)?;
    sync_dir(plain)?;
    Ok(std::fs::metadata(&zst)?.len())
}

/// Creates `path` anew for writing, never through what is there: whoever
/// can write the log's directory could have put a symlink to another file
/// in its place. A leftover of a killed writer is removed first (removing
/// a symlink removes the link, not what it leads to).
pub(crate) fn create_fresh(path: &Path) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // O_CREAT | O_EXCL fails on any existing name, a symlink included.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

fn same_bytes(a: &mut impl Read, b: &mut impl Read) -> std::io::Result<bool> {
    let (mut x, mut y) = (vec![0; 1 << 16], vec![0; 1 << 16]);
    loop {
        let n = read_full(a, &mut x)?;
        let m = read_full(b, &mut y)?;
        if x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Syncs the directory holding `path`, so that a rename or removal in it
/// survives a crash.
pub(crate) fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| at(dir, e))
}

/// The first seqs named by `<LOG>.seg-*` files older than `oldest`, the
/// oldest segment that has records.
fn orphans(log: &Path, oldest: u64) -> std::io::Result<Vec<u64>> {
    Ok(entries(log)?
        .into_iter()
        .map(|(first, _, _)| first)
        .filter(|first| *first < oldest)
        .collect())
}

/// `<LOG>.seg-*.tmp`: what a writer killed while writing a compressed
/// segment or an anchor left.
fn leftovers(log: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(entries(log)?
        .into_iter()
        .filter(|(_, rest, _)| rest.ends_with(".tmp"))
        .map(|(_, _, path)| path)
        .collect())
}

/// Removes what a compression cut short left (`.zst.tmp`), and the plain
/// copy of a segment whose compressed copy was already in place.
pub(crate) fn tidy(log: &Path) -> std::io::Result<()> {
    let segs = segments(log)?;
    if let Some(oldest) = segs.first().map(|s| s.first) {
        // What a retirement cut short left of segments whose records are
        // gone: their checkpoints and anchors, never read again.
        for first in orphans(log, oldest)? {
            let plain = segment_path(log, first);
            for file in [segment_checkpoints_path(&plain), anchor_path(&plain)] {
                let _ = std::fs::remove_file(file);
            }
        }
    }
    for tmp in leftovers(log)? {
        let _ = std::fs::remove_file(tmp);
    }
    for s in segs {
        let plain = segment_path(log, s.first);
        let zst = compressed_path(&plain);
        let _ = std::fs::remove_file(with_suffix(&zst, ".tmp"));
        if !s.compressed && zst.exists() {
            // Both complete: the rename happened, the removal did not.
            std::fs::remove_file(&plain)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_found_in_order_and_read_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        std::fs::write(segment_path(&log, 10), "b\n").unwrap();
        std::fs::write(segment_path(&log, 0), "a\n").unwrap();
        std::fs::write(segment_checkpoints_path(&segment_path(&log, 0)), "note a\n").unwrap();
        std::fs::write(&log, "c\n").unwrap();
        std::fs::write(dir.path().join("audit.jsonl.seg-x"), "ignored").unwrap();
        std::fs::write(dir.path().join("other.seg-00000000000000000001"), "no").unwrap();
        compress(&segment_path(&log, 10), 3).unwrap();
        assert!(!segment_path(&log, 10).exists());
        let found = segments(&log).unwrap();
        assert_eq!(
            found
                .iter()
                .map(|s| (s.first, s.compressed))
                .collect::<Vec<_>>(),
            vec![(0, false), (10, true)]
        );
        assert!(found[0].checkpoints.is_some() && found[1].checkpoints.is_none());
        let files = LogFiles::of(&log).unwrap();
        let mut all = String::new();
        files.read_records().read_to_string(&mut all).unwrap();
        assert_eq!(all, "a\nb\nc\n");
        let mut notes = String::new();
        files.read_notes().read_to_string(&mut notes).unwrap();
        assert_eq!(notes, "note a\n");
    }

    #[test]
    fn a_compression_cut_short_is_tidied() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let plain = segment_path(&log, 0);
        std::fs::write(&plain, "a\n").unwrap();
        // Killed while writing the compressed copy: only the plain one counts.
        std::fs::write(with_suffix(&compressed_path(&plain), ".tmp"), "junk").unwrap();
        tidy(&log).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Killed after the rename, before the removal: the plain one goes.
        compress(&plain, 3).unwrap();
        std::fs::write(&plain, "a\n").unwrap();
        assert!(!segments(&log).unwrap()[0].compressed);
        tidy(&log).unwrap();
        assert!(!plain.exists());
        let mut all = String::new();
        LogFiles::of(&log)
            .unwrap()
            .read_records()
            .read_to_string(&mut all)
            .unwrap();
        assert_eq!(all, "a\n");
    }

    /// A symlink planted where the writer puts a temporary file (an
    /// anchor's or a compressed segment's) is replaced, not written through.
    #[test]
    fn temporary_files_are_never_written_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let log = dir.path().join("audit.jsonl");
        let plain = segment_path(&log, 0);
        std::fs::write(&plain, "a\n").unwrap();
        let tmp = with_suffix(&compressed_path(&plain), ".tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        compress(&plain, 3).unwrap();
        let anchor_tmp = with_suffix(&anchor_path(&plain), ".tmp");
        std::os::unix::fs::symlink(&victim, &anchor_tmp).unwrap();
        std::io::Write::write_all(&mut create_fresh(&anchor_tmp).unwrap(), b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(
            !anchor_tmp
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
