//! `wasi:random`: always allowed, summed per call for the task (bytes are
//! counted, never recorded), one record each at level `full`.

use crate::interpose::{Guarded, WardenView, guarded, passthrough};
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::p2::bindings::random::{insecure, insecure_seed, random};
use wasmtime_wasi::random::WasiRandomCtx;

struct Random;

impl HasData for Random {
    type Data<'a> = Guarded<'a, &'a mut WasiRandomCtx>;
}

fn view<T: WardenView>(t: &mut T) -> Guarded<'_, &mut WasiRandomCtx> {
    guarded(t, |w| w.ctx.random())
}

/// Adds `wasi:random/{random,insecure,insecure-seed}` to `linker`.
pub fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    random::add_to_linker::<T, Random>(linker, view::<T>)?;
    insecure::add_to_linker::<T, Random>(linker, view::<T>)?;
    insecure_seed::add_to_linker::<T, Random>(linker, view::<T>)?;
    Ok(())
}

passthrough! {
    impl random::Host => &mut WasiRandomCtx {
        ["wasi:random/random.get-random-bytes" Interface]
        fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>>;
        ["wasi:random/random.get-random-u64" Interface]
        fn get_random_u64(&mut self) -> wasmtime::Result<u64>;
    }
}

passthrough! {
    impl insecure::Host => &mut WasiRandomCtx {
        ["wasi:random/insecure.get-insecure-random-bytes" Interface]
        fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>>;
        ["wasi:random/insecure.get-insecure-random-u64" Interface]
        fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64>;
    }
}

passthrough! {
    impl insecure_seed::Host => &mut WasiRandomCtx {
        ["wasi:random/insecure-seed.insecure-seed" Interface]
        fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)>;
    }
}
