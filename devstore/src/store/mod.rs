//! The event log: an in-memory [`Index`] over every event, optionally persisted in SQLite.
//!
//! Reads never touch the disk: the whole log is kept in memory (this is a development server),
//! and SQLite only makes it survive restarts. Writes are serialised by one writer lock, persisted
//! in one transaction per request, then published to the index and announced on the `head`
//! watch channel, which is what live subscriptions wait on. This module knows nothing of gRPC.

mod disk;
mod event;
mod index;
mod read;
mod write;

use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use anyhow::Context;
use tokio::sync::watch;

use crate::config::Storage;
use disk::Disk;
use index::Index;

pub use event::{ProposedEvent, RecordedEvent};
pub use index::StreamState;
pub use read::Direction;
pub use write::{AppendSuccess, ExpectedRevision, WriteError};

/// A cheap-to-clone handle on the log.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    /// Readers take this briefly to copy out a page of `Arc`ed events.
    index: RwLock<Index>,
    /// Serialises writers and holds the database.
    writer: Mutex<Writer>,
    /// Position of the newest event, updated after the index: a subscriber that marks the
    /// current value before reading the index can wait for any later append without a gap.
    head: watch::Sender<u64>,
}

impl Store {
    /// Opens the log: loads a durable one from disk, and seeds a fresh one with the `$users`
    /// stream that a new EventStoreDB node has.
    pub fn open(storage: &Storage) -> anyhow::Result<Store> {
        let mut index = Index::default();
        let writer = match storage {
            Storage::Memory => Writer::Memory,
            Storage::Dir(dir) => {
                let disk = Disk::open(dir)?;
                disk.load(|event| {
                    index.apply(event);
                })
                .with_context(|| format!("loading the log from {}", dir.display()))?;
                Writer::Disk(disk)
            }
        };
        let (head, _) = watch::channel(index.head());
        let store = Store {
            shared: Arc::new(Shared {
                index: RwLock::new(index),
                writer: Mutex::new(writer),
                head,
            }),
        };
        if store.head() == 0 {
            store.seed_users().context("seeding the $users stream")?;
        }
        Ok(store)
    }

    /// Read access to the index. Hold it only to copy out what is needed: writers wait on it.
    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.shared
            .index
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// A receiver of the head position, for waiting on new events.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.shared.head.subscribe()
    }

    /// Flushes and closes the database; later writes fail. Idempotent.
    pub fn close(&self) -> anyhow::Result<()> {
        let mut writer = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match std::mem::replace(&mut *writer, Writer::Closed) {
            Writer::Disk(disk) => disk.close(),
            Writer::Memory | Writer::Closed => Ok(()),
        }
    }

    /// Writes the default `admin` user's `$UserCreated` event, which client test harnesses wait
    /// for before they start.
    fn seed_users(&self) -> anyhow::Result<()> {
        let event = ProposedEvent {
            id: uuid::Uuid::new_v4(),
            event_type: "$UserCreated".to_owned(),
            is_json: false,
            custom_metadata: Default::default(),
            data: "admin".into(),
        };
        match self.append("$users", ExpectedRevision::NoStream, vec![event]) {
            Ok(_) => Ok(()),
            Err(WriteError::Storage(error)) => Err(error),
            Err(other) => Err(anyhow::anyhow!("unexpected write result {other:?}")),
        }
    }
}

/// Where writes go.
enum Writer {
    /// Nowhere but the index.
    Memory,
    /// The SQLite database, then the index.
    Disk(Disk),
    /// Nowhere: the server is shutting down and writes are refused.
    Closed,
}
