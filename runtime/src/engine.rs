//! The wasmtime engine Warden runs every task on, and its epoch ticker.
//!
//! The configuration follows the measured floor: pooling allocator,
//! `memory_init_cow(false)`, `concurrency_support(false)` and epoch
//! interruption for timeouts. Fuel is metered only when asked for, because
//! it costs up to two thirds more on call-heavy code.

pub mod cache;
pub mod slow;

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
    /// What each task slot holds: the most any one component may need.
    pub slot: TaskSlot,
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
    /// How much of each task slot's linear memory, and of its tables, stays resident
    /// after a task, zeroed for the next, instead of being handed back to the kernel:
    /// only the pages the task touched, found with Linux's `PAGEMAP_SCAN` (6.7 and
    /// later; elsewhere everything is handed back, as with 0). Handing pages back unmaps
    /// them, which stops every other thread of the process to flush its TLB: with two
    /// threads running tasks that cost more than the second thread gave. Each slot that
    /// ran a task keeps up to this much.
    pub keep_resident: usize,
}

/// [`EngineConfig::keep_resident`] unless set: a small Rust tool's whole memory.
pub const DEFAULT_KEEP_RESIDENT: usize = 2 << 20;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            fuel: false,
            max_tasks: 100,
            max_memory: warden_host_api::limits::manifest::MAX_MEMORY,
            slot: TaskSlot::DEFAULT,
            cache_dir: None,
            cache_key: None,
            keep_resident: DEFAULT_KEEP_RESIDENT,
        }
    }
}

/// What one task slot of the pooling allocator holds, and so the most any one component may
/// need: a component is refused when it is compiled if it needs more, so a task that was
/// admitted never fails for want of a slot.
///
/// Core instances and tables cost next to nothing until used; each memory reserves address
/// space for [`EngineConfig::max_memory`] (see [`build`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSlot {
    /// Core module instances, counted across the component and every component nested in
    /// it. A Rust `wasm32-wasip2` component has three (the program, and the shim and
    /// fixup modules `wit-component` adds to lower its imports); componentize-js 0.23 makes
    /// four; componentize-py 0.25 makes 14 (libc, libpython, its runtime, the WASI adapter,
    /// their shims), and one more for each Python extension module linked in. A slot's
    /// instances cost nothing until a task creates them.
    pub core_instances: u32,
    /// Linear memories the component defines: one for Rust, Python and JavaScript alike.
    /// Each reserves address space for [`EngineConfig::max_memory`] in every slot.
    pub memories: u32,
    /// Tables the component defines: two for Rust, Python and JavaScript alike. Each reserves
    /// 160 KiB of address space (20,000 elements) in every slot.
    pub tables: u32,
}

impl TaskSlot {
    /// Room for componentize-py's output with fifty extension modules linked in, and for
    /// components composed of a few others.
    pub const DEFAULT: TaskSlot = TaskSlot {
        core_instances: 64,
        memories: 2,
        tables: 4,
    };
}

impl Default for TaskSlot {
    fn default() -> Self {
        TaskSlot::DEFAULT
    }
}

/// One of the numbers of a [`TaskSlot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotLimit {
    /// [`TaskSlot::core_instances`].
    CoreInstances,
    /// [`TaskSlot::memories`].
    Memories,
    /// [`TaskSlot::tables`].
    Tables,
}

impl SlotLimit {
    /// What is counted, e.g. `core instances`.
    pub fn what(self) -> &'static str {
        match self {
            SlotLimit::CoreInstances => "core instances",
            SlotLimit::Memories => "memories",
            SlotLimit::Tables => "tables",
        }
    }

    /// The field of [`TaskSlot`], e.g. `core_instances`.
    pub fn field(self) -> &'static str {
        match self {
            SlotLimit::CoreInstances => "core_instances",
            SlotLimit::Memories => "memories",
            SlotLimit::Tables => "tables",
        }
    }

    /// The CLI's option that sets it, e.g. `--slot-instances`.
    pub fn flag(self) -> &'static str {
        match self {
            SlotLimit::CoreInstances => "--slot-instances",
            SlotLimit::Memories => "--slot-memories",
            SlotLimit::Tables => "--slot-tables",
        }
    }

    /// The environment variable the CLI reads it from, e.g. `WARDEN_SLOT_INSTANCES`.
    pub fn env(self) -> &'static str {
        match self {
            SlotLimit::CoreInstances => "WARDEN_SLOT_INSTANCES",
            SlotLimit::Memories => "WARDEN_SLOT_MEMORIES",
            SlotLimit::Tables => "WARDEN_SLOT_TABLES",
        }
    }

    /// Its value in `slot`.
    pub fn of(self, slot: &TaskSlot) -> u32 {
        match self {
            SlotLimit::CoreInstances => slot.core_instances,
            SlotLimit::Memories => slot.memories,
            SlotLimit::Tables => slot.tables,
        }
    }

    /// The limit and the component's need, from the pooling allocator's refusal of a component
    /// (`The component transitively contains 14 core module instances, which exceeds ...`);
    /// `None` for any other error.
    pub fn refusal(error: &str) -> Option<(SlotLimit, u32)> {
        let (_, rest) = error.split_once("The component transitively contains ")?;
        let (need, rest) = rest.split_once(' ')?;
        let limit = [
            ("core module instances,", SlotLimit::CoreInstances),
            ("Wasm linear memories,", SlotLimit::Memories),
            ("tables,", SlotLimit::Tables),
        ]
        .into_iter()
        .find(|(words, _)| rest.starts_with(words))?
        .1;
        Some((limit, need.parse().ok()?))
    }
}

/// Slots whose memory is handed back together (see [`build`]).
const DECOMMIT_BATCH: usize = 8;

/// Builds the engine and starts a thread that advances its epoch every
/// [`TICK`] until the engine is dropped.
///
/// The pooling allocator gets `max_tasks` task slots: per task one component instance,
/// one async stack, and what [`EngineConfig::slot`] says. The same numbers are each
/// component's own maximum, checked when it is compiled, so any component that loads fits
/// `max_tasks` times over: a task that was admitted never fails for want of a slot. Memory slots are address space reserved up
/// to `max_memory`; only what a task touches becomes resident, and it is given back when
/// the task ends.
pub fn build(cfg: &EngineConfig) -> wasmtime::Result<Engine> {
    if cfg.max_tasks == 0 {
        wasmtime::bail!("max_tasks is 0: a runtime needs at least one task slot");
    }
    let tasks = cfg.max_tasks;
    let slot = cfg.slot;
    if slot.core_instances == 0 || slot.memories == 0 || slot.tables == 0 {
        wasmtime::bail!("a task slot needs at least one core instance, memory and table: {slot:?}");
    }
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(tasks)
        .total_core_instances(tasks.saturating_mul(slot.core_instances))
        .max_core_instances_per_component(slot.core_instances)
        .total_memories(tasks.saturating_mul(slot.memories))
        .max_memories_per_component(slot.memories)
        .total_tables(tasks.saturating_mul(slot.tables))
        .max_tables_per_component(slot.tables)
        .total_stacks(tasks)
        .max_memory_size(usize::try_from(cfg.max_memory).unwrap_or(usize::MAX));
    // Without the scan, keeping memory resident means zeroing all of it after every
    // task, touched or not: far slower than handing it back.
    if cfg.keep_resident > 0 && PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(wasmtime::Enabled::Yes)
            .linear_memory_keep_resident(cfg.keep_resident)
            .table_keep_resident(cfg.keep_resident);
    }
    // What is handed back goes in batches, a few unmaps at a time instead of one per
    // slot; a task that finds no free slot flushes the batch first.
    pool.decommit_batch_size(DECOMMIT_BATCH);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The pooling allocator's words, as wasmtime 48 writes them.
    #[test]
    fn a_refusal_names_the_limit_and_the_need() {
        let cases = [
            (
                "The component transitively contains 14 core module instances, which exceeds the configured maximum of 8 in the pooling allocator",
                Some((SlotLimit::CoreInstances, 14)),
            ),
            (
                "The component transitively contains 3 Wasm linear memories, which exceeds the configured maximum of 2 in the pooling allocator",
                Some((SlotLimit::Memories, 3)),
            ),
            (
                "The component transitively contains 5 tables, which exceeds the configured maximum of 4 in the pooling allocator",
                Some((SlotLimit::Tables, 5)),
            ),
            (
                "table index 0 has a minimum element size of 30000 which exceeds the limit of 20000",
                None,
            ),
            ("failed to parse WebAssembly module", None),
        ];
        for (text, want) in cases {
            // As `{e:#}` prints it, behind the context wasmtime adds.
            let error = format!("failed to compile component: {text}");
            assert_eq!(SlotLimit::refusal(&error), want, "{text}");
        }
    }

    #[test]
    fn an_empty_slot_is_refused() {
        let cfg = EngineConfig {
            slot: TaskSlot {
                memories: 0,
                ..TaskSlot::DEFAULT
            },
            ..EngineConfig::default()
        };
        let err = build(&cfg).expect_err("refused").to_string();
        assert!(err.contains("at least one"), "{err}");
    }
}
