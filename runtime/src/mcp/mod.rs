//! `warden mcp`: tools served over the Model Context Protocol.
//!
//! Each manifest given (or found in a directory given) is loaded into one [`Runtime`](crate::Runtime), and
//! its component becomes MCP tools ([`Catalog`]):
//!
//! - a `warden:tool` component is one tool, named by the manifest's `tool.name`, described
//!   and with the input schema its own `describe` gives;
//! - a component that exports functions is one tool per callable function, named
//!   `TOOL.FUNCTION` (`fs-tools.read-file`), with the JSON Schema derived from the
//!   function's WIT types, and an output schema `{"result": …}` matching the result's
//!   `structuredContent`;
//! - a command is one tool taking `args` (an array of strings) and `stdin` (a string),
//!   whose result is what it writes to stdout.
//!
//! `tools/call` runs the tool as one task under its manifest, exactly as `warden run`
//! does: the same grants, limits, policy and audit log. Each record of the task carries
//! `"mcp": {"session": …, "request": …}`, and the agent is `mcp:<client name>`. A refused
//! or failed call is an MCP tool error (`isError: true`) whose text says what failed and
//! lists each call Warden denied with the rule that denied it; `_meta["dev.warden/task"]`
//! names the task. An agent host may pass policy context under `_meta["dev.warden/context"]`.
//!
//! A gated call is answered by the operator's approver. The client, the party being
//! gated, is asked through elicitation (see [`Elicitation`]) only where the operator chose
//! it ([`ClientApproval`]): alone, or after the operator's approver agreed. Its answer is
//! recorded as the approver `mcp-elicitation`.
//!
//! Nothing else is served: no tool manages grants, revocations, manifests or the log, so
//! an agent cannot widen what it holds through MCP.
//!
//! Transports: stdio ([`serve_stdio`]) and Streamable HTTP bound to a loopback address
//! and protected by a bearer token ([`serve_http`]).

mod catalog;
mod elicit;
mod http;
mod server;

pub use catalog::{Catalog, CatalogError, Entry, Target, manifest_paths, tool_name};
pub use elicit::Elicitation;
pub use http::{HttpError, HttpOptions, serve_http};
pub use server::{CONTEXT_META_KEY, ClientApproval, TASK_META_KEY, WardenMcp};

use rmcp::ServiceExt;
use tokio::io::{AsyncRead, AsyncWrite};

/// Serves `server` on this process's stdin and stdout until the client closes them.
///
/// Only MCP messages go to stdout; the tools' own stdout is captured per task, never
/// written there.
pub async fn serve_stdio(server: WardenMcp) -> anyhow::Result<()> {
    let running = server
        .serve(stdio())
        .await
        .map_err(|e| anyhow::anyhow!("mcp over stdio: {e}"))?;
    running
        .waiting()
        .await
        .map_err(|e| anyhow::anyhow!("mcp over stdio: {e}"))?;
    Ok(())
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// This process's stdin and stdout as a transport. Where they are pipes, as when an MCP
/// client starts the server, they are read and written on tokio's reactor: tokio's own
/// stdio hands every read and write to a thread of its blocking pool, and those hand-offs
/// were a third of a `tools/call` round trip. Each pipe is reopened through
/// `/proc/self/fd` first, which gives it a file description of its own, so that making it
/// non-blocking leaves fds 0 and 1 as they were for stderr (often the same pipe) and for
/// anything else that shares them. Anything else (a terminal, a file) gets tokio's stdio.
fn stdio() -> (Reader, Writer) {
    let reader: Reader = match reopen(0).and_then(tokio::net::unix::pipe::Receiver::from_file) {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdin()),
    };
    let writer: Writer = match reopen(1).and_then(tokio::net::unix::pipe::Sender::from_file) {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdout()),
    };
    (reader, writer)
}

/// A new open file description of this process's fd `fd`, if it is a pipe (opening
/// `/proc/self/fd/N` of anything else may give the same file, or fail). Opened
/// non-blocking: a blocking open of a named FIFO waits for its other end, which a client
/// that wrote its requests and closed will never open again.
fn reopen(fd: i32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let path = format!("/proc/self/fd/{fd}");
    if !std::fs::metadata(&path)?.file_type().is_fifo() {
        return Err(std::io::ErrorKind::Unsupported.into());
    }
    std::fs::OpenOptions::new()
        .read(fd == 0)
        .write(fd == 1)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}
