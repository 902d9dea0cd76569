//! The on-disk cache of compiled plugins.
//!
//! Compiling a Rust plugin takes tens of milliseconds and a Python one seconds; loading a cached
//! artifact takes well under one. Entries are keyed by the sha256 of the wasm and the engine's
//! compatibility hash, written under a temporary name and renamed into place, and never
//! changed in place. A loaded entry is read into memory whole (it must be, to be checked), so that the
//! code running is the code checked, whatever happens to the file afterwards.
//!
//! The cache is bounded: after each new entry, the least recently used entries beyond
//! [`MAX_CACHE_BYTES`] are deleted (a module compiled once per build in a development loop would
//! otherwise fill the disk).
//!
//! # Trust
//!
//! Deserialising an entry runs its machine code in the host process, outside the sandbox:
//! wasmtime checks a header, not the code. A file in this directory is therefore as powerful as
//! the projector binary, and an entry is loaded only if this host wrote it:
//!
//! - **The directory is private.** On Unix it is created with mode 0700, and it is not used at
//!   all (one WARN; every load compiles) unless it is owned by the user the projector runs as and
//!   neither its group nor others can write it. Otherwise another user could plant an entry.
//! - **Each entry is MAC'd.** The directory holds `key`, 32 random bytes made on first use, mode
//!   0600 and refused unless owned by this user and unreadable by others. Storing an entry
//!   records HMAC-SHA256 of its name and its contents' SHA-256 in `<entry>.hmac`; loading reads
//!   the entry (owned by this user, not writable by others, at most [`MAX_ENTRY_BYTES`], never
//!   through a symbolic link) and compares. An entry that fails any check is deleted, with a
//!   WARN saying why, and recompiled.
//!
//! A plain digest beside the entry would only catch accidents (corruption, a write cut short, a
//! file copied or moved in from elsewhere): whoever can write the entry can write its digest.
//! The keyed MAC also refuses entries forged by anyone who cannot read the key, which only this
//! user can: that covers a directory made writable by others after the check above, a parent
//! directory writable by others (the directory swapped for another), and files restored from
//! another machine or data directory. It cannot defend against this same user (or root): they
//! can read the key, and could as well replace the projector binary. Plugins cannot write here:
//! they get no file system.

mod private;
mod prune;
#[cfg(test)]
mod tests;
mod trust;

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use wasmtime::Engine;
use wasmtime::component::Component;

pub use trust::MAX_ENTRY_BYTES;
use trust::{Entry, Trust};

/// Most bytes of compiled plugins kept; a Python plugin compiles to about 32 MB, a Rust one to
/// a few hundred KB.
pub const MAX_CACHE_BYTES: u64 = 1 << 30;

/// A directory of precompiled components for one engine configuration.
#[derive(Clone, Debug)]
pub struct CompileCache {
    dir: PathBuf,
    engine_hash: String,
    /// Checked on first use and shared by clones: `None` if the directory is not safe to use.
    trust: Arc<OnceLock<Option<Trust>>>,
    counts: Arc<Counts>,
}

/// How loads went since the cache was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads served from a cached entry.
    pub hits: u64,
    /// Loads that compiled (including every load when the cache is not used).
    pub misses: u64,
    /// Entries found but refused as not written by this host (each also counts as a miss).
    pub refused: u64,
}

#[derive(Debug, Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    refused: AtomicU64,
}

impl CompileCache {
    /// A cache under `dir` for artifacts compatible with `engine`. Nothing is touched on disk
    /// until the first load.
    pub fn new(dir: &Path, engine: &Engine) -> CompileCache {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache {
            dir: dir.to_path_buf(),
            engine_hash: format!("{:016x}", hasher.finish()),
            trust: Arc::default(),
            counts: Arc::default(),
        }
    }

    /// How loads went so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counts.hits.load(Ordering::Relaxed),
            misses: self.counts.misses.load(Ordering::Relaxed),
            refused: self.counts.refused.load(Ordering::Relaxed),
        }
    }

    /// Loads the component for `wasm` (whose sha256 is `sha256`) from the cache, compiling and
    /// storing it on a miss. A cache that cannot be written only costs the next start a compile.
    pub fn load(&self, engine: &Engine, sha256: &str, wasm: &[u8]) -> anyhow::Result<Component> {
        let Some(trust) = self.trust() else {
            self.counts.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(Component::new(engine, wasm)?);
        };
        let name = format!("{sha256}-{}.cwasm", self.engine_hash);
        let path = self.dir.join(&name);
        match trust.read(&self.dir, &name) {
            Entry::Trusted { bytes, file } => {
                // Marks it recently used, for pruning; its owner may, read-only.
                let _ = file.set_modified(std::time::SystemTime::now());
                // SAFETY: `bytes` are, by their MAC, exactly what `store` below wrote from
                // `Engine::precompile_component` output for an engine with the same
                // compatibility hash, and they were read into memory that nothing else writes.
                match unsafe { Component::deserialize(engine, &bytes) } {
                    Ok(component) => {
                        self.counts.hits.fetch_add(1, Ordering::Relaxed);
                        return Ok(component);
                    }
                    Err(error) => {
                        tracing::warn!(path = %path.display(), error = %error, "compiled plugin cache entry unusable; recompiling")
                    }
                }
            }
            Entry::Refused(error) => {
                self.counts.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(path = %path.display(), error = format!("{error:#}"), "compiled plugin cache entry not trusted; deleting it and recompiling");
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(trust::mac_path(&path));
            }
            Entry::Absent => {}
        }
        self.counts.misses.fetch_add(1, Ordering::Relaxed);
        let compiled = engine.precompile_component(wasm)?;
        if let Err(error) = self.store(trust, &name, &compiled) {
            tracing::warn!(path = %path.display(), error = format!("{error:#}"), "could not cache the compiled plugin");
        }
        prune::prune(&self.dir, MAX_CACHE_BYTES);
        // SAFETY: `compiled` was produced by this engine's `precompile_component` just now.
        let component = unsafe { Component::deserialize(engine, &compiled) }?;
        Ok(component)
    }

    /// The directory's trust, checked on first use; `None` (after one WARN) if it is unsafe.
    fn trust(&self) -> Option<&Trust> {
        self.trust
            .get_or_init(|| match Trust::open(&self.dir) {
                Ok(trust) => Some(trust),
                Err(error) => {
                    tracing::warn!(path = %self.dir.display(), error = format!("{error:#}"), "not using the compiled plugin cache: every plugin load compiles");
                    None
                }
            })
            .as_ref()
    }

    /// Writes the MAC record, then the entry, each whole and synced before its rename: an entry
    /// never appears before its record, and a crash leaves at worst an entry that is refused.
    fn store(&self, trust: &Trust, name: &str, compiled: &[u8]) -> anyhow::Result<()> {
        anyhow::ensure!(
            compiled.len() as u64 <= MAX_ENTRY_BYTES,
            "it has {} bytes, more than the {MAX_ENTRY_BYTES} an entry may have",
            compiled.len()
        );
        let path = self.dir.join(name);
        self.write(
            &trust::mac_path(&path),
            trust.record(name, compiled).as_bytes(),
        )?;
        self.write(&path, compiled)?;
        private::sync_dir(&self.dir);
        Ok(())
    }

    /// Replaces `path` with `contents`, created mode 0600 under a temporary name and synced.
    fn write(&self, path: &Path, contents: &[u8]) -> anyhow::Result<()> {
        let mut temporary = tempfile::NamedTempFile::new_in(&self.dir)
            .with_context(|| format!("creating a temporary file in {}", self.dir.display()))?;
        temporary.write_all(contents)?;
        temporary.as_file().sync_all()?;
        temporary
            .persist(path)
            .with_context(|| format!("renaming into {}", path.display()))?;
        Ok(())
    }
}
