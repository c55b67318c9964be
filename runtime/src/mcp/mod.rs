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

/// Serves `server` on this process's stdin and stdout until the client closes them.
///
/// Only MCP messages go to stdout; the tools' own stdout is captured per task, never
/// written there.
pub async fn serve_stdio(server: WardenMcp) -> anyhow::Result<()> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("mcp over stdio: {e}"))?;
    running
        .waiting()
        .await
        .map_err(|e| anyhow::anyhow!("mcp over stdio: {e}"))?;
    Ok(())
}
