//! Host bindings of the `warden:tool/tool` world. The WASI interfaces it
//! includes are wasmtime-wasi's own; only `warden:tool/*` is generated here.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "warden:tool/tool",
    imports: { "warden:tool/secrets": async | trappable, default: trappable },
    exports: { default: async },
    with: {
        "wasi:cli": wasmtime_wasi::p2::bindings::cli,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:filesystem": wasmtime_wasi::p2::bindings::filesystem,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
        "wasi:sockets": wasmtime_wasi::p2::bindings::sockets,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "warden:tool/secrets.secret": crate::secrets::SecretHandle,
    },
});
