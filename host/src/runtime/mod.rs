//! Running plugins: one wasmtime `Engine` and `Linker` per process, a compiled `Component` and
//! `ProjectionPre` per plugin module, and a fresh `Store` per plugin instance.
//!
//! This is the only module that uses wasmtime. It knows nothing about SQLite: a plugin's `sql`
//! import goes to whatever [`SqlSession`] the caller hands to [`Runtime::instantiate`].
//!
//! Architecture invariant: a plugin failure (error, trap, time or memory limit) never panics the
//! host; it comes back as a [`PluginError`] and the instance is replaced before its next call.
//! Plugins get no ambient capabilities: an empty WASI context and the `sql` and `log` imports.

mod bindings;
mod cache;
mod error;
mod host;
mod instance;
mod limits;
mod manifest;
mod output;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, OptLevel};

use bindings::{Projection, ProjectionPre};
use host::HostState;

pub use cache::{CacheStats, CompileCache};
pub use error::{PluginError, Rejection};
pub use instance::Instance;
pub use limits::{EPOCH_TICK, Limits};
pub use manifest::{Manifest, check_name};

use crate::value::{SqlError, SqlSession, Value};

/// The process-wide wasm runtime.
#[derive(Clone)]
pub struct Runtime {
    /// Shared by every plugin; its epoch is advanced by the ticker thread.
    engine: Engine,
    /// Every host import (WASI and ours), resolved once per plugin by `instantiate_pre`.
    linker: Arc<Linker<HostState>>,
    /// Where compiled plugins are kept between runs, if anywhere.
    cache: Option<CompileCache>,
    /// Limits given to every instance.
    limits: Limits,
}

/// A loaded, type-checked plugin module, ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    /// Imports resolved and exports checked against the `projection` world.
    pre: ProjectionPre<HostState>,
    /// What `describe` returned, validated.
    pub manifest: Manifest,
    /// sha256 of the wasm bytes, hex: identifies the module in dead letters and the cache.
    pub sha256: String,
    /// Where the module was loaded from, for messages.
    pub source: PathBuf,
}

impl Runtime {
    /// Builds the engine, the linker and the epoch ticker. `cache_dir` keeps compiled plugins.
    pub fn new(limits: Limits, cache_dir: Option<&Path>) -> anyhow::Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.max_wasm_stack(limits::MAX_WASM_STACK);
        config.cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        forbid_waiting(&mut linker)?;
        Projection::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        limits::start_epoch_ticker(engine.weak());
        let cache = cache_dir.map(|dir| CompileCache::new(dir, &engine));
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            cache,
            limits,
        })
    }

    /// The engine every plugin runs on.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// How the compile cache served loads so far; `None` without a cache.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(CompileCache::stats)
    }

    /// The limits every instance gets.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Loads the plugin module at `path`: reads, compiles (or loads from the cache), type-checks
    /// it against the `projection` world, and calls `describe` in a scratch instance.
    pub fn load(&self, path: &Path) -> anyhow::Result<Plugin> {
        let wasm =
            std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))?;
        self.load_bytes(path, &wasm)
            .with_context(|| format!("loading plugin {}", path.display()))
    }

    /// Like [`Runtime::load`], from bytes already read; `source` is used in messages only.
    pub fn load_bytes(&self, source: &Path, wasm: &[u8]) -> anyhow::Result<Plugin> {
        check_is_component(wasm)?;
        let sha256 = hex::encode(Sha256::digest(wasm));
        let component = match &self.cache {
            Some(cache) => cache.load(&self.engine, &sha256, wasm),
            None => {
                wasmtime::component::Component::new(&self.engine, wasm).map_err(anyhow::Error::from)
            }
        }
        .context("compiling the component")?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "the component imports something the host does not provide (its imports: \
                     {}); plugins may import only projector:plugin/sql@0.1.0, \
                     projector:plugin/log@0.1.0 and WASI 0.2",
                    names(
                        component
                            .component_type()
                            .imports(&self.engine)
                            .map(|(name, _)| name)
                    )
                )
            })?;
        let pre = ProjectionPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "the component does not implement the projector:plugin/projection@0.1.0 \
                     world: {}; build it against the WIT in wit/",
                    export_mismatch(&self.engine, &component)
                )
            })?;
        let manifest = self.describe(&pre)?;
        Ok(Plugin {
            pre,
            manifest,
            sha256,
            source: source.to_path_buf(),
        })
    }

    fn describe(&self, pre: &ProjectionPre<HostState>) -> anyhow::Result<Manifest> {
        let call = || -> anyhow::Result<Manifest> {
            let no_sql: Arc<Mutex<dyn SqlSession>> = Arc::new(Mutex::new(NoSql));
            let mut instance = Instance::new(self, pre, "(describing)", no_sql)
                .context("instantiating the plugin")?;
            let guest_manifest = instance.describe().context("calling describe")?;
            Manifest::validate(guest_manifest)
        };
        // A guest that prints makes WASI block on its output through tokio, which panics on a
        // thread that drives async tasks; loading is called from such threads (an async
        // command, a test), so there the call gets a thread of its own.
        if tokio::runtime::Handle::try_current().is_err() {
            return call();
        }
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("describe".into())
                .stack_size(self.limits.thread_stack_bytes)
                .spawn_scoped(scope, call)
                .context("starting a thread to call describe")?
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Creates a fresh instance of `plugin` whose `sql` import goes to `sql`.
    pub fn instantiate(
        &self,
        plugin: &Plugin,
        sql: Arc<Mutex<dyn SqlSession>>,
    ) -> anyhow::Result<Instance> {
        Instance::new(self, &plugin.pre, &plugin.manifest.name, sql)
    }
}

/// What the `projection` world needs a component to export.
const WORLD_EXPORTS: [&str; 2] = ["describe", "handle"];

/// Why a component's exports do not make it a projection, naming what is missing.
fn export_mismatch(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> String {
    let component_type = component.component_type();
    let exports: Vec<&str> = component_type
        .exports(engine)
        .map(|(name, _)| name)
        .collect();
    let missing: Vec<&str> = WORLD_EXPORTS
        .into_iter()
        .filter(|needed| !exports.contains(needed))
        .collect();
    if missing.is_empty() {
        format!(
            "it exports describe and handle, but not with the types this world gives them \
             (built against another version of the WIT?); its exports: {}",
            names(exports.into_iter())
        )
    } else {
        format!(
            "it does not export {} (its exports: {})",
            missing.join(" or "),
            names(exports.into_iter())
        )
    }
}

/// A list of names for a message, `none` when empty.
fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Replaces WASI's monotonic-clock subscriptions with traps. Waiting on one blocks inside the
/// host, where the epoch deadline cannot interrupt it, so a plugin that sleeps would hang its
/// projection (and shutdown) for good. Time is frozen for plugins anyway.
fn forbid_waiting(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::DynPollable;
    const REFUSAL: &str = "plugins may not sleep or wait on a clock: time is frozen inside handle";
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |_, (_,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            wasmtime::bail!(REFUSAL)
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |_, (_,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            wasmtime::bail!(REFUSAL)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The monotonic-clock interface as wasmtime-wasi 48 defines it; guests importing any 0.2.x
/// version resolve to it.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Refuses files that are not components before wasmtime's less specific errors would.
fn check_is_component(wasm: &[u8]) -> anyhow::Result<()> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
    if wasm.len() < 8 || &wasm[..4] != MAGIC {
        bail!("this is not a WebAssembly file (it does not start with the \\0asm magic bytes)");
    }
    if wasm[4..8] == CORE_VERSION {
        bail!(
            "this is a core WebAssembly module, not a component; build the plugin for the \
             wasm32-wasip2 target (or wrap it with `wasm-tools component new`)"
        );
    }
    if Engine::detect_precompiled(wasm).is_some() {
        bail!("this is a precompiled artifact; give the host the .wasm component itself");
    }
    Ok(())
}

/// The `sql` import outside a batch: every statement is refused.
struct NoSql;

impl SqlSession for NoSql {
    fn execute(&mut self, _: &str, _: &[Value]) -> Result<i64, SqlError> {
        Err(SqlError::Denied(
            "SQL is only available while handle runs".into(),
        ))
    }
    fn query(&mut self, _: &str, _: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        Err(SqlError::Denied(
            "SQL is only available while handle runs".into(),
        ))
    }
    fn call_deadline(&mut self, _: std::time::Instant) {}
}
