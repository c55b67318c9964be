//! `wasi:io`: streams, polls and errors.
//!
//! Stream reads and writes are the hot path of every guest, so by default
//! they are summed per stream (calls and bytes) and written when the stream
//! is dropped or the task ends; polls and pollables are summed per call for
//! the whole task. `[audit] level = "full"` records each call. Streams are
//! named by the capability that opened them (`read /workspace/a.txt`,
//! `stdout`), so a summary says what was read or written.

use crate::interpose::{CallOutcome, Guarded, Ret, Size, WardenView, guarded, passthrough};
use wasmtime::Result;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi_io::bindings::wasi::io::{error, poll, streams};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream, StreamError, StreamResult};

impl<T: Size> Ret for StreamResult<T> {
    fn outcome(&self) -> CallOutcome {
        match self {
            Ok(v) => CallOutcome::ok(v.size()),
            Err(StreamError::Closed) => CallOutcome::err("error:closed".into()),
            Err(StreamError::LastOperationFailed(e)) => {
                CallOutcome::err(format!("error:last-operation-failed:{e}"))
            }
            Err(StreamError::Trap(e)) => CallOutcome::trap(e),
        }
    }
    fn trap(e: wasmtime::Error) -> Self {
        Err(StreamError::Trap(e))
    }
}

struct Io;

impl HasData for Io {
    type Data<'a> = Guarded<'a, &'a mut ResourceTable>;
}

fn view<T: WardenView>(t: &mut T) -> Guarded<'_, &mut ResourceTable> {
    guarded(t, |w| w.table)
}

/// Adds `wasi:io/{error,poll,streams}` to `linker`, recorded.
pub fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    error::add_to_linker::<T, Io>(linker, view::<T>)?;
    poll::add_to_linker::<T, Io>(linker, view::<T>)?;
    streams::add_to_linker::<T, Io>(linker, view::<T>)?;
    Ok(())
}

impl error::Host for Guarded<'_, &mut ResourceTable> {}

passthrough! {
    impl streams::Host => &mut ResourceTable {
        own fn convert_stream_error(&mut self, err: StreamError) -> Result<streams::StreamError> {
            streams::Host::convert_stream_error(self.inner, err)
        }
    }
}

passthrough! {
    impl poll::Host => &mut ResourceTable {
        ["wasi:io/poll.poll" Interface]
        async fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> Result<Vec<u32>>;
    }
}

passthrough! {
    impl poll::HostPollable => &mut ResourceTable {
        ["wasi:io/poll.[method]pollable.block" Interface]
        async fn block(&mut self, pollable: Resource<DynPollable>) -> Result<()>;
        ["wasi:io/poll.[method]pollable.ready" Interface]
        async fn ready(&mut self, pollable: Resource<DynPollable>) -> Result<bool>;
        ["wasi:io/poll.[resource-drop]pollable" Interface]
        fn drop(&mut self, pollable: Resource<DynPollable>) -> Result<()>;
    }
}

passthrough! {
    impl error::HostError => &mut ResourceTable {
        ["wasi:io/error.[resource-drop]error" Interface]
        fn drop(&mut self, err: Resource<streams::Error>) -> Result<()>;
        ["wasi:io/error.[method]error.to-debug-string" Interface]
        fn to_debug_string(&mut self, err: Resource<streams::Error>) -> Result<String>;
    }
}

passthrough! {
    impl streams::HostOutputStream => &mut ResourceTable {
        ["wasi:io/streams.[resource-drop]output-stream" Drop]
        async fn drop(&mut self, stream: Resource<DynOutputStream>) -> Result<()>;
        ["wasi:io/streams.[method]output-stream.check-write" Summed]
        fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64>;
        ["wasi:io/streams.[method]output-stream.write" Summed]
        fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()>;
        ["wasi:io/streams.[method]output-stream.subscribe" Interface]
        fn subscribe(&mut self, stream: Resource<DynOutputStream>) -> Result<Resource<DynPollable>>;
        ["wasi:io/streams.[method]output-stream.blocking-write-and-flush" Summed]
        async fn blocking_write_and_flush(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()>;
        ["wasi:io/streams.[method]output-stream.blocking-write-zeroes-and-flush" Summed]
        async fn blocking_write_zeroes_and_flush(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()>;
        ["wasi:io/streams.[method]output-stream.write-zeroes" Summed]
        fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()>;
        ["wasi:io/streams.[method]output-stream.flush" Summed]
        fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()>;
        ["wasi:io/streams.[method]output-stream.blocking-flush" Summed]
        async fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()>;
        ["wasi:io/streams.[method]output-stream.splice" Summed]
        fn splice(&mut self, dest: Resource<DynOutputStream>, src: Resource<DynInputStream>, len: u64) -> StreamResult<u64>;
        ["wasi:io/streams.[method]output-stream.blocking-splice" Summed]
        async fn blocking_splice(&mut self, dest: Resource<DynOutputStream>, src: Resource<DynInputStream>, len: u64) -> StreamResult<u64>;
    }
}

passthrough! {
    impl streams::HostInputStream => &mut ResourceTable {
        ["wasi:io/streams.[resource-drop]input-stream" Drop]
        async fn drop(&mut self, stream: Resource<DynInputStream>) -> Result<()>;
        ["wasi:io/streams.[method]input-stream.read" Summed]
        fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>>;
        ["wasi:io/streams.[method]input-stream.blocking-read" Summed]
        async fn blocking_read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>>;
        ["wasi:io/streams.[method]input-stream.skip" Summed]
        fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64>;
        ["wasi:io/streams.[method]input-stream.blocking-skip" Summed]
        async fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64>;
        ["wasi:io/streams.[method]input-stream.subscribe" Interface]
        fn subscribe(&mut self, stream: Resource<DynInputStream>) -> Result<Resource<DynPollable>>;
    }
}
