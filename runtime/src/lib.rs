//! Warden runs AI-agent tools as WebAssembly components with only the
//! capabilities their manifest grants.
//!
//! A [`Runtime`] owns the engine and the linker, in which every WASI 0.2
//! interface goes through Warden's interposers (`warden-host-api`). Loading a
//! [`manifest::Manifest`] gives a [`Tool`]: the compiled component, its kind
//! and an `InstancePre`. Each [`Tool::run`] is one task in a fresh store with
//! only the manifest's grants (or a narrower grant), and every host call it makes
//! becomes an audit record.
//!
//! # Embedding Warden in an agent host
//!
//! ```no_run
//! # // Not run as a doctest: it needs the guests built (see the README). The
//! # // integration tests and `examples/agent_loop.rs` run the same calls.
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use warden::audit::checkpoint::HostKey;
//! use warden::audit::log::{AuditLog, LogOptions};
//! use warden::audit::stream::{AuditStream, Update};
//! use warden::{EngineConfig, Outcome, Runtime, TaskGrant, TaskRequest, manifest::Manifest};
//! use warden_host_api::grant::Narrowing;
//!
//! // One runtime per process: it runs up to `max_tasks` tasks at once and queues the rest.
//! let runtime = Runtime::new(&EngineConfig { fuel: true, ..EngineConfig::default() })?;
//! let search = runtime.load(Manifest::load("guest-examples/file-search/manifest.toml".as_ref())?)?;
//!
//! // Every record goes to the tamper-evident log, then to whoever watches the stream.
//! let log = AuditLog::open("audit.jsonl".as_ref(), HostKey::generate("me/warden-audit")?, LogOptions::default())?;
//! let stream = Arc::new(AuditStream::new(Arc::new(log)));
//! let mut watch = stream.subscribe();
//! tokio::spawn(async move {
//!     while let Some(Update::Record(r)) = watch.recv().await {
//!         println!("{} {} {}", r["task"], r["event"], r["decision"]);
//!     }
//! });
//!
//! // The planner holds the manifest's ceiling; a sub-agent gets the notes, read-only.
//! let root = search.root_grant(Duration::from_secs(300), Some("planner".into()));
//! let child = root.attenuate(&Narrowing::parse(["fs=/workspace/notes:read"])?, None, Some("sub".into()))?;
//!
//! let out = search
//!     .run(
//!         TaskRequest::new(r#"{"query":"needle","root":"/workspace/notes"}"#, stream.clone())
//!             .agent("sub")
//!             .grant(TaskGrant::from_lineage([&root, &child])?),
//!     )
//!     .await?;
//! if let Outcome::Result(json) = &out.outcome {
//!     println!("task {} took {:?}, fuel {:?}: {json}", out.task, out.duration, out.fuel);
//! }
//! # Ok(()) }
//! ```
//!
//! - **Tasks**: [`TaskRequest::new`] and its builder methods say what one task gets;
//!   [`TaskOutput`] has its id (as in its audit records), outcome, output, duration
//!   and fuel; [`TaskError`] says why it did not complete, naming the task.
//! - **Concurrency**: a runtime admits [`EngineConfig::max_tasks`] tasks at once over
//!   all its tools, each with a pool slot sized by [`engine::build`]; tasks beyond that
//!   wait, holding no instance, so memory stays bounded however many are started.
//!
//! # Grants
//!
//! Without a grant, a task holds what its manifest allows. An agent host issues a
//! root grant from a tool's manifest ([`Tool::root_grant`]), narrows it for each
//! sub-step or sub-agent with [`Grant::attenuate`] (never wider; see
//! [`warden_host_api::grant`]), and runs the task under the lineage with
//! [`TaskGrant::from_lineage`]; revoking any grant of it ([`Runtime::revocations`])
//! ends the task. Grants that travel between processes are signed tokens
//! ([`token`]).
//!
//! # Audit stream
//!
//! [`audit::stream::AuditStream`] wraps the log as every task's sink and publishes
//! each record, once the log holds it, to subscribers that never hold a task up.
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod audit;
pub mod baseline;
pub mod component;
#[cfg(any(feature = "mcp", feature = "fleet"))]
mod denials;
pub mod diff;
pub mod engine;
#[cfg(feature = "fleet")]
pub mod fleet;
pub mod func;
pub mod manifest;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod oci;
mod runtime;
mod task;
pub mod token;
mod tool;
pub mod trust;

pub use component::Kind;
pub use engine::EngineConfig;
pub use runtime::{LoadError, REVOCATION_POLL, Runtime};
pub use task::{
    DangerousTaskRequest, LineageError, Outcome, TaskError, TaskGrant, TaskOutput, TaskRequest,
    new_task_id,
};
pub use tool::{Provenance, Tool, ToolInfo};
