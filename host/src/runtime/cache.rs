//! The on-disk cache of compiled plugins.
//!
//! Compiling a Rust plugin takes tens of milliseconds and a Python one seconds; loading a cached
//! artifact takes well under one. Entries are keyed by the sha256 of the wasm and the engine's
//! compatibility hash, written under a temporary name and renamed into place, and never
//! rewritten: a loaded artifact is memory-mapped and must not change under the running code.
//! Only files this module wrote are ever deserialised.
//!
//! The cache is bounded: after each new entry, the least recently used entries beyond
//! [`MAX_CACHE_BYTES`] are deleted (a module compiled once per build in a development loop would
//! otherwise fill the disk). Deleting an entry a running plugin has mapped is safe on Unix: the
//! mapping keeps the file's pages; only the name goes.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Most bytes of compiled plugins kept; a Python plugin compiles to about 32 MB, a Rust one to
/// a few hundred KB.
pub const MAX_CACHE_BYTES: u64 = 1 << 30;

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
            // Marks it recently used, for pruning.
            if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                let _ = file.set_modified(std::time::SystemTime::now());
            }
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
        prune(&self.dir, MAX_CACHE_BYTES);
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

/// Deletes the least recently used `*.cwasm` files of `dir` until the rest fit in `max_bytes`;
/// the most recent one always stays.
fn prune(dir: &Path, max_bytes: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| {
            let metadata = e.metadata().ok()?;
            Some((metadata.modified().ok()?, metadata.len(), e.path()))
        })
        .collect();
    files.sort_by_key(|(modified, _, _)| std::cmp::Reverse(*modified));
    let mut kept = 0u64;
    for (index, (_, size, path)) in files.into_iter().enumerate() {
        kept += size;
        if index > 0 && kept > max_bytes {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::debug!(path = %path.display(), "compiled plugin evicted from the cache")
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), error = %error, "could not evict a compiled plugin")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn pruning_keeps_the_most_recently_used_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        for (index, name) in ["old", "middle", "new"].iter().enumerate() {
            let path = dir.path().join(format!("{name}.cwasm"));
            std::fs::write(&path, vec![0u8; 100]).unwrap();
            let file = std::fs::File::options().append(true).open(&path).unwrap();
            file.set_modified(now - Duration::from_secs(100 - index as u64 * 10))
                .unwrap();
        }
        std::fs::write(dir.path().join("other.txt"), vec![0u8; 1000]).unwrap();
        prune(dir.path(), 250);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["middle.cwasm", "new.cwasm", "other.txt"]);
        prune(dir.path(), 10);
        assert!(
            dir.path().join("new.cwasm").exists(),
            "the newest always stays"
        );
        assert!(!dir.path().join("middle.cwasm").exists());
    }
}
