//! The settle thread: turns notify's events and the clock into batches of settled changes.
//!
//! Events are only hints of which file to look at: what is reported always comes from looking
//! at the file once it is quiet, so lost, doubled or reordered events can make a change late,
//! never wrong, and the periodic rescan bounds how late.
//! All blocking work (stat, read, hash) happens on this thread, never on the async runtime.

use std::collections::HashSet;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};

use super::folder::Folder;
use super::scan;
use super::watch::Backend;
use super::{Change, WatchMode};

/// What the settle thread is told.
pub(super) enum Signal {
    /// An event or error from notify's callback.
    Fs(notify::Result<notify::Event>),
    /// The `Watcher` was dropped.
    Stop,
}

/// The settle thread's state.
struct Settle {
    folder: Folder,
    /// The notify watcher, owned here so that it can be pointed at the folder again once a
    /// deleted or moved folder is back (an inotify watch follows the inode, not the name).
    backend: Backend,
    mode: WatchMode,
    signals: Receiver<Signal>,
    /// Bounded to one batch, so a caller that stops asking holds this thread rather than
    /// letting file contents pile up.
    batches: tokio::sync::mpsc::Sender<Vec<Change>>,
    rescan_every: Duration,
    next_rescan: Instant,
    /// The inotify watch went with the folder; it is placed again by a rescan that finds it.
    watch_lost: bool,
    /// Problems logged at WARN since the folder was last listed cleanly: one that repeats on
    /// every poll is logged once.
    problems: HashSet<String>,
}

/// Starts the settle thread. Its first batch is the initial scan of the folder.
pub(super) fn spawn(
    folder: Folder,
    backend: Backend,
    mode: WatchMode,
    rescan_every: Duration,
    signals: Receiver<Signal>,
    batches: tokio::sync::mpsc::Sender<Vec<Change>>,
) -> anyhow::Result<()> {
    let mut settle = Settle {
        folder,
        backend,
        mode,
        signals,
        batches,
        rescan_every,
        // Set by the initial scan; the watch is already in place, so nothing between the two
        // is lost.
        next_rescan: Instant::now(),
        watch_lost: false,
        problems: HashSet::new(),
    };
    settle.initial_scan();
    std::thread::Builder::new()
        .name("plugin-watch".into())
        .spawn(move || settle.run())
        .context("starting the plugin watch thread")?;
    Ok(())
}

impl Settle {
    /// The initial scan, before the thread starts: one batch, even an empty one, with the files
    /// there at start taken as settled (a start must not wait a debounce, and the supervisor
    /// learns the folder was empty). One still being written is read as it is; its later writes
    /// make it a change like any other.
    fn initial_scan(&mut self) {
        let start = Instant::now();
        self.next_rescan = start + self.rescan_every;
        let quiet_since = start.checked_sub(self.folder.debounce()).unwrap_or(start);
        if let Err(error) = self.folder.rescan(quiet_since) {
            self.problem("cannot list the plugins folder", &error.to_string());
        }
        let initial = self.folder.settle(start);
        // The channel is new and holds one batch: this cannot block.
        let _ = self.batches.try_send(initial);
    }

    /// Runs until the `Watcher` is dropped.
    fn run(mut self) {
        loop {
            let wake_at = (self.folder.next_batch_at())
                .map_or(self.next_rescan, |batch_at| batch_at.min(self.next_rescan));
            let timeout = wake_at.saturating_duration_since(Instant::now());
            match self.signals.recv_timeout(timeout) {
                Ok(Signal::Fs(Ok(event))) => self.on_event(event),
                Ok(Signal::Fs(Err(error))) => self.on_error(error),
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if now >= self.next_rescan {
                self.rescan(now);
            }
            let changes = self.folder.settle(now);
            if !changes.is_empty() && self.batches.blocking_send(changes).is_err() {
                return;
            }
        }
    }

    fn on_event(&mut self, event: notify::Event) {
        let now = Instant::now();
        if event.need_rescan() {
            // inotify's queue overflowed: events were lost.
            self.next_rescan = now;
        }
        for path in event.paths {
            if path == self.folder.dir() {
                if matches!(
                    event.kind,
                    EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
                ) {
                    self.folder_gone(now);
                }
                continue;
            }
            let in_folder = path.parent() == Some(self.folder.dir());
            let plugin = path.file_name().is_some_and(scan::is_plugin_name);
            if in_folder && plugin && changes_content(&event.kind) {
                self.folder.note_activity(path, now);
            }
        }
    }

    fn on_error(&mut self, error: notify::Error) {
        self.problem("watching the plugins folder failed", &error.to_string());
        // Whatever went wrong, events may have been lost with it.
        self.next_rescan = Instant::now();
    }

    /// The folder itself was deleted or moved away: its files are gone with it.
    fn folder_gone(&mut self, now: Instant) {
        if self.mode == WatchMode::Notify {
            self.watch_lost = true;
        }
        // Polling keeps watching the path, and reports the folder's return itself.
        self.next_rescan = now;
    }

    fn rescan(&mut self, now: Instant) {
        self.next_rescan = now + self.rescan_every;
        // While the folder is missing, the failed listing below is the one thing to log.
        if self.watch_lost && self.folder.dir().is_dir() {
            self.watch_again();
        }
        match self.folder.rescan(now) {
            Ok(()) => self.problems.clear(),
            Err(error) => self.problem("cannot list the plugins folder", &error.to_string()),
        }
    }

    fn watch_again(&mut self) {
        let dir = self.folder.dir().to_path_buf();
        // The old watch is usually gone with the folder's inode; if the folder was moved, it
        // still watches the folder at its new name.
        let _ = self.backend.unwatch(&dir);
        let watched = self
            .backend
            .watch(&dir, notify::RecursiveMode::NonRecursive);
        match watched {
            Ok(()) => {
                self.watch_lost = false;
                tracing::info!(dir = %dir.display(), "watching the plugins folder again");
            }
            Err(error) => self.problem("cannot watch the plugins folder", &error.to_string()),
        }
    }

    /// Logs a problem at WARN, once until the folder is next listed cleanly.
    fn problem(&mut self, message: &str, error: &str) {
        let dir = self.folder.dir();
        if self.problems.insert(format!("{message}: {error}")) {
            tracing::warn!(dir = %dir.display(), error, "{message}");
        } else {
            tracing::debug!(dir = %dir.display(), error, "{message}");
        }
    }
}

/// Whether an event of this kind may mean new bytes: opening a file (as this thread does to
/// read it) does not.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(access) => *access == AccessKind::Close(AccessMode::Write),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::sync::mpsc;

    use notify::event::Flag;

    use super::super::WatchOptions;
    use super::*;

    /// A settle thread's state over `dir` whose watcher delivers nothing, as if every event
    /// were lost, and the receiving end of its batches.
    fn deaf(dir: &Path) -> (Settle, tokio::sync::mpsc::Receiver<Vec<Change>>) {
        let options = WatchOptions {
            debounce: Duration::ZERO,
            ..WatchOptions::default()
        };
        let (_signals, received) = mpsc::channel();
        let (batches, batches_received) = tokio::sync::mpsc::channel(1);
        let settle = Settle {
            folder: Folder::new(dir.to_path_buf(), &options),
            backend: Box::new(notify::NullWatcher),
            mode: WatchMode::Notify,
            signals: received,
            batches,
            rescan_every: Duration::from_secs(3600),
            next_rescan: Instant::now() + Duration::from_secs(3600),
            watch_lost: false,
            problems: HashSet::new(),
        };
        (settle, batches_received)
    }

    /// Rescans if one is due, then settles everything, as a turn of the loop does.
    fn turn(settle: &mut Settle) -> Vec<String> {
        let now = Instant::now();
        if now >= settle.next_rescan {
            settle.rescan(now);
        }
        let changes = settle.folder.settle(now);
        changes.iter().map(|change| format!("{change:?}")).collect()
    }

    #[test]
    fn an_overflow_makes_the_next_turn_rescan() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (mut settle, _batches) = deaf(dir.path());
        fs::write(dir.path().join("lost.wasm"), "bytes")?;
        assert!(turn(&mut settle).is_empty());
        settle.on_event(notify::Event::new(EventKind::Other).set_flag(Flag::Rescan));
        let changes = turn(&mut settle);
        assert!(
            changes.len() == 1 && changes[0].contains("lost.wasm"),
            "{changes:?}"
        );
        Ok(())
    }

    #[test]
    fn a_notify_error_makes_the_next_turn_rescan() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (mut settle, _batches) = deaf(dir.path());
        fs::write(dir.path().join("lost.wasm"), "bytes")?;
        assert!(turn(&mut settle).is_empty());
        settle.on_error(notify::Error::generic("the queue is gone"));
        let changes = turn(&mut settle);
        assert!(
            changes.len() == 1 && changes[0].contains("lost.wasm"),
            "{changes:?}"
        );
        Ok(())
    }

    #[test]
    fn opening_a_file_is_not_activity() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (mut settle, _batches) = deaf(dir.path());
        let path = dir.path().join("x.wasm");
        fs::write(&path, "bytes")?;
        let opened = EventKind::Access(AccessKind::Open(AccessMode::Any));
        settle.on_event(notify::Event::new(opened).add_path(path.clone()));
        assert!(settle.folder.next_batch_at().is_none());
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        settle.on_event(notify::Event::new(closed).add_path(path));
        assert!(settle.folder.next_batch_at().is_some());
        Ok(())
    }
}
