//! The event log: an in-memory [`Index`] of every event's position, stream and type, the
//! newest events with their payloads ([`Recent`]), and optionally SQLite.
//!
//! In memory (the default) the log has nowhere else to live, so every payload stays in memory.
//! With a data directory, SQLite holds the payloads and memory holds only the index (about 24
//! bytes per event) and the newest events up to a byte budget; reads of older events load
//! their page from SQLite through read connections of their own ([`Readers`]), off the async
//! threads and outside the index lock, so a 10 GB log does not need 10 GB of memory.
//!
//! Writes are serialised by one writer lock, persisted in one transaction per request, then
//! published to the index and the recent events and announced on the `head` watch channel,
//! which is what live subscriptions wait on. This module knows nothing of gRPC.

mod disk;
mod event;
mod idempotence;
mod index;
mod names;
mod read;
mod readers;
mod recent;
mod stream;
mod write;

use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use anyhow::Context;
use tokio::sync::watch;

use crate::config::Storage;
use disk::Disk;
use idempotence::CommittedIds;
use index::Index;
use readers::Readers;
use recent::Recent;

pub use event::{EventHeader, ProposedEvent, RecordedEvent};
pub use read::{Direction, StreamPage};
pub use stream::StreamState;
pub use write::{AppendSuccess, ExpectedRevision, WriteError};

/// A cheap-to-clone handle on the log.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    /// Readers take this briefly to copy out what a page needs; never held during I/O.
    log: RwLock<Log>,
    /// Connections that read payloads from SQLite; None in memory, where every event is held.
    readers: Option<Readers>,
    /// Serialises writers; holds the database and the recently appended event ids.
    writer: Mutex<Writer>,
    /// Position of the newest event, updated after the index: a subscriber that marks the
    /// current value before reading the index can wait for any later append without a gap.
    head: watch::Sender<u64>,
}

/// The index and the newest events, under one lock so that a reader sees both at one head.
struct Log {
    /// Every event's position, stream and type; every stream's revisions and settings.
    index: Index,
    /// The newest events with their payloads (all of them in memory).
    recent: Recent,
}

impl Store {
    /// Opens the log: loads a durable one's index from disk, and seeds a fresh one with the
    /// `$users` stream that a new EventStoreDB node has. With a data directory, `recent_bytes`
    /// bounds the newest events held in memory; in memory all are held.
    pub fn open(storage: &Storage, recent_bytes: usize) -> anyhow::Result<Store> {
        let mut index = Index::default();
        let (target, readers, budget) = match storage {
            Storage::Memory => (Target::Memory, None, None),
            Storage::Dir(dir) => {
                let disk = Disk::open(dir)?;
                disk.load(|event| index.apply(event))
                    .with_context(|| format!("loading the log from {}", dir.display()))?;
                let readers = Readers::new(disk.path());
                (
                    Target::Disk(Box::new(disk)),
                    Some(readers),
                    Some(recent_bytes),
                )
            }
        };
        let head = index.head();
        let (head_sender, _) = watch::channel(head);
        let store = Store {
            shared: Arc::new(Shared {
                log: RwLock::new(Log {
                    index,
                    recent: Recent::new(head + 1, budget),
                }),
                readers,
                writer: Mutex::new(Writer {
                    target,
                    committed: CommittedIds::default(),
                }),
                head: head_sender,
            }),
        };
        if store.head() == 0 {
            store.seed_users().context("seeding the $users stream")?;
        }
        Ok(store)
    }

    /// Read access to the index and the newest events. Hold it only to copy out what is
    /// needed, never across I/O or an `await`: writers wait on it.
    fn log(&self) -> RwLockReadGuard<'_, Log> {
        self.shared
            .log
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Write access to the index and the newest events, for publishing a committed write.
    fn log_mut(&self) -> RwLockWriteGuard<'_, Log> {
        self.shared
            .log
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// A receiver of the head position, for waiting on new events.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.shared.head.subscribe()
    }

    /// Flushes and closes the database; later writes and reads from disk fail. Idempotent.
    pub fn close(&self) -> anyhow::Result<()> {
        if let Some(readers) = &self.shared.readers {
            readers.close();
        }
        let mut writer = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match std::mem::replace(&mut writer.target, Target::Closed) {
            Target::Disk(disk) => disk.close(),
            Target::Memory | Target::Closed => Ok(()),
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

/// What the writer lock guards.
struct Writer {
    /// Where writes go.
    target: Target,
    /// The most recently appended event ids, for idempotent retries of `any` appends.
    committed: CommittedIds,
}

/// Where writes go.
enum Target {
    /// Nowhere but the index.
    Memory,
    /// The SQLite database, then the index.
    Disk(Box<Disk>),
    /// Nowhere: the server is shutting down and writes are refused.
    Closed,
}
