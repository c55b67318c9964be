//! `wasi:clocks`: always allowed, summed per call for the task (clock reads
//! are frequent and carry no capability), one record each at level `full`.

use crate::interpose::{Guarded, WardenView, debug_arg, guarded, no_size, passthrough};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::{monotonic_clock, wall_clock};

type View<'a> = WasiClocksCtxView<'a>;

debug_arg!(wall_clock::Datetime);
no_size!(wall_clock::Datetime);

struct Clocks;

impl HasData for Clocks {
    type Data<'a> = Guarded<'a, WasiClocksCtxView<'a>>;
}

fn view<T: WardenView>(t: &mut T) -> Guarded<'_, WasiClocksCtxView<'_>> {
    guarded(t, |w| WasiClocksCtxView {
        ctx: w.ctx.clocks(),
        table: w.table,
    })
}

/// Adds `wasi:clocks/{wall-clock,monotonic-clock}` to `linker`.
pub fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wall_clock::add_to_linker::<T, Clocks>(linker, view::<T>)?;
    monotonic_clock::add_to_linker::<T, Clocks>(linker, view::<T>)?;
    Ok(())
}

passthrough! {
    impl wall_clock::Host => View<'_> {
        ["wasi:clocks/wall-clock.now" Interface]
        fn now(&mut self) -> wasmtime::Result<wall_clock::Datetime>;
        ["wasi:clocks/wall-clock.resolution" Interface]
        fn resolution(&mut self) -> wasmtime::Result<wall_clock::Datetime>;
    }
}

passthrough! {
    impl monotonic_clock::Host => View<'_> {
        ["wasi:clocks/monotonic-clock.now" Interface]
        fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant>;
        ["wasi:clocks/monotonic-clock.resolution" Interface]
        fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Instant>;
        ["wasi:clocks/monotonic-clock.subscribe-instant" Interface]
        fn subscribe_instant(&mut self, when: monotonic_clock::Instant) -> wasmtime::Result<Resource<DynPollable>>;
        ["wasi:clocks/monotonic-clock.subscribe-duration" Interface]
        fn subscribe_duration(&mut self, duration: monotonic_clock::Duration) -> wasmtime::Result<Resource<DynPollable>>;
    }
}
