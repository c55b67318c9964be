//! The one integration test binary: a module per capability, linked once.
//! Every test runs real guest components (built once per run from
//! `guest-examples/`) through the real `warden` binary.

mod approval;
mod audit;
mod audit_bounds;
mod audit_log;
mod cli;
mod drift;
mod env;
mod fleet;
mod fs;
mod fs_dirs;
mod functions;
mod fuzz;
mod grant_cli;
mod grants;
mod guests;
mod http;
mod http_server;
mod inject;
mod langs;
mod library;
mod limits;
mod manifest;
mod mcp;
mod net;
mod openbao;
mod policy;
mod receipts;
mod registry;
mod scaffold;
mod secrets;
mod support;
