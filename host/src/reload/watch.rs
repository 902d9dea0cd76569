//! Starting notify's watcher on the plugins folder: the platform's own (inotify on Linux), or
//! polling where that cannot be used.
//!
//! The folder itself is watched, never each file, so files that appear later are seen too.
//! notify's callback only forwards to the settle thread, which decides what an event means.

use std::path::Path;
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::Context;
use notify::{RecursiveMode, Watcher as _};

use super::settle::Signal;
use super::{WatchMode, WatchOptions};

/// A running notify watcher, whichever kind.
pub(super) type Backend = Box<dyn notify::Watcher + Send>;

/// Watches `dir` as `options.mode` asks, sending notify's events to `signals`; returns the
/// watcher and the mode in use (`Auto` resolved).
pub(super) fn open(
    dir: &Path,
    options: &WatchOptions,
    signals: &Sender<Signal>,
) -> anyhow::Result<(Backend, WatchMode)> {
    open_with(dir, options, signals, native)
}

/// [`open`], with the native watcher's constructor given, so the fallback can be tested.
fn open_with(
    dir: &Path,
    options: &WatchOptions,
    signals: &Sender<Signal>,
    native: fn(&Path, &Sender<Signal>) -> anyhow::Result<Backend>,
) -> anyhow::Result<(Backend, WatchMode)> {
    match options.mode {
        WatchMode::Notify => Ok((native(dir, signals)?, WatchMode::Notify)),
        WatchMode::Poll => Ok((
            polling(dir, options.poll_interval, signals)?,
            WatchMode::Poll,
        )),
        WatchMode::Auto => match native(dir, signals) {
            Ok(backend) => Ok((backend, WatchMode::Notify)),
            Err(error) => {
                // Some network filesystems and containers have no inotify, and the per-user
                // watch limit can be reached: polling is slower but works everywhere.
                tracing::warn!(
                    dir = %dir.display(),
                    error = format!("{error:#}"),
                    "cannot use inotify; polling the plugins folder instead"
                );
                let backend = polling(dir, options.poll_interval, signals)?;
                Ok((backend, WatchMode::Poll))
            }
        },
    }
}

fn native(dir: &Path, signals: &Sender<Signal>) -> anyhow::Result<Backend> {
    let mut watcher = notify::RecommendedWatcher::new(forward(signals), notify::Config::default())
        .context("starting inotify")?;
    (watcher.watch(dir, RecursiveMode::NonRecursive))
        .with_context(|| format!("watching {} with inotify", dir.display()))?;
    Ok(Box::new(watcher))
}

fn polling(dir: &Path, interval: Duration, signals: &Sender<Signal>) -> anyhow::Result<Backend> {
    // Without content comparison notify only compares modification times, and in whole
    // seconds: the settle thread's own rescans, as often as the polls, catch the rest.
    let config = (notify::Config::default())
        .with_poll_interval(interval)
        .with_compare_contents(false);
    let mut watcher = notify::PollWatcher::new(forward(signals), config)
        .context("starting the polling watcher")?;
    (watcher.watch(dir, RecursiveMode::NonRecursive))
        .with_context(|| format!("polling {}", dir.display()))?;
    Ok(Box::new(watcher))
}

/// notify's callback: hands the event to the settle thread and returns at once (the channel is
/// unbounded, so notify's thread never waits for ours).
fn forward(signals: &Sender<Signal>) -> impl FnMut(notify::Result<notify::Event>) + Send + 'static {
    let signals = signals.clone();
    move |event| {
        // The settle thread is gone only when the watcher is being dropped.
        let _ = signals.send(Signal::Fs(event));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn no_inotify(_: &Path, _: &Sender<Signal>) -> anyhow::Result<Backend> {
        Err(anyhow::anyhow!("inotify is not available here"))
    }

    #[test]
    fn auto_falls_back_to_polling_when_inotify_cannot_be_used() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let options = WatchOptions {
            poll_interval: Duration::from_millis(50),
            ..WatchOptions::default()
        };
        let (signals, received) = mpsc::channel();
        let (_backend, mode) = open_with(dir.path(), &options, &signals, no_inotify)?;
        assert_eq!(mode, WatchMode::Poll);
        std::fs::write(dir.path().join("new.wasm"), b"bytes")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let timeout = deadline.saturating_duration_since(std::time::Instant::now());
            match received.recv_timeout(timeout)? {
                Signal::Fs(Ok(event)) if event.paths.iter().any(|p| p.ends_with("new.wasm")) => {
                    return Ok(());
                }
                _ => {}
            }
        }
    }

    #[test]
    fn notify_mode_does_not_fall_back() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let options = WatchOptions {
            mode: WatchMode::Notify,
            ..WatchOptions::default()
        };
        let (signals, _received) = mpsc::channel();
        let error = open_with(dir.path(), &options, &signals, no_inotify).err();
        assert!(error.is_some_and(|error| error.to_string().contains("not available")));
        Ok(())
    }
}
