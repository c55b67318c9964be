//! `warden:tool/log`: lines a tool writes for the audit log.
//!
//! Every tool may log; each line becomes a `log` record with its level.
//! Lines are cut at [`MAX_LINE`] bytes so that a tool cannot flood a record,
//! and the number of lines per task is capped at [`MAX_LINES`]; lines past
//! the cap are counted in the task's end record instead.

use crate::audit::Event;
use crate::bindings::warden::tool::log::{self, Level};
use crate::interpose::{HostState, Recorded, WardenView};
use serde_json::json;
use wasmtime::component::{HasData, Linker};

/// Longest line kept, in bytes.
pub const MAX_LINE: usize = 4096;
/// Most lines recorded per task.
pub const MAX_LINES: u64 = 10_000;

struct Log;

impl HasData for Log {
    type Data<'a> = &'a mut HostState;
}

/// Adds `warden:tool/log` to `linker`.
pub fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    log::add_to_linker::<T, Log>(linker, |t| t.split().1)
}

impl log::Host for &mut HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.log_lines += 1;
        if self.log_lines > MAX_LINES {
            return self.call(Recorded::Capped);
        }
        let mut end = message.len().min(MAX_LINE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        let mut ev = Event::call("warden:tool/log.log").args(json!({
            "level": level,
            "message": &message[..end],
            "truncated": end < message.len(),
        }));
        ev.event = "log";
        self.call(Recorded::Event(ev.outcome("ok")))
    }
}
