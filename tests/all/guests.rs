//! Builds the guest components of `guest-examples/` once per process, the
//! way wasmtime's test-programs do: a nested `cargo build` with its own
//! target directory. Shared by the integration tests and the benches.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("runtime/ has a parent")
            .to_path_buf()
    })
}

/// Builds every guest in `guest-examples/` for wasm32-wasip2, once per test
/// process, and returns the directory holding the `.wasm` files.
pub fn guests() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = root().join("target/guests");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(root().join("guest-examples"))
            .env("CARGO_TARGET_DIR", &target)
            // The outer build's flags are for the host, not the guests.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cargo runs");
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let hint = if stderr.contains("wasm32-wasip2") && stderr.contains("target") {
                "\nhint: install the target with `rustup target add wasm32-wasip2`"
            } else {
                ""
            };
            panic!("building guest-examples failed:\n{stderr}{hint}");
        }
        target.join("wasm32-wasip2/release")
    })
}
