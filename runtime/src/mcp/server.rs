//! [`WardenMcp`]: the MCP `ServerHandler` that lists the catalog's tools and runs each
//! `tools/call` as one task.

use std::sync::{Arc, Mutex, PoisonError};

use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, MetaObject, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Map, Value, json};
use warden_host_api::approval::Approver;
use warden_host_api::audit::{Decision, EventSink, McpIds, Record};

use super::catalog::{Catalog, Entry, Target};
use super::elicit::Elicitation;
use crate::{Outcome, TaskError, TaskOutput, TaskRequest};

/// The `_meta` key under which an agent host may pass the task's policy context
/// (`input.context`), e.g. `{"dev.warden/context": {"risk": 0.2}}`.
pub const CONTEXT_META_KEY: &str = "dev.warden/context";

/// The `_meta` key of a result that names the task, as in the audit log.
pub const TASK_META_KEY: &str = "dev.warden/task";

/// Serves a [`Catalog`] over MCP: `tools/list` and `tools/call`, nothing that could
/// change what a tool may do. Cheap to clone: one per connection shares the catalog.
#[derive(Clone)]
pub struct WardenMcp {
    inner: Arc<Inner>,
    /// This connection's id, where the protocol has no session of its own.
    connection: String,
}

struct Inner {
    catalog: Catalog,
    sink: Arc<dyn EventSink>,
    approval_by_elicitation: bool,
}

impl WardenMcp {
    /// A handler for `catalog` whose tasks' records go to `sink`. With
    /// `approval_by_elicitation`, a gated call in a task asks the client that made the
    /// request (MCP elicitation), where it can; otherwise the runtime's approver answers.
    pub fn new(
        catalog: Catalog,
        sink: Arc<dyn EventSink>,
        approval_by_elicitation: bool,
    ) -> WardenMcp {
        WardenMcp {
            inner: Arc::new(Inner {
                catalog,
                sink,
                approval_by_elicitation,
            }),
            connection: crate::new_task_id(),
        }
    }

    /// The same catalog, for another connection, with an id of its own.
    pub fn connection(&self) -> WardenMcp {
        WardenMcp {
            inner: self.inner.clone(),
            connection: crate::new_task_id(),
        }
    }

    /// The catalog served.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    fn list(&self) -> Vec<Tool> {
        self.inner
            .catalog
            .entries()
            .map(|e| {
                let mut tool = Tool::new(
                    e.name.clone(),
                    e.description.clone(),
                    Arc::new(e.input_schema.clone()),
                );
                tool.output_schema = e.output_schema.clone().map(Arc::new);
                tool
            })
            .collect()
    }

    async fn call(
        &self,
        params: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let catalog = &self.inner.catalog;
        let Some(entry) = catalog.get(&params.name) else {
            return Err(McpError::invalid_params(
                format!(
                    "no tool is named {:?}; this server has {}",
                    params.name,
                    catalog.names().join(", ")
                ),
                None,
            ));
        };
        let arguments = params.arguments.clone().unwrap_or_default();
        let (input, args, stdin) = match task_input(entry, arguments) {
            Ok(parts) => parts,
            Err(message) => return Ok(error_result(message, None)),
        };
        let denials = Arc::new(Denials::new(self.inner.sink.clone()));
        let agent = context
            .client_info()
            .map(|c| format!("mcp:{}", c.name))
            .unwrap_or_else(|| "mcp".to_owned());
        let approver: Option<Arc<dyn Approver>> = if self.inner.approval_by_elicitation {
            Elicitation::for_request(&context).map(|e| Arc::new(e) as Arc<dyn Approver>)
        } else {
            None
        };
        let req = TaskRequest {
            input,
            args,
            stdin,
            agent: Some(agent),
            sink: denials.clone(),
            grant: None,
            context: policy_context(params.meta.as_deref(), &context),
            call: match &entry.target {
                Target::Function(name) => Some(name.clone()),
                Target::Invoke | Target::Command => None,
            },
            approver,
            mcp: Some(McpIds {
                session: session_id(&context).unwrap_or_else(|| self.connection.clone()),
                request: context.id.to_string(),
            }),
        };
        let ran = entry.tool.run(req).await;
        Ok(result(entry, ran, &denials.take()))
    }
}

impl ServerHandler for WardenMcp {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("warden", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "Tools run by Warden, each as one task under its manifest's capabilities; a call \
             the manifest does not allow is refused and the result says what and why."
                .into(),
        );
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.list()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.call(request, context).await.map(Into::into)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.list().into_iter().find(|t| t.name == name)
    }
}

/// The task's input, command arguments and stdin, from a call's arguments object.
fn task_input(
    entry: &Entry,
    arguments: Map<String, Value>,
) -> Result<(String, Vec<String>, Vec<u8>), String> {
    match &entry.target {
        Target::Invoke | Target::Function(_) => {
            Ok((Value::Object(arguments).to_string(), Vec::new(), Vec::new()))
        }
        Target::Command => {
            let mut args = Vec::new();
            let mut stdin = Vec::new();
            for (key, value) in arguments {
                match (key.as_str(), value) {
                    ("args", Value::Array(items)) => {
                        for (i, item) in items.into_iter().enumerate() {
                            match item {
                                Value::String(s) => args.push(s),
                                other => {
                                    return Err(format!(
                                        "argument args[{i}]: expected a string, found {other}"
                                    ));
                                }
                            }
                        }
                    }
                    ("stdin", Value::String(s)) => stdin = s.into_bytes(),
                    ("args", other) => {
                        return Err(format!(
                            "argument args: expected an array of strings, found {other}"
                        ));
                    }
                    ("stdin", other) => {
                        return Err(format!("argument stdin: expected a string, found {other}"));
                    }
                    (other, _) => {
                        return Err(format!(
                            "unknown argument {other:?}: {} takes args and stdin",
                            entry.name
                        ));
                    }
                }
            }
            Ok((String::new(), args, stdin))
        }
    }
}

/// The policy context an agent host passed with the request, under
/// [`CONTEXT_META_KEY`] in the call's or the request's `_meta`.
fn policy_context(
    params_meta: Option<&MetaObject>,
    context: &RequestContext<RoleServer>,
) -> Map<String, Value> {
    params_meta
        .and_then(|m| m.get(CONTEXT_META_KEY))
        .or_else(|| context.meta.get(CONTEXT_META_KEY))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The Streamable HTTP session of the request, if it came in one.
fn session_id(context: &RequestContext<RoleServer>) -> Option<String> {
    let parts = context.extensions.get::<http::request::Parts>()?;
    let id = parts.headers.get("mcp-session-id")?.to_str().ok()?;
    Some(id.to_owned())
}

/// What a finished (or refused) task becomes for the client.
fn result(entry: &Entry, ran: Result<TaskOutput, TaskError>, denials: &[String]) -> CallToolResult {
    let out = match ran {
        Ok(out) => out,
        Err(e) => {
            let task = task_of(&e);
            return error_result(with_denials(e.to_string(), denials), task);
        }
    };
    let task = Some(out.task.clone());
    match out.outcome {
        Outcome::Result(json) => {
            let value: Value = serde_json::from_str(&json).unwrap_or(Value::String(json.clone()));
            let mut content = vec![ContentBlock::text(json)];
            // The tool carried on past a refusal; the agent should still know of it.
            if !denials.is_empty() {
                content.push(ContentBlock::text(with_denials(String::new(), denials)));
            }
            let mut r = CallToolResult::success(content);
            r.structured_content = match (&entry.target, value) {
                (Target::Function(_), value) => Some(json!({ "result": value })),
                (_, value @ Value::Object(_)) => Some(value),
                _ => None,
            };
            with_task(r, task)
        }
        Outcome::ToolError { kind, message } => {
            error_result(with_denials(format!("{kind}: {message}"), denials), task)
        }
        Outcome::Exit(0) => {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            with_task(
                CallToolResult::success(vec![ContentBlock::text(text)]),
                task,
            )
        }
        Outcome::Exit(code) => {
            let mut text = format!("{} exited with status {code}", entry.name);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !stderr.trim().is_empty() {
                text.push_str(&format!("; stderr: {}", stderr.trim()));
            }
            error_result(with_denials(text, denials), task)
        }
    }
}

fn task_of(e: &TaskError) -> Option<String> {
    match e {
        TaskError::Limit { task, .. }
        | TaskError::Trap { task, .. }
        | TaskError::Secret { task, .. }
        | TaskError::Grant { task, .. }
        | TaskError::Widened { task, .. }
        | TaskError::Host { task, .. } => Some(task.clone()),
        _ => None,
    }
}

/// A tool error whose text says what failed and, below, every call Warden refused.
fn error_result(text: String, task: Option<String>) -> CallToolResult {
    with_task(CallToolResult::error(vec![ContentBlock::text(text)]), task)
}

fn with_denials(mut text: String, denials: &[String]) -> String {
    for d in denials {
        text.push_str("\nwarden denied ");
        text.push_str(d);
    }
    text
}

fn with_task(mut r: CallToolResult, task: Option<String>) -> CallToolResult {
    if let Some(task) = task {
        let mut meta = MetaObject::default();
        meta.insert(TASK_META_KEY.into(), Value::String(task));
        r.meta = Some(meta);
    }
    r
}

/// Passes every record on to the log, and keeps what each deny says, for the result.
struct Denials {
    sink: Arc<dyn EventSink>,
    seen: Mutex<Vec<String>>,
}

impl Denials {
    fn new(sink: Arc<dyn EventSink>) -> Denials {
        Denials {
            sink,
            seen: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// At most this many denials are spelt out in a result: a tool looping on a refused
/// call must not make the answer unbounded.
const MAX_DENIALS: usize = 8;

impl EventSink for Denials {
    fn emit(&self, record: &Record<'_>) -> anyhow::Result<()> {
        self.sink.emit(record)?;
        let e = record.event;
        if e.decision == Some(Decision::Deny) {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.len() < MAX_DENIALS {
                let call = e.call.unwrap_or(e.event);
                let resource = e.resource.as_deref().unwrap_or("-");
                let rule = e.rule.as_deref().unwrap_or("no rule allows it");
                seen.push(format!("{call} on {resource}: {rule}"));
            }
        }
        Ok(())
    }
}
