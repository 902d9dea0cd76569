//! Watches the plugins folder and reports settled changes of its `*.wasm` files. The only user of
//! notify.
//!
//! Filesystem events are only hints of which file to look at: a file is reported once it has
//! been quiet for a while, and by its content hash, so temporaries, half-copied files, repeated
//! events and touches never reach the caller.
//! The first changes are the files already there, so start-up and later changes go through one
//! door. Whether the bytes are a usable plugin is for the caller to decide.

mod folder;
mod scan;
mod settle;
#[cfg(test)]
mod tests;
mod watch;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use anyhow::Context;

use folder::Folder;
use settle::Signal;

/// How the folder is watched (`[reload] watch` in the config: `auto`, `notify` or `poll`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// The platform's watcher (inotify on Linux), or polling where it cannot be used (some
    /// network filesystems and containers, or the inotify watch limit reached), with a WARN
    /// saying why.
    Auto,
    /// The platform's watcher (inotify on Linux) only: starting fails if it cannot be used.
    Notify,
    /// Polling every `poll_interval`: slower, but works on any filesystem.
    Poll,
}

/// How the folder is watched, and when a file counts as settled.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// How changes are noticed. Default `Auto`.
    pub mode: WatchMode,
    /// How long a file must stay quiet (no event, same size and times) before it is read.
    /// Default 300 ms. A writer that pauses longer than this mid-file is reported early, so
    /// slow writers should write a temporary name and rename it.
    pub debounce: Duration,
    /// How often the folder is polled in `Poll` mode. Default 1 s.
    pub poll_interval: Duration,
    /// How often the whole folder is compared with what was reported, for changes whose events
    /// were lost. Default 30 s; in `Poll` mode at least every `poll_interval`.
    pub rescan_interval: Duration,
    /// Files larger than this are reported `Unreadable` without being read. Default 256 MiB.
    pub max_file_bytes: u64,
}

/// A settled change of one plugin file. Paths are the watched folder, made absolute, joined with
/// the file name.
#[derive(Clone, PartialEq, Eq)]
pub enum Change {
    /// `path` holds these bytes now (a new file, or its content hash changed).
    Present {
        /// The plugin file.
        path: PathBuf,
        /// Its whole content.
        wasm: Arc<[u8]>,
        /// The SHA-256 of `wasm`, in lowercase hex.
        sha256: String,
    },
    /// `path` is gone (deleted, or renamed away).
    Removed {
        /// The plugin file that was reported before.
        path: PathBuf,
    },
    /// `path` exists but cannot be used as read (too large, unreadable).
    Unreadable {
        /// The plugin file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
}

/// The watch on a plugins folder: settled changes come out of [`Watcher::next`].
/// Dropping it stops the watch and its thread.
pub struct Watcher {
    /// Batches from the settle thread, which owns the notify watcher and does every blocking
    /// look at the folder; closed when that thread ends.
    batches: tokio::sync::mpsc::Receiver<Vec<Change>>,
    /// Tells the settle thread to stop when this is dropped: notify's callback holds another
    /// sender, so the channel alone would never close.
    signals: mpsc::Sender<Signal>,
    mode: WatchMode,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            mode: WatchMode::Auto,
            debounce: Duration::from_millis(300),
            poll_interval: Duration::from_secs(1),
            rescan_interval: Duration::from_secs(30),
            max_file_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Change {
    /// The plugin file the change is about.
    pub fn path(&self) -> &Path {
        match self {
            Change::Present { path, .. } | Change::Removed { path } => path,
            Change::Unreadable { path, .. } => path,
        }
    }
}

impl fmt::Debug for Change {
    // The bytes are left out: a plugin is megabytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Present { path, wasm, sha256 } => (f.debug_struct("Present"))
                .field("path", path)
                .field("bytes", &wasm.len())
                .field("sha256", sha256)
                .finish(),
            Change::Removed { path } => f.debug_struct("Removed").field("path", path).finish(),
            Change::Unreadable { path, reason } => (f.debug_struct("Unreadable"))
                .field("path", path)
                .field("reason", reason)
                .finish(),
        }
    }
}

impl Watcher {
    /// Starts watching `dir`, which must be an existing folder.
    ///
    /// The first batch it yields, at once, is the initial scan: the folder's `*.wasm` files
    /// sorted by file name (empty for an empty folder). Later batches are settled changes.
    pub fn start(dir: &Path, options: WatchOptions) -> anyhow::Result<Watcher> {
        let metadata = std::fs::metadata(dir)
            .with_context(|| format!("cannot watch the plugins folder {}", dir.display()))?;
        if !metadata.is_dir() {
            return Err(anyhow::anyhow!(
                "cannot watch the plugins folder {}: not a folder",
                dir.display()
            ));
        }
        if options.poll_interval.is_zero() || options.rescan_interval.is_zero() {
            return Err(anyhow::anyhow!("plugin watch intervals must not be zero"));
        }
        // notify reports paths under the path it was given; an absolute one makes every path
        // reported comparable, whatever the working directory.
        let dir = std::path::absolute(dir)
            .with_context(|| format!("resolving the plugins folder {}", dir.display()))?;
        let (signals, received) = mpsc::channel();
        let (backend, mode) = watch::open(&dir, &options, &signals)?;
        // notify's polling notices a change only if the modification time moved to a later
        // second: rescans, which compare size and every time, run as often as its polls.
        let rescan_every = match mode {
            WatchMode::Poll => options.rescan_interval.min(options.poll_interval),
            WatchMode::Auto | WatchMode::Notify => options.rescan_interval,
        };
        let (batch_sender, batches) = tokio::sync::mpsc::channel(1);
        let folder = Folder::new(dir, &options);
        settle::spawn(folder, backend, mode, rescan_every, received, batch_sender)?;
        Ok(Watcher {
            batches,
            signals,
            mode,
        })
    }

    /// The next batch of settled changes (several files may settle together), sorted by path,
    /// or `None` once the watcher has ended. Cancel-safe.
    pub async fn next(&mut self) -> Option<Vec<Change>> {
        self.batches.recv().await
    }

    /// The mode in use: `Notify` or `Poll`, once `Auto` has chosen.
    pub fn mode(&self) -> WatchMode {
        self.mode
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // The thread may have ended already; then there is no one to tell.
        let _ = self.signals.send(Signal::Stop);
    }
}
