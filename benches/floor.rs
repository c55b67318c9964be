//! What every bench shares: the raw-wasmtime store the floor runs on, and
//! the means criterion wrote, for the ratios printed at the end.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Store data of the raw-wasmtime floor: plain wasmtime-wasi, no Warden.
pub struct Raw {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl warden_host_api::bindings::warden::tool::log::Host for Raw {
    fn log(
        &mut self,
        _: warden_host_api::bindings::warden::tool::log::Level,
        _: String,
    ) -> wasmtime::Result<()> {
        Ok(())
    }
}

/// The mean time of `group/name` in nanoseconds, from criterion's output.
pub fn mean(group: &str, name: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::guests::root().join("target"))
        .join("criterion");
    let text =
        std::fs::read_to_string(dir.join(group).join(name).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}
