//! Looking at a path before anything is done to it, and opening it only if it passes.
//!
//! wasmtime-wasi's `open-at` opens first, so a check of what was opened comes too late:
//! `O_TRUNC` has emptied a hard link's outside file, and a FIFO's open has blocked the
//! thread until a writer came. Here a path is looked at first, through the directory's
//! capability (an `fstatat` relative to its descriptor, resolved in the sandbox the way
//! wasmtime-wasi resolves it), and opened only if it passes [`vet`]. The open itself never
//! truncates and never waits (`O_NONBLOCK`); what it opened must be the file that was
//! looked at (same device and inode) and must pass again before it is truncated through
//! its descriptor and handed to the guest.

use cap_primitives::fs::{
    FileTypeExt, FollowSymlinks, Metadata, MetadataExt, OpenOptions, OpenOptionsExt,
};
use rustix::fs::OFlags;
use std::io;
use std::path::Path;
use std::time::SystemTime;
use wasmtime_wasi::OpenMode;
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, DescriptorStat, DescriptorType, ErrorCode, MetadataHashValue, OpenFlags,
    PathFlags,
};

/// What a path was when it was looked at: its metadata, which also answers a vetted
/// `stat-at` or `metadata-hash-at` ([`Seen::stat`], [`Seen::hash`]) rather than a second
/// look, which could see a different file than the one vetted.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    kind: Kind,
    meta: Metadata,
}

/// A file's type, as far as the checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl Kind {
    fn of(meta: &Metadata) -> Kind {
        let t = meta.file_type();
        if t.is_file() {
            Kind::File
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_symlink() {
            Kind::Symlink
        } else if t.is_fifo() {
            Kind::Fifo
        } else if t.is_socket() {
            Kind::Socket
        } else if t.is_char_device() {
            Kind::CharDevice
        } else if t.is_block_device() {
            Kind::BlockDevice
        } else {
            Kind::Unknown
        }
    }

    /// Not a regular file, directory or symlink: opening it may block or act on a device.
    pub(crate) fn is_special(self) -> bool {
        !matches!(self, Kind::File | Kind::Dir | Kind::Symlink)
    }

    fn name(self) -> &'static str {
        match self {
            Kind::File => "a regular file",
            Kind::Dir => "a directory",
            Kind::Symlink => "a symlink",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::CharDevice => "a character device",
            Kind::BlockDevice => "a block device",
            Kind::Unknown => "a file of unknown type",
        }
    }
}

impl Seen {
    fn of(meta: Metadata) -> Seen {
        Seen {
            kind: Kind::of(&meta),
            meta,
        }
    }

    /// The device and inode: which file this is.
    fn id(&self) -> (u64, u64) {
        (self.meta.dev(), self.meta.ino())
    }

    fn links(&self) -> u64 {
        self.meta.nlink()
    }

    /// What wasmtime-wasi's `metadata-hash-at` would have answered for it: its 64-bit
    /// std hash of the device and inode, and that xor a constant for the upper half.
    pub(crate) fn hash(&self) -> MetadataHashValue {
        use std::hash::{Hash, Hasher};
        // The hasher wasmtime-wasi uses: fixed keys, so the same std gives the same value.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.id().hash(&mut hasher);
        let lower = hasher.finish();
        MetadataHashValue {
            lower,
            upper: lower ^ 4_614_256_656_552_045_848,
        }
    }

    /// What wasmtime-wasi 48's `stat` and `stat-at` would have answered for it (its
    /// conversion is private): FIFOs and sockets are `unknown`, the status-change time is
    /// the creation time, and a time a second or more before the epoch, or one the
    /// platform lacks, is `none`.
    pub(crate) fn stat(&self) -> DescriptorStat {
        let type_ = match self.kind {
            Kind::Dir => DescriptorType::Directory,
            Kind::Symlink => DescriptorType::SymbolicLink,
            Kind::File => DescriptorType::RegularFile,
            Kind::BlockDevice => DescriptorType::BlockDevice,
            Kind::CharDevice => DescriptorType::CharacterDevice,
            Kind::Fifo | Kind::Socket | Kind::Unknown => DescriptorType::Unknown,
        };
        let meta = &self.meta;
        DescriptorStat {
            type_,
            link_count: meta.nlink(),
            size: meta.len(),
            data_access_timestamp: datetime(meta.accessed()),
            data_modification_timestamp: datetime(meta.modified()),
            status_change_timestamp: datetime(meta.created()),
        }
    }
}

/// A file time as wasmtime-wasi gives it to a guest. It goes through signed seconds and
/// back: a time less than a second before the epoch keeps its nanoseconds and loses its
/// sign, and an earlier one is `none`. A guest sees here what it would see without Warden.
fn datetime(t: io::Result<cap_primitives::time::SystemTime>) -> Option<Datetime> {
    let d = t
        .ok()?
        .into_std()
        .duration_since(SystemTime::UNIX_EPOCH)
        .or_else(|e| match e.duration() {
            d if d.as_secs() == 0 => Ok(d),
            _ => Err(()),
        })
        .ok()?;
    i64::try_from(d.as_secs()).ok()?;
    Some(Datetime {
        seconds: d.as_secs(),
        nanoseconds: d.subsec_nanos(),
    })
}

/// Looks at `path` under the directory `dir` without opening it: `None` if nothing is
/// there. A path that leaves the directory fails as wasmtime-wasi's own calls fail.
pub(crate) fn look(dir: &std::fs::File, path: &str, follow: bool) -> io::Result<Option<Seen>> {
    let follow = if follow {
        FollowSymlinks::Yes
    } else {
        FollowSymlinks::No
    };
    match cap_primitives::fs::stat(dir, Path::new(path), follow) {
        Ok(meta) => Ok(Some(Seen::of(meta))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why a file may not be touched, if it may not: a regular file with more than one hard
/// link may be another name for a file outside every grant, and a non-regular file (a
/// FIFO, socket or device) may block or act when opened, unless the grant says `special`.
pub(crate) fn vet(seen: &Seen, path: &str, special: bool) -> Result<(), String> {
    if seen.kind == Kind::File && seen.links() > 1 {
        return Err(format!(
            "{path} has {} hard links and may alias a file outside every fs grant",
            seen.links()
        ));
    }
    if seen.kind.is_special() && !special {
        return Err(format!(
            "{path} is {}; non-regular files are refused unless the grant sets special = true",
            seen.kind.name()
        ));
    }
    Ok(())
}

/// How a guest's `open-at` is carried out: wasmtime-wasi's reading of the flags, except
/// that truncation is done through the descriptor after the checks.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    opts: OpenOptions,
    /// Read and write bits, as wasmtime-wasi reports them in the descriptor's flags.
    pub(crate) mode: OpenMode,
    pub(crate) follow: bool,
    /// `O_EXCL`: whatever the open finds is a file it created.
    exclusive: bool,
    truncate: bool,
    /// The guest asked for a directory.
    directory: bool,
}

impl Plan {
    /// Reads the flags as wasmtime-wasi 48's `Dir::open_at` does, with the same errors;
    /// `writable` is whether the directory's grant allows changes.
    pub(crate) fn new(
        path_flags: PathFlags,
        oflags: OpenFlags,
        flags: DescriptorFlags,
        writable: bool,
    ) -> Result<Plan, ErrorCode> {
        let mut opts = OpenOptions::new();
        let mut mode = OpenMode::empty();
        let create = oflags.contains(OpenFlags::CREATE);
        let exclusive = create && oflags.contains(OpenFlags::EXCLUSIVE);
        if create {
            if exclusive {
                opts.create_new(true);
            } else {
                opts.create(true);
            }
            opts.write(true);
            mode |= OpenMode::WRITE;
        }
        let truncate = oflags.contains(OpenFlags::TRUNCATE);
        if truncate {
            // Not `O_TRUNC`: the file is emptied through its descriptor once it is known.
            opts.write(true);
            mode |= OpenMode::WRITE;
        }
        if flags.contains(DescriptorFlags::READ) {
            opts.read(true);
            mode |= OpenMode::READ;
        }
        if flags.contains(DescriptorFlags::WRITE) {
            opts.write(true);
            mode |= OpenMode::WRITE;
        } else {
            // As wasmtime-wasi: the OS lets the file be opened, the grant refuses writes.
            opts.read(true);
            mode |= OpenMode::READ;
        }
        let follow = path_flags.contains(PathFlags::SYMLINK_FOLLOW);
        // cap-fs-ext's `OpenOptionsFollowExt` calls this; that crate adds nothing else here.
        opts._cap_fs_ext_follow(if follow {
            FollowSymlinks::Yes
        } else {
            FollowSymlinks::No
        });
        // A FIFO's open waits for its other end, and a device's may act: never wait here.
        opts.custom_flags(OFlags::NONBLOCK.bits() as i32);
        if flags.intersects(
            DescriptorFlags::FILE_INTEGRITY_SYNC
                | DescriptorFlags::DATA_INTEGRITY_SYNC
                | DescriptorFlags::REQUESTED_WRITE_SYNC,
        ) {
            return Err(ErrorCode::Unsupported);
        }
        let directory = oflags.contains(OpenFlags::DIRECTORY);
        if directory
            && oflags.intersects(OpenFlags::CREATE | OpenFlags::EXCLUSIVE | OpenFlags::TRUNCATE)
        {
            return Err(ErrorCode::Invalid);
        }
        if !writable && (create || mode.contains(OpenMode::WRITE)) {
            return Err(ErrorCode::NotPermitted);
        }
        Ok(Plan {
            opts,
            mode,
            follow,
            exclusive,
            truncate,
            directory,
        })
    }

    /// `O_CREAT | O_EXCL`: the open fails on anything already there, untouched.
    pub(crate) fn exclusive(&self) -> bool {
        self.exclusive
    }
}

/// What an open produced.
#[derive(Debug)]
pub(crate) enum Opened {
    File(std::fs::File),
    Dir(std::fs::File),
}

/// Why an open produced nothing.
#[derive(Debug)]
pub(crate) enum Failed {
    /// What the OS said, or wasmtime-wasi's error for the flags.
    Code(ErrorCode),
    /// What was opened is not what was looked at, or does not pass [`vet`]: the rule.
    Refused(String),
}

impl From<io::Error> for Failed {
    fn from(e: io::Error) -> Failed {
        Failed::Code(ErrorCode::from(e))
    }
}

/// Opens `rel` under `dir` as `plan` says, after [`look`] saw `seen` there (and [`vet`]
/// passed it); `path` is its guest path, for refusals. Whatever the open finds must be
/// what was seen, and must pass again: the file is truncated only then, so a refused
/// open has changed nothing.
pub(crate) fn open(
    dir: &std::fs::File,
    rel: &str,
    path: &str,
    plan: &Plan,
    seen: Option<Seen>,
    special: bool,
) -> Result<Opened, Failed> {
    let file = cap_primitives::fs::open(dir, Path::new(rel), &plan.opts)?;
    let now = Seen::of(Metadata::from_file(&file)?);
    // With O_EXCL the file is one this open created, whatever was there before.
    if let Some(seen) = seen.as_ref().filter(|_| !plan.exclusive)
        && seen.id() != now.id()
    {
        return Err(Failed::Refused(format!(
            "{path} was replaced between Warden's check and its open"
        )));
    }
    vet(&now, path, special).map_err(Failed::Refused)?;
    if !now.kind.is_special() {
        // Blocking mode back, for regular files and directories (where it makes no
        // difference to the kernel, only to what the descriptor reports). A special
        // file keeps O_NONBLOCK: its reads and writes fail rather than wait. F_SETFL
        // changes only append, async, direct, noatime and nonblock, of which the open
        // set only nonblock.
        rustix::fs::fcntl_setfl(&file, OFlags::empty()).map_err(io::Error::from)?;
    }
    if now.kind == Kind::Dir {
        return Ok(Opened::Dir(file));
    }
    if plan.directory {
        return Err(Failed::Code(ErrorCode::NotDirectory));
    }
    if plan.truncate && now.kind == Kind::File {
        file.set_len(0)?;
    }
    Ok(Opened::File(file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt as _;

    fn dir(path: &Path) -> std::fs::File {
        std::fs::File::open(path).unwrap()
    }

    fn truncating() -> Plan {
        Plan::new(
            PathFlags::empty(),
            OpenFlags::CREATE | OpenFlags::TRUNCATE,
            DescriptorFlags::WRITE,
            true,
        )
        .unwrap()
    }

    #[test]
    fn a_hard_link_is_refused_before_it_is_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::fs::create_dir(tmp.path().join("grant")).unwrap();
        std::fs::hard_link(&outside, tmp.path().join("grant/link")).unwrap();
        let d = dir(&tmp.path().join("grant"));
        let seen = look(&d, "link", false).unwrap().unwrap();
        let why = vet(&seen, "/g/link", false).unwrap_err();
        assert_eq!(
            why,
            "/g/link has 2 hard links and may alias a file outside every fs grant"
        );
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    }

    #[test]
    fn a_file_swapped_after_the_check_is_refused_untouched() {
        // The check sees a plain file; before the open, a hard link to a file outside
        // takes its name. The open must refuse it and leave the outside file whole.
        let tmp = tempfile::tempdir().unwrap();
        let grant = tmp.path().join("grant");
        std::fs::create_dir(&grant).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::fs::write(grant.join("f"), "mine").unwrap();
        let d = dir(&grant);
        let seen = look(&d, "f", false).unwrap();
        vet(seen.as_ref().unwrap(), "/g/f", false).unwrap();
        std::fs::remove_file(grant.join("f")).unwrap();
        std::fs::hard_link(&outside, grant.join("f")).unwrap();
        match open(&d, "f", "/g/f", &truncating(), seen, false) {
            Err(Failed::Refused(why)) => assert!(why.contains("replaced"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    }

    #[test]
    fn a_hard_link_planted_where_nothing_was_is_refused_untouched() {
        // Nothing at the path when checked, so the open may create; a hard link appears
        // first. The open finds it and must refuse without truncating it.
        let tmp = tempfile::tempdir().unwrap();
        let grant = tmp.path().join("grant");
        std::fs::create_dir(&grant).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        let d = dir(&grant);
        let seen = look(&d, "new", false).unwrap();
        assert!(seen.is_none());
        std::fs::hard_link(&outside, grant.join("new")).unwrap();
        match open(&d, "new", "/g/new", &truncating(), seen, false) {
            Err(Failed::Refused(why)) => assert!(why.contains("2 hard links"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    }

    #[test]
    fn a_fifo_is_refused_unless_special_and_never_waits() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("pipe");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        let d = dir(tmp.path());
        let seen = look(&d, "pipe", true).unwrap().unwrap();
        assert_eq!(seen.kind, Kind::Fifo);
        let why = vet(&seen, "/g/pipe", false).unwrap_err();
        assert_eq!(
            why,
            "/g/pipe is a FIFO; non-regular files are refused unless the grant sets special = true"
        );
        // Allowed, and nobody writes: the open returns at once instead of waiting.
        let read = Plan::new(
            PathFlags::SYMLINK_FOLLOW,
            OpenFlags::empty(),
            DescriptorFlags::READ,
            false,
        )
        .unwrap();
        assert!(matches!(
            open(&d, "pipe", "/g/pipe", &read, Some(seen), true),
            Ok(Opened::File(_))
        ));
    }

    #[test]
    fn truncation_happens_only_after_the_checks() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), "old").unwrap();
        let d = dir(tmp.path());
        let seen = look(&d, "f", false).unwrap();
        let Ok(Opened::File(_)) = open(&d, "f", "/g/f", &truncating(), seen, false) else {
            panic!("a plain file opens")
        };
        assert_eq!(std::fs::read_to_string(tmp.path().join("f")).unwrap(), "");
    }

    /// What wasmtime-wasi 48's own `stat-at` and `metadata-hash-at` answer for `path`
    /// under `dir`.
    fn wasmtime_stat(dir: &Path, path: &str, follow: bool) -> Result<String, ErrorCode> {
        use wasmtime::component::Resource;
        use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
        use wasmtime_wasi::p2::bindings::filesystem::preopens::Host as _;
        use wasmtime_wasi::p2::bindings::filesystem::types::HostDescriptor as _;
        let mut builder = wasmtime_wasi::WasiCtx::builder();
        builder
            .preopened_dir(dir, "/g", wasmtime_wasi::FsPerms::ReadOnly)
            .unwrap();
        let mut ctx = builder.build();
        let mut table = wasmtime::component::ResourceTable::new();
        let mut view = WasiFilesystemCtxView {
            ctx: ctx.filesystem(),
            table: &mut table,
        };
        let (fd, _) = view.get_directories().unwrap().remove(0);
        let flags = if follow {
            PathFlags::SYMLINK_FOLLOW
        } else {
            PathFlags::empty()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let borrow = || {
            Resource::<wasmtime_wasi::p2::bindings::filesystem::types::Descriptor>::new_borrow(
                fd.rep(),
            )
        };
        match (
            rt.block_on(view.stat_at(borrow(), flags, path.to_owned())),
            rt.block_on(view.metadata_hash_at(borrow(), flags, path.to_owned())),
        ) {
            (Ok(stat), Ok(hash)) => Ok(format!("{stat:?} {hash:?}")),
            (Err(e), Err(_)) => Err(*e.downcast_ref().expect("an error code")),
            (stat, hash) => {
                panic!("{path}: stat-at and metadata-hash-at disagree: {stat:?} {hash:?}")
            }
        }
    }

    /// What a vetted `stat-at` and `metadata-hash-at` answer from [`look`].
    fn warden_stat(dir: &Path, path: &str, follow: bool) -> Result<String, ErrorCode> {
        match look(&self::dir(dir), path, follow) {
            Ok(Some(seen)) => Ok(format!("{:?} {:?}", seen.stat(), seen.hash())),
            Ok(None) => Err(ErrorCode::NoEntry),
            Err(e) => Err(ErrorCode::from(e)),
        }
    }

    #[test]
    fn a_stat_or_hash_from_the_look_is_what_wasmtime_answers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("grant");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("file"), "twelve bytes").unwrap();
        std::fs::create_dir(root.join("dir")).unwrap();
        std::os::unix::fs::symlink("file", root.join("link")).unwrap();
        std::os::unix::fs::symlink("gone", root.join("dangling")).unwrap();
        std::fs::write(root.join("old"), "").unwrap();
        std::fs::write(tmp.path().join("outside"), "").unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            root.join("pipe"),
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        // Times before the epoch are `none` in WASI: both must say so.
        let before = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: -86_400,
                tv_nsec: 5,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: -1,
                tv_nsec: 999_999_999,
            },
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            root.join("old"),
            &before,
            rustix::fs::AtFlags::empty(),
        )
        .unwrap();
        // A nanosecond before the epoch, wasmtime-wasi says a nanosecond after.
        let cases = [
            ("file", true),
            ("file", false),
            ("dir", false),
            ("link", false),
            ("link", true),
            ("dangling", false),
            ("dangling", true),
            ("pipe", false),
            ("old", false),
            ("missing", false),
            ("file/below", false),
            ("../outside", false),
            ("/etc", false),
            (".", false),
        ];
        for (path, follow) in cases {
            let ours = warden_stat(&root, path, follow);
            let theirs = wasmtime_stat(&root, path, follow);
            assert_eq!(ours, theirs, "{path} (follow {follow})");
        }
        let stat = |path| look(&dir(&root), path, false).unwrap().unwrap().stat();
        assert_eq!(stat("file").size, 12);
        assert_eq!(stat("file").link_count, 1);
        assert!(stat("file").data_modification_timestamp.is_some());
        let modified = stat("old").data_modification_timestamp.unwrap();
        assert_eq!((modified.seconds, modified.nanoseconds), (0, 1));
        assert!(stat("old").data_access_timestamp.is_none());
    }
}
