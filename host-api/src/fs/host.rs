//! `wasi:filesystem` as the guest sees it: every call checked against the
//! task's grants, approved where a gate asks, then performed by
//! wasmtime-wasi, then recorded.

use super::open::{self, Failed, Opened, Plan};
use super::{Denial, FsState, Op, Resolved, normalize};
use crate::approval::{ApprovalKind, Question};
use crate::audit::Event;
use crate::interpose::{
    ArgValue, Guarded, Mode, Recorded, Ret, Size, debug_arg, no_size, passthrough,
};
use crate::policy::CallKind;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::Resource;
use wasmtime_wasi::FsPerms;
use wasmtime_wasi::filesystem::{self as wfs, WasiFilesystemCtxView};
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
        let ev = Event::call(call)
            .args(args)
            .resource(d.resource)
            .deny(d.rule)
            .outcome(format!("error:{}", d.code.name()))
            .took(start.elapsed());
        match self.host.call(Recorded::Event(ev)) {
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
        self.host.call(Recorded::Event(ev)).map_err(FsError::trap)
    }

    /// Asks the task's policies about a call the grant allowed, for each path it
    /// touches; a denial refuses it with `access` and a deny record whose rule is the
    /// policy's message.
    fn policy(
        &mut self,
        call: &'static str,
        start: Instant,
        args: &Value,
        ok: &Resolved,
    ) -> Result<(), FsError> {
        if !self.host.cx.task_policy().is_active() {
            return Ok(());
        }
        let kind = if ok.writes {
            CallKind::FsWrite
        } else {
            CallKind::FsRead
        };
        for path in std::iter::once(&ok.path).chain(&ok.other) {
            if let Err(denied) = self
                .host
                .cx
                .task_policy()
                .check(call, kind, Some(path), None)
            {
                let denial = Denial {
                    rule: denied.message(),
                    resource: path.clone(),
                    code: ErrorCode::Access,
                };
                return Err(self.denied(call, start, args.clone(), denial));
            }
        }
        Ok(())
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

    /// The approval gate a change falls under, if it asks: reads never do,
    /// nor writes through a descriptor whose open was approved.
    fn gate(&self, ok: &Resolved) -> Option<String> {
        if !ok.writes || ok.through_writable {
            return None;
        }
        let mut paths = vec![ok.path.as_str()];
        paths.extend(ok.other.as_deref());
        self.host
            .cx
            .task_approvals()
            .fs_gate(&paths)
            .map(str::to_owned)
    }

    /// Asks the task's approver about a gated change, before its intent is
    /// recorded; unless the answer is yes, the change is refused with
    /// `access` and a deny record saying who refused it.
    async fn approve(
        &mut self,
        call: &'static str,
        start: Instant,
        args: &Value,
        ok: &mut Resolved,
    ) -> Result<(), FsError> {
        let Some(gate) = self.gate(ok) else {
            return Ok(());
        };
        let mut rule = FsState::rule_for(&self.host.fs, ok);
        if self.host.fs.grants()[ok.grant].guest != gate {
            rule = format!("{rule} (approval required for {gate})");
        }
        let resource = match &ok.other {
            Some(from) => format!("{from} -> {}", ok.path),
            None => ok.path.clone(),
        };
        let question = Question {
            call,
            kind: ApprovalKind::FsWrite,
            resource,
            rule,
            action: action(call, ok),
        };
        // Cloned: the answer is awaited while the store's data is lent out.
        let approvals = self.host.cx.task_approvals().clone();
        let asked = approvals.ask(question).await;
        self.host.record(asked.event).map_err(FsError::trap)?;
        if asked.approved {
            ok.approved = Some(asked.rule);
            return Ok(());
        }
        let denial = Denial {
            rule: asked.rule,
            resource: ok.path.clone(),
            code: ErrorCode::Access,
        };
        Err(self.denied(call, start, args.clone(), denial))
    }

    /// For calls that cannot wait (wasmtime-wasi's synchronous ones): a
    /// gated change that would ask is refused. Only a descriptor opened for
    /// writing, whose open asked, can write through a stream, so this
    /// refuses nothing wasmtime-wasi would have allowed.
    fn unasked(
        &mut self,
        call: &'static str,
        start: Instant,
        args: &Value,
        ok: &Resolved,
    ) -> Result<(), FsError> {
        let Some(gate) = self.gate(ok) else {
            return Ok(());
        };
        let denial = Denial {
            rule: format!(
                "{} requires approval for changes under {gate}, and {call} cannot wait for one; open the file for writing first",
                FsState::rule_for(&self.host.fs, ok)
            ),
            resource: ok.path.clone(),
            code: ErrorCode::Access,
        };
        Err(self.denied(call, start, args.clone(), denial))
    }

    fn check(&self, fd: &Resource<Descriptor>, path: &str, op: Op) -> Result<Resolved, Denial> {
        self.host.fs.check(fd.rep(), path, op)
    }

    /// Records a call that stopped before it was performed, and returns the
    /// error the guest gets.
    fn stopped(
        &mut self,
        call: &'static str,
        start: Instant,
        args: Value,
        ok: &Resolved,
        stop: Stop,
    ) -> FsError {
        match stop {
            Stop::Failed(e) => {
                let r: FsResult<()> = Err(e);
                match (self.checked(call, start, args, ok, &r), r) {
                    (Err(trap), _) => trap,
                    (Ok(()), Err(e)) => e,
                    (Ok(()), Ok(())) => unreachable!("built as an error"),
                }
            }
            Stop::Refused(d) => self.denied(call, start, args, d),
            Stop::Recorded(e) => e,
        }
    }

    /// The host directory behind the descriptor `fd`, and its permissions.
    fn dir_of(&self, fd: u32) -> Result<(Arc<std::fs::File>, FsPerms), FsError> {
        match self
            .inner
            .table
            .get(&Resource::<Descriptor>::new_borrow(fd))?
        {
            wfs::Descriptor::Dir(d) => Ok((d.dir.clone(), d.perms)),
            wfs::Descriptor::File(_) => Err(ErrorCode::NotDirectory.into()),
        }
    }

    /// Looks at `rel` under the directory `fd` through its capability and
    /// refuses what [`open::vet`] refuses, before the call acts on it. `shown`
    /// is the guest path, for the record. Nothing there passes: the call then
    /// fails (or creates) as it would have.
    async fn vet_path(
        &mut self,
        fd: u32,
        rel: &str,
        shown: &str,
        follow: bool,
    ) -> Result<Option<open::Seen>, Stop> {
        let (dir, _) = self.dir_of(fd).map_err(Stop::Failed)?;
        let special = self.host.fs.special_of(fd);
        let rel = rel.to_owned();
        let seen = blocking(special, move || Ok(open::look(&dir, &rel, follow)?))
            .await
            .map_err(|f| Stop::from_failed(f, shown))?;
        if let Some(seen) = &seen {
            open::vet(seen, shown, special).map_err(|rule| Stop::refused(rule, shown))?;
        }
        Ok(seen)
    }

    /// Opens a path that passed Warden's check and policy: looks first, asks
    /// the approver, records the intent, opens without truncating or waiting,
    /// checks what it opened, and only then truncates and hands it over.
    #[allow(clippy::too_many_arguments)]
    async fn open_vetted(
        &mut self,
        call: &'static str,
        start: Instant,
        args: &Value,
        ok: &mut Resolved,
        fd: u32,
        path_flags: PathFlags,
        path: &str,
        open_flags: OpenFlags,
        flags: DescriptorFlags,
    ) -> Result<Resource<Descriptor>, Stop> {
        let (dir, perms) = self.dir_of(fd).map_err(Stop::Failed)?;
        let plan = Plan::new(path_flags, open_flags, flags, !perms.write_not_permitted())
            .map_err(|code| Stop::Failed(code.into()))?;
        let seen = if plan.exclusive() {
            // Whatever is there makes the open fail untouched; what it creates is new.
            None
        } else {
            self.vet_path(fd, path, &ok.path, plan.follow).await?
        };
        self.approve(call, start, args, ok)
            .await
            .map_err(Stop::Recorded)?;
        self.intent(call, args, ok).map_err(Stop::Recorded)?;
        let special = self.host.fs.special_of(fd);
        let mode = plan.mode;
        let (rel, shown) = (path.to_owned(), ok.path.clone());
        let opened = blocking(special, move || {
            open::open(&dir, &rel, &shown, &plan, seen, special)
        })
        .await
        .map_err(|f| Stop::from_failed(f, &ok.path))?;
        // Its calls run where its grant's do: on this thread, or off it if special.
        let descriptor = match opened {
            Opened::Dir(f) => wfs::Descriptor::Dir(wfs::Dir::new(f, perms, mode, !special)),
            Opened::File(f) => wfs::Descriptor::File(wfs::File::new(f, perms, mode, !special)),
        };
        self.inner
            .table
            .push(descriptor)
            .map_err(|e| Stop::Failed(e.into()))
    }
}

/// Why a guarded call stopped before it was performed.
enum Stop {
    /// An error to record as the call's outcome.
    Failed(FsError),
    /// Warden refuses it: a deny record.
    Refused(Denial),
    /// Already recorded (a policy's or an approver's refusal, a failed record).
    Recorded(FsError),
}

impl Stop {
    fn refused(rule: String, path: &str) -> Stop {
        Stop::Refused(Denial {
            rule,
            resource: path.to_owned(),
            code: ErrorCode::NotPermitted,
        })
    }

    fn from_failed(f: Failed, path: &str) -> Stop {
        match f {
            Failed::Code(code) => Stop::Failed(code.into()),
            Failed::Refused(rule) => Stop::refused(rule, path),
        }
    }
}

/// Runs a filesystem call on this thread, or on tokio's blocking pool when
/// `off_thread` (a `special` grant), where one that blocks stalls nothing
/// else and the task's timeout still fires.
async fn blocking<R: Send + 'static>(
    off_thread: bool,
    f: impl FnOnce() -> Result<R, Failed> + Send + 'static,
) -> Result<R, Failed> {
    if !off_thread {
        return f();
    }
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        // It panicked, or the runtime is shutting down: the call did not happen.
        Err(_) => Err(Failed::Code(ErrorCode::Io)),
    }
}

/// Runs one guarded path operation: check, approve where a gate asks,
/// record the intent of a change, perform, record. `sync` is for the calls
/// that cannot wait for an approver.
macro_rules! guarded {
    ($self:ident, $call:literal, $args:expr, $check:expr, $perform:expr) => {{
        const CALL: &str = concat!("wasi:filesystem/types.[method]descriptor.", $call);
        let start = Instant::now();
        let args = $args;
        let mut ok = match $check {
            Ok(ok) => ok,
            Err(d) => return Err($self.denied(CALL, start, args, d)),
        };
        $self.policy(CALL, start, &args, &ok)?;
        $self.approve(CALL, start, &args, &mut ok).await?;
        $self.intent(CALL, &args, &ok)?;
        let r = $perform;
        $self.checked(CALL, start, args, &ok, &r)?;
        r
    }};
    // `vet`: the file acted on (a link's source, else the path) is looked at
    // through the capability, and refused if it must be, before the call;
    // `$seen` is what was seen there, if anything.
    ($self:ident, $call:literal, $args:expr, $check:expr, vet($fd:expr, $rel:expr, $follow:expr) as $seen:pat, $perform:expr) => {{
        const CALL: &str = concat!("wasi:filesystem/types.[method]descriptor.", $call);
        let start = Instant::now();
        let args = $args;
        let mut ok = match $check {
            Ok(ok) => ok,
            Err(d) => return Err($self.denied(CALL, start, args, d)),
        };
        $self.policy(CALL, start, &args, &ok)?;
        let shown = ok.other.clone().unwrap_or_else(|| ok.path.clone());
        let $seen = match $self.vet_path($fd, $rel, &shown, $follow).await {
            Ok(seen) => seen,
            Err(stop) => return Err($self.stopped(CALL, start, args, &ok, stop)),
        };
        $self.approve(CALL, start, &args, &mut ok).await?;
        $self.intent(CALL, &args, &ok)?;
        let r = $perform;
        $self.checked(CALL, start, args, &ok, &r)?;
        r
    }};
    (sync $self:ident, $call:literal, $args:expr, $check:expr, $perform:expr) => {{
        const CALL: &str = concat!("wasi:filesystem/types.[method]descriptor.", $call);
        let start = Instant::now();
        let args = $args;
        let ok = match $check {
            Ok(ok) => ok,
            Err(d) => return Err($self.denied(CALL, start, args, d)),
        };
        $self.policy(CALL, start, &args, &ok)?;
        $self.unasked(CALL, start, &args, &ok)?;
        $self.intent(CALL, &args, &ok)?;
        let r = $perform;
        $self.checked(CALL, start, args, &ok, &r)?;
        r
    }};
}

/// What a change does, for an approval's summary: `open /rw/a for writing`.
fn action(call: &str, ok: &Resolved) -> String {
    let path = &ok.path;
    let from = ok.other.as_deref().unwrap_or("?");
    match call.rsplit('.').next().unwrap_or(call) {
        "open-at" => format!("open {path} for writing"),
        "create-directory-at" => format!("create the directory {path}"),
        "remove-directory-at" => format!("remove the directory {path}"),
        "unlink-file-at" => format!("delete {path}"),
        "rename-at" => format!("rename {from} to {path}"),
        "link-at" => format!("hard-link {from} as {path}"),
        "symlink-at" => format!("create the symlink {path}"),
        "set-times" | "set-times-at" => format!("change the times of {path}"),
        "set-size" => format!("resize {path}"),
        _ => format!("write to {path}"),
    }
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
        ["wasi:filesystem/types.[method]descriptor.get-flags" Summed]
        async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags>;
        ["wasi:filesystem/types.[method]descriptor.get-type" Summed]
        async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorType>;
        ["wasi:filesystem/types.[method]descriptor.read" Summed]
        async fn read(&mut self, fd: Resource<Descriptor>, len: Filesize, offset: Filesize) -> FsResult<(Vec<u8>, bool)>;
        ["wasi:filesystem/types.[method]descriptor.sync" Each]
        async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()>;
        ["wasi:filesystem/types.[method]descriptor.stat" Summed]
        async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorStat>;
        ["wasi:filesystem/types.[method]descriptor.is-same-object" Each]
        async fn is_same_object(&mut self, fd: Resource<Descriptor>, other: Resource<Descriptor>) -> wasmtime::Result<bool>;
        ["wasi:filesystem/types.[method]descriptor.metadata-hash" Summed]
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
            // Summarized only for a record: this is the hottest write path.
            let summary = || json!({ "len": buf.len(), "offset": offset });
            let mut ok = match self.host.fs.check_fd(fd.rep(), Op::Write) {
                Ok(ok) => ok,
                Err(d) => return Err(self.denied(CALL, start, summary(), d)),
            };
            if self.host.cx.task_policy().is_active() {
                self.policy(CALL, start, &summary(), &ok)?;
            }
            if self.gate(&ok).is_some() {
                self.approve(CALL, start, &summary(), &mut ok).await?;
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
            let follow = path_flags.contains(PathFlags::SYMLINK_FOLLOW);
            guarded!(self, "stat-at", json!({ "path": path, "flags": format!("{path_flags:?}") }),
                self.check(&fd, &path, Op::Read),
                vet(fd.rep(), &path, follow) as seen,
                seen.map(|seen| seen.stat()).ok_or_else(|| ErrorCode::NoEntry.into()))
        }

        own async fn set_times_at(&mut self, fd: Resource<Descriptor>, path_flags: PathFlags, path: String, atim: NewTimestamp, mtim: NewTimestamp) -> FsResult<()> {
            let follow = path_flags.contains(PathFlags::SYMLINK_FOLLOW);
            guarded!(self, "set-times-at", json!({ "path": path, "flags": format!("{path_flags:?}") }),
                self.check(&fd, &path, Op::Write),
                vet(fd.rep(), &path, follow) as _,
                HostDescriptor::set_times_at(&mut self.inner, fd, path_flags, path, atim, mtim).await)
        }

        own async fn link_at(&mut self, fd: Resource<Descriptor>, old_path_flags: PathFlags, old_path: String, new_descriptor: Resource<Descriptor>, new_path: String) -> FsResult<()> {
            // Both ends must be writable: a link from a read-only grant into
            // a read-write one would make the read-only file writable.
            let check = self.check(&fd, &old_path, Op::Write).and_then(|old| {
                let mut new = self.check(&new_descriptor, &new_path, Op::Write)?;
                new.other = Some(old.path);
                Ok(new)
            });
            guarded!(self, "link-at", json!({ "old_path": old_path, "new_path": new_path }),
                check,
                vet(fd.rep(), &old_path, false) as _,
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
            let mut ok = match self.check(&fd, &path, op) {
                Ok(ok) => ok,
                Err(d) => return Err(self.denied(CALL, start, args, d)),
            };
            self.policy(CALL, start, &args, &ok)?;
            // Performed by Warden rather than wasmtime-wasi, which opens first
            // and truncates in the open.
            match self.open_vetted(CALL, start, &args, &mut ok, fd.rep(), path_flags, &path, open_flags, flags).await {
                Ok(new) => {
                    let rep = new.rep();
                    self.host.fs.insert(rep, &ok);
                    self.host.name(rep, ok.path.clone());
                    let r = Ok(new);
                    self.checked(CALL, start, args, &ok, &r)?;
                    r
                }
                Err(stop) => Err(self.stopped(CALL, start, args, &ok, stop)),
            }
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
            let check = self.check(&fd, &old_path, Op::Write).and_then(|old| {
                let mut new = self.check(&new_descriptor, &new_path, Op::Write)?;
                new.other = Some(old.path);
                Ok(new)
            });
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
            let r = guarded!(sync self, "read-via-stream", json!({ "offset": offset }),
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
            let r = guarded!(sync self, "write-via-stream", json!({ "offset": offset }),
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
            let r = guarded!(sync self, "append-via-stream", Value::Null,
                self.host.fs.check_fd(rep, Op::Write),
                HostDescriptor::append_via_stream(&mut self.inner, fd));
            if let Ok(s) = &r {
                let name = format!("append {}", self.host.name_of(rep));
                self.host.name(s.rep(), name);
            }
            r
        }

        own async fn metadata_hash_at(&mut self, fd: Resource<Descriptor>, path_flags: PathFlags, path: String) -> FsResult<MetadataHashValue> {
            let follow = path_flags.contains(PathFlags::SYMLINK_FOLLOW);
            guarded!(self, "metadata-hash-at", json!({ "path": path, "flags": format!("{path_flags:?}") }),
                self.check(&fd, &path, Op::Read),
                vet(fd.rep(), &path, follow) as seen,
                seen.map(|seen| seen.hash()).ok_or_else(|| ErrorCode::NoEntry.into()))
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
        // Warden's own preopens, opened through the grants' capabilities
        // (`FsState::open`); the WasiCtx holds none.
        let r = self.host.fs.push_preopens(self.inner.table);
        if let Ok(dirs) = &r {
            for (fd, guest) in dirs {
                if let Some(grant) = self.host.fs.grants().iter().position(|g| &g.guest == guest) {
                    let resolved = Resolved::new(grant, guest.clone(), false);
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
