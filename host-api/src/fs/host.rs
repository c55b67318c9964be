//! `wasi:filesystem` as the guest sees it: every call checked against the
//! task's grants, then performed by wasmtime-wasi, then recorded.

use super::{Denial, FsState, Op, Resolved, normalize};
use crate::audit::Event;
use crate::interpose::{ArgValue, Guarded, Mode, Ret, Size, debug_arg, no_size, passthrough};
use serde_json::{Value, json};
use std::time::Instant;
use wasmtime::component::Resource;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, Advice, Descriptor, DescriptorFlags, DescriptorStat, DescriptorType,
    DirectoryEntryStream, ErrorCode, Filesize, HostDescriptor, HostDirectoryEntryStream,
    MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};

type View<'a> = WasiFilesystemCtxView<'a>;

debug_arg!(PathFlags, OpenFlags, DescriptorFlags, Advice, NewTimestamp);
no_size!(
    DescriptorFlags,
    DescriptorType,
    DescriptorStat,
    MetadataHashValue,
    Vec<(Resource<Descriptor>, String)>
);

impl crate::interpose::ErrorName for ErrorCode {
    fn error_name(&self) -> &'static str {
        self.name()
    }
}

impl Guarded<'_, View<'_>> {
    /// Records a refusal and returns the error the guest gets.
    fn denied(&mut self, call: &'static str, start: Instant, args: Value, d: Denial) -> FsError {
        self.host.calls += 1;
        let ev = Event::call(call)
            .args(args)
            .resource(d.resource)
            .deny(d.rule)
            .outcome(format!("error:{}", d.code.name()))
            .took(start.elapsed());
        match self.host.record(ev) {
            Ok(()) => d.code.into(),
            Err(e) => FsError::trap(e),
        }
    }

    /// Records a call that passed Warden's check. A `not-permitted` or
    /// `access` error from below means the kernel-backed capability refused
    /// what the lexical check could not see (a symlink out of the grant), so
    /// it is recorded as a denial.
    fn checked<T: Size>(
        &mut self,
        call: &'static str,
        start: Instant,
        args: Value,
        ok: &Resolved,
        r: &FsResult<T>,
    ) -> Result<(), FsError> {
        self.host.calls += 1;
        let rule = FsState::rule_for(&self.host.fs, ok);
        let refused = matches!(r, Err(e) if matches!(e.downcast_ref(), Some(ErrorCode::NotPermitted | ErrorCode::Access)));
        let ev = Event::call(call)
            .args(args)
            .resource(ok.path.clone())
            .outcome(r.outcome().text)
            .took(start.elapsed());
        let ev = if refused {
            ev.deny(format!(
                "{rule}: the capability refused {} (a symlink or path leaving the grant)",
                ok.path
            ))
        } else {
            ev.allow(rule)
        };
        self.host.record(ev).map_err(FsError::trap)
    }

    /// Records a call that changes the filesystem before it is performed:
    /// the write-ahead half of its audit trail.
    fn intent(&mut self, call: &'static str, args: &Value, ok: &Resolved) -> Result<(), FsError> {
        if !ok.writes {
            return Ok(());
        }
        let mut ev = Event::call(call)
            .args(args.clone())
            .resource(ok.path.clone())
            .allow(FsState::rule_for(&self.host.fs, ok));
        ev.event = "call.intent";
        self.host.record(ev).map_err(FsError::trap)
    }

    fn check(&self, fd: &Resource<Descriptor>, path: &str, op: Op) -> Result<Resolved, Denial> {
        self.host.fs.check(fd.rep(), path, op)
    }

    /// Refuses regular files with more than one link: a hard link inside a
    /// grant may be another name for a file outside every grant.
    async fn refuse_hard_links(&mut self, rep: u32, path: &str) -> Result<(), Denial> {
        let stat = HostDescriptor::stat(&mut self.inner, Resource::new_borrow(rep)).await;
        match stat {
            Ok(s) if s.type_ == DescriptorType::RegularFile && s.link_count > 1 => {
                let _ = HostDescriptor::drop(&mut self.inner, Resource::new_own(rep));
                Err(Denial {
                    rule: format!(
                        "{path} has {} hard links and may alias a file outside every fs grant",
                        s.link_count
                    ),
                    resource: path.to_string(),
                    code: ErrorCode::NotPermitted,
                })
            }
            _ => Ok(()),
        }
    }
}

/// Runs one guarded path operation: check, perform, record.
macro_rules! guarded {
    ($self:ident, $call:literal, $args:expr, $check:expr, $perform:expr) => {{
        const CALL: &str = concat!("wasi:filesystem/types.[method]descriptor.", $call);
        let start = Instant::now();
        let args = $args;
        let ok = match $check {
            Ok(ok) => ok,
            Err(d) => return Err($self.denied(CALL, start, args, d)),
        };
        $self.intent(CALL, &args, &ok)?;
        let r = $perform;
        $self.checked(CALL, start, args, &ok, &r)?;
        r
    }};
}

fn opens_for_write(open: OpenFlags, flags: DescriptorFlags) -> bool {
    open.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::EXCLUSIVE)
        || flags.intersects(DescriptorFlags::WRITE | DescriptorFlags::MUTATE_DIRECTORY)
}

passthrough! {
    impl HostDescriptor => View<'_> {
        ["wasi:filesystem/types.[method]descriptor.advise" Each]
        async fn advise(&mut self, fd: Resource<Descriptor>, offset: Filesize, len: Filesize, advice: Advice) -> FsResult<()>;
        ["wasi:filesystem/types.[method]descriptor.sync-data" Each]
        async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()>;
        ["wasi:filesystem/types.[method]descriptor.get-flags" Each]
        async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags>;
        ["wasi:filesystem/types.[method]descriptor.get-type" Each]
        async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorType>;
        ["wasi:filesystem/types.[method]descriptor.read" Summed]
        async fn read(&mut self, fd: Resource<Descriptor>, len: Filesize, offset: Filesize) -> FsResult<(Vec<u8>, bool)>;
        ["wasi:filesystem/types.[method]descriptor.sync" Each]
        async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()>;
        ["wasi:filesystem/types.[method]descriptor.stat" Each]
        async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorStat>;
        ["wasi:filesystem/types.[method]descriptor.is-same-object" Each]
        async fn is_same_object(&mut self, fd: Resource<Descriptor>, other: Resource<Descriptor>) -> wasmtime::Result<bool>;
        ["wasi:filesystem/types.[method]descriptor.metadata-hash" Each]
        async fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<MetadataHashValue>;

        own async fn set_size(&mut self, fd: Resource<Descriptor>, size: Filesize) -> FsResult<()> {
            guarded!(self, "set-size", json!({ "size": size }),
                self.host.fs.check_fd(fd.rep(), Op::Write),
                HostDescriptor::set_size(&mut self.inner, fd, size).await)
        }

        own async fn set_times(&mut self, fd: Resource<Descriptor>, atim: NewTimestamp, mtim: NewTimestamp) -> FsResult<()> {
            guarded!(self, "set-times", json!({ "atim": format!("{atim:?}"), "mtim": format!("{mtim:?}") }),
                self.host.fs.check_fd(fd.rep(), Op::Write),
                HostDescriptor::set_times(&mut self.inner, fd, atim, mtim).await)
        }

        own async fn write(&mut self, fd: Resource<Descriptor>, buf: Vec<u8>, offset: Filesize) -> FsResult<Filesize> {
            const CALL: &str = "wasi:filesystem/types.[method]descriptor.write";
            let start = Instant::now();
            if let Err(d) = self.host.fs.check_fd(fd.rep(), Op::Write) {
                return Err(self.denied(CALL, start, json!({ "len": buf.len(), "offset": offset }), d));
            }
            // Checked here, then recorded like every other stream-like call:
            // summed per descriptor, or one record each at level `full`.
            let args = vec![
                ("fd", ArgValue::Handle(fd.rep())),
                ("buf", ArgValue::Bytes(buf.len() as u64)),
                ("offset", ArgValue::Json(json!(offset))),
            ];
            let r = HostDescriptor::write(&mut self.inner, fd, buf, offset).await;
            self.finish(CALL, Mode::Summed, start, args, r.outcome())
                .map_err(FsError::trap)?;
            r
        }

        own async fn read_directory(&mut self, fd: Resource<Descriptor>) -> FsResult<Resource<DirectoryEntryStream>> {
            let rep = fd.rep();
            let r = guarded!(self, "read-directory", Value::Null,
                self.host.fs.check_fd(rep, Op::Read),
                HostDescriptor::read_directory(&mut self.inner, fd).await);
            if let Ok(s) = &r {
                let name = format!("readdir {}", self.host.name_of(rep));
                self.host.name(s.rep(), name);
            }
            r
        }

        own async fn create_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
            guarded!(self, "create-directory-at", json!({ "path": path }),
                self.check(&fd, &path, Op::Write),
                HostDescriptor::create_directory_at(&mut self.inner, fd, path).await)
        }

        own async fn stat_at(&mut self, fd: Resource<Descriptor>, path_flags: PathFlags, path: String) -> FsResult<DescriptorStat> {
            guarded!(self, "stat-at", json!({ "path": path, "flags": format!("{path_flags:?}") }),
                self.check(&fd, &path, Op::Read),
                HostDescriptor::stat_at(&mut self.inner, fd, path_flags, path).await)
        }

        own async fn set_times_at(&mut self, fd: Resource<Descriptor>, path_flags: PathFlags, path: String, atim: NewTimestamp, mtim: NewTimestamp) -> FsResult<()> {
            guarded!(self, "set-times-at", json!({ "path": path, "flags": format!("{path_flags:?}") }),
                self.check(&fd, &path, Op::Write),
                HostDescriptor::set_times_at(&mut self.inner, fd, path_flags, path, atim, mtim).await)
        }

        own async fn link_at(&mut self, fd: Resource<Descriptor>, old_path_flags: PathFlags, old_path: String, new_descriptor: Resource<Descriptor>, new_path: String) -> FsResult<()> {
            // Both ends must be writable: a link from a read-only grant into
            // a read-write one would make the read-only file writable.
            let check = self
                .check(&fd, &old_path, Op::Write)
                .and_then(|_| self.check(&new_descriptor, &new_path, Op::Write));
            guarded!(self, "link-at", json!({ "old_path": old_path, "new_path": new_path }),
                check,
                HostDescriptor::link_at(&mut self.inner, fd, old_path_flags, old_path, new_descriptor, new_path).await)
        }

        own async fn open_at(&mut self, fd: Resource<Descriptor>, path_flags: PathFlags, path: String, open_flags: OpenFlags, flags: DescriptorFlags) -> FsResult<Resource<Descriptor>> {
            const CALL: &str = "wasi:filesystem/types.[method]descriptor.open-at";
            let start = Instant::now();
            let op = if opens_for_write(open_flags, flags) { Op::Write } else { Op::Read };
            let args = json!({
                "path": path,
                "path_flags": format!("{path_flags:?}"),
                "open_flags": format!("{open_flags:?}"),
                "flags": format!("{flags:?}"),
            });
            let ok = match self.check(&fd, &path, op) {
                Ok(ok) => ok,
                Err(d) => return Err(self.denied(CALL, start, args, d)),
            };
            self.intent(CALL, &args, &ok)?;
            let r = HostDescriptor::open_at(&mut self.inner, fd, path_flags, path, open_flags, flags).await;
            if let Ok(new) = &r {
                let rep = new.rep();
                if let Err(d) = self.refuse_hard_links(rep, &ok.path).await {
                    return Err(self.denied(CALL, start, args, d));
                }
                self.host.fs.insert(rep, &ok);
                self.host.name(rep, ok.path.clone());
            }
            self.checked(CALL, start, args, &ok, &r)?;
            r
        }

        own fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
            let start = Instant::now();
            let rep = fd.rep();
            let r = HostDescriptor::drop(&mut self.inner, fd);
            self.host.fs.remove(rep);
            self.finish("wasi:filesystem/types.[resource-drop]descriptor", Mode::Drop, start, vec![("fd", ArgValue::Handle(rep))], r.outcome())?;
            r
        }

        own async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
            guarded!(self, "readlink-at", json!({ "path": path }),
                self.check(&fd, &path, Op::Read),
                HostDescriptor::readlink_at(&mut self.inner, fd, path).await)
        }

        own async fn remove_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
            guarded!(self, "remove-directory-at", json!({ "path": path }),
                self.check(&fd, &path, Op::Write),
                HostDescriptor::remove_directory_at(&mut self.inner, fd, path).await)
        }

        own async fn rename_at(&mut self, fd: Resource<Descriptor>, old_path: String, new_descriptor: Resource<Descriptor>, new_path: String) -> FsResult<()> {
            let check = self
                .check(&fd, &old_path, Op::Write)
                .and_then(|_| self.check(&new_descriptor, &new_path, Op::Write));
            guarded!(self, "rename-at", json!({ "old_path": old_path, "new_path": new_path }),
                check,
                HostDescriptor::rename_at(&mut self.inner, fd, old_path, new_descriptor, new_path).await)
        }

        own async fn symlink_at(&mut self, fd: Resource<Descriptor>, old_path: String, new_path: String) -> FsResult<()> {
            let check = self.check(&fd, &new_path, Op::Write).and_then(|link| {
                // The target is resolved from the link's directory; one that
                // leaves the grant is refused now rather than on every use.
                let dir = link.path.rsplit_once('/').map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
                let target = normalize(&format!("{dir}/{old_path}"));
                let root = &self.host.fs.grants()[link.grant].guest;
                if old_path.starts_with('/') || !super::within(&target, root) {
                    Err(Denial {
                        rule: format!("symlink target {old_path} leaves fs[{}] {root}", link.grant),
                        resource: link.path,
                        code: ErrorCode::NotPermitted,
                    })
                } else {
                    Ok(link)
                }
            });
            guarded!(self, "symlink-at", json!({ "old_path": old_path, "new_path": new_path }),
                check,
                HostDescriptor::symlink_at(&mut self.inner, fd, old_path, new_path).await)
        }

        own async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
            guarded!(self, "unlink-file-at", json!({ "path": path }),
                self.check(&fd, &path, Op::Write),
                HostDescriptor::unlink_file_at(&mut self.inner, fd, path).await)
        }

        own fn read_via_stream(&mut self, fd: Resource<Descriptor>, offset: Filesize) -> FsResult<Resource<DynInputStream>> {
            let rep = fd.rep();
            let r = guarded!(self, "read-via-stream", json!({ "offset": offset }),
                self.host.fs.check_fd(rep, Op::Read),
                HostDescriptor::read_via_stream(&mut self.inner, fd, offset));
            if let Ok(s) = &r {
                let name = format!("read {}", self.host.name_of(rep));
                self.host.name(s.rep(), name);
            }
            r
        }

        own fn write_via_stream(&mut self, fd: Resource<Descriptor>, offset: Filesize) -> FsResult<Resource<DynOutputStream>> {
            let rep = fd.rep();
            let r = guarded!(self, "write-via-stream", json!({ "offset": offset }),
                self.host.fs.check_fd(rep, Op::Write),
                HostDescriptor::write_via_stream(&mut self.inner, fd, offset));
            if let Ok(s) = &r {
                let name = format!("write {}", self.host.name_of(rep));
                self.host.name(s.rep(), name);
            }
            r
        }

        own fn append_via_stream(&mut self, fd: Resource<Descriptor>) -> FsResult<Resource<DynOutputStream>> {
            let rep = fd.rep();
            let r = guarded!(self, "append-via-stream", Value::Null,
                self.host.fs.check_fd(rep, Op::Write),
                HostDescriptor::append_via_stream(&mut self.inner, fd));
            if let Ok(s) = &r {
                let name = format!("append {}", self.host.name_of(rep));
                self.host.name(s.rep(), name);
            }
            r
        }

        own async fn metadata_hash_at(&mut self, fd: Resource<Descriptor>, path_flags: PathFlags, path: String) -> FsResult<MetadataHashValue> {
            guarded!(self, "metadata-hash-at", json!({ "path": path, "flags": format!("{path_flags:?}") }),
                self.check(&fd, &path, Op::Read),
                HostDescriptor::metadata_hash_at(&mut self.inner, fd, path_flags, path).await)
        }
    }
}

passthrough! {
    impl HostDirectoryEntryStream => View<'_> {
        ["wasi:filesystem/types.[method]directory-entry-stream.read-directory-entry" Summed]
        async fn read_directory_entry(&mut self, stream: Resource<DirectoryEntryStream>) -> FsResult<Option<types::DirectoryEntry>>;
        ["wasi:filesystem/types.[resource-drop]directory-entry-stream" Drop]
        fn drop(&mut self, stream: Resource<DirectoryEntryStream>) -> wasmtime::Result<()>;
    }
}

passthrough! {
    impl types::Host => View<'_> {
        own fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
            types::Host::convert_error_code(&mut self.inner, err)
        }
        ["wasi:filesystem/types.filesystem-error-code" Each]
        fn filesystem_error_code(&mut self, err: Resource<wasmtime_wasi::p2::bindings::io::error::Error>) -> wasmtime::Result<Option<ErrorCode>>;
    }
}

impl preopens::Host for Guarded<'_, View<'_>> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let start = Instant::now();
        let r = preopens::Host::get_directories(&mut self.inner);
        if let Ok(dirs) = &r {
            for (fd, guest) in dirs {
                if let Some(grant) = self.host.fs.grants().iter().position(|g| &g.guest == guest) {
                    let resolved = Resolved {
                        grant,
                        path: guest.clone(),
                        writes: false,
                    };
                    self.host.fs.insert(fd.rep(), &resolved);
                    self.host.name(fd.rep(), guest.clone());
                }
            }
        }
        let dirs: Vec<String> = r.iter().flatten().map(|(_, g)| g.clone()).collect();
        self.finish(
            "wasi:filesystem/preopens.get-directories",
            Mode::Each,
            start,
            vec![("granted", ArgValue::Json(json!(dirs)))],
            r.outcome(),
        )?;
        r
    }
}
