//! [`TaskSetup`]: what configuring a task's capabilities builds.

use crate::cx::TaskCx;
use crate::fs::FsState;
use crate::grant::Capabilities;
use crate::http::HttpState;
use crate::interpose::HostState;
use crate::secrets::TaskSecrets;
use crate::sockets::SocketState;
use std::sync::Arc;
use wasmtime_wasi::WasiCtxBuilder;

/// One task's capabilities as they are set up, before its store: wasmtime-wasi's context
/// and the state each capability's interposer reads, all for the task `cx`.
///
/// What must be prepared before (and can fail the task before it starts) is handed in:
/// the task's directories, opened from the manifest's, and its secrets, fetched. Each
/// capability's [`configure`](super::Capability::configure) adds the rest from its grant
/// ([`Capabilities::configure`] runs them all); [`TaskSetup::finish`] is the host state.
pub struct TaskSetup<'a> {
    /// The WASI context, for what wasmtime-wasi enforces itself (the environment, which
    /// socket addresses a connect may use).
    pub wasi: &'a mut WasiCtxBuilder,
    pub(crate) cx: Arc<TaskCx>,
    pub(crate) fs: FsState,
    pub(crate) http: HttpState,
    pub(crate) sockets: SocketState,
    pub(crate) secrets: TaskSecrets,
}

impl<'a> TaskSetup<'a> {
    /// Setup for the task `cx`, with its directories opened and its secrets fetched;
    /// nothing else granted yet.
    pub fn new(
        wasi: &'a mut WasiCtxBuilder,
        cx: Arc<TaskCx>,
        fs: FsState,
        secrets: TaskSecrets,
    ) -> TaskSetup<'a> {
        TaskSetup {
            wasi,
            cx,
            fs,
            http: HttpState::default(),
            sockets: SocketState::default(),
            secrets,
        }
    }

    /// The task's host state, built once from everything configured.
    pub fn finish(self) -> HostState {
        HostState::new(self.cx, self.fs, self.http, self.sockets, self.secrets)
    }
}

impl Capabilities {
    /// Configures every capability of the set into `setup`, in the list's order.
    pub fn configure(&self, setup: &mut TaskSetup<'_>) {
        macro_rules! configure {
            ($($key:ident: $cap:ty,)*) => {
                $(<$cap as super::Capability>::configure(&self.$key, setup);)*
            };
        }
        crate::for_each_capability!(configure);
    }
}

/// Adds the interfaces of every capability to `linker`, in the list's order.
pub(crate) fn add_to_linker<T: crate::WardenView>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    macro_rules! add {
        ($($key:ident: $cap:ty,)*) => {
            $(<$cap as super::Capability>::add_to_linker(linker)?;)*
        };
    }
    crate::for_each_capability!(add);
    Ok(())
}
