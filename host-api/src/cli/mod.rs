//! `wasi:cli` stdio, exit and terminals: what the runtime passes, recorded.
//!
//! Stdin, stdout and stderr are pipes the runtime sets up per task (see
//! [`crate::limits`] for the output cap); a tool never reaches the host's
//! terminal. Each stream is named in the records (`stdin`, `stdout`,
//! `stderr`) so that their per-stream summaries say what they were.

use crate::interpose::{Guarded, WardenView, debug_arg, guarded, passthrough};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::cli::WasiCliCtxView;
use wasmtime_wasi::p2::bindings::cli::{
    exit, stderr, stdin, stdout, terminal_input, terminal_output, terminal_stderr, terminal_stdin,
    terminal_stdout,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

type View<'a> = WasiCliCtxView<'a>;

debug_arg!(Result<(), ()>);

/// `wasi:cli` interfaces see the task through this view; `env` shares it.
pub(crate) struct Cli;

impl HasData for Cli {
    type Data<'a> = Guarded<'a, WasiCliCtxView<'a>>;
}

pub(crate) fn view<T: WardenView>(t: &mut T) -> Guarded<'_, WasiCliCtxView<'_>> {
    guarded(t, |w| WasiCliCtxView {
        ctx: w.ctx.cli(),
        table: w.table,
    })
}

/// Adds `wasi:cli/{exit,stdin,stdout,stderr,terminal-*}` to `linker`.
pub fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let l = linker;
    exit::add_to_linker::<T, Cli>(l, view::<T>)?;
    stdin::add_to_linker::<T, Cli>(l, view::<T>)?;
    stdout::add_to_linker::<T, Cli>(l, view::<T>)?;
    stderr::add_to_linker::<T, Cli>(l, view::<T>)?;
    terminal_input::add_to_linker::<T, Cli>(l, view::<T>)?;
    terminal_output::add_to_linker::<T, Cli>(l, view::<T>)?;
    terminal_stdin::add_to_linker::<T, Cli>(l, view::<T>)?;
    terminal_stdout::add_to_linker::<T, Cli>(l, view::<T>)?;
    terminal_stderr::add_to_linker::<T, Cli>(l, view::<T>)?;
    Ok(())
}

/// Names a new stdio stream for the records.
macro_rules! named_stream {
    ($self:ident, $call:literal, $name:literal, $r:expr) => {{
        let start = std::time::Instant::now();
        let r = $r;
        if let Ok(s) = &r {
            $self.host.name(s.rep(), $name.to_string());
        }
        let outcome = crate::interpose::Ret::outcome(&r);
        $self.finish(
            $call,
            crate::interpose::Mode::Interface,
            start,
            vec![],
            outcome,
        )?;
        r
    }};
}

impl stdin::Host for Guarded<'_, View<'_>> {
    fn get_stdin(&mut self) -> wasmtime::Result<Resource<DynInputStream>> {
        named_stream!(
            self,
            "wasi:cli/stdin.get-stdin",
            "stdin",
            stdin::Host::get_stdin(&mut self.inner)
        )
    }
}

impl stdout::Host for Guarded<'_, View<'_>> {
    fn get_stdout(&mut self) -> wasmtime::Result<Resource<DynOutputStream>> {
        named_stream!(
            self,
            "wasi:cli/stdout.get-stdout",
            "stdout",
            stdout::Host::get_stdout(&mut self.inner)
        )
    }
}

impl stderr::Host for Guarded<'_, View<'_>> {
    fn get_stderr(&mut self) -> wasmtime::Result<Resource<DynOutputStream>> {
        named_stream!(
            self,
            "wasi:cli/stderr.get-stderr",
            "stderr",
            stderr::Host::get_stderr(&mut self.inner)
        )
    }
}

passthrough! {
    impl exit::Host => View<'_> {
        ["wasi:cli/exit.exit" Each]
        fn exit(&mut self, status: Result<(), ()>) -> wasmtime::Result<()>;
        ["wasi:cli/exit.exit-with-code" Each]
        fn exit_with_code(&mut self, status_code: u8) -> wasmtime::Result<()>;
    }
}

impl terminal_input::Host for Guarded<'_, View<'_>> {}
impl terminal_output::Host for Guarded<'_, View<'_>> {}

passthrough! {
    impl terminal_input::HostTerminalInput => View<'_> {
        ["wasi:cli/terminal-input.[resource-drop]terminal-input" Each]
        fn drop(&mut self, r: Resource<terminal_input::TerminalInput>) -> wasmtime::Result<()>;
    }
}

passthrough! {
    impl terminal_output::HostTerminalOutput => View<'_> {
        ["wasi:cli/terminal-output.[resource-drop]terminal-output" Each]
        fn drop(&mut self, r: Resource<terminal_output::TerminalOutput>) -> wasmtime::Result<()>;
    }
}

passthrough! {
    impl terminal_stdin::Host => View<'_> {
        ["wasi:cli/terminal-stdin.get-terminal-stdin" Each]
        fn get_terminal_stdin(&mut self) -> wasmtime::Result<Option<Resource<terminal_input::TerminalInput>>>;
    }
}

passthrough! {
    impl terminal_stdout::Host => View<'_> {
        ["wasi:cli/terminal-stdout.get-terminal-stdout" Each]
        fn get_terminal_stdout(&mut self) -> wasmtime::Result<Option<Resource<terminal_output::TerminalOutput>>>;
    }
}

passthrough! {
    impl terminal_stderr::Host => View<'_> {
        ["wasi:cli/terminal-stderr.get-terminal-stderr" Each]
        fn get_terminal_stderr(&mut self) -> wasmtime::Result<Option<Resource<terminal_output::TerminalOutput>>>;
    }
}
