//! What a plugin instance may use: memory, time per batch, log volume, and the thread stack
//! that runs it; plus the epoch ticker that makes the time limit enforceable.

use std::thread;
use std::time::Duration;

use wasmtime::{EngineWeak, ResourceLimiter};

/// How often the engine's epoch advances. Deadlines are whole ticks, so this is their
/// resolution; 10 ms costs nothing measurable and bounds an overrun to one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Resource limits for every instance of a plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory an instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// Longest one `handle` call may run, host `sql` calls included.
    pub batch_deadline: Duration,
    /// Most log lines kept per call, from the `log` import and from stdout/stderr together;
    /// the rest are counted and dropped.
    pub log_lines_per_call: u32,
    /// Stack of the thread that runs a projection: wasm stack plus room for host frames.
    pub thread_stack_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_bytes: 64 << 20,
            batch_deadline: Duration::from_secs(10),
            log_lines_per_call: 100,
            thread_stack_bytes: 8 << 20,
        }
    }
}

impl Limits {
    /// The batch deadline in epoch ticks (at least one).
    pub fn deadline_ticks(&self) -> u64 {
        (self.batch_deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

/// Largest wasm stack; the projection thread's stack must exceed it by the host's own frames.
pub const MAX_WASM_STACK: usize = 1 << 20;

/// Most linear memories one plugin instance may create.
const MAX_MEMORIES: usize = 4;
/// Most core instances (and tables) one plugin instance may create.
const MAX_CORE_INSTANCES: usize = 64;

/// Caps an instance's memory and tables, and says plainly which cap was hit.
pub struct Limiter {
    memory_bytes: usize,
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: &Limits) -> Limiter {
        Limiter {
            memory_bytes: limits.memory_bytes,
        }
    }
}

/// The memory cap was hit; carried as the trap's error so the host can recognise it.
#[derive(Debug, thiserror::Error)]
#[error("the plugin tried to grow its memory to {desired} bytes, over its limit of {limit} bytes")]
pub struct MemoryLimitExceeded {
    /// The size the guest asked for.
    pub desired: usize,
    /// The configured limit.
    pub limit: usize,
}

impl ResourceLimiter for Limiter {
    // The memory cap applies to each linear memory; bounding how many a component may create
    // (one per core instance in practice) keeps the total within a small multiple of it.
    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            // Trap rather than fail the grow: a guest allocator that sees a failed grow usually
            // aborts with an opaque `unreachable`, which hides the cause from the operator.
            return Err(MemoryLimitExceeded {
                desired,
                limit: self.memory_bytes,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Starts the thread that advances `engine`'s epoch every [`EPOCH_TICK`]; it ends on its own
/// when the engine is dropped.
pub fn start_epoch_ticker(engine: EngineWeak) {
    thread::Builder::new()
        .name("projector-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}
