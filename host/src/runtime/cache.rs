//! The on-disk cache of compiled plugins.
//!
//! Compiling a Rust plugin takes tens of milliseconds and a Python one seconds; loading a cached
//! artifact takes well under one. Entries are keyed by the sha256 of the wasm and the engine's
//! compatibility hash, written under a temporary name and renamed into place, and never
//! rewritten: a loaded artifact is memory-mapped and must not change under the running code.
//! Only files this module wrote are ever deserialised.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of precompiled components for one engine configuration.
#[derive(Clone, Debug)]
pub struct CompileCache {
    dir: PathBuf,
    engine_hash: String,
}

impl CompileCache {
    /// A cache under `dir` for artifacts compatible with `engine`.
    pub fn new(dir: &Path, engine: &Engine) -> CompileCache {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache {
            dir: dir.to_path_buf(),
            engine_hash: format!("{:016x}", hasher.finish()),
        }
    }

    /// Loads the component for `wasm` (whose sha256 is `sha256`) from the cache, compiling and
    /// storing it on a miss. A cache that cannot be written only costs the next start a compile.
    pub fn load(&self, engine: &Engine, sha256: &str, wasm: &[u8]) -> anyhow::Result<Component> {
        let path = self
            .dir
            .join(format!("{sha256}-{}.cwasm", self.engine_hash));
        if path.exists() {
            // SAFETY: the file was written by `store` below from `Engine::precompile_component`
            // output for an engine with the same compatibility hash, and is never modified in
            // place (entries are immutable and renamed into place whole).
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(path = %path.display(), error = %error, "compiled plugin cache entry unusable; recompiling")
                }
            }
        }
        let compiled = engine.precompile_component(wasm)?;
        if let Err(error) = self.store(&path, &compiled) {
            tracing::warn!(path = %path.display(), error = format!("{error:#}"), "could not cache the compiled plugin");
        }
        // SAFETY: `compiled` was produced by this engine's `precompile_component` just now.
        let component = unsafe { Component::deserialize(engine, &compiled) }?;
        Ok(component)
    }

    fn store(&self, path: &Path, compiled: &[u8]) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let temporary = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::fs::write(temporary.path(), compiled)?;
        temporary.persist(path)?;
        Ok(())
    }
}
