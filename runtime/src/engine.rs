//! The wasmtime engine Warden runs every task on, and its epoch ticker.
//!
//! The configuration follows the measured floor: pooling allocator,
//! `memory_init_cow(false)`, `concurrency_support(false)` and epoch
//! interruption for timeouts. Fuel is metered only when asked for, because
//! it costs up to two thirds more on call-heavy code.

use std::path::PathBuf;
use std::time::Duration;
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
};

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
    /// Directory for compiled components, keyed by a hash of the component
    /// and the engine's settings, so that a component is compiled once per
    /// machine instead of once per process. `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            fuel: false,
            max_tasks: 100,
            max_memory: warden_host_api::limits::manifest::MAX_MEMORY,
            cache_dir: None,
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
    if let Some(dir) = &cfg.cache_dir {
        private_dir(dir)?;
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(Cache::new(cache)?));
    }
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

/// Creates `dir` readable by its owner only: whoever can write the cache
/// can choose the machine code that tasks run.
fn private_dir(dir: &std::path::Path) -> wasmtime::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o022 != 0 {
        wasmtime::bail!(
            "compiled-component cache {} is writable by others (mode {:o}); make it private with chmod 700",
            dir.display(),
            mode & 0o777
        );
    }
    Ok(())
}
