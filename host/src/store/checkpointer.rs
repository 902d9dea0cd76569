//! WAL checkpoints on a thread of their own.
//!
//! Left to itself, SQLite checkpoints the WAL inside the commit that crosses the threshold, and
//! a checkpoint ends with an fsync that waits for the disk: measured on the development machine,
//! about a third of the projection thread's waiting was there (docs/BENCHMARKS.md). Here a
//! second connection runs passive checkpoints a few times a second, so that wait falls on a
//! thread that does nothing else, while the writer keeps committing (WAL lets both proceed).
//! The writer keeps a much higher automatic threshold as a backstop.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_millis(200);

/// The writer's own checkpoint threshold, in pages: only reached if this thread falls behind.
pub const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// Checkpoints one database's WAL until dropped.
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`, which must already be in WAL mode.
    pub fn start(path: &Path) -> anyhow::Result<Checkpointer> {
        let connection = Connection::open(path)
            .with_context(|| format!("opening {} for checkpoints", path.display()))?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        let name = path.display().to_string();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    let checkpoint =
                        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(error) = checkpoint {
                        tracing::warn!(database = name, error = %error, "WAL checkpoint failed");
                    }
                }
            })
            .context("starting the WAL checkpoint thread")?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
