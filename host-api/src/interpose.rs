//! How every host call passes through Warden.
//!
//! wasmtime's generated `add_to_linker::<T, D>` functions take a `D: HasData`
//! whose `Data<'a>` implements the interface's `Host*` traits. Warden passes
//! [`Guarded`]: wasmtime-wasi's own view of the task plus the task's
//! [`HostState`]. Every method of a `Guarded` impl records the call, and the
//! capability-relevant ones check the task's grants before they delegate.
//!
//! Methods that only need recording are written once as a signature inside
//! `passthrough!`; the macro writes the delegation and the record. Methods
//! that decide something (a path inside a grant, an env var) are written by
//! hand in their capability's module.

use crate::audit::{Event, Level};
use crate::cx::TaskCx;
use crate::fs::FsState;
use crate::grant::live::Ended;
use crate::http::HttpState;
use crate::secrets::TaskSecrets;
use crate::sockets::SocketState;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Resource;
use wasmtime_wasi::WasiCtxView;
use wasmtime_wasi_http::WasiHttpCtxView;

/// Per-task state of every capability, kept in the store next to the WASI
/// context, and the task they serve ([`TaskCx`]). Built once, by [`HostState::new`].
#[derive(Debug)]
pub struct HostState {
    /// The task: its records, deadline, grant, policy and approvers.
    pub(crate) cx: Arc<TaskCx>,
    /// Filesystem grants and open descriptors.
    pub(crate) fs: FsState,
    /// `[[http]]` grants and the requests in flight.
    pub(crate) http: HttpState,
    /// `[[tcp]]` rules and what the task's lookups returned.
    pub(crate) sockets: SocketState,
    /// The task's `[[secrets]]` and their values.
    pub(crate) secrets: TaskSecrets,
    /// What each live resource is, in the guest's terms, keyed by its handle.
    pub(crate) names: HashMap<u32, String>,
    /// Summed calls per handle (or, under `None`, the task's interface-level calls),
    /// flushed as one record when the handle is dropped or the task ends.
    tallies: BTreeMap<Option<u32>, Tally>,
    /// Host calls that went through an interposer; only [`HostState::call`] counts.
    calls: u64,
    /// Resource drops among `calls`. wasmtime counts each twice as a host
    /// transition (the `resource.drop` builtin, then the destructor).
    drops: u64,
    /// Lines the tool logged through `warden:tool/log`.
    pub(crate) log_lines: u64,
    /// The end of the grant has been recorded.
    grant_end_recorded: bool,
}

/// How a host call is recorded, once it is counted.
pub(crate) enum Recorded {
    /// As a record of its own.
    Event(Event),
    /// Summed into the tally of `call` on `handle`, recorded when the handle is dropped
    /// or the task ends.
    Tally {
        call: &'static str,
        handle: Option<u32>,
        bytes: u64,
        ok: bool,
        dur: Duration,
    },
    /// Not at all: past a cap the tool was told of (log lines).
    Capped,
}

/// The summed calls on one handle, or the task's interface-level calls: one
/// `call.summary` record when flushed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    /// Calls and failed calls, per WIT name.
    pub calls: BTreeMap<&'static str, (u64, u64)>,
    /// Bytes moved.
    pub bytes: u64,
    /// Host time spent.
    pub dur: Duration,
    /// What the handle was.
    pub resource: Option<String>,
}

impl Tally {
    /// The summary record: `args.calls` maps each WIT name to its count, `args.failed`
    /// (when any failed) to its failures.
    fn event(self, handle: Option<u32>) -> Event {
        let (mut total, mut errors) = (0, 0);
        let mut calls = serde_json::Map::new();
        let mut failed = serde_json::Map::new();
        for (name, (n, e)) in self.calls {
            total += n;
            errors += e;
            calls.insert(name.into(), n.into());
            if e > 0 {
                failed.insert(name.into(), e.into());
            }
        }
        let mut args = json!({ "calls": calls, "bytes": self.bytes, "errors": errors });
        if let Some(h) = handle {
            args["handle"] = h.into();
        }
        if errors > 0 {
            args["failed"] = failed.into();
        }
        let mut ev = Event::new("call.summary")
            .args(args)
            .outcome(if errors == 0 {
                "ok".to_string()
            } else {
                format!("error:{errors}-of-{total}-failed")
            })
            .took(self.dur);
        ev.resource = self.resource;
        ev
    }
}

impl HostState {
    /// The state of the task `cx` with each capability's own: its directories, its HTTP
    /// rules and requests, its sockets and its secrets.
    pub(crate) fn new(
        cx: Arc<TaskCx>,
        fs: FsState,
        http: HttpState,
        sockets: SocketState,
        secrets: TaskSecrets,
    ) -> Self {
        HostState {
            cx,
            fs,
            http,
            sockets,
            secrets,
            names: HashMap::new(),
            tallies: BTreeMap::new(),
            calls: 0,
            drops: 0,
            log_lines: 0,
            grant_end_recorded: false,
        }
    }

    /// The task.
    pub fn cx(&self) -> &TaskCx {
        &self.cx
    }

    /// The task's HTTP state: its requests in flight, which its end closes.
    pub fn http(&self) -> &HttpState {
        &self.http
    }

    /// Host calls that went through an interposer so far, and how many of them were
    /// resource drops (which wasmtime counts twice as host transitions).
    pub fn calls(&self) -> (u64, u64) {
        (self.calls, self.drops)
    }

    /// Counts one host call and records it as `recorded` says: the one place a call is
    /// counted, so that the count in `task.end` and the records agree.
    pub(crate) fn call(&mut self, recorded: Recorded) -> wasmtime::Result<()> {
        self.calls += 1;
        let call = match &recorded {
            Recorded::Event(event) => event.call,
            Recorded::Tally { call, .. } => Some(*call),
            Recorded::Capped => None,
        };
        self.drops += u64::from(call.is_some_and(|c| c.contains("[resource-drop]")));
        match recorded {
            Recorded::Event(event) => self.record(event),
            Recorded::Tally {
                call,
                handle,
                bytes,
                ok,
                dur,
            } => {
                self.tally(call, handle, bytes, ok, dur);
                Ok(())
            }
            Recorded::Capped => Ok(()),
        }
    }

    /// Records one event; an event that cannot be recorded traps the guest,
    /// because a call that cannot be audited must not go on.
    pub fn record(&mut self, event: Event) -> wasmtime::Result<()> {
        self.cx.audit().emit(&event).map_err(|e| {
            wasmtime::Error::msg(format!("audit log write failed, stopping the task: {e:#}"))
        })
    }

    /// Records the task's `task.end`; the receipt says when it is settled.
    pub fn end(&mut self, event: Event) -> wasmtime::Result<crate::audit::Receipt> {
        self.cx.audit().end(&event).map_err(|e| {
            wasmtime::Error::msg(format!("audit log write failed, stopping the task: {e:#}"))
        })
    }

    /// `Ok` while the task's grant holds. When it has ended, the refused
    /// call is counted and recorded as a deny (its name is not known this
    /// early: it is whichever call the guest was making), and the error
    /// ends the task.
    /// `during_call` says whether a host call is being refused (the call
    /// hook) or the task is stopped between calls (an epoch tick).
    pub fn live(&mut self, during_call: bool) -> Result<(), Ended> {
        let Some(Err(ended)) = self.cx.grant_check() else {
            return Ok(());
        };
        if !self.grant_end_recorded {
            self.grant_end_recorded = true;
            let id = self.cx.grant_id().unwrap_or_default();
            let ev = Event::new("call")
                .resource(format!("grant {id}"))
                .deny(ended.to_string())
                .outcome("trap:grant-ended");
            // The task ends either way; a log that cannot take this record
            // fails the task's end record as well.
            let _ = if during_call {
                self.call(Recorded::Event(ev))
            } else {
                self.record(ev)
            };
        }
        Err(ended)
    }

    /// Adds a call to the tally of `handle`.
    fn tally(
        &mut self,
        call: &'static str,
        handle: Option<u32>,
        bytes: u64,
        ok: bool,
        dur: Duration,
    ) {
        let t = self.tallies.entry(handle).or_default();
        // Named once, on the first call: this runs on every stream read.
        if t.calls.is_empty() {
            t.resource = handle.and_then(|h| self.names.get(&h).cloned());
        }
        let (calls, errors) = t.calls.entry(call).or_default();
        *calls += 1;
        *errors += u64::from(!ok);
        t.bytes += bytes;
        t.dur += dur;
    }

    /// Whether calls on `handle` are being summed.
    fn tallied(&self, handle: u32) -> bool {
        self.tallies.contains_key(&Some(handle))
    }

    /// Writes and clears the tally of `handle` (when it is dropped) as one
    /// record, or at task end (with `None`) the tally of every handle left open
    /// and the task's interface-level calls, one record each.
    pub fn flush_tallies(&mut self, handle: Option<u32>) -> wasmtime::Result<()> {
        match handle {
            Some(h) => {
                if let Some(t) = self.tallies.remove(&Some(h)) {
                    self.record(t.event(Some(h)))?;
                }
                self.names.remove(&h);
            }
            None => {
                while let Some((h, t)) = self.tallies.pop_first() {
                    self.record(t.event(h))?;
                }
            }
        }
        Ok(())
    }

    /// Names a resource in records, e.g. `read /workspace/a.txt`.
    pub(crate) fn name(&mut self, rep: u32, name: String) {
        self.names.insert(rep, name);
    }

    /// A short name for a resource handle in records.
    pub(crate) fn name_of(&self, rep: u32) -> String {
        self.names
            .get(&rep)
            .cloned()
            .unwrap_or_else(|| format!("#{rep}"))
    }
}

/// Store data that Warden can interpose on: the WASI context and the
/// per-task host state, borrowed at once.
pub trait WardenView: Send + 'static {
    /// Splits the store data into wasmtime-wasi's view and Warden's state.
    fn split(&mut self) -> (WasiCtxView<'_>, &mut HostState);

    /// Splits the store data into wasmtime-wasi-http's view (whose hooks
    /// are Warden's [`Hooks`](crate::http::Hooks)) and Warden's state.
    fn split_http(&mut self) -> (WasiHttpCtxView<'_>, &mut HostState);
}

/// A capability's wasmtime-wasi view, with the task's host state beside it.
pub struct Guarded<'a, V> {
    /// wasmtime-wasi's implementation, which performs allowed calls.
    pub inner: V,
    /// Grants, names and the audit handle of the task.
    pub host: &'a mut HostState,
}

/// How a passed-through call is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One record per call.
    Each,
    /// Summed per handle (the first resource argument) unless the level is
    /// `full`.
    Summed,
    /// The handle is being dropped: flush its tallies, then record.
    Drop,
    /// Summed per call name for the whole task (polls, pollables, clocks)
    /// unless the level is `full`.
    Interface,
}

impl<V> Guarded<'_, V> {
    /// Records a passed-through call according to `mode` and the audit level.
    pub fn finish(
        &mut self,
        call: &'static str,
        mode: Mode,
        start: Instant,
        args: Vec<(&'static str, ArgValue)>,
        outcome: CallOutcome,
    ) -> wasmtime::Result<()> {
        let dur = start.elapsed();
        let handle = args.iter().find_map(|(_, a)| match a {
            ArgValue::Handle(h) => Some(*h),
            _ => None,
        });
        let calls_level = self.host.cx.audit().level() == Level::Calls;
        // A dropped handle whose calls were summed ends its summary: the drop is
        // its last line rather than a record of its own.
        let closes_tally = mode == Mode::Drop && handle.is_some_and(|h| self.host.tallied(h));
        let summed = matches!(mode, Mode::Summed | Mode::Interface) || closes_tally;
        if summed && calls_level {
            let handle = if mode == Mode::Interface {
                None
            } else {
                handle
            };
            let bytes = outcome.bytes
                + args
                    .iter()
                    .map(|(_, a)| if let ArgValue::Bytes(n) = a { *n } else { 0 })
                    .sum::<u64>();
            self.host.call(Recorded::Tally {
                call,
                handle,
                bytes,
                ok: outcome.ok,
                dur,
            })?;
            return match (closes_tally, handle) {
                (true, Some(h)) => self.host.flush_tallies(Some(h)),
                _ => Ok(()),
            };
        }
        // Named before a drop flushes the handle's tallies and forgets it.
        let resource = handle.map(|h| self.host.name_of(h));
        let mut summary = serde_json::Map::new();
        for (name, a) in args {
            summary.insert(name.to_string(), a.into_json(&self.host.names));
        }
        if let (Mode::Drop, Some(h)) = (mode, handle) {
            self.host.flush_tallies(Some(h))?;
        }
        let mut ev = Event::call(call)
            .args(Value::Object(summary))
            .outcome(outcome.text)
            .took(dur);
        ev.resource = resource;
        self.host.call(Recorded::Event(ev))
    }
}

/// An argument as it appears in a record.
#[derive(Debug, Clone)]
pub enum ArgValue {
    /// A resource handle; named in the record if Warden knows what it is.
    Handle(u32),
    /// A byte buffer: only its length is recorded.
    Bytes(u64),
    /// Anything else, already summarized.
    Json(Value),
}

impl ArgValue {
    fn into_json(self, names: &HashMap<u32, String>) -> Value {
        match self {
            ArgValue::Handle(h) => names
                .get(&h)
                .map(|n| Value::String(n.clone()))
                .unwrap_or_else(|| json!(format!("#{h}"))),
            ArgValue::Bytes(n) => json!({ "len": n }),
            ArgValue::Json(v) => v,
        }
    }
}

/// How an argument type is summarized in a record.
pub trait Arg {
    /// The summary. Never the contents of a buffer.
    fn arg(&self) -> ArgValue;
}

impl<T: 'static> Arg for Resource<T> {
    fn arg(&self) -> ArgValue {
        ArgValue::Handle(self.rep())
    }
}

impl Arg for Vec<u8> {
    fn arg(&self) -> ArgValue {
        ArgValue::Bytes(self.len() as u64)
    }
}

impl<T: 'static> Arg for Vec<Resource<T>> {
    fn arg(&self) -> ArgValue {
        ArgValue::Json(json!({ "count": self.len() }))
    }
}

macro_rules! scalar_arg {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn arg(&self) -> ArgValue {
                ArgValue::Json(json!(self))
            }
        }
    )*};
}
scalar_arg!(u8, u16, u32, u64, i32, i64, bool, String);

/// Summarizes types whose `Debug` form is short and holds no data, such as
/// flags, enums and addresses.
macro_rules! debug_arg {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::interpose::Arg for $t {
            fn arg(&self) -> $crate::interpose::ArgValue {
                $crate::interpose::ArgValue::Json(serde_json::Value::String(format!("{:?}", self)))
            }
        }
    )*};
}
pub(crate) use debug_arg;

/// What came of a call, for its record.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// `ok`, `error:<code>` or `trap:<message>`.
    pub text: String,
    /// Whether the call succeeded.
    pub ok: bool,
    /// Bytes the call returned to the guest.
    pub bytes: u64,
}

impl CallOutcome {
    /// A successful call that returned `bytes` bytes.
    pub fn ok(bytes: u64) -> Self {
        CallOutcome {
            text: "ok".into(),
            ok: true,
            bytes,
        }
    }

    /// A failed call.
    pub fn err(text: String) -> Self {
        CallOutcome {
            text,
            ok: false,
            bytes: 0,
        }
    }

    /// A call that trapped the guest.
    pub fn trap(e: &wasmtime::Error) -> Self {
        CallOutcome::err(format!("trap:{e}"))
    }
}

/// The result type of a host function: how it reads in a record, and how
/// an audit failure becomes a trap of that type.
pub trait Ret: Sized {
    /// The outcome of the call.
    fn outcome(&self) -> CallOutcome;
    /// A trap in this result type.
    fn trap(e: wasmtime::Error) -> Self;
}

/// The size of a successful result, for byte tallies.
pub trait Size {
    /// Bytes the guest received.
    fn size(&self) -> u64 {
        0
    }
}

impl Size for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

macro_rules! no_size {
    ($($t:ty),* $(,)?) => {$( impl $crate::interpose::Size for $t {} )*};
}
pub(crate) use no_size;
no_size!(
    (),
    bool,
    u8,
    u16,
    u64,
    u32,
    String,
    Vec<u32>,
    Vec<String>,
    Vec<(String, String)>
);
impl<T: 'static> Size for Resource<T> {}
impl<T> Size for Option<T> {}
impl Size for (u64, u64) {}
impl Size for (Vec<u8>, bool) {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
}

impl<T: Size> Ret for wasmtime::Result<T> {
    fn outcome(&self) -> CallOutcome {
        match self {
            Ok(v) => CallOutcome::ok(v.size()),
            Err(e) => CallOutcome::trap(e),
        }
    }
    fn trap(e: wasmtime::Error) -> Self {
        Err(e)
    }
}

/// A WIT `error-code` enum, named in records by its WIT case name.
pub trait ErrorName: std::error::Error + Send + Sync + 'static {
    /// The WIT name, e.g. `not-permitted`.
    fn error_name(&self) -> &'static str;
}

impl<T: Size, E: ErrorName> Ret for Result<T, wasmtime_wasi::TrappableError<E>> {
    fn outcome(&self) -> CallOutcome {
        match self {
            Ok(v) => CallOutcome::ok(v.size()),
            Err(e) => match e.downcast_ref() {
                Some(code) => CallOutcome::err(format!("error:{}", code.error_name())),
                None => CallOutcome::err(format!("trap:{e}")),
            },
        }
    }
    fn trap(e: wasmtime::Error) -> Self {
        Err(wasmtime_wasi::TrappableError::trap(e))
    }
}

/// Splits the store data into a capability's view of wasmtime-wasi and the
/// task's host state: the getter every capability passes to its generated
/// `add_to_linker`.
pub fn guarded<'a, T: WardenView, V>(
    t: &'a mut T,
    view: impl FnOnce(WasiCtxView<'a>) -> V,
) -> Guarded<'a, V> {
    let (wasi, host) = t.split();
    Guarded {
        inner: view(wasi),
        host,
    }
}

/// Records a passed-through call's arguments as `(name, ArgValue)` pairs.
macro_rules! args {
    ($($a:ident),*) => {
        vec![$( (stringify!($a), $crate::interpose::Arg::arg(&$a)) ),*]
    };
}
pub(crate) use args;

/// Writes `Host*` trait methods that delegate to wasmtime-wasi and record
/// the call. Each method is `[ "wit-name" Mode ] (async)? fn name(...) -> Ret;`;
/// `own fn ... { ... }` is a method written by hand that is kept as it is.
macro_rules! passthrough {
    (impl $trait:path => $view:ty { $($body:tt)* }) => {
        impl $trait for $crate::interpose::Guarded<'_, $view> {
            $crate::interpose::passthrough!(@m $trait, $view; $($body)*);
        }
    };
    (@m $trait:path, $view:ty; ) => {};
    (@m $trait:path, $view:ty; own $item:item $($rest:tt)*) => {
        $item
        $crate::interpose::passthrough!(@m $trait, $view; $($rest)*);
    };
    (@m $trait:path, $view:ty; [$wit:literal $mode:ident] async fn $f:ident(&mut self $(, $a:ident : $t:ty)* $(,)?) -> $r:ty; $($rest:tt)*) => {
        async fn $f(&mut self $(, $a: $t)*) -> $r {
            let start = std::time::Instant::now();
            let args = $crate::interpose::args!($($a),*);
            let r: $r = <$view as $trait>::$f(&mut self.inner $(, $a)*).await;
            let outcome = $crate::interpose::Ret::outcome(&r);
            if let Err(e) = self.finish($wit, $crate::interpose::Mode::$mode, start, args, outcome) {
                return $crate::interpose::Ret::trap(e);
            }
            r
        }
        $crate::interpose::passthrough!(@m $trait, $view; $($rest)*);
    };
    (@m $trait:path, $view:ty; [$wit:literal $mode:ident] fn $f:ident(&mut self $(, $a:ident : $t:ty)* $(,)?) -> $r:ty; $($rest:tt)*) => {
        fn $f(&mut self $(, $a: $t)*) -> $r {
            let start = std::time::Instant::now();
            let args = $crate::interpose::args!($($a),*);
            let r: $r = <$view as $trait>::$f(&mut self.inner $(, $a)*);
            let outcome = $crate::interpose::Ret::outcome(&r);
            if let Err(e) = self.finish($wit, $crate::interpose::Mode::$mode, start, args, outcome) {
                return $crate::interpose::Ret::trap(e);
            }
            r
        }
        $crate::interpose::passthrough!(@m $trait, $view; $($rest)*);
    };
}
pub(crate) use passthrough;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventSink, Record, TaskMeta};
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Capture(Mutex<Vec<Value>>);

    impl EventSink for Capture {
        fn emit(&self, record: &Record<'_>) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(serde_json::to_value(record)?);
            Ok(())
        }
    }

    fn state(sink: Arc<dyn EventSink>) -> HostState {
        let meta = TaskMeta {
            attempt: None,
            host: "h".into(),
            agent: None,
            task: "t".into(),
            parent: None,
            tool: "x".into(),
            component: "blake3:00".into(),
            mcp: None,
        };
        let audit = crate::audit::Audit::new(meta, sink, Level::Calls);
        let cx = Arc::new(TaskCx::new(audit, Instant::now()));
        HostState::new(
            cx,
            FsState::default(),
            HttpState::default(),
            SocketState::default(),
            TaskSecrets::default(),
        )
    }

    #[test]
    fn tallies_sum_per_handle_and_flush_on_drop() {
        let sink = Arc::new(Capture::default());
        let mut s = state(sink.clone());
        s.name(7, "read /ro/a".into());
        s.tally("r", Some(7), 10, true, Duration::from_nanos(5));
        s.tally("r", Some(7), 5, false, Duration::from_nanos(5));
        s.tally("stat", Some(7), 0, true, Duration::from_nanos(5));
        s.tally("r", Some(8), 1, true, Duration::ZERO);
        s.tally("poll", None, 0, true, Duration::ZERO);
        s.tally("clock", None, 0, true, Duration::ZERO);
        s.flush_tallies(Some(7)).unwrap();
        let got = sink.0.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "one record for the handle: {got:#?}");
        assert_eq!(got[0]["event"], "call.summary");
        assert_eq!(got[0]["resource"], "read /ro/a");
        assert_eq!(got[0]["args"]["calls"], json!({ "r": 2, "stat": 1 }));
        assert_eq!(got[0]["args"]["failed"], json!({ "r": 1 }));
        assert_eq!(got[0]["args"]["bytes"], 15);
        assert_eq!(got[0]["args"]["handle"], 7);
        assert_eq!(got[0]["outcome"], "error:1-of-3-failed");
        assert_eq!(got[0]["dur_ns"], 15);
        assert!(!s.names.contains_key(&7), "a dropped handle is forgotten");
        s.flush_tallies(None).unwrap();
        let got = sink.0.lock().unwrap().clone();
        assert_eq!(
            got.len(),
            3,
            "the interface-level calls, then handle 8: {got:#?}"
        );
        assert_eq!(got[1]["args"]["calls"], json!({ "clock": 1, "poll": 1 }));
        assert!(got[1]["args"].get("handle").is_none() && got[1]["args"].get("failed").is_none());
        assert_eq!(got[1]["outcome"], "ok");
        assert_eq!(got[2]["args"]["handle"], 8);
        assert!(s.tallies.is_empty());
    }

    #[test]
    fn a_failing_sink_traps_the_call() {
        struct Broken;
        impl EventSink for Broken {
            fn emit(&self, _: &Record<'_>) -> anyhow::Result<()> {
                anyhow::bail!("disk full")
            }
        }
        let mut s = state(Arc::new(Broken));
        let err = s.record(Event::call("x")).unwrap_err();
        assert!(format!("{err:#}").contains("disk full"), "{err:#}");
    }
}
