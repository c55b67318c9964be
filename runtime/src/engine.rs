//! The wasmtime engine Warden runs every task on, and its epoch ticker.
//!
//! The configuration follows the measured floor: pooling allocator,
//! `memory_init_cow(false)`, `concurrency_support(false)` and epoch
//! interruption for timeouts. Fuel is metered only when asked for, because
//! it costs up to two thirds more on call-heavy code.

pub mod cache;

use std::path::PathBuf;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: a running task yields to the executor and
/// checks its timeout once per tick.
pub const TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Meter fuel, so that manifests may set `limits.fuel`.
    pub fuel: bool,
    /// Most tasks alive at once: the pooling allocator holds this many task slots (see
    /// [`build`]), and a [`Runtime`](crate::Runtime) admits this many tasks at a time;
    /// the rest wait their turn. At least 1.
    pub max_tasks: u32,
    /// Largest linear memory any task may have.
    pub max_memory: u64,
    /// Directory for compiled components, keyed by a hash of the component
    /// and the engine's settings, so that a component is compiled once per
    /// machine instead of once per process. `None` compiles every time. See
    /// [`cache`]: each artifact is authenticated with the secret of
    /// [`cache_key`](Self::cache_key) before it is loaded as machine code.
    pub cache_dir: Option<PathBuf>,
    /// The file holding the secret that authenticates the artifacts in
    /// [`cache_dir`](Self::cache_dir) (created with mode 0600 on first use);
    /// required with it. Keep it apart from the cache, as the CLI keeps it in
    /// [`keys_dir`](crate::audit::keys_dir): whoever can read it and write
    /// the cache chooses the machine code tasks run.
    pub cache_key: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            fuel: false,
            max_tasks: 100,
            max_memory: warden_host_api::limits::manifest::MAX_MEMORY,
            cache_dir: None,
            cache_key: None,
        }
    }
}

/// Core module instances one task may hold. A Rust `wasm32-wasip2` component has
/// three (the program, and the shim and fixup modules `wit-component` adds to lower its
/// imports); one adapted from `wasip1` has four. The rest is room for components composed
/// of a few others.
pub const CORE_INSTANCES_PER_TASK: u32 = 8;

/// Linear memories one task may hold: Rust components have one.
pub const MEMORIES_PER_TASK: u32 = 2;

/// Tables one task may hold: Rust components have two (the program's function table and
/// the shim's).
pub const TABLES_PER_TASK: u32 = 4;

/// Builds the engine and starts a thread that advances its epoch every
/// [`TICK`] until the engine is dropped.
///
/// The pooling allocator gets `max_tasks` task slots: per task one component instance,
/// one async stack, and [`CORE_INSTANCES_PER_TASK`], [`MEMORIES_PER_TASK`] and
/// [`TABLES_PER_TASK`]. The same numbers are each component's own maximum, checked when it
/// is compiled, so any component that loads fits `max_tasks` times over: a task that was
/// admitted never fails for want of a slot. Memory slots are address space reserved up
/// to `max_memory`; only what a task touches becomes resident, and it is given back when
/// the task ends.
pub fn build(cfg: &EngineConfig) -> wasmtime::Result<Engine> {
    if cfg.max_tasks == 0 {
        wasmtime::bail!("max_tasks is 0: a runtime needs at least one task slot");
    }
    let tasks = cfg.max_tasks;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(tasks)
        .total_core_instances(tasks.saturating_mul(CORE_INSTANCES_PER_TASK))
        .max_core_instances_per_component(CORE_INSTANCES_PER_TASK)
        .total_memories(tasks.saturating_mul(MEMORIES_PER_TASK))
        .max_memories_per_component(MEMORIES_PER_TASK)
        .total_tables(tasks.saturating_mul(TABLES_PER_TASK))
        .max_tables_per_component(TABLES_PER_TASK)
        .total_stacks(tasks)
        .max_memory_size(usize::try_from(cfg.max_memory).unwrap_or(usize::MAX));
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(false)
        .concurrency_support(false)
        .epoch_interruption(true)
        .consume_fuel(cfg.fuel);
    let engine = Engine::new(&config)?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("warden-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })?;
    Ok(engine)
}

/// The compiled-component cache used by the CLI:
/// `$XDG_CACHE_HOME/warden/compiled`, or `~/.cache/warden/compiled`.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("warden/compiled"))
}
