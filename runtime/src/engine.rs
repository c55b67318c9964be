//! The wasmtime engine Warden runs every task on, and its epoch ticker.
//!
//! The configuration follows the measured floor: pooling allocator,
//! `memory_init_cow(false)`, `concurrency_support(false)` and epoch
//! interruption for timeouts. Fuel is metered only when asked for, because
//! it costs up to two thirds more on call-heavy code.

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
    /// Most tasks alive at once (slots in the pooling allocator).
    pub max_tasks: u32,
    /// Largest linear memory any task may have.
    pub max_memory: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            fuel: false,
            max_tasks: 100,
            max_memory: warden_host_api::limits::manifest::MAX_MEMORY,
        }
    }
}

/// Builds the engine and starts a thread that advances its epoch every
/// [`TICK`] until the engine is dropped.
pub fn build(cfg: &EngineConfig) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(cfg.max_tasks)
        .total_core_instances(cfg.max_tasks * 4)
        .total_memories(cfg.max_tasks * 2)
        .total_tables(cfg.max_tasks * 4)
        .total_stacks(cfg.max_tasks)
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
