//! Workers: one endpoint, tasks spread over a pool of hosts through JetStream work queues.
//!
//! Each tool has a work-queue stream `WARDEN_TASKS_<TOOL>` on the subject
//! `warden.tasks.<TOOL>` (the tool's name, with what a subject token cannot hold made
//! `_`). A [`Dispatcher`] (`warden mcp --nats URL --workers`, or a library host) publishes
//! a [`WorkRequest`] with the task's id as `Nats-Msg-Id` and waits on its own inbox for the
//! [`WorkReply`]. Workers ([`work`], `warden worker`) share one durable consumer per tool,
//! take a task only while they have a free slot, run it under the manifest they hold, reply,
//! and only then acknowledge it. While a task runs its worker tells the server it is still
//! at it; a worker that dies stops doing so, and after the ack wait the server gives the
//! task to another worker, with the same id and the next `attempt`, which the task's
//! records carry. A tool whose manifest says `idempotent = false` is not run a second time:
//! the task fails, saying so.
//!
//! What a worker runs is what its own manifests allow: the request carries the tool's
//! name and input, never capabilities. Anyone who may publish on `warden.tasks.>` may ask
//! for tasks, as an MCP client of the front end may; in production give only front ends
//! that right.

use super::HostId;
use crate::denials::Denials;
use crate::{Outcome, TaskError, TaskOutput, TaskRequest, Tool};
use async_nats::jetstream::{self, AckKind, consumer::pull, message::PublishMessage};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;
use warden_host_api::audit::{Event, EventSink, McpIds, Record, TaskMeta};

/// The subject a tool's tasks are published on.
pub fn tasks_subject(tool: &str) -> String {
    format!("warden.tasks.{}", token(tool))
}

/// The work-queue stream of a tool's tasks.
pub fn tasks_stream(tool: &str) -> String {
    format!("WARDEN_TASKS_{}", token(tool))
}

fn token(tool: &str) -> String {
    tool.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A task, as a front end asks a worker for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkRequest {
    /// The task's id: the same on every attempt.
    pub task: String,
    /// The tool, by its manifest's name.
    pub tool: String,
    /// The tool's input, or a function's arguments object.
    pub input: String,
    /// A command's arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// A command's stdin, base64.
    #[serde(default)]
    pub stdin: String,
    /// The function to call, for a function component.
    #[serde(default)]
    pub call: Option<String>,
    /// The agent the task runs for.
    #[serde(default)]
    pub agent: Option<String>,
    /// What the asking party claims (a policy's `input.client`).
    #[serde(default)]
    pub client: serde_json::Map<String, serde_json::Value>,
    /// The MCP session and request, when a `warden mcp` front end asks.
    #[serde(default)]
    pub mcp: Option<McpIds>,
    /// Where the reply goes.
    pub reply: String,
    /// After this (milliseconds since the epoch) nobody waits for the answer: a worker
    /// that takes the task later drops it unrun.
    pub deadline_ms: u64,
}

/// How a task ended, as a worker tells its front end.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyOutcome {
    /// The tool's result (JSON).
    Result {
        /// The JSON.
        json: String,
    },
    /// The tool's error.
    ToolError {
        /// `invalid-input`, `failed` or `denied`.
        error: String,
        /// The tool's message.
        message: String,
    },
    /// A command's exit status.
    Exit {
        /// The status.
        code: i32,
    },
    /// The task did not run to completion: a limit, a trap, a refusal, or not run again.
    Failed {
        /// Why, as the task's error says it.
        message: String,
    },
}

/// A worker's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkReply {
    /// The task.
    pub task: String,
    /// The worker that ran it (its host id).
    pub worker: String,
    /// Which delivery ran it.
    pub attempt: u32,
    /// How it ended.
    pub outcome: ReplyOutcome,
    /// The guest's stdout and stderr, base64.
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    #[allow(missing_docs)]
    pub stderr: String,
    /// Wall-clock time of the task on the worker.
    pub duration_ms: u64,
    /// Fuel consumed, where metered.
    #[serde(default)]
    pub fuel: Option<u64>,
    /// The calls the task was refused, in words, for the client's result.
    #[serde(default)]
    pub denials: Vec<String>,
}

impl WorkReply {
    /// The task's output or error, as a local run would give it.
    pub fn into_result(self) -> Result<TaskOutput, TaskError> {
        let outcome = match self.outcome {
            ReplyOutcome::Result { json } => Outcome::Result(json),
            ReplyOutcome::ToolError { error, message } => Outcome::ToolError {
                kind: match error.as_str() {
                    "invalid-input" => "invalid-input",
                    "denied" => "denied",
                    _ => "failed",
                },
                message,
            },
            ReplyOutcome::Exit { code } => Outcome::Exit(code),
            ReplyOutcome::Failed { message } => {
                return Err(TaskError::Host {
                    task: self.task,
                    message,
                });
            }
        };
        Ok(TaskOutput {
            task: self.task,
            outcome,
            stdout: B64.decode(self.stdout).unwrap_or_default(),
            stderr: B64.decode(self.stderr).unwrap_or_default(),
            duration: Duration::from_millis(self.duration_ms),
            fuel: self.fuel,
            // The worker returned it once its own log had settled it.
            receipt: warden_host_api::audit::Receipt::settled_now(),
        })
    }
}

/// Creates a tool's work-queue stream if it is not there.
async fn ensure_tasks_stream(
    js: &jetstream::Context,
    tool: &str,
) -> Result<jetstream::stream::Stream, String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: tasks_stream(tool),
        subjects: vec![tasks_subject(tool)],
        retention: jetstream::stream::RetentionPolicy::WorkQueue,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("the stream {}: {e}", tasks_stream(tool)))
}

/// Sends tasks to the workers and waits for their replies.
#[derive(Clone)]
pub struct Dispatcher {
    js: jetstream::Context,
    /// Replies come to `<inbox>.<task>`, through one subscription.
    inbox: String,
    waiting: Arc<std::sync::Mutex<HashMap<String, oneshot::Sender<WorkReply>>>>,
    /// Tools whose stream is known to be there.
    streams: Arc<std::sync::Mutex<HashSet<String>>>,
    /// How long a caller waits for a reply.
    pub timeout: Duration,
}

impl Dispatcher {
    /// Connects to `url`; replies are awaited up to `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Dispatcher, String> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .name("warden dispatch")
            .connect(super::servers(url))
            .await
            .map_err(|e| format!("connecting to {url}: {e}"))?;
        let inbox = client.new_inbox();
        let mut replies = client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| format!("subscribing for replies: {e}"))?;
        let waiting: Arc<std::sync::Mutex<HashMap<String, oneshot::Sender<WorkReply>>>> =
            Arc::default();
        let routes = waiting.clone();
        tokio::spawn(async move {
            while let Some(msg) = replies.next().await {
                let Ok(reply) = serde_json::from_slice::<WorkReply>(&msg.payload) else {
                    continue;
                };
                let to = routes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&reply.task);
                if let Some(to) = to {
                    let _ = to.send(reply);
                }
            }
        });
        Ok(Dispatcher {
            js: jetstream::new(client),
            inbox,
            waiting,
            streams: Arc::default(),
            timeout,
        })
    }

    /// Runs `req` as a task of `tool` on some worker; the reply's denials come with it.
    pub async fn run(
        &self,
        tool: &str,
        req: &TaskRequest,
    ) -> (Result<TaskOutput, TaskError>, Vec<String>) {
        let task = req.task_id.clone().unwrap_or_else(crate::new_task_id);
        let failed = |message: String| TaskError::Host {
            task: task.clone(),
            message,
        };
        // It names the reply subject and the message id: one that is not a token is
        // refused here, as a worker refuses it.
        if !valid_task_id(&task) {
            return (Err(failed(bad_task_id(&task))), vec![]);
        }
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task.clone(), tx);
        // Whatever happens below, nothing waits for this task's reply afterwards.
        let _forget = Forget(&self.waiting, &task);
        let deadline = SystemTime::now() + self.timeout;
        let request = WorkRequest {
            task: task.clone(),
            tool: tool.to_string(),
            input: req.input.clone(),
            args: req.args.clone(),
            stdin: B64.encode(&req.stdin),
            call: req.call.clone(),
            agent: req.agent.clone(),
            client: req.client.clone(),
            mcp: req.mcp.clone(),
            reply: format!("{}.{task}", self.inbox),
            deadline_ms: millis(deadline),
        };
        let sent = async {
            let known = self
                .streams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(tool);
            if !known {
                ensure_tasks_stream(&self.js, tool).await?;
                self.streams
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(tool.to_string());
            }
            let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
            let publish = PublishMessage::build()
                .payload(body.into())
                .message_id(task.clone());
            self.js
                .send_publish(tasks_subject(tool), publish)
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(e) = sent.await {
            return (
                Err(failed(format!("queueing task {task} of {tool}: {e}"))),
                vec![],
            );
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(reply)) => {
                let denials = reply.denials.clone();
                (reply.into_result(), denials)
            }
            _ => (
                Err(failed(format!(
                    "no worker answered task {task} of {tool} within {:?}; is a `warden worker` \
                     serving {tool}? The task is dropped unrun by a worker that takes it later",
                    self.timeout
                ))),
                vec![],
            ),
        }
    }
}

/// Removes a task's reply route when its caller stops waiting.
struct Forget<'a>(
    &'a std::sync::Mutex<HashMap<String, oneshot::Sender<WorkReply>>>,
    &'a str,
);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(self.1);
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How a worker works.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The NATS server.
    pub url: String,
    /// This worker's name in the fleet.
    pub host: HostId,
    /// Tasks it runs at once, over all its tools; it takes no more.
    pub slots: usize,
    /// How long the server waits to hear from a worker about a task before giving it to
    /// another: the time a dead worker's tasks wait.
    pub ack_wait: Duration,
    /// Reply only once a signed checkpoint covers the task's records
    /// ([`TaskRequest::wait_covered`]).
    pub wait_covered: bool,
}

/// The durable consumer the workers of a tool share.
fn consumer_name(tool: &str) -> String {
    format!("workers-{}", token(tool))
}

/// Serves `tools` until `stop` resolves: takes their tasks while a slot is free, runs
/// each, replies, and acknowledges. Records go to `sink`.
pub async fn work(
    tools: Vec<Tool>,
    sink: Arc<dyn EventSink>,
    opts: WorkerOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .name(format!("warden worker {}", opts.host))
        .connect(super::servers(&opts.url))
        .await
        .map_err(|e| format!("connecting to {}: {e}", opts.url))?;
    let js = jetstream::new(client.clone());
    let slots = Arc::new(tokio::sync::Semaphore::new(opts.slots.max(1)));
    let mut loops = tokio::task::JoinSet::new();
    for tool in tools {
        let ctx = Ctx {
            tool: Arc::new(tool),
            client: client.clone(),
            sink: sink.clone(),
            opts: opts.clone(),
        };
        loops.spawn(take(ctx, js.clone(), slots.clone()));
    }
    tokio::select! {
        () = stop => {}
        done = loops.join_next() => {
            if let Some(Ok(Err(e))) = done {
                return Err(e);
            }
        }
    }
    // No more are taken; tasks running finish (and are acknowledged) before the worker
    // goes.
    loops.abort_all();
    while loops.join_next().await.is_some() {}
    let _ = slots.acquire_many(opts.slots.max(1) as u32).await;
    Ok(())
}

/// What every task of one tool on this worker shares.
#[derive(Clone)]
struct Ctx {
    tool: Arc<Tool>,
    client: async_nats::Client,
    sink: Arc<dyn EventSink>,
    opts: WorkerOptions,
}

/// Takes one tool's tasks, one per free slot.
async fn take(
    ctx: Ctx,
    js: jetstream::Context,
    slots: Arc<tokio::sync::Semaphore>,
) -> Result<(), String> {
    let name = ctx.tool.manifest().tool.name.clone();
    let mut backoff = Duration::from_millis(100);
    loop {
        let consumer = async {
            let stream = ensure_tasks_stream(&js, &name).await?;
            stream
                .get_or_create_consumer(
                    &consumer_name(&name),
                    pull::Config {
                        durable_name: Some(consumer_name(&name)),
                        description: Some(format!("warden workers of {name}")),
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        ack_wait: ctx.opts.ack_wait,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| format!("the consumer of {name}: {e}"))
        };
        let consumer: jetstream::consumer::PullConsumer = match consumer.await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("warden worker: {e}; trying again in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        loop {
            // The slot first: a task is taken only when it can run at once.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return Ok(());
            };
            let batch = consumer
                .fetch()
                .max_messages(1)
                .expires(Duration::from_millis(500))
                .messages()
                .await;
            let mut batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("warden worker: taking a task of {name}: {e}");
                    drop(slot);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            };
            match batch.next().await {
                Some(Ok(msg)) => {
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        handle(&ctx, msg).await;
                        drop(slot);
                    });
                }
                Some(Err(e)) => {
                    eprintln!("warden worker: taking a task of {name}: {e}");
                    drop(slot);
                }
                None => drop(slot),
            }
        }
    }
}

/// Runs one delivered task and answers it.
async fn handle(ctx: &Ctx, msg: jetstream::Message) {
    let attempt = msg.info().map_or(1, |i| i.delivered.max(1) as u32);
    let request: WorkRequest = match serde_json::from_slice(&msg.payload) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warden worker: dropping a task that does not parse: {e}");
            let _ = msg.ack_with(AckKind::Term).await;
            return;
        }
    };
    let manifest = ctx.tool.manifest();
    let answer = |outcome: ReplyOutcome| WorkReply {
        task: request.task.clone(),
        worker: ctx.opts.host.to_string(),
        attempt,
        outcome,
        stdout: String::new(),
        stderr: String::new(),
        duration_ms: 0,
        fuel: None,
        denials: Vec::new(),
    };
    let refused = if !valid_task_id(&request.task) {
        Some(bad_task_id(&request.task))
    } else if request.tool != manifest.tool.name {
        Some(format!(
            "this worker serves {:?} on {}, not {:?}",
            manifest.tool.name,
            tasks_subject(&manifest.tool.name),
            request.tool
        ))
    } else if millis(SystemTime::now()) > request.deadline_ms {
        // Nobody waits for it: running it now would only do its effects late.
        let _ = msg.ack_with(AckKind::Term).await;
        return;
    } else if attempt > 1 && !manifest.tool.idempotent {
        let why = format!(
            "task {} of {} was delivered again (attempt {attempt}): the worker that took it \
             before did not finish it, and {} says the tool is not idempotent (idempotent = \
             false), so it is not run again; whether its first run had effects, its records \
             on that worker say",
            request.task,
            manifest.tool.name,
            manifest.path.display()
        );
        not_retried(ctx, &request, attempt, &why);
        Some(why)
    } else {
        None
    };
    if let Some(why) = refused {
        reply(
            ctx,
            &request.reply,
            &answer(ReplyOutcome::Failed { message: why }),
        )
        .await;
        let _ = msg.ack_with(AckKind::Term).await;
        return;
    }
    let denials = Arc::new(Denials::new(ctx.sink.clone()));
    let mut req = TaskRequest::new(request.input.clone(), denials.clone());
    req.args = request.args.clone();
    req.stdin = B64.decode(&request.stdin).unwrap_or_default();
    req.call = request.call.clone();
    req.agent = request.agent.clone();
    req.client = request.client.clone();
    req.mcp = request.mcp.clone();
    req.task_id = Some(request.task.clone());
    req.attempt = Some(attempt);
    req.wait_covered = ctx.opts.wait_covered;
    let run = ctx.tool.run(req);
    tokio::pin!(run);
    // Tells the server the task is in hand, well within each ack wait.
    let mut progress = tokio::time::interval(ctx.opts.ack_wait / 3);
    progress.tick().await;
    let ran = loop {
        tokio::select! {
            ran = &mut run => break ran,
            _ = progress.tick() => {
                let _ = msg.ack_with(AckKind::Progress).await;
            }
        }
    };
    let mut out = answer(match &ran {
        Ok(o) => match &o.outcome {
            Outcome::Result(json) => ReplyOutcome::Result { json: json.clone() },
            Outcome::ToolError { kind, message } => ReplyOutcome::ToolError {
                error: (*kind).to_string(),
                message: message.clone(),
            },
            Outcome::Exit(code) => ReplyOutcome::Exit { code: *code },
        },
        Err(e) => ReplyOutcome::Failed {
            message: e.to_string(),
        },
    });
    if let Ok(o) = &ran {
        out.stdout = B64.encode(&o.stdout);
        out.stderr = B64.encode(&o.stderr);
        out.duration_ms = o.duration.as_millis() as u64;
        out.fuel = o.fuel;
    }
    out.denials = denials.take();
    reply(ctx, &request.reply, &out).await;
    if let Err(e) = msg.double_ack().await {
        eprintln!("warden worker: acknowledging task {}: {e}", request.task);
    }
}

fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn bad_task_id(id: &str) -> String {
    format!("task id {id:?} is not 1 to 64 letters, digits, '-' or '_'")
}

async fn reply(ctx: &Ctx, to: &str, reply: &WorkReply) {
    let Ok(body) = serde_json::to_vec(reply) else {
        return;
    };
    // The front end may be gone: the records say what happened.
    let _ = ctx.client.publish(to.to_string(), body.into()).await;
    let _ = ctx.client.flush().await;
}

/// The records of a task that was delivered again and not run: its start and its end,
/// saying why, under its own id and attempt.
fn not_retried(ctx: &Ctx, request: &WorkRequest, attempt: u32, why: &str) {
    let meta = TaskMeta {
        host: crate::task::hostname(),
        agent: request.agent.clone(),
        task: request.task.clone(),
        parent: None,
        tool: ctx.tool.manifest().tool.name.clone(),
        component: ctx.tool.digest().to_string(),
        mcp: request.mcp.clone(),
        attempt: Some(attempt),
    };
    let start = Event::new("task.start");
    let mut end = Event::new("task.end").outcome("error:not-retried");
    end.rule = Some(why.to_string());
    for ev in [&start, &end] {
        let _ = ctx.sink.emit(&Record {
            meta: &meta,
            time: SystemTime::now(),
            event: ev,
        });
    }
}
