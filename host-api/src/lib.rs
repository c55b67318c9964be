//! Host side of every import a Warden tool can call.
//!
//! One module per capability, each holding its manifest section, its
//! per-task state, its host implementation and the audit events it emits:
//!
//! - [`fs`]: `[[fs]]` directory grants (`wasi:filesystem`)
//! - [`env`]: `[env]` variables (`wasi:cli/environment`)
//! - [`limits`]: `[limits]` memory, time, fuel and output
//!
//! [`interpose`] is how every host call passes through Warden on its way to
//! wasmtime-wasi, and [`audit`] is the event each call becomes.
#![deny(missing_docs)]

pub mod audit;
pub mod interpose;

pub mod cli;
pub mod clocks;
pub mod env;
pub mod fs;
pub mod io;
pub mod limits;
pub mod random;
pub mod sockets;

pub use interpose::{HostState, WardenView};
