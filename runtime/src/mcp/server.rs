//! [`WardenMcp`]: the MCP `ServerHandler` that lists the catalog's tools and runs each
//! `tools/call` as one task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ElicitRequest,
    ElicitResult, Implementation, InputRequest, InputRequests, InputRequiredResult,
    ListToolsResult, MetaObject, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Map, Value, json};
use warden_host_api::approval::{Answer, ApprovalRequest, Approver, Deny, Unanimous};
use warden_host_api::audit::{EventSink, McpIds};

use super::catalog::{Catalog, Target};
use super::elicit::{APPROVER, Elicitation, Relay, decision, question};
use crate::denials::Denials;
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

/// Whether the MCP client takes part in approving the gated calls of the tasks it asks
/// for. The client is the party being gated: it answers only where the operator chose
/// so, and never in place of an operator's approver that was given.
#[derive(Clone, Default)]
pub enum ClientApproval {
    /// The client is never asked; the runtime's approver answers alone (the default).
    #[default]
    Never,
    /// The client alone answers, through MCP elicitation (`warden mcp --approve mcp`).
    /// A client that cannot be asked gets every gated call refused.
    Alone,
    /// This approver (the operator's) is asked first, then the client; both must approve
    /// (`warden mcp --approve-cmd CMD --approve mcp`).
    AfterOperator(Arc<dyn Approver>),
}

struct Inner {
    catalog: Catalog,
    sink: Arc<dyn EventSink>,
    client_approval: ClientApproval,
    /// A call's result goes out only once a signed checkpoint covers its task.
    wait_covered: bool,
    /// Calls waiting for their client to answer, by the `requestState` it was given.
    parked: Mutex<HashMap<String, Parked>>,
    /// Where tasks run when not here: the fleet's workers.
    #[cfg(feature = "fleet")]
    workers: Option<crate::fleet::work::Dispatcher>,
}

impl WardenMcp {
    /// A handler for `catalog` whose tasks' records go to `sink`. `client_approval`
    /// says whether a gated call in a task also asks the client that made the request
    /// (MCP elicitation); with [`ClientApproval::Never`] the runtime's approver answers.
    pub fn new(
        catalog: Catalog,
        sink: Arc<dyn EventSink>,
        client_approval: ClientApproval,
    ) -> WardenMcp {
        WardenMcp {
            inner: Arc::new(Inner {
                catalog,
                sink,
                client_approval,
                wait_covered: false,
                parked: Mutex::new(HashMap::new()),
                #[cfg(feature = "fleet")]
                workers: None,
            }),
            connection: crate::new_task_id(),
        }
    }

    /// Sends every `tools/call` to the fleet's workers (`warden worker`) instead of
    /// running it here: the catalog still says what the tools are. Gated calls are then
    /// answered by each worker's approver; the client is never asked.
    #[cfg(feature = "fleet")]
    pub fn with_workers(mut self, workers: crate::fleet::work::Dispatcher) -> WardenMcp {
        let inner = Arc::get_mut(&mut self.inner).expect("with_workers before any connection");
        inner.workers = Some(workers);
        inner.client_approval = ClientApproval::Never;
        self
    }

    /// Answers a `tools/call` only once a signed checkpoint covers its task's records
    /// ([`TaskRequest::wait_covered`]), instead of once they are settled.
    pub fn wait_covered(mut self, wait: bool) -> WardenMcp {
        let inner = Arc::get_mut(&mut self.inner).expect("wait_covered before any connection");
        inner.wait_covered = wait;
        self
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
    ) -> Result<CallToolResponse, McpError> {
        self.sweep();
        if let Some(state) = &params.request_state {
            return self.resume(&params, state).await;
        }
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
        let (input, args, stdin) = match task_input(&entry.target, &entry.name, arguments) {
            Ok(parts) => parts,
            Err(message) => return Ok(error_result(message, None).into()),
        };
        let denials = Arc::new(Denials::new(self.inner.sink.clone()));
        let agent = context
            .client_info()
            .map(|c| format!("mcp:{}", c.name))
            .unwrap_or_else(|| "mcp".to_owned());
        // How a gated call asks the client: mid-request where the protocol allows it,
        // else between rounds of this request (input-required results).
        let mut asks = None;
        let client: Option<Arc<dyn Approver>> =
            if matches!(self.inner.client_approval, ClientApproval::Never) {
                None
            } else if let Some(elicit) = Elicitation::for_request(&context) {
                Some(Arc::new(elicit))
            } else if can_be_asked_between_rounds(&context) {
                let (tx, rx) = mpsc::channel(1);
                asks = Some(rx);
                Some(Arc::new(Relay { asks: tx }))
            } else {
                None
            };
        let approver = task_approver(&self.inner.client_approval, client);
        let req = TaskRequest {
            input,
            args,
            stdin,
            agent: Some(agent),
            sink: denials.clone(),
            grant: None,
            // What the client claims is not a fact the operator stated.
            context: serde_json::Map::new(),
            client: policy_context(params.meta.as_deref(), &context),
            call: match &entry.target {
                Target::Function(name) => Some(name.clone()),
                Target::Invoke | Target::Command => None,
            },
            approver,
            mcp: Some(McpIds {
                session: session_id(&context).unwrap_or_else(|| self.connection.clone()),
                request: context.id.to_string(),
            }),
            task_id: None,
            attempt: None,
            wait_covered: self.inner.wait_covered,
        };
        #[cfg(feature = "fleet")]
        if let Some(workers) = &self.inner.workers {
            let (ran, denials) = workers.run(&entry.tool.manifest().tool.name, &req).await;
            return Ok(result(&entry.target, &entry.name, ran, &denials).into());
        }
        let Some(asks) = asks else {
            let ran = entry.tool.run(req).await;
            return Ok(result(&entry.target, &entry.name, ran, &denials.take()).into());
        };
        let tool = entry.tool.clone();
        let parked = Parked {
            name: entry.name.clone(),
            target: entry.target.clone(),
            run: tokio::spawn(async move { tool.run(req).await }),
            asks,
            answer: None,
            denials,
            since: Instant::now(),
        };
        Ok(self.drive(parked).await)
    }

    /// Runs a parked call until it ends or asks the client again.
    async fn drive(&self, mut parked: Parked) -> CallToolResponse {
        tokio::select! {
            ran = &mut parked.run => {
                let ran = ran.unwrap_or_else(|e| Err(TaskError::Host {
                    task: String::new(),
                    message: format!("the task did not finish: {e}"),
                }));
                result(&parked.target, &parked.name, ran, &parked.denials.take()).into()
            }
            Some((request, answer)) = parked.asks.recv() => {
                let Some(question) = question(&request) else {
                    let _ = answer.send(Answer::refuse(APPROVER, "could not build the question"));
                    return Box::pin(self.drive(parked)).await;
                };
                parked.answer = Some(answer);
                parked.since = Instant::now();
                let state = match unguessable() {
                    Ok(state) => state,
                    Err(why) => {
                        let _ = parked.answer.take().map(|a| a.send(Answer::refuse(APPROVER, why)));
                        return Box::pin(self.drive(parked)).await;
                    }
                };
                self.parked().insert(state.clone(), parked);
                let mut requests = InputRequests::new();
                requests.insert(APPROVAL_INPUT.into(), InputRequest::Elicitation(ElicitRequest::new(question)));
                InputRequiredResult::new(Some(requests), Some(state)).into()
            }
        }
    }

    /// A retried call: the client's answer goes to the task waiting for it.
    async fn resume(
        &self,
        params: &CallToolRequestParams,
        state: &str,
    ) -> Result<CallToolResponse, McpError> {
        let parked = self.parked().remove(state);
        let Some(mut parked) = parked.filter(|p| p.name == params.name) else {
            return Err(McpError::invalid_params(
                format!(
                    "requestState {state:?} names no call of {:?} waiting for an answer; call the tool again",
                    params.name
                ),
                None,
            ));
        };
        let answer = params
            .input_responses
            .as_ref()
            .and_then(|r| r.get(APPROVAL_INPUT))
            .and_then(|v| serde_json::from_value::<ElicitResult>(v.clone()).ok());
        let decision = match answer {
            Some(answer) => decision(&answer),
            None => Answer::refuse(APPROVER, "the client answered without an approval"),
        };
        if let Some(waiting) = parked.answer.take() {
            let _ = waiting.send(decision);
        }
        Ok(self.drive(parked).await)
    }

    fn parked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parked>> {
        self.inner
            .parked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets calls whose client never came back: their tasks have long been refused
    /// by the approval timeout and ended.
    fn sweep(&self) {
        self.parked().retain(|_, p| {
            let keep = p.since.elapsed() < PARKED_FOR;
            if !keep {
                p.run.abort();
            }
            keep
        });
    }
}

/// A `requestState`: whoever holds it answers the question, so it is 128 random bits,
/// not an id derived from the time.
fn unguessable() -> Result<String, String> {
    warden_host_api::hex::random(16)
        .map_err(|e| format!("no randomness for the request state: {e}"))
}

/// The key of the approval in an input-required result and in the client's answer.
const APPROVAL_INPUT: &str = "dev.warden/approval";

/// How long a call waiting for its client's answer is kept.
const PARKED_FOR: Duration = Duration::from_secs(15 * 60);

/// A `tools/call` whose task waits for the client to answer a question.
struct Parked {
    name: String,
    target: Target,
    run: tokio::task::JoinHandle<Result<TaskOutput, TaskError>>,
    asks: mpsc::Receiver<(ApprovalRequest, oneshot::Sender<Answer>)>,
    answer: Option<oneshot::Sender<Answer>>,
    denials: Arc<Denials>,
    since: Instant,
}

/// Who answers a task's gated calls, given the client's approver where it can be asked;
/// `None` leaves it to the runtime's approver.
fn task_approver(
    mode: &ClientApproval,
    client: Option<Arc<dyn Approver>>,
) -> Option<Arc<dyn Approver>> {
    const UNASKABLE: &str = "warden mcp --approve mcp needs the client's answer, and this \
                             client cannot be asked: it did not declare the elicitation capability";
    match (mode, client) {
        (ClientApproval::Never, _) => None,
        (ClientApproval::Alone, Some(client)) => Some(client),
        (ClientApproval::AfterOperator(operator), Some(client)) => {
            Some(Arc::new(Unanimous::new(vec![operator.clone(), client])))
        }
        (ClientApproval::Alone | ClientApproval::AfterOperator(_), None) => {
            Some(Arc::new(Deny::because(UNASKABLE)))
        }
    }
}

/// Whether the client of a 2026-07-28 request said it answers elicitations.
fn can_be_asked_between_rounds(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .is_some_and(|c| c.elicitation.is_some())
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
        self.call(request, context).await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.list().into_iter().find(|t| t.name == name)
    }
}

/// The task's input, command arguments and stdin, from a call's arguments object.
fn task_input(
    target: &Target,
    name: &str,
    arguments: Map<String, Value>,
) -> Result<(String, Vec<String>, Vec<u8>), String> {
    match target {
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
                            "unknown argument {other:?}: {name} takes args and stdin"
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
fn result(
    target: &Target,
    name: &str,
    ran: Result<TaskOutput, TaskError>,
    denials: &[String],
) -> CallToolResult {
    let out = match ran {
        Ok(out) => out,
        // What a provider said (a Vault path, the fields a secret has, where a token came
        // from) is the operator's to read, in the task's `secret.fetch` record; the client
        // learns which secret failed, and how.
        Err(TaskError::Secret { task, error }) => {
            let text = format!(
                "task {task} could not start: secret {:?} could not be fetched ({}); the operator finds why in the audit log",
                error.name(),
                error.code()
            );
            return error_result(with_denials(text, denials), Some(task));
        }
        Err(e) => {
            let task = e.task().map(str::to_owned);
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
            r.structured_content = match (target, value) {
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
            let mut text = format!("{name} exited with status {code}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !stderr.trim().is_empty() {
                text.push_str(&format!("; stderr: {}", stderr.trim()));
            }
            error_result(with_denials(text, denials), task)
        }
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
#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_command_takes_args_and_stdin_and_nothing_else() {
        let (input, a, stdin) = task_input(
            &Target::Command,
            "wc",
            args(json!({"args": ["-l", "x"], "stdin": "one\n"})),
        )
        .unwrap();
        assert_eq!(
            (input.as_str(), a, stdin),
            ("", vec!["-l".to_owned(), "x".to_owned()], b"one\n".to_vec())
        );
        let err = |v| task_input(&Target::Command, "wc", args(v)).unwrap_err();
        assert_eq!(
            err(json!({"args": ["a", 2]})),
            "argument args[1]: expected a string, found 2"
        );
        assert_eq!(
            err(json!({"args": "a"})),
            "argument args: expected an array of strings, found \"a\""
        );
        assert_eq!(
            err(json!({"stdin": 1})),
            "argument stdin: expected a string, found 1"
        );
        assert_eq!(
            err(json!({"env": {}})),
            "unknown argument \"env\": wc takes args and stdin"
        );
    }

    #[test]
    fn a_tool_gets_the_arguments_object_as_its_input() {
        let (input, _, _) = task_input(&Target::Invoke, "echo", args(json!({"a": [1]}))).unwrap();
        assert_eq!(input, r#"{"a":[1]}"#);
    }

    #[test]
    fn denials_are_kept_up_to_a_bound_and_passed_on() {
        use warden_host_api::audit::{Audit, Event, Level, NullSink, TaskMeta};
        let denials = Arc::new(Denials::new(Arc::new(NullSink)));
        let meta = TaskMeta {
            attempt: None,
            host: "h".into(),
            agent: None,
            task: "t".into(),
            parent: None,
            tool: "probe".into(),
            component: "blake3:00".into(),
            mcp: None,
        };
        let audit = Audit::new(meta, denials.clone(), Level::Calls);
        audit.emit(&Event::new("task.start")).unwrap();
        for i in 0..20 {
            let ev = Event::call("wasi:filesystem/types.[method]descriptor.open-at")
                .resource(format!("/etc/{i}"))
                .deny("no fs grant covers it");
            audit.emit(&ev).unwrap();
        }
        let seen = denials.take();
        assert_eq!(seen.len(), crate::denials::MAX_DENIALS);
        assert_eq!(
            seen[0],
            "wasi:filesystem/types.[method]descriptor.open-at on /etc/0: no fs grant covers it"
        );
        assert!(denials.take().is_empty());
    }
}
